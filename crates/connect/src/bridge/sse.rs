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
    let mut events = std::pin::pin!(SseStream::from_bytes_stream(bounded(resp.bytes_stream(), MAX_EVENT)));
    let mut delivered = false;
    loop {
        let event = match events.next().await {
            None => return (Ended::Closed, delivered),
            Some(Ok(event)) => event,
            Some(Err(sse_stream::Error::Body(e))) => {
                let why = match e.downcast::<BodyError<reqwest::Error>>() {
                    Ok(e) => match *e {
                        BodyError::Read(e) => describe(e),
                        too_large => too_large.to_string(),
                    },
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
        if frame::response_id(&line).is_some() {
            // A response belongs on its own request's stream (MCP: none on the standalone one).
            tracing::warn!("the server sent a response to another request on this stream; dropped");
            continue;
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
        // `retry: 0` does not make a loop of GETs.
        let wait = cursor.wait(ctx, failed - 1).max(ctx.policy.base);
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

/// The most one event may hold (its lines up to the blank line that ends it): what a JSON answer
/// may hold. The SSE parser buffers an event whole, so a server sending one endless `data:` line
/// would otherwise take all the memory there is.
const MAX_EVENT: usize = 64 * 1024 * 1024;

/// Why a stream's body ended early.
#[derive(Debug, thiserror::Error)]
enum BodyError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Read(E),
    #[error("an event of the server's stream is larger than {} MiB", MAX_EVENT / (1024 * 1024))]
    EventTooLarge,
}

/// `body`, ended with [`BodyError::EventTooLarge`] once the bytes since the last blank line (an
/// event's end: two line ends in a row, CRLF counting as one) pass `max`.
fn bounded<E>(
    body: impl futures_util::Stream<Item = Result<bytes::Bytes, E>>,
    max: usize,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, BodyError<E>>>
where
    E: std::error::Error + Send + Sync + 'static,
{
    #[derive(Default)]
    struct Count {
        since_event: usize,
        line_ends: u8,
        after_cr: bool,
        over: bool,
    }
    body.scan(Count::default(), move |count, chunk| {
        if count.over {
            return std::future::ready(None);
        }
        let out = match chunk {
            Err(e) => Err(BodyError::Read(e)),
            Ok(bytes) => {
                for &b in bytes.iter() {
                    match b {
                        b'\n' if count.after_cr => count.after_cr = false,
                        b'\n' | b'\r' => {
                            count.line_ends = count.line_ends.saturating_add(1);
                            count.after_cr = b == b'\r';
                        }
                        _ => {
                            count.line_ends = 0;
                            count.after_cr = false;
                        }
                    }
                    if count.line_ends >= 2 {
                        count.since_event = 0;
                    } else {
                        count.since_event += 1;
                    }
                }
                if count.since_event > max {
                    count.over = true;
                    Err(BodyError::EventTooLarge)
                } else {
                    Ok(bytes)
                }
            }
        };
        std::future::ready(Some(out))
    })
}

#[cfg(test)]
mod bound_tests {
    use super::*;
    use futures_util::stream;

    async fn through(chunks: &[&str], max: usize) -> (usize, bool) {
        let items: Vec<Result<bytes::Bytes, std::io::Error>> =
            chunks.iter().map(|c| Ok(bytes::Bytes::from(c.to_string()))).collect();
        let out: Vec<_> = bounded(stream::iter(items), max).collect().await;
        let passed = out.iter().filter(|r| r.is_ok()).count();
        let too_large = out.iter().any(|r| matches!(r, Err(BodyError::EventTooLarge)));
        (passed, too_large)
    }

    /// Events of any number pass while each stays under the bound (blank lines end them, with LF,
    /// CRLF or CR, even split across chunks); one event over it ends the stream.
    #[tokio::test]
    async fn one_event_is_bounded_not_the_stream() {
        let event = "data: 0123456789\n\n";
        let many: Vec<&str> = std::iter::repeat_n(event, 100).collect();
        assert_eq!(through(&many, 32).await, (100, false));
        assert_eq!(
            through(&["data: 0123456789\r\n", "\r\n", "data: 0123456789\r\r"], 32).await,
            (3, false)
        );
        assert_eq!(
            through(&["data: 0123456789", "0123456789", "0123456789", "0123"], 32).await,
            (2, true)
        );
        // A lone line end is not an event's end.
        assert_eq!(
            through(&["data: 01234\n", "data: 01234\n", "data: 0123456789"], 32).await,
            (2, true)
        );
    }
}
