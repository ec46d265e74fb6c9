//! The accept loop: serves the router on each connection over HTTP/1.1 or h2c, with the limits
//! that keep slow and idle clients from holding the gateway's sockets (a client that opens
//! connections and never finishes a request must not make `/healthz` unanswerable).
//!
//! The timers, and which layer enforces each:
//! - a request head must arrive whole within `http.header_read_timeout_s`: hyper's HTTP/1 timer,
//!   which also starts when a kept-alive connection goes idle (read in hyper 1.12's
//!   `proto/h1/conn.rs`: `State::idle` re-arms the head read), so on HTTP/1.1 an idle connection
//!   is closed after the smaller of the header and idle timeouts. Before its first request, any
//!   connection (also h2c, whose preface hyper does not time) is closed by our own watchdog after
//!   the same time;
//! - a connection with no request in progress is closed after `http.idle_timeout_s`: our watchdog,
//!   which counts requests from the moment hyper hands one over until its response body ends or
//!   is dropped. A long-lived SSE response is a request in progress, so no timer cuts it;
//! - the request body's deadline (`http.body_timeout_s`) is enforced where the body is read;
//! - `http.max_connections`: a connection beyond it is accepted and closed at once, so the client
//!   learns at once instead of waiting in the kernel's backlog, and the backlog keeps draining.

use crate::config::{HttpConfig, MIN_HEADER_BYTES};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// How long an accept error (out of descriptors, most likely) pauses the loop: long enough not to
/// spin, short enough to pick up the next client soon after a connection frees its descriptor.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Repeated warnings (refused connections, accept errors) are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

#[derive(Clone, Copy)]
struct Timers {
    /// Before a connection's first request.
    first_request: Duration,
    /// Between requests.
    idle: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting, lets in-flight
/// requests finish for `http.shutdown_grace_s`, and drops the connections still open.
pub(crate) async fn run(
    app: Router,
    cfg: &HttpConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let builder = Arc::new(builder(cfg));
    let timers = Timers {
        first_request: cfg.header_read_timeout,
        idle: cfg.idle_timeout,
    };
    let slots = Arc::new(Semaphore::new(cfg.max_connections.min(Semaphore::MAX_PERMITS)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    let mut refused_warning = Throttle::default();
    let mut error_warning = Throttle::default();
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            // Reaps finished connection tasks so the set does not grow with every connection.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        drop(stream);
                        if refused_warning.due() {
                            tracing::warn!(
                                limit = cfg.max_connections,
                                "http.max_connections reached: new connections are closed at once"
                            );
                        }
                        continue;
                    };
                    conns.spawn(connection(builder.clone(), stream, remote, app.clone(), timers, stop_rx.clone(), slot));
                }
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    if error_warning.due() {
                        tracing::warn!(
                            "accepting a connection failed: {e}; if it says too many open files, raise the \
                             descriptor limit (ulimit -n) or lower http.max_connections"
                        );
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
    drop(listener);
    stop_tx.send_replace(true);
    let drained = tokio::time::timeout(cfg.shutdown_grace, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::info!(
            open = conns.len(),
            "connections still busy after http.shutdown_grace_s (open streams, slow calls); closing them"
        );
        conns.shutdown().await;
    }
    Ok(())
}

fn builder(cfg: &HttpConfig) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout)
        // The read buffer bounds a request head: one that does not fit gets 431. (hyper refuses
        // a buffer under 8 KiB; the config refuses it too, this keeps an embedder's value safe.)
        .max_buf_size(cfg.max_header_bytes.max(MIN_HEADER_BYTES));
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(cfg.max_header_bytes).unwrap_or(u32::MAX));
    b
}

/// Errors that concern one client only; the next accept works.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

async fn connection(
    builder: Arc<auto::Builder<TokioExecutor>>,
    stream: TcpStream,
    remote: SocketAddr,
    app: Router,
    timers: Timers,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let (activity, watched) = watch::channel(Activity::default());
    let service = ConnService {
        app,
        remote,
        activity: Arc::new(activity),
    };
    let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
    let mut idle = pin!(idle_too_long(watched, timers));
    let mut closing = false;
    // After an idle close starts, how long the client gets to finish it (an h2 peer that ignores
    // GOAWAY); a shutdown's limit is the grace period, enforced by the accept loop.
    let mut backstop: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%remote, "connection ended: {e}");
                }
                return;
            }
            () = &mut idle, if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
                backstop = Some(tokio::time::Instant::now() + timers.first_request);
            }
            _ = stop.wait_for(|stop| *stop), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = sleep_until(backstop) => return,
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// What the watchdog sees of a connection's requests.
#[derive(Clone, Copy, Default)]
struct Activity {
    in_progress: usize,
    /// Requests started so far: a request may start and end before the watchdog first looks.
    started: u64,
}

/// Completes once the connection has had no request in progress for too long: `first_request`
/// before its first request, `idle` after. Any change (a request started or ended) restarts the
/// wait.
async fn idle_too_long(mut activity: watch::Receiver<Activity>, timers: Timers) {
    loop {
        let now = *activity.borrow_and_update();
        let changed = if now.in_progress > 0 {
            activity.changed().await
        } else {
            let limit = if now.started == 0 {
                timers.first_request
            } else {
                timers.idle
            };
            match tokio::time::timeout(limit, activity.changed()).await {
                Ok(changed) => changed,
                Err(_) => return,
            }
        };
        // The service (and every request) is gone: the connection is ending anyway.
        if changed.is_err() {
            return std::future::pending().await;
        }
    }
}

/// The router as one connection's hyper service: adds the peer address (what
/// `into_make_service_with_connect_info::<SocketAddr>` did) and counts the request as in progress
/// until its response body ends.
#[derive(Clone)]
struct ConnService {
    app: Router,
    remote: SocketAddr,
    activity: Arc<watch::Sender<Activity>>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.remote));
        let busy = Busy::start(self.activity.clone());
        let app = self.app.clone();
        Box::pin(async move {
            let response = match app.oneshot(req.map(Body::new)).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            Ok(crate::held::hold_until_body_ends(response, busy))
        })
    }
}

/// One request in progress on a connection.
struct Busy(Arc<watch::Sender<Activity>>);

impl Busy {
    fn start(activity: Arc<watch::Sender<Activity>>) -> Busy {
        activity.send_modify(|a| {
            a.in_progress += 1;
            a.started += 1;
        });
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|a| a.in_progress = a.in_progress.saturating_sub(1));
    }
}

#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
}

impl Throttle {
    fn due(&mut self) -> bool {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < WARN_EVERY) {
            return false;
        }
        self.last = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timers() -> Timers {
        Timers {
            first_request: Duration::from_secs(5),
            idle: Duration::from_millis(100),
        }
    }

    #[tokio::test]
    async fn a_request_seen_late_still_switches_to_the_idle_limit() {
        let (tx, rx) = watch::channel(Activity::default());
        let tx = Arc::new(tx);
        // The request starts and ends before the watchdog first looks (all in one poll of the
        // connection): the watchdog must still know the first request came.
        drop(Busy::start(tx.clone()));
        let t = Instant::now();
        tokio::time::timeout(Duration::from_secs(2), idle_too_long(rx, timers()))
            .await
            .expect("idle limit, not the first-request limit");
        assert!(t.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_request_in_progress_is_never_idle() {
        let (tx, rx) = watch::channel(Activity::default());
        let tx = Arc::new(tx);
        let busy = Busy::start(tx.clone());
        let mut watchdog = pin!(idle_too_long(rx, timers()));
        assert!(
            tokio::time::timeout(Duration::from_millis(400), &mut watchdog)
                .await
                .is_err(),
            "fired with a request in progress"
        );
        drop(busy);
        let t = Instant::now();
        tokio::time::timeout(Duration::from_secs(2), watchdog)
            .await
            .expect("idle after the request");
        assert!(t.elapsed() >= Duration::from_millis(90));
    }
}
