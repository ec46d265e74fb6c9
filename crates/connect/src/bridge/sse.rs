//! Server-sent events: the stream a POST may be answered with, its resumption after a drop, and
//! the standalone GET stream for messages the server starts itself.
//!
//! Event ids are per stream, so each stream keeps its own [`Cursor`]. A stream that ends before
//! the response it was opened for is resumed with `GET` + `Last-Event-ID` (MCP resumes every
//! stream by GET), after the server's `retry:` or the backoff; one without an event id cannot
//! be resumed, and is handled as a connection broken after sending.

use super::frame::{self, visible_ascii};
use super::send::{Failure, Trouble, describe, transport};
use super::session::Snapshot;
use super::{Ctx, headers};
use crate::retry::backoff;
use futures_util::StreamExt;
use http::{Method, StatusCode};
use mcpgate_core::jsonrpc::code;
use serde_json::value::RawValue;
use sse_stream::SseStream;
use std::sync::Arc;
use std::time::Duration;

/// Where a stream stands: its last event id and the reconnection delay it asked for.
#[derive(Debug, Default)]
pub(crate) struct Cursor {
    last_id: Option<String>,
    retry: Option<Duration>,
}

impl Cursor {
    /// The wait before reconnecting: the stream's `retry:` (which MCP says to respect, capped
    /// like `Retry-After`), else the backoff.
    fn wait(&self, ctx: &Ctx, attempt: u32) -> Duration {
        match self.retry {
            Some(retry) => retry.min(ctx.policy.max_retry_after),
            None => backoff(&ctx.policy, attempt),
        }
    }
}

/// How reading a stream ended.
enum Ended {
    /// The response awaited.
    Answered(Vec<u8>),
    /// The server ended the stream.
    Closed,
    /// The connection broke.
    Broken(String),
}

/// Reads one stream, writing every message on stdout except the response to `awaited`, which
/// ends the reading. The flag says whether any message came (rather than only priming events).
async fn read(ctx: &Ctx, resp: reqwest::Response, awaited: Option<&RawValue>, cursor: &mut Cursor) -> (Ended, bool) {
    let mut events = std::pin::pin!(SseStream::from_bytes_stream(resp.bytes_stream()));
    let mut delivered = false;
    loop {
        let event = match events.next().await {
            None => return (Ended::Closed, delivered),
            Some(Ok(event)) => event,
            Some(Err(sse_stream::Error::Body(e))) => {
                let why = match e.downcast::<reqwest::Error>() {
                    Ok(e) => describe(*e),
                    Err(e) => e.to_string(),
                };
                return (Ended::Broken(format!("the stream broke: {why}")), delivered);
            }
            Some(Err(e)) => {
                // The parser drops the rest of the chunk; a resumption replays what was lost.
                tracing::warn!("skipped a malformed line in the server's event stream: {e}");
                continue;
            }
        };
        if let Some(id) = event.id {
            // An empty id resets it (WHATWG); an id that cannot be a header value cannot be sent.
            cursor.last_id = Some(id).filter(|id| visible_ascii(id));
        }
        if let Some(ms) = event.retry {
            cursor.retry = Some(Duration::from_millis(ms));
        }
        if !matches!(event.event.as_deref(), None | Some("message")) {
            continue;
        }
        let Some(data) = event.data.filter(|d| !d.trim().is_empty()) else {
            continue;
        };
        let Some(line) = frame::to_line(data.as_bytes()) else {
            tracing::warn!("the server sent an event whose data is not JSON; dropped");
            continue;
        };
        delivered = true;
        if awaited.is_some_and(|id| frame::answers(&line, id)) {
            return (Ended::Answered(line), true);
        }
        ctx.out.line(line).await;
    }
}

/// Follows the event stream answering a message until the response to `awaited` arrives,
/// resuming it when it drops. Without `awaited` (a notification's stream), reads it to its end.
pub(crate) async fn follow(
    ctx: &Ctx,
    resp: reqwest::Response,
    awaited: Option<&RawValue>,
    session: &Snapshot,
) -> Result<Option<Vec<u8>>, Trouble> {
    let mut cursor = Cursor::default();
    let (mut ended, _) = read(ctx, resp, awaited, &mut cursor).await;
    let Some(id) = awaited else {
        return Ok(None);
    };
    let mut failed = 0u32;
    loop {
        let why = match ended {
            Ended::Answered(line) => return Ok(Some(line)),
            Ended::Closed => "the server ended the stream before answering".to_string(),
            Ended::Broken(why) => why,
        };
        let Some(last) = cursor.last_id.clone() else {
            return Err(Trouble::MaybeRan(format!(
                "{why} (and gave no event id to resume from)"
            )));
        };
        failed += 1;
        if failed >= ctx.policy.max_attempts {
            return Err(Trouble::Final(Failure::GaveUp {
                code: code::UPSTREAM_UNAVAILABLE,
                message: format!("{why}; gave up resuming it after {failed} attempts"),
            }));
        }
        let wait = cursor.wait(ctx, failed - 1);
        tracing::info!("{why}; resuming it after event {last:?} in {} ms", wait.as_millis());
        tokio::time::sleep(wait).await;
        ended = match open(ctx, session, Some(&last)).await {
            Opened::Stream(resp) => {
                let (ended, delivered) = read(ctx, resp, Some(id), &mut cursor).await;
                if delivered {
                    // Progress: the stream lives; only drops in a row count.
                    failed = 0;
                }
                ended
            }
            Opened::Failed(why) => Ended::Broken(why),
            Opened::Refused(status) | Opened::Gone(status) => {
                return Err(Trouble::Final(Failure::GaveUp {
                    code: code::UPSTREAM_UNAVAILABLE,
                    message: format!("{why}, and the server refused to resume it ({status})"),
                }));
            }
        };
    }
}

/// What a GET for a stream got.
enum Opened {
    Stream(reqwest::Response),
    /// Worth trying again later (a broken connection, 429, 5xx).
    Failed(String),
    /// The session is gone (404).
    Gone(StatusCode),
    /// Not to be asked again (405, another 4xx, an answer that is not a stream).
    Refused(StatusCode),
}

/// `GET` for server messages in `session`, after `last_id` when resuming.
async fn open(ctx: &Ctx, session: &Snapshot, last_id: Option<&str>) -> Opened {
    let mut reauthed = false;
    loop {
        let auth = match ctx.auth.headers(&Method::GET, &ctx.url_text, b"").await {
            Ok(h) => h,
            Err(e) => return Opened::Failed(format!("could not get credentials: {e}")),
        };
        let request = ctx
            .http
            .get(ctx.url.clone())
            .headers(headers::get(&auth, session, last_id));
        let resp = match tokio::time::timeout(ctx.timeout, request.send()).await {
            Err(_) => return Opened::Failed("the server did not answer in time".into()),
            Ok(Err(e)) => {
                return Opened::Failed(match transport(e) {
                    Trouble::NotSent(why) | Trouble::MaybeRan(why) => why,
                    _ => "the connection failed".into(),
                });
            }
            Ok(Ok(resp)) => resp,
        };
        let status = resp.status();
        return match status {
            s if s.is_success() && headers::media_type(resp.headers()) == "text/event-stream" => Opened::Stream(resp),
            s if s.is_success() => Opened::Refused(s),
            StatusCode::NOT_FOUND => Opened::Gone(status),
            StatusCode::UNAUTHORIZED => {
                let challenge = resp
                    .headers()
                    .get(http::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok());
                if !reauthed && ctx.auth.unauthorized(&auth, challenge).await {
                    reauthed = true;
                    continue;
                }
                Opened::Refused(status)
            }
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
                Opened::Failed(format!("the server answered {status}"))
            }
            s if s.is_server_error() => Opened::Failed(format!("the server answered {status}")),
            _ => Opened::Refused(status),
        };
    }
}

/// The standalone stream: once the host's session is initialized, listens for messages the
/// server starts itself (requests, notifications), reconnecting with `Last-Event-ID` when it
/// drops, and again on each new session. Stops for good when the server has none (405).
pub(crate) async fn listen(ctx: Arc<Ctx>) {
    let mut open_session = ctx.session.subscribe();
    let mut epoch = None;
    let mut cursor = Cursor::default();
    let mut failed = 0u32;
    loop {
        let Some(session) = open_session.borrow_and_update().clone() else {
            if open_session.changed().await.is_err() {
                return;
            }
            continue;
        };
        if epoch != Some(session.epoch) {
            epoch = Some(session.epoch);
            cursor = Cursor::default();
            failed = 0;
        }
        match open(&ctx, &session, cursor.last_id.as_deref()).await {
            Opened::Stream(resp) => {
                tracing::debug!("listening for the server's own messages");
                let (ended, delivered) = read(&ctx, resp, None, &mut cursor).await;
                if let Ended::Broken(why) = ended {
                    tracing::debug!("the server's stream broke: {why}");
                }
                failed = if delivered { 0 } else { failed + 1 };
            }
            Opened::Failed(why) => {
                tracing::debug!("could not open the server's stream: {why}");
                failed += 1;
            }
            Opened::Gone(_) => {
                // A message will find the session lost too and start a new one; listen on that.
                tracing::debug!("the server's stream: the session is gone (404)");
                if open_session.changed().await.is_err() {
                    return;
                }
                continue;
            }
            Opened::Refused(status) => {
                tracing::info!("the server offers no stream of its own messages ({status}); not asking again");
                return;
            }
        }
        let wait = cursor.wait(&ctx, failed).max(ctx.policy.base);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            changed = open_session.changed() => if changed.is_err() { return },
        }
    }
}
