//! Token introspection (RFC 7662) for opaque bearer tokens: the token is POSTed to the
//! authorization server's introspection endpoint with the gateway's client credentials, and an
//! `active` answer becomes a [`Principal`] (`sub`, `scope`, `client_id`, `exp`, `aud`, plus the
//! same extension claims a JWT may carry: `tenant_id`, `roles`, `permissions`, the upstream
//! credential paths).
//!
//! Answers are cached by the token's SHA-256 — an active one for `cache_ttl_s` but never past its
//! `exp`, an inactive one for `cache_ttl_s` — so a busy client costs the server one call per TTL.
//! An endpoint that is down, slow or answers 5xx yields `IssuerUnavailable` (503), never a false
//! "invalid token". Calls go through [`Outbound`]: one per distinct token at a time, at most
//! `max_concurrent` at once and `max_per_second` on average, so made-up tokens cannot flood the
//! authorization server; past that ceiling the caller is told to retry (503 with `Retry-After`).

use super::fetch::{check_url, read_limited};
use super::jwt::{ClaimMap, MAX_TOKEN_BYTES};
use super::outbound::{Clock, Outbound, OutboundLimits, Outcome, SystemClock, Unanswered};
use super::token_error::TokenError;
use base64::Engine;
use mcpgate_core::keys::hash_hex;
use mcpgate_core::principal::{AuthMethod, Principal};
use mcpgate_core::redact::Secret;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_CACHE_TTL_S: u64 = 60;
pub const DEFAULT_TIMEOUT_MS: u64 = 2000;
const MAX_CACHED: usize = 10_000;
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// `[auth.introspection]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntrospection {
    /// The RFC 7662 endpoint (https, or http to localhost).
    pub url: String,
    pub client_id: String,
    /// Environment variable holding the gateway's client secret.
    pub client_secret_env: String,
    /// How long an answer is reused (default 60 s; an active token never past its `exp`).
    pub cache_ttl_s: Option<u64>,
    pub timeout_ms: Option<u64>,
    /// When set, the answer's `aud` must contain one of these. Unset: not checked (many
    /// servers omit `aud` from introspection answers).
    pub audience: Option<Vec<String>>,
}

/// `[auth.introspection]` as written: the endpoint's settings and the ceilings on calls to it
/// (`max_concurrent`, `max_per_second`). Kept apart from [`RawIntrospection`], which embedders
/// and tests build field by field, so adding a setting here breaks none of them.
#[derive(Debug, Default, Clone)]
pub struct IntrospectionSection {
    pub endpoint: RawIntrospection,
    pub max_concurrent: Option<u32>,
    pub max_per_second: Option<u32>,
}

impl<'de> Deserialize<'de> for IntrospectionSection {
    /// The two ceilings are taken out of the table; the rest must be exactly a
    /// [`RawIntrospection`] (unknown keys still refused).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = serde_json::Map::<String, Value>::deserialize(d)?;
        let mut take = |name: &str| {
            table
                .remove(name)
                .map(|v| serde_json::from_value::<u32>(v).map_err(|e| D::Error::custom(format!("{name}: {e}"))))
                .transpose()
        };
        let max_concurrent = take("max_concurrent")?;
        let max_per_second = take("max_per_second")?;
        let endpoint = RawIntrospection::deserialize(Value::Object(table)).map_err(D::Error::custom)?;
        Ok(IntrospectionSection {
            endpoint,
            max_concurrent,
            max_per_second,
        })
    }
}

pub struct IntrospectionVerifier {
    url: reqwest::Url,
    /// `Basic base64(urlencode(client_id):urlencode(secret))` (RFC 6749 §2.3.1).
    authorization: Secret,
    cache_ttl: i64,
    audience: Vec<String>,
    claims: ClaimMap,
    client: reqwest::Client,
    outbound: Outbound<Result<Principal, TokenError>>,
}

#[derive(Deserialize)]
struct Answer {
    active: bool,
    exp: Option<Value>,
    token_type: Option<String>,
}

impl IntrospectionVerifier {
    /// With the default ceilings on calls.
    pub fn new(raw: RawIntrospection, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        Self::build(raw, OutboundLimits::default(), Arc::new(SystemClock), env)
    }

    /// From the config section, its ceilings checked.
    pub fn from_section(
        section: IntrospectionSection,
        clock: Arc<dyn Clock>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let limits = OutboundLimits::new(
            ("auth.introspection.max_concurrent", section.max_concurrent),
            ("auth.introspection.max_per_second", section.max_per_second),
        )
        .map_err(|(field, problem)| format!("{field}: {problem}"))?;
        Self::build(section.endpoint, limits, clock, env)
    }

    fn build(
        raw: RawIntrospection,
        limits: OutboundLimits,
        clock: Arc<dyn Clock>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let url = check_url("auth.introspection.url", &raw.url)?;
        if raw.client_id.is_empty() {
            return Err("auth.introspection.client_id: empty".into());
        }
        let secret = env(&raw.client_secret_env).filter(|s| !s.is_empty()).ok_or_else(|| {
            format!(
                "auth.introspection.client_secret_env: environment variable {} is not set",
                raw.client_secret_env
            )
        })?;
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let authorization = Secret::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(&raw.client_id), enc(&secret)))
        ));
        let timeout = Duration::from_millis(raw.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
        if timeout.is_zero() {
            return Err("auth.introspection.timeout_ms: must be more than 0".into());
        }
        let audience = raw.audience.unwrap_or_default();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            // The request carries the client secret and the token: never follow a redirect.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mcpgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the introspection HTTP client: {e}"))?;
        let claims = ClaimMap {
            subject: vec!["sub".into(), "client_id".into()],
            name: vec!["username".into(), "name".into(), "client_id".into()],
            ..ClaimMap::default()
        };
        Ok(IntrospectionVerifier {
            url,
            authorization,
            cache_ttl: i64::try_from(raw.cache_ttl_s.unwrap_or(DEFAULT_CACHE_TTL_S)).unwrap_or(i64::MAX),
            audience,
            claims,
            client,
            outbound: Outbound::new(limits, MAX_CACHED, clock),
        })
    }

    /// Calls made to the endpoint so far.
    pub fn calls(&self) -> u64 {
        self.outbound.calls()
    }

    /// The verdict on a token, or why there is none (a busy gateway is told apart from a down
    /// endpoint: the caller's `Retry-After` differs).
    pub async fn introspect(&self, token: &str, now_unix: i64) -> Result<Result<Principal, TokenError>, Unanswered> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Ok(Err(TokenError::Invalid("malformed")));
        }
        let call = || async {
            let Ok(answer) = self.ask(token).await else {
                return Outcome::Unavailable;
            };
            match self.judge(&answer, now_unix) {
                (Err(TokenError::IssuerUnavailable), _) => Outcome::Unavailable,
                (value, until) => Outcome::Answer { value, until },
            }
        };
        self.outbound.run(hash_hex(token), now_unix, call).await
    }

    /// [`Self::introspect`] with "no answer" as `IssuerUnavailable`.
    pub async fn verify(&self, token: &str, now_unix: i64) -> Result<Principal, TokenError> {
        self.introspect(token, now_unix)
            .await
            .unwrap_or(Err(TokenError::IssuerUnavailable))
    }

    async fn ask(&self, token: &str) -> Result<Value, TokenError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let resp = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::AUTHORIZATION, self.authorization.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                // reqwest's error names the URL only, never the body.
                tracing::warn!(target: "mcpgate::auth", error = %e, "introspection endpoint unreachable");
                TokenError::IssuerUnavailable
            })?;
        let status = resp.status();
        if !status.is_success() {
            // 401/403 here means the gateway's own client credentials are wrong: not the caller's fault.
            tracing::warn!(target: "mcpgate::auth", %status, url = %self.url, "introspection endpoint refused");
            return Err(TokenError::IssuerUnavailable);
        }
        let bytes = read_limited(resp, MAX_ANSWER_BYTES).await.map_err(|e| {
            tracing::warn!(target: "mcpgate::auth", error = %e, "introspection answer unreadable");
            TokenError::IssuerUnavailable
        })?;
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| {
                tracing::warn!(target: "mcpgate::auth", url = %self.url, "introspection answer is not a JSON object");
                TokenError::IssuerUnavailable
            })
    }

    /// The verdict on an answer and until when it may be reused.
    fn judge(&self, v: &Value, now: i64) -> (Result<Principal, TokenError>, i64) {
        let ttl_end = now.saturating_add(self.cache_ttl);
        let Ok(a) = serde_json::from_value::<Answer>(v.clone()) else {
            return (Err(TokenError::Invalid("inactive")), ttl_end);
        };
        if !a.active {
            return (Err(TokenError::Invalid("inactive")), ttl_end);
        }
        let exp = match &a.exp {
            None => None,
            Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Some(_) => return (Err(TokenError::Invalid("malformed")), ttl_end),
        };
        if exp.is_some_and(|e| now >= e) {
            return (Err(TokenError::Expired), ttl_end);
        }
        if a.token_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("refresh_token"))
        {
            return (Err(TokenError::Invalid("not_access_token")), ttl_end);
        }
        if !self.audience.is_empty() {
            let accepted = |x: &Value| x.as_str().is_some_and(|x| self.audience.iter().any(|a| a == x));
            let ok = match v.get("aud") {
                Some(Value::Array(l)) => l.iter().any(accepted),
                Some(x) => accepted(x),
                None => false,
            };
            if !ok {
                return (Err(TokenError::Invalid("wrong_audience")), ttl_end);
            }
        }
        let until = exp.map_or(ttl_end, |e| e.min(ttl_end));
        (
            self.claims.principal(v, AuthMethod::Introspection, "introspect", exp),
            until,
        )
    }
}

/// Opaque bearer tokens (RFC 7662): a bearer value is this method's; any other place is not.
impl super::Authenticator for IntrospectionVerifier {
    async fn authenticate(&self, a: &super::Attempt<'_>) -> super::Outcome {
        use super::{AuthFailure, Outcome};
        let Some(p) = a.presented.filter(|p| p.from == super::extract::Location::Bearer) else {
            return Outcome::NotMine;
        };
        match self.introspect(p.secret.expose(), a.now).await {
            Ok(Ok(principal)) => Outcome::Authenticated(principal),
            Ok(Err(e)) => Outcome::Refused(super::token_failure(e)),
            Err(Unanswered::Unavailable) => Outcome::Refused(AuthFailure::VerifierUnavailable),
            Err(Unanswered::Busy { retry_after_s }) => Outcome::Refused(AuthFailure::VerifierBusy { retry_after_s }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpgate_core::principal::Role;
    use serde_json::json;

    fn verifier(audience: Option<Vec<String>>) -> IntrospectionVerifier {
        IntrospectionVerifier::new(
            RawIntrospection {
                url: "https://as.example.com/introspect".into(),
                client_id: "gate way".into(),
                client_secret_env: "S".into(),
                audience,
                ..Default::default()
            },
            &|_| Some("p@ss:word".into()),
        )
        .unwrap()
    }

    #[test]
    fn client_credentials_are_form_encoded_before_basic() {
        let v = verifier(None);
        let b64 = v.authorization.expose().strip_prefix("Basic ").unwrap();
        let raw = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
        assert_eq!(String::from_utf8(raw).unwrap(), "gate+way:p%40ss%3Aword");
        assert_eq!(format!("{:?}", v.authorization), "<redacted>");
    }

    #[test]
    fn answers_map_to_principals() {
        let v = verifier(Some(vec!["https://gw/mcp".into()]));
        let now = 1000;
        let (p, until) = v.judge(
            &json!({"active": true, "sub": "alice", "scope": "read write", "client_id": "app",
                    "exp": now + 30, "aud": ["https://gw/mcp"], "roles": ["developer"]}),
            now,
        );
        let p = p.unwrap();
        assert_eq!((p.id(), p.user_id()), ("introspect:alice", "alice"));
        assert_eq!(p.name(), Some("app"));
        assert_eq!(p.scopes(), Some(&["read".to_string(), "write".to_string()][..]));
        assert_eq!(p.permissions(), vec!["read".to_string(), "write".to_string()]);
        assert_eq!(p.role(), Role::Developer);
        assert_eq!(p.method(), AuthMethod::Introspection);
        assert_eq!(until, now + 30, "never cached past exp");
        let cases = [
            (json!({"active": false}), TokenError::Invalid("inactive")),
            (json!({"active": "yes"}), TokenError::Invalid("inactive")),
            (
                json!({"active": true, "sub": "a", "aud": "https://gw/mcp", "exp": now - 1}),
                TokenError::Expired,
            ),
            (
                json!({"active": true, "sub": "a", "aud": "other"}),
                TokenError::Invalid("wrong_audience"),
            ),
            (
                json!({"active": true, "aud": "https://gw/mcp"}),
                TokenError::Invalid("missing_subject"),
            ),
            (
                json!({"active": true, "sub": "a", "aud": "https://gw/mcp", "token_type": "refresh_token"}),
                TokenError::Invalid("not_access_token"),
            ),
        ];
        for (answer, want) in cases {
            assert_eq!(v.judge(&answer, now).0.unwrap_err(), want, "{answer}");
        }
        // A client-credentials token: no sub, the client is the subject.
        let p = verifier(None)
            .judge(&json!({"active": true, "client_id": "svc"}), now)
            .0
            .unwrap();
        assert_eq!(p.user_id(), "svc");
    }

    #[test]
    fn config_errors_name_the_field() {
        let raw = |url: &str| RawIntrospection {
            url: url.into(),
            client_id: "c".into(),
            client_secret_env: "S".into(),
            ..Default::default()
        };
        let e = IntrospectionVerifier::new(raw("http://as.example.com/i"), &|_| Some("s".into()))
            .err()
            .unwrap();
        assert!(e.starts_with("auth.introspection.url:"), "{e}");
        let e = IntrospectionVerifier::new(raw("https://as.example.com/i"), &|_| None)
            .err()
            .unwrap();
        assert!(e.starts_with("auth.introspection.client_secret_env:"), "{e}");
    }
}
