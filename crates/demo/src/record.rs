//! `--record FILE`: one JSON line per execution, so a test can compare what this upstream ran
//! with what the gateway in front of it authorized and audited (tests-e2e/differential.sh).
//!
//! A line is `{"kind":"tool"|"resource"|"subscribe"|"prompt"|"completion","target":…,"args":{…}}`,
//! written with one `write` on a file opened for appending, so it is visible to a reader as soon
//! as the handler returns and lines from concurrent sessions never interleave.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rmcp::ErrorData;
use serde_json::Value;

/// What ran: the method family, in the recording's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Tool,
    Resource,
    Subscribe,
    Prompt,
    Completion,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Resource => "resource",
            Kind::Subscribe => "subscribe",
            Kind::Prompt => "prompt",
            Kind::Completion => "completion",
        }
    }
}

/// The execution log. Cheap to clone; clones append to the same file.
#[derive(Debug, Clone)]
pub struct Recorder {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl Recorder {
    /// Opens (creating if needed) `path` for appending.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<Recorder> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Recorder {
            path,
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// Appends one execution. A failure is the caller's error to return: an execution that
    /// cannot be recorded must not look like one that did not happen.
    pub(crate) fn record(&self, kind: Kind, target: &str, args: &Value) -> Result<(), ErrorData> {
        // Written by hand so that `kind` and `target` come first in every implementation's lines
        // (a reader can take them from the head of a line whose arguments nest too deep to parse).
        let line = format!(
            r#"{{"kind":"{}","target":{},"args":{args}}}"#,
            kind.as_str(),
            Value::from(target)
        );
        // serde_json writes U+2028/U+2029 raw; escape them (and NEL) so that no reader splitting
        // on Unicode line breaks sees half a record.
        let mut text = line.replace('\u{2028}', "\\u2028");
        text = text.replace('\u{2029}', "\\u2029").replace('\u{85}', "\\u0085");
        text.push('\n');
        // A panic while holding the lock cannot leave a half-written line behind (one write).
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.write_all(text.as_bytes()).map_err(|error| {
            tracing::error!(path = %self.path.display(), %error, "cannot record an execution");
            ErrorData::internal_error(format!("cannot record the execution: {error}"), None)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_one_line_per_execution_with_line_breaks_escaped() {
        let dir = std::env::temp_dir().join(format!("mcpgate-demo-record-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("rec.jsonl");
        let _ = std::fs::remove_file(&path);
        let recorder = Recorder::open(&path).unwrap();
        recorder
            .record(Kind::Tool, "echo", &serde_json::json!({ "text": "a\u{2028}b" }))
            .unwrap();
        recorder
            .record(Kind::Resource, "test://public", &serde_json::json!({}))
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(!text.contains('\u{2028}'));
        assert!(
            lines[0].starts_with(r#"{"kind":"tool","target":"echo","#),
            "{}",
            lines[0]
        );
        let first: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["kind"], "tool");
        assert_eq!(first["args"]["text"], "a\u{2028}b");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
