//! The signed login hand-off, for products with their own login rather than
//! an OpenID Provider: the product's backend signs a short-lived JWT about
//! the person and sends the browser to `/login/handoff?assertion=…&next=…`
//! (or POSTs the same as a form). The assertion must be signed by the key
//! configured for that product (`handoff_public_key_pem` or
//! `handoff_jwks_url`) with an asymmetric algorithm, name the product as
//! `iss` and us (the issuer) as `aud`, live at most five minutes, and carry a
//! `jti` that was never used before on any instance (kept in the database).
//! The account, org and role rules are those of OpenID sign-in.

use axum::{
    Form,
    extract::{Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{account_for, config::IdentityProviderConfig, provider::PROVIDER_TIMEOUT};
use crate::{
    state::AppState,
    web::{PageError, login::safe_next, session},
};

/// The longest an assertion may live (`exp - iat`).
pub const MAX_LIFETIME_SECS: i64 = 300;
/// Clock difference tolerated on `exp` and `iat`.
const LEEWAY_SECS: u64 = 30;
/// The largest assertion read.
const MAX_ASSERTION_BYTES: usize = 16 * 1024;

/// A PEM public key (RSA, EC or Ed25519) as a verification key.
pub fn decoding_key(pem: &str) -> Option<DecodingKey> {
    let pem = pem.as_bytes();
    DecodingKey::from_rsa_pem(pem)
        .or_else(|_| DecodingKey::from_ec_pem(pem))
        .or_else(|_| DecodingKey::from_ed_pem(pem))
        .ok()
}

fn algorithms(config: &IdentityProviderConfig) -> Vec<Algorithm> {
    config
        .allowed_algs
        .iter()
        .filter_map(|a| a.parse::<Algorithm>().ok())
        .filter(|a| !matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
        .collect()
}

#[derive(Deserialize)]
pub struct HandoffRequest {
    assertion: Option<String>,
    next: Option<String>,
}

fn refused(message: &str) -> PageError {
    PageError {
        status: StatusCode::FORBIDDEN,
        title: "Sign-in refused",
        message: message.into(),
    }
}

/// `GET /login/handoff?assertion=…&next=…`.
pub async fn get(
    State(state): State<AppState>,
    Query(q): Query<HandoffRequest>,
) -> Result<Response, PageError> {
    handoff(&state, q).await
}

/// `POST /login/handoff` with the same fields as a form (keeps the
/// assertion out of logs and browser history).
pub async fn post(
    State(state): State<AppState>,
    Form(q): Form<HandoffRequest>,
) -> Result<Response, PageError> {
    handoff(&state, q).await
}

async fn handoff(state: &AppState, q: HandoffRequest) -> Result<Response, PageError> {
    let assertion = q
        .assertion
        .as_deref()
        .filter(|a| !a.is_empty() && a.len() <= MAX_ASSERTION_BYTES)
        .ok_or_else(|| PageError::bad_request("The sign-in link carries no assertion."))?;
    let claims = verify(state, assertion).await?;
    let config = claims.0;
    let user = account_for(state, config, &claims.1).await?;
    let cookie = session::start(state, &user).await?;
    tracing::info!(user_id = %user.id, provider = %config.id, "signed in by login hand-off");
    Ok((
        [(header::SET_COOKIE, cookie)],
        Redirect::to(safe_next(q.next.as_deref())),
    )
        .into_response())
}

/// The trusted product that issued the assertion and its verified claims;
/// the `jti` is spent.
async fn verify<'s>(
    state: &'s AppState,
    assertion: &str,
) -> Result<(&'s IdentityProviderConfig, Map<String, Value>), PageError> {
    let expired = "This sign-in link has expired or was already used. Go back and sign in again.";
    let invalid = "This sign-in link is not valid. Go back and sign in again.";
    // Only to pick the product by `iss`; nothing is trusted before the
    // signature check below.
    let unverified: Map<String, Value> =
        jsonwebtoken::dangerous::insecure_decode_claims(assertion).map_err(|_| refused(invalid))?;
    let iss = unverified.get("iss").and_then(Value::as_str).unwrap_or("");
    let config = state
        .providers
        .all
        .iter()
        .map(|p| &p.config)
        .find(|c| c.is_handoff() && c.issuer == iss)
        .ok_or_else(|| {
            tracing::info!(iss, "login hand-off from an unknown issuer");
            refused(invalid)
        })?;
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| refused(invalid))?;
    let key = match (&config.handoff_public_key_pem, &config.handoff_jwks_url) {
        (Some(pem), _) => decoding_key(pem).ok_or_else(PageError::internal)?,
        (None, Some(url)) => jwks_key(state, url, header.kid.as_deref()).await?,
        (None, None) => return Err(PageError::internal()),
    };
    let mut validation = Validation::new(header.alg);
    validation.algorithms = algorithms(config);
    if !validation.algorithms.contains(&header.alg) {
        tracing::info!(provider = %config.id, alg = ?header.alg, "login hand-off with a refused algorithm");
        return Err(refused(invalid));
    }
    validation.set_audience(&[state.config.issuer()]);
    validation.set_issuer(&[config.issuer.as_str()]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = LEEWAY_SECS;
    let claims = jsonwebtoken::decode::<Map<String, Value>>(assertion, &key, &validation)
        .map_err(|e| {
            tracing::info!(provider = %config.id, error = %e, "login hand-off refused");
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => refused(expired),
                _ => refused(invalid),
            }
        })?
        .claims;
    let iat = claims.get("iat").and_then(Value::as_i64).unwrap_or(0);
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let now = crate::store::now();
    if exp - iat > MAX_LIFETIME_SECS || iat > now + LEEWAY_SECS as i64 {
        tracing::info!(provider = %config.id, "login hand-off lives too long or starts in the future");
        return Err(refused(invalid));
    }
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty() && j.len() <= 255)
        .ok_or_else(|| refused(invalid))?;
    if !state.store.use_handoff_jti(&config.id, jti, exp).await? {
        tracing::info!(provider = %config.id, "login hand-off replayed");
        return Err(refused(expired));
    }
    Ok((config, claims))
}

/// The key named by `kid` in the product's JWKS (fetched with the same
/// bounds as OpenID Provider requests).
async fn jwks_key(
    state: &AppState,
    url: &str,
    kid: Option<&str>,
) -> Result<DecodingKey, PageError> {
    let unreachable = || PageError {
        status: StatusCode::BAD_GATEWAY,
        title: "The sign-in provider is not answering",
        message: "We could not check this sign-in link. Try again in a moment.".into(),
    };
    let response = state
        .providers
        .http
        .get(url)
        .timeout(PROVIDER_TIMEOUT)
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(url, error = %e, "hand-off JWKS unreachable");
            unreachable()
        })?;
    let set: JwkSet = response.json().await.map_err(|e| {
        tracing::warn!(url, error = %e, "hand-off JWKS unreadable");
        unreachable()
    })?;
    let jwk = match kid {
        Some(kid) => set.find(kid),
        None if set.keys.len() == 1 => set.keys.first(),
        None => None,
    }
    .ok_or_else(|| refused("This sign-in link is not valid. Go back and sign in again."))?;
    DecodingKey::from_jwk(jwk)
        .map_err(|_| refused("This sign-in link is not valid. Go back and sign in again."))
}
