//! The supervisor of one session's child process: spawns it, pumps messages to its stdin, hands
//! every stdout line to the session, logs stderr, and when the child dies fails the calls in
//! flight with a clear error and starts it again with exponential backoff.

use super::session::{Session, short};
use crate::config::StdioConfig;
use crate::metrics::Metrics;
use bytes::Bytes;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

/// A line longer than this from the child is dropped (and logged) rather than buffered forever.
const MAX_LINE: usize = 64 * 1024 * 1024;
const BACKOFF_START: Duration = Duration::from_millis(100);
/// A child that lived this long is considered healthy: the backoff starts over.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);

pub fn spawn(cfg: &StdioConfig) -> std::io::Result<Child> {
    let mut cmd = Command::new(&cfg.program);
    // The gateway's environment holds its secrets: the child gets only what it is allowed.
    if !cfg.inherit_env.iter().any(|v| v == "*") {
        cmd.env_clear();
        for name in &cfg.inherit_env {
            if let Some(value) = std::env::var_os(name) {
                cmd.env(name, value);
            }
        }
    }
    cmd.args(&cfg.args)
        .envs(&cfg.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = &cfg.cwd {
        cmd.current_dir(dir);
    }
    cmd.spawn()
}

/// Runs until the session closes. `started` reports whether the first spawn worked.
pub async fn supervise(
    session: Arc<Session>,
    cfg: Arc<StdioConfig>,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    metrics: Arc<Metrics>,
    started: oneshot::Sender<Result<(), String>>,
) {
    let mut started = Some(started);
    let mut backoff = BACKOFF_START;
    loop {
        let mut child = match spawn(&cfg) {
            Ok(c) => c,
            Err(e) => {
                let why = format!("cannot start {:?}: {e}", cfg.program);
                if let Some(tx) = started.take() {
                    let _ = tx.send(Err(why));
                    return;
                }
                tracing::error!(session = %short(&session.id), "{why}; retrying in {backoff:?}");
                if sleep_or_closed(&session, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(cfg.restart_backoff_max);
                continue;
            }
        };
        let born = Instant::now();
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return;
        };
        let reader = tokio::spawn(read_stdout(session.clone(), stdout));
        tokio::spawn(log_stderr(session.id.clone(), stderr));
        match started.take() {
            Some(tx) => {
                let _ = tx.send(Ok(()));
            }
            None => {
                if let Err(e) = session.replay_initialize(&mut stdin).await {
                    tracing::warn!(session = %short(&session.id), "restarted upstream: {e}");
                }
            }
        }

        let exit = loop {
            tokio::select! {
                _ = session.closed.cancelled() => {
                    let _ = child.kill().await;
                    session.fail_all("the session was closed");
                    return;
                }
                msg = rx.recv() => match msg {
                    Some(line) => {
                        // A failed write means the child is going away; `wait` below reports it.
                        let _ = stdin.write_all(&line).await;
                    }
                    None => {
                        let _ = child.kill().await;
                        return;
                    }
                },
                status = child.wait() => break status,
            }
        };
        // Let the reader deliver what the child wrote before it died.
        let _ = tokio::time::timeout(Duration::from_millis(500), reader).await;
        let status = exit.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
        metrics.upstream_errors.inc();
        tracing::warn!(session = %short(&session.id), %status, "upstream process exited; restarting");
        session
            .fail_all("the upstream MCP server process exited during this call; it is being restarted, retry the call");
        // Messages queued for the dead child are dropped: their calls were just failed.
        while rx.try_recv().is_ok() {}
        if born.elapsed() >= HEALTHY_AFTER {
            backoff = BACKOFF_START;
        }
        if sleep_or_closed(&session, backoff).await {
            return;
        }
        backoff = (backoff * 2).min(cfg.restart_backoff_max);
        metrics.upstream_restarts.inc();
    }
}

/// Sleeps for `d`; true when the session closed meanwhile.
async fn sleep_or_closed(session: &Session, d: Duration) -> bool {
    tokio::select! {
        _ = session.closed.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

async fn read_stdout(session: Arc<Session>, stdout: tokio::process::ChildStdout) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        match (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') && line.len() >= MAX_LINE {
            tracing::warn!(session = %short(&session.id), "upstream wrote a line over {MAX_LINE} bytes; dropped");
            // Skip the rest of the oversized line.
            let mut rest = Vec::new();
            if reader.read_until(b'\n', &mut rest).await.is_err() {
                return;
            }
            continue;
        }
        let trimmed = line.trim_ascii();
        if !trimmed.is_empty() {
            session.on_child_line(trimmed);
        }
    }
}

async fn log_stderr(session_id: String, stderr: tokio::process::ChildStderr) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(target: "mcpgate::upstream::stderr", session = %short(&session_id), "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `sh -c 'echo …'` started as a stdio upstream sees of `var` and of `PATH`.
    async fn seen(inherit_env: Vec<String>, var: &str) -> String {
        let cfg = StdioConfig {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                format!("echo \"${{{var}:-unset}}|${{PATH:+path}}|$GIVEN\""),
            ],
            env: [("GIVEN".to_string(), "given".to_string())].into(),
            inherit_env,
            cwd: None,
            request_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
            max_sessions: 1,
            restart_backoff_max: Duration::from_secs(1),
        };
        let out = spawn(&cfg).unwrap().wait_with_output().await.unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A stdio child inherits only the allowed variables (cargo sets `CARGO_MANIFEST_DIR` for
    /// this test process: it stands in for a gateway secret such as `MCPGATE_STORE_URL`).
    #[tokio::test]
    async fn a_stdio_child_inherits_only_what_it_is_allowed() {
        let var = "CARGO_MANIFEST_DIR";
        let Some(value) = std::env::var(var).ok() else {
            eprintln!("{var} is not set: nothing to check");
            return;
        };
        let defaults = crate::config::DEFAULT_INHERITED_ENV
            .iter()
            .map(|v| v.to_string())
            .collect();
        assert_eq!(seen(defaults, var).await, "unset|path|given");
        // (sh sets a PATH of its own when it inherits none.)
        let named = seen(vec![var.into()], var).await;
        assert!(
            named.starts_with(&format!("{value}|")) && named.ends_with("|given"),
            "{named}"
        );
        assert_eq!(seen(vec!["*".into()], var).await, format!("{value}|path|given"));
    }
}
