//! The reader's state and its primitives: where it is in the input, the canonical output so far,
//! and the error it reports (a byte offset and a class, never the input's text). The grammar is
//! in [`super::value`] and [`super::strings`].

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

pub(super) struct Reader<'a> {
    pub(super) s: &'a [u8],
    pub(super) i: usize,
    pub(super) out: Vec<u8>,
    /// Output ranges of the keys of every object being read, innermost last.
    pub(super) keys: Vec<(usize, usize)>,
}

impl Reader<'_> {
    pub(super) fn err(&self, what: &'static str) -> JsonError {
        JsonError { what, at: self.i }
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    pub(super) fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    pub(super) fn expect(&mut self, b: u8, what: &'static str) -> Result<(), JsonError> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }
}
