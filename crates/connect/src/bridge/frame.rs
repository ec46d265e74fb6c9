//! What the bridge reads on stdin and writes on stdout: one JSON-RPC message a line.
//!
//! A line read is forwarded as the bytes read (only the line ending is cut): an HMAC signature
//! covers them, and a bridge that re-serialised would change key order, escapes and numbers.
//! So a message is only *peeked* — `id`, `method`, whether it carries `result`/`error`, and
//! `params.name`/`params.uri` for the `Mcp-Name` header — never rebuilt. A line that is not one
//! JSON-RPC message is refused here, with the JSON-RPC error JSON-RPC 2.0 §5 prescribes.

use bytes::Bytes;
use mcpgate_core::jsonrpc::{code, error_body};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::borrow::Cow;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// The longest line read; a longer one is refused without being kept.
pub(crate) const MAX_LINE: usize = 16 * 1024 * 1024;

/// One read from stdin.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A line without its ending.
    Text(Vec<u8>),
    /// A line longer than the limit (its bytes were dropped as they came).
    TooLong,
    Eof,
}

/// Splits stdin into lines of at most `max` bytes. Cancel-safe: every piece of state lives in
/// `self` and the only await is `fill_buf`, so `next` may lose a `select!` race without losing
/// bytes.
pub(crate) struct LineReader<R> {
    inner: BufReader<R>,
    buf: Vec<u8>,
    max: usize,
    /// Inside a line already refused as too long: drop bytes up to its end.
    skipping: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub(crate) fn new(input: R, max: usize) -> LineReader<R> {
        LineReader {
            inner: BufReader::with_capacity(64 * 1024, input),
            buf: Vec::new(),
            max,
            skipping: false,
        }
    }

    pub(crate) async fn next(&mut self) -> std::io::Result<Line> {
        loop {
            let chunk = self.inner.fill_buf().await?;
            if chunk.is_empty() {
                self.skipping = false;
                if self.buf.is_empty() {
                    return Ok(Line::Eof);
                }
                return Ok(Line::Text(trim_cr(std::mem::take(&mut self.buf))));
            }
            let (piece, ends) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            let consumed = if ends { piece + 1 } else { piece };
            if self.skipping {
                self.inner.consume(consumed);
                self.skipping = !ends;
                continue;
            }
            if self.buf.len() + piece > self.max {
                self.buf = Vec::new();
                self.inner.consume(consumed);
                self.skipping = !ends;
                return Ok(Line::TooLong);
            }
            self.buf.extend_from_slice(&chunk[..piece]);
            self.inner.consume(consumed);
            if ends {
                return Ok(Line::Text(trim_cr(std::mem::take(&mut self.buf))));
            }
        }
    }
}

fn trim_cr(mut line: Vec<u8>) -> Vec<u8> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    line
}

/// What a message is, by JSON-RPC's rules.
#[derive(Debug)]
pub(crate) enum Kind {
    Request {
        id: Box<RawValue>,
    },
    Notification,
    /// An answer to a server→client request (elicitation, sampling, roots).
    Response,
}

/// A message read on stdin, ready to be POSTed as it is.
#[derive(Debug)]
pub(crate) struct Frame {
    /// The exact bytes read.
    pub body: Bytes,
    pub kind: Kind,
    pub method: Option<String>,
    /// `params.name` (tools/call, prompts/get) or `params.uri` (resources/read).
    pub name: Option<String>,
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]`: a 2026-07-28 message names its
    /// version itself, and its `MCP-Protocol-Version` header must say the same.
    pub version: Option<String>,
}

impl Frame {
    pub(crate) fn method(&self) -> &str {
        self.method.as_deref().unwrap_or("")
    }

    pub(crate) fn id(&self) -> Option<&RawValue> {
        match &self.kind {
            Kind::Request { id } => Some(id),
            _ => None,
        }
    }

    /// What to call this message in a log line.
    pub(crate) fn describe(&self) -> String {
        match (&self.kind, self.method.as_deref()) {
            (Kind::Request { id }, Some(m)) => format!("request {m} (id {})", short(id.get())),
            (Kind::Notification, Some(m)) => format!("notification {m}"),
            _ => "response to a server request".into(),
        }
    }
}

/// At most 64 characters of `text`, for log lines (an id may be a megabyte long).
fn short(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// Why a line is not forwarded.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Not JSON.
    Parse,
    /// A JSON-RPC batch: MCP 2025-06-18 and later have none.
    Batch,
    /// JSON, but not an object.
    NotObject,
    /// An object that is neither a request, a notification nor a response.
    Invalid {
        id: Option<Box<RawValue>>,
    },
    TooLong,
}

impl Refusal {
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Refusal::Parse => "the line is not JSON",
            Refusal::Batch => "JSON-RPC batches are not part of MCP; send one message a line",
            Refusal::NotObject => "the line is not a JSON-RPC message (not an object)",
            Refusal::Invalid { .. } => "the line is not a JSON-RPC request, notification or response",
            Refusal::TooLong => "the line is longer than 16 MiB",
        }
    }

    /// The JSON-RPC error answering the line (id `null` where none could be read).
    pub(crate) fn reply(&self) -> Vec<u8> {
        let code = match self {
            Refusal::Parse => code::PARSE_ERROR,
            _ => code::INVALID_REQUEST,
        };
        let id = match self {
            Refusal::Invalid { id } => id.as_deref(),
            _ => None,
        };
        error_body(id, code, self.reason(), None)
    }
}

/// `Some(raw)` for a member that is present, `null` included (serde's `Option` would read
/// `null` as absent, and `"id": null` is not the same as no id).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// The members the bridge looks at; everything else is skipped unread.
#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    error: Option<&'a RawValue>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct PeekParams<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    uri: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "_meta")]
    meta: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct PeekMeta<'a> {
    #[serde(default, borrow, rename = "io.modelcontextprotocol/protocolVersion")]
    version: Option<Cow<'a, str>>,
}

fn first_byte(bytes: &[u8]) -> Option<u8> {
    bytes.iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// A JSON-RPC id the bridge accepts from the host: a string or a number.
fn is_id(raw: &RawValue) -> bool {
    matches!(first_byte(raw.get().as_bytes()), Some(b'"' | b'-' | b'0'..=b'9'))
}

/// Reads one line into a [`Frame`], or says why it is not one.
pub(crate) fn classify(line: Vec<u8>) -> Result<Frame, Refusal> {
    if serde_json::from_slice::<&RawValue>(&line).is_err() {
        return Err(Refusal::Parse);
    }
    match first_byte(&line) {
        Some(b'{') => {}
        Some(b'[') => return Err(Refusal::Batch),
        _ => return Err(Refusal::NotObject),
    }
    let (kind, method, name, version) = {
        // Duplicate members are refused here too: which of two ids would the server answer?
        let peek: Peek<'_> = serde_json::from_slice(&line).map_err(|_| Refusal::Invalid { id: None })?;
        let readable_id = peek.id.filter(|id| is_id(id)).map(|id| id.to_owned());
        let invalid = || Refusal::Invalid {
            id: readable_id.clone(),
        };
        let method = match peek.method {
            Some(raw) => Some(serde_json::from_str::<String>(raw.get()).map_err(|_| invalid())?),
            None => None,
        };
        let kind = match (&method, peek.id) {
            (Some(_), None) => Kind::Notification,
            (Some(_), Some(id)) if is_id(id) => Kind::Request { id: id.to_owned() },
            (None, Some(_)) if peek.result.is_some() != peek.error.is_some() => Kind::Response,
            _ => return Err(invalid()),
        };
        let params = peek.params.and_then(peek_params);
        let name = match (method.as_deref(), &params) {
            (Some("tools/call" | "prompts/get"), Some(p)) => p.name.clone().map(Cow::into_owned),
            (Some("resources/read"), Some(p)) => p.uri.clone().map(Cow::into_owned),
            _ => None,
        };
        let version = params
            .and_then(|p| p.meta)
            .and_then(|m| serde_json::from_str::<PeekMeta<'_>>(m.get()).ok())
            .and_then(|m| m.version)
            .map(Cow::into_owned);
        (kind, method, name, version)
    };
    Ok(Frame {
        body: Bytes::from(line),
        kind,
        method,
        name,
        version,
    })
}

fn peek_params(raw: &RawValue) -> Option<PeekParams<'_>> {
    serde_json::from_str(raw.get()).ok()
}

/// The id of `msg` when it is a response (no `method`, a `result` or an `error`).
pub(crate) fn response_id(msg: &[u8]) -> Option<Box<RawValue>> {
    let peek: Peek<'_> = serde_json::from_slice(msg).ok()?;
    if peek.method.is_some() || (peek.result.is_none() && peek.error.is_none()) {
        return None;
    }
    peek.id.map(|id| id.to_owned())
}

/// Whether two JSON-RPC ids are the same id (`"a"` and `"\u0061"` are; `1` and `"1"` are not).
pub(crate) fn same_id(a: &RawValue, b: &RawValue) -> bool {
    if a.get() == b.get() {
        return true;
    }
    match (
        serde_json::from_str::<serde_json::Value>(a.get()),
        serde_json::from_str::<serde_json::Value>(b.get()),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Whether `msg` is the response to the request `id`.
pub(crate) fn answers(msg: &[u8], id: &RawValue) -> bool {
    response_id(msg).is_some_and(|got| same_id(&got, id))
}

/// Whether `msg` is a JSON-RPC error response.
pub(crate) fn is_error(msg: &[u8]) -> bool {
    serde_json::from_slice::<Peek<'_>>(msg).is_ok_and(|p| p.method.is_none() && p.error.is_some())
}

/// `result.protocolVersion` of an initialize answer.
pub(crate) fn protocol_version(msg: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Answer {
        result: Init,
    }
    #[derive(Deserialize)]
    struct Init {
        #[serde(rename = "protocolVersion")]
        protocol_version: String,
    }
    serde_json::from_slice::<Answer>(msg)
        .ok()
        .map(|a| a.result.protocol_version)
}

/// A message from the server as one stdout line: `None` unless it is one JSON object. JSON allows
/// line breaks only between tokens (inside a string they are escaped), so each becomes a space
/// and the message otherwise keeps its bytes — no re-serialisation, no reordered keys.
pub(crate) fn to_line(msg: &[u8]) -> Option<Vec<u8>> {
    // Only objects: stdout carries JSON-RPC messages and nothing else.
    if first_byte(msg) != Some(b'{') {
        return None;
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(msg).ok()?;
    let msg = msg.trim_ascii();
    Some(
        msg.iter()
            .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b })
            .collect(),
    )
}

/// A visible-ASCII value (0x21–0x7E), as session ids and the 2026-07-28 `Mcp-*` headers must be.
pub(crate) fn visible_ascii(value: &str) -> bool {
    !value.is_empty() && value.len() <= 1024 && value.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(line: &str) -> Result<Frame, Refusal> {
        classify(line.as_bytes().to_vec())
    }

    #[test]
    fn kinds_and_peeks() {
        let call =
            frame(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#).unwrap();
        assert!(matches!(&call.kind, Kind::Request { id } if id.get() == "7"));
        assert_eq!(call.method.as_deref(), Some("tools/call"));
        assert_eq!(call.name.as_deref(), Some("echo"));

        let read =
            frame(r#"{"jsonrpc":"2.0","id":"r-1","method":"resources/read","params":{"uri":"file:///a"}}"#).unwrap();
        assert_eq!(read.name.as_deref(), Some("file:///a"));
        assert!(matches!(&read.kind, Kind::Request { id } if id.get() == r#""r-1""#));

        let note = frame(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(note.kind, Kind::Notification));
        let answer = frame(r#"{"jsonrpc":"2.0","id":"s1","result":{"action":"accept"}}"#).unwrap();
        assert!(matches!(answer.kind, Kind::Response));
        let refused = frame(r#"{"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"no"}}"#).unwrap();
        assert!(matches!(refused.kind, Kind::Response));
        let discover = frame(r#"{"jsonrpc":"2.0","id":0,"method":"server/discover"}"#).unwrap();
        assert!(matches!(discover.kind, Kind::Request { .. }));
        // params that are not an object: forwarded, no name.
        let odd = frame(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]}"#).unwrap();
        assert_eq!(odd.name, None);
    }

    #[test]
    fn refusals() {
        assert!(matches!(frame("not json"), Err(Refusal::Parse)));
        assert!(matches!(frame(r#"{"id":1,"#), Err(Refusal::Parse)));
        assert!(matches!(
            frame(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#),
            Err(Refusal::Batch)
        ));
        assert!(matches!(frame("42"), Err(Refusal::NotObject)));
        let Refusal::Invalid { id } = frame(r#"{"id":7}"#).unwrap_err() else {
            panic!("not invalid")
        };
        assert_eq!(id.unwrap().get(), "7");
        let Refusal::Invalid { id } = frame(r#"{"id":{"x":1},"method":"ping"}"#).unwrap_err() else {
            panic!("not invalid")
        };
        assert!(id.is_none());
        assert!(matches!(frame(r#"{"id":1,"method":3}"#), Err(Refusal::Invalid { .. })));
        assert!(matches!(
            frame(r#"{"id":1,"result":1,"error":{}}"#),
            Err(Refusal::Invalid { .. })
        ));
        assert!(matches!(
            frame(r#"{"id":1,"id":2,"method":"ping"}"#),
            Err(Refusal::Invalid { .. })
        ));

        let reply: serde_json::Value = serde_json::from_slice(&Refusal::Parse.reply()).unwrap();
        assert_eq!(reply["id"], serde_json::Value::Null);
        assert_eq!(reply["error"]["code"], -32700);
        let reply: serde_json::Value = serde_json::from_slice(&frame(r#"{"id":"x"}"#).unwrap_err().reply()).unwrap();
        assert_eq!(reply["id"], "x");
        assert_eq!(reply["error"]["code"], -32600);
    }

    #[test]
    fn ids_match_by_value() {
        let a = RawValue::from_string(r#""a""#.into()).unwrap();
        let escaped = RawValue::from_string(r#""\u0061""#.into()).unwrap();
        let one = RawValue::from_string("1".into()).unwrap();
        let one_s = RawValue::from_string(r#""1""#.into()).unwrap();
        assert!(same_id(&a, &escaped));
        assert!(!same_id(&one, &one_s));
        assert!(answers(br#"{"jsonrpc":"2.0","id":"\u0061","result":{}}"#, &a));
        assert!(!answers(br#"{"jsonrpc":"2.0","id":"a","method":"ping"}"#, &a));
        assert!(is_error(
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}"#
        ));
        assert_eq!(
            protocol_version(
                br#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{}}}"#
            ),
            Some("2025-11-25".into())
        );
    }

    #[test]
    fn server_messages_become_one_line() {
        assert_eq!(
            to_line(b"{\"a\":\n 1,\r\n\"b\":\"x\\ny\"}\n").unwrap(),
            b"{\"a\":  1,  \"b\":\"x\\ny\"}"
        );
        assert_eq!(to_line(br#"{"z":1,"a":2}"#).unwrap(), br#"{"z":1,"a":2}"#);
        assert_eq!(to_line(b"{\"a\":"), None);
        assert_eq!(to_line(b"42"), None);
        assert_eq!(to_line(b"[{}]"), None);
        assert_eq!(short(&"x".repeat(100)).chars().count(), 65);
        assert_eq!(to_line(b""), None);
    }

    async fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut reader = LineReader::new(input, max);
        let mut out = Vec::new();
        loop {
            let line = reader.next().await.unwrap();
            let end = line == Line::Eof;
            out.push(line);
            if end {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn lines_are_cut_and_bounded() {
        let text = |s: &str| Line::Text(s.as_bytes().to_vec());
        assert_eq!(
            lines(b"a\r\nbb\n\nccc", 8).await,
            vec![text("a"), text("bb"), text(""), text("ccc"), Line::Eof]
        );
        // A line over the limit is refused once, the next line read normally.
        let long = [b"x".repeat(20), b"\nok\n".to_vec()].concat();
        assert_eq!(lines(&long, 8).await, vec![Line::TooLong, text("ok"), Line::Eof]);
        // The limit is exact; an over-long last line without an ending is refused too.
        assert_eq!(
            lines(b"12345678\n123456789", 8).await,
            vec![text("12345678"), Line::TooLong, Line::Eof]
        );
    }
}
