//! The demo tools: small, each showing one thing a gateway must carry correctly.
//!
//! `echo` and `add` are plain calls (and `echo` is the benchmark's), `slow` streams progress,
//! `ask_name` and `summarize` make the server ask the client mid-call, `crash` kills the process
//! so supervision and restarts can be tested, and `inspect` reports what actually arrived, so a
//! test can check what the gateway forwarded, stripped or injected.

// Sampling is deprecated by the 2026-07-28 protocol (SEP-2577) but is what clients speak today.
#![allow(deprecated)]

use std::time::Duration;

use rmcp::ErrorData;
use rmcp::model::{
    CallToolResponse, CallToolResult, CreateMessageRequestParams, CreateMessageResult, ElicitResult, ElicitationAction,
    SamplingContent, SamplingMessage, SamplingMessageContentBlock, ToolAnnotations,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::common::{Call, after_asking, define, no_arguments, text, tool_error};
use super::{args, forms};
use crate::peer;
use crate::session::Session;

/// Limits on `slow`, so one call cannot tie a session up for hours.
const MAX_STEPS: u32 = 1_000;
const MAX_DELAY_MS: u64 = 60_000;

/// The process exit status of `crash`, distinct from panics (101) and signals.
const CRASH_EXIT_STATUS: i32 = 3;

pub(super) fn definitions() -> Vec<rmcp::model::Tool> {
    vec![
        define(
            "echo",
            "Returns `text` unchanged.",
            json!({
                "type": "object",
                "properties": { "text": { "type": "string", "description": "Text to echo back" } },
                "required": ["text"]
            }),
        )
        .with_annotations(ToolAnnotations::new().read_only(true).idempotent(true)),
        define(
            "add",
            "Adds two numbers and returns the sum as text.",
            json!({
                "type": "object",
                "properties": {
                    "a": { "type": "number", "description": "First addend" },
                    "b": { "type": "number", "description": "Second addend" }
                },
                "required": ["a", "b"]
            }),
        )
        .with_annotations(ToolAnnotations::new().read_only(true).idempotent(true)),
        define(
            "slow",
            "Works in `steps` steps of `delay_ms` each, sending notifications/progress after each \
             step when the call carries a progressToken.",
            json!({
                "type": "object",
                "properties": {
                    "steps": {
                        "type": "integer", "minimum": 0, "maximum": MAX_STEPS, "default": 3,
                        "description": "Number of steps"
                    },
                    "delay_ms": {
                        "type": "integer", "minimum": 0, "maximum": MAX_DELAY_MS, "default": 100,
                        "description": "Milliseconds per step"
                    }
                }
            }),
        )
        .with_annotations(ToolAnnotations::new().read_only(true)),
        define(
            "ask_name",
            "Asks the user for their name (elicitation) and greets them.",
            no_arguments(),
        ),
        define(
            "summarize",
            "Asks the client's model (sampling) to summarize `text` and returns its answer.",
            json!({
                "type": "object",
                "properties": { "text": { "type": "string", "description": "Text to summarize" } },
                "required": ["text"]
            }),
        ),
        define(
            "crash",
            "Exits the server process immediately with status 3 (for restart tests).",
            no_arguments(),
        )
        .with_annotations(ToolAnnotations::new().destructive(true)),
        define(
            "inspect",
            "Returns, as JSON, the arguments and _meta this call arrived with and, over HTTP, the \
             request's method, URI and headers — what the gateway actually forwarded.",
            json!({ "type": "object", "additionalProperties": true }),
        )
        .with_annotations(ToolAnnotations::new().read_only(true)),
    ]
}

pub(super) fn echo(mut call: Call) -> Result<CallToolResult, ErrorData> {
    args::take_string("echo", &mut call.args, "text").map(text)
}

pub(super) fn add(call: Call) -> Result<CallToolResult, ErrorData> {
    #[derive(Deserialize)]
    struct Addends {
        a: f64,
        b: f64,
    }
    let Addends { a, b } = args::parse("add", call.args)?;
    Ok(text((a + b).to_string()))
}

pub(super) async fn slow(call: Call) -> Result<CallToolResult, ErrorData> {
    #[derive(Deserialize)]
    struct Pace {
        #[serde(default = "default_steps")]
        steps: u32,
        #[serde(default = "default_delay_ms")]
        delay_ms: u64,
    }
    fn default_steps() -> u32 {
        3
    }
    fn default_delay_ms() -> u64 {
        100
    }
    let Pace { steps, delay_ms } = args::parse("slow", call.args)?;
    if steps > MAX_STEPS || delay_ms > MAX_DELAY_MS {
        return Err(ErrorData::invalid_params(
            format!("`slow`: at most {MAX_STEPS} steps of at most {MAX_DELAY_MS} ms"),
            None,
        ));
    }
    let ctx = &call.ctx;
    for step in 1..=steps {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(delay_ms)) => {}
            () = ctx.ct.cancelled() => {
                return Ok(tool_error(format!("cancelled after {} steps", step - 1)));
            }
        }
        peer::progress(ctx, f64::from(step), f64::from(steps), || {
            format!("step {step} of {steps}")
        })
        .await;
    }
    Ok(text(format!("done after {steps} steps")))
}

pub(super) async fn ask_name(call: Call) -> Result<CallToolResponse, ErrorData> {
    let reply = peer::elicit(&call.ctx, call.input_responses.as_ref(), "name", forms::name()?).await;
    Ok(after_asking(reply, greet))
}

fn greet(answer: ElicitResult) -> CallToolResult {
    match answer.action {
        ElicitationAction::Accept => {
            match answer
                .content
                .as_ref()
                .and_then(|c| c.get("name"))
                .and_then(Value::as_str)
            {
                Some(name) => text(format!("hello, {name}")),
                None => tool_error("the form was accepted without a name"),
            }
        }
        ElicitationAction::Decline => text("declined"),
        ElicitationAction::Cancel => text("cancelled"),
        // ElicitationAction is non-exhaustive; a future action is not an answer.
        _ => text("cancelled"),
    }
}

pub(super) async fn summarize(mut call: Call) -> Result<CallToolResponse, ErrorData> {
    let input = args::take_string("summarize", &mut call.args, "text")?;
    let request = CreateMessageRequestParams::new(
        vec![SamplingMessage::user_text(format!(
            "Summarize the following text in one or two sentences.\n\n{input}"
        ))],
        200,
    )
    .with_system_prompt("You write short, faithful summaries.");
    let reply = peer::sample(&call.ctx, call.input_responses.as_ref(), "summary", request).await;
    Ok(after_asking(reply, |answer| match model_text(&answer) {
        Some(summary) => text(summary),
        None => tool_error("the client's model returned no text"),
    }))
}

/// The text blocks of a sampling answer, joined; `None` if it has none.
pub(super) fn model_text(answer: &CreateMessageResult) -> Option<String> {
    let blocks: Vec<&SamplingMessageContentBlock> = match &answer.message.content {
        SamplingContent::Single(block) => vec![block],
        SamplingContent::Multiple(blocks) => blocks.iter().collect(),
    };
    let texts: Vec<&str> = blocks
        .into_iter()
        .filter_map(|block| match block {
            SamplingMessageContentBlock::Text(text) => Some(text.text.as_str()),
            _ => None,
        })
        .collect();
    (!texts.is_empty()).then(|| texts.join("\n"))
}

pub(super) fn crash() -> ! {
    tracing::warn!(status = CRASH_EXIT_STATUS, "`crash` called: exiting immediately");
    std::process::exit(CRASH_EXIT_STATUS)
}

pub(super) fn inspect(session: &Session, call: Call) -> Result<CallToolResult, ErrorData> {
    let ctx = &call.ctx;
    let mut report = Map::new();
    report.insert("arguments".into(), Value::Object(call.args));
    report.insert("meta".into(), serde_json::to_value(&ctx.meta).unwrap_or(Value::Null));
    report.insert(
        "protocolVersion".into(),
        ctx.protocol_version()
            .map_or(Value::Null, |version| Value::String(version.as_str().to_owned())),
    );
    report.insert(
        "clientInfo".into(),
        ctx.client_info()
            .and_then(|info| serde_json::to_value(info).ok())
            .unwrap_or(Value::Null),
    );
    report.insert("subscriptions".into(), json!(session.subscribed()));
    if let Some(parts) = ctx.extensions.get::<http::request::Parts>() {
        report.insert("http".into(), http_request(parts));
    }
    Ok(text(Value::Object(report).to_string()))
}

/// The forwarded HTTP request: method, URI and headers. Header names are lower-case; a header
/// sent several times is joined with ", " (RFC 9110 §5.3), so tests can compare plain strings.
fn http_request(parts: &http::request::Parts) -> Value {
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        match headers.get_mut(name.as_str()) {
            Some(Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value.into_owned()));
            }
        }
    }
    json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "headers": headers,
    })
}
