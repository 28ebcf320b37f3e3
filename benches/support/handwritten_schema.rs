//! The hand-written JSON-Schema subset the gateway used before the
//! `jsonschema` crate, kept only so the bench can compare the two.
#![allow(dead_code)]

use serde_json::{Map, Value};

const KEYWORDS: [&str; 19] = [
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "description",
    "title",
    "default",
    "format",
    "examples",
    "$schema",
];

/// Checks that a schema only uses supported keywords and is an object schema at the top.
pub fn check_schema(schema: &Map<String, Value>) -> Result<(), String> {
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err("the top level must be { type = \"object\", ... }".into());
    }
    check_node(schema, "")
}

fn check_node(schema: &Map<String, Value>, at: &str) -> Result<(), String> {
    for (key, value) in schema {
        if !KEYWORDS.contains(&key.as_str()) {
            return Err(format!("keyword {key:?}{} is not supported", location(at)));
        }
        match key.as_str() {
            "properties" => {
                let props = value
                    .as_object()
                    .ok_or(format!("properties{} must be a table", location(at)))?;
                for (name, sub) in props {
                    let sub = sub
                        .as_object()
                        .ok_or(format!("property {name} must be a table"))?;
                    check_node(sub, &format!("{at}/{name}"))?;
                }
            }
            "items" => {
                let sub = value
                    .as_object()
                    .ok_or(format!("items{} must be a table", location(at)))?;
                check_node(sub, &format!("{at}/items"))?;
            }
            "additionalProperties" if !value.is_boolean() => {
                return Err(format!(
                    "additionalProperties{} must be true or false",
                    location(at)
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn location(at: &str) -> String {
    if at.is_empty() {
        String::new()
    } else {
        format!(" at {at}")
    }
}

/// Validates `value` against `schema`; the error names the offending field.
pub fn validate(schema: &Map<String, Value>, value: &Value) -> Result<(), String> {
    validate_at(schema, value, "")
}

fn field(at: &str) -> &str {
    if at.is_empty() {
        "arguments"
    } else {
        at.trim_start_matches('.')
    }
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => {
            value.as_i64().is_some()
                || value.as_u64().is_some()
                || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}

fn validate_at(schema: &Map<String, Value>, value: &Value, at: &str) -> Result<(), String> {
    let name = field(at);
    match schema.get("type") {
        Some(Value::String(t)) if !type_matches(t, value) => {
            return Err(format!("{name} must be of type {t}"));
        }
        Some(Value::Array(types))
            if !types
                .iter()
                .filter_map(Value::as_str)
                .any(|t| type_matches(t, value)) =>
        {
            return Err(format!("{name} has the wrong type"));
        }
        _ => {}
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        return Err(format!(
            "{name} must be one of {}",
            Value::Array(options.clone())
        ));
    }
    if let Some(expected) = schema.get("const")
        && expected != value
    {
        return Err(format!("{name} must be {expected}"));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            return Err(format!("{name} must be at least {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            return Err(format!("{name} must be at most {max}"));
        }
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && len < min
        {
            return Err(format!("{name} must be at least {min} characters"));
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && len > max
        {
            return Err(format!("{name} must be at most {max} characters"));
        }
    }
    if let Some(items) = value.as_array() {
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
            && (items.len() as u64) < min
        {
            return Err(format!("{name} must have at least {min} items"));
        }
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
            && (items.len() as u64) > max
        {
            return Err(format!("{name} must have at most {max} items"));
        }
        if let Some(item_schema) = schema.get("items").and_then(Value::as_object) {
            for (i, item) in items.iter().enumerate() {
                validate_at(item_schema, item, &format!("{at}[{i}]"))?;
            }
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(required) {
                return Err(format!(
                    "{} is required",
                    field(&format!("{at}.{required}"))
                ));
            }
        }
        for (key, sub) in object {
            match properties
                .and_then(|p| p.get(key))
                .and_then(Value::as_object)
            {
                Some(sub_schema) => validate_at(sub_schema, sub, &format!("{at}.{key}"))?,
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!(
                        "{} is not an accepted argument",
                        field(&format!("{at}.{key}"))
                    ));
                }
                None => {}
            }
        }
    }
    Ok(())
}
