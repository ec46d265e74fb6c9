//! Test support (feature `redis-testing`): a throwaway `redis-server` on 127.0.0.1 and a free
//! port, with no persistence, in a temporary directory, stopped when dropped. [`server`] shares
//! one between the tests running at once (each takes a [`Server::fresh_prefix`]);
//! [`Server::start_own`] gives a test one of its own that it may [`stop`](Server::stop) and
//! [`restart`](Server::restart) (fault tests).
//!
//! `redis-server` is looked for on `PATH` (Debian: `apt-get install redis-server`). Without it
//! the tests fail, unless `MCPGATE_TEST_NO_REDIS=1`, when they say so and pass. Test code: it
//! panics with the reason when the server cannot be had.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// A throwaway redis-server; stopped when dropped.
pub struct Server {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    child: Mutex<Option<Child>>,
}

fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0 for a free port")
}

impl Server {
    fn spawn(&self) -> Result<Child, String> {
        let log = std::fs::File::create(self.dir.path().join("redis.log")).map_err(|e| e.to_string())?;
        Command::new(&self.bin)
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "yes", "--dir"])
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))
    }

    fn wait_until_accepting(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// A server of the caller's own (a few tries at a free port).
    pub fn start_own(test: &str) -> Option<Arc<Server>> {
        let bin = binary_or_skip(test)?;
        let dir = tempfile::Builder::new()
            .prefix("mcpgate-redis-")
            .tempdir()
            .expect("a temporary directory for redis-server");
        let mut server = Server {
            bin,
            dir,
            port: 0,
            child: Mutex::new(None),
        };
        for _ in 0..3 {
            server.port = free_port();
            let child = server.spawn().unwrap_or_else(|e| panic!("{test}: {e}"));
            *server.child.lock().unwrap() = Some(child);
            if server.wait_until_accepting() {
                return Some(Arc::new(server));
            }
            server.stop();
        }
        panic!(
            "{test}: a throwaway redis-server did not start; its log:\n{}",
            server.log()
        );
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A key prefix no other test uses.
    pub fn fresh_prefix(&self) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        format!("t{}:", N.fetch_add(1, Ordering::Relaxed))
    }

    /// Stops the server (SIGKILL: as abrupt as a crash); what it held is gone.
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&self) {
        self.stop();
        let child = self.spawn().unwrap_or_else(|e| panic!("{e}"));
        *self.child.lock().unwrap() = Some(child);
        assert!(
            self.wait_until_accepting(),
            "redis-server did not come back on port {}; its log:\n{}",
            self.port,
            self.log()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn binary_or_skip(test: &str) -> Option<PathBuf> {
    match find_binary() {
        Some(bin) => Some(bin),
        None if std::env::var("MCPGATE_TEST_NO_REDIS").as_deref() == Ok("1") => {
            eprintln!("{test}: skipped: no redis-server found and MCPGATE_TEST_NO_REDIS=1");
            None
        }
        None => panic!(
            "{test}: no redis-server on PATH. Install it (Debian: apt-get install redis-server), or set \
             MCPGATE_TEST_NO_REDIS=1 to skip the Redis tests."
        ),
    }
}

/// The server the tests running now share (started by the first, stopped after the last), or
/// `None` when there is none and `MCPGATE_TEST_NO_REDIS=1` says to skip.
pub fn server(test: &str) -> Option<Arc<Server>> {
    static SHARED: Mutex<Weak<Server>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = shared.upgrade() {
        return Some(server);
    }
    let server = Server::start_own(test)?;
    *shared = Arc::downgrade(&server);
    Some(server)
}
