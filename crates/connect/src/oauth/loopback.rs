//! The loopback redirect (RFC 8252 §7.3): a listener on 127.0.0.1 (a port the system picks,
//! unless the client was registered with one) that takes the browser's `GET /callback?…` and
//! hands its parameters to the sign-in, which decides what the browser is told. A hand-written
//! read of one request head is all this needs: the browser sends nothing else. Also how the
//! browser is opened: `$BROWSER`, else the desktop's opener; the URL is printed on stderr always.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// Longest request head read from the browser.
const MAX_HEAD: usize = 16 * 1024;
/// Time a connection has to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time the sign-in has to answer a callback (its token request is bounded by less).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// A `GET /callback` from the browser, to be answered with a [`Page`].
pub(super) struct Callback {
    params: Vec<(String, String)>,
    reply: oneshot::Sender<Page>,
}

impl Callback {
    /// The parameter `name`: `Err` when it is there more than once (RFC 6749 §3.1).
    pub fn param(&self, name: &str) -> Result<Option<&str>, String> {
        let mut found = self.params.iter().filter(|(k, _)| k == name);
        let first = found.next().map(|(_, v)| v.as_str());
        if found.next().is_some() {
            return Err(format!("the callback has {name} more than once"));
        }
        Ok(first)
    }

    pub fn answer(self, page: Page) {
        let _ = self.reply.send(page);
    }
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The code is among the parameters: names only.
        let names: Vec<&str> = self.params.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Callback").field("params", &names).finish()
    }
}

/// What the browser is shown. No page holds a code or a token.
#[derive(Debug)]
pub(super) enum Page {
    SignedIn,
    /// The sign-in failed (the server's error, the token request refused): 400 with why.
    Failed(String),
    /// Not this sign-in's answer (another `state`): 400, and the sign-in goes on waiting.
    Ignored(String),
}

impl Page {
    fn render(&self) -> (&'static str, String) {
        let (status, title, text) = match self {
            Page::SignedIn => (
                "200 OK",
                "Signed in",
                "Signed in; you can close this window.".to_string(),
            ),
            Page::Failed(why) => ("400 Bad Request", "Sign-in failed", format!("Sign-in failed: {why}")),
            Page::Ignored(why) => ("400 Bad Request", "Not this sign-in", why.clone()),
        };
        let body = format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>mcpgate connect: {title}</title></head>\n<body><p>{}</p></body></html>\n",
            escape(&text)
        );
        (status, body)
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The listening redirect; closed when dropped.
pub(super) struct Listener {
    port: u16,
    rx: mpsc::Receiver<Callback>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    /// Listens on 127.0.0.1:`port` (0: any free port).
    pub async fn bind(port: u16) -> Result<Listener, String> {
        let l = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| format!("could not listen on 127.0.0.1:{port} for the sign-in's redirect: {e}"))?;
        let port = l
            .local_addr()
            .map_err(|e| format!("the sign-in's redirect listener: {e}"))?
            .port();
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(serve(l, tx));
        Ok(Listener { port, rx, task })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The next callback (`None` once the listener is gone).
    pub async fn next(&mut self) -> Option<Callback> {
        self.rx.recv().await
    }
}

/// Connections served at once: a browser needs one or two; a local process opening thousands
/// must not use up this process's descriptors.
const MAX_CONNECTIONS: usize = 16;

async fn serve(l: TcpListener, tx: mpsc::Sender<Callback>) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        // Waits for a free slot before accepting: extra connections queue in the kernel's backlog.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        match l.accept().await {
            Ok((stream, _)) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    one(stream, tx).await;
                    drop(slot);
                });
            }
            // Out of descriptors and the like: wait a little rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn one(mut s: TcpStream, tx: mpsc::Sender<Callback>) {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut s)).await {
        Ok(Some(h)) => h,
        _ => return,
    };
    let (status, body) = match request_target(&head) {
        Err(status) => (status, String::new()),
        Ok(url) if url.path() != "/callback" => ("404 Not Found", String::new()),
        Ok(url) => {
            let (reply, answer) = oneshot::channel();
            let params = url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let page = if tx.send(Callback { params, reply }).await.is_err() {
                Page::Ignored("This sign-in is over; you can close this window.".into())
            } else {
                match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
                    Ok(Ok(page)) => page,
                    _ => Page::Ignored("This sign-in is over; you can close this window.".into()),
                }
            };
            page.render()
        }
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// The request head (up to the blank line), or `None` when the peer sent too much or closed.
async fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return String::from_utf8(buf).ok();
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
    }
}

/// The URL a `GET` request line asks for, or the status to refuse it with.
fn request_target(head: &str) -> Result<reqwest::Url, &'static str> {
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("400 Bad Request");
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Err("400 Bad Request");
    }
    if method != "GET" {
        return Err("405 Method Not Allowed");
    }
    reqwest::Url::parse(&format!("http://127.0.0.1{target}")).map_err(|_| "400 Bad Request")
}

/// Opens `url` in a browser: each program of `$BROWSER` (':'-separated, as xdg-open reads it)
/// until one starts, else `xdg-open` (`open` on macOS). The browser's output goes nowhere: this
/// process's stdout is the MCP stream. True when a program started.
pub(super) fn open_browser(url: &str) -> bool {
    let mut programs: Vec<String> = std::env::var("BROWSER")
        .unwrap_or_default()
        .split(':')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    if programs.is_empty() {
        programs.push(if cfg!(target_os = "macos") { "open" } else { "xdg-open" }.to_string());
    }
    programs.iter().any(|p| {
        tokio::process::Command::new(p)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn request_lines() {
        let u = request_target("GET /callback?code=a&state=b HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(u.path(), "/callback");
        assert_eq!(u.query_pairs().count(), 2);
        assert_eq!(
            request_target("POST /callback HTTP/1.1\r\n\r\n").unwrap_err(),
            "405 Method Not Allowed"
        );
        for bad in ["", "GET", "GET callback HTTP/1.1", "GET / SPDY/3", "\u{0}"] {
            assert!(request_target(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pages_are_escaped() {
        let (status, body) = Page::Failed("<script>".into()).render();
        assert_eq!(status, "400 Bad Request");
        assert!(body.contains("&lt;script&gt;") && !body.contains("<script>"));
        assert!(Page::SignedIn.render().1.contains("you can close this window"));
    }
}
