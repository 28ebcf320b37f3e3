//! OpenAPI 3.0 and 3.1 documents turned into gateway tools: one tool per
//! operation, its input schema merging the path, query and header
//! parameters and the JSON request body, its output schema from the 2xx
//! response when that is an object.
//!
//! The document is read as a `serde_json::Value` (JSON, or YAML through
//! `serde_norway`) and walked here rather than deserialised into a typed
//! model: the typed crates each cover one version (`openapiv3` 3.0 only,
//! `oas3` 3.1 only), and real documents carry what the typed models refuse
//! (integer response codes from YAML, `nullable` in 3.1 documents, `$ref`
//! siblings, extension keys anywhere). Schemas are rewritten to JSON Schema
//! Draft 2020-12: `#/components/schemas/X` references become
//! `#/$defs/X` inside each tool's schema (so cycles stay references, never
//! unrolled), `nullable` becomes a `null` type, 3.0's boolean
//! `exclusiveMinimum`/`exclusiveMaximum` become numbers, and OpenAPI-only
//! keywords (`discriminator`, `xml`, `example`, …) are dropped.
//!
//! Security schemes are ignored on purpose: the upstream keeps receiving
//! Portcullis's identity headers and its configured service headers, never
//! the caller's credential, and header parameters that would carry one
//! (`Authorization`, `Cookie`, …) are not offered to callers.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::{identity::scope::Scope, mcp::policy::ScopePolicy};

use super::catalog::Method;

/// The longest tool name MCP clients accept.
pub const MAX_TOOL_NAME: usize = 64;
const MAX_DESCRIPTION: usize = 4000;
/// How deep a `$ref` outside `components/schemas` is inlined before it is
/// cut off (such references are rare; the cut-off stops a cycle).
const MAX_INLINE_DEPTH: usize = 32;

/// Headers a caller must never set: credentials, hop-by-hop and framing
/// headers, and the ones Portcullis sets itself.
const FORBIDDEN_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "accept",
];

/// How an operation's arguments are split between the URL, headers and body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Routing {
    /// (argument name, query parameter name).
    pub query: Vec<(String, String)>,
    /// (argument name, header name).
    pub headers: Vec<(String, String)>,
    pub body: BodyShape,
}

/// Where the request body comes from.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum BodyShape {
    #[default]
    None,
    /// The body object's properties are top-level arguments: every argument
    /// that is not a path, query or header parameter goes into the body.
    Spread { form: bool },
    /// The whole body is one argument of this name.
    Property { name: String, form: bool },
}

/// One operation made into a tool.
#[derive(Debug, Clone)]
pub struct Operation {
    /// The name a client sees: from `operationId` in snake case, or from the
    /// method and path; at most 64 of `[a-z0-9_-]`.
    pub name: String,
    /// What overrides and `--operation` match: the `operationId`, or
    /// `METHOD /path` when it has none.
    pub id: String,
    pub method: Method,
    /// The document's path with any `#fragment` removed.
    pub path: String,
    pub path_params: Vec<String>,
    pub description: String,
    pub tags: Vec<String>,
    pub input_schema: Map<String, Value>,
    pub output_schema: Option<Map<String, Value>>,
    pub routing: Routing,
    pub scope: Scope,
    pub destructive: bool,
}

/// Which operations to take from a document.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Only operations with one of these tags (all when empty).
    pub include_tags: Vec<String>,
    /// Paths matching one of these globs are left out.
    pub exclude_paths: Vec<String>,
    /// Only these operations, by `operationId` or `METHOD /path` (all when empty).
    pub operations: Vec<String>,
}

/// What an import produced, and what it left out and why.
#[derive(Debug, Default)]
pub struct Imported {
    pub title: String,
    pub operations: Vec<Operation>,
    /// (operation id, reason) for operations that could not become tools.
    pub skipped: Vec<(String, String)>,
}

/// Parses a document's text: JSON when it starts with `{`, YAML otherwise.
///
/// # Errors
/// The text is neither, or is not an OpenAPI 3.x document.
pub fn parse_document(text: &str) -> Result<Value, String> {
    let doc: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?
    } else {
        let yaml: serde_norway::Value =
            serde_norway::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
        yaml_to_json(yaml)?
    };
    let version = doc.get("openapi").and_then(Value::as_str).unwrap_or("");
    if !version.starts_with("3.") {
        return Err(format!(
            "not an OpenAPI 3.x document (openapi = {:?}); Swagger 2.0 must be converted first",
            doc.get("openapi").or(doc.get("swagger"))
        ));
    }
    Ok(doc)
}

/// YAML to JSON with non-string keys (`200:` in responses) as strings.
fn yaml_to_json(yaml: serde_norway::Value) -> Result<Value, String> {
    use serde_norway::Value as Y;
    Ok(match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).map_err(|e| e.to_string())?,
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(yaml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    Y::Null => "null".to_owned(),
                    other => return Err(format!("unsupported mapping key {other:?}")),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => yaml_to_json(tagged.value)?,
    })
}

const METHODS: [(&str, Method); 6] = [
    ("get", Method::Get),
    ("put", Method::Put),
    ("post", Method::Post),
    ("delete", Method::Delete),
    ("patch", Method::Patch),
    ("head", Method::Head),
];

/// Every operation of `doc` that `filter` selects, as tools.
///
/// # Errors
/// An `x-mcp-scope` that is not an MCP scope, or a `--exclude-path` glob
/// that does not parse. Operations that cannot be forwarded (multipart or
/// binary bodies, `options`/`trace`) are listed in `skipped`, not errors.
pub fn import(doc: &Value, filter: &Filter) -> Result<Imported, String> {
    let excluded = {
        let mut set = globset::GlobSetBuilder::new();
        for glob in &filter.exclude_paths {
            set.add(globset::Glob::new(glob).map_err(|e| format!("exclude path {glob:?}: {e}"))?);
        }
        set.build().map_err(|e| e.to_string())?
    };
    let mut imported = Imported {
        title: doc
            .pointer("/info/title")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        ..Imported::default()
    };
    let mut taken: HashMap<String, String> = HashMap::new();
    let empty = Map::new();
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (raw_path, item) in paths {
        let Some(item) = resolve(doc, item).as_object() else {
            continue;
        };
        let path = raw_path.split('#').next().unwrap_or(raw_path).to_owned();
        let path = path.split('?').next().unwrap_or(&path).to_owned();
        if excluded.is_match(&path) {
            continue;
        }
        for (key, op) in item {
            let method = match METHODS.iter().find(|(m, _)| m == key) {
                Some((_, m)) => *m,
                None => {
                    if matches!(key.as_str(), "options" | "trace") {
                        imported.skipped.push((
                            format!("{} {raw_path}", key.to_uppercase()),
                            "OPTIONS and TRACE are not forwarded".into(),
                        ));
                    }
                    continue;
                }
            };
            let Some(op) = op.as_object() else { continue };
            let id = op
                .get("operationId")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{} {raw_path}", key.to_uppercase()));
            if !filter.operations.is_empty() && !filter.operations.contains(&id) {
                continue;
            }
            let tags: Vec<String> = op
                .get("tags")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            if !filter.include_tags.is_empty()
                && !tags.iter().any(|t| filter.include_tags.contains(t))
            {
                continue;
            }
            if op.get("x-mcp-hidden").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            match operation(doc, item, op, method, raw_path, &path, &id, tags)? {
                Ok(mut operation) => {
                    operation.name = unique_name(&operation.name, &id, &mut taken);
                    imported.operations.push(operation);
                }
                Err(reason) => imported.skipped.push((id, reason)),
            }
        }
    }
    Ok(imported)
}

/// A tool name for an operation; `taken` maps names to the id that took them.
fn unique_name(base: &str, id: &str, taken: &mut HashMap<String, String>) -> String {
    let name = if taken.contains_key(base) {
        shorten(base, id, true)
    } else {
        base.to_owned()
    };
    taken.insert(name.clone(), id.to_owned());
    name
}

/// `name` cut to 64 characters, ending in a hash of the operation id when
/// cut (or when `force`d, to part two operations that made the same name),
/// so the result is the same on every import and differs between operations.
fn shorten(name: &str, id: &str, force: bool) -> String {
    if name.len() <= MAX_TOOL_NAME && !force {
        return name.to_owned();
    }
    let hash = Sha256::digest(id.as_bytes());
    let suffix: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
    let keep = MAX_TOOL_NAME - suffix.len() - 1;
    let head = name[..name.len().min(keep)].trim_end_matches(['_', '-']);
    format!("{head}_{suffix}")
}

/// snake_case of an operation id or `method path`, in `[a-z0-9_-]`.
pub fn tool_name(id: &str, method: &str, path: &str, has_id: bool) -> String {
    let source = if has_id {
        id.to_owned()
    } else {
        format!("{method}_{path}")
    };
    let mut out = String::new();
    let mut prev: Option<char> = None;
    let chars: Vec<char> = source.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let boundary = match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next_lower,
                _ => false,
            };
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() || c == '-' {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
        prev = Some(c);
    }
    let out = out.trim_matches(['_', '-']).to_owned();
    let out = if out.is_empty() {
        "operation".to_owned()
    } else {
        out
    };
    shorten(&out, id, false)
}

#[allow(clippy::too_many_arguments)]
fn operation(
    doc: &Value,
    item: &Map<String, Value>,
    op: &Map<String, Value>,
    method: Method,
    raw_path: &str,
    path: &str,
    id: &str,
    tags: Vec<String>,
) -> Result<Result<Operation, String>, String> {
    let has_id = op.get("operationId").and_then(Value::as_str).is_some();
    let name = tool_name(id, method.as_str(), raw_path, has_id);
    let mut schemas = Schemas::new(doc, Mode::Input);

    // Path-level parameters, overridden by operation-level ones with the same (name, in).
    let mut params: Vec<Map<String, Value>> = Vec::new();
    for list in [item.get("parameters"), op.get("parameters")] {
        for p in list.and_then(Value::as_array).into_iter().flatten() {
            let Some(p) = resolve(doc, p).as_object() else {
                continue;
            };
            let key = |q: &Map<String, Value>| {
                (
                    q.get("name").cloned().unwrap_or_default(),
                    q.get("in").cloned().unwrap_or_default(),
                )
            };
            params.retain(|q| key(q) != key(p));
            params.push(p.clone());
        }
    }

    let path_params = placeholders(path);
    let mut properties = Map::new();
    let mut required: Vec<String> = Vec::new();
    let mut routing = Routing::default();
    for name in &path_params {
        properties.insert(name.clone(), json!({ "type": "string" }));
        required.push(name.clone());
    }
    for p in &params {
        let Some(wire) = p.get("name").and_then(Value::as_str) else {
            continue;
        };
        let location = p.get("in").and_then(Value::as_str).unwrap_or("");
        let schema = p
            .get("schema")
            .or_else(|| {
                p.get("content")
                    .and_then(Value::as_object)
                    .and_then(|c| c.values().next())
                    .and_then(|m| m.get("schema"))
            })
            .cloned()
            .unwrap_or_else(|| json!({}));
        let mut schema = schemas.convert(&schema, 0);
        if let (Some(d), Some(s)) = (
            p.get("description").and_then(Value::as_str),
            schema.as_object_mut(),
        ) && !s.contains_key("description")
        {
            s.insert("description".into(), Value::String(d.to_owned()));
        }
        let is_required = p.get("required").and_then(Value::as_bool) == Some(true);
        match location {
            "path" if path_params.iter().any(|n| n == wire) => {
                properties.insert(wire.to_owned(), schema);
            }
            "query" | "header" => {
                if location == "header"
                    && (FORBIDDEN_HEADERS.contains(&wire.to_ascii_lowercase().as_str())
                        || wire.to_ascii_lowercase().starts_with("x-portcullis-"))
                {
                    continue;
                }
                let mut arg = wire.to_owned();
                if properties.contains_key(&arg) {
                    arg = format!("{location}_{wire}");
                }
                if properties.contains_key(&arg) {
                    continue;
                }
                properties.insert(arg.clone(), schema);
                if is_required {
                    required.push(arg.clone());
                }
                if location == "query" {
                    routing.query.push((arg, wire.to_owned()));
                } else {
                    routing.headers.push((arg, wire.to_owned()));
                }
            }
            // Cookies would share the caller's session with the upstream.
            _ => {}
        }
    }

    if let Some(body) = op.get("requestBody") {
        let body = resolve(doc, body);
        let content = body.get("content").and_then(Value::as_object);
        let pick = content.and_then(|c| {
            c.iter()
                .find(|(t, _)| is_json(t))
                .map(|(_, m)| (m, false))
                .or_else(|| {
                    c.iter()
                        .find(|(t, _)| t.starts_with("application/x-www-form-urlencoded"))
                        .map(|(_, m)| (m, true))
                })
        });
        match (content, pick) {
            (Some(c), None) if !c.is_empty() => {
                let types: Vec<&str> = c.keys().map(String::as_str).collect();
                return Ok(Err(format!(
                    "its request body is {}, which the gateway does not send",
                    types.join(", ")
                )));
            }
            (_, Some((media, form))) => {
                let body_required = body.get("required").and_then(Value::as_bool) == Some(true);
                let raw = media.get("schema").cloned().unwrap_or_else(|| json!({}));
                let top = resolve_schema(doc, &raw);
                let spreadable = top
                    .get("properties")
                    .and_then(Value::as_object)
                    .filter(|_| {
                        top.get("type")
                            .and_then(Value::as_str)
                            .is_none_or(|t| t == "object")
                            && !["oneOf", "anyOf", "allOf", "not", "if"]
                                .iter()
                                .any(|k| top.contains_key(*k))
                    });
                let spread = spreadable.map(|props| {
                    props
                        .iter()
                        .filter(|(_, s)| !is_read_only(doc, s))
                        .map(|(k, s)| (k.clone(), schemas.convert(s, 0)))
                        .collect::<Vec<_>>()
                });
                match spread {
                    Some(props)
                        if !props.is_empty()
                            && props.iter().all(|(k, _)| !properties.contains_key(k)) =>
                    {
                        let inner: Vec<String> = top
                            .get("required")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .filter(|r| props.iter().any(|(k, _)| k == r))
                            .map(str::to_owned)
                            .collect();
                        for (k, s) in props {
                            properties.insert(k, s);
                        }
                        if body_required {
                            required.extend(inner);
                        }
                        routing.body = BodyShape::Spread { form };
                    }
                    _ => {
                        let name = ["body", "request_body", "_body"]
                            .into_iter()
                            .find(|n| !properties.contains_key(*n))
                            .unwrap_or("__body")
                            .to_owned();
                        let mut schema = schemas.convert(&raw, 0);
                        if let (Some(d), Some(s)) = (
                            body.get("description").and_then(Value::as_str),
                            schema.as_object_mut(),
                        ) && !s.contains_key("description")
                        {
                            s.insert("description".into(), Value::String(d.to_owned()));
                        }
                        properties.insert(name.clone(), schema);
                        if body_required {
                            required.push(name.clone());
                        }
                        routing.body = BodyShape::Property { name, form };
                    }
                }
            }
            _ => {}
        }
    }

    let mut input = Map::new();
    input.insert("type".into(), json!("object"));
    input.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        let mut seen = BTreeSet::new();
        required.retain(|r| seen.insert(r.clone()));
        input.insert("required".into(), json!(required));
    }
    schemas.attach_defs(&mut input);

    let output_schema = output_schema(doc, op);

    let summary = op
        .get("summary")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim();
    let details = op
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim();
    let mut description = match (summary.is_empty(), details.is_empty()) {
        (false, false) if details.starts_with(summary) => details.to_owned(),
        (false, false) => format!("{summary}\n\n{details}"),
        (false, true) => summary.to_owned(),
        (true, false) => details.to_owned(),
        (true, true) => format!("{} {raw_path}", method.as_str().to_uppercase()),
    };
    if description.len() > MAX_DESCRIPTION {
        let mut cut = MAX_DESCRIPTION;
        while !description.is_char_boundary(cut) {
            cut -= 1;
        }
        description.truncate(cut);
        description.push('…');
    }

    let scope = match op.get("x-mcp-scope") {
        Some(Value::String(s)) => Scope::parse(s.trim())
            .filter(|s| Scope::MCP.contains(s))
            .ok_or_else(|| {
                format!("operation {id}: x-mcp-scope {s:?} is not mcp:read, mcp:write or mcp:admin")
            })?,
        Some(other) => {
            return Err(format!(
                "operation {id}: x-mcp-scope must be a string, not {other}"
            ));
        }
        None => scope_for(&name, method),
    };
    let destructive = op
        .get("x-mcp-destructive")
        .and_then(Value::as_bool)
        .unwrap_or(method == Method::Delete);
    Ok(Ok(Operation {
        name,
        id: id.to_owned(),
        method,
        path: path.to_owned(),
        path_params,
        description,
        tags,
        input_schema: input,
        output_schema,
        routing,
        scope,
        destructive,
    }))
}

/// The verb rule first (SPEC §4.3), then the HTTP method for names
/// without a known verb: GET and HEAD read, DELETE administers, the rest write.
pub fn scope_for(name: &str, method: Method) -> Scope {
    let verbs = ScopePolicy::new(&HashMap::new());
    verbs.verb_scope(name).unwrap_or(match method {
        Method::Get | Method::Head => Scope::McpRead,
        Method::Delete => Scope::McpAdmin,
        _ => Scope::McpWrite,
    })
}

fn is_json(media_type: &str) -> bool {
    let t = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    t == "application/json" || t.ends_with("+json") || t == "*/*"
}

/// The output schema: the first 2xx JSON response whose schema is an object.
fn output_schema(doc: &Value, op: &Map<String, Value>) -> Option<Map<String, Value>> {
    let responses = op.get("responses")?.as_object()?;
    let (_, response) = responses
        .iter()
        .filter(|(code, _)| code.starts_with('2'))
        .min_by_key(|(code, _)| code.as_str())?;
    let response = resolve(doc, response);
    let content = response.get("content")?.as_object()?;
    let (_, media) = content.iter().find(|(t, _)| is_json(t))?;
    let raw = media.get("schema")?;
    let top = resolve_schema(doc, raw);
    let is_object = match top.get("type") {
        Some(Value::String(t)) => t == "object",
        None => top.contains_key("properties"),
        _ => false,
    };
    if !is_object || top.get("nullable") == Some(&Value::Bool(true)) {
        return None;
    }
    let mut schemas = Schemas::new(doc, Mode::Output);
    let Value::Object(mut out) = schemas.convert(&Value::Object(top.clone()), 0) else {
        return None;
    };
    out.insert("type".into(), json!("object"));
    schemas.attach_defs(&mut out);
    Some(out)
}

/// Follows `$ref`s (any kind: parameters, bodies, responses) to the
/// object they name; a dangling or cyclic chain gives `null`.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    let mut current = value;
    for _ in 0..MAX_INLINE_DEPTH {
        match current.get("$ref").and_then(Value::as_str) {
            Some(r) => match r.strip_prefix('#').and_then(|p| doc.pointer(p)) {
                Some(target) => current = target,
                None => return &Value::Null,
            },
            None => return current,
        }
    }
    &Value::Null
}

/// A schema with top-level `$ref`s followed and `allOf` of one member
/// (`allOf: [$ref]` plus a description is common) unwrapped.
fn resolve_schema(doc: &Value, schema: &Value) -> Map<String, Value> {
    let mut current = resolve(doc, schema)
        .as_object()
        .cloned()
        .unwrap_or_default();
    for _ in 0..MAX_INLINE_DEPTH {
        let single = current
            .get("allOf")
            .and_then(Value::as_array)
            .filter(|a| a.len() == 1)
            .and_then(|a| resolve(doc, &a[0]).as_object().cloned());
        match single {
            Some(inner) => {
                current.remove("allOf");
                for (k, v) in inner {
                    current.entry(k).or_insert(v);
                }
            }
            None => break,
        }
    }
    current
}

fn is_read_only(doc: &Value, schema: &Value) -> bool {
    schema.get("readOnly") == Some(&Value::Bool(true))
        || resolve(doc, schema).get("readOnly") == Some(&Value::Bool(true))
}

/// `{name}` placeholders of a path, in order.
pub fn placeholders(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open + 1..open + close];
        if !name.is_empty() && !out.iter().any(|n| n == name) {
            out.push(name.to_owned());
        }
        rest = &rest[open + close + 1..];
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Request side: `readOnly` properties are left out.
    Input,
    /// Response side: `writeOnly` properties are left out.
    Output,
}

/// Converts OpenAPI schemas of one document into one self-contained JSON
/// Schema, collecting the components it references into `$defs`.
struct Schemas<'a> {
    doc: &'a Value,
    mode: Mode,
    defs: BTreeMap<String, Value>,
    pending: Vec<String>,
}

/// Keywords whose value is a map of name → schema.
const SCHEMA_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];
/// Keywords whose value is one schema.
const SCHEMA_ONE: &[&str] = &[
    "additionalProperties",
    "items",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "additionalItems",
    "contentSchema",
];
/// Keywords whose value is a list of schemas.
const SCHEMA_LISTS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords copied as they are.
const PLAIN: &[&str] = &[
    "type",
    "enum",
    "const",
    "required",
    "title",
    "description",
    "default",
    "examples",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "minContains",
    "maxContains",
    "dependentRequired",
    "deprecated",
    "readOnly",
    "writeOnly",
    "contentEncoding",
    "contentMediaType",
];
const TYPES: &[&str] = &[
    "null", "boolean", "object", "array", "number", "string", "integer",
];

impl<'a> Schemas<'a> {
    fn new(doc: &'a Value, mode: Mode) -> Schemas<'a> {
        Schemas {
            doc,
            mode,
            defs: BTreeMap::new(),
            pending: Vec::new(),
        }
    }

    /// Puts every referenced component (and what they reference) into `$defs`.
    fn attach_defs(&mut self, schema: &mut Map<String, Value>) {
        while let Some(name) = self.pending.pop() {
            let source = self
                .doc
                .pointer(&format!("/components/schemas/{}", escape(&name)))
                .cloned()
                .unwrap_or_else(|| json!({}));
            let converted = self.convert(&source, 0);
            self.defs.insert(name, converted);
        }
        if !self.defs.is_empty() {
            let defs = std::mem::take(&mut self.defs);
            schema.insert("$defs".into(), Value::Object(defs.into_iter().collect()));
        }
    }

    fn reference(&mut self, target: &str, depth: usize) -> Value {
        if let Some(rest) = target.strip_prefix("#/components/schemas/") {
            let (name, tail) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            let name = unescape(name);
            if self
                .doc
                .pointer(&format!("/components/schemas/{}", escape(&name)))
                .is_some()
            {
                if !self.defs.contains_key(&name) && !self.pending.contains(&name) {
                    self.defs.insert(name.clone(), Value::Null);
                    self.pending.push(name.clone());
                }
                return json!({ "$ref": format!("#/$defs/{}{tail}", escape(&name)) });
            }
        }
        // Anything else in the document is inlined; outside it, accepted as is.
        match target.strip_prefix('#').and_then(|p| self.doc.pointer(p)) {
            Some(found) if depth < MAX_INLINE_DEPTH => self.convert(&found.clone(), depth + 1),
            _ => json!({}),
        }
    }

    /// One schema node of the document as Draft 2020-12.
    fn convert(&mut self, schema: &Value, depth: usize) -> Value {
        let source = match schema {
            Value::Bool(b) => return Value::Bool(*b),
            Value::Object(m) => m,
            _ => return json!({}),
        };
        let mut out = Map::new();
        for (key, value) in source {
            let key = key.as_str();
            if key == "$ref" {
                if let Some(target) = value.as_str() {
                    let converted = self.reference(target, depth);
                    if let Value::Object(m) = converted {
                        for (k, v) in m {
                            out.insert(k, v);
                        }
                    }
                }
            } else if SCHEMA_MAPS.contains(&key) {
                if let Some(map) = value.as_object() {
                    let (mode, doc) = (self.mode, self.doc);
                    let hidden = |s: &Value| match mode {
                        Mode::Input => is_read_only(doc, s),
                        Mode::Output => s.get("writeOnly") == Some(&Value::Bool(true)),
                    };
                    let mut converted = Map::new();
                    for (name, sub) in map {
                        if key == "properties" && hidden(sub) {
                            continue;
                        }
                        converted.insert(name.clone(), self.convert(sub, depth));
                    }
                    out.insert(key.to_owned(), Value::Object(converted));
                }
            } else if SCHEMA_ONE.contains(&key) {
                if key == "items" && value.is_array() {
                    // Draft 4-style tuple items.
                    let items: Vec<Value> = value
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|s| self.convert(s, depth))
                        .collect();
                    out.insert("prefixItems".into(), Value::Array(items));
                } else if value.is_object() || value.is_boolean() {
                    out.insert(key.to_owned(), self.convert(value, depth));
                }
            } else if SCHEMA_LISTS.contains(&key) {
                if let Some(list) = value.as_array() {
                    let items = list.iter().map(|s| self.convert(s, depth)).collect();
                    out.insert(key.to_owned(), Value::Array(items));
                }
            } else if PLAIN.contains(&key) {
                out.insert(key.to_owned(), value.clone());
            }
        }
        self.fix_openapi_keywords(source, &mut out);
        Value::Object(out)
    }

    fn fix_openapi_keywords(&self, source: &Map<String, Value>, out: &mut Map<String, Value>) {
        // Types outside JSON Schema (`file` from Swagger) constrain nothing.
        match out.get_mut("type") {
            Some(Value::String(t)) if !TYPES.contains(&t.as_str()) => {
                out.remove("type");
            }
            Some(Value::Array(list)) => {
                list.retain(|t| t.as_str().is_some_and(|t| TYPES.contains(&t)));
                if list.is_empty() {
                    out.remove("type");
                }
            }
            Some(Value::String(_)) | None => {}
            Some(_) => {
                out.remove("type");
            }
        }
        for (bound, exclusive) in [
            ("minimum", "exclusiveMinimum"),
            ("maximum", "exclusiveMaximum"),
        ] {
            match source.get(exclusive) {
                Some(Value::Bool(true)) => {
                    if let Some(limit) = out.remove(bound) {
                        out.insert(exclusive.into(), limit);
                    }
                }
                Some(n @ Value::Number(_)) => {
                    out.insert(exclusive.into(), n.clone());
                }
                _ => {}
            }
        }
        if let Some(Value::Array(required)) = out.get_mut("required") {
            required.retain(Value::is_string);
        } else {
            out.remove("required");
        }
        for key in ["pattern", "format", "title", "description"] {
            if out.get(key).is_some_and(|v| !v.is_string()) {
                out.remove(key);
            }
        }
        if source.get("nullable") == Some(&Value::Bool(true)) {
            match out.get_mut("type") {
                Some(Value::String(t)) => {
                    let t = t.clone();
                    out.insert("type".into(), json!([t, "null"]));
                }
                Some(Value::Array(list)) => {
                    if !list.contains(&json!("null")) {
                        list.push(json!("null"));
                    }
                }
                _ => {
                    let inner = std::mem::take(out);
                    out.insert(
                        "anyOf".into(),
                        json!([{ "type": "null" }, Value::Object(inner)]),
                    );
                    return;
                }
            }
            if let Some(Value::Array(options)) = out.get_mut("enum")
                && !options.contains(&Value::Null)
            {
                options.push(Value::Null);
            }
        }
    }
}

fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn unescape(name: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
    decoded.replace("~1", "/").replace("~0", "~")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_snake_case_short_and_stable() {
        assert_eq!(
            tool_name("getContactById", "get", "/x", true),
            "get_contact_by_id"
        );
        assert_eq!(
            tool_name("", "get", "/settings/main", false),
            "get_settings_main"
        );
        assert_eq!(
            tool_name("", "post", "/request/{requestId}/{status}", false),
            "post_request_request_id_status"
        );
        assert_eq!(
            tool_name("files#add_shared_link", "put", "/x", true),
            "files_add_shared_link"
        );
        let long =
            "put_metadata_templates_enterprise_securityClassification-6VMVochwUWo_schema#update";
        let name = tool_name(long, "put", "/x", true);
        assert!(name.len() <= 64, "{name}");
        assert_eq!(name, tool_name(long, "put", "/x", true));
        assert_ne!(name, tool_name(&format!("{long}2"), "put", "/x", true));
    }

    #[test]
    fn nullable_and_exclusive_bounds_become_2020_12() {
        let doc = json!({});
        let mut s = Schemas::new(&doc, Mode::Input);
        assert_eq!(
            s.convert(
                &json!({ "type": "string", "nullable": true, "enum": ["a"] }),
                0
            ),
            json!({ "type": ["string", "null"], "enum": ["a", null] })
        );
        assert_eq!(
            s.convert(
                &json!({ "minimum": 1, "exclusiveMinimum": true, "example": 3 }),
                0
            ),
            json!({ "exclusiveMinimum": 1 })
        );
        assert_eq!(
            s.convert(
                &json!({ "allOf": [{ "type": "integer" }], "nullable": true }),
                0
            ),
            json!({ "anyOf": [{ "type": "null" }, { "allOf": [{ "type": "integer" }] }] })
        );
    }
}
