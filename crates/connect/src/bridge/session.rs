//! The session the bridge holds for the host: its id and negotiated protocol version, the
//! host's `initialize` (to start a new session when the server lost the old one), and the signal
//! that opens the standalone GET stream.
//!
//! Every send reads a [`Snapshot`] under a read lock; starting a new session takes the write
//! lock for its whole length, so no message goes out with a dead session id meanwhile, and the
//! epoch tells a message refused with an old id that another one already started a new session.

use super::Ctx;
use super::frame::{self, Frame, Kind};
use super::send::{self, Failure, Via};
use bytes::Bytes;
use http::HeaderValue;
use mcpgate_core::jsonrpc::code;
use serde_json::value::RawValue;
use tokio::sync::{RwLock, watch};

/// The session as one message is sent with it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    pub id: Option<HeaderValue>,
    pub version: Option<HeaderValue>,
    /// Counts sessions: a new one (the host's initialize, or one started again) adds one.
    pub epoch: u64,
    /// How many times the credentials had changed when this session was opened.
    pub credentials: u64,
}

struct State {
    now: Snapshot,
    /// The host's last successful `initialize`, as it sent it.
    init: Option<Bytes>,
    reinits: u64,
}

pub(crate) struct Session {
    state: RwLock<State>,
    /// Counts credential changes (a 401 after which the provider had others: a fresh token, the
    /// fallback key). A server that binds sessions to the credential that opened them (mcpgate
    /// does) refuses the old session under the new one with 403.
    credentials: std::sync::atomic::AtomicU64,
    /// The session the standalone stream should listen on (set once it is initialized).
    open: watch::Sender<Option<Snapshot>>,
}

const INITIALIZED: &[u8] = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

impl Session {
    pub(crate) fn new() -> Session {
        Session {
            state: RwLock::new(State {
                now: Snapshot::default(),
                init: None,
                reinits: 0,
            }),
            credentials: std::sync::atomic::AtomicU64::new(0),
            open: watch::Sender::new(None),
        }
    }

    /// The session to send the next message with (waits while a new one is being started).
    pub(crate) async fn snapshot(&self) -> Snapshot {
        self.state.read().await.now.clone()
    }

    /// The provider moved to other credentials.
    pub(crate) fn credentials_changed(&self) {
        self.credentials.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn credentials(&self) -> u64 {
        self.credentials.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether `session` was opened under credentials the provider has since left.
    pub(crate) fn opened_under_old_credentials(&self, session: &Snapshot) -> bool {
        session.credentials < self.credentials()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Option<Snapshot>> {
        self.open.subscribe()
    }

    /// The host's `initialize` (`init`) was answered with `answer`, in a response that carried
    /// `id`. Called before the answer reaches the host, so that its next message has the id.
    pub(crate) async fn initialized(&self, init: &Bytes, id: Option<HeaderValue>, answer: &[u8]) {
        let mut state = self.state.write().await;
        state.init = Some(init.clone());
        state.now = Snapshot {
            id,
            version: version_of(answer),
            epoch: state.now.epoch + 1,
            credentials: self.credentials(),
        };
    }

    /// The server accepted the host's `notifications/initialized`: the standalone stream may open.
    pub(crate) async fn opened(&self) {
        let now = self.snapshot().await;
        if now.id.is_some() {
            self.open.send_replace(Some(now));
        }
    }

    /// The server answered 404 to a message sent with `failed` (or 403 to one whose session was
    /// opened under credentials since replaced): start a new session by replaying
    /// the host's `initialize` under an id of the bridge's own (its answer is not the host's), then
    /// `notifications/initialized`. Once per lost session, however many messages were refused.
    pub(crate) async fn recover(&self, ctx: &Ctx, failed: &Snapshot) -> Result<(), Failure> {
        let mut state = self.state.write().await;
        if state.now.epoch != failed.epoch {
            return Ok(());
        }
        let lost = |why: &str| Failure::GaveUp {
            code: code::SESSION_NOT_FOUND,
            message: format!("the server lost the session (404) and {why}"),
        };
        let Some(init) = state.init.clone() else {
            return Err(lost("no initialize is known to start a new one"));
        };
        state.reinits += 1;
        let request =
            reinit_request(&init, state.reinits).ok_or_else(|| lost("its initialize could not be replayed"))?;
        // Boxed: sending may itself need a new session (the recursion ends there: `Fixed` never does).
        let answer = Box::pin(send::exchange(ctx, &request, &Via::Fixed(Snapshot::default())))
            .await
            .map_err(|f| lost(&format!("starting a new one failed: {}", f.message())))?;
        let response = answer.response.unwrap_or_default();
        if frame::is_error(&response) {
            return Err(lost("the server refused a new one"));
        }
        let fresh = Snapshot {
            id: answer.session_id,
            version: version_of(&response),
            epoch: state.now.epoch + 1,
            credentials: self.credentials(),
        };
        let note = Frame {
            body: Bytes::from_static(INITIALIZED),
            kind: Kind::Notification,
            method: Some("notifications/initialized".into()),
            name: None,
            version: None,
        };
        Box::pin(send::exchange(ctx, &note, &Via::Fixed(fresh.clone())))
            .await
            .map_err(|f| lost(&format!("the new one could not be completed: {}", f.message())))?;
        state.now = fresh.clone();
        tracing::warn!(
            "the server lost the session; initialized again (what the old session held — subscriptions, the log \
             level — is gone)"
        );
        if fresh.id.is_some() {
            self.open.send_replace(Some(fresh));
        }
        Ok(())
    }
}

/// The host's `initialize` with the id `mcpgate-connect-reinit-N`.
fn reinit_request(init: &[u8], n: u64) -> Option<Frame> {
    let mut message: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(init).ok()?;
    let id = format!("mcpgate-connect-reinit-{n}");
    message.insert("id".into(), serde_json::Value::String(id.clone()));
    let body = serde_json::to_vec(&message).ok()?;
    let id = RawValue::from_string(serde_json::to_string(&id).ok()?).ok()?;
    Some(Frame {
        body: Bytes::from(body),
        kind: Kind::Request { id },
        method: Some("initialize".into()),
        name: None,
        version: None,
    })
}

fn version_of(answer: &[u8]) -> Option<HeaderValue> {
    let version = frame::protocol_version(answer)?;
    frame::visible_ascii(&version)
        .then(|| HeaderValue::from_str(&version).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_initialize_under_its_own_id() {
        let init = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}"#;
        let request = reinit_request(init, 2).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["id"], "mcpgate-connect-reinit-2");
        assert_eq!(body["params"]["protocolVersion"], "2025-11-25");
        assert_eq!(request.id().unwrap().get(), r#""mcpgate-connect-reinit-2""#);
    }
}
