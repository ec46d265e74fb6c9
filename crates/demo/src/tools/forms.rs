//! The elicitation forms the tools send, written as the JSON the client receives.
//!
//! The conformance suite checks these schemas keyword by keyword (defaults, the five enum
//! shapes), so they are spelled out as JSON and then parsed into rmcp's typed schema, which
//! refuses anything the spec does not allow in a form.

use rmcp::ErrorData;
use rmcp::model::{ElicitRequestParams, ElicitationSchema};
use serde_json::{Value, json};

/// A form-mode `elicitation/create` request.
fn form(message: &str, schema: Value) -> Result<ElicitRequestParams, ErrorData> {
    let requested_schema: ElicitationSchema = serde_json::from_value(schema)
        .map_err(|error| ErrorData::internal_error(format!("built-in elicitation form is invalid: {error}"), None))?;
    Ok(ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: message.to_owned(),
        requested_schema,
    })
}

/// `ask_name`: one required string.
pub(super) fn name() -> Result<ElicitRequestParams, ErrorData> {
    form(
        "What is your name?",
        json!({
            "type": "object",
            "properties": {
                "name": {
                    "type": "string",
                    "title": "Name",
                    "description": "What should the demo call you?",
                    "minLength": 1
                }
            },
            "required": ["name"]
        }),
    )
}

/// `test_elicitation`: the two fields the suite's client answers with.
pub(super) fn user_details(message: &str) -> Result<ElicitRequestParams, ErrorData> {
    form(
        message,
        json!({
            "type": "object",
            "properties": {
                "username": { "type": "string", "description": "User's response" },
                "email": { "type": "string", "description": "User's email address" }
            },
            "required": ["username", "email"]
        }),
    )
}

/// `test_elicitation_sep1034_defaults`: a default for every primitive type (SEP-1034).
pub(super) fn with_defaults() -> Result<ElicitRequestParams, ErrorData> {
    form(
        "Please review and update the form fields with defaults",
        json!({
            "type": "object",
            "properties": {
                "name": { "type": "string", "description": "User name", "default": "John Doe" },
                "age": { "type": "integer", "description": "User age", "default": 30 },
                "score": { "type": "number", "description": "User score", "default": 95.5 },
                "status": {
                    "type": "string",
                    "description": "User status",
                    "enum": ["active", "inactive", "pending"],
                    "default": "active"
                },
                "verified": {
                    "type": "boolean",
                    "description": "Verification status",
                    "default": true
                }
            },
            "required": []
        }),
    )
}

/// `test_elicitation_sep1330_enums`: the five enum shapes of SEP-1330.
pub(super) fn enums() -> Result<ElicitRequestParams, ErrorData> {
    form(
        "Please select options from the enum fields",
        json!({
            "type": "object",
            "properties": {
                "untitledSingle": {
                    "type": "string",
                    "description": "Select one option",
                    "enum": ["option1", "option2", "option3"]
                },
                "titledSingle": {
                    "type": "string",
                    "description": "Select one option with titles",
                    "oneOf": [
                        { "const": "value1", "title": "First Option" },
                        { "const": "value2", "title": "Second Option" },
                        { "const": "value3", "title": "Third Option" }
                    ]
                },
                "legacyEnum": {
                    "type": "string",
                    "description": "Select one option (legacy)",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"]
                },
                "untitledMulti": {
                    "type": "array",
                    "description": "Select multiple options",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": { "type": "string", "enum": ["option1", "option2", "option3"] }
                },
                "titledMulti": {
                    "type": "array",
                    "description": "Select multiple options with titles",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": {
                        "anyOf": [
                            { "const": "value1", "title": "First Choice" },
                            { "const": "value2", "title": "Second Choice" },
                            { "const": "value3", "title": "Third Choice" }
                        ]
                    }
                }
            },
            "required": []
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed schema must not drop a keyword the suite checks.
    #[test]
    fn forms_survive_the_typed_round_trip() {
        let checks: [(Result<ElicitRequestParams, ErrorData>, &str, &str); 6] = [
            (name(), "/requestedSchema/properties/name/type", "string"),
            (with_defaults(), "/requestedSchema/properties/name/default", "John Doe"),
            (
                enums(),
                "/requestedSchema/properties/legacyEnum/enumNames/0",
                "Option One",
            ),
            (
                enums(),
                "/requestedSchema/properties/titledSingle/oneOf/0/const",
                "value1",
            ),
            (
                enums(),
                "/requestedSchema/properties/titledMulti/items/anyOf/2/title",
                "Third Choice",
            ),
            (
                enums(),
                "/requestedSchema/properties/untitledMulti/items/enum/1",
                "option2",
            ),
        ];
        for (params, pointer, expected) in checks {
            let params = params.ok();
            let wire = serde_json::to_value(params).ok();
            let found = wire.as_ref().and_then(|wire| wire.pointer(pointer));
            assert_eq!(found, Some(&json!(expected)), "{pointer}");
        }
        let wire = serde_json::to_value(with_defaults().ok()).ok();
        let defaults = wire.as_ref().map(|w| {
            (
                w.pointer("/requestedSchema/properties/age/default").cloned(),
                w.pointer("/requestedSchema/properties/score/default").cloned(),
                w.pointer("/requestedSchema/properties/verified/default").cloned(),
                w.pointer("/requestedSchema/properties/status/default").cloned(),
            )
        });
        assert_eq!(
            defaults,
            Some((
                Some(json!(30)),
                Some(json!(95.5)),
                Some(json!(true)),
                Some(json!("active"))
            ))
        );
    }
}
