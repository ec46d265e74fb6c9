//! An OpenID Provider: its endpoints (discovered from the issuer unless configured), and the ID
//! token checked as OpenID Connect Core §3.1.3.7 asks — signature with the provider's published
//! keys (asymmetric algorithms only), `iss`, `aud` (and `azp` when there are several
//! audiences), `exp`/`iat` on the gateway's clock, and the `nonce` this browser's sign-in made.

use super::mapping::Identity;
use super::settings::{ProviderKind, ProviderSettings};
use crate::auth::jwks::{JwksCache, KeySource};
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use std::sync::Arc;

const LEEWAY_S: i64 = 60;
/// What an ID token may be signed with: the JWT verifier's asymmetric list (never HMAC: the
/// client secret would then sign tokens).
const ALGORITHMS: [Algorithm; 9] = crate::auth::jwt::ASYMMETRIC_ALGS;
/// After a failed discovery, sign-ins fail at once for this long (no fetch per click).
const DISCOVERY_RETRY: std::time::Duration = std::time::Duration::from_secs(15);

#[derive(Clone)]
pub struct Endpoints {
    pub authorization: reqwest::Url,
    pub token: reqwest::Url,
    /// Asked for the e-mail when the ID token has none (discovered only).
    pub userinfo: Option<reqwest::Url>,
}

pub struct Oidc {
    issuer: String,
    configured: Option<Endpoints>,
    client: reqwest::Client,
    /// The endpoints once discovered, or the last failure and when it happened.
    discovered: tokio::sync::Mutex<Result<Endpoints, Option<(std::time::Instant, String)>>>,
    jwks: Arc<JwksCache>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
}

impl Oidc {
    pub fn new(s: &ProviderSettings, client: reqwest::Client) -> Oidc {
        let issuer = s.issuer.clone().unwrap_or_default();
        let configured = match (&s.authorization_endpoint, &s.token_endpoint) {
            (Some(a), Some(t)) => match (reqwest::Url::parse(a), reqwest::Url::parse(t)) {
                (Ok(authorization), Ok(token)) => Some(Endpoints {
                    authorization,
                    token,
                    userinfo: None,
                }),
                _ => None,
            },
            _ => None,
        };
        let source = match s.jwks_uri.as_deref().map(reqwest::Url::parse) {
            Some(Ok(u)) => KeySource::Url(u),
            _ => KeySource::Discovery { issuer: issuer.clone() },
        };
        Oidc {
            jwks: Arc::new(JwksCache::new(source, client.clone(), ALGORITHMS.to_vec(), 60)),
            issuer,
            configured,
            client,
            discovered: tokio::sync::Mutex::new(Err(None)),
        }
    }

    /// The endpoints: configured, or read once from the issuer's discovery document (which must
    /// name exactly this issuer); a failed read is tried again on a sign-in after
    /// [`DISCOVERY_RETRY`].
    pub async fn endpoints(&self) -> Result<Endpoints, String> {
        if let Some(e) = &self.configured {
            return Ok(e.clone());
        }
        let mut found = self.discovered.lock().await;
        match &*found {
            Ok(e) => return Ok(e.clone()),
            Err(Some((at, why))) if at.elapsed() < DISCOVERY_RETRY => return Err(why.clone()),
            Err(_) => {}
        }
        let result = self.discover().await;
        *found = result.clone().map_err(|e| Some((std::time::Instant::now(), e)));
        result
    }

    async fn discover(&self) -> Result<Endpoints, String> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let resp = self
            .client
            .get(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {}", e.without_url()))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status()));
        }
        let body = crate::auth::fetch::read_limited(resp, super::MAX_ANSWER).await?;
        let doc: Discovery = serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))?;
        if doc.issuer.trim_end_matches('/') != self.issuer {
            return Err(format!("{url}: names issuer {:?}, not {:?}", doc.issuer, self.issuer));
        }
        let check = |field: &str, u: &str| crate::auth::fetch::check_url(field, u);
        let e = Endpoints {
            authorization: check("authorization_endpoint", &doc.authorization_endpoint)?,
            token: check("token_endpoint", &doc.token_endpoint)?,
            userinfo: doc
                .userinfo_endpoint
                .as_deref()
                .and_then(|u| check("userinfo_endpoint", u).ok()),
        };
        Ok(e)
    }

    /// The userinfo answer for `sub` (RFC: OpenID Connect Core §5.3), `None` when there is no
    /// endpoint, it fails, or it names another subject.
    async fn userinfo(&self, access_token: &str, sub: &str) -> Option<serde_json::Value> {
        let url = self.endpoints().await.ok()?.userinfo?;
        let resp = match self
            .client
            .get(url)
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                tracing::warn!(status = %r.status(), "sign-in: the provider's userinfo endpoint refused");
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e.without_url(), "sign-in: the provider's userinfo endpoint is unreachable");
                return None;
            }
        };
        let body = crate::auth::fetch::read_limited(resp, super::MAX_ANSWER).await.ok()?;
        let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
        (v.get("sub").and_then(serde_json::Value::as_str) == Some(sub)).then_some(v)
    }

    /// Who the ID token says signed in; every check above, or the reason it failed.
    pub async fn identity(
        &self,
        s: &ProviderSettings,
        id_token: &str,
        access_token: Option<&str>,
        nonce: &str,
        now: i64,
    ) -> Result<Identity, String> {
        let header = jsonwebtoken::decode_header(id_token).map_err(|_| "the id_token is not a JWT".to_string())?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(format!("id_token algorithm {:?} is not accepted", header.alg));
        }
        let keys = self
            .jwks
            .keys_for(header.kid.as_deref(), header.alg, now)
            .await
            .map_err(|e| format!("id_token key: {e:?}"))?;
        let mut v = jsonwebtoken::Validation::new(header.alg);
        v.validate_exp = false;
        v.leeway = 0;
        // The issuer as configured, with or without one trailing slash (Auth0's ends in one);
        // Google's ID tokens may name it without its scheme.
        let mut issuers = vec![self.issuer.clone(), format!("{}/", self.issuer)];
        if s.kind == ProviderKind::Google {
            issuers.push(self.issuer.trim_start_matches("https://").to_string());
        }
        v.set_issuer(&issuers);
        v.set_audience(&[&s.client_id]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let mut claims = None;
        for k in keys {
            if let Ok(d) = jsonwebtoken::decode::<serde_json::Value>(id_token, &k.key, &v) {
                claims = Some(d.claims);
                break;
            }
        }
        let c = claims.ok_or("the id_token's signature, issuer or audience is wrong")?;
        let exp = c
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .ok_or("id_token exp is not a number")?;
        if exp.saturating_add(LEEWAY_S) < now {
            return Err("the id_token has expired".into());
        }
        if c.get("iat")
            .and_then(serde_json::Value::as_i64)
            .is_some_and(|iat| iat > now.saturating_add(LEEWAY_S))
        {
            return Err("the id_token was issued in the future".into());
        }
        // Several audiences: the token must have been issued to us (`azp`).
        if c.get("aud").is_some_and(serde_json::Value::is_array)
            && c.get("azp").and_then(serde_json::Value::as_str) != Some(s.client_id.as_str())
        {
            return Err("the id_token has several audiences and azp is not this client".into());
        }
        match c.get("nonce").and_then(serde_json::Value::as_str) {
            Some(n) if crate::oauth::cookies::same_bytes(n, nonce) => {}
            _ => return Err("the id_token's nonce is not this sign-in's".into()),
        }
        let sub = c
            .get("sub")
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 255)
            .ok_or("the id_token has no usable sub")?
            .to_string();
        // No e-mail in the ID token (some providers keep it for userinfo): asked there, taken
        // only for the same subject.
        let mut c = c;
        if c.get("email").is_none()
            && let Some(token) = access_token
            && let Some(extra) = self.userinfo(token, &sub).await
            && let Some(obj) = c.as_object_mut()
        {
            for k in ["email", "email_verified"] {
                if let Some(v) = extra.get(k) {
                    obj.insert(k.to_string(), v.clone());
                }
            }
        }
        let verified = match c.get("email_verified") {
            Some(serde_json::Value::Bool(b)) => *b,
            // Some providers send it as a string.
            Some(serde_json::Value::String(t)) => t == "true",
            _ => false,
        };
        let emails = match c.get("email").and_then(serde_json::Value::as_str) {
            Some(e) if verified && e.contains('@') => vec![e.to_ascii_lowercase()],
            _ => Vec::new(),
        };
        // Google (by kind, or Google's issuer configured as plain OIDC): an address proves its
        // domain only for a Workspace account of that domain (`hd`); anyone can make a Google
        // account with a verified address anywhere.
        let google = s.kind == ProviderKind::Google
            || self.issuer.trim_start_matches("https://").trim_end_matches('/') == "accounts.google.com";
        let email_domains = google.then(|| {
            c.get("hd")
                .and_then(serde_json::Value::as_str)
                .map(|d| vec![d.to_ascii_lowercase()])
                .unwrap_or_default()
        });
        Ok(Identity {
            provider: s.id.clone(),
            subject: sub,
            emails,
            email_domains,
            login: c
                .get("preferred_username")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string),
            claims: c,
            ..Identity::default()
        })
    }
}
