//! Property test of the strict reading (issue #9): for generated messages — valid ones, and
//! ones with raw line breaks, duplicate keys, escapes and wrong-typed targets mixed in — either
//! the gateway refuses the message, or the target it decides on is the one every reader of the
//! forwarded (canonical) bytes sees, and those bytes carry nothing a line-based reader could
//! split on.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mcpgate_core::jsonrpc::{Message, read};
use proptest::prelude::*;
use serde_json::Value;

/// A JSON string literal for `s`, with some characters written as `\uXXXX` escapes.
fn encode(s: &str, escape_mask: u64) -> String {
    let mut out = String::from("\"");
    for (i, c) in s.chars().enumerate() {
        let escaped = escape_mask >> (i % 64) & 1 == 1;
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if escaped && (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whitespace between tokens, from all four kinds JSON allows.
fn ws(n: u8) -> &'static str {
    ["", " ", "\n", "\r\n", "\t", "\r", " \n "][n as usize % 7]
}

#[derive(Debug, Clone)]
enum Extra {
    /// A second `name` (the classic duplicate).
    DuplicateName(String),
    /// A wrong-typed sibling that names nothing the gateway reads.
    UriNumber,
    /// The name itself of a wrong type.
    NameNumber,
    /// A nested object with a duplicate key.
    NestedDuplicate,
    /// A whole second message after a raw newline, as a value.
    SmuggledValue,
    None,
}

fn extra() -> impl Strategy<Value = Extra> {
    prop_oneof![
        "[a-z_]{1,8}".prop_map(Extra::DuplicateName),
        Just(Extra::UriNumber),
        Just(Extra::NameNumber),
        Just(Extra::NestedDuplicate),
        Just(Extra::SmuggledValue),
        Just(Extra::None),
        Just(Extra::None),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{1,12}",
        "[a-z]{1,4}[\u{2028}\u{2029}\u{85}\n\r\"\\\\/][a-z]{0,4}",
        "\\PC{1,6}",
    ]
}

fn build(name: &str, mask: u64, spaces: &[u8], extra: &Extra, text: &str) -> String {
    let w = |i: usize| ws(spaces[i % spaces.len()]);
    let name_json = match extra {
        Extra::NameNumber => "7".to_string(),
        _ => encode(name, mask),
    };
    let mut params = format!(
        "{{{}\"name\"{}:{}{}{},\"arguments\":{{\"text\":{}}}",
        w(0),
        w(1),
        w(2),
        name_json,
        w(3),
        encode(text, mask.rotate_left(7))
    );
    match extra {
        Extra::DuplicateName(other) => params.push_str(&format!(",{}\"name\":{}", w(4), encode(other, 0))),
        Extra::UriNumber => params.push_str(",\"uri\":1"),
        Extra::NestedDuplicate => params.push_str(",\"x\":{\"k\":1,\"k\":2}"),
        Extra::SmuggledValue => params.push_str(
            ",\"pad\":\n{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\",\"params\":{\"name\":\"crash\"}}\n",
        ),
        Extra::NameNumber | Extra::None => {}
    }
    params.push('}');
    format!(
        "{}{{\"jsonrpc\":\"2.0\",{}\"id\":{},\"method\":\"tools/call\",\"params\":{}{}}}{}",
        w(5),
        w(6),
        spaces.len(),
        params,
        w(7),
        w(8)
    )
}

/// Every key of every object appears once — checked by a serde visitor of its own, not by the
/// reader under test (serde_json's `Value` would silently keep the last).
fn no_duplicates(text: &str) -> bool {
    use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
    struct Unique;
    impl<'de> Deserialize<'de> for Unique {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Unique, D::Error> {
            d.deserialize_any(UniqueVisitor)
        }
    }
    struct UniqueVisitor;
    impl<'de> Visitor<'de> for UniqueVisitor {
        type Value = Unique;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Unique, A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(k) = m.next_key::<String>()? {
                if !seen.insert(k) {
                    return Err(serde::de::Error::custom("duplicate"));
                }
                m.next_value::<Unique>()?;
            }
            Ok(Unique)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Unique, A::Error> {
            while s.next_element::<Unique>()?.is_some() {}
            Ok(Unique)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_unit<E>(self) -> Result<Unique, E> {
            Ok(Unique)
        }
    }
    serde_json::from_str::<Unique>(text).is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decided_target_is_what_every_reader_sees(
        name in name(),
        text in "\\PC{0,12}",
        mask in any::<u64>(),
        spaces in proptest::collection::vec(any::<u8>(), 1..10),
        extra in extra(),
    ) {
        let body = build(&name, mask, &spaces, &extra, &text);
        match read(body.as_bytes()) {
            Err(_) => {
                // Refused: fine, as long as a plain valid message is never refused.
                prop_assert!(
                    !matches!(extra, Extra::None | Extra::UriNumber | Extra::SmuggledValue),
                    "refused a valid message: {body:?}"
                );
                prop_assert!(!no_duplicates(&body) || matches!(extra, Extra::NameNumber) || serde_json::from_str::<Value>(&body).is_err());
            }
            Ok(canonical) => {
                let text_c = std::str::from_utf8(&canonical).unwrap();
                // Nothing a line-based reader could split on.
                let separators = ['\n', '\r', '\u{2028}', '\u{2029}', '\u{85}'];
                prop_assert!(!text_c.contains(separators), "a line separator in {:?}", text_c);
                // A fixed point, and the same JSON as the original.
                prop_assert_eq!(read(&canonical).unwrap(), canonical.clone());
                let original: Value = serde_json::from_str(&body).unwrap();
                let forwarded: Value = serde_json::from_str(text_c).unwrap();
                prop_assert_eq!(&original, &forwarded);
                prop_assert!(no_duplicates(text_c));
                match Message::parse(&canonical) {
                    Err(_) => prop_assert!(matches!(extra, Extra::NameNumber), "typed parse refused {body:?}"),
                    Ok(m) => {
                        // The gateway's target is the upstream's target.
                        prop_assert_eq!(m.target(), forwarded["params"]["name"].as_str());
                        prop_assert_eq!(m.target(), Some(name.as_str()));
                        prop_assert!(!matches!(extra, Extra::DuplicateName(_) | Extra::NestedDuplicate | Extra::NameNumber));
                    }
                }
            }
        }
    }

    /// Arbitrary bytes: never a panic, and whatever is accepted is a fixed point.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(c) = read(&bytes) {
            prop_assert_eq!(read(&c).unwrap(), c.clone());
            let _ = Message::parse(&c);
        }
    }
}
