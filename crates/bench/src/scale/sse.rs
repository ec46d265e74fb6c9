//! `sse`: N MCP sessions through the gateway, each with its standalone GET stream open
//! (`initialize`, `notifications/initialized`, then GET with `Accept: text/event-stream`), held
//! for a while. Reports the gateway's memory per session (RSS delta / sessions) and whether every
//! stream stayed open and kept delivering the upstream's heartbeat events.
//!
//! HTTP/1.1: one connection per session (the GET stream occupies it; the two POSTs go first on
//! the same connection). h2c: the sessions' requests multiplexed over a few connections (at most
//! 100 streams each; the gateway allows 200).

use super::ProcStat;
use super::http::{INITIALIZE, INITIALIZED, PROTOCOL, PROTOCOL_VERSION, SESSION, Target, connect, exchange};
use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde::Serialize;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

const BOTH: &str = "application/json, text/event-stream";
const SSE: &str = "text/event-stream";

pub struct Opts {
    pub url: String,
    pub headers: Vec<String>,
    pub sessions: usize,
    /// Sessions opened before the baseline is taken (one-time allocations out of the delta).
    pub warmup: usize,
    /// 0: HTTP/1.1, a connection per session. Otherwise h2c over this many connections.
    pub h2_conns: usize,
    pub concurrency: usize,
    pub settle: Duration,
    pub hold: Duration,
    pub gateway_pid: u32,
    pub upstream_pid: Option<u32>,
}

#[derive(Serialize)]
pub struct Report {
    pub protocol: &'static str,
    pub connections: usize,
    pub sessions_wanted: usize,
    pub warmup_sessions: usize,
    pub streams_opened: u64,
    pub setup_errors: u64,
    pub error_samples: Vec<String>,
    pub setup_seconds: f64,
    pub hold_seconds: f64,
    /// Streams still open at the end of the hold, and those that ended during it.
    pub streams_open_after_hold: u64,
    pub streams_closed: u64,
    /// Streams that received at least one heartbeat event during the hold.
    pub streams_alive: u64,
    pub events_received: u64,
    pub gateway_baseline: ProcStat,
    pub gateway_open: ProcStat,
    pub gateway_held: ProcStat,
    pub gateway_after_close: ProcStat,
    /// (held RSS − baseline RSS) / sessions measured.
    pub gateway_bytes_per_session: f64,
    pub gateway_rss_mib_held: f64,
    pub upstream_held: Option<ProcStat>,
    pub client_held: ProcStat,
}

#[derive(Default)]
struct Shared {
    opened: AtomicU64,
    closed: AtomicU64,
    errors: AtomicU64,
    events_total: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl Shared {
    fn error(&self, e: &anyhow::Error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if s.len() < 5 {
            s.push(format!("{e:#}"));
        }
    }
}

/// Counts complete SSE events (blank-line terminated) across chunk boundaries.
struct EventCounter {
    last_nl: bool,
}

impl EventCounter {
    fn feed(&mut self, chunk: &[u8]) -> u32 {
        let mut n = 0;
        for &b in chunk {
            if b == b'\n' {
                if self.last_nl {
                    n += 1;
                }
                self.last_nl = true;
            } else if b != b'\r' {
                self.last_nl = false;
            }
        }
        n
    }
}

pub async fn run(o: Opts) -> Result<Report> {
    ensure!(
        o.sessions >= 1 && o.warmup < o.sessions,
        "--sessions must exceed --warmup"
    );
    let target = Target::parse(&o.url, &o.headers)?;
    let shared = Arc::new(Shared::default());
    let counts: Arc<Vec<AtomicU32>> = Arc::new((0..o.sessions).map(|_| AtomicU32::new(0)).collect());
    let h2 = if o.h2_conns > 0 {
        let mut conns = Vec::with_capacity(o.h2_conns);
        for _ in 0..o.h2_conns {
            conns.push(h2_connect(&target).await?);
        }
        Some(Arc::new(conns))
    } else {
        None
    };
    let mut tasks = Vec::with_capacity(o.sessions);
    let sem = Arc::new(Semaphore::new(o.concurrency.max(1)));
    let started = Instant::now();
    let mut gateway_baseline = ProcStat::default();
    for (phase, range) in [(0, 0..o.warmup), (1, o.warmup..o.sessions)] {
        if phase == 1 {
            gateway_baseline = super::proc_stat(Some(o.gateway_pid))?;
        }
        let want = range.end as u64;
        for i in range {
            let permit = sem.clone().acquire_owned().await?;
            let (target, shared, counts, h2) = (target.clone(), shared.clone(), counts.clone(), h2.clone());
            tasks.push(tokio::spawn(async move {
                let stream = match &h2 {
                    None => tokio::time::timeout(Duration::from_secs(60), open_h1(&target))
                        .await
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("setup timed out")))
                        .map(Stream::H1),
                    Some(conns) => {
                        tokio::time::timeout(Duration::from_secs(60), open_h2(&target, &conns[i % conns.len()]))
                            .await
                            .unwrap_or_else(|_| Err(anyhow::anyhow!("setup timed out")))
                            .map(Stream::H2)
                    }
                };
                let stream = match stream {
                    Ok(s) => s,
                    Err(e) => {
                        shared.error(&e);
                        drop(permit);
                        return;
                    }
                };
                read_stream(stream, i, &shared, &counts, Some(permit)).await;
            }));
        }
        // Wait until every stream of the phase delivered its first event (or failed).
        let deadline = Instant::now() + Duration::from_secs(120);
        while shared.opened.load(Ordering::Relaxed) + shared.errors.load(Ordering::Relaxed) < want
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!(
            "sse: phase {phase}: {} streams open, {} errors ({:.1} s)",
            shared.opened.load(Ordering::Relaxed),
            shared.errors.load(Ordering::Relaxed),
            started.elapsed().as_secs_f64()
        );
    }
    let setup_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(o.settle).await;
    let gateway_open = super::proc_stat(Some(o.gateway_pid))?;
    let before: Vec<u32> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let hold_started = Instant::now();
    tokio::time::sleep(o.hold).await;
    let hold_seconds = hold_started.elapsed().as_secs_f64();
    let gateway_held = super::proc_stat(Some(o.gateway_pid))?;
    let upstream_held = o.upstream_pid.and_then(|p| super::proc_stat(Some(p)).ok());
    let client_held = super::proc_stat(None)?;
    let alive = counts
        .iter()
        .zip(&before)
        .filter(|(c, b)| c.load(Ordering::Relaxed) > **b)
        .count() as u64;
    let opened = shared.opened.load(Ordering::Relaxed);
    let closed = shared.closed.load(Ordering::Relaxed);
    for t in &tasks {
        t.abort();
    }
    drop(tasks);
    drop(h2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let gateway_after_close = super::proc_stat(Some(o.gateway_pid))?;
    let measured = (o.sessions - o.warmup) as f64;
    let samples = shared.samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(Report {
        protocol: if o.h2_conns > 0 { "h2c" } else { "http/1.1" },
        connections: if o.h2_conns > 0 { o.h2_conns } else { o.sessions },
        sessions_wanted: o.sessions,
        warmup_sessions: o.warmup,
        streams_opened: opened,
        setup_errors: shared.errors.load(Ordering::Relaxed),
        error_samples: samples,
        setup_seconds: super::round1(setup_seconds),
        hold_seconds: super::round1(hold_seconds),
        streams_open_after_hold: opened - closed,
        streams_closed: closed,
        streams_alive: alive,
        events_received: shared.events_total.load(Ordering::Relaxed),
        gateway_bytes_per_session: super::round1(
            (gateway_held.rss_kib.saturating_sub(gateway_baseline.rss_kib) * 1024) as f64 / measured,
        ),
        gateway_rss_mib_held: super::round1(gateway_held.rss_kib as f64 / 1024.0),
        gateway_baseline,
        gateway_open,
        gateway_held,
        gateway_after_close,
        upstream_held,
        client_held,
    })
}

enum Stream {
    H1(
        (
            hyper::client::conn::http1::SendRequest<http_body_util::Full<Bytes>>,
            hyper::body::Incoming,
        ),
    ),
    H2(h2::RecvStream),
}

/// Reads a stream until it ends; the first event marks it open (and frees the setup permit).
async fn read_stream(
    stream: Stream,
    i: usize,
    shared: &Shared,
    counts: &[AtomicU32],
    mut permit: Option<tokio::sync::OwnedSemaphorePermit>,
) {
    let mut counter = EventCounter { last_nl: false };
    let mut note = |chunk: &[u8]| {
        let n = counter.feed(chunk);
        if n > 0 {
            if counts[i].fetch_add(n, Ordering::Relaxed) == 0 {
                shared.opened.fetch_add(1, Ordering::Relaxed);
                permit = None;
            }
            shared.events_total.fetch_add(u64::from(n), Ordering::Relaxed);
        }
    };
    match stream {
        Stream::H1((_sender, mut body)) => {
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => {
                        if let Some(d) = f.data_ref() {
                            note(d);
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        Stream::H2(mut body) => {
            while let Some(chunk) = body.data().await {
                match chunk {
                    Ok(d) => {
                        let _ = body.flow_control().release_capacity(d.len());
                        note(&d);
                    }
                    Err(_) => break,
                }
            }
        }
    }
    if counts[i].load(Ordering::Relaxed) > 0 {
        shared.closed.fetch_add(1, Ordering::Relaxed);
    } else {
        shared.error(&anyhow::anyhow!("GET stream ended before its first event"));
    }
}

fn session_of(status: StatusCode, headers: &http::HeaderMap, body: &[u8]) -> Result<HeaderValue> {
    if status != StatusCode::OK {
        bail!(
            "initialize: HTTP {status} {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        );
    }
    headers.get(SESSION).cloned().context("initialize: no Mcp-Session-Id")
}

fn check_stream(status: StatusCode, headers: &http::HeaderMap) -> Result<()> {
    let ct = headers.get(CONTENT_TYPE).map(|v| v.as_bytes()).unwrap_or_default();
    if status != StatusCode::OK || !ct.starts_with(SSE.as_bytes()) {
        bail!("GET: HTTP {status}, content-type {:?}", String::from_utf8_lossy(ct));
    }
    Ok(())
}

async fn open_h1(
    t: &Target,
) -> Result<(
    hyper::client::conn::http1::SendRequest<http_body_util::Full<Bytes>>,
    hyper::body::Incoming,
)> {
    let mut s = connect(t).await?;
    let (status, headers, body) = exchange(
        &mut s,
        t.request(Method::POST, BOTH, None, Bytes::from_static(INITIALIZE.as_bytes()))?,
    )
    .await?;
    let session = session_of(status, &headers, &body)?;
    let (status, _, _) = exchange(
        &mut s,
        t.request(
            Method::POST,
            BOTH,
            Some(&session),
            Bytes::from_static(INITIALIZED.as_bytes()),
        )?,
    )
    .await?;
    ensure!(status.is_success(), "notifications/initialized: HTTP {status}");
    s.ready().await?;
    let resp = s
        .send_request(t.request(Method::GET, SSE, Some(&session), Bytes::new())?)
        .await?;
    check_stream(resp.status(), resp.headers())?;
    Ok((s, resp.into_body()))
}

async fn h2_connect(t: &Target) -> Result<h2::client::SendRequest<Bytes>> {
    let stream = tokio::net::TcpStream::connect(&t.connect)
        .await
        .with_context(|| format!("connect {}", t.connect))?;
    stream.set_nodelay(true)?;
    let (send, conn) = h2::client::handshake(stream).await.context("h2c handshake")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

fn h2_request(
    t: &Target,
    method: Method,
    accept: &'static str,
    session: Option<&HeaderValue>,
    has_body: bool,
) -> Result<Request<()>> {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("http://{}{}", t.authority, t.path))
        .header(ACCEPT, accept)
        .header(PROTOCOL, PROTOCOL_VERSION);
    if has_body {
        b = b.header(CONTENT_TYPE, "application/json");
    }
    if let Some(s) = session {
        b = b.header(SESSION, s.clone());
    }
    for (k, v) in &t.headers {
        b = b.header(k, v.clone());
    }
    Ok(b.body(())?)
}

async fn h2_send(
    conn: &h2::client::SendRequest<Bytes>,
    req: Request<()>,
    body: Option<Bytes>,
) -> Result<http::Response<h2::RecvStream>> {
    let mut send = conn.clone().ready().await?;
    let (resp, mut out) = send.send_request(req, body.is_none())?;
    if let Some(b) = body {
        out.send_data(b, true)?;
    }
    Ok(resp.await?)
}

async fn h2_read_all(mut body: h2::RecvStream) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

async fn open_h2(t: &Target, conn: &h2::client::SendRequest<Bytes>) -> Result<h2::RecvStream> {
    let resp = h2_send(
        conn,
        h2_request(t, Method::POST, BOTH, None, true)?,
        Some(Bytes::from_static(INITIALIZE.as_bytes())),
    )
    .await?;
    let (parts, body) = resp.into_parts();
    let body = h2_read_all(body).await?;
    let session = session_of(parts.status, &parts.headers, &body)?;
    let resp = h2_send(
        conn,
        h2_request(t, Method::POST, BOTH, Some(&session), true)?,
        Some(Bytes::from_static(INITIALIZED.as_bytes())),
    )
    .await?;
    let status = resp.status();
    h2_read_all(resp.into_body()).await?;
    ensure!(status.is_success(), "notifications/initialized: HTTP {status}");
    let resp = h2_send(conn, h2_request(t, Method::GET, SSE, Some(&session), false)?, None).await?;
    check_stream(resp.status(), resp.headers())?;
    Ok(resp.into_body())
}
