//! The tools the official conformance suite (`@modelcontextprotocol/conformance` 0.1.x) calls by
//! name in its server scenarios, with the contents and side effects each scenario checks.

// Logging and sampling are deprecated by the 2026-07-28 protocol (SEP-2577); the suite tests them.
#![allow(deprecated)]

use std::time::Duration;

use rmcp::ErrorData;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, CreateMessageRequestParams, ElicitResult, LoggingLevel,
    ResourceContents, SamplingMessage, Tool,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::{Call, after_asking, define, no_arguments, text, unknown_tool};
use super::demo::model_text;
use super::{args, forms};
use crate::media::{RED_PIXEL_PNG, SILENT_WAV};
use crate::peer;
use crate::response_stream::ResponseStream;
use crate::session::Session;

/// Pause between the notifications of the logging and progress tools; the suite wants them
/// spread out so a client must handle several arriving during one call.
const STEP: Duration = Duration::from_millis(50);

/// `test_reconnection`: the retry hint sent as the stream closes, and how long to wait for the
/// client to come back before answering anyway.
const RECONNECT_RETRY: Duration = Duration::from_millis(500);
const RECONNECT_WAIT: Duration = Duration::from_secs(10);

pub(super) fn definitions() -> Vec<Tool> {
    let prompt = json!({
        "type": "object",
        "properties": { "prompt": { "type": "string", "description": "The prompt to send to the LLM" } },
        "required": ["prompt"]
    });
    let message = json!({
        "type": "object",
        "properties": { "message": { "type": "string", "description": "The message to show the user" } },
        "required": ["message"]
    });
    vec![
        define("test_simple_text", "Tests simple text content response", no_arguments()),
        define("test_image_content", "Tests image content response", no_arguments()),
        define("test_audio_content", "Tests audio content response", no_arguments()),
        define(
            "test_embedded_resource",
            "Tests embedded resource content response",
            no_arguments(),
        ),
        define(
            "test_multiple_content_types",
            "Tests response with multiple content types (text, image, resource)",
            no_arguments(),
        ),
        define(
            "test_tool_with_logging",
            "Tests tool that emits log messages during execution",
            no_arguments(),
        ),
        define(
            "test_tool_with_progress",
            "Tests tool that reports progress notifications",
            no_arguments(),
        ),
        define("test_error_handling", "Tests error response handling", no_arguments()),
        define(
            "test_reconnection",
            "Tests SSE stream disconnection and client reconnection (SEP-1699): closes the \
             call's stream mid-call and answers after the client reconnects.",
            no_arguments(),
        ),
        define(
            "test_sampling",
            "Tests server-initiated sampling (LLM completion request)",
            prompt,
        ),
        define(
            "test_elicitation",
            "Tests server-initiated elicitation (user input request)",
            message,
        ),
        define(
            "test_elicitation_sep1034_defaults",
            "Tests elicitation with default values per SEP-1034",
            no_arguments(),
        ),
        define(
            "test_elicitation_sep1330_enums",
            "Tests elicitation with enum schema improvements per SEP-1330",
            no_arguments(),
        ),
        define(
            "json_schema_2020_12_tool",
            "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {
                    "address": {
                        "type": "object",
                        "properties": {
                            "street": { "type": "string" },
                            "city": { "type": "string" }
                        }
                    }
                },
                "properties": {
                    "name": { "type": "string" },
                    "address": { "$ref": "#/$defs/address" }
                },
                "additionalProperties": false
            }),
        ),
    ]
}

pub(super) async fn call(session: &Session, name: &str, call: Call) -> Result<CallToolResponse, ErrorData> {
    let result = match name {
        "test_simple_text" => text("This is a simple text response for testing."),
        "test_image_content" => CallToolResult::success(vec![ContentBlock::image(RED_PIXEL_PNG, "image/png")]),
        "test_audio_content" => CallToolResult::success(vec![ContentBlock::audio(SILENT_WAV, "audio/wav")]),
        "test_embedded_resource" => CallToolResult::success(vec![ContentBlock::embedded_text(
            "test://embedded-resource",
            "This is an embedded resource content.",
        )]),
        "test_multiple_content_types" => CallToolResult::success(vec![
            ContentBlock::text("Multiple content types test:"),
            ContentBlock::image(RED_PIXEL_PNG, "image/png"),
            ContentBlock::resource(
                ResourceContents::text(
                    json!({ "test": "data", "value": 123 }).to_string(),
                    "test://mixed-content-resource",
                )
                .with_mime_type("application/json"),
            ),
        ]),
        "test_tool_with_logging" => with_logging(session, &call).await,
        "test_tool_with_progress" => with_progress(&call).await,
        "test_error_handling" => CallToolResult::error(vec![ContentBlock::text(
            "This tool intentionally returns an error for testing",
        )]),
        "test_reconnection" => reconnection(&call).await,
        "test_sampling" => return sampling(call).await,
        "test_elicitation" => return elicitation(call).await,
        "test_elicitation_sep1034_defaults" => {
            return elicitation_form(call, "defaults", forms::with_defaults()?).await;
        }
        "test_elicitation_sep1330_enums" => {
            return elicitation_form(call, "enums", forms::enums()?).await;
        }
        "json_schema_2020_12_tool" => text(format!(
            "JSON Schema 2020-12 tool called with: {}",
            Value::Object(call.args)
        )),
        other => return Err(unknown_tool(other)),
    };
    Ok(result.into())
}

async fn with_logging(session: &Session, call: &Call) -> CallToolResult {
    let peer = &call.ctx.peer;
    session.log(peer, LoggingLevel::Info, "Tool execution started").await;
    tokio::time::sleep(STEP).await;
    session.log(peer, LoggingLevel::Info, "Tool processing data").await;
    tokio::time::sleep(STEP).await;
    session.log(peer, LoggingLevel::Info, "Tool execution completed").await;
    text("Tool with logging executed successfully")
}

async fn with_progress(call: &Call) -> CallToolResult {
    for (index, done) in [0.0, 50.0, 100.0].into_iter().enumerate() {
        if index > 0 {
            tokio::time::sleep(STEP).await;
        }
        peer::progress(&call.ctx, done, 100.0, || format!("Completed {done} of 100")).await;
    }
    let token = call
        .ctx
        .meta
        .get_progress_token()
        .and_then(|token| serde_json::to_value(token).ok())
        .map_or_else(|| "no progress token".to_owned(), |token| token.to_string());
    text(format!("Progress reported with token {token}"))
}

/// Ends this call's SSE stream before answering, so the client has to reconnect (GET with
/// `Last-Event-ID`) to receive the result. Only the stateful HTTP transport has such a stream;
/// elsewhere the tool simply answers.
async fn reconnection(call: &Call) -> CallToolResult {
    if let Some(stream) = call.ctx.extensions.get::<ResponseStream>() {
        match stream.close_and_wait_for_resume(RECONNECT_RETRY, RECONNECT_WAIT).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!("test_reconnection: the client did not reconnect in time"),
            Err(error) => tracing::warn!(%error, "test_reconnection: could not close the stream"),
        }
    }
    text(
        "Reconnection test completed successfully. If you received this, the client properly \
         reconnected after stream closure.",
    )
}

async fn sampling(mut call: Call) -> Result<CallToolResponse, ErrorData> {
    let prompt = args::take_string("test_sampling", &mut call.args, "prompt")?;
    let request = CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100);
    let reply = peer::sample(&call.ctx, call.input_responses.as_ref(), "sampling", request).await;
    Ok(after_asking(reply, |answer| {
        let response = model_text(&answer).unwrap_or_else(|| "No response".to_owned());
        text(format!("LLM response: {response}"))
    }))
}

async fn elicitation(call: Call) -> Result<CallToolResponse, ErrorData> {
    #[derive(Deserialize)]
    struct Message {
        message: String,
    }
    let Message { message } = args::parse("test_elicitation", call.args)?;
    let reply = peer::elicit(
        &call.ctx,
        call.input_responses.as_ref(),
        "user_details",
        forms::user_details(&message)?,
    )
    .await;
    Ok(after_asking(reply, |answer| {
        text(format!("User response: {}", describe(&answer)))
    }))
}

async fn elicitation_form(
    call: Call,
    key: &str,
    form: rmcp::model::ElicitRequestParams,
) -> Result<CallToolResponse, ErrorData> {
    let reply = peer::elicit(&call.ctx, call.input_responses.as_ref(), key, form).await;
    Ok(after_asking(reply, |answer| {
        text(format!("Elicitation completed: {}", describe(&answer)))
    }))
}

/// `action=accept, content={...}`, the shape the suite's reference server answers with.
fn describe(answer: &ElicitResult) -> String {
    let action = serde_json::to_value(&answer.action)
        .ok()
        .and_then(|action| action.as_str().map(str::to_owned))
        .unwrap_or_default();
    let content = answer.content.clone().unwrap_or_else(|| json!({}));
    format!("action={action}, content={content}")
}
