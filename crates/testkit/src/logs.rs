//! What a test captures of the gateway's logs ([`LogCapture`], a TRACE subscriber for the current
//! thread) and the search for secrets in every place a secret could end up ([`find_leaks`]).

use std::sync::{Arc, Mutex};

/// Log output captured from a TRACE subscriber installed for the current thread (use a
/// `current_thread` runtime so the gateway, its upstream and their tasks all log through it).
pub struct LogCapture {
    buf: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::dispatcher::DefaultGuard,
    _second: tracing::Dispatch,
}

#[derive(Clone)]
struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    pub fn install() -> LogCapture {
        let _ = tracing_log::LogTracer::init();
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = CaptureWriter(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        // A second live dispatcher makes tracing-core compute callsite interest over every
        // dispatcher; with only one, a callsite first hit on another test's thread (no
        // subscriber) is cached as "never" and this subscriber would miss it.
        let second = tracing::Dispatch::new(tracing_subscriber::registry());
        let guard = tracing::dispatcher::set_default(&tracing::Dispatch::new(subscriber));
        LogCapture {
            buf,
            _guard: guard,
            _second: second,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

/// Every (secret, place) pair where the secret occurs, with some context around it.
pub fn find_leaks(secrets: &[(String, String)], places: &[(&str, &str)]) -> Vec<String> {
    let mut leaks = Vec::new();
    for (what, secret) in secrets {
        assert!(
            !secret.is_empty(),
            "empty secret {what}: the search would match anything"
        );
        for (place, text) in places {
            if let Some(at) = text.find(secret.as_str()) {
                let from = text[..at].char_indices().rev().nth(200).map_or(0, |(i, _)| i);
                let excerpt: String = text[from..].chars().take(300).collect();
                leaks.push(format!("{what} in {place}: …{excerpt}…"));
            }
        }
    }
    leaks
}
