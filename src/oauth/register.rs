//! Dynamic Client Registration (RFC 7591), open and lenient: hosted clients
//! send a wide variety of metadata and we keep only what we use.

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::client_addr::ClientAddr;

use super::{error::OAuthError, redirect_uri::RedirectUri};
use crate::{
    identity::secret::Secret,
    state::AppState,
    store::{self, Client},
};

pub const AUTH_METHODS: [&str; 4] = [
    "none",
    "client_secret_post",
    "client_secret_basic",
    "private_key_jwt",
];
const MAX_NAME_CHARS: usize = 200;
/// Largest client metadata kept per registration, as stored JSON (README
/// "Limits and hardening"): enough for 20 ordinary redirect URIs.
pub const MAX_METADATA_BYTES: usize = 4096;

#[derive(Deserialize)]
struct Request {
    redirect_uris: Option<Vec<String>>,
    client_name: Option<Value>,
    token_endpoint_auth_method: Option<String>,
    client_uri: Option<String>,
    logo_uri: Option<String>,
    software_id: Option<String>,
    software_version: Option<String>,
    /// For `private_key_jwt` (RFC 7591 §2): one of these.
    jwks_uri: Option<String>,
    jwks: Option<Value>,
}

fn metadata_error(error: &'static str, description: impl Into<String>) -> OAuthError {
    OAuthError::new(StatusCode::BAD_REQUEST, error, description)
}

pub async fn register(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    body: Bytes,
) -> Result<Response, OAuthError> {
    if let Err(wait) = state.registrations.acquire(&client).await {
        state.metrics.rate_limited("registration");
        let mut response = OAuthError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many client registrations from this address; retry later.",
        )
        .into_response();
        let secs = wait.as_secs().max(1).to_string();
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&secs).expect("digits"),
        );
        return Ok(response);
    }
    // Checked as a JSON object first: serde's message for any other shape
    // names the Rust type it expected, which means nothing to a client.
    let object = match serde_json::from_slice::<Value>(&body) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => {
            return Err(metadata_error(
                "invalid_client_metadata",
                "the request body must be a JSON object of client metadata (RFC 7591 §2)",
            ));
        }
        Err(e) => {
            return Err(metadata_error(
                "invalid_client_metadata",
                format!("request body is not valid JSON: {e}"),
            ));
        }
    };
    let request: Request = serde_json::from_value(object).map_err(|e| {
        metadata_error(
            "invalid_client_metadata",
            format!("request body is not valid client metadata: {e}"),
        )
    })?;

    let uris = request
        .redirect_uris
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            metadata_error(
                "invalid_redirect_uri",
                "redirect_uris must list at least one URI",
            )
        })?;
    if uris.len() > 20 {
        return Err(metadata_error(
            "invalid_redirect_uri",
            "at most 20 redirect_uris may be registered",
        ));
    }
    for uri in &uris {
        RedirectUri::parse(uri).map_err(|e| metadata_error("invalid_redirect_uri", e.0))?;
    }
    // RFC 7591 §2: the default method is client_secret_basic.
    let method = request
        .token_endpoint_auth_method
        .unwrap_or_else(|| "client_secret_basic".into());
    if !AUTH_METHODS.contains(&method.as_str()) {
        return Err(metadata_error(
            "invalid_client_metadata",
            format!(
                "token_endpoint_auth_method {method:?} is not supported; use none, client_secret_post, client_secret_basic or private_key_jwt"
            ),
        ));
    }
    let client_name = match request.client_name {
        Some(Value::String(name)) => crate::display_text::clean(&name, MAX_NAME_CHARS),
        _ => None,
    }
    .unwrap_or_else(|| "Unnamed client".to_owned());

    let keys = client_keys(&method, request.jwks_uri, request.jwks)?;
    let client_id = uuid::Uuid::new_v4().to_string();
    let secret = (method.starts_with("client_secret")).then(Secret::generate);
    let issued_at = store::now();
    let mut echoed = json!({
        "client_id": client_id,
        "client_id_issued_at": issued_at,
        "client_name": client_name,
        "redirect_uris": uris,
        "token_endpoint_auth_method": method,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    });
    for (key, value) in [
        ("client_uri", request.client_uri),
        ("logo_uri", request.logo_uri),
        ("software_id", request.software_id),
        ("software_version", request.software_version),
    ] {
        if let Some(value) = value {
            echoed[key] = Value::String(value);
        }
    }
    if let Some((key, value)) = keys {
        echoed[key] = value;
    }
    if echoed.to_string().len() > MAX_METADATA_BYTES {
        return Err(metadata_error(
            "invalid_client_metadata",
            format!("client metadata must not exceed {MAX_METADATA_BYTES} bytes"),
        ));
    }
    // Registrations never used expire; removing them here bounds what one
    // caller can keep stored to what it registered within the TTL.
    let unused_before = issued_at - state.config.unused_registration_ttl.as_secs() as i64;
    match state.store.delete_unused_clients(unused_before).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, "unused client registrations expired"),
        Err(e) => tracing::warn!(error = %e, "could not expire unused client registrations"),
    }
    let client = Client {
        client_id: client_id.clone(),
        secret_hash: secret.as_ref().map(Secret::hash),
        client_name,
        redirect_uris: uris,
        token_endpoint_auth_method: method,
        metadata: echoed.clone(),
        created_at: issued_at,
        revoked_at: None,
    };
    state.store.insert_client(&client).await?;
    state.metrics.registration();
    tracing::info!(client_id = %client.client_id, client_name = ?client.client_name, "client registered");

    if let Some(secret) = secret {
        echoed["client_secret"] = Value::String(secret.expose().to_owned());
        echoed["client_secret_expires_at"] = json!(0);
    }
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(echoed),
    )
        .into_response())
}

/// `private_key_jwt` needs exactly one of `jwks_uri` (an https URL, fetched
/// under the CIMD rules when used) and `jwks` (a JWKS); other methods take
/// neither. Returns the member to store with the metadata.
fn client_keys(
    method: &str,
    jwks_uri: Option<String>,
    jwks: Option<Value>,
) -> Result<Option<(&'static str, Value)>, OAuthError> {
    match (method, jwks_uri, jwks) {
        ("private_key_jwt", Some(uri), None) => {
            let parsed = url::Url::parse(&uri)
                .map_err(|_| metadata_error("invalid_client_metadata", "jwks_uri is not a URL"))?;
            if parsed.scheme() != "https" && parsed.scheme() != "http" {
                return Err(metadata_error(
                    "invalid_client_metadata",
                    "jwks_uri must be an https URL",
                ));
            }
            Ok(Some(("jwks_uri", Value::String(uri))))
        }
        ("private_key_jwt", None, Some(jwks)) => {
            super::jwks::parse_inline(&jwks).map_err(|_| {
                metadata_error("invalid_client_metadata", "jwks is not a JWKS document")
            })?;
            Ok(Some(("jwks", jwks)))
        }
        ("private_key_jwt", _, _) => Err(metadata_error(
            "invalid_client_metadata",
            "private_key_jwt needs exactly one of jwks_uri and jwks",
        )),
        _ => Ok(None),
    }
}
