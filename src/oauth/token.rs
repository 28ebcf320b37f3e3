//! The token endpoint (SPEC §3.6): authorization-code and refresh-token grants,
//! and (issue 16) `client_credentials` and the jwt-bearer identity assertion grant.

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    authorize::same_resource,
    client::{self, OAuthClient},
    error::{OAuthError, OAuthResult},
    jwt::{self, AccessClaims, IdClaims},
    pkce,
};
use crate::{
    identity::{
        scope::{Scope, ScopeSet},
        secret::{self, Secret},
    },
    state::AppState,
    store::{self, CodeRedemption, Grant, RefreshToken, Rotation},
};

/// The form, parsed by hand so that a repeated or malformed parameter is an
/// RFC 6749 `invalid_request`, not a framework rejection.
pub struct TokenForm(std::collections::HashMap<String, String>);

impl TokenForm {
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> OAuthResult<TokenForm> {
        // Be liberal where the body is unambiguous: MCP Inspector sends
        // `application/json, application/x-www-form-urlencoded` with a form.
        // A JSON body stays `invalid_request` (RFC 6749 §3.2).
        if !has_media_type(headers, "application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        std::str::from_utf8(body)
            .map_err(|_| OAuthError::invalid_request("the body is not UTF-8"))?;
        let mut map = std::collections::HashMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            if map.insert(k.clone().into_owned(), v.into_owned()).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "the parameter {k} appears more than once"
                )));
            }
        }
        Ok(TokenForm(map))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn require(&self, key: &str) -> OAuthResult<&str> {
        self.get(key)
            .ok_or_else(|| OAuthError::invalid_request(format!("{key} is required")))
    }
}

/// Whether the request's `Content-Type` names `wanted` among its media types
/// (RFC 9110 §8.3: type and subtype are case-insensitive; parameters such as
/// `charset` are ignored). Some clients send a comma-separated list.
pub fn has_media_type(headers: &HeaderMap, wanted: &str) -> bool {
    headers
        .get_all(header::CONTENT_TYPE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            t.split(';')
                .next()
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(wanted))
        })
}

pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let form = TokenForm::parse(&headers, &body)?;
    let grant_type = form.require("grant_type")?;
    if !matches!(
        grant_type,
        "authorization_code"
            | "refresh_token"
            | "client_credentials"
            | super::id_jag::JWT_BEARER_GRANT
    ) {
        return Err(OAuthError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("grant_type {grant_type:?} is not supported"),
        ));
    }
    let client = client::authenticate(&state, &headers, &form).await?;
    let body = match grant_type {
        "authorization_code" => authorization_code(&state, &client, &form).await?,
        "client_credentials" => {
            super::service_client::client_credentials(&state, &client, &form).await?
        }
        super::id_jag::JWT_BEARER_GRANT => {
            super::id_jag::jwt_bearer(&state, &client, &form).await?
        }
        _ => refresh_token(&state, &client, &form).await?,
    };
    state.metrics.token_issued(match grant_type {
        "authorization_code" => "authorization_code",
        "client_credentials" => "client_credentials",
        super::id_jag::JWT_BEARER_GRANT => "jwt_bearer",
        _ => "refresh_token",
    });
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(body),
    )
        .into_response())
}

async fn authorization_code(
    state: &AppState,
    client: &OAuthClient,
    form: &TokenForm,
) -> OAuthResult<Value> {
    let code = form.require("code")?;
    let refresh = Secret::generate();
    // Every check runs inside the store's transaction, before the code's
    // single use is spent: a refused presentation (a wrong code_verifier,
    // say) only counts against the code.
    let check = |code: &store::AuthCode| -> OAuthResult<(Grant, RefreshToken)> {
        check_code(client, form, code)?;
        let now = store::now();
        let grant = Grant {
            id: Uuid::new_v4(),
            client_id: code.client_id.clone(),
            client_name: code.client_name.clone(),
            redirect_uri: code.redirect_uri.clone(),
            user_id: code.user_id,
            org_id: code.org_id,
            scope: code.scope,
            resource: code.resource.clone(),
            nonce: code.nonce.clone(),
            created_at: now,
            last_used_at: now,
            revoked_at: None,
        };
        let first = new_refresh(state, &refresh, grant.id, None);
        Ok((grant, first))
    };
    let grant = match state.store.redeem_code(&secret::hash(code), check).await? {
        CodeRedemption::Redeemed(grant) => grant,
        CodeRedemption::Refused(error) => return Err(error),
        CodeRedemption::Replayed => {
            // The grant the code produced was revoked by the store; tell this instance now.
            let _ = state.revoked.refresh(&state.store).await?;
            crate::oauth::revocation::announce(
                &state.store,
                &crate::oauth::revocation::Revocation::Resync,
            )
            .await;
            tracing::warn!(client_id = %client.client_id, "authorization code replayed; its grant is revoked");
            return Err(OAuthError::invalid_grant(
                "the authorization code has already been used",
            ));
        }
        CodeRedemption::Unknown => {
            return Err(OAuthError::invalid_grant(
                "the authorization code is not valid",
            ));
        }
    };
    tracing::info!(grant_id = %grant.id, client_id = %grant.client_id, "grant created");
    token_response(state, &grant, &refresh, true).await
}

/// The checks of RFC 6749 §4.1.3 and RFC 7636 §4.6 on a stored code.
fn check_code(client: &OAuthClient, form: &TokenForm, code: &store::AuthCode) -> OAuthResult<()> {
    if code.expires_at <= store::now() {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired",
        ));
    }
    if code.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if form
        .get("redirect_uri")
        .is_some_and(|r| r != code.redirect_uri)
    {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    let Some(verifier) = form.get("code_verifier") else {
        return Err(OAuthError::invalid_request("code_verifier is required"));
    };
    if !pkce::verify(verifier, &code.code_challenge) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    if let Some(resource) = form.get("resource")
        && !same_resource(resource, &code.resource)
    {
        return Err(OAuthError::invalid_target(
            "resource differs from the authorization request",
        ));
    }
    Ok(())
}

async fn refresh_token(
    state: &AppState,
    client: &OAuthClient,
    form: &TokenForm,
) -> OAuthResult<Value> {
    let presented = form.require("refresh_token")?;
    let presented_hash = secret::hash(presented);
    let Some(grant) = state.store.refresh_token_grant(&presented_hash).await? else {
        return Err(OAuthError::invalid_grant("the refresh token is not valid"));
    };
    if grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if let Some(resource) = form.get("resource")
        && !same_resource(resource, &grant.resource)
    {
        return Err(OAuthError::invalid_target(
            "resource differs from the original grant",
        ));
    }
    // A disabled account keeps its grants but may not use them.
    if state
        .store
        .user(grant.user_id)
        .await?
        .is_none_or(|u| u.disabled_at.is_some())
    {
        return Err(OAuthError::invalid_grant("the user's account is disabled"));
    }
    // The role may have been lowered since the grant: apply today's ceiling.
    let role = state
        .store
        .role(grant.user_id, grant.org_id)
        .await?
        .ok_or_else(|| {
            OAuthError::invalid_grant("the user is no longer a member of the organization")
        })?;
    let mut scope = grant.scope.intersect(role.ceiling());
    if let Some(requested) = form.get("scope") {
        let requested = ScopeSet::parse_lenient(requested);
        if !requested.is_subset_of(grant.scope) {
            return Err(OAuthError::invalid_scope(
                "a refresh can only narrow the granted scope",
            ));
        }
        scope = scope.intersect(requested);
    }
    if scope.mcp().is_empty() {
        return Err(OAuthError::invalid_scope(
            "no MCP scope remains for this user",
        ));
    }
    let refresh = Secret::generate();
    let replacement = new_refresh(state, &refresh, grant.id, Some(presented_hash.clone()));
    match state
        .store
        .rotate_refresh(
            &presented_hash,
            &replacement,
            state.config.refresh_grace,
            Some(scope),
        )
        .await?
    {
        Rotation::Rotated(grant) | Rotation::Raced(grant) => {
            token_response(state, &grant, &refresh, false).await
        }
        Rotation::Reused { grant_id } => {
            crate::oauth::revocation::revoked(
                state,
                crate::oauth::revocation::Revocation::Grant(grant_id),
            )
            .await;
            tracing::warn!(%grant_id, client_id = %client.client_id, "refresh token reused; grant revoked");
            Err(OAuthError::invalid_grant(
                "the refresh token was already used; the grant has been revoked",
            ))
        }
        Rotation::Invalid => Err(OAuthError::invalid_grant("the refresh token is not valid")),
    }
}

fn new_refresh(
    state: &AppState,
    token: &Secret,
    grant_id: Uuid,
    parent: Option<String>,
) -> RefreshToken {
    let now = store::now();
    RefreshToken {
        token_hash: token.hash(),
        grant_id,
        parent_hash: parent,
        created_at: now,
        expires_at: now + state.config.refresh_token_idle_ttl.as_secs() as i64,
    }
}

async fn token_response(
    state: &AppState,
    grant: &Grant,
    refresh: &Secret,
    first: bool,
) -> OAuthResult<Value> {
    let now = store::now();
    let ttl = state.config.access_token_ttl.as_secs() as i64;
    let claims = AccessClaims {
        iss: state.config.issuer().to_owned(),
        sub: grant.user_id,
        aud: grant.resource.clone(),
        exp: now + ttl,
        iat: now,
        nbf: now,
        jti: Uuid::new_v4(),
        client_id: grant.client_id.clone(),
        scope: grant.scope.to_string(),
        org_id: grant.org_id,
        grant_id: grant.id,
        gty: None,
    };
    let mut body = json!({
        "access_token": jwt::access_token(&state.keys, &claims),
        "token_type": "Bearer",
        "expires_in": ttl,
        "refresh_token": refresh.expose(),
        "scope": grant.scope.to_string(),
    });
    if grant.scope.contains(Scope::OpenId) {
        let user = state
            .store
            .user(grant.user_id)
            .await?
            .ok_or_else(OAuthError::server_error)?;
        let with_email = grant.scope.contains(Scope::Email);
        let id = IdClaims {
            iss: state.config.issuer(),
            sub: grant.user_id,
            aud: &grant.client_id,
            exp: now + ttl,
            iat: now,
            auth_time: grant.created_at,
            // OIDC Core §12.2: the nonce belongs to the first ID token only.
            nonce: if first { grant.nonce.as_deref() } else { None },
            email: with_email.then_some(user.email.as_str()),
            email_verified: with_email.then_some(true),
            org_id: grant.org_id,
        };
        body["id_token"] = Value::String(jwt::sign(&state.keys, "JWT", &id));
    }
    Ok(body)
}
