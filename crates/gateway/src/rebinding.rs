//! DNS-rebinding protection: the Host a request names must be one of ours, and a browser's Origin
//! must be one we allow. Without it, a web page could make a visitor's browser call a gateway on
//! localhost. `/mcp` runs [`check`] first in its pipeline; every other route of the gateway gets it
//! through [`require_allowed_host`], so a rebinding page can read neither metrics nor health.

use crate::Gateway;
use crate::config::HttpConfig;
use crate::refusal::Refusal;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Uri, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// The router layer: refuses a request whose Host or Origin is not ours before any handler runs.
pub async fn require_allowed_host(State(gw): State<Arc<Gateway>>, req: Request, next: Next) -> Response {
    match check(&gw.config.http, req.uri(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(refusal) => refusal.into_response(None),
    }
}

/// The layer for endpoints other sites may call on purpose (the authorization server's JSON
/// endpoints and discovery documents, which browser-based MCP clients fetch cross-origin): the
/// Host must be ours (DNS rebinding), any Origin may ask. They carry no ambient credential (no
/// cookie is read there), so a cross-origin caller gains nothing it could not get directly.
pub async fn require_allowed_host_any_origin(State(gw): State<Arc<Gateway>>, req: Request, next: Next) -> Response {
    match check_host(&gw.config.http, req.uri(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(refusal) => refusal.into_response(None),
    }
}

fn check_host(cfg: &HttpConfig, uri: &Uri, headers: &HeaderMap) -> Result<(), Refusal> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .ok_or(Refusal::ForbiddenHost)?;
    if !host_allowed(&cfg.allowed_hosts, host) {
        return Err(Refusal::ForbiddenHost);
    }
    Ok(())
}

pub fn check(cfg: &HttpConfig, uri: &Uri, headers: &HeaderMap) -> Result<(), Refusal> {
    check_host(cfg, uri, headers)?;
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().map_err(|_| Refusal::ForbiddenOrigin)?;
        if !origin_allowed(cfg, origin) {
            return Err(Refusal::ForbiddenOrigin);
        }
    }
    Ok(())
}

/// Splits `host[:port]` (with `[v6]` brackets kept) into name and port.
fn split_host(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => {
                let (name, rest) = authority.split_at(end + 1);
                (name, rest.strip_prefix(':'))
            }
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (authority, None),
    }
}

fn host_allowed(allowed: &[String], host: &str) -> bool {
    let (name, port) = split_host(host);
    allowed.iter().any(|rule| {
        if rule == "*" {
            return true;
        }
        let (rname, rport) = split_host(rule);
        rname.eq_ignore_ascii_case(name) && (rport.is_none() || rport == port)
    })
}

fn origin_allowed(cfg: &HttpConfig, origin: &str) -> bool {
    if cfg
        .allowed_origins
        .iter()
        .any(|o| o == "*" || o.eq_ignore_ascii_case(origin.trim_end_matches('/')))
    {
        return true;
    }
    // With no explicit list, an origin on one of our own hosts is same-site enough.
    if cfg.allowed_origins.is_empty()
        && let Some(rest) = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
    {
        let authority = rest.split('/').next().unwrap_or(rest);
        return !authority.contains('@') && host_allowed(&cfg.allowed_hosts, authority);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn cfg(origins: &[&str]) -> HttpConfig {
        HttpConfig {
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            ..HttpConfig::default()
        }
    }

    fn req(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn hosts_and_origins() {
        let uri: Uri = "/mcp".parse().unwrap();
        let c = cfg(&[]);
        let ok = [
            ("127.0.0.1:3210", None),
            ("localhost", None),
            ("[::1]:80", None),
            ("LOCALHOST:1", Some("http://localhost:5173")),
        ];
        for (h, o) in ok {
            assert_eq!(check(&c, &uri, &req(h, o)), Ok(()), "{h} {o:?}");
        }
        let bad = [
            ("evil.example:3210", None, Refusal::ForbiddenHost),
            ("127.0.0.1.evil.example", None, Refusal::ForbiddenHost),
            ("127.0.0.1:3210", Some("http://evil.example"), Refusal::ForbiddenOrigin),
            ("127.0.0.1:3210", Some("null"), Refusal::ForbiddenOrigin),
            (
                "127.0.0.1:3210",
                Some("http://user@localhost"),
                Refusal::ForbiddenOrigin,
            ),
        ];
        for (h, o, want) in bad {
            assert_eq!(check(&c, &uri, &req(h, o)), Err(want), "{h} {o:?}");
        }
        let listed = cfg(&["https://app.example"]);
        assert_eq!(
            check(&listed, &uri, &req("localhost", Some("https://app.example"))),
            Ok(())
        );
        assert_eq!(
            check(&listed, &uri, &req("localhost", Some("http://localhost"))),
            Err(Refusal::ForbiddenOrigin)
        );
    }
}
