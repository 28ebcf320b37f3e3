//! The OAuth clients the user has let in (their live grants), and revoking
//! them: the grant is marked in this instance's revocation set at once, so
//! its access tokens stop here immediately and on other instances within
//! `revocation_poll`, the same bound the MCP layer uses.

use askama::Template;
use axum::{
    Form,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{Chrome, Console, back_to, when};
use crate::{state::AppState, web::PageError};

struct AppRow {
    grant_id: String,
    client_name: String,
    redirect_host: String,
    scopes: String,
    org: String,
    connected: String,
    last_used: String,
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
    grant_id: String,
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
    let apps = state
        .store
        .grants(Some(console.user.id), None)
        .await?
        .into_iter()
        .map(|g| AppRow {
            grant_id: g.id.to_string(),
            redirect_host: redirect_host(&g.redirect_uri),
            scopes: g.scope.to_string(),
            org: console.org_name(g.org_id),
            connected: when(g.created_at),
            last_used: when(g.last_used_at),
            client_name: g.client_name,
        })
        .collect();
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
    let grant_id: Uuid = form
        .grant_id
        .trim()
        .parse()
        .map_err(|_| PageError::bad_request("That is not an app connection id."))?;
    if !state
        .store
        .revoke_own_grant(console.user.id, grant_id)
        .await?
    {
        return Err(PageError {
            status: StatusCode::NOT_FOUND,
            title: "No such app",
            message:
                "You have no connected app with that id. It may have been disconnected already."
                    .into(),
        });
    }
    crate::oauth::revocation::revoked(
        &state,
        crate::oauth::revocation::Revocation::Grant(grant_id),
    )
    .await;
    tracing::info!(user_id = %console.user.id, %grant_id, "grant revoked in the console");
    Ok(back_to("/console/apps", &console, "app-revoked").into_response())
}
