//! Machine access of an organization, for its admins (issue 16): the
//! enterprise identity providers it trusts to assert its members (README
//! "Enterprise sign-in (identity assertions)") and its service clients
//! (README "Machine clients"). A new client's secret is shown once, on the
//! answer to the form that created it.

use askama::Template;
use axum::{
    Form,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{Choice, Chrome, Console, back_to, when};
use crate::{
    admin::AdminError,
    machine_admin::{self, ServiceAuth},
    state::AppState,
    web::PageError,
};

const ROLES: [&str; 3] = ["viewer", "member", "admin"];

struct IdpRow {
    issuer: String,
    jwks_uri: String,
    algorithms: String,
    link_by_email: bool,
}

struct ClientRow {
    id: String,
    name: String,
    role: String,
    scopes: String,
    method: String,
    created: String,
    revoked: Option<String>,
}

/// A client just created: its id and, for a secret client, the secret.
struct Created {
    client_id: String,
    secret: Option<String>,
}

#[derive(Template)]
#[template(path = "console/machines.html")]
struct MachinesPage {
    chrome: Chrome,
    org_name: String,
    org_id: String,
    idps: Vec<IdpRow>,
    clients: Vec<ClientRow>,
    roles: Vec<Choice>,
    created: Option<Created>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct ShowQuery {
    org: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct CreateClientForm {
    csrf: Option<String>,
    org: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    jwks_uri: String,
}

#[derive(Deserialize)]
pub struct RevokeClientForm {
    csrf: Option<String>,
    org: String,
    client_id: String,
}

#[derive(Deserialize)]
pub struct TrustForm {
    csrf: Option<String>,
    org: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    jwks_uri: String,
    #[serde(default)]
    algorithms: String,
    link_by_email: Option<String>,
}

#[derive(Deserialize)]
pub struct RemoveForm {
    csrf: Option<String>,
    org: String,
    issuer: String,
}

pub async fn show(
    State(state): State<AppState>,
    mut console: Console,
    Query(q): Query<ShowQuery>,
) -> Result<Response, PageError> {
    console.select(q.org.as_deref())?;
    page(
        &state,
        console,
        q.notice.as_deref(),
        None,
        None,
        StatusCode::OK,
    )
    .await
}

async fn page(
    state: &AppState,
    console: Console,
    notice: Option<&str>,
    created: Option<Created>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let org = console.require_admin()?.org.clone();
    let idps = state
        .store
        .enterprise_idps(org.id)
        .await?
        .into_iter()
        .map(|i| IdpRow {
            algorithms: i.algorithms.join(" "),
            issuer: i.issuer,
            jwks_uri: i.jwks_uri,
            link_by_email: i.link_by_email,
        })
        .collect();
    let clients = state
        .store
        .service_clients(org.id)
        .await?
        .into_iter()
        .map(|c| ClientRow {
            id: c.id.to_string(),
            name: c.name,
            role: c.role.as_str().to_owned(),
            scopes: c.scope.to_string(),
            method: c.auth_method,
            created: when(c.created_at),
            revoked: c.revoked_at.map(when),
        })
        .collect();
    let page = MachinesPage {
        chrome: console.chrome("org", notice),
        org_name: org.name,
        org_id: org.id.to_string(),
        idps,
        clients,
        roles: Choice::list(&ROLES, "member"),
        created,
        error,
    };
    Ok(console.render(&page, status))
}

fn authorize(console: &mut Console, csrf: Option<&str>, org: &str) -> Result<Uuid, PageError> {
    console.verify_csrf(csrf)?;
    console.select(Some(org))?;
    Ok(console.require_admin()?.org.id)
}

/// An admin-operation failure as the sentence shown above the forms.
fn explain(e: AdminError) -> Result<(String, StatusCode), PageError> {
    match e {
        AdminError::Invalid(m) => Ok((format!("{m}."), StatusCode::BAD_REQUEST)),
        AdminError::NotFound(what) => Ok((format!("No such {what}."), StatusCode::NOT_FOUND)),
        AdminError::Store(e) => Err(e.into()),
        e => {
            tracing::error!(error = %e, "machine access change from the console failed");
            Err(PageError::internal())
        }
    }
}

pub async fn create_client(
    State(state): State<AppState>,
    mut console: Console,
    Form(form): Form<CreateClientForm>,
) -> Result<Response, PageError> {
    let org_id = authorize(&mut console, form.csrf.as_deref(), &form.org)?;
    let Some(role) = crate::identity::scope::Role::parse(&form.role) else {
        let message = "Choose a role: viewer, member or admin.".to_owned();
        return page(
            &state,
            console,
            None,
            None,
            Some(message),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let jwks_uri = form.jwks_uri.trim();
    let auth = if jwks_uri.is_empty() {
        ServiceAuth::Secret
    } else {
        ServiceAuth::JwksUri(jwks_uri.to_owned())
    };
    let scopes = Some(form.scopes.trim()).filter(|s| !s.is_empty());
    match machine_admin::create_service_client(&state.store, org_id, &form.name, role, scopes, auth)
        .await
    {
        Ok(created) => {
            tracing::info!(admin = %console.user.id, %org_id, client_id = %created["client_id"], "service client created in the console");
            let created = Created {
                client_id: created["client_id"].as_str().unwrap_or_default().to_owned(),
                secret: created["client_secret"].as_str().map(str::to_owned),
            };
            page(&state, console, None, Some(created), None, StatusCode::OK).await
        }
        Err(e) => {
            let (message, status) = explain(e)?;
            page(&state, console, None, None, Some(message), status).await
        }
    }
}

pub async fn revoke_client(
    State(state): State<AppState>,
    mut console: Console,
    Form(form): Form<RevokeClientForm>,
) -> Result<Response, PageError> {
    let org_id = authorize(&mut console, form.csrf.as_deref(), &form.org)?;
    let id: Uuid = form
        .client_id
        .trim()
        .parse()
        .map_err(|_| PageError::bad_request("That is not a service client id."))?;
    match machine_admin::revoke_service_client(&state.store, id, Some(org_id)).await {
        Ok(_) => {
            // This instance refuses its tokens at once; others within the poll.
            state.revoked.mark(id);
            state.service_clients.invalidate(&id);
            tracing::info!(admin = %console.user.id, %org_id, client_id = %id, "service client revoked in the console");
            Ok(
                back_to("/console/org/machines", &console, "service-client-revoked")
                    .into_response(),
            )
        }
        Err(e) => {
            let (message, status) = explain(e)?;
            page(&state, console, None, None, Some(message), status).await
        }
    }
}

pub async fn trust(
    State(state): State<AppState>,
    mut console: Console,
    Form(form): Form<TrustForm>,
) -> Result<Response, PageError> {
    let org_id = authorize(&mut console, form.csrf.as_deref(), &form.org)?;
    let algorithms = Some(form.algorithms.trim()).filter(|a| !a.is_empty());
    match machine_admin::trust_idp(
        &state.store,
        org_id,
        form.issuer.trim(),
        form.jwks_uri.trim(),
        algorithms,
        form.link_by_email.is_some(),
    )
    .await
    {
        Ok(_) => {
            tracing::info!(admin = %console.user.id, %org_id, issuer = %form.issuer.trim(), "identity provider trusted in the console");
            Ok(back_to("/console/org/machines", &console, "idp-trusted").into_response())
        }
        Err(e) => {
            let (message, status) = explain(e)?;
            page(&state, console, None, None, Some(message), status).await
        }
    }
}

pub async fn remove(
    State(state): State<AppState>,
    mut console: Console,
    Form(form): Form<RemoveForm>,
) -> Result<Response, PageError> {
    let org_id = authorize(&mut console, form.csrf.as_deref(), &form.org)?;
    match machine_admin::remove_idp(&state.store, org_id, &form.issuer).await {
        Ok(_) => {
            tracing::info!(admin = %console.user.id, %org_id, issuer = %form.issuer, "identity provider removed in the console");
            Ok(back_to("/console/org/machines", &console, "idp-removed").into_response())
        }
        Err(e) => {
            let (message, status) = explain(e)?;
            page(&state, console, None, None, Some(message), status).await
        }
    }
}
