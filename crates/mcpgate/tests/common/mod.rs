//! Helpers shared by this package's integration tests. [`gateway_bin`] is the one that cannot live
//! in mcpgate-testkit: `env!("CARGO_BIN_EXE_mcpgate")` is defined only while compiling this
//! package's integration tests, so the testkit's process helpers take the path from here. The
//! load and the kill are what the crash tests (`audit_kill`, `replica_kill`) do to a real gateway.

// Every test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use mcpgate_testkit::process::new_key;
use mcpgate_testkit::raw::{ACCEPT_BOTH, Raw};
use mcpgate_testkit::time::{STEP, within};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::task::JoinHandle;

pub fn gateway_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_mcpgate"))
}

/// A response a client received.
pub struct Received {
    /// Its request id (sent as, and echoed in, `X-Request-Id`).
    pub id: String,
    /// When the request was sent.
    pub sent_at: Instant,
    /// When its status line and headers arrived: by then the gateway had released it.
    pub at: Instant,
    pub status: u16,
    /// Sent with a made-up key, so the answer is the gateway's own refusal.
    pub bad_key: bool,
}

/// What one client did until it stopped.
pub struct ClientRun {
    pub received: Vec<Received>,
    /// The id of every request sent, answered or not.
    pub sent: Vec<String>,
    /// The transport failure that stopped the client early, and when it happened.
    pub failed: Option<(Instant, String)>,
}

/// Starts one client per session of the gateway `raw` points at: each calls the `echo` tool back
/// to back until `stop`, request ids `{prefix}{client}-{n}`, every `bad_key_every`-th request
/// with a made-up key (so refusals, answered by the gateway itself, are under the same rule as
/// calls that went upstream). A client stops at its first transport failure.
pub fn spawn_load(
    raw: &Raw,
    sessions: Vec<String>,
    prefix: &str,
    bad_key_every: u64,
    stop: Arc<AtomicBool>,
) -> Vec<JoinHandle<ClientRun>> {
    let key = raw.key.clone().expect("a key for the load");
    sessions
        .into_iter()
        .enumerate()
        .map(|(c, session)| {
            let raw = raw.clone();
            let key = key.clone();
            let stop = stop.clone();
            let prefix = prefix.to_string();
            tokio::spawn(async move {
                let mut run = ClientRun {
                    received: Vec::new(),
                    sent: Vec::new(),
                    failed: None,
                };
                let mut n: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let id = format!("{prefix}{c}-{n}");
                    let msg = json!({
                        "jsonrpc": "2.0", "id": n, "method": "tools/call",
                        "params": { "name": "echo", "arguments": { "text": id } }
                    });
                    let bad_key = n.is_multiple_of(bad_key_every);
                    let rb = raw
                        .http
                        .post(&raw.url)
                        .header("content-type", "application/json")
                        .header("accept", ACCEPT_BOTH)
                        .header("x-api-key", if bad_key { new_key() } else { key.clone() })
                        .header("mcp-session-id", &session)
                        .header("mcp-protocol-version", "2025-11-25")
                        .header("x-request-id", &id)
                        .body(msg.to_string());
                    run.sent.push(id.clone());
                    let sent_at = Instant::now();
                    // The response counts as received once its status line and headers are here.
                    let resp = match rb.send().await {
                        Ok(r) => r,
                        // Expected once the gateway is killed; the callers check when it happened.
                        Err(e) => {
                            run.failed = Some((Instant::now(), e.to_string()));
                            break;
                        }
                    };
                    let at = Instant::now();
                    let echoed = resp.headers().get("x-request-id").and_then(|v| v.to_str().ok());
                    assert_eq!(echoed, Some(id.as_str()), "the gateway echoes the request id");
                    let status = resp.status().as_u16();
                    run.received.push(Received {
                        id,
                        sent_at,
                        at,
                        status,
                        bad_key,
                    });
                    // A body cut short by the kill is fine: the response was already released.
                    let _ = resp.bytes().await;
                }
                run
            })
        })
        .collect()
}

/// Waits for the clients [`spawn_load`] started (each must stop within [`STEP`]).
pub async fn join(clients: Vec<JoinHandle<ClientRun>>, what: &str) -> Vec<ClientRun> {
    let mut runs = Vec::new();
    for client in clients {
        runs.push(within(STEP, what, client).await.expect("client task"));
    }
    runs
}

/// Sends SIGKILL to `pid`. Returns the instant taken just before the signal was sent: anything
/// later happened after the kill began.
pub fn kill_9(pid: u32) -> Instant {
    let pid = pid.to_string();
    let killed_at = Instant::now();
    let killed = Command::new("kill")
        .args(["-KILL", &pid])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -KILL {pid} failed");
    killed_at
}
