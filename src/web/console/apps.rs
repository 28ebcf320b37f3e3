//! The OAuth clients the user has let in, one row per app and organization
//! (an app that signed in several times holds several grants; people see
//! one app), limited to the org chosen in the switcher. Disconnecting an app
//! revokes all of its grants there: each is marked in this instance's
//! revocation set at once, so its access tokens stop here immediately and
//! on other instances within `revocation_poll`, the same bound the MCP
//! layer uses.

use askama::Template;
use axum::{
    Form,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{Chrome, Console, back_to, when};
use crate::{identity::scope::ScopeSet, state::AppState, web::PageError};

struct AppRow {
    client_id: String,
    client_name: String,
    redirect_host: String,
    scopes: String,
    org: String,
    connected: String,
    last_used: String,
    /// How many grants (sign-ins) the row stands for.
    grants: usize,
}

#[derive(Template)]
#[template(path = "console/apps.html")]
struct AppsPage {
    chrome: Chrome,
    apps: Vec<AppRow>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    org: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct RevokeForm {
    csrf: Option<String>,
    #[serde(default)]
    client_id: String,
    org: Option<String>,
}

/// Where the app receives its answers: what the consent page showed, so the
/// user recognises the app by the same name here.
fn redirect_host(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => format!("{}:", u.scheme()),
        },
        Err(_) => uri.to_owned(),
    }
}

pub async fn list(
    State(state): State<AppState>,
    mut console: Console,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    console.select(q.org.as_deref())?;
    let org = console.current.as_ref().map(|m| m.org.id);
    // Newest use first (the store's order), so each app's first grant
    // carries its latest use and redirect host.
    let grants = match org {
        Some(_) => state.store.grants(Some(console.user.id), org).await?,
        None => Vec::new(),
    };
    let mut apps: Vec<AppRow> = Vec::new();
    let mut scopes: Vec<ScopeSet> = Vec::new();
    for g in grants {
        if let Some(i) = apps.iter().position(|a| a.client_id == g.client_id) {
            let row = &mut apps[i];
            row.grants += 1;
            scopes[i] = g.scope.iter().fold(scopes[i], ScopeSet::with);
            row.scopes = scopes[i].to_string();
            row.connected = row.connected.clone().min(when(g.created_at));
            continue;
        }
        scopes.push(g.scope);
        apps.push(AppRow {
            redirect_host: redirect_host(&g.redirect_uri),
            scopes: g.scope.to_string(),
            org: console.org_name(g.org_id),
            connected: when(g.created_at),
            last_used: when(g.last_used_at),
            client_name: g.client_name,
            client_id: g.client_id,
            grants: 1,
        });
    }
    let page = AppsPage {
        chrome: console.chrome("apps", q.notice.as_deref()),
        apps,
    };
    Ok(console.render(&page, StatusCode::OK))
}

pub async fn revoke(
    State(state): State<AppState>,
    mut console: Console,
    Form(form): Form<RevokeForm>,
) -> Result<Response, PageError> {
    console.verify_csrf(form.csrf.as_deref())?;
    console.select(form.org.as_deref())?;
    let org_id = console.require_org()?.org.id;
    let revoked = state
        .store
        .revoke_own_app(console.user.id, form.client_id.trim(), org_id)
        .await?;
    if revoked.is_empty() {
        return Err(PageError {
            status: StatusCode::NOT_FOUND,
            title: "No such app",
            message:
                "You have no connected app with that id here. It may have been disconnected already."
                    .into(),
        });
    }
    for grant_id in &revoked {
        crate::oauth::revocation::revoked(
            &state,
            crate::oauth::revocation::Revocation::Grant(*grant_id),
        )
        .await;
    }
    tracing::info!(user_id = %console.user.id, client_id = %form.client_id.trim(), %org_id, grants = revoked.len(), "app disconnected in the console");
    Ok(back_to("/console/apps", &console, "app-revoked").into_response())
}
