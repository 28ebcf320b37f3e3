//! Per-call payload logs for upstreams with `log_payloads = true`: the
//! arguments and the result, with every field whose name matches a
//! `redact` glob (at any depth, case-insensitive) or is `writeOnly` in the
//! tool's schema replaced by `"[redacted]"`, each capped at 16 KiB.

use std::collections::HashSet;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde_json::{Map, Value};

/// The most of each of arguments and result that is stored, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;
const REDACTED: &str = "[redacted]";
/// Always redacted, whatever the catalog adds: names that carry secrets.
const ALWAYS: &[&str] = &[
    "*password*",
    "*passwd*",
    "*secret*",
    "*token*",
    "authorization",
    "cookie",
    "*api_key*",
    "*apikey*",
    "*api-key*",
    "*private_key*",
];

/// Which field names are never stored.
#[derive(Debug)]
pub struct Redaction(GlobSet);

impl Redaction {
    /// The built-in names plus `patterns` (globs such as `secret*`).
    ///
    /// # Errors
    /// A pattern that is not a valid glob, named in the message.
    pub fn new(patterns: &[String]) -> Result<Redaction, String> {
        let mut set = GlobSetBuilder::new();
        for p in ALWAYS
            .iter()
            .copied()
            .chain(patterns.iter().map(String::as_str))
        {
            let glob = GlobBuilder::new(p)
                .case_insensitive(true)
                .literal_separator(false)
                .build()
                .map_err(|e| format!("redact pattern {p:?}: {e}"))?;
            set.add(glob);
        }
        Ok(Redaction(set.build().map_err(|e| e.to_string())?))
    }

    fn hides(&self, name: &str, write_only: &HashSet<String>) -> bool {
        write_only.contains(name) || self.0.is_match(name)
    }

    /// `value` with hidden fields replaced, at any depth.
    pub fn apply(&self, value: &Value, write_only: &HashSet<String>) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = if self.hides(k, write_only) {
                            Value::String(REDACTED.into())
                        } else {
                            self.apply(v, write_only)
                        };
                        (k.clone(), v)
                    })
                    .collect::<Map<String, Value>>(),
            ),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.apply(v, write_only)).collect())
            }
            other => other.clone(),
        }
    }
}

/// Names of properties marked `writeOnly` anywhere in a schema (passwords
/// and the like that an API accepts but never shows): never stored.
pub fn write_only_names(schema: &Map<String, Value>) -> HashSet<String> {
    fn walk(value: &Value, out: &mut HashSet<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::Object(props)) = map.get("properties") {
                    for (name, sub) in props {
                        if sub.get("writeOnly") == Some(&Value::Bool(true)) {
                            out.insert(name.clone());
                        }
                    }
                }
                for v in map.values() {
                    walk(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = HashSet::new();
    walk(&Value::Object(schema.clone()), &mut out);
    out
}

/// `value` as JSON text of at most [`MAX_PAYLOAD_BYTES`], cut on a
/// character boundary and marked when cut.
pub fn capped(value: &Value) -> String {
    let mut text = value.to_string();
    if text.len() > MAX_PAYLOAD_BYTES {
        let mut cut = MAX_PAYLOAD_BYTES - 16;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("… [truncated]");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_at_any_depth_and_payloads_capped() {
        let r = Redaction::new(&["ssn".into(), "card_*".into()]).unwrap();
        let write_only = HashSet::from(["pin".to_owned()]);
        let got = r.apply(
            &json!({
                "name": "Ada",
                "Password": "x",
                "nested": [{ "access_token": "t", "card_number": "4111", "ssn": "1", "pin": 1, "ok": 2 }],
                "client_secret": "s"
            }),
            &write_only,
        );
        assert_eq!(
            got,
            json!({
                "name": "Ada",
                "Password": "[redacted]",
                "nested": [{ "access_token": "[redacted]", "card_number": "[redacted]", "ssn": "[redacted]", "pin": "[redacted]", "ok": 2 }],
                "client_secret": "[redacted]"
            })
        );
        let big = json!({ "text": "é".repeat(20_000) });
        let text = capped(&big);
        assert!(text.len() <= MAX_PAYLOAD_BYTES && text.ends_with("[truncated]"));
        assert_eq!(
            write_only_names(json!({ "type": "object", "properties": { "pw": { "type": "string", "writeOnly": true } } }).as_object().unwrap()),
            HashSet::from(["pw".to_owned()])
        );
    }
}
