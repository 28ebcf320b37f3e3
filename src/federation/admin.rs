//! The command line's org external ids (`portcullis org create
//! --external-id`, `portcullis org set-external-id`).

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    admin::{AdminError, Result},
    store::{Store, StoreError},
};

/// The longest external id kept, in characters.
pub const MAX_EXTERNAL_ID_CHARS: usize = 255;

fn checked(external_id: &str) -> Result<&str> {
    let id = external_id.trim();
    if id.is_empty()
        || id.chars().count() > MAX_EXTERNAL_ID_CHARS
        || id.chars().any(char::is_control)
    {
        return Err(AdminError::Invalid(format!(
            "an external id is 1 to {MAX_EXTERNAL_ID_CHARS} printable characters"
        )));
    }
    Ok(id)
}

/// Creates an org with an external id → `{"id", "name", "external_id"}`.
pub async fn create_org(store: &Store, name: &str, external_id: &str) -> Result<Value> {
    let external_id = checked(external_id)?;
    let name = crate::display_text::clean(name, 200).unwrap_or_default();
    if name.is_empty() {
        return Err(AdminError::Invalid(
            "an organization needs a name of 1 to 200 characters".into(),
        ));
    }
    let org = store
        .create_org_with_external_id(&name, external_id)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => AdminError::Exists("an organization with that external id"),
            e => AdminError::Store(e),
        })?;
    Ok(json!({ "id": org.id, "name": org.name, "external_id": external_id }))
}

/// Sets an org's external id; an empty one clears it.
pub async fn set_external_id(store: &Store, org: Uuid, external_id: &str) -> Result<Value> {
    let external_id = match external_id.trim() {
        "" => None,
        other => Some(checked(other)?),
    };
    store
        .set_org_external_id(org, external_id)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => AdminError::Exists("an organization with that external id"),
            StoreError::NotFound => AdminError::NotFound("organization"),
            e => AdminError::Store(e),
        })?;
    Ok(json!({ "id": org, "external_id": external_id }))
}
