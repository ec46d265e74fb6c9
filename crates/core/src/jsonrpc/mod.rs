//! JSON-RPC reading: every message is read strictly and completely ([`read`]: strict JSON, no
//! duplicate keys, canonical bytes), then typed ([`Message::parse`]): `jsonrpc`, `id`, `method`,
//! `params` and, for every method that names a target (tool, resource, prompt), the target itself.
//! A message whose target cannot be read is refused, never treated as having none — the
//! gateway decides on exactly what the upstream will execute, and forwards the canonical bytes it
//! read.
//!
//! Where each step lives, lowest first:
//! - [`canonical`]: the strict JSON reader and its canonical re-serialization;
//! - `error`: [`ParseError`] and the JSON-RPC error [`code`]s;
//! - `raw`: how one member's raw JSON is read (present, object, string, id);
//! - `target`: the target and progress token inside `params` ([`TargetKind`]);
//! - `message`: [`read`], the envelope and [`Message`];
//! - `write`: response bodies and rewrites of a read message ([`with_id`], [`error_body`], …).

pub mod canonical;
mod error;
mod message;
mod raw;
mod target;
mod write;

pub use error::{ParseError, code};
pub use message::{Kind, Message, read};
pub use target::{MAX_TARGET_BYTES, TargetKind};
pub use write::{error_body, response_with_id, result_body, with_argument, with_id};
