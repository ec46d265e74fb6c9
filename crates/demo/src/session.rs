//! The little state one MCP session has: the log level the client asked for and the resources it
//! subscribed to. The server ([`crate::server::DemoServer`]) owns one per session and the tools
//! read it, so it sits below both.

// Logging is deprecated by the 2026-07-28 protocol (SEP-2577) but is what every client released so
// far speaks, and the conformance suite tests it.
#![allow(deprecated)]

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
use rmcp::{Peer, RoleServer};

/// The logger name on `notifications/message`, so a client can tell these apart from the
/// gateway's own.
const LOGGER: &str = "mcpgate-demo";

#[derive(Debug)]
pub(crate) struct Session {
    /// Least severe level the client wants (`logging/setLevel`), as a [`severity`] rank.
    min_log_level: AtomicU8,
    /// URIs the client subscribed to with `resources/subscribe`.
    subscriptions: Mutex<BTreeSet<String>>,
}

impl Session {
    pub(crate) fn new() -> Self {
        Self {
            min_log_level: AtomicU8::new(severity(LoggingLevel::Debug)),
            subscriptions: Mutex::new(BTreeSet::new()),
        }
    }

    /// `logging/setLevel`: from now on, only `level` and more severe are sent.
    pub(crate) fn set_log_level(&self, level: LoggingLevel) {
        self.min_log_level.store(severity(level), Ordering::Relaxed);
    }

    /// Sends `notifications/message` unless the client asked for less. Delivery failures are
    /// only traced: a log line must never fail the tool that emits it.
    pub(crate) async fn log(&self, peer: &Peer<RoleServer>, level: LoggingLevel, message: &str) {
        if severity(level) < self.min_log_level.load(Ordering::Relaxed) {
            return;
        }
        let param = LoggingMessageNotificationParam::new(level, message.into()).with_logger(LOGGER);
        if let Err(error) = peer.notify_logging_message(param).await {
            tracing::debug!(%error, "could not deliver a log notification");
        }
    }

    pub(crate) fn subscribe(&self, uri: String) {
        self.subscriptions().insert(uri);
    }

    pub(crate) fn unsubscribe(&self, uri: &str) {
        self.subscriptions().remove(uri);
    }

    /// The URIs this session is subscribed to, for `inspect`.
    pub(crate) fn subscribed(&self) -> Vec<String> {
        self.subscriptions().iter().cloned().collect()
    }

    fn subscriptions(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        // A panic while holding this lock cannot leave the set inconsistent (insert/remove are
        // atomic from its point of view), so a poisoned lock is still safe to use.
        self.subscriptions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// RFC 5424 order, least severe first, so "at least this level" is a numeric comparison.
fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}
