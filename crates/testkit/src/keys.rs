//! JWT signing keys: RSA, EC and Ed25519 key pairs generated once per test binary, their public
//! JWKs as an issuer publishes them ([`crate::issuer::Issuer::publish`]), and the RSA public key as
//! PEM (the classic HS256-confusion secret).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::OnceLock;

pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub key: EncodingKey,
    /// The public JWK as the issuer publishes it (with `kid`, `use` and `alg`).
    pub jwk: Value,
    /// RSA only: the public key as PEM, the classic HS256-confusion secret.
    pub public_pem: Option<String>,
}

impl TestKey {
    pub fn from_encoding(kid: &str, alg: Algorithm, key: EncodingKey, public_pem: Option<String>) -> TestKey {
        let mut jwk = serde_json::to_value(jsonwebtoken::jwk::Jwk::from_encoding_key(&key, alg).unwrap()).unwrap();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        TestKey {
            kid: kid.into(),
            alg,
            key,
            jwk,
            public_pem,
        }
    }

    pub fn rsa(kid: &str) -> TestKey {
        let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8: aws_lc_rs::encoding::Pkcs8V1Der = kp.as_der().unwrap();
        let key = EncodingKey::from_rsa_pem(pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes()).unwrap();
        let public: aws_lc_rs::encoding::PublicKeyX509Der = kp.public_key().as_der().unwrap();
        TestKey::from_encoding(kid, Algorithm::RS256, key, Some(pem("PUBLIC KEY", public.as_ref())))
    }

    pub fn ec(kid: &str) -> TestKey {
        let kp = aws_lc_rs::signature::EcdsaKeyPair::generate(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING)
            .unwrap();
        let key = EncodingKey::from_ec_der(kp.to_pkcs8v1().unwrap().as_ref());
        TestKey::from_encoding(kid, Algorithm::ES256, key, None)
    }

    pub fn ed(kid: &str) -> TestKey {
        let kp = aws_lc_rs::signature::Ed25519KeyPair::generate().unwrap();
        let key = EncodingKey::from_ed_der(kp.to_pkcs8v1().unwrap().as_ref());
        TestKey::from_encoding(kid, Algorithm::EdDSA, key, None)
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.alg, Some(&self.kid), claims)
    }

    pub fn sign_as(&self, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut h = Header::new(alg);
        h.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&h, claims, &self.key).unwrap()
    }
}

/// Keys are slow to generate in a debug build: made once, shared by every test.
pub struct Keys {
    pub rsa: TestKey,
    pub rsa2: TestKey,
    pub ec: TestKey,
    pub ed: TestKey,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        rsa: TestKey::rsa("rsa-1"),
        rsa2: TestKey::rsa("rsa-2"),
        ec: TestKey::ec("ec-1"),
        ed: TestKey::ed("ed-1"),
    })
}
