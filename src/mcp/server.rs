//! The MCP server handler: `tools/list` filtered by the caller's scopes and
//! `tools/call` that treats a tool outside them exactly like one that does not
//! exist (SPEC §4.4), enforces `confirm` on destructive tools (§4.5) and
//! records every call in the audit log (§4.8).

use std::{
    sync::{Arc, RwLock},
    time::Instant,
};

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        ListPromptsRequestMethod, ListPromptsResult, ListResourceTemplatesRequestMethod,
        ListResourceTemplatesResult, ListResourcesRequestMethod, ListResourcesResult,
        ListToolsResult, PaginatedRequestParams, ReadResourceRequestMethod,
        ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
        ResourceContents, ResourceTemplate, ServerCapabilities, ServerConfig, Tool,
        ToolAnnotations,
    },
    service::RequestContext,
};
use serde_json::Value;

use super::{
    audit::{self, Outcome},
    auth::Identity,
    gate,
    policy::ScopePolicy,
    tools,
};
use crate::{
    gateway::{
        self,
        catalog::{GatewayTool, Method},
        forward::{Caller, Forwarded, Sender, forward},
        resources::GatewayResource,
    },
    identity::scope::{Scope, ScopeSet},
    state::AppState,
};

/// What runs when a tool is called.
pub enum Runner {
    Builtin,
    Gateway(Arc<GatewayTool>),
}

/// One listed tool and the scope it needs.
pub struct Entry {
    pub tool: Tool,
    pub required: Scope,
    pub destructive: bool,
    pub runner: Runner,
}

/// Every tool this server offers — built-in and from the gateway catalog —
/// classified once when it is built.
pub struct ToolSet {
    entries: Vec<Entry>,
    /// The catalog's resources and resource templates; kept with the tools
    /// so a reload replaces both at once (and cached `initialize` answers,
    /// keyed by this set, follow whether the capability exists).
    resources: Vec<Arc<GatewayResource>>,
    /// Catalog tools switched off, listed by the console's Tools page.
    disabled: Vec<(String, gateway::catalog::ToolSource)>,
}

#[derive(Debug, thiserror::Error)]
#[error("the catalog declares {0:?}, which is a built-in tool")]
pub struct NameClash(String);

impl ToolSet {
    /// Drops the built-in tools not named in `offered` (the `builtin_tools`
    /// setting, already validated); `None` keeps them all.
    pub fn offering(mut self, offered: Option<&[String]>) -> ToolSet {
        if let Some(offered) = offered {
            self.entries.retain(|e| {
                !matches!(e.runner, Runner::Builtin) || offered.iter().any(|n| *n == e.tool.name)
            });
        }
        self
    }

    pub fn new(
        policy: &ScopePolicy,
        gateway: &gateway::catalog::Catalog,
    ) -> Result<ToolSet, NameClash> {
        let mut entries: Vec<Entry> = tools::BUILTIN
            .iter()
            .map(|builtin| {
                let required = policy.required_scope(builtin.name);
                let destructive = required == Scope::McpAdmin;
                let tool = Tool::new(
                    builtin.name,
                    builtin.description,
                    Arc::new(builtin.input_schema(destructive)),
                )
                .with_title(builtin.title)
                .with_annotations(annotations(
                    Some(builtin.title),
                    required,
                    destructive,
                ));
                Entry {
                    tool,
                    required,
                    destructive,
                    runner: Runner::Builtin,
                }
            })
            .collect();
        for declared in &gateway.tools {
            if entries.iter().any(|e| e.tool.name == declared.name) {
                return Err(NameClash(declared.name.clone()));
            }
            let required = gateway_scope(policy, declared);
            let destructive = declared.destructive
                || declared.method == Method::Delete
                || required == Scope::McpAdmin;
            let mut schema = declared.input_schema.clone();
            if destructive {
                tools::require_confirmation(&mut schema);
            }
            let mut tool = Tool::new(
                declared.name.clone(),
                declared.description.clone(),
                Arc::new(schema),
            )
            .with_annotations(annotations(None, required, destructive));
            if let Some(output) = &declared.output_schema {
                tool = tool.with_raw_output_schema(Arc::new(output.clone()));
            }
            entries.push(Entry {
                tool,
                required,
                destructive,
                runner: Runner::Gateway(Arc::clone(declared)),
            });
        }
        policy.warn_unclassified(
            entries
                .iter()
                .filter(|e| !matches!(&e.runner, Runner::Gateway(t) if t.scope.is_some()))
                .map(|e| e.tool.name.as_ref()),
        );
        Ok(ToolSet {
            entries,
            resources: gateway.resources.clone(),
            disabled: gateway.disabled.clone(),
        })
    }

    /// Every enabled tool, in list order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Catalog tools declared but disabled: (name, source).
    pub fn disabled(&self) -> &[(String, gateway::catalog::ToolSource)] {
        &self.disabled
    }

    /// Whether the `resources` capability is declared.
    pub fn has_resources(&self) -> bool {
        !self.resources.is_empty()
    }

    /// The resources (or templates) `scopes` allow, in catalog order.
    pub fn visible_resources(
        &self,
        scopes: ScopeSet,
        templates: bool,
    ) -> impl Iterator<Item = &Arc<GatewayResource>> {
        self.resources
            .iter()
            .filter(move |r| r.template == templates && scopes.allows(r.scope))
    }

    /// The resource `uri` names among those `scopes` allow, with the
    /// template's variables: a hidden resource is not found, exactly like
    /// one that does not exist. Fixed URIs win over templates.
    pub fn resource(
        &self,
        uri: &str,
        scopes: ScopeSet,
    ) -> Option<(Arc<GatewayResource>, serde_json::Map<String, Value>)> {
        let visible = || self.resources.iter().filter(|r| scopes.allows(r.scope));
        visible()
            .filter(|r| !r.template)
            .chain(visible().filter(|r| r.template))
            .find_map(|r| r.matches(uri).map(|args| (Arc::clone(r), args)))
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.tool.name == name)
    }

    /// The tools `scopes` allow, in catalog order.
    pub fn visible(&self, scopes: ScopeSet) -> Vec<Tool> {
        self.entries
            .iter()
            .filter(|e| scopes.allows(e.required))
            .map(|e| e.tool.clone())
            .collect()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.tool.name.as_ref())
    }
}

/// The scope a catalog tool needs, decided by what it does and never by the
/// exposed name alone: the strictest of its `tool_scopes` entries (under its
/// declared name or its alias), its catalog `scope`, its declared name's verb
/// when nothing explicit is set (no verb: `mcp:admin`), its alias's verb, and
/// its HTTP method (`DELETE` always needs `mcp:admin`). An alias can thus
/// raise what a tool needs but never lower it.
fn gateway_scope(policy: &ScopePolicy, tool: &GatewayTool) -> Scope {
    let names = [tool.declared_name.as_str(), tool.name.as_str()];
    let explicit = names
        .iter()
        .filter_map(|n| policy.explicit(n))
        .chain(tool.scope)
        .max();
    let by_declaration = explicit.unwrap_or_else(|| {
        policy
            .verb_scope(&tool.declared_name)
            .unwrap_or(Scope::McpAdmin)
    });
    let by_method = if tool.method == Method::Delete {
        Scope::McpAdmin
    } else {
        Scope::McpRead
    };
    [
        Some(by_declaration),
        policy.verb_scope(&tool.name),
        Some(by_method),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(Scope::McpAdmin)
}

fn annotations(title: Option<&str>, required: Scope, destructive: bool) -> ToolAnnotations {
    let base = match title {
        Some(t) => ToolAnnotations::with_title(t),
        None => ToolAnnotations::default(),
    };
    base.read_only(required == Scope::McpRead)
        .destructive(destructive)
}

/// The current tool set, replaced as a whole when the catalog is reloaded so
/// a request never sees half of an old and half of a new catalog.
pub struct Tools(RwLock<Arc<ToolSet>>);

impl Tools {
    pub fn new(set: ToolSet) -> Tools {
        Tools(RwLock::new(Arc::new(set)))
    }

    pub fn current(&self) -> Arc<ToolSet> {
        Arc::clone(&self.0.read().expect("lock"))
    }

    pub fn replace(&self, set: ToolSet) {
        *self.0.write().expect("lock") = Arc::new(set);
    }
}

/// The answer to calling a tool that does not exist — and, deliberately, to
/// calling one the caller may not see. Matches rmcp's own tool router.
pub fn tool_not_found() -> ErrorData {
    ErrorData::invalid_params("tool not found", None)
}

/// Built per request (the transport is stateless); cloning is cheap.
#[derive(Clone)]
pub struct McpServer {
    state: AppState,
}

impl McpServer {
    pub fn new(state: AppState) -> McpServer {
        McpServer { state }
    }
}

/// The identity the auth layer attached to the HTTP request.
fn caller(context: &RequestContext<RoleServer>) -> Result<Identity, ErrorData> {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Identity>())
        .cloned()
        .ok_or_else(|| {
            tracing::error!("an MCP request reached the handler without an identity");
            ErrorData::internal_error("unauthenticated", None)
        })
}

impl McpServer {
    async fn forward(
        &self,
        who: &Identity,
        tool: &GatewayTool,
        args: serde_json::Map<String, Value>,
        started: Instant,
        backoff: Option<gate::UpstreamBackoff>,
        destructive: bool,
    ) -> Result<CallToolResponse, ErrorData> {
        // A destructive call's record says what it was asked to act on.
        let detail = destructive.then(|| format!("arguments {}", Value::Object(args.clone())));
        let caller = Caller {
            user_id: who.user_id,
            org_id: who.org_id,
            scopes: who.scopes,
            source: who.source.as_str(),
            client_id: who.client_id.as_deref(),
            api_key_id: who.api_key_id.as_deref(),
        };
        let state = &self.state;
        let sender = Sender {
            http: &state.upstreams,
            keys: &state.keys,
            issuer: state.config.issuer(),
            identities: &state.identity_tokens,
        };
        let logged = tool
            .upstream
            .log_payloads
            .then(|| Value::Object(args.clone()));
        let outcome = forward(&sender, tool, &caller, args).await;
        // Arguments refused before anything was sent are not upstream calls.
        let upstream_status = match &outcome {
            Forwarded::Success { status, .. } | Forwarded::RateLimited { status, .. } => {
                Some(Some(*status))
            }
            Forwarded::Failure { message, .. } if message.starts_with("Invalid arguments") => None,
            Forwarded::Failure { status, .. } => Some(*status),
        };
        if let Some(status) = upstream_status {
            state
                .metrics
                .upstream_call(&tool.upstream.name, status, started.elapsed());
        }
        let (kind, status) = match &outcome {
            Forwarded::Success { status, .. } => (Outcome::Ok, Some(*status)),
            Forwarded::Failure { status, .. } => (Outcome::Error, *status),
            Forwarded::RateLimited { status, .. } => (Outcome::RateLimited, Some(*status)),
        };
        let mut call = audit::entry(who, &tool.name, kind, started.elapsed(), status);
        // Why it failed comes first, so the Activity page can say it.
        let why = match &outcome {
            Forwarded::Failure { message, .. } => Some(message.clone()),
            Forwarded::RateLimited { .. } => Some("the upstream is rate limiting (429)".into()),
            Forwarded::Success { .. } => None,
        };
        call.detail = match (why, detail) {
            (Some(why), Some(acted_on)) => Some(format!("{why}; {acted_on}")),
            (why, acted_on) => why.or(acted_on),
        }
        .map(|text| crate::store::storable(&text, crate::store::AUDIT_TEXT_CHARS));
        if let Some(arguments) = logged {
            let result = match &outcome {
                Forwarded::Success {
                    structured: Some(s),
                    ..
                } => Value::Object(s.clone()),
                Forwarded::Success { text, .. } => Value::String(text.clone()),
                Forwarded::Failure { message, .. } => serde_json::json!({ "error": message }),
                Forwarded::RateLimited { .. } => serde_json::json!({ "error": "rate_limited" }),
            };
            self.log_payload(&call, tool, &arguments, &result).await;
        }
        self.write_audit(call, destructive).await;
        match outcome {
            Forwarded::Success {
                text, structured, ..
            } => {
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.structured_content = structured.map(Value::Object);
                Ok(result.into())
            }
            Forwarded::Failure { message, .. } => {
                Ok(CallToolResult::error(vec![ContentBlock::text(message)]).into())
            }
            Forwarded::RateLimited { retry_after, .. } => {
                if let Some(backoff) = backoff {
                    backoff.set(retry_after);
                }
                Err(gate::upstream_rate_limited(retry_after))
            }
        }
    }
}

impl McpServer {
    /// Keeps a call's redacted, capped arguments and result for upstreams
    /// with `log_payloads`. A failed write is logged, never the call's failure.
    async fn log_payload(
        &self,
        call: &crate::store::ToolCall,
        tool: &GatewayTool,
        arguments: &Value,
        result: &Value,
    ) {
        use crate::gateway::payload_log::{capped, write_only_names};
        let write_only = write_only_names(&tool.input_schema);
        let redact = &tool.upstream.redact;
        let payload = crate::store::Payload {
            call_id: call.id,
            org_id: call.org_id,
            at: call.at,
            arguments: capped(&redact.apply(arguments, &write_only)),
            result: capped(&redact.apply(result, &write_only)),
        };
        if let Err(e) = self.state.store.insert_payload(&payload).await {
            tracing::error!(error = %e, tool = %tool.name, "cannot store a payload log");
        }
    }

    /// Destructive calls are stored before the answer is sent; the rest are
    /// written behind (README "Limits and hardening").
    async fn write_audit(&self, call: crate::store::ToolCall, destructive: bool) {
        if destructive {
            self.state.audit.write_now(call).await;
        } else {
            self.state.audit.record_call(call);
        }
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        // `resources` only when the catalog has some (MCP lifecycle:
        // capabilities declare what the server actually offers).
        let capabilities = if self.state.tools.current().has_resources() {
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build()
        } else {
            ServerCapabilities::builder().enable_tools().build()
        };
        let config = &self.state.config;
        ServerConfig::new(capabilities)
            // `name` is the stable program identifier clients key on; the
            // configured product name is the `title` people see.
            .with_server_info(
                Implementation::new("portcullis", env!("CARGO_PKG_VERSION"))
                    .with_title(config.product_name.clone()),
            )
            .with_instructions(instructions(config, &self.state.tools.current()))
    }

    // Portcullis declares only the tools capability; rmcp's defaults would
    // answer these with empty lists, as if the capability existed. A method
    // of an undeclared capability is "method not found" (JSON-RPC 2.0 §5.1).
    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Err(ErrorData::method_not_found::<ListPromptsRequestMethod>())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let set = self.state.tools.current();
        if !set.has_resources() {
            return Err(ErrorData::method_not_found::<ListResourcesRequestMethod>());
        }
        let who = caller(&context)?;
        let items = set
            .visible_resources(who.scopes, false)
            .map(|r| {
                let mut item = Resource::new(r.uri.clone(), r.name.clone());
                if let Some(d) = &r.description {
                    item = item.with_description(d.clone());
                }
                if let Some(m) = &r.mime_type {
                    item = item.with_mime_type(m.clone());
                }
                item
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(items))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let set = self.state.tools.current();
        if !set.has_resources() {
            return Err(ErrorData::method_not_found::<
                ListResourceTemplatesRequestMethod,
            >());
        }
        let who = caller(&context)?;
        let items = set
            .visible_resources(who.scopes, true)
            .map(|r| {
                let mut item = ResourceTemplate::new(r.uri.clone(), r.name.clone());
                if let Some(d) = &r.description {
                    item = item.with_description(d.clone());
                }
                if let Some(m) = &r.mime_type {
                    item = item.with_mime_type(m.clone());
                }
                item
            })
            .collect();
        Ok(ListResourceTemplatesResult::with_all_items(items))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let set = self.state.tools.current();
        if !set.has_resources() {
            return Err(ErrorData::method_not_found::<ReadResourceRequestMethod>());
        }
        let started = Instant::now();
        let who = caller(&context)?;
        let uri = request.uri.as_str();
        // Audited under the URI asked for, whatever happens: a hidden
        // resource's record must read exactly like a missing one's.
        let label: String = format!("resources/read {uri}").chars().take(200).collect();
        let not_found = || {
            ErrorData::resource_not_found(
                "resource not found",
                Some(serde_json::json!({ "uri": uri })),
            )
        };
        let Some((resource, mut args)) = set.resource(uri, who.scopes) else {
            self.state
                .audit
                .record(&who, &label, Outcome::Error, started.elapsed(), None);
            return Err(not_found());
        };
        let upstream = &resource.upstream;
        let url = match gateway::forward::route_url(
            &upstream.base_url,
            &resource.path,
            &resource.path_params,
            &mut args,
        ) {
            Ok(url) => url,
            Err(_) => {
                self.state
                    .audit
                    .record(&who, &label, Outcome::Error, started.elapsed(), None);
                return Err(not_found());
            }
        };
        let caller = Caller {
            user_id: who.user_id,
            org_id: who.org_id,
            scopes: who.scopes,
            source: who.source.as_str(),
            client_id: who.client_id.as_deref(),
            api_key_id: who.api_key_id.as_deref(),
        };
        let sender = Sender {
            http: &self.state.upstreams,
            keys: &self.state.keys,
            issuer: self.state.config.issuer(),
            identities: &self.state.identity_tokens,
        };
        let answer = gateway::forward::read(&sender, upstream, url, &caller).await;
        let (outcome, status, result) = match answer {
            Forwarded::Success { text, status, .. } => {
                let mime = resource
                    .mime_type
                    .clone()
                    .unwrap_or_else(|| "application/json".to_owned());
                let contents = ResourceContents::text(text, uri).with_mime_type(mime);
                (
                    Outcome::Ok,
                    Some(status),
                    Ok(ReadResourceResult::new(vec![contents]).into()),
                )
            }
            Forwarded::Failure {
                status: Some(404), ..
            } => (Outcome::Error, Some(404), Err(not_found())),
            Forwarded::Failure { message, status } => (
                Outcome::Error,
                status,
                Err(ErrorData::internal_error(message, None)),
            ),
            Forwarded::RateLimited {
                retry_after,
                status,
            } => (
                Outcome::RateLimited,
                Some(status),
                Err(gate::upstream_rate_limited(retry_after)),
            ),
        };
        let call = audit::entry(&who, &label, outcome, started.elapsed(), status);
        self.state.audit.record_call(call);
        result
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let who = caller(&context)?;
        // `with_all_items` leaves the list unmarked as publicly cacheable: it
        // differs per caller.
        Ok(ListToolsResult::with_all_items(
            self.state.tools.current().visible(who.scopes),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let started = Instant::now();
        let who = caller(&context)?;
        let name = request.name.as_ref();
        let audit = |outcome| {
            self.state
                .audit
                .record(&who, name, outcome, started.elapsed(), None)
        };
        let tools = self.state.tools.current();
        let Some(entry) = tools.get(name) else {
            audit(Outcome::Error);
            return Err(tool_not_found());
        };
        if !who.scopes.allows(entry.required) {
            // Recorded exactly like a tool that does not exist: the audit is
            // readable by the caller's org through `list_tool_calls`, and a
            // different outcome would tell a viewer which names are hidden
            // tools (SPEC §4.4). `denied` stays for step-up refusals, where
            // the caller is told anyway.
            audit(Outcome::Error);
            return Err(tool_not_found());
        }
        let mut args = request.arguments.unwrap_or_default();
        // The confirmation is ours (SPEC §4.5), not part of any tool's own
        // arguments: checked here and never passed on.
        if entry.destructive && args.remove("confirm") != Some(Value::Bool(true)) {
            audit(Outcome::Error);
            return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "{name} is irreversible and was not carried out. Confirm with the user, then \
                 call it again with \"confirm\": true."
            ))])
            .into());
        }
        let tool = match &entry.runner {
            Runner::Builtin => {
                let requested = args.get("id").and_then(Value::as_str).map(str::to_owned);
                let (outcome, detail, result) =
                    match tools::run(&self.state, &who, name, args).await {
                        Ok(value) => (
                            Outcome::Ok,
                            tools::audit_detail(name, &value),
                            CallToolResult::structured(value),
                        ),
                        Err(tools::ToolFailure(message)) => (
                            Outcome::Error,
                            Some(match requested {
                                Some(id) => format!("{message}; requested id {id}"),
                                None => message.clone(),
                            }),
                            CallToolResult::error(vec![ContentBlock::text(message)]),
                        ),
                    };
                let mut call = audit::entry(&who, name, outcome, started.elapsed(), None);
                call.detail = detail;
                self.write_audit(call, entry.destructive).await;
                result
            }
            Runner::Gateway(tool) => {
                let backoff = context
                    .extensions
                    .get::<http::request::Parts>()
                    .and_then(|parts| parts.extensions.get::<gate::UpstreamBackoff>())
                    .cloned();
                return self
                    .forward(&who, tool, args, started, backoff, entry.destructive)
                    .await;
            }
        };
        Ok(tool.into())
    }
}

/// The MCP `instructions`, composed from the configuration and the tools
/// actually offered (README "Branding"): the product name, the operator's
/// own text, the gateway tools by upstream, then the built-in tools. Each
/// caller still sees only the tools its scopes allow in `tools/list`.
pub fn instructions(config: &crate::config::Config, set: &ToolSet) -> String {
    let mut text = format!("{}.", config.product_name);
    if let Some(extra) = config
        .instructions
        .as_deref()
        .filter(|t| !t.trim().is_empty())
    {
        text.push(' ');
        text.push_str(extra.trim());
    }
    let mut upstreams: Vec<(String, Vec<String>)> = Vec::new();
    let mut builtins = Vec::new();
    for entry in &set.entries {
        match &entry.runner {
            Runner::Builtin => builtins.push(entry.tool.name.to_string()),
            Runner::Gateway(tool) => {
                let name = tool.upstream.name.clone();
                match upstreams.iter_mut().find(|(u, _)| *u == name) {
                    Some((_, tools)) => tools.push(entry.tool.name.to_string()),
                    None => upstreams.push((name, vec![entry.tool.name.to_string()])),
                }
            }
        }
    }
    for (upstream, tools) in &upstreams {
        text.push_str(&format!(" Tools for {upstream}: {}.", tools.join(", ")));
    }
    if !builtins.is_empty() {
        text.push_str(&format!(
            " Built-in tools about this connection and its organization's access: {}.",
            builtins.join(", ")
        ));
    }
    if builtins.iter().any(|b| b == "whoami") {
        text.push_str(" Call whoami to see which account and scopes this connection has.");
    }
    text
}
