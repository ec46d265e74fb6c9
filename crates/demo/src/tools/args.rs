//! Reading tool arguments. Bad arguments are the caller's mistake, so they become JSON-RPC
//! `invalid_params` errors with a message naming the tool and the field — never a panic.

use rmcp::ErrorData;
use rmcp::model::JsonObject;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Deserializes the whole argument object into `T`.
pub(super) fn parse<T: DeserializeOwned>(tool: &str, args: JsonObject) -> Result<T, ErrorData> {
    serde_json::from_value(Value::Object(args))
        .map_err(|error| ErrorData::invalid_params(format!("invalid arguments for `{tool}`: {error}"), None))
}

/// Takes one required string argument out of the object without copying it.
pub(super) fn take_string(tool: &str, args: &mut JsonObject, field: &str) -> Result<String, ErrorData> {
    match args.remove(field) {
        Some(Value::String(value)) => Ok(value),
        Some(_) => Err(ErrorData::invalid_params(
            format!("`{tool}`: `{field}` must be a string"),
            None,
        )),
        None => Err(ErrorData::invalid_params(
            format!("`{tool}`: missing required argument `{field}`"),
            None,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> JsonObject {
        match value {
            Value::Object(map) => map,
            _ => JsonObject::new(),
        }
    }

    #[test]
    fn take_string_moves_the_value_out_and_rejects_other_types() {
        let mut args = object(json!({ "text": "hi", "n": 1 }));
        assert_eq!(take_string("echo", &mut args, "text").ok().as_deref(), Some("hi"));
        assert!(take_string("echo", &mut args, "text").is_err());
        assert!(take_string("echo", &mut args, "n").is_err());
    }

    #[test]
    fn parse_reports_the_tool_name() {
        #[derive(Debug, serde::Deserialize)]
        struct Numbers {
            #[allow(dead_code)]
            a: f64,
        }
        let error = parse::<Numbers>("add", object(json!({ "a": "x" }))).err();
        assert!(error.is_some_and(|e| e.message.contains("`add`")));
    }
}
