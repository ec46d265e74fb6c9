//! The JSON value grammar (RFC 8259, no extensions): objects, arrays, numbers and literals, each
//! copied to the canonical output as it is read. Strings are in [`super::strings`], the
//! duplicate-key check in [`super::keys`].

use super::keys::{KeyIndex, has_duplicate};
use super::reader::{JsonError, Reader};

/// Objects and arrays nested deeper than this are refused (MCP arguments are shallow; deep
/// nesting only serves to exhaust a recursive parser upstream).
pub const MAX_DEPTH: usize = 64;

impl Reader<'_> {
    pub(super) fn value(&mut self, depth: usize) -> Result<(), JsonError> {
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
        if self.open(depth, b'[', b']')? {
            return Ok(());
        }
        loop {
            self.value(depth)?;
            if !self.more(b']', "expected ',' or ']'")? {
                return Ok(());
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), JsonError> {
        if self.open(depth, b'{', b'}')? {
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
            if has_duplicate(&self.out, &self.keys[frame..], &mut index) {
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
            if !self.more(b'}', "expected ',' or '}'")? {
                self.keys.truncate(frame);
                return Ok(());
            }
        }
    }

    /// Starts an array or object (the reader is on its `open` bracket): refuses one nested
    /// deeper than [`MAX_DEPTH`], and reads an empty one whole. Returns whether it was empty.
    fn open(&mut self, depth: usize, open: u8, close: u8) -> Result<bool, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.i += 1;
        self.out.push(open);
        self.ws();
        if self.peek() == Some(close) {
            self.i += 1;
            self.out.push(close);
            return Ok(true);
        }
        Ok(false)
    }

    /// After a member: a `,` (another member follows: `true`) or the `close` bracket (the end:
    /// `false`); anything else is refused as `what`.
    fn more(&mut self, close: u8, what: &'static str) -> Result<bool, JsonError> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                self.out.push(b',');
                self.ws();
                Ok(true)
            }
            Some(b) if b == close => {
                self.i += 1;
                self.out.push(close);
                Ok(false)
            }
            _ => Err(self.err(what)),
        }
    }
}
