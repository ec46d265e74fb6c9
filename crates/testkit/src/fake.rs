//! What the fakes ([`crate::issuer`], [`crate::vendor`], [`crate::recorder`]) share: an axum app
//! on 127.0.0.1:0 that stops when dropped ([`LocalServer`]), and the ways a remote service lets
//! the gateway down ([`Mode`], [`Behaviour`]): slow, unavailable, failing, rate-limiting, or
//! answering far too much.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An axum app served on 127.0.0.1:0 until [`LocalServer::stop`] or drop.
pub struct LocalServer {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl LocalServer {
    pub async fn start(app: axum::Router) -> LocalServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        LocalServer {
            base,
            stop: Mutex::new(Some(tx)),
            task: Mutex::new(Some(task)),
        }
    }

    /// Closes the listener, lets what is in flight finish, and waits (at most 5 s) until the
    /// server has ended.
    pub async fn stop(&self) {
        if let Some(tx) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(());
        }
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = task {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(());
        }
    }
}

/// How a fake answers, whatever it was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Its own answer.
    Up = 0,
    /// 503: down for maintenance.
    Unavailable = 1,
    /// 500: broken.
    Failing = 2,
    /// 429 with `Retry-After: 60`.
    Limited = 3,
    /// 200 with a 1 MiB JSON body.
    Huge = 4,
}

/// A fake's [`Mode`] and delay, switchable while the gateway talks to it.
#[derive(Debug, Default)]
pub struct Behaviour {
    mode: AtomicU8,
    delay_ms: AtomicU64,
}

impl Behaviour {
    pub fn set_mode(&self, m: Mode) {
        self.mode.store(m as u8, Ordering::SeqCst);
    }

    /// Every answer waits this long first (zero: none).
    pub fn set_delay(&self, ms: u64) {
        self.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Waits the delay, then gives the answer of the mode: `None` when up (answer normally).
    pub async fn answer(&self) -> Option<Response> {
        let ms = self.delay_ms.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let m = self.mode.load(Ordering::SeqCst);
        Some(match m {
            m if m == Mode::Unavailable as u8 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            m if m == Mode::Failing as u8 => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            m if m == Mode::Limited as u8 => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "60")]).into_response(),
            m if m == Mode::Huge as u8 => {
                axum::Json(json!({ "id": "u-huge", "pad": "x".repeat(1024 * 1024) })).into_response()
            }
            _ => return None,
        })
    }
}
