//! JWT access tokens (RFC 9068) and OpenID Connect ID tokens, signed RS256
//! with the active key and verified by `kid`.

use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::keys::Keys;
use crate::identity::scope::ScopeSet;

/// RFC 9068 §2.1: the media type of JWT access tokens, in its short form.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Clock skew tolerated on `exp`/`nbf`/`iat`.
pub const LEEWAY_SECS: u64 = 30;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: Uuid,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: Uuid,
    pub client_id: String,
    pub scope: String,
    pub org_id: Uuid,
    pub grant_id: Uuid,
    /// `client_credentials` on a machine client's token (then `sub`,
    /// `client_id` and `grant_id` are the service client's id); absent on
    /// tokens that act for a user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gty: Option<String>,
}

/// The `gty` of a machine client's access token.
pub const CLIENT_CREDENTIALS_GTY: &str = "client_credentials";

#[derive(Debug, Serialize)]
pub struct IdClaims<'a> {
    pub iss: &'a str,
    pub sub: Uuid,
    pub aud: &'a str,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    pub org_id: Uuid,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("token type is not at+jwt")]
    WrongType,
    #[error("token signed by an unknown key")]
    UnknownKey,
    #[error("{0}")]
    Invalid(String),
}

/// Signs `claims` as an RS256 JWT with the active key and header `typ`.
pub fn sign<T: Serialize>(keys: &Keys, typ: &str, claims: &T) -> String {
    keys.active().sign_jwt(typ, claims)
}

pub fn access_token(keys: &Keys, claims: &AccessClaims) -> String {
    sign(keys, ACCESS_TOKEN_TYP, claims)
}

/// Verifies an access token's header, signature and registered claims. The
/// caller still checks that the grant is live.
pub fn verify_access_token(
    keys: &Keys,
    token: &str,
    issuer: &str,
    audience: &str,
) -> Result<AccessClaims, TokenError> {
    verify(keys, token, issuer, audience, true)
}

/// [`verify_access_token`] through the verified-token cache of `state`
/// (README, "Performance"). A cached entry stands for the exact token verified
/// before (it is keyed by the token's SHA-256 digest), so only its expiry can
/// have changed since, and that is checked here; revocation is the caller's.
pub fn verify_access_token_cached(
    state: &crate::state::AppState,
    token: &str,
) -> Result<std::sync::Arc<AccessClaims>, TokenError> {
    let key = crate::mcp::cache::credential_key(token);
    if let Some(claims) = state.verified_tokens.get(&key) {
        if claims.exp + LEEWAY_SECS as i64 > crate::store::now() {
            return Ok(claims);
        }
        return Err(TokenError::Invalid("ExpiredSignature".into()));
    }
    let config = &state.config;
    let claims = std::sync::Arc::new(verify_access_token(
        &state.keys,
        token,
        config.issuer(),
        &config.resource(),
    )?);
    state
        .verified_tokens
        .insert(key, std::sync::Arc::clone(&claims));
    Ok(claims)
}

/// For revocation, where an expired token of ours must still be recognised.
pub fn verify_access_token_ignoring_expiry(
    keys: &Keys,
    token: &str,
    issuer: &str,
    audience: &str,
) -> Result<AccessClaims, TokenError> {
    verify(keys, token, issuer, audience, false)
}

fn verify(
    keys: &Keys,
    token: &str,
    issuer: &str,
    audience: &str,
    check_expiry: bool,
) -> Result<AccessClaims, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    // jsonwebtoken leaves `typ` to us; RFC 9068 §4 requires rejecting other types
    // so an ID token cannot be replayed as an access token.
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok {
        return Err(TokenError::WrongType);
    }
    if header.alg != Algorithm::RS256 {
        return Err(TokenError::Invalid("unsupported algorithm".into()));
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| keys.get_or_reload(kid))
        .ok_or(TokenError::UnknownKey)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.validate_nbf = check_expiry;
    validation.validate_exp = check_expiry;
    validation.leeway = LEEWAY_SECS;
    jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
        .map(|data| data.claims)
        .map_err(|e| TokenError::Invalid(e.to_string()))
}

pub fn scope_of(claims: &AccessClaims) -> ScopeSet {
    ScopeSet::parse_lenient(&claims.scope)
}
