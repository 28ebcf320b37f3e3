//! The built-in tools (SPEC §4.6). Each runs with the caller's [`Identity`]
//! and only ever sees the caller's org; none knows how the caller
//! authenticated. Whether the caller may call a tool at all was decided
//! before it runs (see `server.rs`).

use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::auth::Identity;
use crate::{
    state::AppState,
    store::{StoreError, ToolCallFilter},
};

/// A built-in tool as listed in `tools/list`.
pub struct BuiltinTool {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// Properties of the input object besides `confirm`, and which are required.
    properties: fn() -> Value,
    required: &'static [&'static str],
}

impl BuiltinTool {
    /// The JSON Schema of the arguments; destructive tools also take the
    /// `confirm` flag (SPEC §4.5).
    pub fn input_schema(&self, destructive: bool) -> serde_json::Map<String, Value> {
        let schema = json!({
            "type": "object",
            "properties": (self.properties)(),
            "required": self.required,
            "additionalProperties": false,
        });
        let Value::Object(mut schema) = schema else {
            unreachable!("built from an object literal")
        };
        if destructive {
            require_confirmation(&mut schema);
        }
        schema
    }
}

/// Adds the required `confirm` flag of destructive tools (SPEC §4.5) to an
/// object schema.
pub fn require_confirmation(schema: &mut serde_json::Map<String, Value>) {
    let properties = schema.entry("properties").or_insert_with(|| json!({}));
    if let Value::Object(properties) = properties {
        properties.insert(
            "confirm".into(),
            json!({
                "type": "boolean",
                "description": "Must be true to carry out this irreversible action. Ask the user first."
            }),
        );
    }
    let required = schema.entry("required").or_insert_with(|| json!([]));
    if let Value::Array(required) = required
        && !required.contains(&json!("confirm"))
    {
        required.push(json!("confirm"));
    }
}

pub const BUILTIN: &[BuiltinTool] = &[
    BuiltinTool {
        name: "whoami",
        title: "Who am I",
        description: "Show who this connection acts as: user id, email, organization id, how it \
            authenticated (mcp-oauth, mcp-bearer or mcp-client-credentials), the scopes it holds, and the OAuth client id \
            or API key id. Use it to check which account and permissions are in effect.",
        properties: || json!({}),
        required: &[],
    },
    BuiltinTool {
        name: "list_api_keys",
        title: "List API keys",
        description: "List the active API keys of the caller's organization: id, name, owner \
            user id, scopes, creation and last-use times (Unix seconds). Secrets are never shown. \
            Use the id with delete_api_key.",
        properties: || json!({}),
        required: &[],
    },
    BuiltinTool {
        name: "list_connected_apps",
        title: "List connected apps",
        description: "List the OAuth apps (such as ChatGPT, Claude or Cursor) currently \
            authorized to act for members of the caller's organization: id, client id, app \
            name, user id, granted scopes, when it was connected and last used (Unix seconds). \
            Use the id with delete_connected_app.",
        properties: || json!({}),
        required: &[],
    },
    BuiltinTool {
        name: "list_members",
        title: "List organization members",
        description: "List the members of the caller's organization with their user id, email, \
            role (viewer, member or admin) and when they joined (Unix seconds).",
        properties: || json!({}),
        required: &[],
    },
    BuiltinTool {
        name: "list_tool_calls",
        title: "List recent tool calls",
        description: "List recent MCP tool calls made in the caller's organization, newest \
            first: time (Unix seconds), user id, source, client or API key id, tool name, \
            outcome (ok, error, denied, rate_limited) and duration in milliseconds. Optionally \
            filter by tool name or outcome.",
        properties: || {
            json!({
                "tool": {"type": "string", "description": "Only calls of this tool, e.g. \"whoami\"."},
                "outcome": {
                    "type": "string",
                    "enum": ["ok", "error", "denied", "rate_limited"],
                    "description": "Only calls with this outcome."
                },
                "limit": {
                    "type": "integer", "minimum": 1, "maximum": 200, "default": 50,
                    "description": "How many calls to return at most."
                }
            })
        },
        required: &[],
    },
    BuiltinTool {
        name: "delete_api_key",
        title: "Delete an API key",
        description: "Permanently revoke one API key of the caller's organization; programs \
            using it lose access within seconds. Get the id from list_api_keys. Irreversible: \
            requires confirm: true.",
        properties: || {
            json!({
                "id": {"type": "string", "description": "The API key id from list_api_keys (32 hex characters)."}
            })
        },
        required: &["id"],
    },
    BuiltinTool {
        name: "delete_connected_app",
        title: "Disconnect an app",
        description: "Disconnect one OAuth app from the caller's organization: its access and \
            refresh tokens stop working at once and the user must authorize it again. Get the id \
            from list_connected_apps. Irreversible: requires confirm: true.",
        properties: || {
            json!({
                "id": {"type": "string", "format": "uuid", "description": "The connected app id from list_connected_apps."}
            })
        },
        required: &["id"],
    },
];

/// A tool that ran but failed; its text is shown to the model as an `isError` result.
#[derive(Debug)]
pub struct ToolFailure(pub String);

impl From<StoreError> for ToolFailure {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "tool failed on a store error");
        ToolFailure("The server could not complete this tool call. Try again later.".into())
    }
}

type ToolResult = Result<Value, ToolFailure>;

/// Runs the built-in tool `name`. The result is always a JSON object, as MCP
/// requires of `structuredContent`.
pub async fn run(
    state: &AppState,
    who: &Identity,
    name: &str,
    args: serde_json::Map<String, Value>,
) -> ToolResult {
    // Ids and filters go into statements; PostgreSQL refuses text with NUL.
    if args.values().any(crate::input::json_contains_nul) {
        return Err(ToolFailure(
            "Invalid arguments: text must not contain NUL characters.".into(),
        ));
    }
    match name {
        "whoami" => Ok(whoami(who)),
        "list_api_keys" => list_api_keys(state, who).await,
        "list_connected_apps" => list_connected_apps(state, who).await,
        "list_members" => list_members(state, who).await,
        "list_tool_calls" => list_tool_calls(state, who, parse(args)?).await,
        "delete_api_key" => delete_api_key(state, who, parse(args)?).await,
        "delete_connected_app" => delete_connected_app(state, who, parse(args)?).await,
        other => Err(ToolFailure(format!("{other} is not implemented."))),
    }
}

/// What a successful call acted on, for the audit record's `detail`: which
/// key or app a `delete_*` call deleted.
pub fn audit_detail(name: &str, result: &Value) -> Option<String> {
    let text = |field: &str| result[field].as_str().unwrap_or_default().to_owned();
    match name {
        "delete_api_key" => Some(format!(
            "deleted API key {} ({:?})",
            text("id"),
            text("name")
        )),
        "delete_connected_app" => Some(format!(
            "deleted connected app {} (client {}, {:?})",
            text("id"),
            text("client_id"),
            text("client_name")
        )),
        _ => None,
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    args: serde_json::Map<String, Value>,
) -> Result<T, ToolFailure> {
    serde_json::from_value(Value::Object(args))
        .map_err(|e| ToolFailure(format!("Invalid arguments: {e}.")))
}

/// SPEC §2.4: exactly these fields, `client_id` or `api_key_id` by source.
fn whoami(who: &Identity) -> Value {
    let mut out = json!({
        "user_id": who.user_id,
        "org_id": who.org_id,
        "email": who.email,
        "source": who.source,
        "scopes": who.scopes.mcp().to_vec(),
    });
    if let Some(client_id) = &who.client_id {
        out["client_id"] = json!(client_id);
    }
    if let Some(key_id) = &who.api_key_id {
        out["api_key_id"] = json!(key_id);
    }
    // A machine client acts for no user: it has no email, and its name
    // says which client it is.
    if let Some(name) = &who.client_name {
        out["client_name"] = json!(name);
        out["email"] = Value::Null;
    }
    out
}

async fn list_api_keys(state: &AppState, who: &Identity) -> ToolResult {
    let keys = state.store.api_keys(None, Some(who.org_id)).await?;
    Ok(json!({ "api_keys": keys }))
}

async fn list_connected_apps(state: &AppState, who: &Identity) -> ToolResult {
    let grants = state.store.grants(None, Some(who.org_id)).await?;
    let apps: Vec<Value> = grants
        .iter()
        .map(|g| {
            json!({
                "id": g.id,
                "client_id": g.client_id,
                "client_name": g.client_name,
                "user_id": g.user_id,
                "scopes": g.scope.to_vec(),
                "connected_at": g.created_at,
                "last_used_at": g.last_used_at,
            })
        })
        .collect();
    Ok(json!({ "connected_apps": apps }))
}

async fn list_members(state: &AppState, who: &Identity) -> ToolResult {
    let members = state.store.members(who.org_id).await?;
    Ok(json!({ "members": members }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolCallsArgs {
    tool: Option<String>,
    outcome: Option<String>,
    limit: Option<i64>,
}

async fn list_tool_calls(state: &AppState, who: &Identity, args: ToolCallsArgs) -> ToolResult {
    let limit = args.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ToolFailure("limit must be between 1 and 200.".into()));
    }
    let filter = ToolCallFilter {
        tool: args.tool,
        outcome: args.outcome,
        limit,
        ..ToolCallFilter::default()
    };
    let calls = state.store.tool_calls(who.org_id, &filter).await?;
    Ok(json!({ "tool_calls": calls }))
}

#[derive(Deserialize)]
struct DeleteArgs {
    id: String,
}

async fn delete_api_key(state: &AppState, who: &Identity, args: DeleteArgs) -> ToolResult {
    let not_found = || ToolFailure(format!("No API key {} in this organization.", args.id));
    let key = state.store.api_key(&args.id).await?.ok_or_else(not_found)?;
    // Another org's key is reported like a missing one so ids cannot be probed.
    if key.org_id != who.org_id || key.revoked_at.is_some() {
        return Err(not_found());
    }
    state.store.revoke_api_key(&key.id).await?;
    crate::oauth::revocation::revoked(
        state,
        crate::oauth::revocation::Revocation::ApiKey(key.id.clone()),
    )
    .await;
    Ok(json!({ "deleted": true, "id": key.id, "name": key.name }))
}

async fn delete_connected_app(state: &AppState, who: &Identity, args: DeleteArgs) -> ToolResult {
    let not_found = || {
        ToolFailure(format!(
            "No connected app {} in this organization.",
            args.id
        ))
    };
    let id = Uuid::parse_str(args.id.trim()).map_err(|_| not_found())?;
    let grant = state.store.grant(id).await?.ok_or_else(not_found)?;
    if grant.org_id != who.org_id || grant.revoked_at.is_some() {
        return Err(not_found());
    }
    state.store.revoke_grant(grant.id).await?;
    crate::oauth::revocation::revoked(state, crate::oauth::revocation::Revocation::Grant(grant.id))
        .await;
    Ok(json!({
        "deleted": true,
        "id": grant.id,
        "client_id": grant.client_id,
        "client_name": grant.client_name,
    }))
}
