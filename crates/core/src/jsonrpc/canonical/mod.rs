//! Strict JSON reading with a canonical re-serialization: the first thing the gateway does with
//! every message body, before it decides anything.
//!
//! Why: a gateway that decides on one reading of a message and forwards the original bytes lets
//! the upstream execute another reading. Duplicate keys (last-wins in Python and JavaScript,
//! first-wins elsewhere), raw newlines between tokens (a stdio upstream reads one message per
//! line), escapes and Unicode line separators are all ways the two readings drift apart. So the
//! whole body is read here, strictly (RFC 8259, no extensions, no duplicate keys at any depth,
//! bounded nesting), and what goes upstream is the canonical form of what was read:
//! compact, one line, every string re-encoded the same way (`"insp\u0065ct"` becomes
//! `"inspect"`; control characters and U+0085/U+2028/U+2029 escaped), numbers verbatim.
//! Two messages that mean the same thing have the same canonical bytes, and canonical bytes
//! contain no byte that any line-based reader could split on.
//!
//! Errors name a byte offset and a class, never the input's text.

mod keys;
mod reader;
mod strings;
mod value;

pub use reader::JsonError;
use reader::Reader;
pub use value::MAX_DEPTH;

/// Reads `input` strictly and returns its canonical form.
pub fn canonicalize(input: &[u8]) -> Result<Vec<u8>, JsonError> {
    if input.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(JsonError {
            what: "a byte-order mark is not allowed",
            at: 0,
        });
    }
    let mut r = Reader {
        s: input,
        i: 0,
        out: Vec::with_capacity(input.len()),
        keys: Vec::new(),
    };
    r.ws();
    if r.i == input.len() {
        return Err(r.err("empty body"));
    }
    r.value(0)?;
    r.ws();
    if r.i != input.len() {
        return Err(r.err("unexpected data after the JSON value"));
    }
    Ok(r.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        String::from_utf8(canonicalize(s.as_bytes()).unwrap()).unwrap()
    }

    fn refused(s: &[u8]) -> &'static str {
        canonicalize(s).unwrap_err().what
    }

    #[test]
    fn canonical_form_is_compact_and_normalised() {
        assert_eq!(
            canon(" { \"a\" :\r\n [1, -2.5e+3 ,true,false,null] } "),
            r#"{"a":[1,-2.5e+3,true,false,null]}"#
        );
        assert_eq!(canon(r#""insp\u0065ct""#), r#""inspect""#);
        assert_eq!(canon(r#""a\/b""#), r#""a/b""#);
        assert_eq!(canon(r#""\u00e9\ud83d\ude00""#), "\"é😀\"");
        assert_eq!(canon(r#""\u0001\u007f""#), r#""\u0001\u007f""#);
        assert_eq!(canon("\"a\u{2028}b\u{2029}c\u{85}\""), r#""a\u2028b\u2029c\u0085""#);
        assert_eq!(canon(r#""\n\r\t\b\f\"\\""#), r#""\n\r\t\b\f\"\\""#);
        assert_eq!(canon("12345678901234567890123456789"), "12345678901234567890123456789");
        assert_eq!(canon("{}"), "{}");
        assert_eq!(canon("[ ]"), "[]");
        // Canonical bytes read back to themselves.
        for s in [r#"{"a":"\u2028","b":[{"c":"x\ny"}]}"#, "\"\u{7f}\""] {
            let once = canon(s);
            assert_eq!(canon(&once), once);
            assert!(!once.bytes().any(|b| b == b'\n' || b == b'\r'));
        }
    }

    #[test]
    fn refuses_what_is_not_strict_json() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty body"),
            (b"  ", "empty body"),
            (b"\xEF\xBB\xBF{}", "a byte-order mark is not allowed"),
            (br#"{"a":1,"a":2}"#, "duplicate key"),
            (br#"{"a":1,"\u0061":2}"#, "duplicate key"),
            (br#"{"x":{"n":1,"n":1}}"#, "duplicate key"),
            (br#"[{"k":1,"j":{"k":1},"k":2}]"#, "duplicate key"),
            (b"{\"a\":\"x\ny\"}", "raw control character in a string"),
            (br#""\ud800""#, "unpaired surrogate escape"),
            (br#""\udc00""#, "unpaired surrogate escape"),
            (br#""\ud800\u0041""#, "unpaired surrogate escape"),
            (b"\"\xff\"", "invalid UTF-8"),
            (b"\"\xc0\x80\"", "invalid UTF-8"),
            (b"\"\xed\xa0\x80\"", "invalid UTF-8"),
            (br#""\x""#, "invalid escape"),
            (br#""\u12""#, "invalid \\u escape"),
            (b"{} {}", "unexpected data after the JSON value"),
            (b"{}\n{}", "unexpected data after the JSON value"),
            (br#"{"a":1,}"#, "expected a string key"),
            (b"[1,]", "expected a JSON value"),
            (b"{'a':1}", "expected a string key"),
            (b"// c\n{}", "expected a JSON value"),
            (b"{/* c */}", "expected a string key"),
            (b"NaN", "expected a JSON value"),
            (b"-Infinity", "expected a digit"),
            (b"01", "unexpected data after the JSON value"),
            (b"1.", "expected a digit"),
            (b"1e400", "number out of range"),
            (b"[-1E+999]", "number out of range"),
            (b"tru", "expected a JSON value"),
            (b"\"abc", "unterminated string"),
            (b"{\"a\"", "expected ':'"),
            (b"[1 2]", "expected ',' or ']'"),
        ];
        for (body, what) in cases {
            assert_eq!(refused(body), *what, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(canonicalize(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(refused(deep.as_bytes()), "nested too deeply");
        let very = "[{\"a\":".repeat(100_000);
        assert_eq!(refused(very.as_bytes()), "nested too deeply");
    }

    #[test]
    fn agrees_with_serde_on_what_it_accepts() {
        let docs = [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"t":"\u00e9\n"}}}"#,
            r#"[1,2.5,-0,1e10,"x",{"y":[null,true]}]"#,
        ];
        for d in docs {
            let a: serde_json::Value = serde_json::from_str(d).unwrap();
            let b: serde_json::Value = serde_json::from_slice(&canonicalize(d.as_bytes()).unwrap()).unwrap();
            assert_eq!(a, b);
        }
    }

    #[test]
    fn large_objects_stay_fast_enough() {
        let mut s = String::from("{");
        for i in 0..10_000 {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!("\"k{i}\":{i}"));
        }
        s.push('}');
        let t = std::time::Instant::now();
        assert!(canonicalize(s.as_bytes()).is_ok());
        assert!(t.elapsed() < std::time::Duration::from_secs(2), "{:?}", t.elapsed());
        let dup = s.replacen("\"k9999\"", "\"k0\"", 1);
        assert_eq!(refused(dup.as_bytes()), "duplicate key");
    }
}
