//! Tools: what `tools/list` shows and what `tools/call` runs.
//!
//! Dispatch is a plain `match` on the name rather than rmcp's `#[tool_router]`: the set depends on
//! the [`Profile`] at run time, some input schemas must be exact hand-written JSON (the suite
//! checks JSON Schema 2020-12 keywords survive), and `echo` — the benchmark's tool — should cost
//! as little as a string move.

mod args;
mod common;
mod conformance;
mod demo;
mod forms;

use rmcp::model::{CallToolRequestParams, CallToolResponse, Tool};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};

use crate::profile::Profile;
use crate::session::Session;
use common::{Call, unknown_tool};

/// The tools of a profile, in the order `tools/list` shows them.
pub(crate) fn definitions(profile: Profile) -> Vec<Tool> {
    let mut tools = demo::definitions();
    if profile.includes_conformance() {
        tools.extend(conformance::definitions());
    }
    tools
}

/// Runs a `tools/call` for a session of `profile`.
pub(crate) async fn call(
    profile: Profile,
    session: &Session,
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
        "inspect" => demo::inspect(session, call).map(Into::into),
        other if profile.includes_conformance() => conformance::call(session, other, call).await,
        other => Err(unknown_tool(other)),
    }
}
