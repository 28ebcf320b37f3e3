//! Machine access of an org through the provisioning API: its service
//! clients (`client_credentials`, README "Machine clients") and the
//! enterprise identity providers it trusts (README "Enterprise sign-in
//! (identity assertions)"). The same operations as `portcullis
//! service-client` and `portcullis enterprise-idp`, in `machine_admin`.

use axum::{
    body::Bytes,
    extract::{Path, Query, State, rejection::BytesRejection},
};
use serde::Deserialize;
use serde_json::Value;

use super::{ApiError, ApiResult, body, created, no_content, ok, role, uuid};
use crate::{
    admin::AdminError,
    machine_admin::{self, ServiceAuth},
    oauth::revocation::{self, Revocation},
    state::AppState,
};

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Store(e) => e.into(),
            AdminError::NotFound(_) => ApiError::not_found(e.to_string()),
            AdminError::Exists(_) => ApiError::conflict(e.to_string()),
            AdminError::Invalid(_) | AdminError::Password(_) => ApiError::invalid(e.to_string()),
        }
    }
}

/// `POST /orgs/{org}/service-clients`: authenticates with a generated
/// secret (answered once) unless `jwks_uri` or `jwks` gives its keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewServiceClient {
    name: String,
    role: String,
    /// Space-separated; default: the role's ceiling.
    scope: Option<String>,
    jwks_uri: Option<String>,
    jwks: Option<Value>,
}

pub(super) async fn create_service_client(
    State(state): State<AppState>,
    Path(org): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let org_id = uuid(&org, "the organization id")?;
    let new: NewServiceClient = body(bytes)?;
    let auth = match (new.jwks_uri, new.jwks) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "give the client's keys as jwks_uri or as jwks, not both",
            ));
        }
        (Some(uri), None) => ServiceAuth::JwksUri(uri),
        (None, Some(jwks)) => ServiceAuth::Jwks(jwks.to_string()),
        (None, None) => ServiceAuth::Secret,
    };
    let client = machine_admin::create_service_client(
        &state.store,
        org_id,
        &new.name,
        role(&new.role)?,
        new.scope.as_deref(),
        auth,
    )
    .await?;
    Ok(created(client))
}

pub(super) async fn list_service_clients(
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> ApiResult {
    let org_id = uuid(&org, "the organization id")?;
    Ok(ok(machine_admin::list_service_clients(
        &state.store,
        org_id,
    )
    .await?))
}

pub(super) async fn revoke_service_client(
    State(state): State<AppState>,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult {
    let org_id = uuid(&org, "the organization id")?;
    let id = uuid(&id, "the service client id")?;
    machine_admin::revoke_service_client(&state.store, id, Some(org_id)).await?;
    // This instance at once; the others re-read revocations on the notice
    // (or at their next poll on SQLite).
    state.service_clients.invalidate(&id);
    revocation::revoked(&state, Revocation::Resync).await;
    Ok(no_content())
}

/// `POST /orgs/{org}/identity-providers`: trusts an issuer (or updates it).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedIdp {
    issuer: String,
    jwks_uri: String,
    /// Space- or comma-separated asymmetric algorithms; default RS256 ES256.
    algorithms: Option<String>,
    #[serde(default)]
    link_by_email: bool,
}

pub(super) async fn trust_idp(
    State(state): State<AppState>,
    Path(org): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let org_id = uuid(&org, "the organization id")?;
    let idp: TrustedIdp = body(bytes)?;
    let trusted = machine_admin::trust_idp(
        &state.store,
        org_id,
        &idp.issuer,
        &idp.jwks_uri,
        idp.algorithms.as_deref(),
        idp.link_by_email,
    )
    .await?;
    Ok(ok(trusted))
}

pub(super) async fn list_idps(State(state): State<AppState>, Path(org): Path<String>) -> ApiResult {
    let org_id = uuid(&org, "the organization id")?;
    Ok(ok(machine_admin::list_idps(&state.store, org_id).await?))
}

#[derive(Deserialize)]
pub(super) struct IssuerQuery {
    issuer: String,
}

/// `DELETE /orgs/{org}/identity-providers?issuer=…`: the issuer is a URL,
/// so it travels in the query rather than as a path segment.
pub(super) async fn remove_idp(
    State(state): State<AppState>,
    Path(org): Path<String>,
    query: Result<Query<IssuerQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let org_id = uuid(&org, "the organization id")?;
    let Query(query) =
        query.map_err(|_| ApiError::invalid("name the identity provider with ?issuer=URL"))?;
    machine_admin::remove_idp(&state.store, org_id, &query.issuer).await?;
    Ok(no_content())
}
