//! The user's API keys: list, create (the secret is shown once), revoke.

use askama::Template;
use axum::{
    Form,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{Chrome, Console, back_to, connect::Snippets, when};
use crate::{
    admin::{self, AdminError},
    identity::scope::{Role, Scope, ScopeSet},
    state::AppState,
    web::PageError,
};

struct KeyRow {
    id: String,
    name: String,
    label: String,
    scopes: String,
    created: String,
    last_used: String,
    org: String,
}

struct ScopeOption {
    field: &'static str,
    value: &'static str,
    description: &'static str,
    available: bool,
    checked: bool,
}

struct OrgOption {
    id: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage {
    chrome: Chrome,
    keys: Vec<KeyRow>,
    orgs: Vec<OrgOption>,
    scopes: Vec<ScopeOption>,
    name: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/key_created.html")]
struct KeyCreatedPage {
    chrome: Chrome,
    name: String,
    label: String,
    key: String,
    org_name: String,
    org_id: String,
    scopes: String,
    snippets: Snippets,
}

#[derive(Deserialize)]
pub struct ListQuery {
    org: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct CreateForm {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    org: String,
    mcp_read: Option<String>,
    mcp_write: Option<String>,
    mcp_admin: Option<String>,
}

impl CreateForm {
    fn scopes(&self) -> ScopeSet {
        [
            (&self.mcp_read, Scope::McpRead),
            (&self.mcp_write, Scope::McpWrite),
            (&self.mcp_admin, Scope::McpAdmin),
        ]
        .into_iter()
        .filter(|(field, _)| field.is_some())
        .fold(ScopeSet::EMPTY, |set, (_, scope)| set.with(scope))
    }
}

#[derive(Deserialize)]
pub struct RevokeForm {
    csrf: Option<String>,
    id: String,
    org: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    mut console: Console,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    console.select(q.org.as_deref())?;
    let scopes = default_scopes(&console);
    page(
        &state,
        console,
        q.notice.as_deref(),
        String::new(),
        scopes,
        None,
        StatusCode::OK,
    )
    .await
}

/// The default for a new key: read and write where the user may write.
fn default_scopes(console: &Console) -> ScopeSet {
    let ceiling = console
        .current
        .as_ref()
        .map_or(ScopeSet::EMPTY, |m| m.role.ceiling());
    ScopeSet::of(&[Scope::McpRead, Scope::McpWrite]).intersect(ceiling)
}

async fn page(
    state: &AppState,
    console: Console,
    notice: Option<&str>,
    name: String,
    checked: ScopeSet,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let prefix = &state.config.api_key_prefix;
    let keys = state
        .store
        // The org chosen in the switcher: its keys only.
        .api_keys(
            Some(console.user.id),
            console.current.as_ref().map(|m| m.org.id),
        )
        .await?
        .into_iter()
        .map(|k| KeyRow {
            label: label(prefix, &k.id),
            name: k.name,
            scopes: k.scopes.to_string(),
            created: when(k.created_at),
            last_used: k.last_used_at.map_or_else(|| "never".into(), when),
            org: console.org_name(k.org_id),
            id: k.id,
        })
        .collect();
    // The form offers each scope some org allows; the chosen org's role is
    // checked on submit, with a message naming the limit.
    let best = console
        .memberships
        .iter()
        .map(|m| m.role)
        .max_by_key(|r| rank(*r));
    let allowed = best.map_or(ScopeSet::EMPTY, Role::ceiling);
    let scopes = Scope::MCP
        .into_iter()
        .map(|s| ScopeOption {
            field: match s {
                Scope::McpRead => "mcp_read",
                Scope::McpWrite => "mcp_write",
                _ => "mcp_admin",
            },
            value: s.as_str(),
            description: s.description(),
            available: allowed.contains(s),
            checked: checked.contains(s),
        })
        .collect();
    let current = console.current.as_ref().map(|m| m.org.id);
    let orgs = console
        .memberships
        .iter()
        .map(|m| OrgOption {
            id: m.org.id.to_string(),
            label: format!("{} (you are {})", m.org.name, m.role),
            selected: Some(m.org.id) == current,
        })
        .collect();
    let page = KeysPage {
        chrome: console.chrome("keys", notice),
        keys,
        orgs,
        scopes,
        name,
        error,
    };
    Ok(console.render(&page, status))
}

fn rank(role: Role) -> u8 {
    match role {
        Role::Viewer => 0,
        Role::Member => 1,
        Role::Admin => 2,
    }
}

/// How a key is recognised in lists: the prefix and the start of its id,
/// which is also the start of the key itself. Never any of the secret.
fn label(prefix: &str, id: &str) -> String {
    format!("{prefix}_{}…", &id[..id.len().min(8)])
}

pub async fn create(
    State(state): State<AppState>,
    mut console: Console,
    Form(form): Form<CreateForm>,
) -> Result<Response, PageError> {
    console.verify_csrf(form.csrf.as_deref())?;
    console.select(Some(&form.org))?;
    let membership = console.require_org()?.clone();
    let requested = form.scopes();
    let name = form.name.trim().to_owned();
    let refuse = |console, message: String, status| {
        page(
            &state,
            console,
            None,
            name.clone(),
            requested,
            Some(message),
            status,
        )
    };
    if name.is_empty() || name.chars().count() > 100 {
        let message = "Give the key a name of 1 to 100 characters, such as the machine or tool that will use it.";
        return refuse(console, message.into(), StatusCode::BAD_REQUEST).await;
    }
    if requested.is_empty() {
        let message = "Choose at least one scope.";
        return refuse(console, message.into(), StatusCode::BAD_REQUEST).await;
    }
    let ceiling = membership.role.ceiling().mcp();
    if !requested.is_subset_of(ceiling) {
        let message = format!(
            "As a {} in {}, you can create keys with at most {ceiling}. Untick the other scopes or ask an admin for a higher role.",
            membership.role, membership.org.name
        );
        return refuse(console, message, StatusCode::FORBIDDEN).await;
    }
    let minted = match admin::mint_api_key(
        &state.store,
        &state.config.api_key_prefix,
        &console.user,
        membership.org.id,
        Some(requested),
        Some(&name),
    )
    .await
    {
        Ok(minted) => minted,
        // The role changed between the check above and the insert.
        Err(AdminError::Invalid(message)) => {
            return refuse(console, message, StatusCode::FORBIDDEN).await;
        }
        Err(AdminError::Store(e)) => return Err(e.into()),
        Err(e) => {
            tracing::error!(error = %e, "minting an API key from the console failed");
            return Err(PageError::internal());
        }
    };
    tracing::info!(user_id = %console.user.id, key_id = %minted.key.id, org_id = %membership.org.id, "API key created in the console");
    let org_id = membership.org.id.to_string();
    let page = KeyCreatedPage {
        chrome: console.chrome("keys", None),
        snippets: Snippets::new(
            &state.config.resource(),
            &state.config.org_header,
            &org_id,
            minted.secret.expose(),
        ),
        name: minted.key.name,
        label: label(&state.config.api_key_prefix, &minted.key.id),
        key: minted.secret.expose().to_owned(),
        org_name: membership.org.name,
        org_id,
        scopes: minted.key.scopes.to_string(),
    };
    Ok(console.render(&page, StatusCode::CREATED))
}

pub async fn revoke(
    State(state): State<AppState>,
    mut console: Console,
    Form(form): Form<RevokeForm>,
) -> Result<Response, PageError> {
    console.verify_csrf(form.csrf.as_deref())?;
    console.select(form.org.as_deref())?;
    if !state
        .store
        .revoke_own_api_key(console.user.id, &form.id)
        .await?
    {
        return Err(PageError {
            status: StatusCode::NOT_FOUND,
            title: "No such key",
            message: "You have no active API key with that id. It may have been revoked already."
                .into(),
        });
    }
    crate::oauth::revocation::revoked(
        &state,
        crate::oauth::revocation::Revocation::ApiKey(form.id.clone()),
    )
    .await;
    tracing::info!(user_id = %console.user.id, key_id = %form.id, "API key revoked in the console");
    Ok(back_to("/console/keys", &console, "key-revoked").into_response())
}
