//! External key verification (seed 000 reuses its public API's keys): a key the registry does not
//! know is checked by calling the vendor's API (for example `GET /me`). Answers are cached briefly
//! by the key's hash — successes and failures with separate lifetimes. A verifier that is slow,
//! down or rate-limiting us yields "unavailable" (503), never a false "invalid key", and is never
//! cached. Calls go through [`Outbound`]: one per distinct key at a time, and at most
//! `max_concurrent` at once and `max_per_second` on average, so made-up keys cannot flood the
//! vendor; past that ceiling a caller is told the verifier is busy (503 with `Retry-After`).

use super::fetch::read_limited;
use super::outbound::{Clock, Outbound, Outcome, SystemClock, Unanswered};
use super::settings::ExternalConfig;
use mcpgate_core::keys::hash_hex;
use mcpgate_core::principal::{AuthMethod, Principal, Role, Verified};
use mcpgate_core::redact::Secret;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternalError {
    Invalid,
    Unavailable,
    /// The gateway's ceiling on calls to the vendor was reached.
    Busy {
        retry_after_s: u64,
    },
}

pub struct ExternalVerifier {
    cfg: ExternalConfig,
    client: reqwest::Client,
    /// `None` = the vendor said the key is not valid.
    outbound: Outbound<Option<Principal>>,
}

/// Bound on cached answers, so a flood of random keys cannot grow memory without limit (and the
/// rate ceiling lets at most `max_per_second` new ones in per second).
const MAX_CACHE: usize = 100_000;
/// A `GET /me` answer is a few hundred bytes; more than this is not a user record.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

impl ExternalVerifier {
    pub fn new(cfg: ExternalConfig) -> Result<Self, String> {
        Self::with_clock(cfg, Arc::new(SystemClock))
    }

    pub fn with_clock(cfg: ExternalConfig, clock: Arc<dyn Clock>) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            // The request carries the caller's key: never follow a redirect elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the verifier's HTTP client: {e}"))?;
        Ok(ExternalVerifier {
            outbound: Outbound::new(cfg.outbound, MAX_CACHE, clock),
            cfg,
            client,
        })
    }

    /// Calls made to the vendor so far.
    pub fn calls(&self) -> u64 {
        self.outbound.calls()
    }

    pub async fn verify(&self, key: &Secret, now: i64) -> Result<Principal, ExternalError> {
        // A key that cannot travel in a header (a control character from a tool argument) is not
        // one the vendor could have issued: refused without a call.
        let Ok(mut value) = reqwest::header::HeaderValue::from_str(&self.cfg.template.replace("{key}", key.expose()))
        else {
            return Err(ExternalError::Invalid);
        };
        value.set_sensitive(true);
        let answer = self
            .outbound
            .run(hash_hex(key.expose()), now, || self.ask(value, now))
            .await;
        match answer {
            Ok(Some(p)) => Ok(p),
            Ok(None) => Err(ExternalError::Invalid),
            Err(Unanswered::Unavailable) => Err(ExternalError::Unavailable),
            Err(Unanswered::Busy { retry_after_s }) => Err(ExternalError::Busy { retry_after_s }),
        }
    }

    /// One call to the vendor. Only 401/403/404 mean "not a valid key"; anything else that is not
    /// a readable user record says nothing about the key.
    async fn ask(&self, value: reqwest::header::HeaderValue, now: i64) -> Outcome<Option<Principal>> {
        let resp = self
            .client
            .get(self.cfg.url.clone())
            .header(self.cfg.header.clone(), value)
            .send()
            .await;
        let until = |ttl: std::time::Duration| now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                // reqwest's error names the URL only; the key travels in a header.
                tracing::warn!(target: "mcpgate::auth", error = %e, "external key verifier unreachable");
                return Outcome::Unavailable;
            }
        };
        let status = resp.status();
        if matches!(status.as_u16(), 401 | 403 | 404) {
            return Outcome::Answer {
                value: None,
                until: until(self.cfg.negative_cache_ttl),
            };
        }
        if !status.is_success() {
            tracing::warn!(target: "mcpgate::auth", %status, url = %self.cfg.url, "external key verifier failed");
            return Outcome::Unavailable;
        }
        let principal = match read_limited(resp, MAX_ANSWER_BYTES).await {
            Ok(body) => serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| self.principal(&v)),
            Err(e) => {
                tracing::warn!(target: "mcpgate::auth", error = %e, url = %self.cfg.url, "external key verifier answer refused");
                return Outcome::Unavailable;
            }
        };
        match principal {
            Some(p) => Outcome::Answer {
                value: Some(p),
                until: until(self.cfg.cache_ttl),
            },
            None => {
                tracing::warn!(target: "mcpgate::auth", url = %self.cfg.url,
                    user_id_path = %self.cfg.user_id_path, "external key verifier answer has no user id");
                Outcome::Unavailable
            }
        }
    }

    fn principal(&self, v: &serde_json::Value) -> Option<Principal> {
        let user_id = text_at(v, &self.cfg.user_id_path)?;
        let role = self
            .cfg
            .role_path
            .as_deref()
            .and_then(|p| text_at(v, p))
            .and_then(|r| Role::parse(&r))
            .unwrap_or(self.cfg.default_role);
        let permissions = self
            .cfg
            .permissions_path
            .as_deref()
            .and_then(|p| at(v, p))
            .and_then(|p| p.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_else(|| self.cfg.default_permissions.clone());
        Some(Principal::verified(Verified {
            name: self.cfg.name_path.as_deref().and_then(|p| text_at(v, p)),
            tenant: self.cfg.tenant_path.as_deref().and_then(|p| text_at(v, p)),
            permissions,
            ..Verified::new(format!("ext:{user_id}"), user_id, role, AuthMethod::ExternalKey)
        }))
    }
}

/// The value at a dotted path (`data.user.id`).
pub fn at<'v>(v: &'v serde_json::Value, path: &str) -> Option<&'v serde_json::Value> {
    path.split('.').try_fold(v, |cur, seg| cur.get(seg))
}

fn text_at(v: &serde_json::Value, path: &str) -> Option<String> {
    match at(v, path)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Keys the registry does not know, asked of the vendor's API: every presented key is this
/// method's (it is asked last), so its answer decides.
impl super::Authenticator for ExternalVerifier {
    async fn authenticate(&self, a: &super::Attempt<'_>) -> super::Outcome {
        use super::{AuthFailure, Outcome};
        let Some(p) = a.presented else {
            return Outcome::NotMine;
        };
        match self.verify(&p.secret, a.now).await {
            Ok(principal) => {
                tracing::debug!(target: "mcpgate::auth", user = %principal.user_id(), "key accepted by the external verifier");
                Outcome::Authenticated(principal)
            }
            Err(ExternalError::Invalid) => Outcome::Refused(AuthFailure::Invalid),
            Err(ExternalError::Unavailable) => Outcome::Refused(AuthFailure::VerifierUnavailable),
            Err(ExternalError::Busy { retry_after_s }) => Outcome::Refused(AuthFailure::VerifierBusy { retry_after_s }),
        }
    }
}
