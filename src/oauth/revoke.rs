//! Token revocation (RFC 7009), introspection (RFC 7662) and `/userinfo`.

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    client,
    error::OAuthError,
    http_auth,
    jwt::{self, AccessClaims},
    token::TokenForm,
};
use crate::{
    identity::{scope::Scope, secret},
    state::AppState,
    store::Grant,
};

/// What a presented token turned out to be.
enum Presented {
    Access(Arc<AccessClaims>),
    Refresh(Grant),
}

/// Identifies a token of ours without trusting its expiry: revocation must
/// work on any token we issued.
async fn identify(
    state: &AppState,
    token: &str,
    check_expiry: bool,
) -> Result<Option<Presented>, OAuthError> {
    if token.matches('.').count() == 2 {
        let claims = if check_expiry {
            // The verified-token cache the MCP endpoint uses (README,
            // "Performance"): a resource server introspecting the same token
            // repeatedly costs one RSA verification.
            jwt::verify_access_token_cached(state, token).ok()
        } else {
            jwt::verify_access_token_ignoring_expiry(
                &state.keys,
                token,
                state.config.issuer(),
                &state.config.resource(),
            )
            .ok()
            .map(Arc::new)
        };
        return Ok(claims.map(Presented::Access));
    }
    let hash = secret::hash(token);
    let grant = if check_expiry {
        state.store.refresh_grant(&hash).await?
    } else {
        state.store.refresh_token_grant(&hash).await?
    };
    Ok(grant.map(Presented::Refresh))
}

pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let form = TokenForm::parse(&headers, &body)?;
    let client = client::authenticate(&state, &headers, &form).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let target = match identify(&state, token, false).await? {
        // A machine client's access token has no grant of its own (its
        // `grant_id` is the client): revoking one would refuse all of them
        // on this instance only. It expires; the admin revokes the client.
        Some(Presented::Access(claims)) if claims.gty.is_some() => None,
        Some(Presented::Access(claims)) => Some((claims.grant_id, claims.client_id.clone())),
        Some(Presented::Refresh(grant)) => Some((grant.id, grant.client_id)),
        None => None,
    };
    // RFC 7009 §2.2: an unknown token, or one of another client, still gets 200.
    if let Some((grant_id, owner)) = target
        && owner == client.client_id
    {
        state.store.revoke_grant(grant_id).await?;
        crate::oauth::revocation::revoked(
            &state,
            crate::oauth::revocation::Revocation::Grant(grant_id),
        )
        .await;
        tracing::info!(%grant_id, client_id = %owner, "grant revoked by client");
    }
    Ok(([(header::CACHE_CONTROL, "no-store")], StatusCode::OK).into_response())
}

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let form = TokenForm::parse(&headers, &body)?;
    let client = client::authenticate(&state, &headers, &form).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let inactive = json!({ "active": false });
    let answer = match identify(&state, token, true).await? {
        Some(Presented::Access(c))
            if !state.revoked.is_revoked(c.grant_id) && may_see(&state, &client, &c.client_id) =>
        {
            // A machine client's token stands for the client itself; a
            // person's for their grant, and only while their account is enabled.
            let grant_live = if c.gty.as_deref() == Some(jwt::CLIENT_CREDENTIALS_GTY) {
                state
                    .store
                    .service_client(c.grant_id)
                    .await?
                    .is_some_and(|s| s.revoked_at.is_none())
            } else {
                state
                    .store
                    .grant(c.grant_id)
                    .await?
                    .is_some_and(|g| g.revoked_at.is_none())
                    && state
                        .store
                        .user(c.sub)
                        .await?
                        .is_some_and(|u| u.disabled_at.is_none())
            };
            if grant_live {
                json!({
                    "active": true,
                    "token_type": "Bearer",
                    "scope": c.scope,
                    "client_id": c.client_id,
                    "sub": c.sub,
                    "aud": c.aud,
                    "iss": c.iss,
                    "exp": c.exp,
                    "iat": c.iat,
                    "nbf": c.nbf,
                    "jti": c.jti,
                    "org_id": c.org_id,
                    "grant_id": c.grant_id,
                })
            } else {
                inactive
            }
        }
        Some(Presented::Refresh(g)) if may_see(&state, &client, &g.client_id) => json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": g.scope.to_string(),
            "client_id": g.client_id,
            "sub": g.user_id,
            "aud": g.resource,
            "iss": state.config.issuer(),
            "exp": g.last_used_at + state.config.refresh_token_idle_ttl.as_secs() as i64,
            "iat": g.created_at,
            "org_id": g.org_id,
            "grant_id": g.id,
        }),
        _ => inactive,
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(answer)).into_response())
}

/// A client learns about the tokens issued to it; only the resource servers
/// named in `introspection_clients`, authenticated as confidential clients,
/// may introspect any token (RFC 7662 §4: the endpoint must not tell a
/// stranger whether a token is live). Anyone else gets `{"active": false}`.
fn may_see(state: &AppState, client: &client::OAuthClient, owner: &str) -> bool {
    client.client_id == owner
        || (!client.is_public()
            && state
                .config
                .introspection_clients
                .contains(&client.client_id))
}

pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    // RFC 6750 §3.1 answers, with the challenge every bearer endpoint uses.
    let challenge = |error: &str, description: &str, status: StatusCode| {
        let value = http_auth::Challenge::bearer()
            .param("error", error)
            .param("error_description", description)
            .to_header_value();
        let mut response = (
            status,
            Json(json!({ "error": error, "error_description": description })),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
        response
    };
    let token = match http_auth::bearer_token(&headers) {
        Ok(Some(token)) => token,
        Ok(None) => {
            return challenge(
                "invalid_token",
                "an access token is required",
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(malformed) => {
            return challenge("invalid_token", malformed.0, StatusCode::UNAUTHORIZED);
        }
    };
    let claims = match jwt::verify_access_token(
        &state.keys,
        token,
        state.config.issuer(),
        &state.config.resource(),
    ) {
        Ok(c) if !state.revoked.is_revoked(c.grant_id) => c,
        _ => {
            return challenge(
                "invalid_token",
                "the access token is not valid",
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    let scope = jwt::scope_of(&claims);
    if !scope.contains(Scope::OpenId) {
        return challenge(
            "insufficient_scope",
            "the openid scope is required",
            StatusCode::FORBIDDEN,
        );
    }
    let user = match state.store.user(claims.sub).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return challenge(
                "invalid_token",
                "the user no longer exists",
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(e) => return OAuthError::from(e).into_response(),
    };
    let mut body = json!({ "sub": user.id, "org_id": claims.org_id });
    if scope.contains(Scope::Email) {
        body["email"] = Value::String(user.email);
        body["email_verified"] = Value::Bool(true);
    }
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}
