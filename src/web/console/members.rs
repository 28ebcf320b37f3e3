//! What an org's admins do to its members beyond roles (README "Accounts"):
//! remove a member, unlock their sign-in, and — for accounts that belong
//! only to orgs the admin administers, so one org's admin cannot take over
//! an account another org relies on — disable, enable or send a one-time
//! password reset link. Also renaming the org. Every action goes through
//! `identity::accounts`, like the command line.

use askama::Template;
use axum::{
    Form,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{Chrome, Console, back_to, org, sentence, when};
use crate::{
    identity::{
        accounts::{self, AccountError},
        scope::Role,
    },
    state::AppState,
    store::User,
    web::PageError,
};

#[derive(Deserialize)]
pub struct MemberForm {
    csrf: Option<String>,
    org: String,
    user_id: String,
}

#[derive(Deserialize)]
pub struct RenameForm {
    csrf: Option<String>,
    org: String,
    #[serde(default)]
    name: String,
}

#[derive(Template)]
#[template(path = "console/reset_link.html")]
struct ResetLinkPage {
    chrome: Chrome,
    email: String,
    url: String,
    expires: String,
}

/// A genuine form from an admin of the org it names; the member it names.
async fn target(
    state: &AppState,
    console: &mut Console,
    form: &MemberForm,
) -> Result<(Uuid, User), PageError> {
    console.verify_csrf(form.csrf.as_deref())?;
    console.select(Some(&form.org))?;
    let org_id = console.require_admin()?.org.id;
    let user_id: Uuid = form
        .user_id
        .trim()
        .parse()
        .map_err(|_| PageError::bad_request("That is not a user id."))?;
    let member = state
        .store
        .users(Some(org_id))
        .await?
        .into_iter()
        .any(|u| u.id == user_id);
    let user = state
        .store
        .user(user_id)
        .await?
        .filter(|_| member)
        .ok_or_else(|| PageError {
            status: StatusCode::NOT_FOUND,
            title: "No such member",
            message: "That user is not a member of this organization.".into(),
        })?;
    Ok((org_id, user))
}

/// Whether the signed-in admin may act on the whole account: it belongs only
/// to orgs they administer, and it is not their own.
pub(super) fn manages(
    console: &Console,
    memberships: &[crate::store::UserOrg],
    user_id: Uuid,
) -> bool {
    user_id != console.user.id
        && memberships.iter().all(|m| {
            console
                .membership(m.org_id)
                .is_some_and(|mine| mine.role == Role::Admin)
        })
}

async fn require_manages(
    state: &AppState,
    console: &Console,
    user: &User,
) -> Result<(), PageError> {
    let memberships = state
        .store
        .users(None)
        .await?
        .into_iter()
        .find(|u| u.id == user.id)
        .map(|u| u.memberships)
        .unwrap_or_default();
    if manages(console, &memberships, user.id) {
        Ok(())
    } else {
        Err(PageError::forbidden(format!(
            "{} also belongs to organizations you do not administer (or is you), so only an operator can change the account (portcullis user …).",
            user.email
        )))
    }
}

async fn refused(
    state: &AppState,
    console: Console,
    e: AccountError,
) -> Result<Response, PageError> {
    let status = match &e {
        AccountError::NotFound(_) => StatusCode::NOT_FOUND,
        AccountError::Conflict(_) | AccountError::LastAdmin(_) => StatusCode::CONFLICT,
        AccountError::Invalid(_) | AccountError::Password(_) => StatusCode::BAD_REQUEST,
        AccountError::Store(_) => return Err(PageError::internal()),
    };
    org::page(state, console, None, Some(sentence(&e.to_string())), status).await
}

pub async fn remove(
    State(state): State<AppState>,
    mut console: Console,
    Form(form): Form<MemberForm>,
) -> Result<Response, PageError> {
    let (org_id, user) = target(&state, &mut console, &form).await?;
    match accounts::remove_member(&state.store, user.id, org_id).await {
        Ok(revoked) => {
            accounts::apply_locally(&state, &revoked);
            tracing::info!(admin = %console.user.id, user_id = %user.id, %org_id, "member removed in the console");
            Ok(back_to("/console/org", &console, "member-removed").into_response())
        }
        Err(e) => refused(&state, console, e).await,
    }
}

pub async fn disable(
    State(state): State<AppState>,
    mut console: Console,
    Form(form): Form<MemberForm>,
) -> Result<Response, PageError> {
    let (_, user) = target(&state, &mut console, &form).await?;
    require_manages(&state, &console, &user).await?;
    match accounts::disable_user(&state.store, user.id).await {
        Ok(()) => {
            crate::oauth::revocation::apply(
                &state,
                &crate::oauth::revocation::Revocation::User(user.id),
            );
            Ok(back_to("/console/org", &console, "user-disabled").into_response())
        }
        Err(e) => refused(&state, console, e).await,
    }
}

pub async fn enable(
    State(state): State<AppState>,
    mut console: Console,
    Form(form): Form<MemberForm>,
) -> Result<Response, PageError> {
    let (_, user) = target(&state, &mut console, &form).await?;
    require_manages(&state, &console, &user).await?;
    match accounts::enable_user(&state.store, user.id).await {
        Ok(()) => Ok(back_to("/console/org", &console, "user-enabled").into_response()),
        Err(e) => refused(&state, console, e).await,
    }
}

pub async fn unlock(
    State(state): State<AppState>,
    mut console: Console,
    Form(form): Form<MemberForm>,
) -> Result<Response, PageError> {
    let (_, user) = target(&state, &mut console, &form).await?;
    match accounts::unlock_sign_in(&state.store, &user.email).await {
        Ok(account) => {
            // This instance at once; others at the account's next attempt.
            state
                .login_throttle
                .apply_unlock(&account, None, crate::store::now())
                .await;
            Ok(back_to("/console/org", &console, "user-unlocked").into_response())
        }
        Err(e) => refused(&state, console, e).await,
    }
}

pub async fn reset_link(
    State(state): State<AppState>,
    mut console: Console,
    Form(form): Form<MemberForm>,
) -> Result<Response, PageError> {
    let (_, user) = target(&state, &mut console, &form).await?;
    require_manages(&state, &console, &user).await?;
    match accounts::issue_reset_link(&state.store, state.config.issuer(), &user.email).await {
        Ok(link) => {
            let page = ResetLinkPage {
                chrome: console.chrome("org", None),
                email: link.email,
                url: link.url,
                expires: when(link.expires_at),
            };
            Ok(console.render(&page, StatusCode::OK))
        }
        Err(e) => refused(&state, console, e).await,
    }
}

pub async fn rename(
    State(state): State<AppState>,
    mut console: Console,
    Form(form): Form<RenameForm>,
) -> Result<Response, PageError> {
    console.verify_csrf(form.csrf.as_deref())?;
    console.select(Some(&form.org))?;
    let org_id = console.require_admin()?.org.id;
    match accounts::rename_org(&state.store, org_id, &form.name).await {
        Ok(org) => {
            // The page after the redirect reads the memberships afresh.
            if let Some(m) = console.current.as_mut() {
                m.org.name = org.name;
            }
            Ok(back_to("/console/org", &console, "org-renamed").into_response())
        }
        Err(e) => refused(&state, console, e).await,
    }
}
