//! Prompts and argument completion: `greeting` for the demo, the `test_*` prompts the
//! conformance suite gets, and `completion/complete` suggestions for their arguments.

use rmcp::ErrorData;
use rmcp::model::{
    ArgumentInfo, ContentBlock, GetPromptResult, JsonObject, Prompt, PromptArgument, PromptMessage, Reference,
    ResourceContents, Role,
};
use serde_json::Value;

use crate::media::RED_PIXEL_PNG;
use crate::profile::Profile;

/// Suggestions offered for the `name` argument of `greeting`.
const NAMES: [&str; 5] = ["Ada", "Alan", "Barbara", "Grace", "Linus"];
/// Suggestions for `test_prompt_with_arguments` (the values the suite's docs use).
const WORDS: [&str; 3] = ["paris", "park", "party"];
/// Suggestions for the `{id}` of the `test://template/{id}/data` template.
const IDS: [&str; 4] = ["1", "2", "3", "123"];

fn argument(name: &str, description: &str) -> PromptArgument {
    PromptArgument::new(name)
        .with_description(description)
        .with_required(true)
}

pub(crate) fn list(profile: Profile) -> Vec<Prompt> {
    let mut prompts = vec![
        Prompt::new(
            "greeting",
            Some("Asks the model to greet someone by name"),
            Some(vec![argument("name", "Who to greet")]),
        )
        .with_title("Greeting"),
    ];
    if profile.includes_conformance() {
        prompts.extend([
            Prompt::new("test_simple_prompt", Some("A simple prompt without arguments"), None)
                .with_title("Simple Test Prompt"),
            Prompt::new(
                "test_prompt_with_arguments",
                Some("A prompt with required arguments"),
                Some(vec![
                    argument("arg1", "First test argument"),
                    argument("arg2", "Second test argument"),
                ]),
            )
            .with_title("Prompt With Arguments"),
            Prompt::new(
                "test_prompt_with_embedded_resource",
                Some("A prompt that includes an embedded resource"),
                Some(vec![argument("resourceUri", "URI of the resource to embed")]),
            )
            .with_title("Prompt With Embedded Resource"),
            Prompt::new(
                "test_prompt_with_image",
                Some("A prompt that includes image content"),
                None,
            )
            .with_title("Prompt With Image"),
        ]);
    }
    prompts
}

pub(crate) fn get(profile: Profile, name: &str, arguments: Option<JsonObject>) -> Result<GetPromptResult, ErrorData> {
    let arguments = arguments.unwrap_or_default();
    let messages = match name {
        "greeting" => {
            let who = required(name, &arguments, "name")?;
            vec![PromptMessage::new_text(
                Role::User,
                format!("Please greet {who} warmly, in one sentence."),
            )]
        }
        _ if !profile.includes_conformance() => return Err(unknown_prompt(name)),
        "test_simple_prompt" => vec![PromptMessage::new_text(
            Role::User,
            "This is a simple prompt for testing.",
        )],
        "test_prompt_with_arguments" => {
            let arg1 = required(name, &arguments, "arg1")?;
            let arg2 = required(name, &arguments, "arg2")?;
            vec![PromptMessage::new_text(
                Role::User,
                format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"),
            )]
        }
        "test_prompt_with_embedded_resource" => {
            let uri = required(name, &arguments, "resourceUri")?;
            vec![
                PromptMessage::new(
                    Role::User,
                    ContentBlock::resource(ResourceContents::text("Embedded resource content for testing.", uri)),
                ),
                PromptMessage::new_text(Role::User, "Please process the embedded resource above."),
            ]
        }
        "test_prompt_with_image" => vec![
            PromptMessage::new(Role::User, ContentBlock::image(RED_PIXEL_PNG, "image/png")),
            PromptMessage::new_text(Role::User, "Please analyze the image above."),
        ],
        _ => return Err(unknown_prompt(name)),
    };
    Ok(GetPromptResult::new(messages))
}

/// A required string argument of a prompt; missing or non-string is `invalid_params`.
fn required<'a>(prompt: &str, arguments: &'a JsonObject, field: &str) -> Result<&'a str, ErrorData> {
    arguments
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| ErrorData::invalid_params(format!("prompt `{prompt}` needs a string argument `{field}`"), None))
}

fn unknown_prompt(name: &str) -> ErrorData {
    ErrorData::invalid_params(format!("unknown prompt `{name}`"), None)
}

/// `completion/complete`: the known values for that argument that start with what the user typed
/// (case-insensitively). Unknown references get no suggestions rather than an error, which is
/// what completion UIs expect while the user is still typing.
pub(crate) fn complete(profile: Profile, reference: &Reference, argument: &ArgumentInfo) -> Vec<String> {
    let candidates: &[&str] = match reference {
        Reference::Prompt(prompt) => match (prompt.name.as_str(), argument.name.as_str()) {
            ("greeting", "name") => &NAMES,
            ("test_prompt_with_arguments", "arg1" | "arg2") if profile.includes_conformance() => &WORDS,
            _ => &[],
        },
        Reference::Resource(resource) => match (resource.uri.as_str(), argument.name.as_str()) {
            ("test://template/{id}/data", "id") if profile.includes_conformance() => &IDS,
            _ => &[],
        },
        // Reference is non-exhaustive: a kind of reference added later has no suggestions.
        _ => &[],
    };
    let typed = argument.value.to_lowercase();
    candidates
        .iter()
        .filter(|candidate| candidate.to_lowercase().starts_with(&typed))
        .map(|candidate| (*candidate).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_filters_by_prefix() {
        let values = complete(
            Profile::Demo,
            &Reference::for_prompt("greeting"),
            &ArgumentInfo::new("name", "a"),
        );
        assert_eq!(values, ["Ada", "Alan"]);
    }

    #[test]
    fn prompts_substitute_arguments_and_reject_missing_ones() {
        let mut args = JsonObject::new();
        args.insert("arg1".into(), "x1".into());
        assert!(get(Profile::Conformance, "test_prompt_with_arguments", Some(args.clone())).is_err());
        args.insert("arg2".into(), "x2".into());
        let result = get(Profile::Conformance, "test_prompt_with_arguments", Some(args));
        let text = result.ok().and_then(|r| serde_json::to_string(&r.messages).ok());
        assert!(text.is_some_and(|t| t.contains("x1") && t.contains("x2")));
        assert!(get(Profile::Demo, "test_simple_prompt", None).is_err());
    }
}
