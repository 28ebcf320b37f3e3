//! Administrative operations behind the command line (SPEC §2.2), also used by
//! the tests to set up orgs, users and keys the way an operator would.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    identity::{
        api_key, email,
        passwords::{PasswordError, Passwords},
        scope::{Role, ScopeSet},
        secret::Secret,
    },
    store::{self, ApiKey, RoleChange, Store, StoreError, User},
};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0} already exists")]
    Exists(&'static str),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Store(e)
    }
}

pub type Result<T> = std::result::Result<T, AdminError>;

pub fn parse_role(role: &str) -> Result<Role> {
    Role::parse(role).ok_or_else(|| {
        AdminError::Invalid(format!(
            "role must be admin, member or viewer, not {role:?}"
        ))
    })
}

pub async fn create_org(store: &Store, name: &str) -> Result<Value> {
    let org = crate::identity::accounts::create_org(store, name)
        .await
        .map_err(|e| match e {
            crate::identity::accounts::AccountError::Store(e) => AdminError::Store(e),
            e => AdminError::Invalid(e.to_string()),
        })?;
    Ok(json!({ "id": org.id, "name": org.name }))
}

pub async fn create_user(
    store: &Store,
    passwords: &Passwords,
    email: &str,
    password: &str,
    org_id: Uuid,
    role: Role,
) -> Result<Value> {
    let email = email::display_form(email).map_err(|e| AdminError::Invalid(e.to_string()))?;
    if store.get_org(org_id).await?.is_none() {
        return Err(AdminError::NotFound("organization"));
    }
    let hash = passwords.hash(password).await?;
    let user = store
        .create_user(email, &hash, org_id, role)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => AdminError::Exists("a user with this email"),
            StoreError::NotFound => AdminError::NotFound("organization"),
            e => e.into(),
        })?;
    Ok(json!({ "id": user.id, "email": user.email, "org_id": org_id, "role": role }))
}

pub async fn add_to_org(store: &Store, email: &str, org_id: Uuid, role: Role) -> Result<Value> {
    let user = store
        .user_by_email(email)
        .await?
        .ok_or(AdminError::NotFound("user"))?;
    let change = store
        .set_membership(user.id, org_id, role)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => AdminError::NotFound("organization"),
            e => e.into(),
        })?;
    if change == RoleChange::LastAdmin {
        return Err(AdminError::Invalid(format!(
            "{} is the only admin of this organization; make someone else an admin first",
            user.email
        )));
    }
    // A demotion must reach running servers before their membership caches expire.
    crate::oauth::revocation::announce(
        store,
        &crate::oauth::revocation::Revocation::Membership {
            user_id: user.id,
            org_id,
        },
    )
    .await;
    Ok(json!({ "user_id": user.id, "org_id": org_id, "role": role }))
}

/// Mints an API key. Its scopes are those asked for, limited to what the
/// user's role allows today; the role is checked again on every use.
pub async fn create_api_key(
    store: &Store,
    prefix: &str,
    email: &str,
    org_id: Uuid,
    scopes: Option<&str>,
    name: Option<&str>,
) -> Result<Value> {
    let user = store
        .user_by_email(email)
        .await?
        .ok_or(AdminError::NotFound("user"))?;
    let requested = scopes.map(|s| ScopeSet::parse_lenient(s).mcp());
    let minted = mint_api_key(store, prefix, &user, org_id, requested, name).await?;
    let key = &minted.key;
    Ok(
        json!({ "id": key.id, "key": minted.secret.expose(), "scopes": key.scopes.to_vec(), "org_id": org_id, "name": key.name }),
    )
}

/// A key just minted: the stored row and the full key, which is shown once.
pub struct NewApiKey {
    pub key: ApiKey,
    pub secret: Secret,
}

/// Mints a key for `user` in `org_id` with the MCP scopes `requested` (the
/// role's ceiling when `None`); asking for more than the role allows is an
/// error rather than a silent narrowing, so the caller sees what they get.
/// Shared by the command line and the console.
pub async fn mint_api_key(
    store: &Store,
    prefix: &str,
    user: &User,
    org_id: Uuid,
    requested: Option<ScopeSet>,
    name: Option<&str>,
) -> Result<NewApiKey> {
    let role = store.role(user.id, org_id).await?.ok_or_else(|| {
        AdminError::Invalid(format!(
            "{} is not a member of organization {org_id}",
            user.email
        ))
    })?;
    let requested = requested.unwrap_or_else(|| role.ceiling().mcp());
    if requested.is_empty() {
        return Err(AdminError::Invalid(
            "scopes must include mcp:read, mcp:write or mcp:admin".into(),
        ));
    }
    let scopes = requested.intersect(role.ceiling());
    if scopes != requested {
        return Err(AdminError::Invalid(format!(
            "a {role} may hold at most {}",
            role.ceiling().mcp()
        )));
    }
    let minted = api_key::mint(prefix);
    let key = ApiKey {
        id: minted.id.clone(),
        user_id: user.id,
        org_id,
        name: name
            .and_then(|n| crate::display_text::clean(n, 100))
            .unwrap_or_else(|| "API key".to_owned()),
        secret_hash: minted.secret_hash,
        scopes,
        created_at: store::now(),
        last_used_at: None,
        revoked_at: None,
    };
    store.insert_api_key(&key).await?;
    Ok(NewApiKey {
        key,
        secret: minted.key,
    })
}

pub async fn revoke_api_key(store: &Store, id: &str) -> Result<Value> {
    if !store.revoke_api_key(id).await? {
        return Err(AdminError::NotFound("active API key"));
    }
    crate::oauth::revocation::announce(
        store,
        &crate::oauth::revocation::Revocation::ApiKey(id.to_owned()),
    )
    .await;
    Ok(json!({ "id": id, "revoked": true }))
}

pub async fn list_api_keys(store: &Store, email: &str) -> Result<Value> {
    let user = store
        .user_by_email(email)
        .await?
        .ok_or(AdminError::NotFound("user"))?;
    Ok(json!({ "keys": store.api_keys(Some(user.id), None).await? }))
}

pub async fn list_clients(store: &Store) -> Result<Value> {
    let clients: Vec<Value> = store
        .clients()
        .await?
        .into_iter()
        .map(|c| {
            json!({
                "client_id": c.client_id,
                "client_name": c.client_name,
                "redirect_uris": c.redirect_uris,
                "token_endpoint_auth_method": c.token_endpoint_auth_method,
                "created_at": c.created_at,
                "revoked": c.revoked_at.is_some(),
            })
        })
        .collect();
    Ok(json!({ "clients": clients }))
}

pub async fn revoke_client(store: &Store, client_id: &str) -> Result<Value> {
    if !store.revoke_client(client_id).await? {
        return Err(AdminError::NotFound("active client"));
    }
    crate::oauth::revocation::announce(store, &crate::oauth::revocation::Revocation::Resync).await;
    Ok(json!({ "client_id": client_id, "revoked": true }))
}
