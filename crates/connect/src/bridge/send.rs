//! One message to the server and its answer back: the POST, the retries, and what each refusal
//! means. The order of the decisions, and why:
//!
//! 1. 2xx — the answer: JSON (one message, or an array of them), an event stream (followed,
//!    resumed when it drops), or nothing (202, for notifications and responses).
//! 2. 404 to a message that carried a session id — the server lost the session: start a new one
//!    (once per message) and send again. Without a session id, a 404 is an ordinary refusal.
//! 3. 401 — the provider may have other credentials (a fresh token, the fallback key): sent again
//!    once when it says so.
//! 4. 403 `insufficient_scope` — the provider may step up: sent again once when it says so. A
//!    403 to a message whose session was opened under credentials the provider has since left
//!    (the fallback key after a 401) — a server that binds sessions to their opener refuses it —
//!    starts a new session under the new credentials, once per message, as a 404 does. Any other
//!    403 is final unless `retry_403`.
//! 5. 429/503 — "later": any message is sent again after `Retry-After` (capped) or the backoff.
//! 6. 502/504, timeouts, connections broken mid-request — the server may have run it: sent again
//!    only when that is harmless (see [`crate::retry::is_idempotent`]).
//! 7. Nothing reached the server (connection refused, DNS, TLS) — always sent again.
//! 8. Anything else is final: the server's own JSON-RPC error for the request is forwarded,
//!    otherwise the bridge writes one naming the status.

use super::frame::{self, Frame, Kind};
use super::session::Snapshot;
use super::{Ctx, headers, sse};
use crate::retry::{backoff, is_idempotent};
use http::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Method, StatusCode};
use mcpgate_core::jsonrpc::code;
use serde_json::value::RawValue;
use std::time::{Duration, SystemTime};

/// The largest JSON answer read (a `resources/read` of a big file is large, but not unbounded).
const MAX_ANSWER: usize = 64 * 1024 * 1024;
/// The most of an error answer read, looking for the server's JSON-RPC error.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Which session a message goes out with.
pub(crate) enum Via {
    /// The current one, started again when the server lost it.
    Shared,
    /// Exactly this one, never started again (the messages that start a new session).
    Fixed(Snapshot),
}

/// What the server answered.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The response to the request, kept back (every other message was written already).
    pub response: Option<Vec<u8>>,
    /// The `Mcp-Session-Id` the answer carried.
    pub session_id: Option<HeaderValue>,
}

/// Why a message was not answered.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The server's own JSON-RPC error for the request, forwarded as it is.
    Answered(Vec<u8>),
    /// The bridge gave up: the JSON-RPC error to write for a request, and the log line. Never
    /// holds a header value or a token.
    GaveUp { code: i64, message: String },
}

impl Failure {
    pub(crate) fn message(&self) -> &str {
        match self {
            Failure::Answered(_) => "the server answered with an error",
            Failure::GaveUp { message, .. } => message,
        }
    }
}

fn gave_up(code: i64, message: impl Into<String>) -> Failure {
    Failure::GaveUp {
        code,
        message: message.into(),
    }
}

/// Why one attempt produced no answer.
pub(crate) enum Trouble {
    /// Nothing reached the server: always safe to send again.
    NotSent(String),
    /// The server may have received (and run) the message.
    MaybeRan(String),
    /// The server asked to be asked again after `wait`.
    Later {
        status: StatusCode,
        wait: Duration,
    },
    Final(Failure),
}

/// Sends `frame` until it is answered or the policy says to stop.
pub(crate) async fn exchange(ctx: &Ctx, frame: &Frame, via: &Via) -> Result<Answer, Failure> {
    let mut sent = 0u32;
    let (mut reauthed, mut rescoped, mut recovered) = (false, false, false);
    loop {
        sent += 1;
        let session = match via {
            Via::Shared => ctx.session.snapshot().await,
            Via::Fixed(s) => s.clone(),
        };
        let auth = ctx
            .auth
            .headers(&Method::POST, &ctx.url_text, &frame.body)
            .await
            .map_err(|e| gave_up(code::UNAUTHORIZED, format!("could not get credentials: {e}")))?;
        let request = ctx
            .http
            .post(ctx.url.clone())
            .headers(headers::post(&auth, &session, frame))
            .body(frame.body.clone());
        let trouble = match tokio::time::timeout(ctx.timeout, request.send()).await {
            Err(_) => Trouble::MaybeRan(format!("the server did not answer within {} s", ctx.timeout.as_secs())),
            Ok(Err(e)) => transport(e),
            Ok(Ok(resp)) if resp.status().is_success() => match answer(ctx, frame, resp, &session).await {
                Ok(answer) => return Ok(answer),
                Err(trouble) => trouble,
            },
            Ok(Ok(resp)) => {
                let status = resp.status();
                let challenge = resp.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok());
                let scope = challenge.is_some_and(|c| c.contains("insufficient_scope"));
                match status {
                    StatusCode::NOT_FOUND
                        if carried_session(frame, &session) && matches!(via, Via::Shared) && !recovered =>
                    {
                        recovered = true;
                        sent -= 1;
                        tracing::info!("{}: the server no longer knows the session (404)", frame.describe());
                        ctx.session.recover(ctx, &session).await?;
                        continue;
                    }
                    StatusCode::UNAUTHORIZED => {
                        if !reauthed && ctx.auth.unauthorized(&auth, challenge).await {
                            reauthed = true;
                            sent -= 1;
                            ctx.session.credentials_changed();
                            tracing::info!(
                                "{}: refused (401); sending again with new credentials",
                                frame.describe()
                            );
                            continue;
                        }
                        if reauthed {
                            // Refused again with the credentials the provider moved to: it is told
                            // (a key pair says both keys were refused), but not asked again here.
                            ctx.auth.unauthorized(&auth, challenge).await;
                        }
                        Trouble::Final(gave_up(code::UNAUTHORIZED, "the server refused the credentials (401)"))
                    }
                    StatusCode::FORBIDDEN if scope => {
                        if !rescoped && ctx.auth.insufficient_scope(&auth, challenge).await {
                            rescoped = true;
                            sent -= 1;
                            tracing::info!("{}: more scope needed (403); sending again", frame.describe());
                            continue;
                        }
                        Trouble::Final(gave_up(
                            code::FORBIDDEN,
                            "the server wants more scope than the credentials carry (403 insufficient_scope)",
                        ))
                    }
                    StatusCode::FORBIDDEN
                        if carried_session(frame, &session)
                            && matches!(via, Via::Shared)
                            && !recovered
                            && ctx.session.opened_under_old_credentials(&session) =>
                    {
                        recovered = true;
                        sent -= 1;
                        tracing::info!(
                            "{}: the session belongs to the credentials used before (403); starting a new one",
                            frame.describe()
                        );
                        ctx.session.recover(ctx, &session).await?;
                        continue;
                    }
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => later(ctx, &resp, sent),
                    StatusCode::FORBIDDEN if ctx.policy.retry_403 => later(ctx, &resp, sent),
                    StatusCode::FORBIDDEN => {
                        Trouble::Final(gave_up(code::FORBIDDEN, "the server refused access (403)"))
                    }
                    StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => {
                        Trouble::MaybeRan(format!("the server answered {status}"))
                    }
                    _ => Trouble::Final(refused(resp, frame, &session).await),
                }
            }
        };
        let (wait, why, code) = match trouble {
            Trouble::Final(failure) => return Err(failure),
            Trouble::NotSent(why) => (backoff(&ctx.policy, sent - 1), why, code::UPSTREAM_UNAVAILABLE),
            Trouble::MaybeRan(why) if safe_to_repeat(ctx, frame) => {
                (backoff(&ctx.policy, sent - 1), why, code::UPSTREAM_UNAVAILABLE)
            }
            Trouble::MaybeRan(why) => {
                return Err(gave_up(
                    code::UPSTREAM_UNAVAILABLE,
                    format!("{why}; not sent again, as {} may already have run", frame.method()),
                ));
            }
            Trouble::Later { status, wait } => {
                let code = match status {
                    StatusCode::TOO_MANY_REQUESTS => code::RATE_LIMITED,
                    StatusCode::FORBIDDEN => code::FORBIDDEN,
                    _ => code::UPSTREAM_UNAVAILABLE,
                };
                (wait, format!("the server answered {status}"), code)
            }
        };
        if sent >= ctx.policy.max_attempts {
            return Err(gave_up(code, format!("{why}; gave up after {sent} attempts")));
        }
        tracing::info!("{}: {why}; sending again in {} ms", frame.describe(), wait.as_millis());
        tokio::time::sleep(wait).await;
    }
}

/// Responses are safe to repeat too: the server matches them to its own request, and drops a
/// second answer to it.
fn safe_to_repeat(ctx: &Ctx, frame: &Frame) -> bool {
    matches!(frame.kind, Kind::Response) || is_idempotent(frame.method()) || ctx.policy.retry_unsafe
}

fn later(ctx: &Ctx, resp: &reqwest::Response, sent: u32) -> Trouble {
    let header = resp.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok());
    Trouble::Later {
        status: resp.status(),
        wait: ctx.policy.retry_after(header, SystemTime::now(), sent - 1),
    }
}

/// A failed send: a connection that was never made sent nothing.
pub(crate) fn transport(e: reqwest::Error) -> Trouble {
    if e.is_connect() {
        Trouble::NotSent(format!("could not connect to the server: {}", describe(e)))
    } else {
        Trouble::MaybeRan(format!("the connection to the server failed: {}", describe(e)))
    }
}

/// The innermost cause of a transport error, without the URL (which may carry a query secret).
pub(crate) fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut cause: &dyn std::error::Error = &e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A 2xx answer to `frame`.
async fn answer(ctx: &Ctx, frame: &Frame, resp: reqwest::Response, session: &Snapshot) -> Result<Answer, Trouble> {
    let session_id = headers::visible(resp.headers(), &headers::SESSION_ID);
    if session_id.is_none() && resp.headers().contains_key(headers::SESSION_ID) {
        tracing::warn!("ignored a session id that is not visible ASCII");
    }
    let status = resp.status();
    let response = match headers::media_type(resp.headers()).as_str() {
        "text/event-stream" => sse::follow(ctx, resp, frame.id(), session).await?,
        "application/json" => json(ctx, resp, frame.id()).await?,
        _ if frame.id().is_none() => None,
        _ if status == StatusCode::ACCEPTED => {
            return Err(Trouble::Final(gave_up(
                code::INTERNAL_ERROR,
                "the server accepted the request without answering it (202)",
            )));
        }
        _ => {
            return Err(Trouble::Final(gave_up(
                code::INTERNAL_ERROR,
                format!("the server's answer ({status}) is neither JSON nor an event stream"),
            )));
        }
    };
    if frame.id().is_some() && response.is_none() {
        return Err(Trouble::Final(gave_up(
            code::INTERNAL_ERROR,
            "the server's answer did not hold the response to the request",
        )));
    }
    Ok(Answer { response, session_id })
}

/// A JSON answer: one message or an array of them. The response to `id` is kept back, every
/// other message written.
async fn json(ctx: &Ctx, resp: reqwest::Response, id: Option<&RawValue>) -> Result<Option<Vec<u8>>, Trouble> {
    let body = read_capped(resp, MAX_ANSWER, ctx.timeout).await?;
    let body = body.trim_ascii();
    if body.is_empty() {
        return Ok(None);
    }
    let messages: Vec<&RawValue> = match body.first() {
        Some(b'[') => serde_json::from_slice(body).unwrap_or_default(),
        _ => serde_json::from_slice(body).map(|m| vec![m]).unwrap_or_default(),
    };
    if messages.is_empty() {
        tracing::warn!("the server's JSON answer is not JSON-RPC; dropped");
    }
    let mut response = None;
    for message in messages {
        let Some(line) = frame::to_line(message.get().as_bytes()) else {
            continue;
        };
        if response.is_none() && id.is_some_and(|id| frame::answers(&line, id)) {
            response = Some(line);
        } else if frame::response_id(&line).is_some() {
            // A response belongs on its own request's stream: here it could answer a request the
            // host sent elsewhere (or never), ahead of the real answer.
            tracing::warn!("the server answered another request on this one's stream; dropped");
        } else {
            ctx.out.line(line).await;
        }
    }
    Ok(response)
}

/// The body, at most `max` bytes, within `within`.
async fn read_capped(mut resp: reqwest::Response, max: usize, within: Duration) -> Result<Vec<u8>, Trouble> {
    let read = async {
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            Trouble::MaybeRan(format!(
                "the connection broke while reading the answer: {}",
                describe(e)
            ))
        })? {
            if body.len() + chunk.len() > max {
                return Err(Trouble::Final(gave_up(
                    code::INTERNAL_ERROR,
                    format!("the server's answer is larger than {} MiB", max / (1024 * 1024)),
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(within, read)
        .await
        .unwrap_or_else(|_| Err(Trouble::MaybeRan("the server's answer did not arrive in time".into())))
}

/// A final refusal (400, 404 without a session, 405, 500…): the server's JSON-RPC error for the
/// request when it sent one, else an error naming the status.
async fn refused(resp: reqwest::Response, frame: &Frame, session: &Snapshot) -> Failure {
    let status = resp.status();
    let body = read_capped(resp, MAX_ERROR_BODY, Duration::from_secs(5))
        .await
        .ok()
        .and_then(|b| frame::to_line(&b));
    if let (Some(id), Some(line)) = (frame.id(), &body)
        && frame::answers(line, id)
        && frame::is_error(line)
    {
        return Failure::Answered(line.clone());
    }
    // A JSON-RPC error for no id (or another): its code and reason, under the request's id.
    if let Some((code, reason)) = body.as_deref().and_then(error_of) {
        return gave_up(code, format!("the server answered {status}: {reason}"));
    }
    let lost = status == StatusCode::NOT_FOUND && carried_session(frame, session);
    let code = match status {
        _ if lost => code::SESSION_NOT_FOUND,
        s if s.is_server_error() => code::UPSTREAM_UNAVAILABLE,
        _ => code::INTERNAL_ERROR,
    };
    let message = if lost {
        "the server does not know the session (404), even after a new one was started".to_string()
    } else if status.is_redirection() {
        format!(
            "the server answered {status}; redirects are not followed (the credentials would go along): use the URL it names"
        )
    } else {
        format!("the server answered {status}")
    };
    gave_up(code, message)
}

/// The `code` and `message` of a JSON-RPC error response (the message cut to 200 characters).
fn error_of(line: &[u8]) -> Option<(i64, String)> {
    #[derive(serde::Deserialize)]
    struct Error {
        code: i64,
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct Response {
        error: Error,
    }
    let r: Response = serde_json::from_slice(line).ok()?;
    Some((r.error.code, r.error.message.chars().take(200).collect()))
}

/// Whether `frame` went out with the session id (`initialize` never does: it starts one).
fn carried_session(frame: &Frame, session: &Snapshot) -> bool {
    session.id.is_some() && frame.method() != "initialize"
}
