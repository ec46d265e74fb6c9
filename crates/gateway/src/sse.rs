//! Server-sent events framing for MCP messages. A JSON-RPC message serialized by serde or read as
//! one stdio line never contains a raw newline, so each message is exactly one `data:` line.

use bytes::{BufMut, Bytes, BytesMut};

pub const CONTENT_TYPE: &str = "text/event-stream";

pub fn event(json: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(json.len() + 24);
    b.put_slice(b"event: message\ndata: ");
    b.put_slice(json);
    b.put_slice(b"\n\n");
    b.freeze()
}

pub fn keep_alive() -> Bytes {
    Bytes::from_static(b": keep-alive\n\n")
}
