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

/// Objects and arrays nested deeper than this are refused (MCP arguments are shallow; deep
/// nesting only serves to exhaust a recursive parser upstream).
pub const MAX_DEPTH: usize = 64;

/// Why a body is not strict JSON. Says where and what, never echoes the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonError {
    pub what: &'static str,
    /// Byte offset in the input.
    pub at: usize,
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

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

struct Reader<'a> {
    s: &'a [u8],
    i: usize,
    out: Vec<u8>,
    /// Output ranges of the keys of every object being read, innermost last.
    keys: Vec<(usize, usize)>,
}

impl Reader<'_> {
    fn err(&self, what: &'static str) -> JsonError {
        JsonError { what, at: self.i }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn expect(&mut self, b: u8, what: &'static str) -> Result<(), JsonError> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), JsonError> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            None => Err(self.err("unexpected end of input")),
            Some(_) => Err(self.err("expected a JSON value")),
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), JsonError> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            self.out.extend_from_slice(word);
            Ok(())
        } else {
            Err(self.err("expected a JSON value"))
        }
    }

    fn digits(&mut self) -> Result<(), JsonError> {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        if self.i == start {
            return Err(self.err("expected a digit"));
        }
        Ok(())
    }

    /// RFC 8259 numbers, copied verbatim: the gateway never changes a number's text.
    fn number(&mut self) -> Result<(), JsonError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits()?,
            _ => return Err(self.err("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.digits()?;
        }
        let text = &self.s[start..self.i];
        // A number no reader can hold (1e400) is read as infinity by some, refused by others:
        // ambiguous, so refused here. Short plain numbers cannot overflow; only long ones or
        // exponents pay for the check.
        if (text.len() > 300 || text.iter().any(|b| matches!(b, b'e' | b'E')))
            && std::str::from_utf8(text)
                .ok()
                .and_then(|t| t.parse::<f64>().ok())
                .is_none_or(|v| v.is_infinite())
        {
            return Err(JsonError {
                what: "number out of range",
                at: start,
            });
        }
        self.out.extend_from_slice(text);
        Ok(())
    }

    fn array(&mut self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.i += 1;
        self.out.push(b'[');
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            self.out.push(b']');
            return Ok(());
        }
        loop {
            self.value(depth)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.out.push(b',');
                    self.ws();
                }
                Some(b']') => {
                    self.i += 1;
                    self.out.push(b']');
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.i += 1;
        self.out.push(b'{');
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            self.out.push(b'}');
            return Ok(());
        }
        let frame = self.keys.len();
        // Past a few keys, duplicates are found by hash: a caller-chosen argument map with
        // many keys must not make the check quadratic.
        let mut index: Option<KeyIndex> = None;
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            let key_at = self.i;
            let start = self.out.len();
            self.string()?;
            self.keys.push((start, self.out.len()));
            if self.has_duplicate(frame, &mut index) {
                return Err(JsonError {
                    what: "duplicate key",
                    at: key_at,
                });
            }
            self.ws();
            self.expect(b':', "expected ':'")?;
            self.out.push(b':');
            self.ws();
            self.value(depth)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.out.push(b',');
                    self.ws();
                }
                Some(b'}') => {
                    self.i += 1;
                    self.out.push(b'}');
                    self.keys.truncate(frame);
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    /// Whether the key just read repeats one of this object's earlier keys. Canonical string
    /// encoding is one-to-one, so equal decoded keys have equal output bytes.
    fn has_duplicate(&self, frame: usize, index: &mut Option<KeyIndex>) -> bool {
        let Some((&(ls, le), earlier)) = self.keys[frame..].split_last() else {
            return false;
        };
        let last = &self.out[ls..le];
        // Objects in MCP messages have a handful of keys: a linear scan beats hashing there.
        if earlier.len() < SMALL_OBJECT && index.is_none() {
            return earlier.iter().any(|&(s, e)| &self.out[s..e] == last);
        }
        let idx = index.get_or_insert_with(|| {
            let mut idx = KeyIndex::with_hasher(std::collections::hash_map::RandomState::new());
            for &(s, e) in earlier {
                idx.entry(hash_of(idx.hasher(), &self.out[s..e]))
                    .or_default()
                    .push((s, e));
            }
            idx
        });
        let h = hash_of(idx.hasher(), last);
        let same = idx.entry(h).or_default();
        if same.iter().any(|&(s, e)| &self.out[s..e] == last) {
            return true;
        }
        same.push((ls, le));
        false
    }

    /// A string, decoded and re-encoded canonically.
    fn string(&mut self) -> Result<(), JsonError> {
        self.i += 1; // the opening quote
        self.out.push(b'"');
        loop {
            // Copy the run of plain printable ASCII at once.
            let run = self.s[self.i..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b))
                .unwrap_or(self.s.len() - self.i);
            self.out.extend_from_slice(&self.s[self.i..self.i + run]);
            self.i += run;
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    self.out.push(b'"');
                    return Ok(());
                }
                Some(b'\\') => {
                    let c = self.escape()?;
                    push_char(&mut self.out, c);
                }
                Some(b) if b < 0x20 => return Err(self.err("raw control character in a string")),
                Some(_) => {
                    let c = self.utf8_char()?;
                    push_char(&mut self.out, c);
                }
            }
        }
    }

    /// One escape sequence (the reader is on its backslash), decoded.
    fn escape(&mut self) -> Result<char, JsonError> {
        let at = self.i;
        self.i += 1;
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.i += 1;
                let first = self.hex4()?;
                let code = match first {
                    0xD800..=0xDBFF => {
                        if !self.s[self.i..].starts_with(b"\\u") {
                            return Err(JsonError {
                                what: "unpaired surrogate escape",
                                at,
                            });
                        }
                        self.i += 2;
                        let second = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return Err(JsonError {
                                what: "unpaired surrogate escape",
                                at,
                            });
                        }
                        0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                    }
                    0xDC00..=0xDFFF => {
                        return Err(JsonError {
                            what: "unpaired surrogate escape",
                            at,
                        });
                    }
                    c => c,
                };
                return char::from_u32(code).ok_or(JsonError {
                    what: "invalid escape",
                    at,
                });
            }
            _ => {
                return Err(JsonError {
                    what: "invalid escape",
                    at,
                });
            }
        };
        self.i += 1;
        Ok(c)
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .s
            .get(self.i..self.i + 4)
            .ok_or_else(|| self.err("invalid \\u escape"))?;
        let mut v = 0u32;
        for &d in digits {
            let n = (d as char).to_digit(16).ok_or_else(|| self.err("invalid \\u escape"))?;
            v = v * 16 + n;
        }
        self.i += 4;
        Ok(v)
    }

    /// One character encoded in UTF-8 (the reader is on a byte ≥ 0x7f), validated.
    fn utf8_char(&mut self) -> Result<char, JsonError> {
        let b = self.s[self.i];
        let len = match b {
            0x7f => 1,
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return Err(self.err("invalid UTF-8")),
        };
        let bytes = self
            .s
            .get(self.i..self.i + len)
            .ok_or_else(|| self.err("invalid UTF-8"))?;
        let c = std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.chars().next())
            .ok_or_else(|| self.err("invalid UTF-8"))?;
        self.i += len;
        Ok(c)
    }
}

const SMALL_OBJECT: usize = 16;

/// Key hash → output ranges of the keys with that hash (randomly keyed per message, so a caller
/// cannot aim collisions).
type KeyIndex = std::collections::HashMap<u64, Vec<(usize, usize)>, std::collections::hash_map::RandomState>;

fn hash_of(state: &std::collections::hash_map::RandomState, bytes: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    state.hash_one(bytes)
}

/// Appends `c` as canonical JSON string content.
fn push_char(out: &mut Vec<u8>, c: char) {
    match c {
        '"' => out.extend_from_slice(b"\\\""),
        '\\' => out.extend_from_slice(b"\\\\"),
        '\n' => out.extend_from_slice(b"\\n"),
        '\r' => out.extend_from_slice(b"\\r"),
        '\t' => out.extend_from_slice(b"\\t"),
        '\u{8}' => out.extend_from_slice(b"\\b"),
        '\u{c}' => out.extend_from_slice(b"\\f"),
        // Control characters, DEL, and what line-based readers may split on (NEL, LS, PS).
        c if (c as u32) < 0x20 || matches!(c, '\u{7f}' | '\u{85}' | '\u{2028}' | '\u{2029}') => {
            out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
        }
        c => {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
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
