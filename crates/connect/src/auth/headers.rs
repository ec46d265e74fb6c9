//! Fixed headers: `--header "K: V"` (the value inline, or `env:NAME` for a secret) and
//! `--tenant T` (`X-Tenant-ID`, seed 002's multi-tenant pattern). The same on every request;
//! nothing to renew, so a 401 is not theirs to fix.

use super::{Auth, AuthError, SetupError, header_name, header_value};
use crate::secret::value_or_env;
use http::{HeaderMap, HeaderName, Method};

/// The tenant header seed 002 sends.
pub const TENANT_HEADER: &str = "x-tenant-id";

/// Headers the transport itself sets: one given here would break the exchange (a wrong length or
/// content type) or another session's state.
const RESERVED: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
];

/// Whether a header, by its name, carries a credential (and so must come from the environment in
/// a profile, and is marked sensitive): `Authorization`, `Cookie`, or any name containing key,
/// token, secret, signature, auth or password.
pub fn is_credential_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "cookie"
        || ["key", "token", "secret", "signature", "auth", "password"]
            .iter()
            .any(|w| n.contains(w))
}

/// Fixed headers on every request.
#[derive(Clone, Default)]
pub struct Headers {
    map: HeaderMap,
}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Headers").field("names", &self.names()).finish()
    }
}

impl Headers {
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Splits a `--header` argument, `"Name: value"`, at its first colon.
    pub fn split_flag(spec: &str) -> Result<(String, String), SetupError> {
        let Some((name, value)) = spec.split_once(':') else {
            return Err(SetupError::new(
                "--header",
                // Not echoed: a mistyped header may hold a key.
                "expected \"Name: value\" or \"Name: env:VAR\" (no colon found)",
            ));
        };
        Ok((name.trim().to_string(), value.trim().to_string()))
    }

    /// Adds `name: value`, where `value` is literal or `env:NAME`; `what` names the flag or field
    /// in errors. A header of the same name is replaced.
    pub fn with(
        mut self,
        what: &str,
        name: &str,
        value: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Headers, SetupError> {
        let name = header_name(what, name)?;
        if RESERVED.contains(&name.as_str()) {
            return Err(SetupError::new(
                what,
                format!("{name} is set by the transport and cannot be given as a header"),
            ));
        }
        let from_env = value.starts_with("env:");
        let value = value_or_env(what, value, env)?;
        let value = header_value(what, value.expose(), from_env || is_credential_name(name.as_str()))?;
        self.map.insert(name, value);
        Ok(self)
    }

    /// Adds `X-Tenant-ID: tenant` (literal or `env:NAME`).
    pub fn tenant(self, tenant: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Headers, SetupError> {
        self.with("--tenant", TENANT_HEADER, tenant, env)
    }

    /// The header names, for log lines and conflict checks.
    pub fn names(&self) -> Vec<HeaderName> {
        self.map.keys().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[async_trait::async_trait]
impl Auth for Headers {
    async fn headers(&self, _: &Method, _: &str, _: &[u8]) -> Result<HeaderMap, AuthError> {
        Ok(self.map.clone())
    }

    async fn unauthorized(&self, _: &HeaderMap, _: Option<&str>) -> bool {
        false
    }

    fn describe(&self) -> String {
        let names: Vec<String> = self.map.keys().map(|n| n.to_string()).collect();
        format!("headers {}", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "MCP_API_KEY").then(|| "k-123".to_string())
    }

    #[tokio::test]
    async fn fixed_headers_and_tenant() {
        let (n, v) = Headers::split_flag("X-API-Key: env:MCP_API_KEY").unwrap();
        let h = Headers::new()
            .with("--header", &n, &v, &env)
            .unwrap()
            .with("--header", "X-Env", "staging", &env)
            .unwrap()
            .tenant("acme", &env)
            .unwrap();
        let got = h.headers(&Method::POST, "http://x/mcp", b"{}").await.unwrap();
        assert_eq!(got["x-api-key"], "k-123");
        assert!(got["x-api-key"].is_sensitive());
        assert_eq!(got["x-env"], "staging");
        assert!(!got["x-env"].is_sensitive());
        assert_eq!(got["x-tenant-id"], "acme");
        assert!(!h.unauthorized(&got, None).await);
        assert!(!format!("{h:?}").contains("k-123"));
        assert_eq!(h.describe(), "headers x-api-key, x-env, x-tenant-id");
    }

    #[test]
    fn bad_headers_are_refused_by_name() {
        let e = Headers::split_flag("no colon here").unwrap_err();
        assert!(e.to_string().starts_with("--header:"), "{e}");
        for (name, value) in [("X-A", "a\r\nX-B: b"), ("X-A", "a\nb"), ("Bad Name", "v"), ("X(", "v")] {
            assert!(
                Headers::new().with("--header", name, value, &env).is_err(),
                "{name}: {value:?}"
            );
        }
        let e = Headers::new()
            .with("--header", "Content-Type", "text/plain", &env)
            .unwrap_err();
        assert!(e.to_string().contains("set by the transport"), "{e}");
        let e = Headers::new()
            .with("--header", "X-API-Key", "env:UNSET_VAR", &env)
            .unwrap_err();
        assert!(e.to_string().contains("UNSET_VAR"), "{e}");
    }

    #[test]
    fn credential_names() {
        for n in [
            "Authorization",
            "X-API-Key",
            "Cookie",
            "X-Auth-Token",
            "x-client-secret",
            "X-Signature",
        ] {
            assert!(is_credential_name(n), "{n}");
        }
        for n in ["X-Tenant-ID", "X-Env", "User-Agent"] {
            assert!(!is_credential_name(n), "{n}");
        }
    }
}
