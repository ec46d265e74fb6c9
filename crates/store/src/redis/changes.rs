//! Change notices between replicas, over Redis pub/sub: a gateway that revokes a key or a grant
//! in the durable store publishes one word on `{prefix}changes`, and every replica's listener
//! wakes the poller that reads that kind of record, so the revocation takes effect everywhere at
//! once instead of at the next poll.
//!
//! A notice says only *what kind* of record changed ([`Change`]: `keys`, `grants`, `clients`,
//! `sessions`),
//! never an id or a secret: the store stays the one source of truth, a reader of the channel
//! learns nothing, and a writer to it can only cause re-reads (which the gateway coalesces).
//! Anything else on the channel is ignored. Notices are best effort — Redis pub/sub keeps
//! nothing for a listener that is away — so the polls stay as the backstop, and after every
//! (re)subscription the listener reports every kind as changed, since notices may have been
//! missed meanwhile.
//!
//! The listener has a connection of its own (a subscribed connection can do nothing else),
//! which it makes again by itself when Redis goes away: retried with a growing delay (50 ms to
//! 1 s), and checked with a `PING` every few seconds so a connection that died without a word
//! is noticed too. Publishing goes through the store's shared connection.

use super::{CONNECT_TIMEOUT, RESPONSE_TIMEOUT, RedisStore, failed};
use crate::{Result, StoreError};
use futures_util::StreamExt;
use std::time::Duration;

/// How often a subscribed connection is checked with a `PING`.
const PING_EVERY: Duration = Duration::from_secs(5);
/// How long that `PING` (or the `SUBSCRIBE`) may take before the connection counts as lost.
const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// The first and the longest wait between two attempts to subscribe.
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(1);

/// What kind of record changed: the whole payload of a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// API keys or the credentials held for them (revoked, rotated, created, removed).
    Keys,
    /// OAuth grants (revoked: by their client, by a refresh-token reuse, with their key).
    Grants,
    /// OAuth clients (removed, with their grants).
    Clients,
    /// MCP sessions (one was ended): replicas ask the session store again about the owners they
    /// remember.
    Sessions,
}

impl Change {
    pub const ALL: [Change; 4] = [Change::Keys, Change::Grants, Change::Clients, Change::Sessions];

    /// The word a notice carries.
    pub fn word(self) -> &'static str {
        match self {
            Change::Keys => "keys",
            Change::Grants => "grants",
            Change::Clients => "clients",
            Change::Sessions => "sessions",
        }
    }

    /// The kind a notice's payload names; `None` for anything else (ignored).
    pub fn parse(payload: &[u8]) -> Option<Change> {
        Change::ALL.into_iter().find(|c| c.word().as_bytes() == payload)
    }
}

/// What a listener hears.
#[derive(Debug)]
pub enum Heard {
    /// A notice (or the catch-up after a subscription): records of this kind may have changed.
    Changed(Change),
    /// Subscribed (at start, or again after losing the connection); a `Changed` for every kind
    /// follows at once.
    Subscribed,
    /// Not subscribed: the connection was lost or could not be made (why, without the URL).
    /// Said once per outage; the listener keeps trying.
    Lost(StoreError),
}

/// A running listener; it stops when dropped.
#[derive(Debug)]
pub struct Listener {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RedisStore {
    /// The channel notices go through: `{prefix}changes`.
    pub fn changes_channel(&self) -> String {
        format!("{}changes", self.prefix)
    }

    /// Tells every listener on this Redis and prefix that `change` happened (after the durable
    /// store has it). Returns how many listeners received it. A connection found lost is tried
    /// twice more (50 and 250 ms later): the shared connection is made again only after a
    /// command has failed on it, and the first revocation after Redis comes back must not be
    /// that command. Callers log a failure and go on: the other replicas' polls will see the
    /// change anyway.
    pub async fn publish(&self, change: Change) -> Result<usize> {
        let mut retries = [Duration::from_millis(50), Duration::from_millis(250)].into_iter();
        loop {
            let sent = ::redis::cmd("PUBLISH")
                .arg(self.changes_channel())
                .arg(change.word())
                .query_async(&mut self.conn())
                .await;
            match sent {
                Ok(n) => return Ok(n),
                Err(e) if lost(&e) => match retries.next() {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(failed("publish a change notice", &e)),
                },
                Err(e) => return Err(failed("publish a change notice", &e)),
            }
        }
    }

    /// Listens for notices on a connection of its own, until the returned [`Listener`] is
    /// dropped, calling `on` with what it hears (see [`Heard`]). `on` is called from the
    /// listener's task for every notice, so it must be quick (e.g. wake a `Notify`). Needs a
    /// Tokio runtime. Starts at once whether or not Redis answers.
    pub fn listen(&self, on: impl Fn(Heard) + Send + Sync + 'static) -> Listener {
        let client = self.client.clone();
        let channel = self.changes_channel();
        Listener {
            task: tokio::spawn(run(client, channel, on)),
        }
    }
}

/// The connection is gone (the manager makes another after this failure), as opposed to an
/// answer Redis gave or a timeout.
fn lost(e: &::redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_unrecoverable_error()
}

/// Subscribes, follows, and subscribes again, for ever.
async fn run(client: ::redis::Client, channel: String, on: impl Fn(Heard)) {
    let mut delay = RETRY_MIN;
    // Whether this outage has been reported (once per outage; a subscription's end always is).
    let mut told_lost = false;
    loop {
        match subscribe(&client, &channel).await {
            Ok(pubsub) => {
                delay = RETRY_MIN;
                on(Heard::Subscribed);
                for c in Change::ALL {
                    on(Heard::Changed(c));
                }
                let why = follow(pubsub, &channel, &on).await;
                on(Heard::Lost(why));
                told_lost = true;
            }
            Err(e) if !told_lost => {
                on(Heard::Lost(e));
                told_lost = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RETRY_MAX);
    }
}

async fn subscribe(client: &::redis::Client, channel: &str) -> Result<::redis::aio::PubSub> {
    let timed_out = || StoreError::Backend("redis: change notices: timed out".into());
    let mut pubsub = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| timed_out())?
        .map_err(|e| failed("change notices", &e))?;
    tokio::time::timeout(PING_TIMEOUT.max(RESPONSE_TIMEOUT), pubsub.subscribe(channel))
        .await
        .map_err(|_| timed_out())?
        .map_err(|e| failed("change notices", &e))?;
    Ok(pubsub)
}

/// Hands every notice to `on` until the connection is lost; returns why.
async fn follow(pubsub: ::redis::aio::PubSub, channel: &str, on: &impl Fn(Heard)) -> StoreError {
    let (mut sink, mut stream) = pubsub.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(msg) => {
                    if msg.get_channel_name() == channel
                        && let Some(change) = Change::parse(msg.get_payload_bytes())
                    {
                        on(Heard::Changed(change));
                    }
                }
                None => return StoreError::Backend("redis: change notices: not reachable".into()),
            },
            _ = ping.tick() => match tokio::time::timeout(PING_TIMEOUT, sink.ping::<::redis::Value>()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return failed("change notices", &e),
                Err(_) => return StoreError::Backend("redis: change notices: timed out".into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_kind_words_are_notices() {
        for c in Change::ALL {
            assert_eq!(Change::parse(c.word().as_bytes()), Some(c));
        }
        for garbage in [
            &b""[..],
            b"KEYS",
            b"keys ",
            b" keys",
            b"keys\0",
            b"grants:123",
            b"\xff\xfe",
            b"clientsclients",
        ] {
            assert_eq!(Change::parse(garbage), None, "{garbage:?}");
        }
    }
}
