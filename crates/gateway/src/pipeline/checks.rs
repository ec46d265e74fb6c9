//! The pipeline's checks of what a request carries — transport headers, where a credential may
//! be, the request id, the policy's questions — and the refusals it answers with. Each is a pure
//! function of the request; `super` decides when each runs.

use super::Refused;
use crate::auth::extract::{self, Found, Location, Presented};
use crate::refusal::{Refusal, printable};
use crate::upstream::{SESSION_HEADER, header_str};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use mcpgate_core::entropy::Entropy;
use mcpgate_core::jsonrpc::{self, Message};
use mcpgate_core::policy::Denial;
use mcpgate_core::principal::Principal;
use serde_json::value::RawValue;

/// The credential in `X-API-Key` or `Authorization`, if any; one that cannot be read is refused
/// (and logged for `DEBUG=auth:*`).
pub(super) fn header_credential(parts: &Parts) -> Result<Option<Presented>, Refusal> {
    match extract::from_headers(&parts.headers) {
        Found::Credential(p) => Ok(Some(p)),
        Found::None => Ok(None),
        Found::Malformed(why) => {
            let failure = crate::auth::AuthFailure::Malformed(why);
            crate::auth::log_refusal("header", None, failure);
            Err(Refusal::Unauthenticated { failure: Some(failure) })
        }
    }
}

/// A session that is not the caller's: with no credential, the caller is told to authenticate
/// (and OAuth clients get the 401 that starts their sign-in).
pub(super) fn session_refusal(authenticated: bool) -> Refusal {
    if authenticated {
        Refusal::SessionOwnedByOther
    } else {
        Refusal::Unauthenticated { failure: None }
    }
}

/// What the caller is told when the policy says no.
pub(super) fn denial_refusal(d: Denial, p: Option<&Principal>, method: &str, tool: Option<&str>) -> Refusal {
    // A caller without a credential is told to send one, not what its (absent) key lacks.
    if p.is_some_and(|p| p.method() == mcpgate_core::principal::AuthMethod::Anonymous) && !matches!(d, Denial::Denied) {
        return Refusal::Unauthenticated { failure: None };
    }
    let what = match tool {
        Some(t) => format!("{method} {}", printable(t, 64)),
        None => method.to_string(),
    };
    match d {
        Denial::Unauthenticated => Refusal::Unauthenticated { failure: None },
        Denial::Role { needed } => Refusal::Forbidden {
            message: format!(
                "insufficient role: {what} needs role {} or higher; your role is {}",
                needed.as_str(),
                p.map(|p| p.role().as_str()).unwrap_or("none")
            ),
        },
        // A token this gateway issued carries the scopes granted as its permissions: what is
        // missing is a scope the client can ask for again (step-up), so say so in the challenge.
        Denial::Permission { missing }
            if p.is_some_and(|p| p.method() == mcpgate_core::principal::AuthMethod::OAuth) =>
        {
            Refusal::InsufficientScope { scopes: missing }
        }
        Denial::Permission { missing } => Refusal::Forbidden {
            message: format!(
                "insufficient permission: {what} needs permission {}; your credential has [{}]",
                missing.join(", "),
                p.map(|p| p.permissions().join(", ")).unwrap_or_default()
            ),
        },
        Denial::Scope { missing } => Refusal::InsufficientScope { scopes: missing },
        Denial::Denied => Refusal::Forbidden {
            message: format!("{what} is not allowed through this gateway"),
        },
    }
}

/// A tools/call `api_key` argument (seed 000), when the option is on: `Ok(None)` when there is
/// none; refused when it is there but not a string (it must never travel on unread).
pub(super) fn tool_arg_key(msg: &Message<'_>) -> Result<Option<Presented>, Refusal> {
    #[derive(serde::Deserialize)]
    struct Args<'a> {
        #[serde(borrow, default)]
        api_key: Option<&'a RawValue>,
    }
    #[derive(serde::Deserialize)]
    struct Params<'a> {
        #[serde(borrow, default)]
        arguments: Option<&'a RawValue>,
    }
    let Some(params) = msg.params else { return Ok(None) };
    let bad = || Refusal::Malformed {
        code: mcpgate_core::jsonrpc::code::INVALID_PARAMS,
        message: "invalid params: the \"api_key\" argument must be a string".into(),
    };
    let p: Params<'_> = serde_json::from_str(params.get()).map_err(|_| bad())?;
    let Some(args) = p.arguments else { return Ok(None) };
    let a: Args<'_> = serde_json::from_str(args.get()).map_err(|_| bad())?;
    let Some(raw) = a.api_key else { return Ok(None) };
    let key: String = serde_json::from_str(raw.get()).map_err(|_| bad())?;
    Ok(Some(Presented {
        secret: mcpgate_core::redact::Secret::new(key),
        from: Location::ToolArg,
    }))
}

/// The message without `params.arguments.api_key`, canonical, every other byte as read.
pub(super) fn strip_tool_arg_key(msg: &Message<'_>) -> Result<Bytes, Refusal> {
    jsonrpc::with_argument(msg, "api_key", None)
        .map(Bytes::from)
        .map_err(|_| Refusal::UpstreamGarbled)
}

/// A refusal for a body that is not a message the gateway accepts.
pub(super) fn malformed(e: jsonrpc::ParseError) -> Refused {
    (
        Refusal::Malformed {
            code: e.code(),
            message: e.to_string(),
        },
        None,
    )
}

/// What the policy is asked about a message: its method and target, and for
/// `completion/complete` also the prompt or resource it completes for (completing a prompt's
/// arguments must need what using the prompt needs).
pub(super) fn policy_questions<'m>(msg: &'m Message<'_>) -> Vec<(&'m str, Option<&'m str>)> {
    use mcpgate_core::jsonrpc::TargetKind;
    let mut q = vec![(msg.method(), msg.target())];
    if msg.method() == "completion/complete"
        && let Some((kind, t)) = &msg.target
    {
        q[0].1 = None;
        let method = match kind {
            TargetKind::Prompt => "prompts/get",
            _ => "resources/read",
        };
        q.push((method, Some(t.as_ref())));
    }
    q
}

/// A request id: the caller's `X-Request-Id` when it is short and printable, else a new one.
pub(super) fn request_id(headers: &HeaderMap, entropy: &dyn Entropy) -> String {
    if let Some(v) = header_str(headers, "x-request-id")
        && !v.is_empty()
        && v.len() <= 64
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    {
        return v.to_string();
    }
    entropy.hex_id(8)
}

/// The session id, when the request names one; an id that is not visible ASCII is one this
/// gateway never issued (and must not reach the upstream as a different reading).
pub(super) fn session_header(headers: &HeaderMap) -> Result<Option<&str>, Refused> {
    match headers.get(SESSION_HEADER) {
        None => Ok(None),
        Some(v) => match v.to_str() {
            Ok(s) => Ok(Some(s)),
            Err(_) => Err((Refusal::SessionNotFound, None)),
        },
    }
}

/// `MCP-Protocol-Version`, when sent, is a revision date (`YYYY-MM-DD`); anything else is
/// refused here rather than forwarded (an upstream's answer could quote it back).
pub(super) fn check_protocol_version(headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(v) = headers.get(crate::upstream::PROTOCOL_HEADER) else {
        return Ok(());
    };
    let ok = v.as_bytes().len() == 10
        && v.as_bytes().iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if ok {
        Ok(())
    } else {
        Err(Refusal::Malformed {
            code: jsonrpc::code::INVALID_REQUEST,
            message: "MCP-Protocol-Version must be a protocol revision such as 2025-06-18".into(),
        })
    }
}

pub(super) fn check_content_type(headers: &HeaderMap) -> Result<(), Refusal> {
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
pub(super) fn check_accept(headers: &HeaderMap) -> Result<(), Refusal> {
    if accepts(headers, "application/json") || accepts(headers, "text/event-stream") {
        Ok(())
    } else {
        Err(Refusal::NotAcceptable)
    }
}

pub(super) fn accepts(headers: &HeaderMap, media: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use mcpgate_core::entropy::SeededEntropy;

    #[test]
    fn request_ids_are_the_callers_when_printable_else_from_the_injected_entropy() {
        let mut h = HeaderMap::new();
        let made = request_id(&h, &SeededEntropy::new(3));
        assert_eq!(made, SeededEntropy::new(3).hex_id(8));
        assert_eq!(made.len(), 16);
        h.insert("x-request-id", "trace-1.a:b_c".parse().unwrap());
        assert_eq!(request_id(&h, &SeededEntropy::new(3)), "trace-1.a:b_c");
        for bad in ["has space", "semi;colon", &"x".repeat(65)] {
            h.insert("x-request-id", bad.parse().unwrap());
            assert_eq!(
                request_id(&h, &SeededEntropy::new(4)),
                SeededEntropy::new(4).hex_id(8),
                "{bad}"
            );
        }
    }
}
