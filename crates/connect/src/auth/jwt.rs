//! HS256 JWTs minted here (seed 002: the agent signs `{user_id, tenant_id, exp}` with a shared
//! secret): `Authorization: Bearer <jwt>`, renewed before `exp`. Claims come from
//! `--jwt-claim k=v`, the lifetime from `--jwt-ttl`, and `aud` is the MCP URL unless
//! `--jwt-audience` says otherwise (mcpgate checks `aud` against its resource URL; seed 002's
//! servers set none, hence `--jwt-audience none`).

use super::clock::{Clock, SystemClock, renewal_margin, unix_seconds};
use super::{Auth, AuthError, SetupError, header_value};
use crate::secret::Secret;
use http::{HeaderMap, Method, header::AUTHORIZATION};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// mcpgate refuses HS256 secrets shorter than this (RFC 7518 §3.2: a key as long as the hash).
pub const MIN_SECRET_BYTES: usize = 32;

/// A refused token minted this recently is not minted again: the secret or the claims are wrong,
/// not the time.
const REFUSAL_WINDOW: Duration = Duration::from_secs(60);

/// The `aud` claim.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Audience {
    /// The URL the request goes to (the MCP endpoint): what mcpgate expects by default.
    #[default]
    RequestUrl,
    Fixed(String),
    /// No `aud` (seed 002's tokens).
    Omit,
}

impl Audience {
    /// `--jwt-audience`: `none` omits the claim; anything else is the audience.
    pub fn parse(s: &str) -> Audience {
        match s.trim() {
            "none" | "" => Audience::Omit,
            s => Audience::Fixed(s.to_string()),
        }
    }
}

/// What a [`Jwt`] mints.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub secret: Secret,
    /// Claims besides `iat`, `exp` and `aud` (which are set here and refused as claims).
    pub claims: Map<String, Value>,
    pub ttl: Duration,
    pub audience: Audience,
}

/// Parses `--jwt-ttl`: a number of seconds, or with a unit `s`, `m`, `h` or `d` (`90s`, `15m`,
/// `1h`); from 1 second to 30 days.
pub fn parse_ttl(s: &str) -> Result<Duration, SetupError> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    let n: u64 = num.parse().unwrap_or(0);
    let secs = n.saturating_mul(scale);
    if secs == 0 || secs > 30 * 86_400 {
        return Err(SetupError::new(
            "--jwt-ttl",
            format!("{s:?} is not a lifetime from 1s to 30d (write 90s, 15m, 1h or 1d)"),
        ));
    }
    Ok(Duration::from_secs(secs))
}

/// Parses `--jwt-claim`: `k=v` gives a string, or an integer when `v` is written as one (`42`, not
/// `042` or `+42`); `k:=JSON` gives any JSON value (`admin:=true`, `roles:=["a","b"]`, and
/// `user_id:="42"` for a string of digits). `iat`, `exp` and `aud` are set by `--jwt-ttl` and
/// `--jwt-audience` and refused here.
pub fn parse_claim(spec: &str) -> Result<(String, Value), SetupError> {
    let what = "--jwt-claim";
    let Some((key, raw)) = spec.split_once('=') else {
        return Err(SetupError::new(what, "expected name=value (or name:=JSON)"));
    };
    let (key, value) = match key.strip_suffix(':') {
        Some(key) => {
            let v = serde_json::from_str(raw)
                .map_err(|e| SetupError::new(what, format!("{key}: the value after := is not JSON ({e})")))?;
            (key, v)
        }
        None => {
            let v = match raw.parse::<i64>() {
                Ok(n) if n.to_string() == raw => Value::from(n),
                _ => Value::from(raw),
            };
            (key, v)
        }
    };
    let key = key.trim();
    check_claim_name(what, key)?;
    Ok((key.to_string(), value))
}

/// Refuses an empty name and the claims set here.
pub(crate) fn check_claim_name(what: &str, key: &str) -> Result<(), SetupError> {
    match key {
        "" => Err(SetupError::new(what, "a claim needs a name")),
        "iat" | "exp" => Err(SetupError::new(
            what,
            format!("{key} is set when the token is minted; give the lifetime with --jwt-ttl"),
        )),
        "aud" => Err(SetupError::new(what, "aud is set by --jwt-audience")),
        _ => Ok(()),
    }
}

struct Minted {
    token: String,
    aud: Option<String>,
    exp: u64,
    minted_at: SystemTime,
    /// Minted because the previous one was refused.
    after_refusal: bool,
}

/// Mints and caches HS256 tokens.
pub struct Jwt {
    key: EncodingKey,
    claims: Map<String, Value>,
    ttl: Duration,
    audience: Audience,
    clock: Arc<dyn Clock>,
    cache: Mutex<Option<Minted>>,
    mints: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt")
            .field("claims", &self.claims.keys().collect::<Vec<_>>())
            .field("ttl", &self.ttl)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Jwt {
    pub fn new(config: JwtConfig) -> Result<Jwt, SetupError> {
        Jwt::with_clock(config, Arc::new(SystemClock))
    }

    pub fn with_clock(config: JwtConfig, clock: Arc<dyn Clock>) -> Result<Jwt, SetupError> {
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        for key in config.claims.keys() {
            check_claim_name("--jwt-claim", key)?;
        }
        if config.ttl.as_secs() == 0 {
            return Err(SetupError::new("--jwt-ttl", "the lifetime must be at least 1s"));
        }
        let len = config.secret.expose().len();
        if len < MIN_SECRET_BYTES {
            // Another server may take it; mcpgate would not.
            tracing::warn!(
                "--jwt-secret holds {len} bytes; HS256 wants at least {MIN_SECRET_BYTES} and mcpgate refuses shorter secrets"
            );
        }
        Ok(Jwt {
            key: EncodingKey::from_secret(config.secret.expose().as_bytes()),
            claims: config.claims,
            ttl: config.ttl,
            audience: config.audience,
            clock,
            cache: Mutex::new(None),
            mints: Default::default(),
        })
    }

    /// How many tokens were minted.
    pub fn mints(&self) -> u64 {
        self.mints.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn mint(&self, aud: Option<String>, after_refusal: bool) -> Result<Minted, AuthError> {
        let now = self.clock.now();
        let iat = unix_seconds(now);
        let exp = iat.saturating_add(self.ttl.as_secs());
        let mut claims = self.claims.clone();
        claims.insert("iat".into(), Value::from(iat));
        claims.insert("exp".into(), Value::from(exp));
        if let Some(aud) = &aud {
            claims.insert("aud".into(), Value::from(aud.as_str()));
        }
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .map_err(|e| AuthError::Other(format!("could not sign the JWT: {e}")))?;
        self.mints.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Minted {
            token,
            aud,
            exp,
            minted_at: now,
            after_refusal,
        })
    }

    fn audience_for(&self, url: &str) -> Option<String> {
        match &self.audience {
            Audience::RequestUrl => Some(url.to_string()),
            Audience::Fixed(a) => Some(a.clone()),
            Audience::Omit => None,
        }
    }

    /// Whether `m` is still good for a request at `now`: same audience, and more than the margin
    /// left before `exp`.
    fn usable(&self, m: &Minted, aud: &Option<String>, now: SystemTime) -> bool {
        let left =
            Duration::from_secs(m.exp).saturating_sub(now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default());
        m.aud == *aud && left > renewal_margin(self.ttl)
    }
}

fn bearer_of(sent: &HeaderMap) -> Option<&str> {
    sent.get(AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

#[async_trait::async_trait]
impl Auth for Jwt {
    async fn headers(&self, _: &Method, url: &str, _: &[u8]) -> Result<HeaderMap, AuthError> {
        let aud = self.audience_for(url);
        let token = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match &*cache {
                Some(m) if self.usable(m, &aud, self.clock.now()) => m.token.clone(),
                _ => {
                    let m = self.mint(aud, false)?;
                    let t = m.token.clone();
                    *cache = Some(m);
                    t
                }
            }
        };
        let mut h = HeaderMap::new();
        let v = header_value("--jwt-secret", &format!("Bearer {token}"), true)
            .map_err(|e| AuthError::Other(e.to_string()))?;
        h.insert(AUTHORIZATION, v);
        Ok(h)
    }

    async fn unauthorized(&self, sent: &HeaderMap, _: Option<&str>) -> bool {
        let Some(sent) = bearer_of(sent) else {
            return false;
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let Some(m) = &*cache else {
            return true;
        };
        if m.token != sent {
            // Minted anew since this request left: send it again with the new one.
            return true;
        }
        let age = self.clock.now().duration_since(m.minted_at).unwrap_or_default();
        if m.after_refusal && age < REFUSAL_WINDOW {
            tracing::error!(
                "a freshly minted JWT was refused (401): check --jwt-secret, the claims and --jwt-audience"
            );
            return false;
        }
        match self.mint(m.aud.clone(), true) {
            Ok(fresh) => {
                *cache = Some(fresh);
                true
            }
            Err(e) => {
                tracing::error!("{e}");
                false
            }
        }
    }

    fn describe(&self) -> String {
        let aud = match &self.audience {
            Audience::RequestUrl => "the MCP URL".to_string(),
            Audience::Fixed(a) => a.clone(),
            Audience::Omit => "none".to_string(),
        };
        format!("HS256 JWT (ttl {}s, audience {aud})", self.ttl.as_secs())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::auth::ManualClock;
    use jsonwebtoken::{DecodingKey, Validation};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn decode(h: &HeaderMap, aud: Option<&str>) -> Map<String, Value> {
        let token = bearer_of(h).unwrap();
        let mut v = Validation::new(Algorithm::HS256);
        v.validate_exp = false;
        match aud {
            Some(a) => v.set_audience(&[a]),
            None => v.validate_aud = false,
        }
        v.required_spec_claims.clear();
        jsonwebtoken::decode::<Map<String, Value>>(token, &DecodingKey::from_secret(SECRET.as_bytes()), &v)
            .unwrap()
            .claims
    }

    fn jwt(ttl: u64, audience: Audience, clock: Arc<ManualClock>) -> Jwt {
        let mut claims = Map::new();
        for spec in [
            "user_id=u1",
            "tenant_id=acme",
            "level=3",
            "zip=007",
            "admin:=true",
            "n:=\"42\"",
        ] {
            let (k, v) = parse_claim(spec).unwrap();
            claims.insert(k, v);
        }
        let config = JwtConfig {
            secret: Secret::new(SECRET),
            claims,
            ttl: Duration::from_secs(ttl),
            audience,
        };
        Jwt::with_clock(config, clock).unwrap()
    }

    #[tokio::test]
    async fn claims_audience_and_renewal() {
        let clock = Arc::new(ManualClock::at(1_700_000_000, 0));
        let j = jwt(100, Audience::RequestUrl, clock.clone());
        let url = "https://mcp.example.com/mcp";
        let h = j.headers(&Method::POST, url, b"{}").await.unwrap();
        let c = decode(&h, Some(url));
        assert_eq!(c["user_id"], "u1");
        assert_eq!(c["tenant_id"], "acme");
        assert_eq!(c["level"], 3);
        assert_eq!(c["zip"], "007");
        assert_eq!(c["admin"], true);
        assert_eq!(c["n"], "42");
        assert_eq!(c["iat"], 1_700_000_000u64);
        assert_eq!(c["exp"], 1_700_000_100u64);
        // Margin = 100 s / 5 = 20 s: kept with 21 s left...
        clock.advance(Duration::from_secs(79));
        assert_eq!(j.headers(&Method::POST, url, b"").await.unwrap(), h);
        assert_eq!(j.mints(), 1);
        // ...and renewed at 20 s left.
        clock.advance(Duration::from_secs(1));
        let renewed = j.headers(&Method::POST, url, b"").await.unwrap();
        assert_ne!(renewed, h);
        assert_eq!(decode(&renewed, Some(url))["exp"], 1_700_000_180u64);
        assert_eq!(j.mints(), 2);
    }

    #[tokio::test]
    async fn audience_choices() {
        let clock = Arc::new(ManualClock::at(1_700_000_000, 0));
        let j = jwt(3600, Audience::Omit, clock.clone());
        let c = decode(&j.headers(&Method::POST, "https://x/mcp", b"").await.unwrap(), None);
        assert!(!c.contains_key("aud"));
        let j = jwt(3600, Audience::parse("https://api.example.com"), clock);
        let h = j.headers(&Method::POST, "https://x/mcp", b"").await.unwrap();
        assert_eq!(
            decode(&h, Some("https://api.example.com"))["aud"],
            "https://api.example.com"
        );
        assert_eq!(Audience::parse("none"), Audience::Omit);
    }

    #[tokio::test]
    async fn a_refusal_mints_once() {
        let clock = Arc::new(ManualClock::at(1_700_000_000, 0));
        let j = jwt(3600, Audience::RequestUrl, clock.clone());
        let first = j.headers(&Method::POST, "u", b"").await.unwrap();
        clock.advance(Duration::from_secs(1));
        assert!(j.unauthorized(&first, None).await, "a fresh one is minted");
        let second = j.headers(&Method::POST, "u", b"").await.unwrap();
        assert_ne!(first, second);
        assert_eq!(j.mints(), 2);
        assert!(j.unauthorized(&first, None).await, "moved on already: send again");
        assert!(!j.unauthorized(&second, None).await, "the fresh one was refused too");
        assert_eq!(j.mints(), 2);
        assert!(!j.unauthorized(&HeaderMap::new(), None).await);
    }

    #[test]
    fn flags() {
        assert_eq!(parse_ttl("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_ttl("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_ttl("120").unwrap(), Duration::from_secs(120));
        for bad in ["", "0s", "1w", "h", "-5s", "31d", "1.5h"] {
            let e = parse_ttl(bad).unwrap_err();
            assert!(e.to_string().starts_with("--jwt-ttl:"), "{bad}: {e}");
        }
        for bad in ["novalue", "=v", "exp=5", "iat=1", "aud=x", "x:=nope"] {
            assert!(parse_claim(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_claim("a=b=c").unwrap(), ("a".into(), Value::from("b=c")));
        assert_eq!(parse_claim("n=-3").unwrap(), ("n".into(), Value::from(-3)));
        assert_eq!(parse_claim("n=+3").unwrap(), ("n".into(), Value::from("+3")));
    }

    #[test]
    fn debug_hides_the_secret() {
        let j = jwt(60, Audience::Omit, Arc::new(ManualClock::at(0, 0)));
        assert!(!format!("{j:?}").contains(SECRET));
    }
}
