//! The request pipeline for `/mcp`, written in order in one place. Each step says why it sits
//! where it does; later steps (authentication, authorization, limits, delegation, audit) slot in
//! at the marked points and reuse what earlier steps established.

use crate::Gateway;
use crate::guard;
use crate::metrics::method_label;
use crate::refusal::{Refusal, json_response};
use crate::upstream::{Forward, SESSION_HEADER, header_str};
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use mcpgate_core::jsonrpc::{self, Kind, Message, code};
use std::time::Instant;

/// What the pipeline did with a message, for metrics and logs.
pub struct Handled {
    pub response: Response,
    pub method: &'static str,
    pub outcome: &'static str,
}

impl Gateway {
    pub async fn handle_post(&self, parts: Parts, body: Body) -> Handled {
        let started = Instant::now();
        let mut method = "unparsed";
        let result = self.post_steps(&parts, body, &mut method).await;
        let (response, outcome) = match result {
            Ok(r) => {
                let outcome = if r.status().is_success() {
                    "ok"
                } else {
                    "upstream_error"
                };
                (r, outcome)
            }
            Err((refusal, id)) => {
                let label = refusal.label();
                if let Refusal::UpstreamUnavailable { detail } = &refusal {
                    tracing::warn!(%detail, "upstream unavailable");
                }
                (refusal.into_response(id.as_deref()), label)
            }
        };
        self.metrics.observe(method, outcome, started.elapsed());
        Handled {
            response,
            method,
            outcome,
        }
    }

    async fn post_steps(
        &self,
        parts: &Parts,
        body: Body,
        method_out: &mut &'static str,
    ) -> Result<Response, (Refusal, Option<Box<serde_json::value::RawValue>>)> {
        let no_id = |r: Refusal| (r, None);
        // 1. DNS rebinding first: a forged Host or a foreign page's Origin gets nothing else.
        guard::check(&self.config.http, &parts.uri, &parts.headers).map_err(no_id)?;
        // 2. Transport rules before reading the body, so a wrong client costs us nothing.
        check_content_type(&parts.headers).map_err(no_id)?;
        check_accept(&parts.headers, true).map_err(no_id)?;
        // 3. The body, bounded: the limit is enforced while reading, never after.
        let limit = self.config.http.max_body_bytes;
        let bytes: Bytes = axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| no_id(Refusal::PayloadTooLarge { limit }))?;
        // 4. Read only what the gateway needs: kind, id, method, target.
        let msg = Message::parse(&bytes).map_err(|e| {
            no_id(Refusal::Malformed {
                code: e.code(),
                message: e.to_string(),
            })
        })?;
        *method_out = method_label(msg.method());
        let id = || msg.id.map(|r| r.to_owned());
        // 5. Sessions: only ids this gateway saw issued are accepted.
        let session = header_str(&parts.headers, SESSION_HEADER);
        if let Some(s) = session
            && !self.sessions.touch(s)
        {
            return Err((Refusal::SessionNotFound, id()));
        }
        // (Authentication, authorization, rate limits and credential stripping go here.)

        // 6. The 2026-07-28 discovery probe: answered with a JSON-RPC error unless the upstream
        //    answers it, so new clients fall back to initialize instead of hanging.
        if msg.kind == Kind::Request && msg.method() == "server/discover" {
            return Ok(self.discover(&msg, &bytes, parts).await);
        }
        // 7. Forward.
        let response = self
            .upstream
            .post(Forward {
                msg: &msg,
                body: &bytes,
                session,
                client_headers: &parts.headers,
                inject: &[],
            })
            .await
            .map_err(|r| (r, id()))?;
        // 8. A new session: remember it so later requests can be checked against it.
        if msg.method() == "initialize"
            && let Some(new_id) = header_str(response.headers(), SESSION_HEADER)
        {
            self.sessions.open(new_id);
        }
        Ok(response)
    }

    async fn discover(&self, msg: &Message<'_>, bytes: &Bytes, parts: &Parts) -> Response {
        let not_supported = || {
            json_response(
                StatusCode::OK,
                jsonrpc::error_body(
                    msg.id,
                    code::METHOD_NOT_FOUND,
                    "server/discover is not supported by this server; use initialize",
                    None,
                ),
            )
        };
        if self.upstream.kind() != "http" {
            return not_supported();
        }
        let forward = Forward {
            msg,
            body: bytes,
            session: None,
            client_headers: &parts.headers,
            inject: &[],
        };
        match self.upstream.post(forward).await {
            Ok(r) if r.status().is_success() => r,
            _ => not_supported(),
        }
    }

    pub async fn handle_get(&self, parts: Parts) -> Result<Response, Refusal> {
        guard::check(&self.config.http, &parts.uri, &parts.headers)?;
        if !accepts(&parts.headers, "text/event-stream") {
            return Err(Refusal::MethodNotAllowed);
        }
        let session = header_str(&parts.headers, SESSION_HEADER);
        if let Some(s) = session
            && !self.sessions.touch(s)
        {
            return Err(Refusal::SessionNotFound);
        }
        self.upstream.get(session, &parts.headers).await
    }

    pub async fn handle_delete(&self, parts: Parts) -> Result<Response, Refusal> {
        guard::check(&self.config.http, &parts.uri, &parts.headers)?;
        let session = header_str(&parts.headers, SESSION_HEADER).ok_or(Refusal::SessionRequired)?;
        if !self.sessions.close(session) {
            return Err(Refusal::SessionNotFound);
        }
        self.upstream.delete(session, &parts.headers).await
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), Refusal> {
    let ct = header_str(headers, header::CONTENT_TYPE.as_str()).unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(Refusal::UnsupportedMediaType)
    }
}

/// Clients must accept JSON and SSE. A missing Accept or `*/*` is taken as accepting both: simple
/// HTTP clients (curl, connectors) send nothing more.
fn check_accept(headers: &HeaderMap, _post: bool) -> Result<(), Refusal> {
    let Some(accept) = header_str(headers, header::ACCEPT.as_str()) else {
        return Ok(());
    };
    if accepts(headers, "application/json") || accept.contains("text/event-stream") {
        Ok(())
    } else {
        Err(Refusal::NotAcceptable)
    }
}

fn accepts(headers: &HeaderMap, media: &str) -> bool {
    match header_str(headers, header::ACCEPT.as_str()) {
        None => true,
        Some(a) => a.split(',').any(|part| {
            let m = part.split(';').next().unwrap_or("").trim();
            m.eq_ignore_ascii_case(media)
                || m == "*/*"
                || (m.ends_with("/*") && media.starts_with(m.trim_end_matches('*')))
        }),
    }
}
