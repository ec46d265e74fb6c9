//! The admin API's endpoints, in one table: the router is built from it and the OpenAPI 3.1
//! document (`GET /admin/api/v1/openapi.json`) is written from it, so the two cannot disagree.

use super::BASE;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

/// One endpoint.
pub struct Endpoint {
    pub method: &'static str,
    /// Under [`BASE`]; `{id}` is a path parameter.
    pub path: &'static str,
    pub summary: &'static str,
    /// Query parameters.
    pub query: &'static [&'static str],
    /// The JSON body's schema (a name under `components.schemas`).
    pub body: Option<&'static str>,
    /// Changes something: a browser session must send the CSRF token.
    pub write: bool,
    /// Answered without credentials (this document).
    pub public: bool,
}

const fn e(method: &'static str, path: &'static str, summary: &'static str) -> Endpoint {
    Endpoint {
        method,
        path,
        summary,
        query: &[],
        body: None,
        write: false,
        public: false,
    }
}

const PAGE: &[&str] = &["limit", "after"];

pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        public: true,
        ..e("GET", "/openapi.json", "This document")
    },
    e(
        "GET",
        "/session",
        "Who the caller is; for a browser session, the CSRF token its writes must send in X-CSRF-Token",
    ),
    Endpoint {
        query: PAGE,
        ..e("GET", "/keys", "API keys, oldest first, a page at a time")
    },
    Endpoint {
        body: Some("NewKey"),
        write: true,
        ..e("POST", "/keys", "Create a key; its secret is in this answer only")
    },
    e("GET", "/keys/{id}", "One key"),
    Endpoint {
        body: Some("Rotate"),
        write: true,
        ..e(
            "POST",
            "/keys/{id}/rotate",
            "A new key with the same grants; the old one keeps working for overlap_s",
        )
    },
    Endpoint {
        write: true,
        ..e(
            "POST",
            "/keys/{id}/revoke",
            "Revoke a key and the OAuth grants signed in with it",
        )
    },
    Endpoint {
        body: Some("Credential"),
        write: true,
        ..e(
            "PUT",
            "/keys/{id}/credential",
            "Hold a sealed upstream credential for the key (delegation)",
        )
    },
    Endpoint {
        write: true,
        ..e(
            "DELETE",
            "/keys/{id}/credential",
            "Drop the key's held upstream credential",
        )
    },
    Endpoint {
        query: PAGE,
        ..e("GET", "/clients", "OAuth clients")
    },
    e("GET", "/clients/{id}", "One OAuth client, with its grants"),
    Endpoint {
        write: true,
        ..e("DELETE", "/clients/{id}", "Remove a client; its grants are revoked")
    },
    Endpoint {
        query: &["user", "client", "state", "limit", "after"],
        ..e("GET", "/grants", "OAuth grants (what a sign-in gave a client)")
    },
    Endpoint {
        write: true,
        ..e(
            "POST",
            "/grants/{id}/revoke",
            "Revoke a grant, forget the consent, drop a provider token held for it",
        )
    },
    Endpoint {
        query: PAGE,
        ..e("GET", "/users", "People who signed in through a provider")
    },
    e("GET", "/users/{id}", "One user, with their grants"),
    Endpoint {
        query: &["limit"],
        ..e("GET", "/sessions", "Open MCP sessions, most recently used first")
    },
    Endpoint {
        write: true,
        ..e(
            "DELETE",
            "/sessions/{id}",
            "End an MCP session (here, at every replica, and upstream)",
        )
    },
    Endpoint {
        query: &[
            "since", "until", "user", "tool", "outcome", "key", "client", "event", "cursor", "limit", "format",
        ],
        ..e(
            "GET",
            "/audit",
            "Audit records, newest first (cursor = the page's next_cursor); format=jsonl|csv exports",
        )
    },
    Endpoint {
        query: &["since", "until", "bucket", "by", "top"],
        ..e(
            "GET",
            "/usage",
            "Requests per time bucket and the busiest keys, users, tools, clients or refusal reasons",
        )
    },
];

/// What a query parameter takes (the handlers refuse anything else with 400).
fn param_schema(path: &str, name: &str) -> Value {
    let text = json!({"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[^\\u0000-\\u001f\\u007f]+$"});
    let when = json!({"type": "string", "description": "RFC 3339, or a duration before now: 90s, 15m, 24h, 7d", "pattern": "^([0-9]{1,7}[smhd]|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))$"});
    match name {
        "limit" if path == "/audit" => json!({"type": "integer", "minimum": 1, "maximum": 1_000_000}),
        "limit" => json!({"type": "integer", "minimum": 1, "maximum": 1000}),
        "top" => json!({"type": "integer", "minimum": 1, "maximum": 100}),
        "cursor" => json!({"type": "integer", "minimum": 0}),
        "outcome" => json!({"enum": ["allow", "deny", "limited", "error"]}),
        "event" => json!({"enum": ["auth", "call", "admin"]}),
        "format" => json!({"enum": ["json", "jsonl", "csv"]}),
        "state" => json!({"enum": ["live", "revoked"]}),
        "by" => json!({"enum": ["key", "user", "tool", "client", "reason"]}),
        "bucket" => json!({"type": "string", "pattern": "^[1-9][0-9]{0,6}[smhd]$"}),
        "since" | "until" => when,
        _ => text,
    }
}

fn schemas() -> Value {
    let limits = json!({"type": "object", "additionalProperties": false, "properties": {
        "per_minute": {"type": "integer", "minimum": 0},
        "per_hour": {"type": "integer", "minimum": 0},
        "per_day": {"type": "integer", "minimum": 0}}});
    json!({
        "NewKey": {"type": "object", "additionalProperties": false, "required": ["name", "user_id"], "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[^\\u0000-\\u001f\\u007f]*[^\\s\\u0000-\\u001f\\u007f][^\\u0000-\\u001f\\u007f]*$"},
            "user_id": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[^\\u0000-\\u001f\\u007f]*[^\\s\\u0000-\\u001f\\u007f][^\\u0000-\\u001f\\u007f]*$"},
            "tenant": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[^\\u0000-\\u001f\\u007f]*[^\\s\\u0000-\\u001f\\u007f][^\\u0000-\\u001f\\u007f]*$"},
            "role": {"enum": ["guest", "user", "developer", "admin"], "default": "user"},
            "permissions": {"type": "array", "maxItems": 64, "items": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[^\\u0000-\\u001f\\u007f]*[^\\s\\u0000-\\u001f\\u007f][^\\u0000-\\u001f\\u007f]*$"}},
            "limits": limits,
            "expires_in_s": {"type": "integer", "minimum": 1, "maximum": 315_360_000}}},
        "Rotate": {"type": "object", "additionalProperties": false, "properties": {
            "overlap_s": {"type": "integer", "minimum": 0, "maximum": 31_536_000, "default": 86_400}}},
        "Credential": {"type": "object", "additionalProperties": false, "required": ["credential"], "properties": {
            "credential": {"type": "string", "minLength": 1, "maxLength": 16_384, "pattern": "^[^\\u0000\\r\\n]+$"}}},
        "Error": {"type": "object", "required": ["error", "message"], "properties": {
            "error": {"type": "string"}, "message": {"type": "string"}}},
    })
}

/// The document.
pub fn openapi() -> Value {
    let mut paths = serde_json::Map::new();
    for ep in ENDPOINTS {
        let mut params: Vec<Value> = ep
            .query
            .iter()
            .map(|q| json!({"name": q, "in": "query", "required": false, "schema": param_schema(ep.path, q)}))
            .collect();
        if ep.path.contains("{id}") {
            params.push(json!({"name": "id", "in": "path", "required": true,
                "schema": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[!-~]+$"}}));
        }
        let error = json!({"description": "refused", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
        let mut op = json!({
            "summary": ep.summary,
            "operationId": format!("{} {}", ep.method.to_lowercase(), ep.path),
            "parameters": params,
            "responses": {
                "200": {"description": "done"},
                "201": {"description": "created (a new key: its secret is in this answer only)"},
                "204": {"description": "done, nothing to say"},
                "400": error, "401": error, "403": error, "404": error, "405": error, "409": error,
                "413": error, "415": error, "503": error,
            },
        });
        if ep.public {
            op["security"] = json!([]);
        }
        if let Some(b) = ep.body {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{b}")}}}});
        }
        if ep.write {
            op["description"] =
                "A browser session must send X-CSRF-Token (from GET /session) from this gateway's pages; an API key needs nothing more."
                    .into();
        }
        let entry = paths.entry(format!("{BASE}{}", ep.path)).or_insert_with(|| json!({}));
        entry[ep.method.to_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "mcpgate admin API",
            "version": crate::server::VERSION,
            "description": "Keys, OAuth clients and grants, users, MCP sessions, audit and usage. Every call is audited (event = admin).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "an admin-role API key"},
                "bearer": {"type": "http", "scheme": "bearer", "description": "an admin-role API key as a bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "mcpgate_session", "description": "an admin's browser session (writes need X-CSRF-Token)"},
            },
        },
        "security": [{"apiKey": []}, {"bearer": []}, {"session": []}],
    })
}

pub async fn document(req: axum::extract::Request) -> Response {
    let (parts, _) = req.into_parts();
    match super::query(&parts, &[]) {
        Ok(_) => super::json(StatusCode::OK, openapi()),
        Err(e) => axum::response::IntoResponse::into_response(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_has_a_handler_and_appears_once() {
        let mut seen = std::collections::HashSet::new();
        for ep in ENDPOINTS {
            assert!(
                super::super::handler(ep.method, ep.path).is_some(),
                "{} {}",
                ep.method,
                ep.path
            );
            assert!(seen.insert((ep.method, ep.path)), "{} {} twice", ep.method, ep.path);
        }
        let doc = openapi();
        let n: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p.as_object().unwrap().len())
            .sum();
        assert_eq!(n, ENDPOINTS.len());
    }
}
