//! Writing messages: new response bodies (an error, a result) and rewrites of a message that was
//! read (another id, one argument set or removed). What a rewrite produces is canonical, like
//! everything the gateway forwards.

use serde_json::value::RawValue;
use std::borrow::Cow;

use super::error::ParseError;
use super::message::{Message, read};

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
    use crate::jsonrpc::code;

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
