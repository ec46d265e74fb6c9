//! The tool names per-tool rate-limit state may be kept under: names the configuration names
//! literally and names the upstream listed in a `tools/list` answer. A call to any other name
//! (the upstream will answer "unknown tool") is counted in one shared bucket, so a caller cannot
//! grow the limiter's memory by inventing names. Bounded: at most [`MAX_NAMES`] names of at most
//! [`MAX_NAME_BYTES`] bytes each.

use std::collections::HashSet;
use std::sync::RwLock;

pub const MAX_NAMES: usize = 10_000;
pub const MAX_NAME_BYTES: usize = 256;
/// The bucket every name outside the set shares.
pub const OTHER_TOOLS: &str = "(tools not in tools/list)";

#[derive(Default)]
pub struct KnownTools {
    names: RwLock<HashSet<String>>,
}

impl KnownTools {
    /// Starts with the literal names of the configuration's rules.
    pub fn new<'a>(literals: impl IntoIterator<Item = &'a str>) -> KnownTools {
        let k = KnownTools::default();
        for name in literals {
            k.note(name);
        }
        k
    }

    /// Remembers a name the upstream listed (or the configuration names), while there is room.
    pub fn note(&self, name: &str) {
        if name.len() > MAX_NAME_BYTES || name.contains(['*', '?']) {
            return;
        }
        if self.names.read().unwrap_or_else(|e| e.into_inner()).contains(name) {
            return;
        }
        let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
        if names.len() < MAX_NAMES {
            names.insert(name.to_string());
        }
    }

    /// The name to keep per-tool limiter state under for a call to `tool`.
    pub fn limit_key<'t>(&self, tool: &'t str) -> &'t str {
        if self.names.read().unwrap_or_else(|e| e.into_inner()).contains(tool) {
            tool
        } else {
            OTHER_TOOLS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_share_one_bucket_and_the_set_is_bounded() {
        let k = KnownTools::new(["summarize", "get_*"]);
        assert_eq!(k.limit_key("summarize"), "summarize");
        assert_eq!(k.limit_key("get_*"), OTHER_TOOLS);
        assert_eq!(k.limit_key("made-up"), OTHER_TOOLS);
        k.note("listed");
        assert_eq!(k.limit_key("listed"), "listed");
        k.note(&"x".repeat(MAX_NAME_BYTES + 1));
        assert_eq!(k.limit_key(&"x".repeat(MAX_NAME_BYTES + 1)), OTHER_TOOLS);
        for i in 0..MAX_NAMES + 10 {
            k.note(&format!("t{i}"));
        }
        assert_eq!(k.names.read().unwrap().len(), MAX_NAMES);
    }
}
