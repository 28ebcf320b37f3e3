//! The client behind a `client_id`: a registered one from the store or a
//! metadata-document client, and client authentication at the token,
//! revocation and introspection endpoints (RFC 6749 §2.3).

use axum::http::HeaderMap;

use super::{cimd::CimdError, error::OAuthError, http_auth, redirect_uri::RedirectUri};
use crate::{identity::secret, state::AppState, store::StoreError};

#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<RedirectUri>,
    secret_hash: Option<String>,
    pub from_metadata_document: bool,
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
            });
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
        })
    }

    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
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

/// Authenticates the client of a back-channel request from HTTP Basic or the
/// form's `client_id`/`client_secret`.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    form_client_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<OAuthClient, OAuthError> {
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
