//! The headers of each request the bridge sends: the provider's credentials first, then the
//! transport's own, which win over a provider's header of the same name (a `--header Accept: …`
//! must not break the transport).

use super::frame::{Frame, Kind, visible_ascii};
use super::session::Snapshot;
use http::HeaderMap;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderName, HeaderValue};

pub(crate) const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
pub(crate) const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
pub(crate) const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
/// MCP 2026-07-28: the method and target of every POST, for routing without reading the body.
/// Older servers ignore them.
const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const BOTH: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
const EVENTS: HeaderValue = HeaderValue::from_static("text/event-stream");

/// A POST carrying `frame`. `initialize` starts a session, so it carries neither the session id
/// nor a version; every other message carries both once known.
pub(crate) fn post(auth: &HeaderMap, session: &Snapshot, frame: &Frame) -> HeaderMap {
    let mut h = auth.clone();
    h.insert(CONTENT_TYPE, JSON);
    h.insert(ACCEPT, BOTH);
    if frame.method() != "initialize" {
        add_session(&mut h, session);
    }
    // A message that names its protocol version (2026-07-28: `server/discover` and every request
    // after it, with no session) is sent under that version.
    if let Some(v) = frame.version.as_deref().and_then(ascii_value) {
        h.insert(PROTOCOL_VERSION, v);
    }
    if !matches!(frame.kind, Kind::Response) {
        if let Some(v) = frame.method.as_deref().and_then(ascii_value) {
            h.insert(MCP_METHOD, v);
        }
        if let Some(v) = frame.name.as_deref().and_then(ascii_value) {
            h.insert(MCP_NAME, v);
        }
    }
    h
}

/// A GET for server messages: the standalone stream, or a stream resumed after `last_event_id`.
pub(crate) fn get(auth: &HeaderMap, session: &Snapshot, last_event_id: Option<&str>) -> HeaderMap {
    let mut h = auth.clone();
    h.insert(ACCEPT, EVENTS);
    add_session(&mut h, session);
    if let Some(v) = last_event_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        h.insert(LAST_EVENT_ID, v);
    }
    h
}

/// The DELETE ending the session.
pub(crate) fn delete(auth: &HeaderMap, session: &Snapshot) -> HeaderMap {
    let mut h = auth.clone();
    add_session(&mut h, session);
    h
}

fn add_session(h: &mut HeaderMap, session: &Snapshot) {
    if let Some(id) = &session.id {
        h.insert(SESSION_ID, id.clone());
    }
    if let Some(v) = &session.version {
        h.insert(PROTOCOL_VERSION, v.clone());
    }
}

fn ascii_value(value: &str) -> Option<HeaderValue> {
    visible_ascii(value)
        .then(|| HeaderValue::from_str(value).ok())
        .flatten()
}

/// A header of an answer as visible ASCII (a session id; nothing else is accepted there).
pub(crate) fn visible(headers: &HeaderMap, name: &HeaderName) -> Option<HeaderValue> {
    let value = headers.get(name)?;
    value.to_str().ok().filter(|v| visible_ascii(v))?;
    Some(value.clone())
}

/// The media type of an answer, lower-cased and without parameters.
pub(crate) fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::frame::classify;
    use super::*;

    #[test]
    fn protocol_headers() {
        let session = Snapshot {
            id: Some(HeaderValue::from_static("s-1")),
            version: Some(HeaderValue::from_static("2025-11-25")),
            epoch: 1,
            ..Snapshot::default()
        };
        let mut auth = HeaderMap::new();
        auth.insert("x-api-key", HeaderValue::from_static("k"));
        auth.insert(ACCEPT, HeaderValue::from_static("text/html"));
        let call =
            classify(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#.to_vec()).unwrap();
        let h = post(&auth, &session, &call);
        assert_eq!(h["x-api-key"], "k");
        assert_eq!(h[ACCEPT], "application/json, text/event-stream");
        assert_eq!(h[CONTENT_TYPE], "application/json");
        assert_eq!(h[SESSION_ID], "s-1");
        assert_eq!(h[PROTOCOL_VERSION], "2025-11-25");
        assert_eq!(h[MCP_METHOD], "tools/call");
        assert_eq!(h[MCP_NAME], "echo");

        let init = classify(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#.to_vec()).unwrap();
        let h = post(&auth, &session, &init);
        assert!(h.get(SESSION_ID).is_none() && h.get(PROTOCOL_VERSION).is_none());

        let odd = classify(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"é t"}}"#.into()).unwrap();
        assert!(post(&auth, &session, &odd).get(MCP_NAME).is_none());

        let h = get(&auth, &session, Some("e-7"));
        assert_eq!(h[ACCEPT], "text/event-stream");
        assert_eq!(h[LAST_EVENT_ID], "e-7");
        assert_eq!(h[SESSION_ID], "s-1");
    }

    /// 2026-07-28: a message that names its version in `_meta` is sent under it, with no session
    /// (`server/discover` first, then every request); a name that is not visible ASCII is not sent.
    #[test]
    fn a_message_that_names_its_version_is_sent_under_it() {
        let none = Snapshot::default();
        let auth = HeaderMap::new();
        let discover = classify(
            br#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#.to_vec(),
        )
        .unwrap();
        let h = post(&auth, &none, &discover);
        assert_eq!(h[PROTOCOL_VERSION], "2026-07-28");
        assert!(h.get(SESSION_ID).is_none());
        let list = classify(
            br#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#.to_vec(),
        )
        .unwrap();
        let session = Snapshot {
            version: Some(HeaderValue::from_static("2025-11-25")),
            ..Snapshot::default()
        };
        assert_eq!(
            post(&auth, &session, &list)[PROTOCOL_VERSION],
            "2026-07-28",
            "the message's own wins"
        );
        let odd = classify(
            r#"{"jsonrpc":"2.0","id":3,"method":"ping","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"x\ny"}}}"#.into(),
        )
        .unwrap();
        assert!(post(&auth, &none, &odd).get(PROTOCOL_VERSION).is_none());
    }
}
