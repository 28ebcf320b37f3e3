//! The catalog file: upstream HTTP APIs and the tools that forward to them.
//! Validation errors name the file, the line and the field, because the
//! people who write this file are not reading our source.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use super::{
    openapi::{self, Routing},
    payload_log::Redaction,
    resources::{GatewayResource, template_variables},
    schema::ArgumentSchema,
};
use crate::identity::scope::Scope;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_RESPONSE: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read catalog {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        field: String,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    /// Only from OpenAPI documents (existence checks); answers have no body.
    Head,
}

impl Method {
    pub fn as_reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
            Method::Head => reqwest::Method::HEAD,
        }
    }

    /// The lower-case method name, as OpenAPI writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Put => "put",
            Method::Patch => "patch",
            Method::Delete => "delete",
            Method::Head => "head",
        }
    }

    /// GET and DELETE carry arguments in the query string, the others in a JSON body.
    pub fn has_body(self) -> bool {
        !matches!(self, Method::Get | Method::Delete | Method::Head)
    }
}

#[derive(Debug)]
pub struct Upstream {
    pub name: String,
    pub base_url: url::Url,
    pub timeout: Duration,
    pub audience: String,
    pub max_response_bytes: usize,
    /// Static headers, values already read from the environment.
    pub headers: Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    /// Whether calls' arguments and results are kept with the audit record.
    pub log_payloads: bool,
    /// Field names never kept in payload logs.
    pub redact: Redaction,
}

#[derive(Debug)]
pub struct GatewayTool {
    /// The name a client sees (the alias when one is set).
    pub name: String,
    /// The name the catalog declares, whatever the alias: its verb and its
    /// `tool_scopes` entry still count (see `mcp::server::ToolSet`).
    pub declared_name: String,
    pub description: String,
    pub upstream: Arc<Upstream>,
    pub method: Method,
    /// Path template relative to the upstream's base URL, e.g. `/contacts/{id}`.
    pub path: String,
    pub path_params: Vec<String>,
    pub input_schema: serde_json::Map<String, Value>,
    /// `input_schema`, compiled once when the catalog loads.
    pub arguments: ArgumentSchema,
    /// The 2xx response's schema when it is an object (OpenAPI tools only).
    pub output_schema: Option<serde_json::Map<String, Value>>,
    /// How arguments split into query, headers and body (OpenAPI tools);
    /// `None`: the catalog rule, query for GET/DELETE and JSON body otherwise.
    pub routing: Option<Routing>,
    /// Where the tool was defined.
    pub source: ToolSource,
    /// Explicit scope; `None` means the verb rule of SPEC §4.3 decides.
    pub scope: Option<Scope>,
    pub destructive: bool,
}

/// Where a gateway tool comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolSource {
    /// A `[[tool]]` entry of the catalog.
    Catalog,
    /// An operation of the upstream's OpenAPI document, by its id.
    OpenApi { operation: String },
}

#[derive(Debug, Default)]
pub struct Catalog {
    pub tools: Vec<Arc<GatewayTool>>,
    /// Resources, then resource templates, in catalog order.
    pub resources: Vec<Arc<GatewayResource>>,
    /// Tools declared with `enabled = false`: (name, source), for the console.
    pub disabled: Vec<(String, ToolSource)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    upstream: Vec<Spanned<UpstreamEntry>>,
    #[serde(default)]
    tool: Vec<Spanned<ToolEntry>>,
    #[serde(default)]
    operation: Vec<Spanned<OperationEntry>>,
    #[serde(default)]
    resource: Vec<Spanned<ResourceEntry>>,
    #[serde(default)]
    resource_template: Vec<Spanned<ResourceEntry>>,
}

/// A `[[resource]]` (with `uri`) or `[[resource_template]]` (with `uri_template`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceEntry {
    uri: Option<Spanned<String>>,
    uri_template: Option<Spanned<String>>,
    name: Spanned<String>,
    upstream: Spanned<String>,
    path: Spanned<String>,
    description: Option<String>,
    mime_type: Option<String>,
    scope: Option<Spanned<String>>,
}

/// Overrides for one tool imported from an upstream's OpenAPI document.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OperationEntry {
    upstream: Spanned<String>,
    /// The `operationId`, or `METHOD /path` when the document has none.
    id: Spanned<String>,
    alias: Option<Spanned<String>>,
    description: Option<Spanned<String>>,
    scope: Option<Spanned<String>>,
    destructive: Option<bool>,
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpstreamEntry {
    name: Spanned<String>,
    base_url: Spanned<String>,
    timeout: Option<Spanned<String>>,
    audience: Option<String>,
    max_response_bytes: Option<usize>,
    /// Header name → name of the environment variable holding its value.
    #[serde(default)]
    headers_from_env: HashMap<String, Spanned<String>>,
    /// An OpenAPI 3.0/3.1 document (path relative to the catalog, or an
    /// https URL) whose operations become tools.
    openapi: Option<Spanned<String>>,
    #[serde(default)]
    include_tags: Vec<String>,
    #[serde(default)]
    exclude_paths: Vec<String>,
    #[serde(default)]
    operations: Vec<String>,
    #[serde(default)]
    log_payloads: bool,
    /// Globs of field names replaced by "[redacted]" in payload logs.
    #[serde(default)]
    redact: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolEntry {
    name: Spanned<String>,
    description: Spanned<String>,
    upstream: Spanned<String>,
    method: Spanned<String>,
    path: Spanned<String>,
    input_schema: Option<Spanned<toml::Table>>,
    scope: Option<Spanned<String>>,
    #[serde(default)]
    destructive: bool,
    #[serde(default = "yes")]
    enabled: bool,
    alias: Option<Spanned<String>>,
}

fn yes() -> bool {
    true
}

struct Locator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Locator<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    fn error(
        &self,
        span: std::ops::Range<usize>,
        field: &str,
        message: impl Into<String>,
    ) -> CatalogError {
        CatalogError::Invalid {
            path: self.path.to_owned(),
            line: self.line(span.start),
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// Tool names as MCP clients accept them.
fn valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Catalog, CatalogError> {
    let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text, env)
}

pub fn parse(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Catalog, CatalogError> {
    let at = Locator { path, text };
    let file: File = toml::from_str(text).map_err(|e| CatalogError::Invalid {
        path: path.to_owned(),
        line: e.span().map(|s| at.line(s.start)).unwrap_or(1),
        field: "(syntax)".into(),
        message: e.message().to_owned(),
    })?;

    let mut upstreams: HashMap<String, Arc<Upstream>> = HashMap::new();
    let mut documents = Vec::new();
    for entry in file.upstream {
        let span = entry.span();
        let u = entry.into_inner();
        let name = u.name.get_ref().clone();
        if name.is_empty() {
            return Err(at.error(u.name.span(), "upstream.name", "must not be empty"));
        }
        let base_url = url::Url::parse(u.base_url.get_ref())
            .ok()
            .filter(|b| {
                matches!(b.scheme(), "http" | "https")
                    && b.host_str().is_some()
                    && b.query().is_none()
                    && b.fragment().is_none()
            })
            .ok_or_else(|| {
                at.error(
                    u.base_url.span(),
                    "upstream.base_url",
                    "must be an absolute http(s) URL without query or fragment",
                )
            })?;
        let timeout = match &u.timeout {
            Some(t) => crate::config::parse_duration(t.get_ref())
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    at.error(
                        t.span(),
                        "upstream.timeout",
                        "must be a duration like 5s or 2m",
                    )
                })?,
            None => DEFAULT_TIMEOUT,
        };
        let mut headers = Vec::new();
        for (header, variable) in &u.headers_from_env {
            let name = reqwest::header::HeaderName::try_from(header.as_str()).map_err(|_| {
                at.error(
                    variable.span(),
                    "upstream.headers_from_env",
                    format!("{header:?} is not a header name"),
                )
            })?;
            let value = env(variable.get_ref()).ok_or_else(|| {
                at.error(
                    variable.span(),
                    "upstream.headers_from_env",
                    format!("environment variable {} is not set", variable.get_ref()),
                )
            })?;
            let value = reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
                at.error(
                    variable.span(),
                    "upstream.headers_from_env",
                    format!(
                        "{} holds a value that is not a valid header",
                        variable.get_ref()
                    ),
                )
            })?;
            headers.push((name, value));
        }
        let audience = u
            .audience
            .unwrap_or_else(|| base_url.as_str().trim_end_matches('/').to_owned());
        let redact =
            Redaction::new(&u.redact).map_err(|m| at.error(u.name.span(), "upstream.redact", m))?;
        let upstream = Upstream {
            log_payloads: u.log_payloads,
            redact,
            name: name.clone(),
            base_url,
            timeout,
            audience,
            max_response_bytes: u.max_response_bytes.unwrap_or(DEFAULT_MAX_RESPONSE),
            headers,
        };
        let upstream = Arc::new(upstream);
        if let Some(document) = u.openapi {
            documents.push((
                Arc::clone(&upstream),
                document,
                openapi::Filter {
                    include_tags: u.include_tags,
                    exclude_paths: u.exclude_paths,
                    operations: u.operations,
                },
            ));
        }
        if upstreams.insert(name.clone(), upstream).is_some() {
            return Err(at.error(
                span,
                "upstream.name",
                format!("upstream {name:?} is declared twice"),
            ));
        }
    }

    let mut tools = Vec::new();
    let mut disabled = Vec::new();
    let mut seen = HashSet::new();
    for entry in file.tool {
        let t = entry.into_inner();
        let upstream = upstreams
            .get(t.upstream.get_ref())
            .cloned()
            .ok_or_else(|| {
                at.error(
                    t.upstream.span(),
                    "tool.upstream",
                    format!("no upstream named {:?}", t.upstream.get_ref()),
                )
            })?;
        let method = match t.method.get_ref().to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => {
                return Err(at.error(
                    t.method.span(),
                    "tool.method",
                    "must be GET, POST, PUT, PATCH or DELETE",
                ));
            }
        };
        let path = t.path.get_ref().clone();
        if !path.starts_with('/') {
            return Err(at.error(t.path.span(), "tool.path", "must start with /"));
        }
        // The route is the catalog's alone: no query, fragment or dot
        // segments that a URL parser would rewrite (see forward::target_url).
        if path.contains(['?', '#', '%', ' ', '\\'])
            || path
                .split('/')
                .any(|segment| segment == "." || segment == "..")
        {
            return Err(at.error(
                t.path.span(),
                "tool.path",
                "must be a plain path: no ?, #, %, spaces, backslashes or . and .. segments",
            ));
        }
        let path_params =
            placeholders(&path).map_err(|m| at.error(t.path.span(), "tool.path", m))?;
        let (input_schema, schema_span) = match t.input_schema {
            Some(s) => {
                let span = s.span();
                let value =
                    serde_json::to_value(s.into_inner()).expect("TOML tables convert to JSON");
                (value.as_object().cloned().unwrap_or_default(), span)
            }
            None => (
                serde_json::Map::from_iter([("type".to_owned(), Value::String("object".into()))]),
                t.name.span(),
            ),
        };
        let arguments = ArgumentSchema::compile(&input_schema).map_err(|e| {
            at.error(
                schema_span.clone(),
                "tool.input_schema",
                format!("tool {}: schema {e}", t.name.get_ref()),
            )
        })?;
        let properties = input_schema.get("properties").and_then(Value::as_object);
        for param in &path_params {
            if !properties.is_some_and(|p| p.contains_key(param)) {
                return Err(at.error(
                    t.path.span(),
                    "tool.path",
                    format!("placeholder {{{param}}} is not a property of input_schema"),
                ));
            }
        }
        let scope = match &t.scope {
            Some(s) => Some(
                Scope::parse(s.get_ref())
                    .filter(|s| Scope::MCP.contains(s))
                    .ok_or_else(|| {
                        at.error(
                            s.span(),
                            "tool.scope",
                            "must be mcp:read, mcp:write or mcp:admin",
                        )
                    })?,
            ),
            None => None,
        };
        if t.description.get_ref().trim().is_empty() {
            return Err(at.error(
                t.description.span(),
                "tool.description",
                "must not be empty: models pick tools by it",
            ));
        }
        let (name, name_span) = match &t.alias {
            Some(alias) => (alias.get_ref().clone(), alias.span()),
            None => (t.name.get_ref().clone(), t.name.span()),
        };
        if !valid_tool_name(&name) {
            return Err(at.error(
                name_span,
                if t.alias.is_some() {
                    "tool.alias"
                } else {
                    "tool.name"
                },
                "use 1-64 letters, digits, _ or -",
            ));
        }
        if !t.enabled {
            disabled.push((name, ToolSource::Catalog));
            continue;
        }
        if !seen.insert(name.clone()) {
            return Err(at.error(
                name_span,
                "tool.name",
                format!("two enabled tools are named {name:?}"),
            ));
        }
        tools.push(Arc::new(GatewayTool {
            name,
            declared_name: t.name.get_ref().clone(),
            description: t.description.into_inner(),
            upstream,
            method,
            path,
            path_params,
            input_schema,
            arguments,
            output_schema: None,
            routing: None,
            source: ToolSource::Catalog,
            scope,
            destructive: t.destructive,
        }));
    }
    for (upstream, document, filter) in documents {
        let imported = load_document(path, document.get_ref(), &filter)
            .map_err(|message| at.error(document.span(), "upstream.openapi", message))?;
        let overrides: Vec<&OperationEntry> = file
            .operation
            .iter()
            .map(|o| o.get_ref())
            .filter(|o| o.upstream.get_ref() == &upstream.name)
            .collect();
        for o in &overrides {
            if !imported
                .operations
                .iter()
                .any(|op| &op.id == o.id.get_ref())
            {
                return Err(at.error(
                    o.id.span(),
                    "operation.id",
                    format!(
                        "{} has no operation {:?} (use the operationId, or \"METHOD /path\" when it has none)",
                        document.get_ref(),
                        o.id.get_ref()
                    ),
                ));
            }
        }
        for op in imported.operations {
            let o = overrides.iter().find(|o| o.id.get_ref() == &op.id);
            if o.and_then(|o| o.enabled) == Some(false) {
                let name = o
                    .and_then(|o| o.alias.as_ref())
                    .map_or_else(|| op.name.clone(), |a| a.get_ref().clone());
                disabled.push((name, ToolSource::OpenApi { operation: op.id }));
                continue;
            }
            let mut scope = op.scope;
            let mut destructive = op.destructive;
            let mut description = op.description;
            let mut name = op.name.clone();
            if let Some(o) = o {
                if let Some(s) = &o.scope {
                    scope = Scope::parse(s.get_ref())
                        .filter(|s| Scope::MCP.contains(s))
                        .ok_or_else(|| {
                            at.error(
                                s.span(),
                                "operation.scope",
                                "must be mcp:read, mcp:write or mcp:admin",
                            )
                        })?;
                }
                if let Some(d) = o.destructive {
                    destructive = d;
                }
                if let Some(d) = &o.description {
                    if d.get_ref().trim().is_empty() {
                        return Err(at.error(
                            d.span(),
                            "operation.description",
                            "must not be empty: models pick tools by it",
                        ));
                    }
                    description = d.get_ref().clone();
                }
                if let Some(alias) = &o.alias {
                    if !valid_tool_name(alias.get_ref()) {
                        return Err(at.error(
                            alias.span(),
                            "operation.alias",
                            "use 1-64 letters, digits, _ or -",
                        ));
                    }
                    name = alias.get_ref().clone();
                }
            }
            let arguments = ArgumentSchema::compile(&op.input_schema).map_err(|e| {
                at.error(
                    document.span(),
                    "upstream.openapi",
                    format!(
                        "{}: tool {name} ({}): schema {e}",
                        document.get_ref(),
                        op.id
                    ),
                )
            })?;
            if !seen.insert(name.clone()) {
                return Err(at.error(
                    document.span(),
                    "upstream.openapi",
                    format!(
                        "operation {} makes a tool named {name:?}, which another tool has; give it an alias in an [[operation]] entry",
                        op.id
                    ),
                ));
            }
            tools.push(Arc::new(GatewayTool {
                name,
                declared_name: op.name,
                description,
                upstream: Arc::clone(&upstream),
                method: op.method,
                path: op.path,
                path_params: op.path_params,
                input_schema: op.input_schema,
                arguments,
                output_schema: op.output_schema,
                routing: Some(op.routing),
                source: ToolSource::OpenApi { operation: op.id },
                scope: Some(scope),
                destructive,
            }));
        }
    }
    let mut resources = Vec::new();
    let mut uris = HashSet::new();
    for (entry, template) in file
        .resource
        .iter()
        .map(|e| (e, false))
        .chain(file.resource_template.iter().map(|e| (e, true)))
    {
        let r = entry.get_ref();
        let table = if template {
            "resource_template"
        } else {
            "resource"
        };
        let (uri, wrong) = if template {
            (&r.uri_template, &r.uri)
        } else {
            (&r.uri, &r.uri_template)
        };
        let field = if template { "uri_template" } else { "uri" };
        if let Some(w) = wrong {
            return Err(at.error(
                w.span(),
                table,
                format!("a [[{table}]] takes {field}, not the other one"),
            ));
        }
        let uri = uri
            .as_ref()
            .ok_or_else(|| at.error(entry.span(), table, format!("{field} is required")))?;
        let variables = if template {
            template_variables(uri.get_ref())
                .map_err(|m| at.error(uri.span(), &format!("{table}.{field}"), m))?
        } else {
            Vec::new()
        };
        if !template && uri.get_ref().contains('{') {
            return Err(at.error(
                uri.span(),
                "resource.uri",
                "has a {variable}: declare it as a [[resource_template]]",
            ));
        }
        if url::Url::parse(uri.get_ref()).is_err() && !template {
            return Err(at.error(uri.span(), "resource.uri", "must be an absolute URI"));
        }
        let upstream = upstreams
            .get(r.upstream.get_ref())
            .cloned()
            .ok_or_else(|| {
                at.error(
                    r.upstream.span(),
                    &format!("{table}.upstream"),
                    format!("no upstream named {:?}", r.upstream.get_ref()),
                )
            })?;
        let route = r.path.get_ref();
        if !route.starts_with('/')
            || route.contains(['?', '#', '%', ' ', '\\'])
            || route.split('/').any(|seg| seg == "." || seg == "..")
        {
            return Err(at.error(
                r.path.span(),
                &format!("{table}.path"),
                "must be a plain path starting with /",
            ));
        }
        let path_params = placeholders(route)
            .map_err(|m| at.error(r.path.span(), &format!("{table}.path"), m))?;
        if let Some(p) = path_params.iter().find(|p| !variables.contains(p)) {
            return Err(at.error(
                r.path.span(),
                &format!("{table}.path"),
                format!("placeholder {{{p}}} is not a variable of the URI template"),
            ));
        }
        let scope = match &r.scope {
            Some(s) => Scope::parse(s.get_ref())
                .filter(|s| Scope::MCP.contains(s))
                .ok_or_else(|| {
                    at.error(
                        s.span(),
                        &format!("{table}.scope"),
                        "must be mcp:read, mcp:write or mcp:admin",
                    )
                })?,
            None => Scope::McpRead,
        };
        if !uris.insert(uri.get_ref().clone()) {
            return Err(at.error(uri.span(), table, "declared twice"));
        }
        resources.push(Arc::new(GatewayResource {
            uri: uri.get_ref().clone(),
            name: r.name.get_ref().clone(),
            description: r.description.clone(),
            mime_type: r.mime_type.clone(),
            upstream,
            path: route.clone(),
            path_params,
            scope,
            template,
        }));
    }
    for o in &file.operation {
        let o = o.get_ref();
        if !upstreams.contains_key(o.upstream.get_ref()) {
            return Err(at.error(
                o.upstream.span(),
                "operation.upstream",
                format!("no upstream named {:?}", o.upstream.get_ref()),
            ));
        }
    }
    Ok(Catalog {
        tools,
        resources,
        disabled,
    })
}

/// `portcullis catalog import`: the catalog text for `document` (a path
/// relative to the working directory, or an https URL), checked to load as
/// it would at start-up (every schema compiled) before it is returned.
///
/// # Errors
/// The document cannot be read or imported, or the catalog would not load.
pub fn import_catalog(
    document: &str,
    upstream: &str,
    base_url: &str,
    filter: &openapi::Filter,
) -> Result<String, String> {
    let here = Path::new("catalog.toml");
    let imported = load_document(here, document, filter)?;
    let target = super::catalog_toml::Target {
        upstream,
        base_url,
        document,
    };
    let text = super::catalog_toml::render(&target, filter, &imported);
    parse(here, &text, &|_| None).map_err(|e| e.to_string())?;
    Ok(text)
}

/// Reads and imports an upstream's OpenAPI document: a path relative to
/// the catalog file's directory, or an `https` URL (`http` on loopback
/// only, for tests and local development).
fn load_document(
    catalog: &Path,
    location: &str,
    filter: &openapi::Filter,
) -> Result<openapi::Imported, String> {
    let text = if location.starts_with("https://") || location.starts_with("http://") {
        super::document::fetch(location)?
    } else {
        let file = catalog.parent().unwrap_or(Path::new(".")).join(location);
        std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?
    };
    let doc = openapi::parse_document(&text).map_err(|e| format!("{location}: {e}"))?;
    openapi::import(&doc, filter).map_err(|e| format!("{location}: {e}"))
}

fn placeholders(path: &str) -> Result<Vec<String>, String> {
    let mut params = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').ok_or("has an unclosed {")? + open;
        let name = &rest[open + 1..close];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("placeholder {{{name}}} must be a plain name"));
        }
        params.push(name.to_owned());
        rest = &rest[close + 1..];
    }
    if rest.contains('}') {
        return Err("has an unmatched }".into());
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "CRM_TOKEN").then(|| "s3cret".to_owned())
    }

    const GOOD: &str = r#"
[[upstream]]
name = "crm"
base_url = "http://127.0.0.1:9000/api"
timeout = "2s"
headers_from_env = { "X-Api-Key" = "CRM_TOKEN" }

[[tool]]
name = "get_contact"
description = "Get one contact by id."
upstream = "crm"
method = "GET"
path = "/contacts/{id}"
input_schema = { type = "object", properties = { id = { type = "string" } }, required = ["id"] }

[[tool]]
name = "archive_contact"
alias = "crm_archive"
description = "Archive a contact."
upstream = "crm"
method = "POST"
path = "/contacts/{id}/archive"
scope = "mcp:write"
input_schema = { type = "object", properties = { id = { type = "string" } } }

[[tool]]
name = "old_tool"
description = "Gone."
upstream = "crm"
method = "GET"
path = "/old"
enabled = false
"#;

    #[test]
    fn a_good_catalog_loads_with_aliases_and_without_disabled_tools() {
        let catalog = parse(Path::new("c.toml"), GOOD, &env).unwrap();
        let names: Vec<_> = catalog.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["get_contact", "crm_archive"]);
        assert_eq!(catalog.tools[0].path_params, ["id"]);
        assert_eq!(catalog.tools[0].upstream.headers[0].1, "s3cret");
        assert_eq!(catalog.tools[1].scope, Some(Scope::McpWrite));
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let bad = GOOD.replace("path = \"/contacts/{id}\"", "path = \"/contacts/{nope}\"");
        let err = parse(Path::new("c.toml"), &bad, &env)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml:13: tool.path:"), "{err}");
        let bad = GOOD.replace(
            "upstream = \"crm\"\nmethod = \"GET\"\npath = \"/contacts",
            "upstream = \"nope\"\nmethod = \"GET\"\npath = \"/contacts",
        );
        let err = parse(Path::new("c.toml"), &bad, &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.toml:11: tool.upstream"), "{err}");
        let err = parse(
            Path::new("c.toml"),
            &GOOD.replace("CRM_TOKEN", "MISSING"),
            &env,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("upstream.headers_from_env") && err.contains("MISSING"),
            "{err}"
        );
        let err = parse(Path::new("c.toml"), "[[tool]]\nname = 1", &env)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml:2:"), "{err}");
    }
}
