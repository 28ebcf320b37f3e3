//! Admin tokens: `pcadm_{id}_{secret}`, minted like API keys (the id finds
//! the row, the 256-bit secret is stored as SHA-256 and compared in constant
//! time), shown once by `portcullis admin-token create`.

use serde_json::{Value, json};

use crate::{
    admin::{AdminError, Result},
    identity::api_key,
    store::Store,
};

/// The prefix every admin token starts with.
pub const PREFIX: &str = "pcadm";

/// Mints a token named `name` → `{"id", "name", "token"}`; the token is in
/// this answer only.
pub async fn create(store: &Store, name: &str) -> Result<Value> {
    let name = crate::display_text::clean(name, 100).unwrap_or_default();
    let name = name.trim();
    if name.is_empty() {
        return Err(AdminError::Invalid(
            "an admin token needs a name of 1 to 100 characters".into(),
        ));
    }
    let minted = api_key::mint(PREFIX);
    store
        .insert_admin_token(&minted.id, name, &minted.secret_hash)
        .await?;
    tracing::info!(token_id = %minted.id, "admin token created");
    Ok(json!({ "id": minted.id, "name": name, "token": minted.key.expose() }))
}

/// Revokes a token by id; the API refuses it from the next request on.
pub async fn revoke(store: &Store, id: &str) -> Result<Value> {
    if !store.revoke_admin_token(id.trim()).await? {
        return Err(AdminError::NotFound("live admin token"));
    }
    tracing::info!(token_id = %id.trim(), "admin token revoked");
    Ok(json!({ "id": id.trim(), "revoked": true }))
}

/// Every admin token (ids, names, dates; never secrets).
pub async fn list(store: &Store) -> Result<Value> {
    Ok(json!({ "tokens": store.admin_tokens().await? }))
}

/// Whether `presented` is a live admin token.
pub async fn is_valid(store: &Store, presented: &str) -> crate::store::Result<bool> {
    let Some((id, secret)) = api_key::parse(PREFIX, presented) else {
        return Ok(false);
    };
    Ok(match store.live_admin_token_hash(id).await? {
        Some(hash) => api_key::verify(secret, &hash),
        None => false,
    })
}
