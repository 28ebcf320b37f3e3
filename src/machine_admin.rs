//! Administrative operations of issue 16 behind the command line (and the
//! console): service clients (README "Machine clients") and the enterprise
//! identity providers an org trusts (README "Enterprise sign-in (identity
//! assertions)").

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    admin::{AdminError, Result},
    identity::{
        scope::{Role, ScopeSet},
        secret::Secret,
    },
    oauth::{assertion::ASYMMETRIC, jwks},
    store::{self, EnterpriseIdp, ServiceClient, Store},
};

/// How a new service client will authenticate.
pub enum ServiceAuth {
    /// A generated secret, shown once.
    Secret,
    /// `private_key_jwt` with keys at this URL.
    JwksUri(String),
    /// `private_key_jwt` with this JWKS document (JSON text).
    Jwks(String),
}

/// Creates a service client of `org_id`. Its scopes are `scopes` (default:
/// the role's ceiling) capped by the role; the answer holds `client_secret`
/// once when it authenticates with a secret.
///
/// # Errors
/// [`AdminError::Invalid`] for an empty name, no MCP scope left, or keys
/// that are not a JWKS; [`AdminError::NotFound`] for an unknown org.
pub async fn create_service_client(
    store: &Store,
    org_id: Uuid,
    name: &str,
    role: Role,
    scopes: Option<&str>,
    auth: ServiceAuth,
) -> Result<Value> {
    let name = crate::display_text::clean(name, 200)
        .ok_or_else(|| AdminError::Invalid("a service client needs a name".into()))?;
    store
        .get_org(org_id)
        .await?
        .ok_or(AdminError::NotFound("organization"))?;
    let scope = scopes
        .map(ScopeSet::parse_lenient)
        .unwrap_or(role.ceiling())
        .intersect(role.ceiling())
        .mcp();
    if scope.is_empty() {
        return Err(AdminError::Invalid(
            "no MCP scope within the role's ceiling was given".into(),
        ));
    }
    let secret = matches!(auth, ServiceAuth::Secret).then(Secret::generate);
    let (method, jwks, jwks_uri) = match auth {
        ServiceAuth::Secret => ("client_secret_basic", None, None),
        ServiceAuth::JwksUri(uri) => {
            url::Url::parse(&uri)
                .map_err(|_| AdminError::Invalid("--jwks-uri is not a URL".into()))?;
            ("private_key_jwt", None, Some(uri))
        }
        ServiceAuth::Jwks(text) => {
            let value: Value = serde_json::from_str(&text)
                .map_err(|_| AdminError::Invalid("the JWKS is not JSON".into()))?;
            jwks::parse_inline(&value)
                .map_err(|_| AdminError::Invalid("the JWKS is not a JWKS document".into()))?;
            ("private_key_jwt", Some(value.to_string()), None)
        }
    };
    let client = ServiceClient {
        id: Uuid::new_v4(),
        org_id,
        name,
        role,
        scope,
        auth_method: method.to_owned(),
        secret_hash: secret.as_ref().map(Secret::hash),
        jwks,
        jwks_uri,
        created_at: store::now(),
        revoked_at: None,
    };
    store.insert_service_client(&client).await?;
    tracing::info!(client_id = %client.id, %org_id, "service client created");
    let mut out = describe(&client);
    if let Some(secret) = secret {
        out["client_secret"] = json!(secret.expose());
    }
    Ok(out)
}

/// A service client as the CLI and console show it (never its secret).
pub fn describe(c: &ServiceClient) -> Value {
    json!({
        "client_id": c.id,
        "org_id": c.org_id,
        "name": c.name,
        "role": c.role.as_str(),
        "scopes": c.scope.to_vec(),
        "token_endpoint_auth_method": c.auth_method,
        "jwks_uri": c.jwks_uri,
        "created_at": c.created_at,
        "revoked_at": c.revoked_at,
    })
}

pub async fn list_service_clients(store: &Store, org_id: Uuid) -> Result<Value> {
    let clients = store.service_clients(org_id).await?;
    Ok(json!({ "service_clients": clients.iter().map(describe).collect::<Vec<_>>() }))
}

/// Revokes a service client; running servers refuse its tokens within the
/// revocation poll (README "Machine clients").
pub async fn revoke_service_client(store: &Store, id: Uuid, org_id: Option<Uuid>) -> Result<Value> {
    if !store.revoke_service_client(id, org_id).await? {
        return Err(AdminError::NotFound("live service client"));
    }
    tracing::info!(client_id = %id, "service client revoked");
    Ok(json!({ "client_id": id, "revoked": true }))
}

/// Trusts `issuer` for `org_id` (or updates its settings).
///
/// # Errors
/// [`AdminError::Invalid`] for a non-URL issuer or JWKS URL, or an
/// algorithm that is not asymmetric.
pub async fn trust_idp(
    store: &Store,
    org_id: Uuid,
    issuer: &str,
    jwks_uri: &str,
    algorithms: Option<&str>,
    link_by_email: bool,
) -> Result<Value> {
    for (what, value) in [("issuer", issuer), ("JWKS URL", jwks_uri)] {
        let url = url::Url::parse(value)
            .map_err(|_| AdminError::Invalid(format!("the {what} is not a URL")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(AdminError::Invalid(format!(
                "the {what} must be an https URL"
            )));
        }
    }
    let algorithms: Vec<String> = match algorithms {
        Some(list) => list
            .split([' ', ','])
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect(),
        None => vec!["RS256".to_owned(), "ES256".to_owned()],
    };
    if algorithms.is_empty() {
        return Err(AdminError::Invalid("name at least one algorithm".into()));
    }
    if let Some(bad) = algorithms
        .iter()
        .find(|a| !ASYMMETRIC.contains(&a.as_str()))
    {
        return Err(AdminError::Invalid(format!(
            "{bad:?} is not an asymmetric JWS algorithm; use {}",
            ASYMMETRIC.join(", ")
        )));
    }
    store
        .get_org(org_id)
        .await?
        .ok_or(AdminError::NotFound("organization"))?;
    let idp = EnterpriseIdp {
        org_id,
        issuer: issuer.to_owned(),
        jwks_uri: jwks_uri.to_owned(),
        algorithms,
        link_by_email,
        created_at: store::now(),
    };
    store.set_enterprise_idp(&idp).await?;
    tracing::info!(%org_id, %issuer, "enterprise identity provider trusted");
    Ok(describe_idp(&idp))
}

pub fn describe_idp(idp: &EnterpriseIdp) -> Value {
    json!({
        "org_id": idp.org_id,
        "issuer": idp.issuer,
        "jwks_uri": idp.jwks_uri,
        "algorithms": idp.algorithms,
        "link_by_email": idp.link_by_email,
    })
}

pub async fn list_idps(store: &Store, org_id: Uuid) -> Result<Value> {
    let idps = store.enterprise_idps(org_id).await?;
    Ok(json!({ "identity_providers": idps.iter().map(describe_idp).collect::<Vec<_>>() }))
}

pub async fn remove_idp(store: &Store, org_id: Uuid, issuer: &str) -> Result<Value> {
    if !store.remove_enterprise_idp(org_id, issuer).await? {
        return Err(AdminError::NotFound("trusted identity provider"));
    }
    Ok(json!({ "org_id": org_id, "issuer": issuer, "removed": true }))
}

/// Links an enterprise subject to an existing user (when the org does not
/// link by email).
pub async fn link_identity(
    store: &Store,
    issuer: &str,
    subject: &str,
    email: &str,
) -> Result<Value> {
    let user = store
        .user_by_email(email)
        .await?
        .ok_or(AdminError::NotFound("user"))?;
    store
        .link_external_identity(issuer, subject, user.id, Some(email))
        .await
        .map_err(|e| match e {
            store::StoreError::Conflict => AdminError::Exists("link for this subject"),
            e => e.into(),
        })?;
    Ok(json!({ "issuer": issuer, "subject": subject, "user_id": user.id }))
}
