//! JSON-RPC reading: every message is read strictly and completely ([`read`]: strict JSON, no
//! duplicate keys, canonical bytes), then typed ([`Message::parse`]): `jsonrpc`, `id`, `method`,
//! `params` and, for every method that names a target (tool, resource, prompt), the target itself.
//! A message whose target cannot be read is refused, never treated as having none — the
//! gateway decides on exactly what the upstream will execute, and forwards the canonical bytes it
//! read.

pub mod canonical;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// JSON-RPC error codes used by the gateway (JSON-RPC 2.0 and MCP's reserved range).
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Server-defined range: the gateway's own refusals.
    pub const UNAUTHORIZED: i64 = -32001;
    pub const FORBIDDEN: i64 = -32003;
    pub const RATE_LIMITED: i64 = -32029;
    pub const UPSTREAM_UNAVAILABLE: i64 = -32050;
    pub const SESSION_NOT_FOUND: i64 = -32004;
}

/// What kind of JSON-RPC message a body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
}

/// What a message's target names: policy rules for tools, resources and prompts match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Tool,
    Resource,
    Prompt,
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

/// Why a body is not a JSON-RPC message the gateway accepts. Messages never echo the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the body is not strict JSON: {0}")]
    Json(String),
    #[error("JSON-RPC batches are not supported; send one message per request")]
    Batch,
    #[error("not a JSON-RPC 2.0 message: {0}")]
    Invalid(&'static str),
    #[error("invalid params: {0}")]
    Params(&'static str),
}

impl ParseError {
    pub fn code(&self) -> i64 {
        match self {
            ParseError::Json(_) => code::PARSE_ERROR,
            ParseError::Batch | ParseError::Invalid(_) => code::INVALID_REQUEST,
            ParseError::Params(_) => code::INVALID_PARAMS,
        }
    }
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

/// A field that is present, whatever its value (`null` included): serde's `Option` would read
/// `"id": null` as absent.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
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

/// The members of `params` that name a target or that the gateway reads; the rest pass through.
#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    name: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    uri: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    arguments: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present", rename = "_meta")]
    meta: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present", rename = "ref")]
    reference: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present", rename = "type")]
    kind: Option<&'a RawValue>,
}

fn is_object(v: &RawValue) -> bool {
    v.get().starts_with('{')
}

/// Longest target (tool name, URI, prompt name) the gateway accepts, in bytes.
pub const MAX_TARGET_BYTES: usize = 4096;

/// A JSON string's value; `None` for any other JSON type.
fn string<'a>(v: &'a RawValue) -> Option<Cow<'a, str>> {
    if !v.get().starts_with('"') {
        return None;
    }
    serde_json::from_str::<Cow<'a, str>>(v.get()).ok()
}

/// Ids are strings or integers a JavaScript upstream reads exactly (|n| < 2^53); anything else
/// would be echoed back differently than it was sent.
fn valid_id(v: &RawValue) -> bool {
    const MAX_SAFE: i64 = (1 << 53) - 1;
    let t = v.get();
    if t.starts_with('"') {
        return t.len() <= 1026; // 1024 characters of id plus the quotes
    }
    !t.contains(['.', 'e', 'E']) && t.parse::<i64>().is_ok_and(|n| (-MAX_SAFE..=MAX_SAFE).contains(&n))
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
            msg.read_params()?;
        }
        Ok(msg)
    }

    /// Reads the members of `params` that the gateway decides on, strictly.
    fn read_params(&mut self) -> Result<(), ParseError> {
        let needs = target_of(self.method());
        let Some(raw) = self.params else {
            return match needs {
                Some(_) => Err(ParseError::Params(missing_target(self.method()))),
                None => Ok(()),
            };
        };
        let p: Params<'a> =
            serde_json::from_str(raw.get()).map_err(|_| ParseError::Params("\"params\" must be an object"))?;
        if let Some(meta) = p.meta {
            self.progress_token = progress_token(meta)?;
        }
        let bad = || ParseError::Params(missing_target(self.method()));
        self.target = match needs {
            None => None,
            Some(Needs::Name(kind)) => {
                if let Some(args) = p.arguments
                    && !is_object(args)
                {
                    return Err(ParseError::Params("\"arguments\" must be an object"));
                }
                Some((kind, p.name.and_then(string).ok_or_else(bad)?))
            }
            Some(Needs::Uri) => Some((TargetKind::Resource, p.uri.and_then(string).ok_or_else(bad)?)),
            Some(Needs::Ref) => {
                let r = p.reference.filter(|r| is_object(r)).ok_or_else(bad)?;
                let r: Params<'a> = serde_json::from_str(r.get()).map_err(|_| bad())?;
                match r.kind.and_then(string).as_deref() {
                    Some("ref/prompt") => Some((TargetKind::Prompt, r.name.and_then(string).ok_or_else(bad)?)),
                    Some("ref/resource") => Some((TargetKind::Resource, r.uri.and_then(string).ok_or_else(bad)?)),
                    _ => return Err(bad()),
                }
            }
        };
        if self.target().is_some_and(|t| t.len() > MAX_TARGET_BYTES) {
            return Err(ParseError::Params(
                "the target (tool name, URI or prompt name) is longer than 4096 bytes",
            ));
        }
        Ok(())
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

enum Needs {
    /// `params.name`: tools and prompts.
    Name(TargetKind),
    /// `params.uri`: resources.
    Uri,
    /// `params.ref`: completion, for a prompt or a resource.
    Ref,
}

/// Which member names the target of `method`, for every method of the current MCP revisions
/// that acts on one.
fn target_of(method: &str) -> Option<Needs> {
    match method {
        "tools/call" => Some(Needs::Name(TargetKind::Tool)),
        "prompts/get" => Some(Needs::Name(TargetKind::Prompt)),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some(Needs::Uri),
        "completion/complete" => Some(Needs::Ref),
        _ => None,
    }
}

fn missing_target(method: &str) -> &'static str {
    match method {
        "tools/call" => "tools/call needs \"params.name\", a string",
        "prompts/get" => "prompts/get needs \"params.name\", a string",
        "completion/complete" => {
            "completion/complete needs \"params.ref\": {\"type\":\"ref/prompt\",\"name\":…} or {\"type\":\"ref/resource\",\"uri\":…}"
        }
        _ => "this method needs \"params.uri\", a string",
    }
}

fn progress_token(meta: &RawValue) -> Result<Option<&RawValue>, ParseError> {
    #[derive(Deserialize)]
    struct Meta<'b> {
        #[serde(borrow, rename = "progressToken", default, deserialize_with = "present")]
        token: Option<&'b RawValue>,
    }
    let bad = ParseError::Params("\"_meta\" must be an object whose \"progressToken\" is a string or an integer");
    if !is_object(meta) {
        return Err(bad);
    }
    let m: Meta<'_> = serde_json::from_str(meta.get()).map_err(|_| bad.clone())?;
    match m.token {
        Some(t) if !valid_id(t) => Err(bad),
        t => Ok(t),
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

/// The message (a `tools/call`) with `params.arguments[name]` set to the string `value`, or
/// removed when `value` is `None`. Every other member passes through as read — numbers keep
/// their text (a `serde_json::Value` round trip would turn big integers into floats) — and the
/// result is canonical.
pub fn with_argument(msg: &Message<'_>, name: &str, value: Option<&str>) -> Result<Vec<u8>, ParseError> {
    type Object<'b> = std::collections::BTreeMap<Cow<'b, str>, &'b RawValue>;
    let bad = |_| ParseError::Params("\"params\" and \"arguments\" must be objects");
    let params_text = msg.params.map(RawValue::get).unwrap_or("{}");
    let mut params: Object<'_> = serde_json::from_str(params_text).map_err(bad)?;
    let args_text = params.get("arguments").map(|a| a.get()).unwrap_or("{}");
    let mut args: Object<'_> = serde_json::from_str(args_text).map_err(bad)?;
    let value = match value {
        Some(v) => Some(serde_json::value::to_raw_value(v).map_err(bad)?),
        None => None,
    };
    match &value {
        Some(v) => args.insert(Cow::Borrowed(name), v),
        None => args.remove(name),
    };
    let args = serde_json::value::to_raw_value(&args).map_err(bad)?;
    params.insert(Cow::Borrowed("arguments"), &args);
    #[derive(serde::Serialize)]
    struct Out<'b> {
        jsonrpc: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'b RawValue>,
        method: &'b str,
        params: &'b Object<'b>,
    }
    let out = serde_json::to_vec(&Out {
        jsonrpc: "2.0",
        id: msg.id,
        method: msg.method(),
        params: &params,
    })
    .map_err(bad)?;
    read(&out)
}

/// A JSON-RPC error response body for `id` (or `null` when the request had none).
pub fn error_body(id: Option<&RawValue>, code: i64, message: &str, data: Option<&serde_json::Value>) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct ErrorObj<'a> {
        code: i64,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<&'a serde_json::Value>,
    }
    #[derive(serde::Serialize)]
    struct Body<'a> {
        jsonrpc: &'static str,
        id: Option<&'a RawValue>,
        error: ErrorObj<'a>,
    }
    let body = Body {
        jsonrpc: "2.0",
        id,
        error: ErrorObj { code, message, data },
    };
    // Serializing plain strings, numbers and raw JSON cannot fail.
    serde_json::to_vec(&body).unwrap_or_else(|_| {
        b"{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32603,\"message\":\"internal error\"}}".to_vec()
    })
}

/// A JSON-RPC success response body for `id` with an already-serialized `result`.
pub fn result_body(id: &RawValue, result: &RawValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(id.get().len() + result.get().len() + 32);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id.get().as_bytes());
    out.extend_from_slice(b",\"result\":");
    out.extend_from_slice(result.get().as_bytes());
    out.push(b'}');
    out
}

/// Rewrites the `id` of a response, keeping its result or error.
pub fn response_with_id(msg: &Message<'_>, id: &RawValue) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Out<'a> {
        jsonrpc: &'static str,
        id: &'a RawValue,
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a RawValue>,
    }
    let out = Out {
        jsonrpc: "2.0",
        id,
        result: msg.result,
        error: msg.error,
    };
    serde_json::to_vec(&out).unwrap_or_default()
}

/// Rewrites the `id` of a message, keeping everything else: used to remap ids between a client
/// and an upstream that several callers share.
pub fn with_id(msg: &Message<'_>, id: &RawValue) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Out<'a> {
        jsonrpc: &'static str,
        id: &'a RawValue,
        method: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        params: Option<&'a RawValue>,
    }
    let out = Out {
        jsonrpc: "2.0",
        id,
        method: msg.method(),
        params: msg.params,
    };
    serde_json::to_vec(&out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn arguments_are_rewritten_without_touching_numbers() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"api_key":"k","n":123456789012345678901234567890,"f":1.50}}}"#;
        let m = Message::parse(body).unwrap();
        let out = String::from_utf8(with_argument(&m, "api_key", None).unwrap()).unwrap();
        assert_eq!(
            out,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"f":1.50,"n":123456789012345678901234567890},"name":"echo"}}"#
        );
        let out = String::from_utf8(with_argument(&m, "token", Some("s\n")).unwrap()).unwrap();
        assert!(
            out.contains(r#""token":"s\n""#) && out.contains("123456789012345678901234567890"),
            "{out}"
        );
    }

    #[test]
    fn rewrites_ids_and_builds_bodies() {
        let r = Message::parse(br#"{"jsonrpc":"2.0","id":"orig","method":"ping"}"#).unwrap();
        let id = RawValue::from_string("42".into()).unwrap();
        let out = with_id(&r, &id);
        assert_eq!(out, br#"{"jsonrpc":"2.0","id":42,"method":"ping"}"#);
        let err = error_body(r.id, code::FORBIDDEN, "no", None);
        let v: serde_json::Value = serde_json::from_slice(&err).unwrap();
        assert_eq!(v["id"], "orig");
        assert_eq!(v["error"]["code"], -32003);
        let res = RawValue::from_string("{\"a\":1}".into()).unwrap();
        assert_eq!(
            result_body(r.id.unwrap(), &res),
            br#"{"jsonrpc":"2.0","id":"orig","result":{"a":1}}"#
        );
    }
}
