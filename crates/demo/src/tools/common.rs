//! What every tool is built from: the [`Call`] it receives, how its definition is written, and
//! how it answers (a text result, a tool-level error, the end of a question to the client).

use std::sync::Arc;

use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock, InputResponses, JsonObject, Tool};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::Value;

use crate::peer::{AskError, Reply};

/// One `tools/call`, taken apart.
pub(crate) struct Call {
    /// `arguments`, or an empty object when the client sent none.
    pub(crate) args: JsonObject,
    /// Answers to an earlier `input_required` result (2026-07-28 multi round-trip calls).
    pub(crate) input_responses: Option<InputResponses>,
    pub(crate) ctx: RequestContext<RoleServer>,
}

/// Unknown tool names are a protocol error (-32602), as the 2025-11-25 spec asks.
pub(super) fn unknown_tool(name: &str) -> ErrorData {
    ErrorData::invalid_params(format!("unknown tool `{name}`"), None)
}

/// A tool definition from a hand-written JSON Schema object.
pub(super) fn define(name: &'static str, description: &'static str, input_schema: Value) -> Tool {
    let schema = match input_schema {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    };
    Tool::new(name, description, Arc::new(schema))
}

/// The schema of a tool without arguments.
pub(super) fn no_arguments() -> Value {
    serde_json::json!({ "type": "object", "properties": {} })
}

/// A successful result holding one text block.
pub(super) fn text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

/// A tool-level failure the caller gets to read (`isError: true`).
pub(super) fn tool_error(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

/// Finishes a tool that asked the client something: either hand back the `input_required`
/// result, or turn the answer into the tool's result with `finish`.
pub(super) fn after_asking<T>(
    reply: Result<Reply<T>, AskError>,
    finish: impl FnOnce(T) -> CallToolResult,
) -> CallToolResponse {
    match reply {
        Ok(Reply::Answered(answer)) => finish(answer).into(),
        Ok(Reply::InputRequired(input_required)) => input_required.into(),
        Err(error) => tool_error(error.to_string()).into(),
    }
}
