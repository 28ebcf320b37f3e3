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

pub const AUTH_METHODS: [&str; 3] = ["none", "client_secret_post", "client_secret_basic"];
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
    let request: Request = serde_json::from_slice(&body).map_err(|e| {
        metadata_error(
            "invalid_client_metadata",
            format!("request body is not valid client metadata JSON: {e}"),
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
                "token_endpoint_auth_method {method:?} is not supported; use none, client_secret_post or client_secret_basic"
            ),
        ));
    }
    let client_name = match request.client_name {
        Some(Value::String(name)) => crate::display_text::clean(&name, MAX_NAME_CHARS),
        _ => None,
    }
    .unwrap_or_else(|| "Unnamed client".to_owned());

    let client_id = uuid::Uuid::new_v4().to_string();
    let secret = (method != "none").then(Secret::generate);
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
