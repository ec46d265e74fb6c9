//! Resources: `demo://readme` for the demo, and the `test://` fixtures the conformance suite
//! reads (static text, static binary, a template, a subscribable resource).

use rmcp::ErrorData;
use rmcp::model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate};
use serde_json::json;

use crate::media::RED_PIXEL_PNG;
use crate::profile::Profile;

const README_URI: &str = "demo://readme";
const README: &str = "\
# mcpgate demo upstream

This MCP server sits behind mcpgate so you can watch the gateway work.

Tools:
- `echo` {text}: returns the text unchanged.
- `add` {a, b}: returns the sum.
- `slow` {steps, delay_ms}: reports progress after each step.
- `ask_name`: asks you for your name (elicitation) and greets you.
- `summarize` {text}: asks your client's model for a summary (sampling).
- `inspect`: shows the arguments and HTTP headers the call arrived with.
- `crash`: exits the server (the gateway restarts stdio upstreams).

Prompt: `greeting` {name}.
";

const TEMPLATE: &str = "test://template/{id}/data";
const TEMPLATE_PREFIX: &str = "test://template/";
const TEMPLATE_SUFFIX: &str = "/data";

pub(crate) fn list(profile: Profile) -> Vec<Resource> {
    let mut resources = vec![
        Resource::new(README_URI, "readme")
            .with_title("About this demo server")
            .with_description("What the demo upstream offers and how to try it")
            .with_mime_type("text/markdown"),
    ];
    if profile.includes_conformance() {
        resources.extend([
            Resource::new("test://static-text", "static-text")
                .with_title("Static Text Resource")
                .with_description("A static text resource for testing")
                .with_mime_type("text/plain"),
            Resource::new("test://static-binary", "static-binary")
                .with_title("Static Binary Resource")
                .with_description("A static binary resource (image) for testing")
                .with_mime_type("image/png"),
            Resource::new("test://watched-resource", "watched-resource")
                .with_title("Watched Resource")
                .with_description("A resource clients can subscribe to")
                .with_mime_type("text/plain"),
        ]);
    }
    resources
}

pub(crate) fn templates(profile: Profile) -> Vec<ResourceTemplate> {
    if !profile.includes_conformance() {
        return Vec::new();
    }
    vec![
        ResourceTemplate::new(TEMPLATE, "template")
            .with_title("Resource Template")
            .with_description("A resource template with parameter substitution")
            .with_mime_type("application/json"),
    ]
}

pub(crate) fn read(profile: Profile, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    let contents = match uri {
        README_URI => ResourceContents::text(README, uri).with_mime_type("text/markdown"),
        _ if !profile.includes_conformance() => return Err(not_found(uri)),
        "test://static-text" => ResourceContents::text("This is the content of the static text resource.", uri),
        "test://static-binary" => ResourceContents::blob(RED_PIXEL_PNG, uri).with_mime_type("image/png"),
        "test://watched-resource" => ResourceContents::text("Watched resource content", uri),
        _ => match template_id(uri) {
            Some(id) => ResourceContents::text(
                json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") }).to_string(),
                uri,
            )
            .with_mime_type("application/json"),
            None => return Err(not_found(uri)),
        },
    };
    Ok(ReadResourceResult::new(vec![contents]))
}

/// The `{id}` of `test://template/{id}/data`: one non-empty path segment.
fn template_id(uri: &str) -> Option<&str> {
    let id = uri.strip_prefix(TEMPLATE_PREFIX)?.strip_suffix(TEMPLATE_SUFFIX)?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

fn not_found(uri: &str) -> ErrorData {
    ErrorData::resource_not_found(format!("no resource `{uri}`"), Some(json!({ "uri": uri })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_ids_are_one_segment() {
        assert_eq!(template_id("test://template/123/data"), Some("123"));
        assert_eq!(template_id("test://template//data"), None);
        assert_eq!(template_id("test://template/a/b/data"), None);
        assert_eq!(template_id("test://template/123"), None);
    }

    #[test]
    fn conformance_fixtures_are_hidden_in_the_demo_profile() {
        assert!(read(Profile::Demo, "demo://readme").is_ok());
        assert!(read(Profile::Demo, "test://static-text").is_err());
        assert!(read(Profile::Conformance, "test://template/7/data").is_ok());
    }
}
