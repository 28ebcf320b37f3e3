//! Account lifecycle operations (README "Accounts"), one implementation for
//! the command line, the console and any HTTP API: each validates its input,
//! makes its change in one store transaction, and returns typed values.
//! Nothing here formats output; errors carry a stable [`AccountError::code`]
//! for JSON answers and a sentence for people.
//!
//! Changes that revoke credentials return a [`store::Revoked`]; a caller
//! inside the server passes it to [`apply_locally`] so this instance stops
//! them at once, and every other instance follows within its usual bound
//! (`revocation_poll` for grants, 5 s for keys and memberships).

use std::time::Duration;

use uuid::Uuid;

use crate::{
    identity::{
        email,
        passwords::{self, PasswordError, Passwords},
        secret::{self, Secret},
    },
    oauth::revocation::{self, Revocation},
    store::{
        MemberRemoval, Org, OrgSummary, Revoked, Store, StoreError, User, UserDeletion, UserSummary,
    },
};

/// How long a one-time password reset link is valid.
pub const RESET_LINK_TTL: Duration = Duration::from_secs(30 * 60);
/// The longest org name, in characters.
pub const MAX_ORG_NAME_CHARS: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("no {0} found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The change would leave an org without an admin.
    #[error("{0}")]
    LastAdmin(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AccountError {
    /// A stable code for JSON error bodies (`{"error": code, "message": …}`).
    pub fn code(&self) -> &'static str {
        match self {
            AccountError::NotFound(_) => "not_found",
            AccountError::Conflict(_) => "conflict",
            AccountError::LastAdmin(_) => "last_admin",
            AccountError::Invalid(_) => "invalid_request",
            AccountError::Password(PasswordError::Hash(_)) | AccountError::Store(_) => {
                "server_error"
            }
            AccountError::Password(_) => "weak_password",
        }
    }
}

pub type Result<T> = std::result::Result<T, AccountError>;

fn not_found(what: impl Into<String>) -> AccountError {
    AccountError::NotFound(what.into())
}

/// An org name as stored: control and format characters removed, trimmed,
/// 1 to [`MAX_ORG_NAME_CHARS`] characters.
pub fn clean_org_name(name: &str) -> Result<String> {
    let name = crate::display_text::clean(name, MAX_ORG_NAME_CHARS).unwrap_or_default();
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_ORG_NAME_CHARS {
        return Err(AccountError::Invalid(format!(
            "an organization needs a name of 1 to {MAX_ORG_NAME_CHARS} characters"
        )));
    }
    Ok(name)
}

fn name_taken(name: &str) -> AccountError {
    AccountError::Conflict(format!(
        "an organization named {name:?} already exists (names are compared ignoring case)"
    ))
}

/// Creates an org; a name another org has (ignoring case) is refused.
pub async fn create_org(store: &Store, name: &str) -> Result<Org> {
    let name = clean_org_name(name)?;
    store.create_org(&name).await.map_err(|e| match e {
        StoreError::Conflict => name_taken(&name),
        e => e.into(),
    })
}

/// Renames an org; a name another org has (ignoring case) is refused.
pub async fn rename_org(store: &Store, org_id: Uuid, name: &str) -> Result<Org> {
    let name = clean_org_name(name)?;
    store.rename_org(org_id, &name).await.map_err(|e| match e {
        StoreError::Conflict => name_taken(&name),
        StoreError::NotFound => not_found(format!("organization {org_id}")),
        e => e.into(),
    })
}

pub async fn list_orgs(store: &Store) -> Result<Vec<OrgSummary>> {
    Ok(store.orgs().await?)
}

/// All users, or the members of `org_id` (which must exist).
pub async fn list_users(store: &Store, org_id: Option<Uuid>) -> Result<Vec<UserSummary>> {
    if let Some(id) = org_id
        && store.get_org(id).await?.is_none()
    {
        return Err(not_found(format!("organization {id}")));
    }
    Ok(store.users(org_id).await?)
}

/// The user with this email (compared in its canonical form).
pub async fn find_user(store: &Store, email: &str) -> Result<User> {
    store
        .user_by_email(email)
        .await?
        .ok_or_else(|| not_found(format!("user with the email {:?}", email.trim())))
}

/// Removes a member from an org, revoking their grants and keys there.
pub async fn remove_member(store: &Store, user_id: Uuid, org_id: Uuid) -> Result<Revoked> {
    match store.remove_member(user_id, org_id).await? {
        MemberRemoval::Removed(revoked) => {
            tracing::info!(%user_id, %org_id, grants = revoked.grants.len(), api_keys = revoked.api_keys.len(), "member removed");
            announce(store, Revocation::Membership { user_id, org_id }, &revoked).await;
            Ok(revoked)
        }
        MemberRemoval::NotMember => Err(not_found(format!(
            "membership of user {user_id} in organization {org_id}"
        ))),
        MemberRemoval::LastAdmin => Err(AccountError::LastAdmin(
            "this is the organization's only admin; make someone else an admin first".into(),
        )),
    }
}

/// Disables a user: no sign-in, sessions ended, grants and keys refused
/// until re-enabled.
pub async fn disable_user(store: &Store, user_id: Uuid) -> Result<()> {
    if !store.set_user_disabled(user_id, true).await? {
        return Err(not_found(format!("user {user_id}")));
    }
    tracing::info!(%user_id, "user disabled");
    announce(store, Revocation::User(user_id), &Revoked::default()).await;
    Ok(())
}

/// Re-enables a disabled user; their grants and keys work again.
pub async fn enable_user(store: &Store, user_id: Uuid) -> Result<()> {
    if !store.set_user_disabled(user_id, false).await? {
        return Err(not_found(format!("user {user_id}")));
    }
    tracing::info!(%user_id, "user enabled");
    Ok(())
}

/// Deletes a user with their grants and keys (one transaction); the audit
/// log keeps their calls.
pub async fn delete_user(store: &Store, user_id: Uuid) -> Result<Revoked> {
    match store.delete_user(user_id).await? {
        UserDeletion::Deleted(revoked) => {
            tracing::info!(%user_id, grants = revoked.grants.len(), api_keys = revoked.api_keys.len(), "user deleted");
            announce(store, Revocation::User(user_id), &revoked).await;
            Ok(revoked)
        }
        UserDeletion::NotFound => Err(not_found(format!("user {user_id}"))),
        UserDeletion::LastAdmin(orgs) => Err(AccountError::LastAdmin(format!(
            "this user is the only admin of {}, which has other members; make someone else an admin first",
            orgs.join(", ")
        ))),
    }
}

/// An admin sets a user's password (the one policy applies); every session
/// of that user ends.
pub async fn set_password(
    store: &Store,
    passwords: &Passwords,
    user: &User,
    password: &str,
) -> Result<()> {
    passwords::policy(password, Some(&user.email))?;
    let hash = passwords.hash(password).await?;
    if !store.set_password_hash(user.id, &hash, None).await? {
        return Err(not_found(format!("user {}", user.id)));
    }
    tracing::info!(user_id = %user.id, "password set by an admin");
    Ok(())
}

/// A signed-in user changes their own password: the current one must be
/// right; every other session ends, `keep_session` (the hash of the one
/// making the change) stays.
pub async fn change_own_password(
    store: &Store,
    passwords: &Passwords,
    user: &User,
    current: &str,
    new: &str,
    keep_session: Option<&str>,
) -> Result<()> {
    if !passwords.verify(current, Some(&user.password_hash)).await {
        return Err(AccountError::Invalid(
            "the current password is not right".into(),
        ));
    }
    passwords::policy(new, Some(&user.email))?;
    let hash = passwords.hash(new).await?;
    store
        .set_password_hash(user.id, &hash, keep_session)
        .await?;
    tracing::info!(user_id = %user.id, "password changed by its owner");
    Ok(())
}

/// A one-time password reset link just issued; the token is in `url` only.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ResetLink {
    pub user_id: Uuid,
    pub email: String,
    pub url: String,
    pub expires_at: i64,
}

/// Issues a one-time reset link for the user with `email`: valid for
/// [`RESET_LINK_TTL`], single use, stored only as a SHA-256 of its token.
/// `issuer` is the public base URL the link starts with.
pub async fn issue_reset_link(store: &Store, issuer: &str, email: &str) -> Result<ResetLink> {
    let user = find_user(store, email).await?;
    if user.disabled_at.is_some() {
        return Err(AccountError::Invalid(format!(
            "{} is disabled; enable the account first",
            user.email
        )));
    }
    let token = Secret::generate();
    let expires_at = store
        .create_password_reset(user.id, &token.hash(), RESET_LINK_TTL)
        .await?;
    tracing::info!(user_id = %user.id, "password reset link issued");
    Ok(ResetLink {
        user_id: user.id,
        email: user.email,
        url: format!("{issuer}/reset?token={}", token.expose()),
        expires_at,
    })
}

/// Spends a reset link and sets the new password (the one policy applies).
/// Returns the user; an unknown, used or expired link is `NotFound`.
pub async fn redeem_reset_link(
    store: &Store,
    passwords: &Passwords,
    token: &str,
    password: &str,
) -> Result<Uuid> {
    let hash = secret::hash(token);
    let ticket = store
        .password_reset(&hash)
        .await?
        .ok_or_else(|| not_found("valid reset link"))?;
    passwords::policy(password, Some(&ticket.email))?;
    let new_hash = passwords.hash(password).await?;
    let user_id = store
        .redeem_password_reset(&hash, &new_hash)
        .await?
        .ok_or_else(|| not_found("valid reset link"))?;
    tracing::info!(%user_id, "password reset through a one-time link");
    Ok(user_id)
}

/// Lifts the sign-in throttle of the account with `email` on every instance
/// (each applies it at the account's next held-back attempt). Returns the
/// canonical account name the throttle uses.
pub async fn unlock_sign_in(store: &Store, email: &str) -> Result<String> {
    let user = find_user(store, email).await?;
    let account = email::canonical(&user.email);
    store.unlock_sign_in(&account).await?;
    tracing::info!(user_id = %user.id, "sign-in unlocked");
    Ok(account)
}

/// Tells every instance (PostgreSQL NOTIFY; README "Revocation across
/// instances") about a committed change that ends access: `what` itself and
/// each revoked grant and key, so the others refuse them at once instead of
/// at their next poll. The CLI has no caches of its own, so this is all it
/// needs; a server also calls [`apply_locally`].
async fn announce(store: &Store, what: Revocation, revoked: &Revoked) {
    revocation::announce(store, &what).await;
    for grant in &revoked.grants {
        revocation::announce(store, &Revocation::Grant(*grant)).await;
    }
    for key in &revoked.api_keys {
        revocation::announce(store, &Revocation::ApiKey(key.clone())).await;
    }
}

/// Stops revoked grants and keys on this instance at once.
pub fn apply_locally(state: &crate::state::AppState, revoked: &Revoked) {
    for grant in &revoked.grants {
        state.revoked.mark(*grant);
    }
    for key in &revoked.api_keys {
        state.api_keys.forget(key);
    }
}

/// Whether a user with this id exists; for callers that take ids.
pub async fn user_by_id(store: &Store, user_id: Uuid) -> Result<User> {
    store
        .user(user_id)
        .await?
        .ok_or_else(|| not_found(format!("user {user_id}")))
}

/// A user named by email or by id (the command line accepts both).
pub async fn resolve_user(store: &Store, email_or_id: &str) -> Result<User> {
    match email_or_id.trim().parse::<Uuid>() {
        Ok(id) => user_by_id(store, id).await,
        Err(_) => find_user(store, email_or_id).await,
    }
}
