//! Real processes on loopback: a child process owned by a guard that stops it on drop and keeps
//! its stderr ([`Proc`]), the example upstream binary (built on first use), and a running
//! `mcpgate serve` with its upstream ([`Stack`]). The gateway binary's path is a parameter: only
//! the `mcpgate` package's own tests know it (`env!("CARGO_BIN_EXE_mcpgate")`).

use crate::client::{Client, SpyHttp, TestClient, connect};
use crate::raw::{Raw, raw_client};
use crate::time::{START, STEP, poll_until, within};
use serde_json::json;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A short random hex string, so concurrent tests and calls never share payloads.
pub fn nonce() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:016x}", h.finish())
}

// ---- processes --------------------------------------------------------------------------------

/// A child process, stopped on drop (SIGTERM, then SIGKILL), with its stderr captured.
pub struct Proc {
    pub name: String,
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Proc {
    pub fn spawn(name: &str, cmd: Command) -> Proc {
        Proc::spawn_with_env(name, cmd, &[])
    }

    /// Spawns with the test process's `MCP_*`/`MCPGATE_*` variables removed and `env` set.
    pub fn spawn_with_env(name: &str, mut cmd: Command, env: &[(&str, &str)]) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .env_remove("RUST_BACKTRACE");
        without_mcp_env(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr piped");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                s.push_str(&line);
                s.push('\n');
            }
        });
        Proc {
            name: name.to_string(),
            child,
            stderr,
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until stderr contains `needle` and returns the first line containing it.
    pub async fn wait_for_line(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(line) = self.stderr().lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            if !self.is_running() {
                // Give the reader thread a moment to collect the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "{} exited before logging {needle:?}; stderr:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} did not log {needle:?} within {limit:?}; stderr:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The `http://ADDR/mcp` URL a server logged as `listening on http://ADDR/mcp`.
    pub async fn wait_for_listen_url(&mut self) -> String {
        let line = self.wait_for_line("listening on http://", START).await;
        parse_listen_url(&line).unwrap_or_else(|| panic!("no URL in {line:?}"))
    }

    /// Stops the process: SIGTERM first (so the gateway stops its own children), SIGKILL if it
    /// has not exited within `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if !self.is_running() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
        if std::thread::panicking() {
            let log = self.stderr();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("---- last stderr lines of {} ----", self.name);
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// Removes the test process's `MCP_*`/`MCPGATE_*` variables from `cmd`'s environment: a
/// developer's own settings must not change what a test starts.
pub fn without_mcp_env(cmd: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars_os() {
        let k_str = k.to_string_lossy();
        if k_str.starts_with("MCPGATE_") || k_str.starts_with("MCP_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// The example upstream (`mcpgate-example-server`), from the target directory and profile this
/// test binary was built in (`target/<profile>/deps/<test>`). Cargo does not build another
/// package's binaries for a test, so it is built here once per test binary (a no-op when it is
/// fresh; this also keeps a stale binary from being tested). `MCPGATE_EXAMPLE_BIN` overrides the
/// path and skips the build.
pub fn example_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("MCPGATE_EXAMPLE_BIN") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("profile dir");
        let bin = profile_dir.join("mcpgate-example-server");
        let target_dir = profile_dir.parent().expect("target dir");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
        let out = Command::new(cargo)
            .args(["build", "--quiet", "-p", "mcpgate-demo", "--bin"])
            .arg("mcpgate-example-server")
            .arg("--profile")
            .arg(profile)
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(target_dir)
            .stdout(Stdio::null())
            .output()
            .expect("run cargo build for mcpgate-example-server");
        assert!(
            out.status.success(),
            "cargo build -p mcpgate-demo --bin mcpgate-example-server failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(bin.is_file(), "{} missing after build", bin.display());
        bin
    })
}

/// `http://127.0.0.1:1234/mcp` from a log line containing `listening on http://127.0.0.1:1234/mcp`.
pub fn parse_listen_url(line: &str) -> Option<String> {
    let start = line.find("listening on http://")? + "listening on ".len();
    let rest = &line[start..];
    let end = rest.find("/mcp")? + "/mcp".len();
    Some(rest[..end].to_string())
}

// ---- gateway and upstreams ----------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--upstream-cmd`: the gateway runs one example server per session over stdio.
    Stdio,
    /// `--upstream-url`: the gateway forwards to an example server in HTTP mode.
    Http,
}

/// A running gateway (and, for [`Kind::Http`], the upstream it forwards to).
pub struct Stack {
    pub gw: Proc,
    /// An admin API key the gateway accepts (from `MCP_API_KEYS`).
    pub key: String,
    /// `http://127.0.0.1:PORT/mcp`
    pub url: String,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub addr: SocketAddr,
    pub kind: Kind,
    pub upstream: Option<Proc>,
    pub upstream_url: Option<String>,
    /// The gateway's working directory and store; removed on drop (after the processes).
    pub dir: tempfile::TempDir,
}

/// A generated-format key (`mcp_<keyId>_<secret>`) with a long random secret.
pub fn new_key() -> String {
    format!("mcp_e2e{}_{}{}{}{}", nonce(), nonce(), nonce(), nonce(), nonce())
}

impl Stack {
    /// The `gateway` binary in front of an example server, over stdio or HTTP.
    pub async fn new(gateway: &Path, kind: Kind) -> Stack {
        match kind {
            Kind::Stdio => {
                let cmd = format!("{} --stdio --profile demo", shell_quote(example_bin()));
                Stack::gateway(gateway, kind, &["--upstream-cmd", &cmd], None).await
            }
            Kind::Http => {
                let (up, url) = start_http_upstream().await;
                let mut s = Stack::gateway(gateway, kind, &["--upstream-url", &url], Some(up)).await;
                s.upstream_url = Some(url);
                s
            }
        }
    }

    /// Starts `mcpgate serve --listen 127.0.0.1:0 --store TMP/mcpgate.db ARGS` in a temporary
    /// directory, with one admin key in `MCP_API_KEYS`, and waits until `/healthz` answers 200.
    pub async fn gateway(gateway: &Path, kind: Kind, args: &[&str], upstream: Option<Proc>) -> Stack {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = new_key();
        let keys = json!({ key.clone(): {
            "name": "e2e admin", "userId": "e2e", "role": "admin", "permissions": ["*"]
        }});
        let mut cmd = Command::new(gateway);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--store"])
            .arg(dir.path().join("mcpgate.db"))
            .args(args)
            .current_dir(dir.path());
        let mut gw = Proc::spawn_with_env("mcpgate", cmd, &[("MCP_API_KEYS", &keys.to_string())]);
        let url = gw.wait_for_listen_url().await;
        let base = url.trim_end_matches("/mcp").to_string();
        let addr: SocketAddr = base.trim_start_matches("http://").parse().expect("gateway address");
        let http = raw_client();
        let health = format!("{base}/healthz");
        poll_until(START, "gateway /healthz answers 200", || {
            let http = http.clone();
            let health = health.clone();
            async move {
                let r = http.get(&health).send().await.ok()?;
                (r.status() == 200).then_some(())
            }
        })
        .await;
        Stack {
            gw,
            key,
            url,
            base,
            addr,
            kind,
            upstream,
            upstream_url: None,
            dir,
        }
    }

    /// Raw HTTP that authenticates with the stack's admin key.
    pub fn raw(&self) -> Raw {
        Raw {
            http: raw_client(),
            url: self.url.clone(),
            key: Some(self.key.clone()),
        }
    }

    /// Raw HTTP without a credential.
    pub fn raw_anonymous(&self) -> Raw {
        Raw {
            key: None,
            ..self.raw()
        }
    }

    /// GET one of the gateway's own pages with the admin key.
    pub async fn page(&self, path: &str) -> (u16, String) {
        let url = format!("{}{path}", self.base);
        let r = within(
            STEP,
            &format!("GET {url}"),
            raw_client().get(&url).header("x-api-key", &self.key).send(),
        )
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }

    /// Connects an rmcp client with the stack's key.
    pub async fn connect(&self, handler: TestClient) -> (Client, SpyHttp) {
        connect(&self.url, Some(&self.key), handler).await
    }

    pub async fn metrics(&self) -> String {
        let r = raw_client()
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(r.status(), 200, "/metrics status");
        r.text().await.expect("metrics body")
    }

    /// The gateway is still running, answers `/healthz`, and never logged a panic.
    pub async fn assert_healthy(&mut self) {
        assert!(self.gw.is_running(), "the gateway process exited");
        let r = within(
            STEP,
            "GET /healthz",
            raw_client().get(format!("{}/healthz", self.base)).send(),
        )
        .await
        .expect("GET /healthz");
        assert_eq!(r.status(), 200, "/healthz");
        let log = self.gw.stderr();
        assert!(!log.contains("panicked"), "the gateway logged a panic:\n{log}");
    }
}

pub async fn start_http_upstream() -> (Proc, String) {
    let mut cmd = Command::new(example_bin());
    cmd.args(["--http", "127.0.0.1:0", "--profile", "demo"])
        .current_dir(std::env::temp_dir());
    let mut up = Proc::spawn("mcpgate-example-server", cmd);
    let url = up.wait_for_listen_url().await;
    (up, url)
}

pub fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.to_string_lossy().replace('\'', "'\\''"))
}
