//! The `differential` profile: the surface that tests-e2e/differential.sh puts behind the gateway,
//! identical in the Python and TypeScript SDK upstreams there, with every execution recorded.
//!
//! Tools `echo` {text} (returns it), `admin_tool`, `denied_tool`; resources `test://public` and
//! `test://admin` (read and subscribe); prompts `greet` {name} and `admin_prompt`; completion for
//! either prompt or resource. The suite's policy allows the first of each to a read-only key and
//! keeps the rest for admins (or nobody), so any execution of an `admin_*`/`denied_*` target on a
//! read-only session, or of a target other than the one the gateway audited, is a bypass.
//!
//! An execution is recorded only once the target is known and its arguments valid, as the SDK
//! servers do: an unknown name or a bad argument is an error that ran nothing.

use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::model::{
    ArgumentInfo, CallToolRequestParams, CallToolResult, ContentBlock, GetPromptResult, JsonObject, Prompt,
    PromptArgument, PromptMessage, ReadResourceResult, Reference, Resource, ResourceContents, Role, Tool,
};
use serde_json::{Value, json};

use crate::record::{Kind, Recorder};

const TOOLS: [&str; 3] = ["echo", "admin_tool", "denied_tool"];
const RESOURCES: [(&str, &str); 2] = [("test://public", "public content"), ("test://admin", "admin content")];
const PROMPTS: [&str; 2] = ["greet", "admin_prompt"];

pub(crate) fn tools() -> Vec<Tool> {
    TOOLS
        .iter()
        .map(|name| {
            let schema = if *name == "echo" {
                json!({ "type": "object", "properties": { "text": { "type": "string" } }, "required": ["text"] })
            } else {
                json!({ "type": "object", "properties": {} })
            };
            let schema = match schema {
                Value::Object(map) => map,
                _ => JsonObject::new(),
            };
            Tool::new(*name, format!("differential {name}"), Arc::new(schema))
        })
        .collect()
}

pub(crate) fn resources() -> Vec<Resource> {
    RESOURCES
        .iter()
        .map(|(uri, _)| Resource::new(*uri, uri.trim_start_matches("test://")).with_mime_type("text/plain"))
        .collect()
}

pub(crate) fn prompts() -> Vec<Prompt> {
    vec![
        Prompt::new(
            "greet",
            Some("differential greet"),
            Some(vec![PromptArgument::new("name").with_required(true)]),
        ),
        Prompt::new("admin_prompt", Some("differential admin_prompt"), None),
    ]
}

fn record(recorder: Option<&Recorder>, kind: Kind, target: &str, args: &Value) -> Result<(), ErrorData> {
    recorder.map_or(Ok(()), |r| r.record(kind, target, args))
}

pub(crate) fn call_tool(
    recorder: Option<&Recorder>,
    params: CallToolRequestParams,
) -> Result<CallToolResult, ErrorData> {
    let name = params.name.as_ref();
    if !TOOLS.contains(&name) {
        return Err(ErrorData::invalid_params(format!("unknown tool `{name}`"), None));
    }
    let args = params.arguments.unwrap_or_default();
    let text = if name == "echo" {
        match args.get("text") {
            Some(Value::String(text)) => text.clone(),
            _ => return Err(ErrorData::invalid_params("echo needs a string argument `text`", None)),
        }
    } else {
        format!("{name} ran")
    };
    record(recorder, Kind::Tool, name, &Value::Object(args))?;
    Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
}

fn resource(uri: &str) -> Result<&'static str, ErrorData> {
    RESOURCES
        .iter()
        .find(|(known, _)| *known == uri)
        .map(|(_, text)| *text)
        .ok_or_else(|| ErrorData::resource_not_found(format!("no resource `{uri}`"), None))
}

pub(crate) fn read(recorder: Option<&Recorder>, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    let text = resource(uri)?;
    record(recorder, Kind::Resource, uri, &json!({}))?;
    Ok(ReadResourceResult::new(vec![ResourceContents::text(text, uri)]))
}

pub(crate) fn subscribe(recorder: Option<&Recorder>, uri: &str) -> Result<(), ErrorData> {
    resource(uri)?;
    record(recorder, Kind::Subscribe, uri, &json!({}))
}

pub(crate) fn get_prompt(
    recorder: Option<&Recorder>,
    name: &str,
    arguments: Option<JsonObject>,
) -> Result<GetPromptResult, ErrorData> {
    if !PROMPTS.contains(&name) {
        return Err(ErrorData::invalid_params(format!("unknown prompt `{name}`"), None));
    }
    let args = arguments.unwrap_or_default();
    if name == "greet" && !args.get("name").is_some_and(Value::is_string) {
        return Err(ErrorData::invalid_params("greet needs a string argument `name`", None));
    }
    let args = Value::Object(args);
    record(recorder, Kind::Prompt, name, &args)?;
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(
        Role::User,
        format!("{name}: {args}"),
    )]))
}

/// Suggestions for a known prompt or resource; nothing (and nothing recorded) for others.
pub(crate) fn complete(
    recorder: Option<&Recorder>,
    reference: &Reference,
    argument: &ArgumentInfo,
) -> Result<Vec<String>, ErrorData> {
    let target = match reference {
        Reference::Prompt(prompt) => prompt.name.as_str(),
        Reference::Resource(resource) => resource.uri.as_str(),
        // Reference is non-exhaustive: a later kind of reference has no suggestions.
        _ => return Ok(Vec::new()),
    };
    let known = PROMPTS.contains(&target) || RESOURCES.iter().any(|(uri, _)| *uri == target);
    if !known {
        return Ok(Vec::new());
    }
    let args = json!({ "argument": argument.name, "value": argument.value });
    record(recorder, Kind::Completion, target, &args)?;
    Ok(vec![format!("{target}-suggestion")])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_targets_and_bad_arguments_run_nothing() {
        let params = |name: &str, args: Value| {
            let mut p = CallToolRequestParams::new(name.to_owned());
            if let Value::Object(map) = args {
                p = p.with_arguments(map);
            }
            p
        };
        assert!(call_tool(None, params("nope", json!({}))).is_err());
        assert!(call_tool(None, params("echo", json!({ "text": 1 }))).is_err());
        assert!(call_tool(None, params("echo", json!({ "text": "x" }))).is_ok());
        assert!(read(None, "test://other").is_err());
        assert!(get_prompt(None, "greet", None).is_err());
        assert_eq!(tools().len(), 3);
        assert_eq!(resources().len(), 2);
        assert_eq!(prompts().len(), 2);
    }
}
