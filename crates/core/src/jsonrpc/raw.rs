//! Reading one member's raw JSON text: whether it is present, an object, a string, a valid id.
//! Shared by the envelope ([`super::message`]) and the target ([`super::target`]) readers.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// A field that is present, whatever its value (`null` included): serde's `Option` would read
/// `"id": null` as absent.
pub(super) fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

pub(super) fn is_object(v: &RawValue) -> bool {
    v.get().starts_with('{')
}

/// A JSON string's value; `None` for any other JSON type.
pub(super) fn string<'a>(v: &'a RawValue) -> Option<Cow<'a, str>> {
    if !v.get().starts_with('"') {
        return None;
    }
    serde_json::from_str::<Cow<'a, str>>(v.get()).ok()
}

/// Ids are strings or integers a JavaScript upstream reads exactly (|n| < 2^53); anything else
/// would be echoed back differently than it was sent.
pub(super) fn valid_id(v: &RawValue) -> bool {
    const MAX_SAFE: i64 = (1 << 53) - 1;
    let t = v.get();
    if t.starts_with('"') {
        return t.len() <= 1026; // 1024 characters of id plus the quotes
    }
    !t.contains(['.', 'e', 'E']) && t.parse::<i64>().is_ok_and(|n| (-MAX_SAFE..=MAX_SAFE).contains(&n))
}
