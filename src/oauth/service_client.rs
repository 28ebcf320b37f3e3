//! The `client_credentials` grant (RFC 6749 §4.4) for machine clients of one
//! org (README "Machine clients"). The token acts for the service client
//! itself: `sub`, `client_id` and `grant_id` are its id, `gty` says so, and
//! there is no refresh token (the client asks again). Revoking the client
//! revokes its tokens through the same set as grants (`revocation.rs`).

use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    authorize::same_resource,
    client::OAuthClient,
    error::{OAuthError, OAuthResult},
    jwt::{self, AccessClaims, CLIENT_CREDENTIALS_GTY},
    token::TokenForm,
};
use crate::{identity::scope::ScopeSet, state::AppState, store};

/// Answers the `client_credentials` grant for an authenticated client.
///
/// # Errors
/// `unauthorized_client` for a client that is not a service client,
/// `invalid_scope` for a scope beyond the client's, `invalid_target` for
/// another resource.
pub async fn client_credentials(
    state: &AppState,
    client: &OAuthClient,
    form: &TokenForm,
) -> OAuthResult<Value> {
    let Some(service) = &client.service else {
        return Err(OAuthError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "only service clients may use the client_credentials grant",
        ));
    };
    check_resource(state, form)?;
    let allowed = service.scope.intersect(service.role.ceiling()).mcp();
    let scope = match form.get("scope") {
        Some(requested) => {
            let requested = ScopeSet::parse_lenient(requested).mcp();
            if !requested.is_subset_of(allowed) {
                return Err(OAuthError::invalid_scope(format!(
                    "the scope may only include {allowed}"
                )));
            }
            requested
        }
        None => allowed,
    };
    if scope.is_empty() {
        return Err(OAuthError::invalid_scope("no MCP scope was requested"));
    }
    tracing::info!(client_id = %service.id, org_id = %service.org_id, %scope, "service client token issued");
    Ok(access_token_only(
        state,
        service.id,
        &client.client_id,
        service.org_id,
        service.id,
        scope,
        Some(CLIENT_CREDENTIALS_GTY),
    ))
}

/// RFC 8707: a `resource`, when sent, must be our MCP resource.
pub fn check_resource(state: &AppState, form: &TokenForm) -> OAuthResult<()> {
    match form.get("resource") {
        Some(resource) if !same_resource(resource, &state.config.resource()) => Err(
            OAuthError::invalid_target("resource must be this server's MCP resource"),
        ),
        _ => Ok(()),
    }
}

/// A token response with an access token and no refresh token (RFC 6749
/// §4.4.3, RFC 7523 §2.1: the client gets a new assertion or asks again).
pub fn access_token_only(
    state: &AppState,
    sub: Uuid,
    client_id: &str,
    org_id: Uuid,
    grant_id: Uuid,
    scope: ScopeSet,
    gty: Option<&str>,
) -> Value {
    let now = store::now();
    let ttl = state.config.access_token_ttl.as_secs() as i64;
    let claims = AccessClaims {
        iss: state.config.issuer().to_owned(),
        sub,
        aud: state.config.resource(),
        exp: now + ttl,
        iat: now,
        nbf: now,
        jti: Uuid::new_v4(),
        client_id: client_id.to_owned(),
        scope: scope.to_string(),
        org_id,
        grant_id,
        gty: gty.map(str::to_owned),
    };
    json!({
        "access_token": jwt::access_token(&state.keys, &claims),
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": scope.to_string(),
    })
}
