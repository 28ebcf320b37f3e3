//! Validation of tool arguments against a tool's input schema before
//! anything is sent upstream, by the `jsonschema` crate: every keyword of
//! JSON Schema Draft 2020-12 (the MCP default dialect), or Draft 7/6/4 and
//! 2019-09 when the schema's `$schema` names them. Each schema is compiled
//! once, when the catalog loads; a schema that does not compile refuses the
//! catalog, so no constraint is silently ignored. `$ref`s resolve only
//! inside the schema itself: nothing is fetched from the network or disk.

use std::fmt;

use jsonschema::{ValidationError, error::ValidationErrorKind};
use serde_json::{Map, Value};

/// A tool's compiled input schema.
pub struct ArgumentSchema {
    validator: jsonschema::Validator,
}

impl fmt::Debug for ArgumentSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ArgumentSchema")
    }
}

/// Why a schema was refused: a message and the JSON pointer inside the
/// schema where the problem is (`""` for the top level).
#[derive(Debug)]
pub struct SchemaError {
    pub pointer: String,
    pub message: String,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "at {}: {}", self.pointer, self.message)
        }
    }
}

impl ArgumentSchema {
    /// Compiles `schema`, which must be an object schema at the top
    /// (MCP's `inputSchema` is always `type: "object"`), with `format`
    /// asserted for the formats the crate knows (unknown ones, such as
    /// OpenAPI's `int64` or `binary`, stay annotations).
    ///
    /// # Errors
    /// The schema is not an object schema, is not valid against its
    /// dialect's meta-schema, has a `$ref` that does not resolve inside it,
    /// or has a `pattern` that is not a valid regular expression.
    pub fn compile(schema: &Map<String, Value>) -> Result<ArgumentSchema, SchemaError> {
        if schema.get("type").and_then(Value::as_str) != Some("object") {
            return Err(SchemaError {
                pointer: "/type".into(),
                message: "the top level must be { type = \"object\", ... }".into(),
            });
        }
        let value = Value::Object(schema.clone());
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .should_ignore_unknown_formats(true)
            .build(&value)
            .map_err(|e| SchemaError {
                pointer: e.instance_path().to_string(),
                message: e.to_string(),
            })?;
        Ok(ArgumentSchema { validator })
    }

    /// Validates `args`; the error names the first offending argument by
    /// its path (`tags[0]`, `address.city`), or `arguments` for the whole.
    pub fn validate(&self, args: &Value) -> Result<(), String> {
        match self.validator.iter_errors(args).next() {
            None => Ok(()),
            Some(error) => Err(describe(&error)),
        }
    }
}

/// `/a/0/b` as `a[0].b`: how people write a path into arguments.
fn argument_path(error: &ValidationError<'_>) -> String {
    let mut out = String::new();
    for segment in error.instance_path().segments() {
        match segment {
            jsonschema::paths::LocationSegment::Index(i) => out.push_str(&format!("[{i}]")),
            jsonschema::paths::LocationSegment::Property(p) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&p);
            }
        }
    }
    out
}

fn join(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_owned()
    } else {
        format!("{at}.{name}")
    }
}

fn describe(error: &ValidationError<'_>) -> String {
    let at = argument_path(error);
    let name = if at.is_empty() { "arguments" } else { &at };
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let property = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            format!("{} is required", join(&at, &property))
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            let first = unexpected.first().map(String::as_str).unwrap_or("?");
            format!("{} is not an accepted argument", join(&at, first))
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                jsonschema::error::TypeKind::Single(t) => t.to_string(),
                jsonschema::error::TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            format!("{name} must be of type {expected}")
        }
        ValidationErrorKind::Enum { options } => format!("{name} must be one of {options}"),
        ValidationErrorKind::Constant { expected_value } => {
            format!("{name} must be {expected_value}")
        }
        ValidationErrorKind::Minimum { limit } => format!("{name} must be at least {limit}"),
        ValidationErrorKind::Maximum { limit } => format!("{name} must be at most {limit}"),
        ValidationErrorKind::MinLength { limit } => {
            format!("{name} must be at least {limit} characters")
        }
        ValidationErrorKind::MaxLength { limit } => {
            format!("{name} must be at most {limit} characters")
        }
        ValidationErrorKind::MinItems { limit } => {
            format!("{name} must have at least {limit} items")
        }
        ValidationErrorKind::MaxItems { limit } => {
            format!("{name} must have at most {limit} items")
        }
        ValidationErrorKind::Format { format } => format!("{name} must be a valid {format}"),
        ValidationErrorKind::Pattern { pattern } => {
            format!("{name} must match the pattern {pattern}")
        }
        _ => format!("{name}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(schema: Value) -> ArgumentSchema {
        ArgumentSchema::compile(schema.as_object().unwrap()).unwrap()
    }

    #[test]
    fn errors_name_the_bad_field() {
        let schema = compile(json!({
            "type": "object",
            "properties": {
                "id": { "type": "string", "minLength": 1 },
                "limit": { "type": "integer", "minimum": 1, "maximum": 100 },
                "tags": { "type": "array", "items": { "type": "string" } },
                "status": { "enum": ["open", "closed"] }
            },
            "required": ["id"],
            "additionalProperties": false
        }));
        let ok = json!({ "id": "a", "limit": 5, "tags": ["x"], "status": "open" });
        assert!(schema.validate(&ok).is_ok());
        assert_eq!(schema.validate(&json!({})).unwrap_err(), "id is required");
        assert_eq!(
            schema
                .validate(&json!({ "id": "a", "limit": 500 }))
                .unwrap_err(),
            "limit must be at most 100"
        );
        assert_eq!(
            schema
                .validate(&json!({ "id": "a", "tags": [1] }))
                .unwrap_err(),
            "tags[0] must be of type string"
        );
        assert_eq!(
            schema
                .validate(&json!({ "id": "a", "extra": 1 }))
                .unwrap_err(),
            "extra is not an accepted argument"
        );
        assert!(
            schema
                .validate(&json!({ "id": "a", "status": "x" }))
                .unwrap_err()
                .starts_with("status must be one of")
        );
    }

    #[test]
    fn each_keyword_family_is_enforced() {
        let schema = compile(json!({
            "type": "object",
            "$defs": {
                "Node": {
                    "type": "object",
                    "properties": {
                        "name": { "type": "string", "pattern": "^[a-z]+$" },
                        "children": { "type": "array", "items": { "$ref": "#/$defs/Node" } }
                    },
                    "required": ["name"]
                }
            },
            "properties": {
                "tree": { "$ref": "#/$defs/Node" },
                "email": { "type": "string", "format": "email" },
                "when": { "type": "string", "format": "date-time" },
                "size": { "type": "integer", "format": "int64" },
                "kind": { "oneOf": [{ "const": "a" }, { "const": "b" }] },
                "either": { "anyOf": [{ "type": "integer" }, { "type": "null" }] },
                "both": { "allOf": [{ "minimum": 1 }, { "multipleOf": 2 }] },
                "matrix": { "type": "array", "items": { "type": "array", "items": { "type": "number" }, "maxItems": 2 } }
            }
        }));
        let bad = [
            (
                json!({ "tree": { "name": "a", "children": [{ "name": "B" }] } }),
                "tree.children[0].name",
            ),
            (
                json!({ "tree": { "children": [] } }),
                "tree.name is required",
            ),
            (
                json!({ "email": "not an email" }),
                "email must be a valid email",
            ),
            (
                json!({ "when": "yesterday" }),
                "when must be a valid date-time",
            ),
            (json!({ "kind": "c" }), "kind"),
            (json!({ "either": "x" }), "either"),
            (json!({ "both": 3 }), "both"),
            (
                json!({ "matrix": [[1, 2, 3]] }),
                "matrix[0] must have at most 2 items",
            ),
            (
                json!({ "matrix": [["x"]] }),
                "matrix[0][0] must be of type number",
            ),
        ];
        for (args, expected) in bad {
            let err = schema.validate(&args).unwrap_err();
            assert!(err.contains(expected), "{args}: {err}");
        }
        let good = json!({
            "tree": { "name": "a", "children": [{ "name": "b", "children": [] }] },
            "email": "a@example.com", "when": "2026-01-01T00:00:00Z", "size": 5,
            "kind": "a", "either": null, "both": 4, "matrix": [[1.5, 2]]
        });
        assert_eq!(schema.validate(&good), Ok(()));
    }

    #[test]
    fn draft_4_is_used_when_the_schema_says_so() {
        // Draft 4's boolean exclusiveMinimum is an error under 2020-12.
        let schema = json!({
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "object",
            "properties": { "n": { "type": "number", "minimum": 1, "exclusiveMinimum": true } }
        });
        let schema = compile(schema);
        assert!(schema.validate(&json!({ "n": 1 })).is_err());
        assert!(schema.validate(&json!({ "n": 2 })).is_ok());
    }

    #[test]
    fn schemas_that_do_not_compile_are_refused_with_a_pointer() {
        let err = ArgumentSchema::compile(
            json!({ "type": "object", "properties": { "a": { "type": "strin" } } })
                .as_object()
                .unwrap(),
        )
        .unwrap_err();
        assert_eq!(err.pointer, "/properties/a/type", "{err}");
        let err = ArgumentSchema::compile(
            json!({ "type": "object", "properties": { "a": { "$ref": "#/$defs/missing" } } })
                .as_object()
                .unwrap(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        let err =
            ArgumentSchema::compile(json!({ "type": "array" }).as_object().unwrap()).unwrap_err();
        assert_eq!(err.pointer, "/type");
    }
}
