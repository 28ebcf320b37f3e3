//! One configured upstream OpenID Provider at run time: its discovered
//! metadata and keys (cached), the authorization request, and the checks on
//! the ID token it returns. The relying-party protocol is the `openidconnect`
//! crate's; this module adds what it leaves to the caller: bounded HTTP, the
//! JWKS refetch on an unknown `kid`, `azp`, and clock leeway.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest, HttpResponse, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
    core::{
        CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreJsonWebKeySet,
        CoreJwsSigningAlgorithm, CoreProviderMetadata,
    },
};
use serde_json::{Map, Value};

use super::config::IdentityProviderConfig;

/// Time allowed for any one request to a provider (discovery, keys, token):
/// a slow or unreachable provider gets an error page, not a hung sign-in.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(4);
/// How long discovered metadata is reused before it is read again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// The shortest time between two key refetches for an unknown `kid`, so
/// tokens naming made-up keys cannot make us hammer the provider.
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Clock difference tolerated on `exp` and `iat`.
const LEEWAY: Duration = Duration::from_secs(60);
/// The largest provider response read (metadata, keys, tokens).
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Why signing in through a provider failed; each maps to a readable page.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the identity provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the identity provider's answer was not usable: {0}")]
    BadResponse(String),
    #[error("the identity provider's ID token was refused: {0}")]
    InvalidIdToken(String),
}

struct Discovered {
    metadata: CoreProviderMetadata,
    fetched_at: Instant,
}

/// A configured provider; discovery happens on first use, not at start, so
/// a provider that is down does not stop the server.
pub struct Provider {
    pub config: IdentityProviderConfig,
    secret: Option<String>,
    redirect_uri: String,
    http: reqwest::Client,
    discovered: tokio::sync::Mutex<Option<Discovered>>,
    last_jwks_refetch: std::sync::Mutex<Option<Instant>>,
}

/// What must survive the round trip to the provider.
pub struct AuthorizationStart {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

impl Provider {
    pub fn new(config: IdentityProviderConfig, issuer: &str, http: reqwest::Client) -> Provider {
        let secret = config
            .client_secret_env
            .as_deref()
            .and_then(|var| std::env::var(var).ok())
            .filter(|s| !s.is_empty());
        Provider {
            redirect_uri: format!("{issuer}/login/callback/{}", config.id),
            config,
            secret,
            http,
            discovered: tokio::sync::Mutex::new(None),
            last_jwks_refetch: std::sync::Mutex::new(None),
        }
    }

    /// The HTTP client given to `openidconnect`: reqwest with the bounds of
    /// this module (no redirects, time and size caps).
    pub fn http_client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(PROVIDER_TIMEOUT)
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .expect("static client configuration")
    }

    async fn send(http: &reqwest::Client, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let request = reqwest::Request::try_from(request).map_err(HttpError::Request)?;
        let mut response = http.execute(request).await.map_err(HttpError::Request)?;
        let mut builder = http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(HttpError::Request)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(HttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(builder.body(body).expect("parts from a valid response"))
    }

    /// The provider's metadata (with its keys), discovered at most once per
    /// [`METADATA_TTL`].
    async fn metadata(&self) -> Result<CoreProviderMetadata, ProviderError> {
        let mut slot = self.discovered.lock().await;
        if let Some(d) = slot.as_ref()
            && d.fetched_at.elapsed() < METADATA_TTL
        {
            return Ok(d.metadata.clone());
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| ProviderError::BadResponse(e.to_string()))?;
        let http = Http(self.http.clone());
        let metadata = tokio::time::timeout(
            PROVIDER_TIMEOUT * 2,
            CoreProviderMetadata::discover_async(issuer, &http),
        )
        .await
        .map_err(|_| ProviderError::Unreachable("discovery timed out".into()))?
        .map_err(discovery_error)?;
        *slot = Some(Discovered {
            metadata: metadata.clone(),
            fetched_at: Instant::now(),
        });
        Ok(metadata)
    }

    fn client(
        &self,
        metadata: CoreProviderMetadata,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        ProviderError,
    > {
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            self.secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(
            RedirectUrl::new(self.redirect_uri.clone())
                .map_err(|e| ProviderError::BadResponse(e.to_string()))?,
        ))
    }

    /// The authorization request (OIDC Core §3.1.2.1) with PKCE S256
    /// (RFC 7636), a random `state` and a random `nonce`.
    pub async fn start(&self) -> Result<AuthorizationStart, ProviderError> {
        let client = self.client(self.metadata().await?)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge);
        for scope in &self.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        Ok(AuthorizationStart {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
        })
    }

    /// Redeems the code (with the PKCE verifier) and returns the verified ID
    /// token's claims as a JSON object.
    pub async fn finish(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
    ) -> Result<Map<String, Value>, ProviderError> {
        let metadata = self.metadata().await?;
        let client = self.client(metadata.clone())?;
        let http = Http(self.http.clone());
        let request = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| ProviderError::BadResponse(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()));
        let tokens = tokio::time::timeout(PROVIDER_TIMEOUT * 2, request.request_async(&http))
            .await
            .map_err(|_| ProviderError::Unreachable("the token request timed out".into()))?
            .map_err(|e| match e {
                openidconnect::RequestTokenError::Request(e) => {
                    ProviderError::Unreachable(e.to_string())
                }
                other => ProviderError::BadResponse(error_chain(&other)),
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| ProviderError::BadResponse("no ID token in the token response".into()))?
            .clone();
        match self.verify(&client, &id_token, nonce) {
            Err(ProviderError::InvalidIdToken(e)) if e.contains(NO_MATCHING_KEY) => {
                // The provider may have rotated its keys since discovery.
                let keys = self.refetch_keys(&metadata).await?;
                let mut metadata = metadata;
                metadata = metadata.set_jwks(keys);
                self.remember(metadata.clone()).await;
                self.verify(&self.client(metadata)?, &id_token, nonce)
            }
            other => other,
        }
    }

    async fn remember(&self, metadata: CoreProviderMetadata) {
        let mut slot = self.discovered.lock().await;
        *slot = Some(Discovered {
            metadata,
            fetched_at: Instant::now(),
        });
    }

    /// Fetches the key set again, at most once per [`JWKS_REFETCH_INTERVAL`].
    async fn refetch_keys(
        &self,
        metadata: &CoreProviderMetadata,
    ) -> Result<CoreJsonWebKeySet, ProviderError> {
        {
            let mut last = self.last_jwks_refetch.lock().expect("lock");
            if last.is_some_and(|t| t.elapsed() < JWKS_REFETCH_INTERVAL) {
                return Err(ProviderError::InvalidIdToken(
                    "signed with a key the provider does not publish".into(),
                ));
            }
            *last = Some(Instant::now());
        }
        let http = Http(self.http.clone());
        tokio::time::timeout(
            PROVIDER_TIMEOUT * 2,
            CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), &http),
        )
        .await
        .map_err(|_| ProviderError::Unreachable("fetching the keys timed out".into()))?
        .map_err(discovery_error)
    }

    /// OIDC Core §3.1.3.7: signature by the provider's keys with an allowed
    /// asymmetric algorithm, `iss`, `aud`, `azp`, `exp` and `iat` with
    /// [`LEEWAY`], and `nonce`.
    fn verify<C>(
        &self,
        client: &CoreClient<
            C,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        id_token: &CoreIdToken,
        nonce: &str,
    ) -> Result<Map<String, Value>, ProviderError>
    where
        C: openidconnect::EndpointState,
    {
        let algs: Vec<CoreJwsSigningAlgorithm> = self
            .config
            .allowed_algs
            .iter()
            .filter_map(|a| serde_json::from_value(Value::String(a.clone())).ok())
            .filter(|a: &CoreJwsSigningAlgorithm| {
                !matches!(
                    a,
                    CoreJwsSigningAlgorithm::HmacSha256
                        | CoreJwsSigningAlgorithm::HmacSha384
                        | CoreJwsSigningAlgorithm::HmacSha512
                        | CoreJwsSigningAlgorithm::None
                )
            })
            .collect();
        let now = || chrono_now(-(LEEWAY.as_secs() as i64));
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs(algs)
            // `exp` is compared with a clock set back by the leeway.
            .set_time_fn(now)
            .set_issue_time_verifier_fn(|iat| {
                if iat > chrono_now(LEEWAY.as_secs() as i64) {
                    Err("issued in the future".into())
                } else {
                    Ok(())
                }
            });
        let nonce = Nonce::new(nonce.to_owned());
        let claims = id_token
            .claims(&verifier, &nonce)
            .map_err(|e| ProviderError::InvalidIdToken(error_chain(&e)))?;
        // OIDC Core §3.1.3.7 steps 4-5, which the crate leaves to us.
        let client_id = self.config.client_id.as_str();
        match claims.authorized_party() {
            Some(azp) if azp.as_str() != client_id => {
                return Err(ProviderError::InvalidIdToken(format!(
                    "azp {:?} is not our client id",
                    azp.as_str()
                )));
            }
            None if claims.audiences().len() > 1 => {
                return Err(ProviderError::InvalidIdToken(
                    "several audiences and no azp".into(),
                ));
            }
            _ => {}
        }
        // The signature is verified: read every claim, for the mapping.
        payload(&id_token.to_string())
            .ok_or_else(|| ProviderError::InvalidIdToken("unreadable claims".into()))
    }
}

const NO_MATCHING_KEY: &str = "No matching key found";

/// `now + offset_secs` as the `chrono` time the crate compares against.
fn chrono_now(offset_secs: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() + chrono::TimeDelta::seconds(offset_secs)
}

/// The JSON claims of a compact JWS (already verified by the caller).
fn payload(jwt: &str) -> Option<Map<String, Value>> {
    use base64::Engine;
    let part = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn discovery_error<E: std::error::Error + 'static>(
    e: openidconnect::DiscoveryError<E>,
) -> ProviderError {
    match e {
        openidconnect::DiscoveryError::Request(e) => ProviderError::Unreachable(error_chain(&e)),
        other => ProviderError::BadResponse(error_chain(&other)),
    }
}

/// A failed request to a provider, as the error type `openidconnect` asks
/// of an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Request(#[from] reqwest::Error),
    #[error("the response is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
}

/// Our reqwest client as `openidconnect`'s HTTP client.
struct Http(reqwest::Client);

impl<'c> openidconnect::AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<HttpResponse, HttpError>> + Send + Sync + 'c>,
    >;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        let client = self.0.clone();
        Box::pin(async move { Provider::send(&client, request).await })
    }
}

/// All configured providers, in configuration order.
pub struct Providers {
    pub all: Vec<Arc<Provider>>,
    /// The bounded client for provider requests (hand-off JWKS too).
    pub http: reqwest::Client,
}

impl Providers {
    pub fn new(configs: &[IdentityProviderConfig], issuer: &str) -> Providers {
        let http = Provider::http_client();
        Providers {
            http: http.clone(),
            all: configs
                .iter()
                .map(|c| Arc::new(Provider::new(c.clone(), issuer, http.clone())))
                .collect(),
        }
    }

    /// The display name of the provider with this id (the id itself for a
    /// provider no longer configured).
    pub fn display_name(&self, id: &str) -> String {
        self.all
            .iter()
            .find(|p| p.config.id == id)
            .map_or_else(|| id.to_owned(), |p| p.config.name.clone())
    }

    /// The OpenID Provider with this id (not a hand-off one).
    pub fn get(&self, id: &str) -> Option<&Arc<Provider>> {
        self.oidc().find(|p| p.config.id == id)
    }

    /// The OpenID Providers, in configuration order: the sign-in buttons.
    pub fn oidc(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.all.iter().filter(|p| !p.config.is_handoff())
    }
}
