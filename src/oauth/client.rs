//! The client behind a `client_id`: a registered one from the store or a
//! metadata-document client, and client authentication at the token,
//! revocation and introspection endpoints (RFC 6749 §2.3).

use axum::http::HeaderMap;

use std::sync::Arc;

use super::{
    cimd::CimdError,
    error::OAuthError,
    http_auth,
    jwks::{self, KeySource},
    redirect_uri::RedirectUri,
    token::TokenForm,
};
use crate::{
    identity::secret,
    state::AppState,
    store::{ServiceClient, StoreError},
};

/// RFC 7523 §2.2: the `client_assertion_type` of `private_key_jwt`.
pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Longest lifetime accepted for a client assertion, in seconds.
pub const MAX_CLIENT_ASSERTION_LIFETIME: i64 = 600;

#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<RedirectUri>,
    secret_hash: Option<String>,
    pub from_metadata_document: bool,
    /// Its public keys, when it registered or published some.
    pub keys: Option<KeySource>,
    /// It authenticates with `private_key_jwt` only.
    pub requires_assertion: bool,
    /// Set for a machine client of one org (README "Machine clients").
    pub service: Option<Arc<ServiceClient>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("unknown client")]
    Unknown,
    #[error("this client has been revoked")]
    Revoked,
    #[error(transparent)]
    Document(#[from] CimdError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OAuthClient {
    pub async fn resolve(state: &AppState, client_id: &str) -> Result<OAuthClient, ClientError> {
        if client_id.is_empty() || client_id.len() > 2048 {
            return Err(ClientError::Unknown);
        }
        if state.cimd.is_document_url(client_id) {
            let doc = state.cimd.get(client_id).await?;
            return Ok(OAuthClient {
                client_id: client_id.to_owned(),
                name: doc.client_name,
                redirect_uris: doc.redirect_uris,
                secret_hash: None,
                from_metadata_document: true,
                requires_assertion: doc.keys.is_some(),
                keys: doc.keys,
                service: None,
            });
        }
        if let Some(service) = service_client(state, client_id).await? {
            return Ok(service);
        }
        // Registered clients are read through a short-lived cache (AppState's
        // `clients`): every token, revocation and introspection request
        // names one.
        let client = match state.clients.get(client_id) {
            Some(client) => client,
            None => {
                let client = std::sync::Arc::new(
                    state
                        .store
                        .client(client_id)
                        .await?
                        .ok_or(ClientError::Unknown)?,
                );
                state
                    .clients
                    .insert(client_id.to_owned(), std::sync::Arc::clone(&client));
                client
            }
        };
        if client.revoked_at.is_some() {
            return Err(ClientError::Revoked);
        }
        Ok(OAuthClient {
            client_id: client.client_id.clone(),
            name: client.client_name.clone(),
            // Stored URIs were validated at registration.
            redirect_uris: client
                .redirect_uris
                .iter()
                .filter_map(|u| RedirectUri::parse(u).ok())
                .collect(),
            secret_hash: client.secret_hash.clone(),
            from_metadata_document: false,
            requires_assertion: client.token_endpoint_auth_method == "private_key_jwt",
            keys: registered_keys(&client.metadata),
            service: None,
        })
    }

    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none() && !self.requires_assertion
    }

    /// The registered URI that `presented` matches, or the only registered URI
    /// when none was presented.
    pub fn redirect_uri_for(&self, presented: Option<&str>) -> Option<String> {
        match presented {
            Some(p) => self
                .redirect_uris
                .iter()
                .any(|r| r.matches(p))
                .then(|| p.to_owned()),
            None if self.redirect_uris.len() == 1 => {
                Some(self.redirect_uris[0].as_str().to_owned())
            }
            None => None,
        }
    }

    pub fn only_loopback_redirects(&self) -> bool {
        !self.redirect_uris.is_empty() && self.redirect_uris.iter().all(RedirectUri::is_loopback)
    }
}

/// The keys a registered client gave (RFC 7591 `jwks` or `jwks_uri`).
fn registered_keys(metadata: &serde_json::Value) -> Option<KeySource> {
    if let Some(uri) = metadata.get("jwks_uri").and_then(|v| v.as_str()) {
        return Some(KeySource::Uri(uri.to_owned()));
    }
    metadata
        .get("jwks")
        .and_then(|v| jwks::parse_inline(v).ok())
        .map(KeySource::Inline)
}

/// The service client `client_id` names, when it names one (their ids are
/// UUIDs); revoked ones are [`ClientError::Revoked`].
async fn service_client(
    state: &AppState,
    client_id: &str,
) -> Result<Option<OAuthClient>, ClientError> {
    let Ok(id) = uuid::Uuid::parse_str(client_id) else {
        return Ok(None);
    };
    // Registered clients are looked up first only when this id is not a
    // known service client; a miss costs one indexed read.
    let service = match state.service_clients.get(&id) {
        Some(s) => s,
        None => {
            if state.clients.contains_key(client_id) {
                return Ok(None);
            }
            let Some(s) = state.store.service_client(id).await? else {
                return Ok(None);
            };
            let s = Arc::new(s);
            state.service_clients.insert(id, Arc::clone(&s));
            s
        }
    };
    if service.revoked_at.is_some() {
        return Err(ClientError::Revoked);
    }
    let keys = match (&service.jwks_uri, &service.jwks) {
        (Some(uri), _) => Some(KeySource::Uri(uri.clone())),
        (None, Some(text)) => serde_json::from_str(text)
            .ok()
            .and_then(|v| jwks::parse_inline(&v).ok())
            .map(KeySource::Inline),
        (None, None) => None,
    };
    Ok(Some(OAuthClient {
        client_id: service.id.to_string(),
        name: service.name.clone(),
        redirect_uris: Vec::new(),
        secret_hash: service.secret_hash.clone(),
        from_metadata_document: false,
        requires_assertion: service.auth_method == "private_key_jwt",
        keys,
        service: Some(service),
    }))
}

/// Authenticates the client of a back-channel request (`/token`, `/revoke`,
/// `/introspect`): a `private_key_jwt` client assertion (RFC 7523 §2.2,
/// §3), HTTP Basic, or the form's `client_id`/`client_secret`.
///
/// # Errors
/// `invalid_client` (401, with the Basic challenge when the request tried
/// the Authorization header) naming what failed; `invalid_request` for
/// conflicting credentials.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    form: &TokenForm,
) -> Result<OAuthClient, OAuthError> {
    let form_client_id = form.get("client_id");
    let form_secret = form.get("client_secret");
    if form.get("client_assertion").is_some() || form.get("client_assertion_type").is_some() {
        return authenticate_with_assertion(state, headers, form).await;
    }
    let basic = http_auth::basic_credentials(headers).map_err(|m| {
        let mut e = OAuthError::invalid_client(m.0);
        e.basic_challenge = true;
        e
    })?;
    // RFC 6749 §5.2: a client that tried the Authorization header (with any
    // scheme) gets a 401 with a challenge naming the scheme we take.
    let used_basic = basic.is_some() || headers.contains_key(axum::http::header::AUTHORIZATION);
    let (client_id, presented) = match basic {
        Some((id, secret)) => {
            if form_client_id.is_some_and(|f| f != id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from HTTP Basic",
                ));
            }
            (id, Some(secret))
        }
        None => (
            form_client_id
                .ok_or_else(|| {
                    let mut e = OAuthError::invalid_client("client authentication required");
                    e.basic_challenge = used_basic;
                    e
                })?
                .to_owned(),
            form_secret.map(str::to_owned),
        ),
    };
    let challenge = |mut e: OAuthError| {
        e.basic_challenge = used_basic;
        e
    };
    let client = match OAuthClient::resolve(state, &client_id).await {
        Ok(c) => c,
        Err(ClientError::Store(e)) => return Err(e.into()),
        Err(e) => return Err(challenge(OAuthError::invalid_client(e.to_string()))),
    };
    if client.requires_assertion {
        return Err(challenge(OAuthError::invalid_client(
            "this client authenticates with private_key_jwt (client_assertion)",
        )));
    }
    match (&client.secret_hash, presented) {
        (Some(hash), Some(presented)) if secret::verify(&presented, hash) => Ok(client),
        (Some(_), _) => Err(challenge(OAuthError::invalid_client(
            "client authentication failed",
        ))),
        // Public clients prove nothing with a secret; PKCE and the binding of
        // codes and refresh tokens to the client_id protect them.
        (None, _) => Ok(client),
    }
}

/// `private_key_jwt`: the client proves itself with a JWT signed by one of
/// its keys (RFC 7523 §3: `iss` = `sub` = its id, `aud` our issuer or token
/// endpoint, `exp`, a single-use `jti`).
async fn authenticate_with_assertion(
    state: &AppState,
    headers: &HeaderMap,
    form: &TokenForm,
) -> Result<OAuthClient, OAuthError> {
    if form.get("client_assertion_type") != Some(JWT_BEARER_ASSERTION_TYPE) {
        return Err(OAuthError::invalid_client(format!(
            "client_assertion_type must be {JWT_BEARER_ASSERTION_TYPE}"
        )));
    }
    let assertion = form
        .get("client_assertion")
        .ok_or_else(|| OAuthError::invalid_client("client_assertion is required"))?;
    if headers.contains_key(axum::http::header::AUTHORIZATION)
        || form.get("client_secret").is_some()
    {
        return Err(OAuthError::invalid_request(
            "use one client authentication method, not several",
        ));
    }
    let bad = |why: String| OAuthError::invalid_client(format!("client assertion refused: {why}"));
    let (_, peeked) = super::assertion::peek(assertion).map_err(bad)?;
    let client_id = match (form.get("client_id"), peeked.sub.as_deref()) {
        (Some(id), _) => id.to_owned(),
        (None, Some(sub)) => sub.to_owned(),
        (None, None) => return Err(bad("it has no sub".into())),
    };
    let client = match OAuthClient::resolve(state, &client_id).await {
        Ok(c) => c,
        Err(ClientError::Store(e)) => return Err(e.into()),
        Err(e) => return Err(OAuthError::invalid_client(e.to_string())),
    };
    let Some(keys) = &client.keys else {
        return Err(OAuthError::invalid_client(
            "this client has no public keys for private_key_jwt",
        ));
    };
    let claims = super::assertion::verify(
        &state.jwks,
        keys,
        assertion,
        &super::assertion::all_asymmetric(),
    )
    .await
    .map_err(bad)?;
    if claims.iss.as_deref() != Some(client_id.as_str())
        || claims.sub.as_deref() != Some(client_id.as_str())
    {
        return Err(bad("iss and sub must both be the client_id".into()));
    }
    let issuer = state.config.issuer();
    let token_endpoint = format!("{issuer}/token");
    if !claims.audience_is_one_of(&[issuer, &token_endpoint]) {
        return Err(bad("aud must be the issuer or the token endpoint".into()));
    }
    let now = crate::store::now();
    let exp = claims
        .check_times(now, MAX_CLIENT_ASSERTION_LIFETIME)
        .map_err(bad)?;
    let jti = claims
        .jti
        .as_deref()
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| bad("it needs a jti of at most 256 characters".into()))?;
    // Client assertions and identity assertions share one table; the
    // prefix keeps a client id from colliding with an issuer URL.
    let spent = state
        .store
        .spend_assertion_id(
            &format!("client:{client_id}"),
            jti,
            exp + super::assertion::LEEWAY_SECS,
        )
        .await?;
    if !spent {
        return Err(bad("its jti was already used".into()));
    }
    Ok(client)
}
