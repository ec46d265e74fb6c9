//! One message, read and typed: [`read`] turns a body into canonical bytes (strict JSON, no
//! duplicate keys, one object), [`Message::parse`] checks the JSON-RPC envelope (`jsonrpc`, `id`,
//! `method`, `result`/`error`) and, for requests and notifications, has [`super::target`] read the
//! target from `params`.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

use super::canonical;
use super::error::ParseError;
use super::raw::{is_object, present, string, valid_id};
use super::target::{self, TargetKind};

/// What kind of JSON-RPC message a body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
}

/// A borrowed view of one JSON-RPC message.
#[derive(Debug)]
pub struct Message<'a> {
    pub kind: Kind,
    /// The id exactly as the sender wrote it (a string or an integer), if any.
    pub id: Option<&'a RawValue>,
    pub method: Option<Cow<'a, str>>,
    pub params: Option<&'a RawValue>,
    pub result: Option<&'a RawValue>,
    pub error: Option<&'a RawValue>,
    /// The tool name, resource URI or prompt name the message acts on (for `completion/complete`:
    /// the prompt or resource its `ref` names). Read strictly: present and typed whenever the
    /// method has one, or the message was refused.
    pub target: Option<(TargetKind, Cow<'a, str>)>,
    progress_token: Option<&'a RawValue>,
}

/// Reads `body` strictly and returns its canonical bytes: what the gateway parses, decides on
/// and forwards. Refuses what is not strict JSON, and batches.
pub fn read(body: &[u8]) -> Result<Vec<u8>, ParseError> {
    let canonical = canonical::canonicalize(body).map_err(|e| ParseError::Json(e.to_string()))?;
    match canonical.first() {
        Some(b'{') => Ok(canonical),
        Some(b'[') => Err(ParseError::Batch),
        _ => Err(ParseError::Invalid("expected a JSON object")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    params: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

/// Method names are short printable ASCII (every MCP method is).
fn valid_method(m: &str) -> bool {
    !m.is_empty() && m.len() <= 128 && m.bytes().all(|b| b.is_ascii_graphic())
}

impl<'a> Message<'a> {
    /// Types one message. `body` should be the output of [`read`] (strict, canonical); other
    /// well-formed JSON is read the same way but duplicate keys inside `params` go unnoticed.
    pub fn parse(body: &'a [u8]) -> Result<Message<'a>, ParseError> {
        match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => {}
            Some(b'[') => return Err(ParseError::Batch),
            _ => return Err(ParseError::Invalid("expected a JSON object")),
        }
        // serde's messages can quote the input: only its verdict is kept.
        let env: Envelope<'a> = serde_json::from_slice(body).map_err(|_| {
            ParseError::Invalid(
                "a message has only \"jsonrpc\", \"id\", \"method\", \"params\", \"result\" and \"error\", each once",
            )
        })?;
        if env.jsonrpc.map(RawValue::get) != Some("\"2.0\"") {
            return Err(ParseError::Invalid("\"jsonrpc\" must be \"2.0\""));
        }
        let method = match env.method {
            None => None,
            Some(raw) => match string(raw) {
                Some(m) if valid_method(&m) => Some(m),
                _ => {
                    return Err(ParseError::Invalid(
                        "\"method\" must be a method name (a short ASCII string)",
                    ));
                }
            },
        };
        let has_outcome = env.result.is_some() || env.error.is_some();
        let kind = match (&method, env.id, has_outcome) {
            (Some(_), _, true) => {
                return Err(ParseError::Invalid(
                    "a message is a request (\"method\") or a response (\"result\"/\"error\"), not both",
                ));
            }
            (Some(_), None, false) => Kind::Notification,
            (Some(_), Some(_), false) => Kind::Request,
            (None, _, true) => Kind::Response,
            (None, _, false) => {
                return Err(ParseError::Invalid(
                    "a message needs a \"method\" (request or notification) or a \"result\"/\"error\" (response)",
                ));
            }
        };
        match (kind, env.id) {
            (Kind::Request, Some(id)) if id.get() == "null" => {
                return Err(ParseError::Invalid(
                    "\"id\" must be a string or a number; a request with \"id\": null is refused",
                ));
            }
            (Kind::Response, None) => return Err(ParseError::Invalid("a response needs an \"id\"")),
            // JSON-RPC answers an unreadable request with "id": null, and only with an error.
            (Kind::Response, Some(id)) if id.get() == "null" && env.error.is_some() => {}
            (_, Some(id)) if !valid_id(id) => {
                return Err(ParseError::Invalid(
                    "\"id\" must be a string (at most 1024 characters) or an integer between -(2^53-1) and 2^53-1",
                ));
            }
            _ => {}
        }
        if env.result.is_some() && env.error.is_some() {
            return Err(ParseError::Invalid("a response has \"result\" or \"error\", not both"));
        }
        if let Some(e) = env.error {
            check_error_object(e)?;
        }
        // `"params": null` is read as no params (some clients write it; it names nothing), and a
        // method that needs a target then has none and is refused below.
        let params = env.params.filter(|p| p.get() != "null");
        if let Some(p) = params
            && !is_object(p)
        {
            return Err(ParseError::Params("\"params\" must be an object"));
        }
        let mut msg = Message {
            kind,
            id: env.id,
            method,
            params,
            result: env.result,
            error: env.error,
            target: None,
            progress_token: None,
        };
        if kind != Kind::Response {
            let read = target::read_params(msg.method(), msg.params)?;
            msg.target = read.target;
            msg.progress_token = read.progress_token;
        }
        Ok(msg)
    }

    pub fn method(&self) -> &str {
        self.method.as_deref().unwrap_or("")
    }

    /// The tool name of a `tools/call`, the URI of `resources/read`, the name of `prompts/get`,
    /// the prompt or resource of `completion/complete`: what policy rules match against.
    pub fn target(&self) -> Option<&str> {
        self.target.as_ref().map(|(_, t)| t.as_ref())
    }

    /// `params._meta.progressToken`, as raw JSON, when the caller asked for progress.
    pub fn progress_token(&self) -> Option<&'a RawValue> {
        self.progress_token
    }
}

/// A JSON-RPC error object: an integer `code` and a string `message`.
fn check_error_object(e: &RawValue) -> Result<(), ParseError> {
    #[derive(Deserialize)]
    struct ErrorObject<'b> {
        #[serde(borrow, default, deserialize_with = "present")]
        code: Option<&'b RawValue>,
        #[serde(borrow, default, deserialize_with = "present")]
        message: Option<&'b RawValue>,
    }
    let bad = || ParseError::Invalid("\"error\" must be an object with an integer \"code\" and a string \"message\"");
    if !is_object(e) {
        return Err(bad());
    }
    let obj: ErrorObject<'_> = serde_json::from_str(e.get()).map_err(|_| bad())?;
    let code_ok = obj.code.is_some_and(|c| c.get().parse::<i64>().is_ok());
    let message_ok = obj.message.is_some_and(|m| m.get().starts_with('"'));
    if code_ok && message_ok { Ok(()) } else { Err(bad()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::code;

    type Typed = (Kind, Option<String>, Option<(TargetKind, String)>);

    /// `read` then `parse`, as the gateway does.
    fn typed(body: &[u8]) -> Result<Typed, ParseError> {
        let canonical = read(body)?;
        let m = Message::parse(&canonical)?;
        Ok((
            m.kind,
            m.method.as_deref().map(str::to_string),
            m.target.map(|(k, t)| (k, t.into_owned())),
        ))
    }

    #[test]
    fn classifies_messages() {
        let body = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},"_meta":{"progressToken":"p1"}}}"#;
        let r = Message::parse(body).unwrap();
        assert_eq!(r.kind, Kind::Request);
        assert_eq!(r.id.unwrap().get(), "7");
        assert_eq!(r.target(), Some("echo"));
        assert_eq!(r.progress_token().unwrap().get(), "\"p1\"");

        let n = Message::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(n.kind, Kind::Notification);
        let s = Message::parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert_eq!(s.kind, Kind::Response);
        let e = Message::parse(br#"{"jsonrpc":"2.0","id":"a","error":{"code":1,"message":"m"}}"#).unwrap();
        assert_eq!(e.kind, Kind::Response);
        let e = Message::parse(br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"m"}}"#).unwrap();
        assert_eq!(e.kind, Kind::Response);
    }

    #[test]
    fn every_target_is_read() {
        let cases: &[(&[u8], TargetKind, &str)] = &[
            (br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#, TargetKind::Tool, "echo"),
            (br#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"greet","arguments":{}}}"#, TargetKind::Prompt, "greet"),
            (br#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"test://a"}}"#, TargetKind::Resource, "test://a"),
            (br#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"test://a"}}"#, TargetKind::Resource, "test://a"),
            (br#"{"jsonrpc":"2.0","id":1,"method":"resources/unsubscribe","params":{"uri":"test://a"}}"#, TargetKind::Resource, "test://a"),
            (br#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"greet"},"argument":{"name":"a","value":"b"}}}"#, TargetKind::Prompt, "greet"),
            (br#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"test://{x}"},"argument":{"name":"x","value":"b"}}}"#, TargetKind::Resource, "test://{x}"),
            // Escapes are decoded: the policy sees what the upstream will.
            (br#"{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"insp\u0065ct"}}"#, TargetKind::Tool, "inspect"),
            // Members the gateway does not read are harmless beside a valid target.
            (br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","uri":1,"extra":[1]}}"#, TargetKind::Tool, "echo"),
        ];
        for (body, kind, target) in cases {
            let (_, _, t) = typed(body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)));
            assert_eq!(
                t,
                Some((*kind, target.to_string())),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn refuses_what_is_not_json_rpc() {
        let cases: &[(&[u8], i64)] = &[
            (b"", code::PARSE_ERROR),
            (b"{", code::PARSE_ERROR),
            (b"[{}]", code::INVALID_REQUEST),
            (b"42", code::INVALID_REQUEST),
            (b"this is not json", code::PARSE_ERROR),
            (b"}{", code::PARSE_ERROR),
            (b"[1,", code::PARSE_ERROR),
            (br#"{"id":1,"method":"x"}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"1.0","id":1,"method":"x"}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":2.0,"id":1,"method":"x"}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":1}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","result":{}}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":1,"method":7}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":1,"method":"a b"}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":null,"method":"tools/list"}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":1e3,"method":"ping"}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"ping"}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":9007199254740992,"method":"ping"}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":1,"method":"ping","extra":1}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":1,"error":"oops"}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":1,"error":{"code":"1","message":"m"}}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":null,"result":{}}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#, code::PARSE_ERROR),
            (br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#, code::INVALID_PARAMS),
            (br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":"x"}"#, code::INVALID_PARAMS),
            (br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":null}"#, code::INVALID_PARAMS),
            // Targets: present and typed, or refused — never "no target".
            (br#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#, code::INVALID_PARAMS),
            (br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#, code::INVALID_PARAMS),
            (br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":1}}"#, code::INVALID_PARAMS),
            (br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":null}}"#, code::INVALID_PARAMS),
            (br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["echo"]}}"#, code::INVALID_PARAMS),
            (br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":[]}}"#, code::INVALID_PARAMS),
            (br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{},"name":"crash"}}"#, code::PARSE_ERROR),
            (br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","_meta":{"progressToken":{}}}}"#, code::INVALID_PARAMS),
            (br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","_meta":1}}"#, code::INVALID_PARAMS),
            (br#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":1}}"#, code::INVALID_PARAMS),
            (br#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"name":"x"}}"#, code::INVALID_PARAMS),
            (br#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":null}}"#, code::INVALID_PARAMS),
            (br#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":{"x":1}}}"#, code::INVALID_PARAMS),
            (br#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt"}}}"#, code::INVALID_PARAMS),
            (br#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/other","name":"a"}}}"#, code::INVALID_PARAMS),
            (br#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":"greet"}}"#, code::INVALID_PARAMS),
        ];
        for (body, want) in cases {
            let err = typed(body).unwrap_err();
            assert_eq!(err.code(), *want, "{}: {err}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn smuggled_second_message_is_refused() {
        // A raw newline between tokens, then a whole second call: one body, one message, or
        // nothing at all.
        let body = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\"}}\n{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"crash\"}}";
        assert_eq!(typed(body).unwrap_err().code(), code::PARSE_ERROR);
        // Newlines inside the params are whitespace: gone from the canonical form.
        let body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\r\n\"arguments\":{\"text\":\"a\u{2028}b\"}}}";
        let canonical = read(body.as_bytes()).unwrap();
        assert!(!canonical.iter().any(|b| *b == b'\n' || *b == b'\r'));
        assert!(!String::from_utf8(canonical).unwrap().contains('\u{2028}'));
    }

    #[test]
    fn parse_errors_never_quote_the_body() {
        for body in [
            &br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"SECRET-1"},"x":"SECRET-1"}"#[..],
            br#"{"jsonrpc":"2.0","id":"SECRET-1","method":7}"#,
            br#"{"jsonrpc":"SECRET-1","id":1,"method":"x"}"#,
            b"{\"SECRET-1\" 1}",
        ] {
            let err = typed(body).unwrap_err().to_string();
            assert!(!err.contains("SECRET"), "{err}");
        }
    }
}
