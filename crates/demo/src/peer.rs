//! Asking the client something in the middle of a tool call (elicitation, sampling) and telling
//! it how far along the call is (progress).
//!
//! Two protocol generations ask differently, and the demo must work through the gateway with
//! both:
//! - up to 2025-11-25 the server sends `elicitation/create` / `sampling/createMessage` as a
//!   request of its own while the call is open; rmcp tags it with the originating call so the
//!   Streamable HTTP transport delivers it on that call's SSE stream;
//! - from 2026-07-28 servers may not send requests; the call instead answers with an
//!   `input_required` result naming what it needs, and the client retries the call with
//!   `inputResponses` (multi round-trip requests, SEP-2322).
//!
//! [`elicit`] and [`sample`] hide the difference: they return either the client's answer or the
//! `input_required` result the tool must hand back.

// Sampling and elicitation are deprecated by the 2026-07-28 protocol (SEP-2577) but are what
// every client released so far speaks.
#![allow(deprecated)]

use std::collections::BTreeMap;
use std::fmt;

use rmcp::model::{
    CreateMessageRequest, CreateMessageRequestParams, CreateMessageResult, ElicitRequest, ElicitRequestParams,
    ElicitResult, InputRequest, InputRequiredResult, InputResponses, ProgressNotificationParam, ProtocolVersion,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServiceError};

/// The client's answer, or the `input_required` result that asks for it.
#[derive(Debug)]
pub(crate) enum Reply<T> {
    Answered(T),
    InputRequired(InputRequiredResult),
}

/// Why the client could not be asked. Tools report these as tool errors (`isError: true`):
/// the call was valid, the client just cannot take part in it.
#[derive(Debug)]
pub(crate) enum AskError {
    /// The client did not declare the capability.
    NotSupported(&'static str),
    /// The client answered with an error, or the transport failed.
    Failed(String),
    /// The caller cancelled the tool call while we were waiting.
    Cancelled,
}

impl fmt::Display for AskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AskError::NotSupported(capability) => {
                write!(f, "the client did not declare the `{capability}` capability")
            }
            AskError::Failed(reason) => write!(f, "the client could not answer: {reason}"),
            AskError::Cancelled => f.write_str("the call was cancelled"),
        }
    }
}

/// Whether this request uses the 2026-07-28 lifecycle, where servers may not send requests.
fn uses_input_required(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.protocol_version()
        .is_some_and(|version| version.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

/// Asks the user to fill in a form (`elicitation/create`).
///
/// `key` names this question in a multi round-trip exchange; it must be stable across retries
/// of the same call.
pub(crate) async fn elicit(
    ctx: &RequestContext<RoleServer>,
    responses: Option<&InputResponses>,
    key: &str,
    params: ElicitRequestParams,
) -> Result<Reply<ElicitResult>, AskError> {
    if ctx.client_capabilities().is_none_or(|caps| caps.elicitation.is_none()) {
        return Err(AskError::NotSupported("elicitation"));
    }
    if uses_input_required(ctx) {
        return answered_or_ask(responses, key, || InputRequest::Elicitation(ElicitRequest::new(params)));
    }
    until_cancelled(ctx, ctx.peer.create_elicitation(params))
        .await
        .map(Reply::Answered)
}

/// Asks the client's model for a completion (`sampling/createMessage`).
pub(crate) async fn sample(
    ctx: &RequestContext<RoleServer>,
    responses: Option<&InputResponses>,
    key: &str,
    params: CreateMessageRequestParams,
) -> Result<Reply<CreateMessageResult>, AskError> {
    if ctx.client_capabilities().is_none_or(|caps| caps.sampling.is_none()) {
        return Err(AskError::NotSupported("sampling"));
    }
    if uses_input_required(ctx) {
        return answered_or_ask(responses, key, || {
            InputRequest::CreateMessage(CreateMessageRequest::new(params))
        });
    }
    until_cancelled(ctx, ctx.peer.create_message(params))
        .await
        .map(Reply::Answered)
}

/// The multi round-trip half: the answer if the retry carries it, otherwise the question.
fn answered_or_ask<T: serde::de::DeserializeOwned>(
    responses: Option<&InputResponses>,
    key: &str,
    request: impl FnOnce() -> InputRequest,
) -> Result<Reply<T>, AskError> {
    match responses.and_then(|responses| responses.get(key)) {
        Some(answer) => serde_json::from_value(answer.clone())
            .map(Reply::Answered)
            .map_err(|error| AskError::Failed(format!("malformed input response `{key}`: {error}"))),
        None => {
            let requests = BTreeMap::from([(key.to_owned(), request())]);
            Ok(Reply::InputRequired(InputRequiredResult::from_input_requests(requests)))
        }
    }
}

async fn until_cancelled<T>(
    ctx: &RequestContext<RoleServer>,
    request: impl Future<Output = Result<T, ServiceError>>,
) -> Result<T, AskError> {
    tokio::select! {
        answer = request => answer.map_err(|error| AskError::Failed(error.to_string())),
        () = ctx.ct.cancelled() => Err(AskError::Cancelled),
    }
}

/// Sends `notifications/progress` for this call, if the caller asked for progress (sent a
/// `progressToken`). rmcp routes it by that token onto the call's own SSE stream.
pub(crate) async fn progress(
    ctx: &RequestContext<RoleServer>,
    done: f64,
    total: f64,
    message: impl FnOnce() -> String,
) {
    let Some(token) = ctx.meta.get_progress_token() else {
        return;
    };
    let param = ProgressNotificationParam::new(token, done)
        .with_total(total)
        .with_message(message());
    if let Err(error) = ctx.peer.notify_progress(param).await {
        tracing::debug!(%error, "could not deliver a progress notification");
    }
}
