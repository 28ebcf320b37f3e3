//! Resources and resource templates backed by REST routes: `resources/list`,
//! `resources/templates/list` and `resources/read` over GETs to an upstream.
//! A template's URI is an RFC 6570 level-1 template (`crm://contacts/{id}`):
//! each variable matches one non-empty run of characters up to the next
//! literal, never a `/`, and becomes one percent-encoded path segment of
//! the upstream route, under the same rules as tool path arguments.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::catalog::Upstream;
use crate::identity::scope::Scope;

/// One `[[resource]]` or `[[resource_template]]` entry.
#[derive(Debug)]
pub struct GatewayResource {
    /// The URI (a resource) or URI template (a template).
    pub uri: String,
    pub name: String,
    pub description: Option<String>,
    pub mime_type: Option<String>,
    pub upstream: Arc<Upstream>,
    /// Route under the upstream's base URL, e.g. `/contacts/{id}`.
    pub path: String,
    pub path_params: Vec<String>,
    /// Needed to list or read it; `mcp:read` unless the catalog says otherwise.
    pub scope: Scope,
    /// Whether `uri` is a template.
    pub template: bool,
}

impl GatewayResource {
    /// The template's variables bound by `uri`, when `uri` is this resource.
    pub fn matches(&self, uri: &str) -> Option<Map<String, Value>> {
        if !self.template {
            return (self.uri == uri).then(Map::new);
        }
        let mut values = Map::new();
        let mut rest = uri;
        let mut template = self.uri.as_str();
        loop {
            match template.find('{') {
                None => return (rest == template).then_some(values),
                Some(open) => {
                    let literal = &template[..open];
                    rest = rest.strip_prefix(literal)?;
                    let close = template[open..].find('}')? + open;
                    let name = &template[open + 1..close];
                    template = &template[close + 1..];
                    let end = match template.chars().next() {
                        None => rest.len(),
                        Some(_) => {
                            let next_literal =
                                &template[..template.find('{').unwrap_or(template.len())];
                            rest.find(next_literal)?
                        }
                    };
                    let raw = &rest[..end];
                    if raw.is_empty() || raw.contains('/') {
                        return None;
                    }
                    let value = percent_encoding::percent_decode_str(raw)
                        .decode_utf8()
                        .ok()?
                        .into_owned();
                    values.insert(name.to_owned(), Value::String(value));
                    rest = &rest[end..];
                }
            }
        }
    }
}

/// The variables of a URI template, in order.
pub fn template_variables(template: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').ok_or("has an unclosed {")? + open;
        let name = &rest[open + 1..close];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!(
                "{{{name}}}: only simple variables ({{name}}) are supported"
            ));
        }
        if rest[close + 1..].starts_with('{') {
            return Err("two variables need a literal between them".into());
        }
        names.push(name.to_owned());
        rest = &rest[close + 1..];
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(uri: &str, template: bool) -> GatewayResource {
        GatewayResource {
            uri: uri.into(),
            name: "r".into(),
            description: None,
            mime_type: None,
            upstream: Arc::new(Upstream {
                name: "u".into(),
                base_url: "http://127.0.0.1/".parse().unwrap(),
                timeout: std::time::Duration::from_secs(1),
                audience: "a".into(),
                max_response_bytes: 1,
                headers: vec![],
                log_payloads: false,
                redact: crate::gateway::payload_log::Redaction::new(&[]).unwrap(),
            }),
            path: "/".into(),
            path_params: vec![],
            scope: Scope::McpRead,
            template,
        }
    }

    #[test]
    fn templates_bind_one_segment_per_variable() {
        let r = resource("crm://contacts/{id}/notes/{note}", true);
        let got = r.matches("crm://contacts/a%20b/notes/7").unwrap();
        assert_eq!(got["id"], "a b");
        assert_eq!(got["note"], "7");
        assert!(r.matches("crm://contacts/a/b/notes/7").is_none());
        assert!(r.matches("crm://contacts//notes/7").is_none());
        assert!(r.matches("crm://deals/1/notes/7").is_none());
        let fixed = resource("crm://pipeline", false);
        assert!(fixed.matches("crm://pipeline").is_some());
        assert!(fixed.matches("crm://pipeline/x").is_none());
    }
}
