//! Strings: decoded (escapes, surrogate pairs, UTF-8 validated) and re-encoded canonically, so
//! that two spellings of one string have the same bytes and no byte a line-based reader splits on.

use super::reader::{JsonError, Reader};

impl Reader<'_> {
    /// A string, decoded and re-encoded canonically.
    pub(super) fn string(&mut self) -> Result<(), JsonError> {
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
