//! JSON-RPC inspection: the gateway reads only what it needs from each message (kind, id, method,
//! tool name, progress token) and forwards the original bytes. Parsing borrows from the body, so a
//! `tools/call` costs one pass over its bytes and no copy of its arguments.

use serde::Deserialize;
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

/// A borrowed view of one JSON-RPC message.
#[derive(Debug)]
pub struct Message<'a> {
    pub kind: Kind,
    /// The id exactly as the sender wrote it (a string or a number), if any.
    pub id: Option<&'a RawValue>,
    pub method: Option<Cow<'a, str>>,
    pub params: Option<&'a RawValue>,
    pub result: Option<&'a RawValue>,
    pub error: Option<&'a RawValue>,
}

/// Why a body is not a JSON-RPC message the gateway accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the body is not valid JSON: {0}")]
    Json(String),
    #[error("JSON-RPC batches are not supported; send one message per request")]
    Batch,
    #[error("not a JSON-RPC 2.0 message: {0}")]
    Invalid(&'static str),
}

impl ParseError {
    pub fn code(&self) -> i64 {
        match self {
            ParseError::Json(_) => code::PARSE_ERROR,
            ParseError::Batch | ParseError::Invalid(_) => code::INVALID_REQUEST,
        }
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

impl<'a> Message<'a> {
    /// Parses one JSON-RPC 2.0 message. Batches (arrays) are refused.
    pub fn parse(body: &'a [u8]) -> Result<Message<'a>, ParseError> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        // JSON-RPC 2.0: invalid JSON is a parse error (-32700); valid JSON that is not a request
        // object is an invalid request (-32600). Only the error path pays for telling them apart.
        let is_json = || serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok();
        match first {
            None => return Err(ParseError::Json("empty body".into())),
            Some(b'{') => {}
            Some(b'[') if is_json() => return Err(ParseError::Batch),
            Some(_) if is_json() => return Err(ParseError::Invalid("expected a JSON object")),
            Some(_) => return Err(ParseError::Json("the body is not JSON".into())),
        }
        let env: Envelope<'a> = serde_json::from_slice(body).map_err(|e| {
            // serde's message names the position, never echoes the input.
            ParseError::Json(e.to_string())
        })?;
        if env.jsonrpc.as_deref() != Some("2.0") {
            return Err(ParseError::Invalid("\"jsonrpc\" must be \"2.0\""));
        }
        let id = match env.id {
            Some(raw) if raw.get() == "null" => None,
            Some(raw) => {
                let c = raw.get().as_bytes().first().copied();
                if !matches!(c, Some(b'"' | b'-' | b'0'..=b'9')) {
                    return Err(ParseError::Invalid("\"id\" must be a string or a number"));
                }
                Some(raw)
            }
            None => None,
        };
        let kind = match (&env.method, id, env.result.is_some() || env.error.is_some()) {
            (Some(_), Some(_), false) => Kind::Request,
            (Some(_), None, false) => Kind::Notification,
            (None, _, true) => Kind::Response,
            _ => {
                return Err(ParseError::Invalid(
                    "a message needs a \"method\" (request or notification) or a \"result\"/\"error\" (response)",
                ));
            }
        };
        if kind == Kind::Response && env.id.is_none() {
            return Err(ParseError::Invalid("a response needs an \"id\""));
        }
        Ok(Message {
            kind,
            id: id.or(env.id),
            method: env.method,
            params: env.params,
            result: env.result,
            error: env.error,
        })
    }

    pub fn method(&self) -> &str {
        self.method.as_deref().unwrap_or("")
    }

    /// The tool name of a `tools/call`, the URI of `resources/read`, or the name of `prompts/get`:
    /// the target that policy rules match against.
    pub fn target(&self) -> Option<Cow<'a, str>> {
        #[derive(Deserialize)]
        struct Target<'b> {
            #[serde(borrow, default)]
            name: Option<Cow<'b, str>>,
            #[serde(borrow, default)]
            uri: Option<Cow<'b, str>>,
        }
        let params = self.params?;
        let t: Target<'a> = serde_json::from_str(params.get()).ok()?;
        match self.method() {
            "tools/call" | "prompts/get" => t.name,
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => t.uri,
            _ => None,
        }
    }

    /// `params._meta.progressToken`, as raw JSON, when the caller asked for progress.
    pub fn progress_token(&self) -> Option<&'a RawValue> {
        #[derive(Deserialize)]
        struct Meta<'b> {
            #[serde(borrow, rename = "progressToken", default)]
            progress_token: Option<&'b RawValue>,
        }
        #[derive(Deserialize)]
        struct P<'b> {
            #[serde(borrow, rename = "_meta", default)]
            meta: Option<Meta<'b>>,
        }
        let params = self.params?;
        let p: P<'a> = serde_json::from_str(params.get()).ok()?;
        p.meta?.progress_token
    }
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

    #[test]
    fn classifies_messages() {
        let r = Message::parse(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},"_meta":{"progressToken":"p1"}}}"#).unwrap();
        assert_eq!(r.kind, Kind::Request);
        assert_eq!(r.id.unwrap().get(), "7");
        assert_eq!(r.target().as_deref(), Some("echo"));
        assert_eq!(r.progress_token().unwrap().get(), "\"p1\"");

        let n = Message::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(n.kind, Kind::Notification);
        let s = Message::parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert_eq!(s.kind, Kind::Response);
        let e = Message::parse(br#"{"jsonrpc":"2.0","id":"a","error":{"code":1,"message":"m"}}"#).unwrap();
        assert_eq!(e.kind, Kind::Response);
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
            (br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":1}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","result":{}}"#, code::INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":1,"method":7}"#, code::PARSE_ERROR),
        ];
        for (body, want) in cases {
            let err = Message::parse(body).unwrap_err();
            assert_eq!(err.code(), *want, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn escaped_method_names_are_read() {
        let r = Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"ec\u0068o"}}"#)
            .unwrap();
        assert_eq!(r.method(), "tools/call");
        assert_eq!(r.target().as_deref(), Some("echo"));
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
