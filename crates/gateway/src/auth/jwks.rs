//! The JWKS cache behind [`super::jwt::JwtVerifier`]: the issuer's public keys, fetched from a
//! `jwks_url` or found through OIDC discovery, kept for the `Cache-Control: max-age` the issuer
//! sends (bounded to 1 min..24 h, 1 h when absent).
//!
//! Three rules keep the request path safe when the issuer misbehaves:
//! - an unknown `kid` triggers a refetch (key rotation works without a restart), but every fetch
//!   attempt — success or failure, by any request — is at least `min_refresh` seconds after the
//!   previous one, so a flood of made-up kids costs the issuer one request per floor;
//! - when the issuer is down, the keys already fetched keep verifying (past their max-age) while
//!   unknown kids fail closed: `unknown_kid`, or `IssuerUnavailable` when nothing was ever fetched;
//! - symmetric (`oct`) keys are never taken from a JWKS, and each key verifies only the algorithms
//!   its `kty`/`crv`/`alg` allow, so a token cannot pick a key of another family (alg confusion).
//!
//! Time is the caller's `now` (Unix seconds), never read here.

use super::fetch::{MAX_DOCUMENT_BYTES, discover, read_limited};
use super::token_error::TokenError;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Bounds on how long a fetched key set counts as fresh.
pub const MIN_MAX_AGE_S: i64 = 60;
pub const MAX_MAX_AGE_S: i64 = 24 * 3600;
pub const DEFAULT_MAX_AGE_S: i64 = 3600;
/// Keys beyond this many in one set are ignored.
const MAX_KEYS: usize = 100;
const NEVER: i64 = i64::MIN;

/// Where the keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    Url(reqwest::Url),
    /// `{issuer}/.well-known/openid-configuration` → `jwks_uri` (RFC 8414's
    /// `oauth-authorization-server` document as a fallback).
    Discovery {
        issuer: String,
    },
}

/// One verification key and the algorithms it may verify (already intersected with the
/// configured allow-list).
pub struct VerifyKey {
    pub kid: Option<String>,
    pub key: DecodingKey,
    pub algorithms: Vec<Algorithm>,
}

struct KeySet {
    generation: u64,
    fetched: bool,
    fresh_until: i64,
    keys: Vec<Arc<VerifyKey>>,
}

enum Lookup {
    Found(Vec<Arc<VerifyKey>>),
    /// The kid exists but none of its keys may verify this algorithm.
    Mismatch,
    Missing,
}

impl KeySet {
    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Lookup {
        let mut named = false;
        let found: Vec<_> = self
            .keys
            .iter()
            .filter(|k| match kid {
                Some(kid) => k.kid.as_deref() == Some(kid),
                None => true,
            })
            .inspect(|_| named = true)
            .filter(|k| k.algorithms.contains(&alg))
            .cloned()
            .collect();
        match (found.is_empty(), named && kid.is_some()) {
            (false, _) => Lookup::Found(found),
            (true, true) => Lookup::Mismatch,
            (true, false) => Lookup::Missing,
        }
    }
}

pub struct JwksCache {
    source: KeySource,
    client: reqwest::Client,
    /// The configured asymmetric algorithms.
    allowed: Vec<Algorithm>,
    min_refresh: i64,
    set: RwLock<Arc<KeySet>>,
    /// Unix seconds of the last fetch attempt; claimed with a compare-exchange so concurrent
    /// requests share one attempt per floor.
    last_attempt: AtomicI64,
    /// Single flight, and the `jwks_uri` found by discovery.
    fetch: tokio::sync::Mutex<Option<reqwest::Url>>,
    fetches: AtomicU64,
}

impl JwksCache {
    pub fn new(source: KeySource, client: reqwest::Client, allowed: Vec<Algorithm>, min_refresh_s: u64) -> Self {
        JwksCache {
            source,
            client,
            allowed,
            min_refresh: i64::try_from(min_refresh_s).unwrap_or(i64::MAX),
            set: RwLock::new(Arc::new(KeySet {
                generation: 0,
                fetched: false,
                fresh_until: NEVER,
                keys: Vec::new(),
            })),
            last_attempt: AtomicI64::new(NEVER),
            fetch: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
        }
    }

    /// How many fetch attempts were made (for metrics and tests).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// How many keys are cached now.
    pub fn key_count(&self) -> usize {
        self.snapshot().keys.len()
    }

    fn snapshot(&self) -> Arc<KeySet> {
        self.set.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The keys that may verify a token with this `kid` and `alg`. A kid-less token gets every
    /// key that allows `alg`.
    pub async fn keys_for(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
        now: i64,
    ) -> Result<Vec<Arc<VerifyKey>>, TokenError> {
        let set = self.snapshot();
        if set.fetched {
            match set.lookup(kid, alg) {
                Lookup::Found(keys) => {
                    if now >= set.fresh_until {
                        self.refresh_in_background(now, set.generation);
                    }
                    return Ok(keys);
                }
                // A refetch would not change which family a published kid belongs to.
                Lookup::Mismatch => return Err(TokenError::Invalid("alg_key_mismatch")),
                Lookup::Missing => {}
            }
        }
        if let Err(e) = self.refresh(now, set.generation).await {
            tracing::debug!(target: "mcpgate::auth", error = %e, "no JWKS refresh");
        }
        let set = self.snapshot();
        if !set.fetched {
            return Err(TokenError::IssuerUnavailable);
        }
        match set.lookup(kid, alg) {
            Lookup::Found(keys) => Ok(keys),
            Lookup::Mismatch => Err(TokenError::Invalid("alg_key_mismatch")),
            Lookup::Missing if kid.is_some() => Err(TokenError::Invalid("unknown_kid")),
            Lookup::Missing => Err(TokenError::Invalid("no_matching_key")),
        }
    }

    /// Fetches the key set unless another request did since `seen_generation` or the floor
    /// since the last attempt has not passed.
    pub async fn refresh(&self, now: i64, seen_generation: u64) -> Result<(), String> {
        let mut jwks_uri = self.fetch.lock().await;
        if self.snapshot().generation != seen_generation {
            return Ok(());
        }
        if !self.claim_attempt(now) {
            return Err("the last fetch attempt is more recent than jwks_min_refresh_s".into());
        }
        self.fetch_locked(&mut jwks_uri, now).await
    }

    fn refresh_in_background(self: &Arc<Self>, now: i64, seen_generation: u64) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !self.claim_attempt(now) {
            return;
        }
        let me = self.clone();
        rt.spawn(async move {
            let mut jwks_uri = me.fetch.lock().await;
            if me.snapshot().generation == seen_generation {
                let _ = me.fetch_locked(&mut jwks_uri, now).await;
            }
        });
    }

    fn claim_attempt(&self, now: i64) -> bool {
        let last = self.last_attempt.load(Ordering::Acquire);
        if last != NEVER && now < last.saturating_add(self.min_refresh) {
            return false;
        }
        self.last_attempt
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    async fn fetch_locked(&self, jwks_uri: &mut Option<reqwest::Url>, now: i64) -> Result<(), String> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let result = async {
            let uri = match (&self.source, jwks_uri.as_ref()) {
                (KeySource::Url(u), _) => u.clone(),
                (KeySource::Discovery { .. }, Some(u)) => u.clone(),
                (KeySource::Discovery { issuer }, None) => {
                    let u = discover(&self.client, issuer).await?;
                    *jwks_uri = Some(u.clone());
                    u
                }
            };
            fetch_jwks(&self.client, &uri, &self.allowed).await
        }
        .await;
        match result {
            Ok((keys, max_age)) => {
                let mut slot = self.set.write().unwrap_or_else(|e| e.into_inner());
                let generation = slot.generation + 1;
                tracing::debug!(target: "mcpgate::auth", keys = keys.len(), max_age, "JWKS fetched");
                *slot = Arc::new(KeySet {
                    generation,
                    fetched: true,
                    fresh_until: now.saturating_add(max_age),
                    keys: keys.into_iter().map(Arc::new).collect(),
                });
                Ok(())
            }
            Err(e) => {
                // Discover again next time: the issuer may have moved its keys.
                *jwks_uri = None;
                tracing::warn!(target: "mcpgate::auth", error = %e, cached_keys = self.key_count(),
                    "JWKS fetch failed; cached keys stay in use");
                Err(e)
            }
        }
    }
}

async fn fetch_jwks(
    client: &reqwest::Client,
    uri: &reqwest::Url,
    allowed: &[Algorithm],
) -> Result<(Vec<VerifyKey>, i64), String> {
    let resp = client
        .get(uri.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("{uri}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("{uri}: HTTP {}", resp.status()));
    }
    let max_age = max_age(
        resp.headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
    );
    let body = read_limited(resp, MAX_DOCUMENT_BYTES).await?;
    let keys = parse_jwks(&body, allowed).map_err(|e| format!("{uri}: {e}"))?;
    Ok((keys, max_age))
}

/// Seconds the key set stays fresh: `max-age` bounded to 1 min..24 h; `no-store`/`no-cache`
/// mean the minimum; absent means 1 h.
pub(crate) fn max_age(cache_control: Option<&str>) -> i64 {
    let Some(cc) = cache_control else {
        return DEFAULT_MAX_AGE_S;
    };
    let mut age = None;
    for directive in cc.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return MIN_MAX_AGE_S;
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            age = v.trim_matches('"').parse::<i64>().ok();
        }
    }
    age.map_or(DEFAULT_MAX_AGE_S, |a| a.clamp(MIN_MAX_AGE_S, MAX_MAX_AGE_S))
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<serde_json::Value>,
}

/// The fields of a JWK (RFC 7517/7518/8037) this cache reads; anything else is ignored.
#[derive(Deserialize)]
struct RawKey {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// The usable signature keys of a JWKS document. Keys that are malformed, for encryption, of an
/// unknown type, symmetric, or whose `alg` is not allowed are skipped, not fatal: one odd key
/// must not take the issuer's other keys down with it.
pub(crate) fn parse_jwks(body: &[u8], allowed: &[Algorithm]) -> Result<Vec<VerifyKey>, String> {
    let doc: Document = serde_json::from_slice(body).map_err(|e| format!("not a JWK set ({e})"))?;
    Ok(doc
        .keys
        .into_iter()
        .take(MAX_KEYS)
        .filter_map(|v| serde_json::from_value::<RawKey>(v).ok())
        .filter_map(|k| key(k, allowed))
        .collect())
}

fn key(k: RawKey, allowed: &[Algorithm]) -> Option<VerifyKey> {
    if k.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    if k.key_ops.as_ref().is_some_and(|ops| !ops.iter().any(|o| o == "verify")) {
        return None;
    }
    use Algorithm::*;
    let (family, key): (&[Algorithm], DecodingKey) = match (k.kty.as_str(), k.crv.as_deref()) {
        ("RSA", _) => (
            &[RS256, RS384, RS512, PS256, PS384, PS512],
            DecodingKey::from_rsa_components(k.n.as_deref()?, k.e.as_deref()?).ok()?,
        ),
        ("EC", Some("P-256")) => (
            &[ES256],
            DecodingKey::from_ec_components(k.x.as_deref()?, k.y.as_deref()?).ok()?,
        ),
        ("EC", Some("P-384")) => (
            &[ES384],
            DecodingKey::from_ec_components(k.x.as_deref()?, k.y.as_deref()?).ok()?,
        ),
        ("OKP", Some("Ed25519")) => (&[EdDSA], DecodingKey::from_ed_components(k.x.as_deref()?).ok()?),
        // `oct` included: a shared secret has no business in a published key set.
        _ => return None,
    };
    let pinned = match k.alg.as_deref() {
        None => None,
        Some(a) => Some(Algorithm::from_str(a).ok()?),
    };
    let algorithms: Vec<Algorithm> = family
        .iter()
        .copied()
        .filter(|a| pinned.is_none_or(|p| p == *a) && allowed.contains(a))
        .collect();
    if algorithms.is_empty() {
        return None;
    }
    Some(VerifyKey {
        kid: k.kid,
        key,
        algorithms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALL: &[Algorithm] = &crate::auth::jwt::ASYMMETRIC_ALGS;

    #[test]
    fn cache_control_is_bounded() {
        assert_eq!(max_age(None), 3600);
        assert_eq!(max_age(Some("public, max-age=7200")), 7200);
        assert_eq!(max_age(Some("max-age=5")), 60);
        assert_eq!(max_age(Some("max-age=99999999")), 86400);
        assert_eq!(max_age(Some("no-store")), 60);
        assert_eq!(max_age(Some("public")), 3600);
        assert_eq!(max_age(Some("max-age=junk")), 3600);
    }

    #[test]
    fn only_signature_keys_of_a_known_family_are_kept() {
        let ed_x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let doc = json!({"keys": [
            {"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc", "x": ed_x},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ops", "key_ops": ["encrypt"], "x": ed_x},
            {"kty": "OKP", "crv": "Ed25519", "kid": "wrong-alg", "alg": "RS256", "x": ed_x},
            {"kty": "OKP", "crv": "Ed448", "kid": "ed448", "x": ed_x},
            {"kty": "RSA", "kid": "no-n", "e": "AQAB"},
            "not even an object",
            {"kty": "OKP", "crv": "Ed25519", "kid": "good", "use": "sig", "x": ed_x},
        ]});
        let keys = parse_jwks(doc.to_string().as_bytes(), ALL).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("good"));
        assert_eq!(keys[0].algorithms, vec![Algorithm::EdDSA]);
        // Not allowed by configuration: dropped.
        let keys = parse_jwks(doc.to_string().as_bytes(), &[Algorithm::RS256]).unwrap();
        assert!(keys.is_empty());
        assert!(parse_jwks(b"[]", ALL).is_err());
    }

    #[test]
    fn a_pinned_alg_narrows_the_family() {
        let doc = json!({"keys": [{"kty": "RSA", "kid": "r", "alg": "PS256", "n": "sXch", "e": "AQAB"}]});
        let keys = parse_jwks(doc.to_string().as_bytes(), ALL).unwrap();
        assert_eq!(keys[0].algorithms, vec![Algorithm::PS256]);
    }

    #[test]
    fn lookup_distinguishes_unknown_kid_from_family_mismatch() {
        let doc = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "ed",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]});
        let set = KeySet {
            generation: 1,
            fetched: true,
            fresh_until: 0,
            keys: parse_jwks(doc.to_string().as_bytes(), ALL)
                .unwrap()
                .into_iter()
                .map(Arc::new)
                .collect(),
        };
        assert!(matches!(set.lookup(Some("ed"), Algorithm::EdDSA), Lookup::Found(k) if k.len() == 1));
        assert!(matches!(set.lookup(Some("ed"), Algorithm::RS256), Lookup::Mismatch));
        assert!(matches!(set.lookup(Some("other"), Algorithm::EdDSA), Lookup::Missing));
        assert!(matches!(set.lookup(None, Algorithm::EdDSA), Lookup::Found(_)));
        assert!(matches!(set.lookup(None, Algorithm::ES256), Lookup::Missing));
    }
}
