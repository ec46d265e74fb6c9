//! Waiting in tests: every wait is bounded (a hang fails the test with what it waited for,
//! instead of blocking the run), and the wall clock in the seconds tokens and keys are stamped
//! with. Time the gateway reads is moved with its own `ManualClock` instead
//! ([`crate::harness::Setup::manual_clock`]).

use std::future::Future;
use std::time::{Duration, Instant};

/// Upper bound for anything that should take well under a second on an idle machine; generous
/// because the tests run in parallel on small, loaded CI machines.
pub const STEP: Duration = Duration::from_secs(30);
/// Upper bound for a process to start and answer.
pub const START: Duration = Duration::from_secs(60);

/// Now, in seconds since the Unix epoch (as `iat`, `exp` and `expires_at` are written).
pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Fails the test with `what` if `fut` does not finish within `limit` (never hangs).
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {limit:?}: {what}"),
    }
}

/// Polls `check` every 25 ms until it returns `Some`, or fails after `limit`.
pub async fn poll_until<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("condition not met within {limit:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Polls `check` until it is true, or fails after `limit` ([`poll_until`] for a yes/no check).
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    poll_until(limit, what, || {
        let done = check();
        async move { done.await.then_some(()) }
    })
    .await
}

/// Waits for a store call from synchronous test code (the store's work runs on the runtime's
/// blocking pool, so this thread can simply park until it is done).
pub fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
