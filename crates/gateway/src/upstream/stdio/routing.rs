//! Routing inside one stdio session: which client stream each message from the child belongs to.
//! Requests are sent to the child under gateway-chosen ids, so repeated or colliding client ids
//! can never cross; a response finds its caller by that id, progress by its token, and
//! server→client requests (elicitation, sampling, roots) go out on the stream of the call in
//! flight — the call they belong to.

use bytes::Bytes;
use serde_json::value::RawValue;
use std::collections::HashMap;
use tokio::sync::mpsc;

/// One item for a client stream.
#[derive(Debug)]
pub enum Out {
    /// A notification or server→client request, as JSON.
    Event(Bytes),
    /// The final response to the call, as JSON; the stream ends after it.
    Final(Bytes),
}

pub struct Pending {
    pub client_id: Box<RawValue>,
    pub tx: mpsc::UnboundedSender<Out>,
    pub progress_token: Option<String>,
}

#[derive(Default)]
pub struct Routing {
    pending: HashMap<u64, Pending>,
    progress: HashMap<String, u64>,
    /// The server stream a client opened with GET, if any.
    pub get_stream: Option<(u64, mpsc::UnboundedSender<Out>)>,
}

impl Routing {
    pub fn insert(&mut self, gid: u64, p: Pending) {
        if let Some(tok) = &p.progress_token {
            self.progress.insert(tok.clone(), gid);
        }
        self.pending.insert(gid, p);
    }

    pub fn remove(&mut self, gid: u64) -> Option<Pending> {
        let p = self.pending.remove(&gid)?;
        if let Some(tok) = &p.progress_token
            && self.progress.get(tok) == Some(&gid)
        {
            self.progress.remove(tok);
        }
        Some(p)
    }

    /// The gateway id of the call in flight whose client id is `client_id` (for cancellation).
    pub fn find_by_client_id(&self, client_id: &str) -> Option<u64> {
        self.pending
            .iter()
            .find(|(_, p)| p.client_id.get() == client_id)
            .map(|(gid, _)| *gid)
    }

    pub fn by_progress(&self, token: &str) -> Option<&mpsc::UnboundedSender<Out>> {
        let gid = self.progress.get(token)?;
        self.pending.get(gid).map(|p| &p.tx)
    }

    /// The stream of the most recent call still in flight, else the GET stream.
    pub fn current_stream(&self) -> Option<&mpsc::UnboundedSender<Out>> {
        self.pending
            .iter()
            .filter(|(_, p)| !p.tx.is_closed())
            .max_by_key(|(gid, _)| **gid)
            .map(|(_, p)| &p.tx)
            .or_else(|| self.get_stream.as_ref().map(|(_, tx)| tx))
    }

    pub fn get_stream(&self) -> Option<&mpsc::UnboundedSender<Out>> {
        self.get_stream.as_ref().map(|(_, tx)| tx)
    }

    /// Takes every call in flight, for failing them when the child dies.
    pub fn drain(&mut self) -> Vec<Pending> {
        self.progress.clear();
        self.pending.drain().map(|(_, p)| p).collect()
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}
