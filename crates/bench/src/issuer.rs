//! `issuer`: a minimal token issuer on loopback for the JWT targets. At start it generates a key
//! pair (RS256: RSA 2048, ES256: P-256, EdDSA: Ed25519), serves the public key as a JWKS at
//! `/jwks` (and an OIDC discovery document naming it at `/.well-known/openid-configuration`),
//! and prints one signed, long-lived token on stdout. Its issuer (`iss`) is its own base URL,
//! `http://ADDR`.

use anyhow::{Context, Result, bail};
use base64::Engine;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::io::Write as _;
use std::sync::Arc;

pub const KID: &str = "bench-1";

pub struct Opts {
    pub listen: String,
    pub alg: Algorithm,
    pub sub: String,
    pub aud: Option<String>,
    pub scope: Option<String>,
    /// Space-separated; becomes the `permissions` array.
    pub permissions: Option<String>,
    pub ttl_s: u64,
}

pub fn parse_alg(s: &str) -> Result<Algorithm> {
    match s {
        "RS256" => Ok(Algorithm::RS256),
        "ES256" => Ok(Algorithm::ES256),
        "EdDSA" => Ok(Algorithm::EdDSA),
        _ => bail!("--alg: {s:?} is not supported (RS256, ES256 or EdDSA)"),
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A fresh private key for `alg`, as jsonwebtoken's signing key.
pub fn generate(alg: Algorithm) -> Result<EncodingKey> {
    use aws_lc_rs::encoding::AsDer;
    let unspecified = |_| anyhow::anyhow!("key generation failed");
    Ok(match alg {
        Algorithm::RS256 => {
            let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(unspecified)?;
            let pkcs8: aws_lc_rs::encoding::Pkcs8V1Der = kp.as_der().map_err(unspecified)?;
            EncodingKey::from_rsa_pem(pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes())?
        }
        Algorithm::ES256 => {
            let kp =
                aws_lc_rs::signature::EcdsaKeyPair::generate(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(unspecified)?;
            EncodingKey::from_ec_der(kp.to_pkcs8v1().map_err(unspecified)?.as_ref())
        }
        Algorithm::EdDSA => {
            let kp = aws_lc_rs::signature::Ed25519KeyPair::generate().map_err(unspecified)?;
            EncodingKey::from_ed_der(kp.to_pkcs8v1().map_err(unspecified)?.as_ref())
        }
        other => bail!("no key generation for {other:?}"),
    })
}

/// The public JWK of `key` (with `kid`, `use: sig` and `alg`).
pub fn public_jwk(key: &EncodingKey, alg: Algorithm) -> Result<Value> {
    let mut jwk = serde_json::to_value(jsonwebtoken::jwk::Jwk::from_encoding_key(key, alg)?)?;
    jwk["kid"] = json!(KID);
    jwk["use"] = json!("sig");
    Ok(jwk)
}

pub fn sign(key: &EncodingKey, alg: Algorithm, claims: &Value) -> Result<String> {
    let mut h = Header::new(alg);
    h.kid = Some(KID.to_string());
    Ok(jsonwebtoken::encode(&h, claims, key)?)
}

struct Docs {
    jwks: Bytes,
    discovery: Bytes,
}

pub async fn run(o: Opts) -> Result<()> {
    // Exactly one backend is compiled in; pin it anyway, as the gateway does.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let listener = tokio::net::TcpListener::bind(&o.listen)
        .await
        .with_context(|| format!("bind {}", o.listen))?;
    let base = format!("http://{}", listener.local_addr()?);
    let key = generate(o.alg)?;
    let jwks = json!({ "keys": [public_jwk(&key, o.alg)?] });
    let discovery = json!({ "issuer": base, "jwks_uri": format!("{base}/jwks") });

    let now = crate::client::unix_now();
    let mut claims = json!({
        "iss": base,
        "sub": o.sub,
        "iat": now,
        "exp": now + o.ttl_s,
    });
    if let Some(aud) = &o.aud {
        claims["aud"] = json!(aud);
    }
    if let Some(scope) = &o.scope {
        claims["scope"] = json!(scope);
    }
    if let Some(p) = &o.permissions {
        claims["permissions"] = json!(p.split_whitespace().collect::<Vec<_>>());
    }
    let token = sign(&key, o.alg, &claims)?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{token}")?;
        out.flush()?;
    }
    eprintln!("issuer {base} ({:?}): JWKS at {base}/jwks", o.alg);

    let docs = Arc::new(Docs {
        jwks: Bytes::from(jwks.to_string()),
        discovery: Bytes::from(discovery.to_string()),
    });
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let docs = docs.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let docs = docs.clone();
                async move { Ok::<_, hyper::Error>(serve(&docs, &req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn serve(docs: &Docs, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let body = match (req.method(), req.uri().path()) {
        (&Method::GET, "/jwks") => Some(docs.jwks.clone()),
        (&Method::GET, "/.well-known/openid-configuration") => Some(docs.discovery.clone()),
        _ => None,
    };
    let mut r = Response::new(Full::new(body.clone().unwrap_or_default()));
    match body {
        Some(_) => {
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
        }
        None => *r.status_mut() = StatusCode::NOT_FOUND,
    }
    r
}
