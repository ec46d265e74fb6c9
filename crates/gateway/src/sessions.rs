//! The sessions this gateway has seen opened, whatever the upstream, and who opened each. A
//! session id the gateway did not see issued is refused, so ids cannot be guessed or carried over;
//! a session is bound to the principal that opened it. Entries idle longer than the configured
//! timeout are forgotten.
//!
//! It also caps what one caller can hold open: sessions per principal (each may cost an upstream
//! child process or upstream state), and GET streams per principal and in all (each holds a
//! connection, an upstream stream and memory for as long as the client likes). Callers without a
//! credential count as one principal, so anonymous traffic cannot multiply its share.

use crate::clock::{Clock, SystemClock};
use axum::response::Response;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The bucket callers without a credential share; principal ids are `key:…`, `jwt:…` and so on,
/// and the default-role principal's id is this same word.
const ANONYMOUS: &str = "anonymous";

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

pub struct SessionRegistry {
    /// Shared with the stream permits (which mark their session in use).
    inner: Arc<Mutex<Inner>>,
    /// Shared with the permits, which outlive any borrow of the registry (they ride in response
    /// bodies).
    streams: Arc<Mutex<StreamCounts>>,
    limits: SessionLimits,
    /// Idleness is measured on this clock's monotonic time.
    clock: Arc<dyn Clock>,
}

impl Default for SessionRegistry {
    fn default() -> Self {
        SessionRegistry::new(SessionLimits::default())
    }
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Entry>,
    /// Sessions open or being opened, per bucket. Entries at zero are removed.
    per_owner: HashMap<String, usize>,
}

struct Entry {
    /// Monotonic µs of the clock when the session was last used.
    last_seen: i64,
    /// The principal that opened the session (`None`: opened without a credential).
    owner: Option<String>,
    /// GET streams open on this session now: a session with one is in use, never idle.
    streams: usize,
}

#[derive(Default)]
struct StreamCounts {
    total: usize,
    per_principal: HashMap<String, usize>,
}

fn bucket(owner: Option<&str>) -> &str {
    owner.unwrap_or(ANONYMOUS)
}

impl Inner {
    fn add(&mut self, owner: Option<&str>) {
        *self.per_owner.entry(bucket(owner).to_string()).or_default() += 1;
    }

    fn remove(&mut self, owner: Option<&str>) {
        let b = bucket(owner);
        if let Some(n) = self.per_owner.get_mut(b) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_owner.remove(b);
            }
        }
    }

    /// Records a session whose count was already taken.
    fn insert(&mut self, id: &str, owner: Option<&str>, now_us: i64) {
        let entry = Entry {
            last_seen: now_us,
            owner: owner.map(str::to_string),
            streams: 0,
        };
        // An id issued twice replaces the first entry; its count goes with it.
        if let Some(old) = self.map.insert(id.to_string(), entry) {
            self.remove(old.owner.as_deref());
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
    pub fn new(limits: SessionLimits) -> Self {
        SessionRegistry::with_clock(limits, Arc::new(SystemClock))
    }

    pub fn with_clock(limits: SessionLimits, clock: Arc<dyn Clock>) -> Self {
        SessionRegistry {
            inner: Arc::default(),
            streams: Arc::default(),
            limits,
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a place for one more session of `owner`, before `initialize` goes upstream, so the
    /// cap holds even when one caller sends many at once. Dropping the slot unused gives the
    /// place back (the upstream failed, or issued no session id).
    pub fn reserve(&self, owner: Option<&str>) -> Result<SessionSlot<'_>, CapReached> {
        let mut inner = self.lock();
        let held = inner.per_owner.get(bucket(owner)).copied().unwrap_or(0);
        if held >= self.limits.sessions_per_principal {
            return Err(CapReached::SessionsPerPrincipal {
                limit: self.limits.sessions_per_principal,
            });
        }
        inner.add(owner);
        Ok(SessionSlot {
            registry: self,
            owner: owner.map(str::to_string),
            used: false,
        })
    }

    /// Records a session without checking the cap (it still counts toward it).
    pub fn open(&self, id: &str, owner: Option<&str>) {
        let now = self.clock.mono_us();
        let mut inner = self.lock();
        inner.add(owner);
        inner.insert(id, owner, now);
    }

    /// Whether `principal` may use the session; marks it used when so.
    pub fn check(&self, id: &str, principal: Option<&str>) -> Lookup {
        let now = self.clock.mono_us();
        let mut inner = self.lock();
        match inner.map.get_mut(id) {
            None => Lookup::Unknown,
            Some(e) if e.owner.is_none() && principal.is_some() => Lookup::OpenedAnonymously,
            Some(e) if e.owner.as_deref() != principal => Lookup::OwnedByOther,
            Some(e) => {
                e.last_seen = now;
                Lookup::Ok
            }
        }
    }

    pub fn close(&self, id: &str) -> bool {
        let mut inner = self.lock();
        match inner.map.remove(id) {
            Some(e) => {
                inner.remove(e.owner.as_deref());
                true
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sessions `owner` holds (or is opening).
    pub fn count_of(&self, owner: Option<&str>) -> usize {
        self.lock().per_owner.get(bucket(owner)).copied().unwrap_or(0)
    }

    pub fn forget_idle(&self, limit: Duration) -> usize {
        let now = self.clock.mono_us();
        let limit_us = i64::try_from(limit.as_micros()).unwrap_or(i64::MAX);
        let mut inner = self.lock();
        let idle: Vec<String> = inner
            .map
            .iter()
            .filter(|(_, e)| e.streams == 0 && now.saturating_sub(e.last_seen) >= limit_us)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &idle {
            if let Some(e) = inner.map.remove(id) {
                inner.remove(e.owner.as_deref());
            }
        }
        idle.len()
    }

    /// A place for one more open GET stream of `principal`, or which cap is full. Hold the permit
    /// as long as the stream is open: [`StreamPermit::attach`] ties it to the response body.
    /// `session`: the session the stream belongs to, kept from being forgotten as idle while the
    /// stream is open (and seen again when it ends).
    pub fn stream_permit(&self, principal: Option<&str>, session: Option<&str>) -> Result<StreamPermit, CapReached> {
        let mut counts = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if counts.total >= self.limits.streams {
            return Err(CapReached::Streams {
                limit: self.limits.streams,
            });
        }
        let b = bucket(principal);
        let held = counts.per_principal.get(b).copied().unwrap_or(0);
        if held >= self.limits.streams_per_principal {
            return Err(CapReached::StreamsPerPrincipal {
                limit: self.limits.streams_per_principal,
            });
        }
        counts.total += 1;
        counts.per_principal.insert(b.to_string(), held + 1);
        drop(counts);
        let session = session.and_then(|id| {
            let mut inner = self.lock();
            let e = inner.map.get_mut(id)?;
            e.streams += 1;
            e.last_seen = self.clock.mono_us();
            Some(id.to_string())
        });
        Ok(StreamPermit {
            counts: self.streams.clone(),
            inner: self.inner.clone(),
            clock: self.clock.clone(),
            principal: b.to_string(),
            session,
        })
    }

    /// GET streams open now, in all.
    pub fn open_streams(&self) -> usize {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

/// A reserved place for a session; see [`SessionRegistry::reserve`].
pub struct SessionSlot<'a> {
    registry: &'a SessionRegistry,
    owner: Option<String>,
    used: bool,
}

impl SessionSlot<'_> {
    /// The upstream issued `id`: the session now exists and keeps the place.
    pub fn open(mut self, id: &str) {
        self.used = true;
        let now = self.registry.clock.mono_us();
        self.registry.lock().insert(id, self.owner.as_deref(), now);
    }
}

impl Drop for SessionSlot<'_> {
    fn drop(&mut self) {
        if !self.used {
            self.registry.lock().remove(self.owner.as_deref());
        }
    }
}

/// One open GET stream's place; dropping it frees the place.
pub struct StreamPermit {
    counts: Arc<Mutex<StreamCounts>>,
    inner: Arc<Mutex<Inner>>,
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
        if let Some(id) = &self.session {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(e) = inner.map.get_mut(id) {
                e.streams = e.streams.saturating_sub(1);
                e.last_seen = self.clock.mono_us();
            }
        }
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_principal.get_mut(&self.principal) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_principal.remove(&self.principal);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_bound_to_their_opener() {
        let r = SessionRegistry::default();
        r.open("s1", Some("key:a"));
        assert_eq!(r.check("s1", Some("key:a")), Lookup::Ok);
        assert_eq!(r.check("s1", Some("key:b")), Lookup::OwnedByOther);
        assert_eq!(r.check("s1", None), Lookup::OwnedByOther);
        assert_eq!(r.check("s2", Some("key:a")), Lookup::Unknown);
        r.open("anon", None);
        assert_eq!(r.check("anon", None), Lookup::Ok);
        assert_eq!(r.check("anon", Some("key:a")), Lookup::OpenedAnonymously);
        assert!(r.close("s1"));
        assert_eq!(r.check("s1", Some("key:a")), Lookup::Unknown);
    }

    fn limits(sessions: usize, streams_each: usize, streams: usize) -> SessionLimits {
        SessionLimits {
            sessions_per_principal: sessions,
            streams_per_principal: streams_each,
            streams,
        }
    }

    #[test]
    fn sessions_per_principal_are_capped_and_freed() {
        let r = SessionRegistry::new(limits(2, 10, 10));
        r.reserve(Some("key:a")).unwrap().open("a1");
        let pending = r.reserve(Some("key:a")).unwrap();
        // A reservation counts: a burst of initializes cannot overshoot the cap.
        assert_eq!(
            r.reserve(Some("key:a")).err(),
            Some(CapReached::SessionsPerPrincipal { limit: 2 })
        );
        // Others are not affected.
        r.reserve(Some("key:b")).unwrap().open("b1");
        // An unused reservation gives its place back.
        drop(pending);
        assert_eq!(r.count_of(Some("key:a")), 1);
        r.reserve(Some("key:a")).unwrap().open("a2");
        assert!(r.reserve(Some("key:a")).is_err());
        // Closing and forgetting free places too.
        assert!(r.close("a1"));
        r.reserve(Some("key:a")).unwrap().open("a3");
        assert_eq!(r.forget_idle(Duration::ZERO), 3);
        assert_eq!(r.count_of(Some("key:a")), 0);
        assert!(r.is_empty());
    }

    #[test]
    fn anonymous_callers_share_one_bucket() {
        let r = SessionRegistry::new(limits(2, 1, 10));
        r.reserve(None).unwrap().open("x");
        r.reserve(Some(ANONYMOUS)).unwrap().open("y");
        assert!(r.reserve(None).is_err());
        let s = r.stream_permit(None, None).unwrap();
        assert_eq!(
            r.stream_permit(Some(ANONYMOUS), None).err(),
            Some(CapReached::StreamsPerPrincipal { limit: 1 })
        );
        drop(s);
        assert!(r.stream_permit(Some(ANONYMOUS), None).is_ok());
    }

    #[test]
    fn reissued_id_is_counted_once() {
        let r = SessionRegistry::new(limits(5, 1, 1));
        r.open("same", Some("key:a"));
        r.open("same", Some("key:a"));
        assert_eq!(r.count_of(Some("key:a")), 1);
        r.open("same", Some("key:b"));
        assert_eq!((r.count_of(Some("key:a")), r.count_of(Some("key:b"))), (0, 1));
    }

    #[test]
    fn stream_permits_cap_per_principal_and_in_all() {
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
    #[test]
    fn an_open_stream_keeps_its_session() {
        let clock = Arc::new(crate::clock::ManualClock::at(0));
        let r = SessionRegistry::with_clock(SessionLimits::default(), clock.clone());
        r.open("s1", Some("key:a"));
        r.open("s2", Some("key:a"));
        let permit = r.stream_permit(Some("key:a"), Some("s1")).unwrap();
        clock.advance(Duration::from_millis(5));
        assert_eq!(r.forget_idle(Duration::from_millis(1)), 1, "only s2 is idle");
        assert_eq!(r.check("s1", Some("key:a")), Lookup::Ok);
        assert_eq!(r.check("s2", Some("key:a")), Lookup::Unknown);
        clock.advance(Duration::from_millis(5));
        drop(permit);
        assert_eq!(
            r.forget_idle(Duration::from_millis(3)),
            0,
            "the stream's end counts as seen"
        );
        clock.advance(Duration::from_millis(5));
        assert_eq!(r.forget_idle(Duration::from_millis(3)), 1);
        // A permit for a session that is gone (or none) marks nothing and frees its place.
        let p = r.stream_permit(Some("key:a"), Some("gone")).unwrap();
        drop(p);
        assert_eq!(r.open_streams(), 0);
    }
}
