//! Everything the server lists, built once per process and shared by every session.
//!
//! Listings are fixed for a profile, so building them per session (the HTTP transport creates a
//! handler per session, and per request for stateless protocol versions) would only burn CPU on
//! the gateway benchmark's hot path.

use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};

use crate::profile::Profile;
use crate::record::Recorder;
use crate::{differential, prompts, resources, tools};

/// The tools, resources, resource templates and prompts of one [`Profile`].
#[derive(Debug)]
pub(crate) struct Catalog {
    pub(crate) profile: Profile,
    pub(crate) tools: Vec<Tool>,
    pub(crate) resources: Vec<Resource>,
    pub(crate) resource_templates: Vec<ResourceTemplate>,
    pub(crate) prompts: Vec<Prompt>,
    /// Where executions are logged (`--record`); only the differential profile records.
    pub(crate) recorder: Option<Recorder>,
}

impl Catalog {
    pub(crate) fn new(profile: Profile, recorder: Option<Recorder>) -> Self {
        if profile == Profile::Differential {
            return Self {
                profile,
                tools: differential::tools(),
                resources: differential::resources(),
                resource_templates: Vec::new(),
                prompts: differential::prompts(),
                recorder,
            };
        }
        Self {
            profile,
            tools: tools::definitions(profile),
            resources: resources::list(profile),
            resource_templates: resources::templates(profile),
            prompts: prompts::list(profile),
            recorder,
        }
    }

    pub(crate) fn tool(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|tool| tool.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_profile_lists_exactly_the_demo_fixtures() {
        let catalog = Catalog::new(Profile::Demo, None);
        let names: Vec<&str> = catalog.tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(
            names,
            ["echo", "add", "slow", "ask_name", "summarize", "crash", "inspect"]
        );
        assert_eq!(catalog.resources.len(), 1);
        assert!(catalog.resource_templates.is_empty());
        assert_eq!(catalog.prompts.len(), 1);
    }

    #[test]
    fn conformance_profile_adds_the_suite_fixtures_and_keeps_the_demo_ones() {
        let catalog = Catalog::new(Profile::Conformance, None);
        for name in ["echo", "inspect", "test_simple_text", "json_schema_2020_12_tool"] {
            assert!(catalog.tool(name).is_some(), "missing tool {name}");
        }
        for tool in &catalog.tools {
            assert!(tool.description.is_some(), "{} has no description", tool.name);
            assert_eq!(tool.input_schema.get("type"), Some(&serde_json::json!("object")));
        }
    }

    #[test]
    fn differential_profile_lists_only_its_own_surface() {
        let catalog = Catalog::new(Profile::Differential, None);
        let names: Vec<&str> = catalog.tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, ["echo", "admin_tool", "denied_tool"]);
        let uris: Vec<&str> = catalog.resources.iter().map(|r| r.uri.as_str()).collect();
        assert_eq!(uris, ["test://public", "test://admin"]);
        let prompts: Vec<&str> = catalog.prompts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(prompts, ["greet", "admin_prompt"]);
    }
}
