//! A response from the in-process gateway ([`Resp`]), with the JSON-RPC message found in its JSON
//! or SSE body, and the assertions every refusal test makes.

use crate::raw::sse_messages;
use http::{HeaderMap, StatusCode};
use serde_json::Value;

#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    /// The JSON body, or the JSON-RPC response among the events of an SSE body; `Null` if none.
    pub body: Value,
}

impl Resp {
    pub(super) fn new(status: StatusCode, headers: HeaderMap, text: String) -> Resp {
        let is_sse = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        let body = if is_sse {
            json_in_sse(&text)
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        Resp {
            status,
            headers,
            text,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn code(&self) -> Option<i64> {
        self.body["error"]["code"].as_i64()
    }
    pub fn message(&self) -> String {
        self.body["error"]["message"].as_str().unwrap_or_default().to_string()
    }
    pub fn is_ok(&self) -> bool {
        self.status == StatusCode::OK && self.body.get("result").is_some()
    }
    /// Fails with the whole response when the call did not succeed.
    pub fn ok(&self, what: &str) -> &Self {
        assert!(
            self.is_ok(),
            "{what}: expected a result, got {} {}",
            self.status,
            self.text
        );
        self
    }
    /// The first text content of a tool result.
    pub fn tool_text(&self) -> String {
        self.body["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("no tool text in {}", self.text))
            .to_string()
    }
    pub fn tool_json(&self) -> Value {
        serde_json::from_str(&self.tool_text()).unwrap_or_else(|e| panic!("tool text is not JSON ({e}): {}", self.text))
    }
    pub fn tool_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.body["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("no tools in {}", self.text))
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_string))
            .collect();
        v.sort();
        v
    }
    /// Asserts a JSON-RPC refusal: HTTP status, error code, and message fragments (all required).
    pub fn refused(&self, what: &str, status: u16, code: i64, says: &[&str]) -> &Self {
        assert_eq!(self.status.as_u16(), status, "{what}: status; body {}", self.text);
        assert_eq!(
            self.code(),
            Some(code),
            "{what}: JSON-RPC error code; body {}",
            self.text
        );
        let msg = self.message();
        for s in says {
            assert!(msg.contains(s), "{what}: message {msg:?} should mention {s:?}");
        }
        self
    }
}

/// The JSON-RPC response among the events of an SSE body (the last one; `Null` if none).
pub fn json_in_sse(text: &str) -> Value {
    sse_messages(text)
        .into_iter()
        .rfind(|v| v.get("result").is_some() || v.get("error").is_some())
        .unwrap_or(Value::Null)
}
