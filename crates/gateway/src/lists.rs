//! Filtering list answers (`tools/list`, `resources/list`, `prompts/list`) down to what the
//! caller may use, and adding the gateway's own `whoami` tool. The upstream's answer — JSON or an
//! SSE stream — is read whole (lists are small and rare), filtered, and returned as JSON. An
//! answer the gateway cannot read is refused rather than passed on unfiltered.

use crate::refusal::{Refusal, json_response};
use crate::upstream::{PROTOCOL_HEADER, SESSION_HEADER};
use axum::http::header;
use axum::response::Response;
use serde_json::Value;

const MAX_LIST_BYTES: usize = 16 * 1024 * 1024;

/// The array field a list result carries, and the item field that names an item.
fn shape(method: &str) -> Option<(&'static str, &'static str)> {
    match method {
        "tools/list" => Some(("tools", "name")),
        "prompts/list" => Some(("prompts", "name")),
        "resources/list" => Some(("resources", "uri")),
        "resources/templates/list" => Some(("resourceTemplates", "uriTemplate")),
        _ => None,
    }
}

pub fn is_list(method: &str) -> bool {
    shape(method).is_some()
}

pub async fn filter(
    resp: Response,
    method: &str,
    keep: impl Fn(&str) -> bool,
    extra: Option<Value>,
) -> Result<Response, Refusal> {
    let Some((field, key)) = shape(method) else {
        return Ok(resp);
    };
    if !resp.status().is_success() {
        return Ok(resp);
    }
    let (parts, body) = resp.into_parts();
    let is_sse = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let bytes = axum::body::to_bytes(body, MAX_LIST_BYTES)
        .await
        .map_err(|_| Refusal::UpstreamGarbled)?;
    let mut msg = if is_sse {
        response_in_sse(&bytes)?
    } else {
        strict_value(&bytes)?
    };
    if let Some(items) = msg
        .get_mut("result")
        .and_then(|r| r.get_mut(field))
        .and_then(Value::as_array_mut)
    {
        items.retain(|item| item.get(key).and_then(Value::as_str).is_some_and(&keep));
        if let Some(extra) = extra {
            items.push(extra);
        }
    }
    let json = serde_json::to_vec(&msg).map_err(|_| Refusal::UpstreamGarbled)?;
    // Answer in the framing the upstream chose: SSE stays SSE (one event), JSON stays JSON.
    let mut out = if is_sse {
        let mut r = Response::new(axum::body::Body::from(crate::sse::event(&json)));
        *r.status_mut() = parts.status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static(crate::sse::CONTENT_TYPE),
        );
        r
    } else {
        json_response(parts.status, json)
    };
    for name in [SESSION_HEADER, PROTOCOL_HEADER] {
        if let Some(v) = parts.headers.get(name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    Ok(out)
}

/// The JSON-RPC response among the events of an SSE body.
fn response_in_sse(bytes: &[u8]) -> Result<Value, Refusal> {
    let text = std::str::from_utf8(bytes).map_err(|_| Refusal::UpstreamGarbled)?;
    let mut data = String::new();
    let mut found = None;
    for line in text.lines().chain(std::iter::once("")) {
        if line.is_empty() {
            if !data.is_empty() {
                if let Ok(v) = strict_value(data.as_bytes())
                    && (v.get("result").is_some() || v.get("error").is_some())
                {
                    found = Some(v);
                }
                data.clear();
            }
        } else if let Some(d) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
        }
    }
    found.ok_or(Refusal::UpstreamGarbled)
}

/// An upstream answer read as strictly as a client message: with a duplicate key, the gateway's
/// filter and the client could read two different lists.
fn strict_value(bytes: &[u8]) -> Result<Value, Refusal> {
    let canonical = mcpgate_core::jsonrpc::read(bytes).map_err(|_| Refusal::UpstreamGarbled)?;
    serde_json::from_slice(&canonical).map_err(|_| Refusal::UpstreamGarbled)
}

/// The definition of the gateway's who-am-I tool.
pub fn whoami_tool(name: &str) -> Value {
    serde_json::json!({
        "name": name,
        "description": "Who the gateway authenticated you as: principal, role, permissions, limits and what is left of them. Call it first to check that your key works and resolves to the expected user.",
        "inputSchema": { "type": "object", "properties": {} },
        "annotations": { "readOnlyHint": true, "openWorldHint": false }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    #[tokio::test]
    async fn filters_json_and_sse_answers() {
        let json = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"},{"name":"b"},{"noname":1}]}}"#;
        for (ct, body) in [
            ("application/json", json.to_string()),
            ("text/event-stream", format!("event: message\ndata: {json}\n\n")),
        ] {
            let mut resp = Response::new(Body::from(body));
            resp.headers_mut().insert(header::CONTENT_TYPE, ct.parse().unwrap());
            let out = filter(resp, "tools/list", |n| n == "b", Some(whoami_tool("whoami")))
                .await
                .unwrap();
            assert!(
                out.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with(ct),
                "framing kept"
            );
            let bytes = axum::body::to_bytes(out.into_body(), 1 << 20).await.unwrap();
            let v: Value = if ct == "application/json" {
                serde_json::from_slice(&bytes).unwrap()
            } else {
                response_in_sse(&bytes).unwrap()
            };
            let names: Vec<&str> = v["result"]["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, vec!["b", "whoami"]);
        }
        let mut garbled = Response::new(Body::from("event: message\ndata: nope\n\n"));
        garbled
            .headers_mut()
            .insert(header::CONTENT_TYPE, "text/event-stream".parse().unwrap());
        assert_eq!(
            filter(garbled, "tools/list", |_| true, None).await.unwrap_err(),
            Refusal::UpstreamGarbled
        );
        // A list item with two names: which one would the client see? Neither: refused.
        let dup = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"ok","name":"hidden_admin_tool"}]}}"#;
        let mut resp = Response::new(Body::from(dup));
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert_eq!(
            filter(resp, "tools/list", |n| n == "ok", None).await.unwrap_err(),
            Refusal::UpstreamGarbled
        );
    }
}
