//! Test support (feature `postgres-testing`): a throwaway PostgreSQL server for tests of this
//! crate and of the gateway. [`server`] starts a cluster (`initdb` into a temporary directory,
//! trust authentication for the user `mcpgate`, listening on 127.0.0.1 and a free port), shared by
//! the tests running at once and stopped (`pg_ctl stop -m immediate`) when the last of them is
//! done; [`Server::fresh_database`] gives each test a database of its own.
//!
//! The binaries are looked for on `PATH`, then in `/usr/lib/postgresql/*/bin` (Debian's layout).
//! PostgreSQL refuses to run as root: as root, `initdb` and `pg_ctl` run as `nobody` (through
//! `runuser`, else `su`), in a directory under /tmp that `nobody` owns. Without the binaries the
//! tests fail, unless `MCPGATE_TEST_NO_POSTGRES=1`, when they say so and pass. Test code: it
//! panics with the reason when the server cannot be had.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The user the cluster is made for (and the superuser every test connects as).
pub const USER: &str = "mcpgate";
/// Who runs the server when the tests run as root.
const UNPRIVILEGED: &str = "nobody";

/// A throwaway PostgreSQL cluster; stopped when dropped.
pub struct Server {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    /// Running as root: the server runs as [`UNPRIVILEGED`].
    as_other: bool,
}

/// `initdb` and `pg_ctl`: on PATH, else the newest /usr/lib/postgresql/<version>/bin.
fn find_binaries() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|d| has_both(d))
    {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| has_both(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0 for a free port")
}

/// `'…'` for sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Server {
    /// The PostgreSQL binary `name` with `args`, as [`UNPRIVILEGED`] when running as root.
    fn command(&self, name: &str, args: &[OsString]) -> Command {
        let program = self.bin.join(name);
        let mut cmd = if !self.as_other {
            let mut c = Command::new(&program);
            c.args(args);
            c
        } else if Path::new("/usr/sbin/runuser").exists() || Path::new("/sbin/runuser").exists() {
            let mut c = Command::new("runuser");
            c.args(["-u", UNPRIVILEGED, "--"]).arg(&program).args(args);
            c
        } else {
            let line = std::iter::once(program.into_os_string())
                .chain(args.iter().cloned())
                .map(|a| sh_quote(&a.to_string_lossy()))
                .collect::<Vec<_>>()
                .join(" ");
            let mut c = Command::new("su");
            c.args(["-s", "/bin/sh", UNPRIVILEGED, "-c"]).arg(line);
            c
        };
        // Somewhere the server's user may stand (initdb warns from a directory it cannot read).
        cmd.current_dir(self.dir.path());
        cmd
    }

    fn run(&self, name: &str, args: &[OsString]) -> Result<(), String> {
        let out = self
            .command(name, args)
            .output()
            .map_err(|e| format!("cannot run {name}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{name} failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// initdb, then `pg_ctl start` on a free port (a few tries: a port found free may be taken
    /// before the server binds it), then waits until it accepts connections.
    fn start(bin: PathBuf) -> Server {
        let as_other = running_as_root();
        let mut builder = tempfile::Builder::new();
        builder.prefix("mcpgate-pg-");
        // /tmp: a place `nobody` can reach whatever TMPDIR says.
        let dir = if as_other {
            builder.tempdir_in("/tmp")
        } else {
            builder.tempdir()
        }
        .expect("a temporary directory for PostgreSQL");
        let mut server = Server {
            bin,
            dir,
            port: 0,
            as_other,
        };
        if as_other {
            let ok = Command::new("chown")
                .arg(UNPRIVILEGED)
                .arg(server.dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cannot chown {} to {UNPRIVILEGED}", server.dir.path().display());
        }
        let s = |v: &str| OsString::from(v);
        server
            .run(
                "initdb",
                &[
                    s("-D"),
                    server.data().into_os_string(),
                    s("--auth=trust"),
                    s("-U"),
                    s(USER),
                    s("-E"),
                    s("UTF8"),
                    s("--locale=C"),
                    s("--no-sync"),
                ],
            )
            .unwrap_or_else(|e| panic!("initdb of a throwaway PostgreSQL failed: {e}"));
        let mut last_error = String::new();
        for _ in 0..3 {
            server.port = free_port();
            match server.pg_ctl_start() {
                Ok(()) => {
                    server.wait_until_accepting();
                    return server;
                }
                Err(e) => last_error = e,
            }
        }
        panic!(
            "a throwaway PostgreSQL did not start: {last_error}\nits log:\n{}",
            server.log()
        );
    }

    /// `pg_ctl start` on `self.port`, waiting until it is up.
    fn pg_ctl_start(&self) -> Result<(), String> {
        let s = |v: &str| OsString::from(v);
        let options = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off",
            self.dir.path().display(),
            self.port
        );
        let log = self.dir.path().join("postgres.log");
        self.run(
            "pg_ctl",
            &[
                s("-D"),
                self.data().into_os_string(),
                s("-l"),
                log.into_os_string(),
                s("-w"),
                s("-t"),
                s("60"),
                s("-o"),
                s(&options),
                s("start"),
            ],
        )
    }

    /// A server of this test's own (not shared), for tests that stop and restart it; `None` as
    /// [`server`] says.
    pub fn start_own(test: &str) -> Option<Server> {
        let Some(bin) = find_binaries() else {
            if std::env::var("MCPGATE_TEST_NO_POSTGRES").as_deref() == Ok("1") {
                eprintln!("{test}: skipped: no PostgreSQL binaries found and MCPGATE_TEST_NO_POSTGRES=1");
                return None;
            }
            panic!("{test}: no PostgreSQL binaries (initdb, pg_ctl); see mcpgate_store::postgres::testing");
        };
        Some(Server::start(bin))
    }

    /// Stops the server (`pg_ctl stop -m fast`: every connection cut, open transactions rolled
    /// back); [`Server::restart`] brings it back on the same port with its data. Not `immediate`:
    /// this throwaway server runs with `fsync` and `synchronous_commit` off, so a crash would
    /// lose transactions it had reported committed, which a production server does not.
    pub fn stop(&self) {
        self.pg_ctl_stop("fast")
            .unwrap_or_else(|e| panic!("stopping the throwaway PostgreSQL: {e}"));
    }

    /// `pg_ctl stop -m MODE`, waiting until it is down.
    fn pg_ctl_stop(&self, mode: &str) -> Result<(), String> {
        let args = [
            OsString::from("-D"),
            self.data().into_os_string(),
            OsString::from("-m"),
            OsString::from(mode),
            OsString::from("-w"),
            OsString::from("stop"),
        ];
        self.run("pg_ctl", &args)
    }

    /// Starts the stopped server again, on the same port, and waits until it accepts connections.
    pub fn restart(&self) {
        self.pg_ctl_start()
            .unwrap_or_else(|e| panic!("restarting the throwaway PostgreSQL: {e}\n{}", self.log()));
        self.wait_until_accepting();
    }

    fn wait_until_accepting(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL on port {} does not accept connections; its log:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{database}", self.port)
    }

    /// A new, empty database: its URL.
    pub async fn fresh_database(&self) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!("suite_{}", N.fetch_add(1, Ordering::Relaxed));
        let (client, connection) = tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls)
            .await
            .expect("connect to the throwaway PostgreSQL");
        let connection = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create a database");
        drop(client);
        let _ = connection.await;
        self.url(&name)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Err(e) = self.pg_ctl_stop("immediate") {
            eprintln!("stopping the throwaway PostgreSQL: {e}");
        }
    }
}

/// The server the tests running now share (started by the first; stopped after the last), or
/// `None` when there is no PostgreSQL and `MCPGATE_TEST_NO_POSTGRES=1` says to skip.
pub fn server(test: &str) -> Option<Arc<Server>> {
    static SHARED: Mutex<Weak<Server>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = shared.upgrade() {
        return Some(server);
    }
    let Some(bin) = find_binaries() else {
        if std::env::var("MCPGATE_TEST_NO_POSTGRES").as_deref() == Ok("1") {
            eprintln!("{test}: skipped: no PostgreSQL binaries found and MCPGATE_TEST_NO_POSTGRES=1");
            return None;
        }
        panic!(
            "{test}: no PostgreSQL binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin. \
             Install PostgreSQL (Debian: apt-get install postgresql), or set MCPGATE_TEST_NO_POSTGRES=1 \
             to skip the PostgreSQL tests."
        );
    };
    let server = Arc::new(Server::start(bin));
    *shared = Arc::downgrade(&server);
    Some(server)
}
