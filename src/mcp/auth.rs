//! Who is calling `/mcp` (SPEC §4.2). One middleware turns the `Authorization`
//! header into an [`Identity`] — from a JWT access token of ours or from an API
//! key plus the org header — and everything below it reads only that.
//! Nothing here queries the database per request: revocations come from the
//! in-memory set, keys and memberships from short-lived caches.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::{
    config::Config,
    identity::{
        api_key,
        scope::{Scope, ScopeSet},
    },
    metrics::AuthFailure,
    oauth::{http_auth, jwt},
    state::AppState,
};

/// How the caller authenticated, as `whoami` and the audit log name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Source {
    #[serde(rename = "mcp-oauth")]
    OAuth,
    #[serde(rename = "mcp-bearer")]
    ApiKey,
    /// A machine client's token (the `client_credentials` grant).
    #[serde(rename = "mcp-client-credentials")]
    ClientCredentials,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::OAuth => "mcp-oauth",
            Source::ApiKey => "mcp-bearer",
            Source::ClientCredentials => "mcp-client-credentials",
        }
    }
}

/// An authenticated MCP caller; its `scopes` are already capped by the user's
/// current role in `org_id`.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub email: String,
    pub scopes: ScopeSet,
    pub source: Source,
    pub client_id: Option<String>,
    pub api_key_id: Option<String>,
    /// The service client's name, for [`Source::ClientCredentials`] (then
    /// `user_id` is the service client's id and `email` is empty).
    pub client_name: Option<String>,
}

impl Identity {
    /// The rate-limit bucket for calls of `tool` (SPEC §4.7): per user, org
    /// and tool for OAuth callers, per key and tool for API keys.
    pub fn bucket(&self, tool: &str) -> String {
        match &self.api_key_id {
            Some(key) => format!("key:{key}:{tool}"),
            None => format!("user:{}:{}:{tool}", self.user_id, self.org_id),
        }
    }
}

pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    match identify(&state, request.headers()).await {
        Ok(identity) => {
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        Err(failure) => {
            match &failure {
                Failure::Missing => state.metrics.auth_failure(AuthFailure::Missing),
                Failure::Refused { reason, .. } => state.metrics.auth_failure(*reason),
                Failure::Internal => {}
            }
            failure.into_response(&state.config)
        }
    }
}

/// Why a request was not authenticated.
#[derive(Debug)]
enum Failure {
    /// No credential at all: the bare challenge that starts OAuth discovery.
    Missing,
    /// A credential was presented and refused.
    Refused {
        /// For the `auth_failures_total` metric.
        reason: AuthFailure,
        error: &'static str,
        description: String,
    },
    Internal,
}

impl Failure {
    fn invalid_token(description: impl Into<String>) -> Failure {
        Failure::Refused {
            reason: AuthFailure::InvalidToken,
            error: "invalid_token",
            description: description.into(),
        }
    }

    fn because(self, why: AuthFailure) -> Failure {
        match self {
            Failure::Refused {
                error, description, ..
            } => Failure::Refused {
                reason: why,
                error,
                description,
            },
            other => other,
        }
    }

    fn into_response(self, config: &Config) -> Response {
        let challenge = http_auth::Challenge::bearer()
            .param("resource_metadata", resource_metadata_url(config))
            .param("scope", format!("{} {}", Scope::McpRead, Scope::McpWrite));
        match self {
            Failure::Missing => {
                let mut response = StatusCode::UNAUTHORIZED.into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, challenge.to_header_value());
                response
            }
            Failure::Refused {
                error, description, ..
            } => {
                // RFC 6750 §3: `invalid_token` when the credential itself was
                // refused. An API key without a usable org header is a
                // configuration mistake, not a bad token: `invalid_request`
                // (§3.1), so OAuth-capable clients do not start a sign-in
                // that cannot fix it. The body names the precise cause.
                let challenge = challenge
                    .param("error", error)
                    .param("error_description", &description);
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({ "error": error, "error_description": description })),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, challenge.to_header_value());
                response
            }
            Failure::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({
                    "error": "server_error",
                    "error_description": "The server could not check these credentials. Try again."
                })),
            )
                .into_response(),
        }
    }
}

/// RFC 9728 §5.1: where a client finds out how to get a token for `/mcp`.
pub fn resource_metadata_url(config: &Config) -> String {
    format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        config.issuer()
    )
}

async fn identify(state: &AppState, headers: &HeaderMap) -> Result<Identity, Failure> {
    let token = match http_auth::bearer_token(headers) {
        Ok(Some(token)) => token,
        Ok(None) => return Err(Failure::Missing),
        Err(malformed) => return Err(Failure::invalid_token(malformed.0)),
    };
    let prefix = &state.config.api_key_prefix;
    // Anything with our key prefix is treated as a (possibly mangled) API key,
    // so a truncated key gets the API-key answer, not a JWT parse error.
    if token
        .strip_prefix(prefix.as_str())
        .is_some_and(|rest| rest.starts_with('_'))
    {
        from_api_key(state, headers, api_key::parse(prefix, token)).await
    } else {
        from_access_token(state, token).await
    }
}

async fn from_access_token(state: &AppState, token: &str) -> Result<Identity, Failure> {
    let claims = verified_claims(state, token)?;
    if state.revoked.is_revoked(claims.grant_id) {
        return Err(Failure::invalid_token("The access token has been revoked.")
            .because(AuthFailure::Revoked));
    }
    if claims.gty.as_deref() == Some(jwt::CLIENT_CREDENTIALS_GTY) {
        return from_service_token(state, &claims).await;
    }
    let membership = state
        .members
        .get(&state.store, claims.sub, claims.org_id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "membership lookup failed");
            Failure::Internal
        })?
        .ok_or_else(|| {
            Failure::invalid_token("The token's user is no longer a member of its organization.")
                .because(AuthFailure::NotMember)
        })?;
    if membership.disabled {
        return Err(disabled());
    }
    Ok(Identity {
        user_id: claims.sub,
        org_id: claims.org_id,
        email: membership.email,
        scopes: jwt::scope_of(&claims)
            .mcp()
            .intersect(membership.role.ceiling()),
        source: Source::OAuth,
        client_id: Some(claims.client_id.clone()),
        api_key_id: None,
        client_name: None,
    })
}

/// A machine client's token: the service client must still exist, be live
/// and belong to the token's org; its role's ceiling caps the scopes.
async fn from_service_token(
    state: &AppState,
    claims: &jwt::AccessClaims,
) -> Result<Identity, Failure> {
    let service = match state.service_clients.get(&claims.sub) {
        Some(s) => s,
        None => {
            let found = state.store.service_client(claims.sub).await.map_err(|e| {
                tracing::error!(error = %e, "service client lookup failed");
                Failure::Internal
            })?;
            let Some(found) = found else {
                return Err(
                    Failure::invalid_token("The token's service client no longer exists.")
                        .because(AuthFailure::Revoked),
                );
            };
            let found = Arc::new(found);
            state.service_clients.insert(claims.sub, Arc::clone(&found));
            found
        }
    };
    if service.revoked_at.is_some() || service.org_id != claims.org_id {
        return Err(
            Failure::invalid_token("The token's service client has been revoked.")
                .because(AuthFailure::Revoked),
        );
    }
    Ok(Identity {
        user_id: service.id,
        org_id: service.org_id,
        email: String::new(),
        scopes: jwt::scope_of(claims)
            .mcp()
            .intersect(service.role.ceiling()),
        source: Source::ClientCredentials,
        client_id: Some(claims.client_id.clone()),
        api_key_id: None,
        client_name: Some(service.name.clone()),
    })
}

/// A credential of a disabled account (README "Accounts"): refused within
/// the membership cache's TTL of the change, on every instance.
fn disabled() -> Failure {
    Failure::invalid_token("The account this credential belongs to is disabled.")
        .because(AuthFailure::NotMember)
}

/// The token's claims, from the verified-token cache or by full verification.
fn verified_claims(state: &AppState, token: &str) -> Result<Arc<jwt::AccessClaims>, Failure> {
    jwt::verify_access_token_cached(state, token).map_err(|e| {
        let text = format!("The access token is not valid: {e}.");
        let reason = if text.contains("Expired") {
            AuthFailure::Expired
        } else {
            AuthFailure::InvalidToken
        };
        Failure::invalid_token(text).because(reason)
    })
}

async fn from_api_key(
    state: &AppState,
    headers: &HeaderMap,
    parsed: Option<(&str, &str)>,
) -> Result<Identity, Failure> {
    let header_name = &state.config.org_header;
    if headers.get_all(header_name.as_str()).iter().count() > 1 {
        return Err(Failure::Refused {
            reason: AuthFailure::WrongOrg,
            error: "invalid_request",
            description: format!("Send one {header_name} header, not several."),
        });
    }
    let org_id = match headers.get(header_name.as_str()) {
        None => {
            return Err(Failure::Refused {
                reason: AuthFailure::WrongOrg,
                error: "invalid_request",
                description: format!("{header_name} header required."),
            });
        }
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| Uuid::parse_str(v.trim()).ok())
            .ok_or_else(|| Failure::Refused {
                reason: AuthFailure::WrongOrg,
                error: "invalid_request",
                description: format!("{header_name} must be an organization id (a UUID)."),
            })?,
    };
    let unknown =
        || Failure::invalid_token("Unknown or revoked API key.").because(AuthFailure::UnknownKey);
    let (key_id, secret) = parsed.ok_or_else(unknown)?;
    let key = state.api_keys.get(key_id).await.map_err(|e| {
        tracing::error!(error = %e, "API key lookup failed");
        Failure::Internal
    })?;
    let key = key
        .filter(|k| k.revoked_at.is_none() && api_key::verify(secret, &k.secret_hash))
        .ok_or_else(unknown)?;
    if key.org_id != org_id {
        return Err(Failure::invalid_token(format!(
            "This API key belongs to a different organization than the {header_name} header names."
        ))
        .because(AuthFailure::WrongOrg));
    }
    let membership = state
        .members
        .get(&state.store, key.user_id, org_id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "membership lookup failed");
            Failure::Internal
        })?
        .ok_or_else(|| {
            Failure::invalid_token("The API key's user is not a member of that organization.")
                .because(AuthFailure::NotMember)
        })?;
    if membership.disabled {
        return Err(disabled());
    }
    state.api_keys.record_use(&key.id);
    Ok(Identity {
        user_id: key.user_id,
        org_id,
        email: membership.email,
        scopes: key.scopes.mcp().intersect(membership.role.ceiling()),
        source: Source::ApiKey,
        client_id: None,
        api_key_id: Some(key.id.clone()),
        client_name: None,
    })
}
