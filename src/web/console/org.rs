//! The organization's members, for its admins: list, add an existing user,
//! create a user, change a role. Lowering a role takes effect for API keys at
//! their next use and for OAuth apps at their next refresh, because both are
//! limited by the role's ceiling then (SPEC §2.4).

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
    admin::{self, AdminError},
    identity::scope::Role,
    state::AppState,
    store::RoleChange,
    web::PageError,
};

use crate::identity::passwords::MIN_PASSWORD_CHARS;
const ROLES: [&str; 3] = ["viewer", "member", "admin"];

struct MemberRow {
    user_id: String,
    email: String,
    roles: Vec<Choice>,
    joined: String,
    is_me: bool,
    disabled: bool,
    /// The admin may disable, enable or reset the whole account.
    manages: bool,
    /// How the member signs in: provider names, or "password".
    sign_in: String,
}

#[derive(Template)]
#[template(path = "console/org.html")]
struct OrgPage {
    chrome: Chrome,
    org_name: String,
    org_id: String,
    /// The product's own id for the org (identity provider claims).
    external_id: Option<String>,
    members: Vec<MemberRow>,
    /// The role offered for a new member.
    new_roles: Vec<Choice>,
    error: Option<String>,
    min_password: usize,
}

#[derive(Deserialize)]
pub struct ShowQuery {
    org: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct AddForm {
    csrf: Option<String>,
    org: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

#[derive(Deserialize)]
pub struct CreateForm {
    csrf: Option<String>,
    org: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
}

#[derive(Deserialize)]
pub struct RoleForm {
    csrf: Option<String>,
    org: String,
    user_id: String,
    #[serde(default)]
    role: String,
}

pub async fn show(
    State(state): State<AppState>,
    mut console: Console,
    Query(q): Query<ShowQuery>,
) -> Result<Response, PageError> {
    console.select(q.org.as_deref())?;
    page(&state, console, q.notice.as_deref(), None, StatusCode::OK).await
}

pub(super) async fn page(
    state: &AppState,
    console: Console,
    notice: Option<&str>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let org = console.require_admin()?.org.clone();
    let accounts = state.store.users(Some(org.id)).await?;
    let providers = state.store.org_member_providers(org.id).await?;
    let external_id = state.store.org_external_id(org.id).await?;
    let members = state
        .store
        .members(org.id)
        .await?
        .into_iter()
        .map(|m| MemberRow {
            sign_in: {
                let names: Vec<String> = providers
                    .iter()
                    .filter(|(user, _)| *user == m.user_id)
                    .map(|(_, id)| state.providers.display_name(id))
                    .collect();
                if names.is_empty() {
                    "password".to_owned()
                } else {
                    names.join(", ")
                }
            },
            user_id: m.user_id.to_string(),
            is_me: m.user_id == console.user.id,
            disabled: accounts
                .iter()
                .any(|a| a.id == m.user_id && a.disabled_at.is_some()),
            manages: accounts.iter().any(|a| {
                a.id == m.user_id && super::members::manages(&console, &a.memberships, a.id)
            }),
            email: m.email,
            roles: Choice::list(&ROLES, m.role.as_str()),
            joined: when(m.joined_at),
        })
        .collect();
    let page = OrgPage {
        chrome: console.chrome("org", notice),
        org_name: org.name,
        org_id: org.id.to_string(),
        external_id,
        members,
        new_roles: Choice::list(&ROLES, "member"),
        error,
        min_password: MIN_PASSWORD_CHARS,
    };
    Ok(console.render(&page, status))
}

/// The checks every member-changing form shares: a genuine form, from an
/// admin of the org it names.
fn authorize(console: &mut Console, csrf: Option<&str>, org: &str) -> Result<Uuid, PageError> {
    console.verify_csrf(csrf)?;
    console.select(Some(org))?;
    Ok(console.require_admin()?.org.id)
}

fn parse_role(role: &str) -> Result<Role, String> {
    Role::parse(role).ok_or_else(|| "Choose a role: viewer, member or admin.".to_owned())
}

pub async fn add_member(
    State(state): State<AppState>,
    mut console: Console,
    Form(form): Form<AddForm>,
) -> Result<Response, PageError> {
    let org_id = authorize(&mut console, form.csrf.as_deref(), &form.org)?;
    let email = form.email.trim();
    let role = match parse_role(&form.role) {
        Ok(role) => role,
        Err(message) => {
            return page(
                &state,
                console,
                None,
                Some(message),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    let Some(user) = state.store.user_by_email(email).await? else {
        let message = format!(
            "There is no user with the email {email:?}. Create them below with a password instead."
        );
        return page(&state, console, None, Some(message), StatusCode::NOT_FOUND).await;
    };
    if let Some(existing) = state.store.role(user.id, org_id).await? {
        let message = format!(
            "{} is already a member (as {existing}). Change their role in the list instead.",
            user.email
        );
        return page(&state, console, None, Some(message), StatusCode::CONFLICT).await;
    }
    // A new member was not an admin, so this cannot be the last-admin case.
    state.store.set_membership(user.id, org_id, role).await?;
    tracing::info!(admin = %console.user.id, user_id = %user.id, %org_id, %role, "member added in the console");
    Ok(back_to("/console/org", &console, "member-added").into_response())
}

pub async fn create_user(
    State(state): State<AppState>,
    mut console: Console,
    Form(form): Form<CreateForm>,
) -> Result<Response, PageError> {
    let org_id = authorize(&mut console, form.csrf.as_deref(), &form.org)?;
    let role = match parse_role(&form.role) {
        Ok(role) => role,
        Err(message) => {
            return page(
                &state,
                console,
                None,
                Some(message),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    if form.password.chars().count() < MIN_PASSWORD_CHARS {
        let message = format!("Choose a password of at least {MIN_PASSWORD_CHARS} characters.");
        return page(
            &state,
            console,
            None,
            Some(message),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let created = admin::create_user(
        &state.store,
        &state.passwords,
        &form.email,
        &form.password,
        org_id,
        role,
    )
    .await;
    let (message, status) = match created {
        Ok(_) => {
            tracing::info!(admin = %console.user.id, %org_id, %role, "user created in the console");
            return Ok(back_to("/console/org", &console, "user-created").into_response());
        }
        Err(AdminError::Exists(_)) => (
            "A user with this email already exists. Add them with the form above instead.".into(),
            StatusCode::CONFLICT,
        ),
        Err(AdminError::Invalid(message)) => (
            format!("{}.", capitalize(&message)),
            StatusCode::BAD_REQUEST,
        ),
        Err(AdminError::Store(e)) => return Err(e.into()),
        Err(e) => {
            tracing::error!(error = %e, "creating a user from the console failed");
            return Err(PageError::internal());
        }
    };
    page(&state, console, None, Some(message), status).await
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

pub async fn set_role(
    State(state): State<AppState>,
    mut console: Console,
    Form(form): Form<RoleForm>,
) -> Result<Response, PageError> {
    let org_id = authorize(&mut console, form.csrf.as_deref(), &form.org)?;
    let role = match parse_role(&form.role) {
        Ok(role) => role,
        Err(message) => {
            return page(
                &state,
                console,
                None,
                Some(message),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    let user_id: Uuid = form
        .user_id
        .trim()
        .parse()
        .map_err(|_| PageError::bad_request("That is not a user id."))?;
    let members = state.store.members(org_id).await?;
    let Some(target) = members.iter().find(|m| m.user_id == user_id) else {
        let message = "That user is not a member of this organization.".to_owned();
        return page(&state, console, None, Some(message), StatusCode::NOT_FOUND).await;
    };
    // An org without an admin could never be managed again from the console.
    let admins = members.iter().filter(|m| m.role == Role::Admin).count();
    if target.role == Role::Admin && role != Role::Admin && admins == 1 {
        let message = format!(
            "{} is the only admin of this organization. Make someone else an admin first.",
            target.email
        );
        return page(&state, console, None, Some(message), StatusCode::CONFLICT).await;
    }
    // Checked again inside the store's transaction: two admins demoting each
    // other at once both pass the check above.
    if state.store.set_membership(user_id, org_id, role).await? == RoleChange::LastAdmin {
        let message = format!(
            "{} is the only admin of this organization. Make someone else an admin first.",
            target.email
        );
        return page(&state, console, None, Some(message), StatusCode::CONFLICT).await;
    }
    crate::oauth::revocation::revoked(
        &state,
        crate::oauth::revocation::Revocation::Membership { user_id, org_id },
    )
    .await;
    tracing::info!(admin = %console.user.id, %user_id, %org_id, %role, "role changed in the console");
    Ok(back_to("/console/org", &console, "role-changed").into_response())
}
