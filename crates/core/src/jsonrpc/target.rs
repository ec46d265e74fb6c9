//! The target of a message: the tool, resource or prompt it acts on, read strictly from `params`
//! for every method that names one, plus the `_meta.progressToken` the gateway also reads. This is
//! what policy rules match against, so a target that cannot be read is an error, never "none".

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

use super::error::ParseError;
use super::raw::{is_object, present, string, valid_id};

/// What a message's target names: policy rules for tools, resources and prompts match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Tool,
    Resource,
    Prompt,
}

/// Longest target (tool name, URI, prompt name) the gateway accepts, in bytes.
pub const MAX_TARGET_BYTES: usize = 4096;

/// The members of `params` that name a target or that the gateway reads; the rest pass through.
#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    name: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    uri: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    arguments: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present", rename = "_meta")]
    meta: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present", rename = "ref")]
    reference: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present", rename = "type")]
    kind: Option<&'a RawValue>,
}

/// What the gateway decides on inside `params`.
#[derive(Default)]
pub(super) struct ReadParams<'a> {
    pub(super) target: Option<(TargetKind, Cow<'a, str>)>,
    pub(super) progress_token: Option<&'a RawValue>,
}

/// Reads the members of `params` (already checked to be an object, or absent) that the gateway
/// decides on for `method`, strictly.
pub(super) fn read_params<'a>(method: &str, params: Option<&'a RawValue>) -> Result<ReadParams<'a>, ParseError> {
    let needs = target_of(method);
    let Some(raw) = params else {
        return match needs {
            Some(_) => Err(ParseError::Params(missing_target(method))),
            None => Ok(ReadParams::default()),
        };
    };
    let p: Params<'a> =
        serde_json::from_str(raw.get()).map_err(|_| ParseError::Params("\"params\" must be an object"))?;
    let mut read = ReadParams::default();
    if let Some(meta) = p.meta {
        read.progress_token = progress_token(meta)?;
    }
    let bad = || ParseError::Params(missing_target(method));
    read.target = match needs {
        None => None,
        Some(Needs::Name(kind)) => {
            if let Some(args) = p.arguments
                && !is_object(args)
            {
                return Err(ParseError::Params("\"arguments\" must be an object"));
            }
            Some((kind, p.name.and_then(string).ok_or_else(bad)?))
        }
        Some(Needs::Uri) => Some((TargetKind::Resource, p.uri.and_then(string).ok_or_else(bad)?)),
        Some(Needs::Ref) => {
            let r = p.reference.filter(|r| is_object(r)).ok_or_else(bad)?;
            let r: Params<'a> = serde_json::from_str(r.get()).map_err(|_| bad())?;
            match r.kind.and_then(string).as_deref() {
                Some("ref/prompt") => Some((TargetKind::Prompt, r.name.and_then(string).ok_or_else(bad)?)),
                Some("ref/resource") => Some((TargetKind::Resource, r.uri.and_then(string).ok_or_else(bad)?)),
                _ => return Err(bad()),
            }
        }
    };
    if read.target.as_ref().is_some_and(|(_, t)| t.len() > MAX_TARGET_BYTES) {
        return Err(ParseError::Params(
            "the target (tool name, URI or prompt name) is longer than 4096 bytes",
        ));
    }
    Ok(read)
}

enum Needs {
    /// `params.name`: tools and prompts.
    Name(TargetKind),
    /// `params.uri`: resources.
    Uri,
    /// `params.ref`: completion, for a prompt or a resource.
    Ref,
}

/// Which member names the target of `method`, for every method of the current MCP revisions
/// that acts on one.
fn target_of(method: &str) -> Option<Needs> {
    match method {
        "tools/call" => Some(Needs::Name(TargetKind::Tool)),
        "prompts/get" => Some(Needs::Name(TargetKind::Prompt)),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some(Needs::Uri),
        "completion/complete" => Some(Needs::Ref),
        _ => None,
    }
}

fn missing_target(method: &str) -> &'static str {
    match method {
        "tools/call" => "tools/call needs \"params.name\", a string",
        "prompts/get" => "prompts/get needs \"params.name\", a string",
        "completion/complete" => {
            "completion/complete needs \"params.ref\": {\"type\":\"ref/prompt\",\"name\":…} or {\"type\":\"ref/resource\",\"uri\":…}"
        }
        _ => "this method needs \"params.uri\", a string",
    }
}

fn progress_token(meta: &RawValue) -> Result<Option<&RawValue>, ParseError> {
    #[derive(Deserialize)]
    struct Meta<'b> {
        #[serde(borrow, rename = "progressToken", default, deserialize_with = "present")]
        token: Option<&'b RawValue>,
    }
    let bad = ParseError::Params("\"_meta\" must be an object whose \"progressToken\" is a string or an integer");
    if !is_object(meta) {
        return Err(bad);
    }
    let m: Meta<'_> = serde_json::from_str(meta.get()).map_err(|_| bad.clone())?;
    match m.token {
        Some(t) if !valid_id(t) => Err(bad),
        t => Ok(t),
    }
}
