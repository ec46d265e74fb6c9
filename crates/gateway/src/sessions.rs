//! The sessions this gateway has seen opened, whatever the upstream, and who opened each. A
//! session id the gateway did not see issued is refused, so ids cannot be guessed or carried over;
//! a session is bound to the principal that opened it. Entries idle longer than the configured
//! timeout are forgotten. Who owns which session lives in a [`SessionStore`] (this process's
//! memory by default; a shared backend lets every replica answer for every session).
//!
//! Owners are remembered here as well ([`SessionRegistry::rechecking`]): a session's owner never
//! changes once it is opened, so a request on a known session asks the store only when its last
//! answer is older than the recheck interval (1 s by default, at most a tenth of the idle
//! timeout in the gateway). That answer both marks the session seen and confirms it still
//! exists, so with a shared store a request costs no session round trip most of the time; a
//! session ended at another replica (DELETE, idle) ends here within the interval, and its
//! last-seen time errs early by at most as much. Ended here, it ends here at once.
//!
//! It also caps what one caller can hold open: sessions per principal (each may cost an upstream
//! child process or upstream state; counted in the store, so the cap holds across replicas), and
//! GET streams per principal and in all (each holds a connection of *this* process, an upstream
//! stream and memory for as long as the client likes; counted here). Callers without a credential
//! count as one principal, so anonymous traffic cannot multiply its share.

use crate::clock::{Clock, SystemClock};
use crate::shared::{Broadcast, Change};
use axum::response::Response;
use mcpgate_core::entropy::{Entropy, OsEntropy};
use mcpgate_store::memory::MemoryStore;
use mcpgate_store::{SessionStore, StoreError, session_bucket};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a place taken for a new session waits for the upstream's answer before it lapses
/// (longer than any upstream timeout; a gateway that dies mid-initialize frees it then).
const PLACE_LIFETIME_MS: i64 = 5 * 60 * 1000;

/// Caps on what one principal (and everyone) can hold open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// `upstream.max_sessions_per_principal`.
    pub sessions_per_principal: usize,
    /// `http.max_streams_per_principal`.
    pub streams_per_principal: usize,
    /// `http.max_streams`.
    pub streams: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            sessions_per_principal: 100,
            streams_per_principal: 10,
            streams: 10_000,
        }
    }
}

/// Which cap a request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CapReached {
    #[error("this caller already has {limit} open sessions; end unused ones with DELETE /mcp")]
    SessionsPerPrincipal { limit: usize },
    #[error("this caller already has {limit} open GET streams; close one first")]
    StreamsPerPrincipal { limit: usize },
    #[error("the gateway holds its limit of {limit} open GET streams; retry later")]
    Streams { limit: usize },
}

/// Why a session could not be opened or checked.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Cap(#[from] CapReached),
    /// The session store did not answer: refused, never let through unchecked.
    #[error("session store: {0}")]
    Store(#[from] StoreError),
}

pub struct SessionRegistry {
    store: Arc<dyn SessionStore>,
    /// Shared with the stream permits, which outlive any borrow of the registry (they ride in
    /// response bodies).
    streams: Arc<Mutex<StreamCounts>>,
    limits: SessionLimits,
    /// Times the store records (unix ms, comparable across replicas).
    clock: Arc<dyn Clock>,
    /// Place tokens: a random prefix of this registry and a counter, unique across replicas.
    place_prefix: String,
    next_place: AtomicU64,
    /// Owners of sessions known to exist, with when the store last said so (unix ms on
    /// `clock`). Only sessions the store has (or this registry opened) get in, and the reaper
    /// empties it on every tick, so it is never larger than the store's own list.
    known: Mutex<HashMap<String, Known>>,
    recheck_ms: i64,
    /// Where session endings are told to the other replicas and heard from them.
    broadcast: Arc<Broadcast>,
    /// The broadcast's count of endings heard: an answer remembered under an older count is
    /// asked again.
    endings: Arc<AtomicU64>,
}

struct Known {
    owner: Option<String>,
    confirmed_ms: i64,
    endings: u64,
}

/// How long a store's answer about a session stands by default.
pub const DEFAULT_RECHECK: Duration = Duration::from_secs(1);

impl Default for SessionRegistry {
    fn default() -> Self {
        SessionRegistry::new(SessionLimits::default())
    }
}

#[derive(Default)]
struct StreamCounts {
    total: usize,
    per_principal: HashMap<String, usize>,
    /// GET streams open on each session here: a session with one is in use, never idle.
    per_session: HashMap<String, usize>,
}

fn decrement(map: &mut HashMap<String, usize>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

/// What the registry knows of a presented session id.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Unknown,
    OwnedByOther,
    /// Opened without a credential; the caller now presents one.
    OpenedAnonymously,
    Ok,
}

impl SessionRegistry {
    /// Sessions in this process's memory, on the system clock.
    pub fn new(limits: SessionLimits) -> Self {
        SessionRegistry::with_store(limits, Arc::new(MemoryStore::new()), Arc::new(SystemClock), &OsEntropy)
    }

    pub fn with_store(
        limits: SessionLimits,
        store: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
        entropy: &dyn Entropy,
    ) -> Self {
        let broadcast = Broadcast::local();
        SessionRegistry {
            endings: broadcast.sessions(),
            broadcast,
            store,
            streams: Arc::default(),
            limits,
            clock,
            place_prefix: entropy.hex_id(12),
            next_place: AtomicU64::new(0),
            known: Mutex::default(),
            recheck_ms: ms(DEFAULT_RECHECK),
        }
    }

    /// Asks the store again about a session used here once its last answer is `interval` old
    /// (zero: at every request). See the module's notes for what it changes.
    pub fn rechecking(mut self, interval: Duration) -> Self {
        self.recheck_ms = ms(interval);
        self
    }

    /// Tells session endings to the other replicas through `broadcast`, and forgets what it
    /// remembers when they tell theirs.
    pub fn hearing(mut self, broadcast: Arc<Broadcast>) -> Self {
        self.endings = broadcast.sessions();
        self.broadcast = broadcast;
        self
    }

    fn endings(&self) -> u64 {
        self.endings.load(Ordering::SeqCst)
    }

    /// Remembers `id`'s owner as the store gave it at `now`, when no ending was heard since
    /// `endings` (read before the store was asked).
    fn remember(&self, id: &str, owner: Option<&str>, now: i64, endings: u64) {
        if self.recheck_ms == 0 {
            return;
        }
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.insert(
            id.to_string(),
            Known {
                owner: owner.map(str::to_string),
                confirmed_ms: now,
                endings,
            },
        );
    }

    fn forget(&self, id: &str) {
        self.known.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    /// The owner remembered for `id`, when the store's answer still stands at `now`.
    fn recall(&self, id: &str, now: i64) -> Option<Option<String>> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let k = known.get(id)?;
        if k.endings != self.endings() {
            return None;
        }
        // A clock that went back counts as stale too.
        let age = now.checked_sub(k.confirmed_ms)?;
        (0..self.recheck_ms).contains(&age).then(|| k.owner.clone())
    }

    /// Takes a place for one more session of `owner`, before `initialize` goes upstream, so the
    /// cap holds even when one caller sends many at once (to any replica). Dropping the slot
    /// unused gives the place back (the upstream failed, or issued no session id).
    pub async fn reserve(&self, owner: Option<&str>) -> Result<SessionSlot<'_>, SessionError> {
        let token = format!(
            "{}-{}",
            self.place_prefix,
            self.next_place.fetch_add(1, Ordering::Relaxed)
        );
        let now = self.clock.unix_ms();
        let cap = self.limits.sessions_per_principal;
        if !self
            .store
            .reserve(owner, &token, cap, now, now.saturating_add(PLACE_LIFETIME_MS))
            .await?
        {
            return Err(CapReached::SessionsPerPrincipal { limit: cap }.into());
        }
        Ok(SessionSlot {
            registry: self,
            owner: owner.map(str::to_string),
            token,
            used: false,
        })
    }

    /// Records a session without checking the cap (it still counts toward it).
    pub async fn open(&self, id: &str, owner: Option<&str>) -> Result<(), SessionError> {
        let (now, endings) = (self.clock.unix_ms(), self.endings());
        self.store.open(id, owner, None, now).await?;
        self.remember(id, owner, now, endings);
        Ok(())
    }

    /// Whether `principal` may use the session; marks it used when so.
    pub async fn check(&self, id: &str, principal: Option<&str>) -> Result<Lookup, SessionError> {
        let now = self.clock.unix_ms();
        let owner = match self.recall(id, now) {
            Some(owner) => owner,
            None => {
                let endings = self.endings();
                let Some(found) = self.store.touch(id, now).await? else {
                    self.forget(id);
                    return Ok(Lookup::Unknown);
                };
                self.remember(id, found.owner.as_deref(), now, endings);
                found.owner
            }
        };
        Ok(match owner.as_deref() {
            None if principal.is_some() => Lookup::OpenedAnonymously,
            owner if owner != principal => Lookup::OwnedByOther,
            _ => Lookup::Ok,
        })
    }

    pub async fn close(&self, id: &str) -> Result<bool, SessionError> {
        // Forgotten here first: a request racing the close asks the store.
        self.forget(id);
        let closed = self.store.close(id).await?;
        if closed {
            self.broadcast.announce(Change::Sessions);
        }
        Ok(closed)
    }

    /// Sessions open, in all (every replica's, with a shared store).
    pub async fn total(&self) -> Result<usize, SessionError> {
        Ok(self.store.total().await?)
    }

    /// Up to `limit` open sessions (every replica's, with a shared store), most recently seen
    /// first.
    pub async fn list(&self, limit: usize) -> Result<Vec<mcpgate_store::SessionInfo>, SessionError> {
        Ok(self.store.list(limit).await?)
    }

    /// Sessions `owner` holds (or is opening).
    pub async fn count_of(&self, owner: Option<&str>) -> Result<usize, SessionError> {
        Ok(self.store.count(owner, self.clock.unix_ms()).await?)
    }

    /// Forgets sessions idle for `limit` or longer. Sessions with a GET stream open here are in
    /// use: they are marked seen first, so no replica forgets them (each replica's reaper does
    /// the same for its own streams, on a tick shorter than any idle timeout).
    pub async fn forget_idle(&self, limit: Duration) -> Result<usize, SessionError> {
        let streaming: Vec<String> = {
            let counts = self.streams.lock().unwrap_or_else(|e| e.into_inner());
            counts.per_session.keys().cloned().collect()
        };
        let now = self.clock.unix_ms();
        for id in &streaming {
            self.store.touch(id, now).await?;
        }
        let limit_ms = i64::try_from(limit.as_millis()).unwrap_or(i64::MAX);
        // Idle means last seen at or before `now - limit`; the purge ends those seen before
        // the millisecond after.
        let before = now.saturating_sub(limit_ms).saturating_add(1);
        let purged = self.store.purge_idle(before, now).await?;
        // Whatever ended, here or elsewhere, is asked about again.
        self.known.lock().unwrap_or_else(|e| e.into_inner()).clear();
        Ok(purged)
    }

    /// A place for one more open GET stream of `principal`, or which cap is full. Hold the permit
    /// as long as the stream is open: [`StreamPermit::attach`] ties it to the response body.
    /// `session`: the session the stream belongs to (already checked, so just seen), kept from
    /// being forgotten as idle while the stream is open, and seen again when it ends.
    pub fn stream_permit(&self, principal: Option<&str>, session: Option<&str>) -> Result<StreamPermit, CapReached> {
        let mut counts = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if counts.total >= self.limits.streams {
            return Err(CapReached::Streams {
                limit: self.limits.streams,
            });
        }
        let b = session_bucket(principal);
        let held = counts.per_principal.get(b).copied().unwrap_or(0);
        if held >= self.limits.streams_per_principal {
            return Err(CapReached::StreamsPerPrincipal {
                limit: self.limits.streams_per_principal,
            });
        }
        counts.total += 1;
        counts.per_principal.insert(b.to_string(), held + 1);
        if let Some(id) = session {
            *counts.per_session.entry(id.to_string()).or_default() += 1;
        }
        Ok(StreamPermit {
            counts: self.streams.clone(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            principal: b.to_string(),
            session: session.map(str::to_string),
        })
    }

    /// GET streams open now, in all.
    pub fn open_streams(&self) -> usize {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Runs `work` on the current Tokio runtime, if there is one (drops are synchronous; the store
/// is not). Without a runtime the work is skipped: a place lapses on its own, and a session's
/// last-seen time only errs early.
fn spawn_detached(work: impl std::future::Future<Output = ()> + Send + 'static) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(work);
    }
}

/// A reserved place for a session; see [`SessionRegistry::reserve`].
pub struct SessionSlot<'a> {
    registry: &'a SessionRegistry,
    owner: Option<String>,
    token: String,
    used: bool,
}

impl SessionSlot<'_> {
    /// The upstream issued `id`: the session now exists and keeps the place.
    pub async fn open(mut self, id: &str) -> Result<(), SessionError> {
        self.used = true;
        let (now, endings) = (self.registry.clock.unix_ms(), self.registry.endings());
        self.registry
            .store
            .open(id, self.owner.as_deref(), Some(&self.token), now)
            .await?;
        self.registry.remember(id, self.owner.as_deref(), now, endings);
        Ok(())
    }
}

impl Drop for SessionSlot<'_> {
    fn drop(&mut self) {
        if !self.used {
            let (store, token) = (self.registry.store.clone(), std::mem::take(&mut self.token));
            spawn_detached(async move {
                if let Err(e) = store.release(&token).await {
                    tracing::warn!(error = %e, "could not give a session place back; it lapses on its own");
                }
            });
        }
    }
}

/// One open GET stream's place; dropping it frees the place.
pub struct StreamPermit {
    counts: Arc<Mutex<StreamCounts>>,
    store: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
    principal: String,
    session: Option<String>,
}

impl StreamPermit {
    /// Keeps the permit until `response`'s body ends or is dropped (the client went away).
    pub fn attach(self, response: Response) -> Response {
        crate::held::hold_until_body_ends(response, self)
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        {
            let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            counts.total = counts.total.saturating_sub(1);
            decrement(&mut counts.per_principal, &self.principal);
            if let Some(id) = &self.session {
                decrement(&mut counts.per_session, id);
            }
        }
        // The stream's end counts as use of its session.
        if let Some(id) = self.session.take() {
            let (store, now) = (self.store.clone(), self.clock.unix_ms());
            spawn_detached(async move {
                if let Err(e) = store.touch(&id, now).await {
                    tracing::warn!(error = %e, "could not mark a session seen at its stream's end");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use mcpgate_store::ANONYMOUS;

    fn limits(sessions: usize, streams_each: usize, streams: usize) -> SessionLimits {
        SessionLimits {
            sessions_per_principal: sessions,
            streams_per_principal: streams_each,
            streams,
        }
    }

    fn on(clock: &Arc<ManualClock>, l: SessionLimits) -> SessionRegistry {
        SessionRegistry::with_store(l, Arc::new(MemoryStore::new()), clock.clone(), &OsEntropy)
    }

    /// Lets the tasks a drop spawned run.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn sessions_are_bound_to_their_opener() {
        let r = SessionRegistry::default();
        r.open("s1", Some("key:a")).await.unwrap();
        assert_eq!(r.check("s1", Some("key:a")).await.unwrap(), Lookup::Ok);
        assert_eq!(r.check("s1", Some("key:b")).await.unwrap(), Lookup::OwnedByOther);
        assert_eq!(r.check("s1", None).await.unwrap(), Lookup::OwnedByOther);
        assert_eq!(r.check("s2", Some("key:a")).await.unwrap(), Lookup::Unknown);
        r.open("anon", None).await.unwrap();
        assert_eq!(r.check("anon", None).await.unwrap(), Lookup::Ok);
        assert_eq!(r.check("anon", Some("key:a")).await.unwrap(), Lookup::OpenedAnonymously);
        assert!(r.close("s1").await.unwrap());
        assert_eq!(r.check("s1", Some("key:a")).await.unwrap(), Lookup::Unknown);
    }

    #[tokio::test]
    async fn sessions_per_principal_are_capped_and_freed() {
        let clock = Arc::new(ManualClock::at(1_000_000));
        let r = on(&clock, limits(2, 10, 10));
        r.reserve(Some("key:a")).await.unwrap().open("a1").await.unwrap();
        let pending = r.reserve(Some("key:a")).await.unwrap();
        // A reservation counts: a burst of initializes cannot overshoot the cap.
        assert!(matches!(
            r.reserve(Some("key:a")).await,
            Err(SessionError::Cap(CapReached::SessionsPerPrincipal { limit: 2 }))
        ));
        // Others are not affected.
        r.reserve(Some("key:b")).await.unwrap().open("b1").await.unwrap();
        // An unused reservation gives its place back.
        drop(pending);
        settle().await;
        assert_eq!(r.count_of(Some("key:a")).await.unwrap(), 1);
        r.reserve(Some("key:a")).await.unwrap().open("a2").await.unwrap();
        assert!(r.reserve(Some("key:a")).await.is_err());
        // Closing and forgetting free places too.
        assert!(r.close("a1").await.unwrap());
        r.reserve(Some("key:a")).await.unwrap().open("a3").await.unwrap();
        clock.advance(Duration::from_secs(1));
        assert_eq!(r.forget_idle(Duration::from_secs(1)).await.unwrap(), 3);
        assert_eq!(r.count_of(Some("key:a")).await.unwrap(), 0);
        assert_eq!(r.total().await.unwrap(), 0);
    }

    /// A place whose gateway never confirmed it (it died mid-initialize) is free again once the
    /// place's lifetime is over.
    #[tokio::test]
    async fn a_forgotten_place_lapses() {
        let clock = Arc::new(ManualClock::at(1_000_000));
        let r = on(&clock, limits(1, 10, 10));
        let slot = r.reserve(Some("key:a")).await.unwrap();
        std::mem::forget(slot);
        assert!(r.reserve(Some("key:a")).await.is_err());
        clock.advance(Duration::from_millis(PLACE_LIFETIME_MS as u64));
        r.reserve(Some("key:a")).await.unwrap().open("a1").await.unwrap();
    }

    #[tokio::test]
    async fn anonymous_callers_share_one_bucket() {
        let r = SessionRegistry::new(limits(2, 1, 10));
        r.reserve(None).await.unwrap().open("x").await.unwrap();
        r.reserve(Some(ANONYMOUS)).await.unwrap().open("y").await.unwrap();
        assert!(r.reserve(None).await.is_err());
        let s = r.stream_permit(None, None).unwrap();
        assert_eq!(
            r.stream_permit(Some(ANONYMOUS), None).err(),
            Some(CapReached::StreamsPerPrincipal { limit: 1 })
        );
        drop(s);
        assert!(r.stream_permit(Some(ANONYMOUS), None).is_ok());
    }

    #[tokio::test]
    async fn stream_permits_cap_per_principal_and_in_all() {
        let r = SessionRegistry::new(limits(1, 2, 3));
        let a1 = r.stream_permit(Some("key:a"), None).unwrap();
        let a2 = r.stream_permit(Some("key:a"), None).unwrap();
        assert_eq!(
            r.stream_permit(Some("key:a"), None).err(),
            Some(CapReached::StreamsPerPrincipal { limit: 2 })
        );
        let b1 = r.stream_permit(Some("key:b"), None).unwrap();
        assert_eq!(
            r.stream_permit(Some("key:c"), None).err(),
            Some(CapReached::Streams { limit: 3 })
        );
        assert_eq!(r.open_streams(), 3);
        drop(a1);
        let c1 = r.stream_permit(Some("key:c"), None).unwrap();
        drop((a2, b1, c1));
        assert_eq!(r.open_streams(), 0);
    }

    /// A session whose GET stream is open is in use: the idle reaper keeps it, and it counts as
    /// seen when the stream ends (before, a 30-minute stream lost its session under it).
    #[tokio::test]
    async fn an_open_stream_keeps_its_session() {
        let clock = Arc::new(ManualClock::at(1_000_000));
        let r = on(&clock, SessionLimits::default());
        r.open("s1", Some("key:a")).await.unwrap();
        r.open("s2", Some("key:a")).await.unwrap();
        let permit = r.stream_permit(Some("key:a"), Some("s1")).unwrap();
        clock.advance(Duration::from_millis(5));
        assert_eq!(
            r.forget_idle(Duration::from_millis(1)).await.unwrap(),
            1,
            "only s2 is idle"
        );
        assert_eq!(r.check("s1", Some("key:a")).await.unwrap(), Lookup::Ok);
        assert_eq!(r.check("s2", Some("key:a")).await.unwrap(), Lookup::Unknown);
        clock.advance(Duration::from_millis(5));
        drop(permit);
        settle().await;
        assert_eq!(
            r.forget_idle(Duration::from_millis(3)).await.unwrap(),
            0,
            "the stream's end counts as seen"
        );
        clock.advance(Duration::from_millis(5));
        assert_eq!(r.forget_idle(Duration::from_millis(3)).await.unwrap(), 1);
        // A permit for a session that is gone (or none) marks nothing and frees its place.
        let p = r.stream_permit(Some("key:a"), Some("gone")).unwrap();
        drop(p);
        settle().await;
        assert_eq!(r.open_streams(), 0);
        assert_eq!(r.total().await.unwrap(), 0);
    }

    /// Two gateways on one store (replicas): a session opened through one is known, and owned,
    /// at the other; the cap counts both; a stream open at one keeps the session from the
    /// other's reaper.
    #[tokio::test]
    async fn replicas_on_one_store_agree() {
        let clock = Arc::new(ManualClock::at(1_000_000));
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let a = SessionRegistry::with_store(limits(2, 10, 10), store.clone(), clock.clone(), &OsEntropy);
        let b = SessionRegistry::with_store(limits(2, 10, 10), store, clock.clone(), &OsEntropy);
        a.reserve(Some("key:x")).await.unwrap().open("s1").await.unwrap();
        assert_eq!(b.check("s1", Some("key:x")).await.unwrap(), Lookup::Ok);
        assert_eq!(b.check("s1", Some("key:y")).await.unwrap(), Lookup::OwnedByOther);
        let _held = b.reserve(Some("key:x")).await.unwrap();
        assert!(a.reserve(Some("key:x")).await.is_err(), "the cap counts both replicas");
        let _stream = a.stream_permit(Some("key:x"), Some("s1")).unwrap();
        clock.advance(Duration::from_secs(60));
        a.forget_idle(Duration::from_secs(30)).await.unwrap();
        assert_eq!(b.forget_idle(Duration::from_secs(30)).await.unwrap(), 0);
        assert_eq!(b.check("s1", Some("key:x")).await.unwrap(), Lookup::Ok);
    }

    /// A store that counts the `touch`es it is asked.
    struct Counting {
        inner: MemoryStore,
        touches: AtomicU64,
    }

    #[mcpgate_store::async_trait]
    impl SessionStore for Counting {
        async fn reserve(&self, o: Option<&str>, t: &str, c: usize, n: i64, u: i64) -> mcpgate_store::Result<bool> {
            self.inner.reserve(o, t, c, n, u).await
        }
        async fn release(&self, t: &str) -> mcpgate_store::Result<()> {
            self.inner.release(t).await
        }
        async fn open(&self, id: &str, o: Option<&str>, t: Option<&str>, n: i64) -> mcpgate_store::Result<()> {
            self.inner.open(id, o, t, n).await
        }
        async fn touch(&self, id: &str, n: i64) -> mcpgate_store::Result<Option<mcpgate_store::OpenSession>> {
            self.touches.fetch_add(1, Ordering::SeqCst);
            self.inner.touch(id, n).await
        }
        async fn close(&self, id: &str) -> mcpgate_store::Result<bool> {
            self.inner.close(id).await
        }
        async fn count(&self, o: Option<&str>, n: i64) -> mcpgate_store::Result<usize> {
            self.inner.count(o, n).await
        }
        async fn total(&self) -> mcpgate_store::Result<usize> {
            self.inner.total().await
        }
        async fn list(&self, n: usize) -> mcpgate_store::Result<Vec<mcpgate_store::SessionInfo>> {
            self.inner.list(n).await
        }
        async fn purge_idle(&self, b: i64, n: i64) -> mcpgate_store::Result<usize> {
            self.inner.purge_idle(b, n).await
        }
    }

    /// Owners are remembered: the store is asked about a session at most once per recheck
    /// interval, an ending here takes effect at once, one elsewhere within the interval, and the
    /// owner check never loosens.
    #[tokio::test]
    async fn owners_are_remembered_for_the_recheck_interval() {
        let clock = Arc::new(ManualClock::at(1_000_000));
        let store = Arc::new(Counting {
            inner: MemoryStore::new(),
            touches: AtomicU64::new(0),
        });
        let touches = || store.touches.load(Ordering::SeqCst);
        let every = Duration::from_millis(100);
        let a =
            SessionRegistry::with_store(limits(5, 10, 10), store.clone(), clock.clone(), &OsEntropy).rechecking(every);
        let b =
            SessionRegistry::with_store(limits(5, 10, 10), store.clone(), clock.clone(), &OsEntropy).rechecking(every);
        a.reserve(Some("key:x")).await.unwrap().open("s1").await.unwrap();
        // The opener knows its session without asking.
        for _ in 0..5 {
            assert_eq!(a.check("s1", Some("key:x")).await.unwrap(), Lookup::Ok);
        }
        assert_eq!(touches(), 0);
        // Another replica asks once, then answers from memory — the owner check included.
        assert_eq!(b.check("s1", Some("key:x")).await.unwrap(), Lookup::Ok);
        assert_eq!(b.check("s1", Some("key:y")).await.unwrap(), Lookup::OwnedByOther);
        assert_eq!(b.check("s1", None).await.unwrap(), Lookup::OwnedByOther);
        assert_eq!(touches(), 1);
        // Unknown ids are asked about every time (nothing is remembered of them).
        assert_eq!(b.check("nope", Some("key:x")).await.unwrap(), Lookup::Unknown);
        assert_eq!(b.check("nope", Some("key:x")).await.unwrap(), Lookup::Unknown);
        assert_eq!(touches(), 3);
        // Once the answer is as old as the interval, the store is asked again (and marks the
        // session seen).
        clock.advance(every - Duration::from_millis(1));
        assert_eq!(b.check("s1", Some("key:x")).await.unwrap(), Lookup::Ok);
        assert_eq!(touches(), 3);
        clock.advance(Duration::from_millis(1));
        assert_eq!(b.check("s1", Some("key:x")).await.unwrap(), Lookup::Ok);
        assert_eq!(touches(), 4);
        // Ended at A: over at A at once; at B within the interval.
        assert!(a.close("s1").await.unwrap());
        assert_eq!(a.check("s1", Some("key:x")).await.unwrap(), Lookup::Unknown);
        assert_eq!(b.check("s1", Some("key:x")).await.unwrap(), Lookup::Ok);
        clock.advance(every);
        assert_eq!(b.check("s1", Some("key:x")).await.unwrap(), Lookup::Unknown);
        a.open("s2", None).await.unwrap();
        assert_eq!(a.check("s2", None).await.unwrap(), Lookup::Ok);
        // The reaper's tick forgets every answer: sessions it ended are unknown at once.
        clock.advance(Duration::from_secs(60));
        assert_eq!(a.forget_idle(Duration::from_secs(30)).await.unwrap(), 1);
        assert_eq!(a.check("s2", None).await.unwrap(), Lookup::Unknown);
        // Zero: the store is asked at every request.
        let c = SessionRegistry::with_store(limits(5, 10, 10), store.clone(), clock.clone(), &OsEntropy)
            .rechecking(Duration::ZERO);
        c.open("s3", None).await.unwrap();
        let before = touches();
        c.check("s3", None).await.unwrap();
        c.check("s3", None).await.unwrap();
        assert_eq!(touches(), before + 2);
    }

    /// A store that does not answer: every check fails closed with the store's error.
    #[tokio::test]
    async fn an_unavailable_store_fails_closed() {
        let r = SessionRegistry::with_store(
            SessionLimits::default(),
            Arc::new(mcpgate_store::unavailable::Unavailable("down".into())),
            Arc::new(SystemClock),
            &OsEntropy,
        );
        assert!(matches!(r.check("s", Some("key:a")).await, Err(SessionError::Store(_))));
        assert!(matches!(r.reserve(Some("key:a")).await, Err(SessionError::Store(_))));
    }
}
