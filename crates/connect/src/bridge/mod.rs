//! The stdio ↔ Streamable HTTP bridge (`mcpgate connect URL`): an MCP host that speaks stdio
//! talks to a remote MCP server as if it were a local process.
//!
//! ```text
//! stdin ─ LineReader ─ classify ─┬─ refused line → JSON-RPC error ───────────────┐
//!                                └─ one task per message: exchange (POST, retry) ┤
//!   standalone GET stream (server-initiated messages) ───────────────────────────┤
//!                                                    writer (owns stdout) ◄──────┘
//! ```
//!
//! Messages are forwarded as the bytes read ([`frame`]); each goes out in its own task, so many
//! requests are in flight at once, and one writer owns stdout. [`send`] decides retries and
//! errors, [`sse`] reads and resumes event streams, [`session`] keeps the session and starts a
//! new one when the server lost it. Logs go through `tracing` only; stdout carries JSON-RPC only.
//!
//! Built by hand on reqwest rather than on rmcp's client transport, which re-serialises messages
//! (changing the bytes an HMAC signs) and decides protocol modes itself (`server/discover` first
//! puts it in sessionless mode) — see the research brief, §3.

mod frame;
mod headers;
mod send;
mod session;
mod sse;
mod writer;

use crate::Auth;
use crate::retry::Policy;
use frame::{Frame, Line, LineReader, Refusal};
use http::{Method, StatusCode};
use mcpgate_core::jsonrpc::error_body;
use send::{Failure, Via};
use session::Session;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::{JoinHandle, JoinSet};
use writer::Out;

/// How long messages in flight when stdin ends may take to be answered.
const DRAIN: Duration = Duration::from_secs(10);
/// How long the server may take to end the session.
const DELETE_WITHIN: Duration = Duration::from_secs(5);

/// What the bridge connects to, and how.
#[derive(Clone)]
pub struct Options {
    /// The server's MCP endpoint.
    pub url: String,
    pub auth: Arc<dyn Auth>,
    pub retry: Policy,
    /// Extra request timeout for one POST's headers (default 60 s); SSE bodies have no overall timeout.
    pub connect_timeout: Duration,
}

impl Options {
    /// `url` with `auth`, the default retry policy and a 60 s timeout.
    pub fn new(url: impl Into<String>, auth: Arc<dyn Auth>) -> Options {
        Options {
            url: url.into(),
            auth,
            retry: Policy::default(),
            connect_timeout: Duration::from_secs(60),
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("url", &self.url)
            .field("auth", &self.auth.describe())
            .field("retry", &self.retry)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Why the bridge stopped before stdin ended. A server that is down or refuses is not one: its
/// requests get JSON-RPC errors and the bridge goes on.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// Reading stdin or writing stdout failed.
    #[error("stdin or stdout failed: {0}")]
    Io(#[from] std::io::Error),
    /// The bridge cannot start (an unusable URL) or broke.
    #[error("{0}")]
    Fatal(String),
}

/// What every task of one bridge shares.
pub(crate) struct Ctx {
    pub http: reqwest::Client,
    pub url: reqwest::Url,
    /// The URL as given, which providers sign.
    pub url_text: String,
    pub auth: Arc<dyn Auth>,
    pub policy: Policy,
    pub timeout: Duration,
    pub session: Session,
    pub out: Out,
}

/// Pumps JSON-RPC lines from `input` to the server and the server's messages to `output`, until
/// `input` ends (then: wait for in-flight requests' answers up to a bound ~10 s, DELETE the session
/// (405/404 tolerated), return Ok).
pub async fn run<R, W>(opts: Options, input: R, output: W) -> Result<(), BridgeError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let url =
        reqwest::Url::parse(&opts.url).map_err(|e| BridgeError::Fatal(format!("the server URL is not valid: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(BridgeError::Fatal(
            "the server URL must start with https:// (or http://)".into(),
        ));
    }
    let http = reqwest::Client::builder()
        // A redirect is never followed: reqwest drops only Authorization and cookies on a move
        // to another host, so keys, HMAC signatures, the tenant and the body would go along.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(opts.connect_timeout)
        // SSE streams may stay silent for long; keepalive finds a peer that vanished.
        .tcp_keepalive(Duration::from_secs(30))
        .build()
        .map_err(|e| BridgeError::Fatal(format!("could not set up the HTTP client: {}", send::describe(e))))?;
    let (out, writer, mut stdout_failed) = writer::spawn(output);
    let ctx = Arc::new(Ctx {
        http,
        url,
        url_text: opts.url,
        auth: opts.auth,
        policy: opts.retry,
        timeout: opts.connect_timeout,
        session: Session::new(),
        out,
    });
    tracing::info!(credentials = %ctx.auth.describe(), "bridging stdio to the MCP server");
    let listener = tokio::spawn(sse::listen(ctx.clone()));

    let mut lines = LineReader::new(input, frame::MAX_LINE);
    let mut tasks = JoinSet::new();
    let read = loop {
        let line = tokio::select! {
            biased;
            _ = stdout_failed.changed() => break Ok(()),
            line = lines.next() => line,
        };
        match line {
            Err(e) => break Err(e),
            Ok(Line::Eof) => break Ok(()),
            Ok(Line::TooLong) => refuse(&mut tasks, &ctx, Refusal::TooLong),
            Ok(Line::Text(text)) if text.trim_ascii().is_empty() => {}
            Ok(Line::Text(text)) => match frame::classify(text) {
                Ok(frame) => {
                    tasks.spawn(deliver(ctx.clone(), frame));
                }
                Err(refusal) => refuse(&mut tasks, &ctx, refusal),
            },
        }
        while tasks.try_join_next().is_some() {}
    };

    finish(&ctx, tasks, listener).await;
    ctx.out.close().await;
    let written = writer
        .await
        .map_err(|e| BridgeError::Fatal(format!("the stdout writer failed: {e}")))?;
    read?;
    written?;
    Ok(())
}

/// A line that is not sent: logged, and answered with a JSON-RPC error (queued from a task, so
/// that a host not reading stdout cannot stall the reading of stdin).
fn refuse(tasks: &mut JoinSet<()>, ctx: &Arc<Ctx>, refusal: Refusal) {
    tracing::warn!("a line from the host was not sent: {}", refusal.reason());
    let ctx = ctx.clone();
    tasks.spawn(async move { ctx.out.line(refusal.reply()).await });
}

/// Sends one message from the host and writes what becomes of it.
async fn deliver(ctx: Arc<Ctx>, frame: Frame) {
    let result = send::exchange(&ctx, &frame, &Via::Shared).await;
    match (frame.id(), result) {
        (Some(_), Ok(answer)) => {
            if let Some(response) = answer.response {
                if frame.method() == "initialize" && !frame::is_error(&response) {
                    ctx.session.initialized(&frame.body, answer.session_id, &response).await;
                }
                ctx.out.line(response).await;
            }
        }
        (None, Ok(_)) => {
            if frame.method() == "notifications/initialized" {
                ctx.session.opened().await;
            }
        }
        (Some(_), Err(Failure::Answered(error))) => {
            tracing::warn!("{}: the server answered with an error", frame.describe());
            ctx.out.line(error).await;
        }
        (Some(id), Err(Failure::GaveUp { code, message })) => {
            tracing::warn!("{}: {message}", frame.describe());
            ctx.out.line(error_body(Some(id), code, &message, None)).await;
        }
        (None, Err(failure)) => {
            tracing::warn!("{} was not delivered: {}", frame.describe(), failure.message());
        }
    }
}

/// After stdin ended: lets the messages in flight finish (bounded), stops listening, and ends
/// the session.
async fn finish(ctx: &Ctx, mut tasks: JoinSet<()>, listener: JoinHandle<()>) {
    let drained = tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            "stdin ended; {} messages were still unanswered after {} s and are abandoned",
            tasks.len(),
            DRAIN.as_secs()
        );
        tasks.shutdown().await;
    }
    listener.abort();
    let _ = listener.await;
    end_session(ctx).await;
}

/// `DELETE` with the session id, as MCP asks of a client that leaves; 404 and 405 are fine.
async fn end_session(ctx: &Ctx) {
    let session = ctx.session.snapshot().await;
    if session.id.is_none() {
        return;
    }
    let auth = match ctx.auth.headers(&Method::DELETE, &ctx.url_text, b"").await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!("could not end the session: could not get credentials: {e}");
            return;
        }
    };
    let request = ctx
        .http
        .delete(ctx.url.clone())
        .headers(headers::delete(&auth, &session));
    match tokio::time::timeout(DELETE_WITHIN, request.send()).await {
        Ok(Ok(resp)) if resp.status().is_success() => tracing::debug!("ended the session"),
        Ok(Ok(resp)) if matches!(resp.status(), StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED) => {
            tracing::debug!("the server does not end sessions on request ({})", resp.status());
        }
        Ok(Ok(resp)) => tracing::warn!("the server answered {} to ending the session", resp.status()),
        Ok(Err(e)) => tracing::warn!("could not end the session: {}", send::describe(e)),
        Err(_) => tracing::warn!(
            "the server did not end the session within {} s",
            DELETE_WITHIN.as_secs()
        ),
    }
}
