//! The request pipeline for `/mcp`, written in order in one place. Each step says why it sits
//! where it does. Every message ends in exactly one audit record: a refusal (`auth` event) or a
//! call that went upstream (`call` event).

mod checks;
mod local;
mod record;

pub use local::whoami_json;

use crate::Gateway;
use crate::auth::Attempt;
use crate::auth::extract::{self, Location, Presented};
use crate::metrics::method_label;
use crate::rebinding;
use crate::refusal::Refusal;
use crate::sessions::Lookup;
use crate::upstream::{Forward, Forwarder, Plain, SESSION_HEADER, header_str};
use axum::body::Body;
use axum::http::HeaderValue;
use axum::http::request::Parts;
use axum::response::Response;
use bytes::Bytes;
use checks::{
    accepts, check_accept, check_content_type, check_protocol_version, denial_refusal, header_credential, malformed,
    policy_questions, request_id, session_header, session_refusal, strip_tool_arg_key, tool_arg_key,
};
use mcpgate_core::jsonrpc::{self, Kind, Message};
use mcpgate_core::policy::Decision;
use mcpgate_core::principal::{Limits, Principal};
use record::Trace;
use serde_json::value::RawValue;
use std::time::Instant;
use tracing::Instrument;

pub(super) type Refused = (Refusal, Option<Box<RawValue>>);

impl Gateway {
    /// `POST /mcp` toward this gateway's own connector (HTTP or stdio upstream).
    pub async fn handle_post(&self, parts: Parts, body: Body) -> Response {
        self.handle_post_via(&self.upstream, parts, body).await
    }

    /// `POST /mcp`: the whole pipeline, forwarding what it lets through to `via` — the gateway's
    /// connector, or the service an embedding application's layer wraps.
    pub async fn handle_post_via(&self, via: &dyn Forwarder, parts: Parts, body: Body) -> Response {
        match self.begin_span(&parts) {
            None => self.post_recorded(via, parts, body, None).await,
            // Log lines written while the request runs carry its trace id.
            Some(span) => {
                let log = log_span(&span);
                self.post_recorded(via, parts, body, Some(span)).instrument(log).await
            }
        }
    }

    /// The pipeline, then the outcome in the metrics, the audit and the span.
    async fn post_recorded(
        &self,
        via: &dyn Forwarder,
        parts: Parts,
        body: Body,
        span: Option<Box<crate::telemetry::RequestSpan>>,
    ) -> Response {
        let started = Instant::now();
        let request_id = request_id(&parts.headers, self.entropy.as_ref());
        let mut trace = Trace {
            span,
            ..Trace::default()
        };
        let result = self.post_steps(via, &parts, body, &mut trace).await;
        let (mut response, outcome, reason) = match result {
            Ok(r) => {
                let outcome = if r.status().is_success() {
                    "ok"
                } else {
                    "upstream_error"
                };
                (r, outcome, outcome)
            }
            Err((refusal, id)) => {
                let label = refusal.label();
                match &refusal {
                    Refusal::UpstreamUnavailable { detail } => {
                        tracing::warn!(%detail, request_id = %request_id, "upstream unavailable")
                    }
                    Refusal::LimitsUnavailable { detail } => {
                        tracing::warn!(%detail, request_id = %request_id, "rate-limit store unavailable")
                    }
                    Refusal::SessionsUnavailable { detail } => {
                        tracing::warn!(%detail, request_id = %request_id, "session store unavailable")
                    }
                    _ => {}
                }
                let outcome = match refusal {
                    Refusal::RateLimited(_) => "limited",
                    Refusal::UpstreamUnavailable { .. }
                    | Refusal::LimitsUnavailable { .. }
                    | Refusal::SessionsUnavailable { .. }
                    | Refusal::UpstreamTimeout
                    | Refusal::UpstreamGarbled
                    | Refusal::TooManySessions
                    | Refusal::VerifierUnavailable => "error",
                    _ => "refused",
                };
                (refusal.into_response(id.as_deref()), outcome, label)
            }
        };
        let elapsed = started.elapsed();
        let method = trace.method.as_deref().unwrap_or("");
        self.metrics.observe(
            method_label(method),
            if matches!(outcome, "refused" | "error") {
                reason
            } else {
                outcome
            },
            elapsed,
        );
        // audit.rs: the record is committed within about 2 ms; with
        // `audit.commit_before_response`, the response waits for that commit.
        let record = self.audit_record(&request_id, &parts, &trace, outcome, reason, response.status(), elapsed);
        if let (Some(t), Some(span)) = (&self.telemetry, trace.span.take()) {
            let attributes = if span.sampled() {
                record::span_attributes(&record)
            } else {
                Vec::new()
            };
            let name = match trace.method.as_deref() {
                Some(m) => method_label(m).to_string(),
                None => "POST /mcp".to_string(),
            };
            t.end(span.finish(name, attributes, response.status().is_server_error()));
        }
        if self.config.audit.commit_before_response {
            self.audit.record(record).await;
        } else {
            self.audit.queue(record);
        }
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", v);
        }
        response
    }

    async fn post_steps(
        &self,
        via: &dyn Forwarder,
        parts: &Parts,
        body: Body,
        trace: &mut Trace,
    ) -> Result<Response, Refused> {
        let no_id = |r: Refusal| (r, None);
        // 1. DNS rebinding first: a forged Host or a foreign page's Origin gets nothing else.
        rebinding::check(&self.config.http, &parts.uri, &parts.headers).map_err(no_id)?;
        // 2. Transport rules before reading the body, so a wrong client costs us nothing.
        check_content_type(&parts.headers).map_err(no_id)?;
        check_accept(&parts.headers).map_err(no_id)?;
        // 3. The body, bounded in size and time: the limit is enforced while reading, never after.
        let limit = self.config.http.max_body_bytes;
        //    One deadline for the whole body, not per chunk: a client that dribbles it in
        //    cannot hold the connection (and its memory) for long.
        let bytes: Bytes = tokio::time::timeout(self.config.http.body_timeout, axum::body::to_bytes(body, limit))
            .await
            .map_err(|_| no_id(Refusal::BodyTimeout))?
            .map_err(|_| no_id(Refusal::PayloadTooLarge { limit }))?;
        // 4. Read the whole message strictly, once: duplicate keys, wrong types and a target that
        //    cannot be read are refused here. From now on the gateway decides on, and forwards,
        //    the canonical bytes of what it read — never a second reading of the original.
        let canonical = jsonrpc::read(&bytes).map(Bytes::from).map_err(malformed)?;
        let parsed = Message::parse(&canonical).map_err(malformed)?;
        let id = parsed.id.map(|r| r.to_owned());
        let with_id = |r: Refusal| (r, id.clone());
        trace.method = parsed.method.as_deref().map(str::to_string);
        trace.tool = parsed.target().map(str::to_string);
        trace.event("message.read", || {
            vec![("mcpgate.message.bytes", (bytes.len() as i64).into())]
        });
        let is_call = parsed.kind == Kind::Request && parsed.method() == "tools/call";

        // 5. Who is calling. The credential is looked for in the allowed places only; whatever
        //    carried it is never forwarded (headers are not copied upstream; the query string is
        //    dropped; a tool argument is cut out below).
        let (presented, tool_arg_key) = self.find_credential(parts, &parsed).map_err(&with_id)?;
        trace.key_id = presented
            .as_ref()
            .and_then(|p| mcpgate_core::keys::key_id_of(p.secret.expose()))
            .map(str::to_string);
        // A signed request is checked over the exact bytes received (auth/mod.rs, the chain).
        let attempt = Attempt {
            headers: &parts.headers,
            body: &bytes,
            presented: presented.as_ref(),
            now: self.clock.unix_s(),
        };
        let principal = self
            .auth
            .authenticate(&attempt)
            .await
            .map_err(|f| with_id(Refusal::from(f)))?;
        let principal = principal.map(std::sync::Arc::new);
        trace.principal = principal.clone();
        if let Some(span) = &mut trace.span {
            authenticated(span, principal.as_deref());
        }
        // Scopes every token must carry (seed 003's required_scopes); keys carry none to check.
        if let Some(p) = &principal
            && p.scopes().is_some()
        {
            let missing: Vec<String> = self
                .auth
                .cfg
                .required_scopes
                .iter()
                .filter(|s| !p.has_scope(s))
                .cloned()
                .collect();
            if !missing.is_empty() {
                return Err(with_id(Refusal::InsufficientScope { scopes: missing }));
            }
        }
        // 6. Tenancy: the tenant comes from the credential; a header that disagrees is refused.
        if let (Some(p), Some(sent)) = (&principal, header_str(&parts.headers, "x-tenant-id"))
            && p.tenant().is_some_and(|t| t != sent)
        {
            return Err(with_id(Refusal::TenantMismatch));
        }
        // 7. Sessions: only ids this gateway issued, and only to the principal that opened them.
        let session = session_header(&parts.headers)?;
        check_protocol_version(&parts.headers).map_err(&with_id)?;
        let principal_id = principal.as_ref().map(|p| p.id());
        if let Some(s) = session {
            match self
                .sessions
                .check(s, principal_id)
                .await
                .map_err(|e| with_id(e.into()))?
            {
                Lookup::Ok => {}
                Lookup::Unknown => return Err(with_id(Refusal::SessionNotFound)),
                // Seed 000: a host opens the session without a key and passes one per tool call.
                Lookup::OpenedAnonymously if presented.as_ref().is_some_and(|p| p.from == Location::ToolArg) => {}
                Lookup::OwnedByOther | Lookup::OpenedAnonymously => {
                    return Err(with_id(session_refusal(principal.is_some())));
                }
            }
        }
        // 8. Authorization. The gateway's own whoami tool is open to every caller it knows.
        let tool = parsed.target();
        let whoami = is_call && tool.is_some() && self.auth.cfg.whoami_tool.as_deref() == tool;
        if !whoami || principal.is_none() {
            for (method, target) in policy_questions(&parsed) {
                match self.config.policy.decide(principal.as_deref(), method, target) {
                    Decision::Allow | Decision::Public => {}
                    Decision::Deny(d) => {
                        return Err(with_id(denial_refusal(d, principal.as_deref(), method, target)));
                    }
                }
            }
        }
        trace.event("authorized", || {
            vec![("mcpgate.decision", if whoami { "whoami" } else { "allow" }.into())]
        });
        // 9. Limits, after authorization so refused calls do not spend the caller's budget.
        //    Notifications count too (a flood of them costs the upstream as much), except the
        //    handshake's `notifications/initialized`, so a key's "requests per minute" still means
        //    its requests; answers to the upstream's own requests do not count.
        let handshake = parsed.kind == Kind::Notification && parsed.method() == "notifications/initialized";
        if let Some(p) = &principal
            && parsed.kind != Kind::Response
            && !handshake
        {
            let limits = p.limits().or(self.config.limits.default);
            // Per-tool state is kept under names the configuration or the upstream's tool list
            // know; any other name shares one bucket, so callers cannot grow memory with names.
            let tool_limits = if is_call {
                tool.and_then(|t| {
                    self.config
                        .limits
                        .for_tool(t)
                        .map(|l| (self.known_tools.limit_key(t), l))
                })
            } else {
                None
            };
            // Nothing to count (no limit of the caller's or the tool's): the store is not asked.
            let unlimited = Limits::default();
            let counted = limits != unlimited || tool_limits.is_some_and(|(_, l)| *l != unlimited);
            trace.event("limits", || vec![("mcpgate.limit.counted", counted.into())]);
            if counted {
                match self.limiter.check(p.id(), &limits, tool_limits, self.clock.now()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(l)) => {
                        trace.event("limit.exceeded", Vec::new);
                        return Err(with_id(Refusal::RateLimited(l)));
                    }
                    // Fail closed: a call the store could not count does not go through.
                    Err(e) => {
                        return Err(with_id(Refusal::LimitsUnavailable { detail: e.to_string() }));
                    }
                }
            }
        }
        // 10. Answered by the gateway itself.
        if whoami && let (Some(p), Some(rid)) = (&principal, parsed.id) {
            return Ok(self.whoami_result(p, rid).await);
        }
        if parsed.kind == Kind::Request && parsed.method() == "server/discover" {
            return Ok(self.discover(via, &parsed, &canonical, parts).await);
        }
        // 11. Cut a tool-argument credential out of the body before it can go anywhere.
        let stripped = if tool_arg_key {
            Some(strip_tool_arg_key(&parsed).map_err(&with_id)?)
        } else {
            None
        };
        let reparsed = match &stripped {
            Some(b) => Some(Message::parse(b).map_err(|_| with_id(Refusal::UpstreamGarbled))?),
            None => None,
        };
        // 12. Identity delegation: the user's own upstream credential, never the caller's.
        let mut inject = Vec::new();
        let mut delegated: Option<Bytes> = None;
        if let (Some(d), Some(p)) = (&self.delegation, &principal) {
            let credential = d.resolve(p, self.clock.unix_s(), |k| self.auth.keys.held_credential(k));
            if credential.is_none() && d.cfg.required && is_call {
                return Err(with_id(match &d.sign_in {
                    Some((provider, url)) => Refusal::ProviderSignInNeeded {
                        provider: provider.clone(),
                        url: url.clone(),
                    },
                    None => Refusal::NoUpstreamCredential,
                }));
            }
            inject = d.headers(p, credential.as_ref());
            if let (true, Some(arg), Some(c)) = (is_call, &d.cfg.tool_argument, &credential) {
                let current = reparsed.as_ref().unwrap_or(&parsed);
                let body = jsonrpc::with_argument(current, arg, Some(c.expose()))
                    .map_err(|_| with_id(Refusal::UpstreamGarbled))?;
                delegated = Some(Bytes::from(body));
            }
        }
        // What goes upstream: the canonical bytes read in step 4, or their rewrite (also
        // canonical) — never the bytes as received.
        let bytes = delegated.as_ref().or(stripped.as_ref()).unwrap_or(&canonical);
        let msg = match (&delegated, reparsed) {
            (Some(b), _) => Message::parse(b).map_err(|_| with_id(Refusal::UpstreamGarbled))?,
            (None, Some(m)) => m,
            (None, None) => parsed,
        };
        // 13. Forward. A new session takes its place under the caller's cap first, so one caller
        //     cannot hold every session (or child process) of the gateway.
        let slot = if msg.kind == Kind::Request && msg.method() == "initialize" && session.is_none() {
            Some(
                self.sessions
                    .reserve(principal_id)
                    .await
                    .map_err(|e| with_id(e.into()))?,
            )
        } else {
            None
        };
        //     The upstream call is a span of its own; its context goes with the request.
        if let Some(span) = &mut trace.span {
            inject.extend(span.upstream_headers());
        }
        let sent = Instant::now();
        let response = via
            .post(Forward {
                msg: &msg,
                body: bytes,
                session,
                client: parts,
                inject: &inject,
                principal: principal.as_ref(),
            })
            .await;
        if let Some(span) = &mut trace.span {
            upstream_answered(span, &response, sent);
        }
        let response = response.map_err(&with_id)?;
        // 14. Lists show only what this caller may use (and the whoami tool).
        let response = self
            .visible_only(response, msg.method(), principal.as_deref())
            .await
            .map_err(&with_id)?;
        // 15. A new session belongs to whoever opened it.
        if let Some(slot) = slot
            && let Some(new_id) = header_str(response.headers(), SESSION_HEADER)
        {
            slot.open(new_id).await.map_err(|e| with_id(e.into()))?;
        }
        Ok(response)
    }

    /// The credential, from the places this configuration accepts. The flag says a tool argument
    /// carried it (so the body must be rewritten).
    fn find_credential(&self, parts: &Parts, msg: &Message<'_>) -> Result<(Option<Presented>, bool), Refusal> {
        let cfg = &self.auth.cfg;
        let arg_key = if cfg.allow_tool_arg_key && msg.method() == "tools/call" {
            tool_arg_key(msg)?
        } else {
            None
        };
        let has_arg = arg_key.is_some();
        let found = header_credential(parts)?
            .or_else(|| {
                cfg.allow_query_key
                    .then(|| extract::from_query(parts.uri.query()))
                    .flatten()
            })
            .or(arg_key);
        Ok((found, has_arg))
    }

    /// Authenticates a request that carries no JSON-RPC message (GET, DELETE, status pages).
    pub async fn authenticate_plain(&self, parts: &Parts) -> Result<Option<Principal>, Refusal> {
        let presented = header_credential(parts)?.or_else(|| {
            self.auth
                .cfg
                .allow_query_key
                .then(|| extract::from_query(parts.uri.query()))
                .flatten()
        });
        // A signed client signs these bodiless requests over the empty body.
        let attempt = Attempt {
            headers: &parts.headers,
            body: b"",
            presented: presented.as_ref(),
            now: self.clock.unix_s(),
        };
        self.auth.authenticate(&attempt).await.map_err(Refusal::from)
    }

    async fn session_for(&self, parts: &Parts) -> Result<(Option<String>, Option<Principal>), Refusal> {
        rebinding::check(&self.config.http, &parts.uri, &parts.headers)?;
        let principal = self.authenticate_plain(parts).await?;
        let session = session_header(&parts.headers).map_err(|(r, _)| r)?.map(str::to_string);
        check_protocol_version(&parts.headers)?;
        if let Some(s) = &session {
            match self.sessions.check(s, principal.as_ref().map(|p| p.id())).await? {
                Lookup::Ok => {}
                Lookup::Unknown => return Err(Refusal::SessionNotFound),
                Lookup::OwnedByOther | Lookup::OpenedAnonymously => return Err(session_refusal(principal.is_some())),
            }
        } else if principal.is_none() && !self.config.policy.has_public() {
            return Err(Refusal::Unauthenticated { failure: None });
        }
        Ok((session, principal))
    }

    /// `GET /mcp` (the server's stream) toward this gateway's own connector.
    pub async fn handle_get(&self, parts: Parts) -> Result<Response, Refusal> {
        self.handle_get_via(&self.upstream, parts).await
    }

    pub async fn handle_get_via(&self, via: &dyn Forwarder, parts: Parts) -> Result<Response, Refusal> {
        let Some(mut span) = self.begin_span(&parts) else {
            return self.get_steps(via, &parts, None).await;
        };
        let log = log_span(&span);
        let result = self.get_steps(via, &parts, Some(&mut span)).instrument(log).await;
        self.end_plain_span(*span, &parts, &result);
        result
    }

    /// The request's span, when traces are on.
    fn begin_span(&self, parts: &Parts) -> Option<Box<crate::telemetry::RequestSpan>> {
        self.telemetry
            .as_ref()
            .map(|t| Box::new(t.begin(&parts.headers, self.clock.unix_ms())))
    }

    /// Ends a bodiless request's (GET, DELETE) span: it covers the checks and the upstream's
    /// answer (for GET, until the stream's headers).
    fn end_plain_span(&self, span: crate::telemetry::RequestSpan, parts: &Parts, result: &Result<Response, Refusal>) {
        let Some(t) = &self.telemetry else {
            return;
        };
        let attributes = if span.sampled() {
            let (status, reason) = match result {
                Ok(r) => (r.status(), None),
                Err(e) => (e.clone().into_response(None).status(), Some(e.label())),
            };
            let mut a: crate::telemetry::span::Attributes = vec![
                ("http.request.method", parts.method.as_str().to_string().into()),
                ("url.path", "/mcp".into()),
                ("http.response.status_code", i64::from(status.as_u16()).into()),
            ];
            if let Some(r) = reason {
                a.push(("mcpgate.reason", r.into()));
            }
            a
        } else {
            Vec::new()
        };
        let error = match result {
            Ok(r) => r.status(),
            Err(e) => e.clone().into_response(None).status(),
        }
        .is_server_error();
        t.end(span.finish(format!("{} /mcp", parts.method), attributes, error));
    }

    async fn get_steps(
        &self,
        via: &dyn Forwarder,
        parts: &Parts,
        mut span: Option<&mut crate::telemetry::RequestSpan>,
    ) -> Result<Response, Refusal> {
        let (session, principal) = self.session_for(parts).await?;
        if let Some(s) = span.as_deref_mut() {
            authenticated(s, principal.as_ref());
        }
        let principal = principal.map(std::sync::Arc::new);
        if !accepts(&parts.headers, "text/event-stream") {
            return Err(Refusal::MethodNotAllowed);
        }
        // Open streams are capped per caller and in all; the permit rides in the body.
        let permit = self
            .sessions
            .stream_permit(principal.as_ref().map(|p| p.id()), session.as_deref())
            .map_err(Refusal::Cap)?;
        let inject = span.as_deref_mut().map(|s| s.upstream_headers()).unwrap_or_default();
        let sent = Instant::now();
        let response = via
            .get(Plain {
                session: session.as_deref(),
                client: parts,
                principal: principal.as_ref(),
                inject: &inject,
            })
            .await;
        if let Some(s) = span {
            upstream_answered(s, &response, sent);
        }
        Ok(permit.attach(response?))
    }

    /// `DELETE /mcp` (end a session) toward this gateway's own connector.
    pub async fn handle_delete(&self, parts: Parts) -> Result<Response, Refusal> {
        self.handle_delete_via(&self.upstream, parts).await
    }

    pub async fn handle_delete_via(&self, via: &dyn Forwarder, parts: Parts) -> Result<Response, Refusal> {
        let Some(mut span) = self.begin_span(&parts) else {
            return self.delete_steps(via, &parts, None).await;
        };
        let log = log_span(&span);
        let result = self.delete_steps(via, &parts, Some(&mut span)).instrument(log).await;
        self.end_plain_span(*span, &parts, &result);
        result
    }

    async fn delete_steps(
        &self,
        via: &dyn Forwarder,
        parts: &Parts,
        mut span: Option<&mut crate::telemetry::RequestSpan>,
    ) -> Result<Response, Refusal> {
        let (session, principal) = self.session_for(parts).await?;
        if let Some(s) = span.as_deref_mut() {
            authenticated(s, principal.as_ref());
        }
        let session = session.ok_or(Refusal::SessionRequired)?;
        self.sessions.close(&session).await?;
        let principal = principal.map(std::sync::Arc::new);
        let inject = span.as_deref_mut().map(|s| s.upstream_headers()).unwrap_or_default();
        let sent = Instant::now();
        let response = via
            .delete(Plain {
                session: Some(&session),
                client: parts,
                principal: principal.as_ref(),
                inject: &inject,
            })
            .await;
        if let Some(s) = span {
            upstream_answered(s, &response, sent);
        }
        response
    }
}

/// Notes who the caller turned out to be on its span; a caller with a credential may have its
/// own sampled flag honoured from here on.
fn authenticated(span: &mut crate::telemetry::RequestSpan, principal: Option<&Principal>) {
    let method = principal.map_or(mcpgate_core::principal::AuthMethod::Anonymous, |p| p.method());
    if method != mcpgate_core::principal::AuthMethod::Anonymous {
        span.authenticated();
    }
    span.event("authenticated", || {
        let name = if principal.is_some() { method.as_str() } else { "none" };
        vec![("mcpgate.auth.method", name.into())]
    });
}

/// The log span a request's lines are written in: its trace id, when traces are on.
fn log_span(span: &crate::telemetry::RequestSpan) -> tracing::Span {
    tracing::info_span!("mcp", trace_id = %span.trace_id())
}

/// Ends the upstream call's span (sent at `sent`) and notes the answer on the request's span.
fn upstream_answered(span: &mut crate::telemetry::RequestSpan, response: &Result<Response, Refusal>, sent: Instant) {
    let latency_us = i64::try_from(sent.elapsed().as_micros()).unwrap_or(i64::MAX);
    let outcome: (&'static str, crate::telemetry::span::Value) = match response {
        Ok(r) => ("http.response.status_code", i64::from(r.status().as_u16()).into()),
        Err(e) => ("mcpgate.reason", e.label().into()),
    };
    let failed = response.as_ref().map_or(true, |r| r.status().is_server_error());
    let latency = (
        "mcpgate.upstream.latency_us",
        crate::telemetry::span::Value::Int(latency_us),
    );
    span.upstream_done(failed, || vec![outcome.clone(), latency.clone()]);
    span.event("upstream.answered", || vec![outcome, latency]);
}
