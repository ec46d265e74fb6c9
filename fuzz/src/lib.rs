//! Helpers shared by the fuzz targets: independent reference implementations that the code under
//! test is checked against (a duplicate-key detector, a form-urlencoded decoder, HMAC-SHA2 token
//! signing), and a runtime for the few async entry points. They are written from the specs, not
//! from mcpgate's code, so a bug shared by both cannot hide.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;
use std::future::Future;

/// Any JSON value, read through serde_json with one extra rule: an object whose keys repeat (as
/// decoded strings) is an error. serde_json's own `Value` silently keeps the last one.
pub struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDupVisitor)
    }
}

struct NoDupVisitor;

impl<'de> Visitor<'de> for NoDupVisitor {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = HashSet::new();
        while let Some(k) = map.next_key::<String>()? {
            if !seen.insert(k) {
                return Err(de::Error::custom("duplicate key"));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(NoDuplicateKeys)
    }
}

/// Whether `json` parses with serde_json and no object in it repeats a key.
pub fn has_no_duplicate_keys(json: &[u8]) -> bool {
    serde_json::from_slice::<NoDuplicateKeys>(json).is_ok()
}

/// `application/x-www-form-urlencoded` value decoding (WHATWG URL §5.1): `+` is a space, `%XX`
/// with two hex digits is that byte, anything else is itself; invalid UTF-8 becomes U+FFFD.
pub fn form_decode(v: &str) -> String {
    let spaced = v.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// The base64url (no padding) HMAC signature of `signing_input` for a JWS `alg` of the HS
/// family; `None` for any other algorithm.
pub fn hs_signature(alg: &str, secret: &[u8], signing_input: &[u8]) -> Option<String> {
    fn mac<M: Mac + KeyInit>(secret: &[u8], input: &[u8]) -> Option<Vec<u8>> {
        let mut m = <M as KeyInit>::new_from_slice(secret).ok()?;
        m.update(input);
        Some(m.finalize().into_bytes().to_vec())
    }
    let raw = match alg {
        "HS256" => mac::<Hmac<sha2::Sha256>>(secret, signing_input)?,
        "HS384" => mac::<Hmac<sha2::Sha384>>(secret, signing_input)?,
        "HS512" => mac::<Hmac<sha2::Sha512>>(secret, signing_input)?,
        _ => return None,
    };
    Some(b64url(&raw))
}

pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
}

/// Runs an async entry point to completion on this thread's single-threaded runtime.
pub fn block_on<F: Future>(f: F) -> F::Output {
    RUNTIME.with(|rt| rt.block_on(f))
}
