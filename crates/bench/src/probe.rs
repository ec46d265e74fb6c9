//! `probe`: a correctness check before any load. Opens a few MCP sessions, then fires hundreds of
//! concurrent `tools/call echo` at once, several connections per session, with unique texts
//! (some with quotes, backslashes, newlines and non-ASCII) and a mix of number and string ids.
//! Every response must carry its own id and text; anything else is counted as `crossed`.
//!
//! By default ids are unique across the whole probe. With `--reuse-ids` each session uses the
//! same id sequence (legal: ids are scoped to a session), which catches a gateway that matches
//! responses to requests by id alone across sessions; texts stay unique, so a crossing shows.

use crate::client::{Conn, Outcome, Signer, Target, check_echo};
use anyhow::{Context, Result};
use bytes::Bytes;
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;

pub struct Opts {
    pub url: String,
    pub calls: usize,
    pub concurrency: usize,
    pub sessions: usize,
    pub reuse_ids: bool,
    pub headers: Vec<String>,
    /// Sign every request (`[auth.hmac]` client).
    pub signer: Option<Signer>,
    pub timeout: Duration,
}

#[derive(Serialize)]
pub struct Report {
    pub url: String,
    pub calls: usize,
    pub concurrency: usize,
    pub sessions: usize,
    pub reuse_ids: bool,
    pub ok: u64,
    pub errors: u64,
    pub crossed: u64,
    pub elapsed_ms: f64,
    /// The slowest call (ms), connection setup included: ~1000 ms means a SYN was dropped and
    /// retransmitted (an accept queue that overflowed under the burst of new connections).
    pub slowest_ms: f64,
    pub samples: Vec<String>,
}

fn id_json(n: usize) -> String {
    if n.is_multiple_of(2) {
        (n + 1000).to_string()
    } else {
        format!("\"probe-{n}\"")
    }
}

fn text_for(g: usize) -> String {
    let pad = "·".repeat(g * 37 % 64);
    match g % 3 {
        0 => format!("probe {g}"),
        1 => format!("probe {g} \"quoted\" back\\slash\nnew line é ✓ {pad}"),
        _ => format!("probe {g} {pad}"),
    }
}

pub async fn run(o: Opts) -> Result<Report> {
    // Signed, a body may be sent only once: texts carry this run's nonce, or a second probe
    // within the same second (same bodies, same timestamps) would be refused as replays.
    let tag = if o.signer.is_some() {
        format!(" [{}]", crate::client::nonce())
    } else {
        String::new()
    };
    let target = Target::parse(&o.url, &o.headers, o.signer)?;
    let mut owners = Vec::with_capacity(o.sessions);
    for s in 0..o.sessions {
        let mut c = Conn::new(target.clone());
        tokio::time::timeout(o.timeout, c.initialize(&format!("mcpgate-bench-probe-{s}")))
            .await
            .context("initialize timed out")?
            .with_context(|| format!("probe session {s}"))?;
        owners.push(c);
    }
    let per = o.calls.div_ceil(o.concurrency);
    let barrier = Arc::new(Barrier::new(o.concurrency));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(o.concurrency);
    for k in 0..o.concurrency {
        let mut conn = Conn::new(target.clone());
        conn.join(&owners[k % o.sessions]);
        let n_calls = per.min(o.calls.saturating_sub(k * per));
        let barrier = barrier.clone();
        let tag = tag.clone();
        let (timeout, reuse, sessions) = (o.timeout, o.reuse_ids, o.sessions);
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors, mut crossed, mut samples) = (0u64, 0u64, 0u64, Vec::new());
            let mut slowest = Duration::ZERO;
            barrier.wait().await;
            for j in 0..n_calls {
                let t = Instant::now();
                let g = k * per + j;
                let local = if reuse { (k / sessions) * per + j } else { g };
                let id = id_json(local);
                let text = text_for(g) + &tag;
                let body = format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":{}}}}}}}"#,
                    serde_json::Value::from(text.as_str())
                );
                let outcome = match tokio::time::timeout(timeout, conn.post(Bytes::from(body))).await {
                    Ok(Ok(reply)) => check_echo(&reply, &id, &text),
                    Ok(Err(e)) => Outcome::Error(format!("{e:#}")),
                    Err(_) => {
                        conn.reset();
                        Outcome::Error(format!("timeout after {timeout:?}"))
                    }
                };
                match outcome {
                    Outcome::Ok => ok += 1,
                    Outcome::Crossed(m) => {
                        crossed += 1;
                        samples.push(format!("crossed: {m}"));
                    }
                    Outcome::Error(m) => {
                        errors += 1;
                        samples.push(m);
                    }
                }
                samples.truncate(3);
                slowest = slowest.max(t.elapsed());
            }
            (ok, errors, crossed, samples, slowest)
        }));
    }
    let mut r = Report {
        url: o.url,
        calls: o.calls,
        concurrency: o.concurrency,
        sessions: o.sessions,
        reuse_ids: o.reuse_ids,
        ok: 0,
        errors: 0,
        crossed: 0,
        elapsed_ms: 0.0,
        slowest_ms: 0.0,
        samples: Vec::new(),
    };
    let mut slowest = Duration::ZERO;
    for t in tasks {
        let (ok, errors, crossed, samples, slow) = t.await?;
        slowest = slowest.max(slow);
        r.ok += ok;
        r.errors += errors;
        r.crossed += crossed;
        r.samples.extend(samples);
    }
    r.samples.truncate(5);
    r.elapsed_ms = crate::stats::round1(started.elapsed().as_secs_f64() * 1000.0);
    r.slowest_ms = crate::stats::round1(slowest.as_secs_f64() * 1000.0);
    for mut c in owners {
        c.close_session().await;
    }
    Ok(r)
}

pub fn text(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "probe {} — {} calls, {} concurrent, {} sessions{}: ok {}  errors {}  crossed {}  ({} ms, slowest call {} ms)",
        r.url,
        r.calls,
        r.concurrency,
        r.sessions,
        if r.reuse_ids {
            ", ids reused across sessions"
        } else {
            ""
        },
        r.ok,
        r.errors,
        r.crossed,
        r.elapsed_ms,
        r.slowest_ms
    );
    for e in &r.samples {
        let _ = writeln!(s, "sample: {e}");
    }
    s
}

/// `status`: sends one `initialize` `repeat` times, byte for byte the same (a signed one keeps
/// its timestamp and signature, so the second is a replay), and returns the HTTP statuses. The
/// rig's auth targets check with it that a bad credential gets 401 before measuring anything.
pub async fn statuses(url: &str, headers: &[String], signer: Option<Signer>, repeat: usize) -> Result<Vec<u16>> {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{}","capabilities":{{}},"clientInfo":{{"name":"mcpgate-bench-status-{}","version":"0.1.0"}}}}}}"#,
        crate::client::PROTOCOL_VERSION,
        crate::client::unix_now(),
    );
    let mut headers = headers.to_vec();
    if let Some(s) = signer {
        for (k, v) in s.headers(crate::client::unix_now(), body.as_bytes()) {
            headers.push(format!("{k}: {}", v.to_str()?));
        }
    }
    let target = Target::parse(url, &headers, None)?;
    let mut conn = Conn::new(target);
    let mut out = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let reply = tokio::time::timeout(Duration::from_secs(10), conn.post(Bytes::from(body.clone())))
            .await
            .context("timed out")??;
        out.push(reply.status.as_u16());
    }
    Ok(out)
}
