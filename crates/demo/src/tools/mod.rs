//! Tools: what `tools/list` shows and what `tools/call` runs.
//!
//! Dispatch is a plain `match` on the name rather than rmcp's `#[tool_router]`: the set depends on
//! the [`Profile`] at run time, some input schemas must be exact hand-written JSON (the suite
//! checks JSON Schema 2020-12 keywords survive), and `echo` — the benchmark's tool — should cost
//! as little as a string move.

mod args;
mod conformance;
mod demo;
mod forms;

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, InputResponses, JsonObject, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::Value;

use crate::peer::{AskError, Reply};
use crate::{DemoServer, Profile};

/// One `tools/call`, taken apart.
pub(crate) struct Call {
    /// `arguments`, or an empty object when the client sent none.
    pub(crate) args: JsonObject,
    /// Answers to an earlier `input_required` result (2026-07-28 multi round-trip calls).
    pub(crate) input_responses: Option<InputResponses>,
    pub(crate) ctx: RequestContext<RoleServer>,
}

/// The tools of a profile, in the order `tools/list` shows them.
pub(crate) fn definitions(profile: Profile) -> Vec<Tool> {
    let mut tools = demo::definitions();
    if profile.includes_conformance() {
        tools.extend(conformance::definitions());
    }
    tools
}

/// Runs a `tools/call`.
pub(crate) async fn call(
    server: &DemoServer,
    params: CallToolRequestParams,
    ctx: RequestContext<RoleServer>,
) -> Result<CallToolResponse, ErrorData> {
    let CallToolRequestParams {
        name,
        arguments,
        input_responses,
        ..
    } = params;
    let call = Call {
        args: arguments.unwrap_or_default(),
        input_responses,
        ctx,
    };
    match name.as_ref() {
        "echo" => demo::echo(call).map(Into::into),
        "add" => demo::add(call).map(Into::into),
        "slow" => demo::slow(call).await.map(Into::into),
        "ask_name" => demo::ask_name(call).await,
        "summarize" => demo::summarize(call).await,
        "crash" => demo::crash(),
        "inspect" => demo::inspect(server, call).map(Into::into),
        other if server.profile().includes_conformance() => conformance::call(server, other, call).await,
        other => Err(unknown_tool(other)),
    }
}

/// Unknown tool names are a protocol error (-32602), as the 2025-11-25 spec asks.
fn unknown_tool(name: &str) -> ErrorData {
    ErrorData::invalid_params(format!("unknown tool `{name}`"), None)
}

/// A tool definition from a hand-written JSON Schema object.
fn define(name: &'static str, description: &'static str, input_schema: Value) -> Tool {
    let schema = match input_schema {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    };
    Tool::new(name, description, Arc::new(schema))
}

/// The schema of a tool without arguments.
fn no_arguments() -> Value {
    serde_json::json!({ "type": "object", "properties": {} })
}

/// A successful result holding one text block.
fn text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

/// A tool-level failure the caller gets to read (`isError: true`).
fn tool_error(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

/// Finishes a tool that asked the client something: either hand back the `input_required`
/// result, or turn the answer into the tool's result with `finish`.
fn after_asking<T>(reply: Result<Reply<T>, AskError>, finish: impl FnOnce(T) -> CallToolResult) -> CallToolResponse {
    match reply {
        Ok(Reply::Answered(answer)) => finish(answer).into(),
        Ok(Reply::InputRequired(input_required)) => input_required.into(),
        Err(error) => tool_error(error.to_string()).into(),
    }
}
