//! Everything a request handler may need, cloned cheaply into each handler.

use std::{net::IpAddr, sync::Arc, time::Duration};

use crate::{
    config::Config,
    gateway::{catalog::Catalog, forward::IdentityTokens},
    identity::{mac::MacKey, passwords::Passwords},
    mcp::{
        apikeys::ApiKeyCache,
        audit::AuditLog,
        cache::{self, CredentialKey},
        members::MemberCache,
        policy::ScopePolicy,
        server::{NameClash, ToolSet, Tools},
    },
    oauth::{cimd::CimdCache, jwt::AccessClaims, keys::Keys, revocation::RevokedGrants},
    ratelimit::TokenBuckets,
    store::Store,
    web::throttle::LoginThrottle,
};

/// How long API keys and memberships are cached on the MCP hot path: the
/// bound on how late a key revocation or role change takes effect.
const MCP_CACHE_TTL: Duration = Duration::from_secs(5);
/// How long a verified access token is remembered (never past its `exp`).
const VERIFIED_TOKEN_TTL: Duration = Duration::from_secs(60);
/// The most verified access tokens remembered at once (about 0.5 KiB each):
/// past it, rarely seen tokens are evicted, so a flood of distinct valid
/// tokens costs RSA verifications but neither memory nor a slower cache.
pub const MAX_VERIFIED_TOKENS: u64 = 20_000;
/// How long a registered client's row is reused at the token, revocation and
/// introspection endpoints: the bound on how late a client revocation made
/// elsewhere takes effect here.
const CLIENT_CACHE_TTL: Duration = Duration::from_secs(5);
/// The most registered clients kept at once.
pub const MAX_CACHED_CLIENTS: u64 = 10_000;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub keys: Arc<Keys>,
    pub passwords: Passwords,
    pub revoked: Arc<RevokedGrants>,
    pub cimd: Arc<CimdCache>,
    pub registrations: Arc<TokenBuckets<IpAddr>>,
    pub login_throttle: Arc<LoginThrottle>,
    /// The MAC key shared by all instances (CSRF tokens, known-device
    /// cookies); random until `lib::build` loads the stored one.
    pub mac: Arc<MacKey>,
    pub api_keys: Arc<ApiKeyCache>,
    pub members: Arc<MemberCache>,
    /// Access tokens whose signature and claims were verified recently, so
    /// the hot path skips RSA verification; expiry and revocation are still
    /// checked on every request.
    /// Keyed by the token's SHA-256 digest; bounded by [`MAX_VERIFIED_TOKENS`].
    pub verified_tokens: moka::sync::Cache<CredentialKey, Arc<AccessClaims>>,
    /// Registered clients by `client_id`, as `OAuthClient::resolve` found
    /// them (revoked ones included, so revocation is still answered).
    pub clients: moka::sync::Cache<String, Arc<crate::store::Client>>,
    pub policy: Arc<ScopePolicy>,
    pub tool_calls: Arc<TokenBuckets<String>>,
    pub audit: AuditLog,
    /// Built-in and gateway tools; replaced whole on a catalog reload.
    pub tools: Arc<Tools>,
    /// Pooled HTTP client for gateway upstreams.
    pub upstreams: reqwest::Client,
    pub identity_tokens: Arc<IdentityTokens>,
    /// Prometheus metrics of this instance (see `metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Set when a graceful shutdown begins; `/readyz` then answers 503.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// Public keys of clients (`private_key_jwt`) and enterprise identity
    /// providers, fetched under the CIMD rules.
    pub jwks: Arc<crate::oauth::jwks::JwksCache>,
    /// Service clients by id, revoked ones included; like `clients`, the
    /// bound on how late a change made elsewhere is seen here.
    pub service_clients: moka::sync::Cache<uuid::Uuid, Arc<crate::store::ServiceClient>>,
    /// Redis holding the limits shared by every instance (`redis_url`).
    pub shared_limits: Option<Arc<crate::shared_limits::SharedLimits>>,
    /// Configured upstream identity providers (sign-in through them).
    pub providers: Arc<crate::federation::provider::Providers>,
    /// The first-run setup token, while no user exists (`web::setup`).
    pub setup: Arc<crate::web::setup::SetupToken>,
}

impl AppState {
    pub fn new(
        config: Config,
        store: Store,
        keys: Keys,
        catalog: &Catalog,
    ) -> Result<AppState, NameClash> {
        let (registrations, tool_calls) = limits(&config);
        let policy = ScopePolicy::new(&config.tool_scopes);
        let tools = Arc::new(Tools::new(
            ToolSet::new(&policy, catalog)?.offering(config.builtin_tools.as_deref()),
        ));
        let upstreams = reqwest::Client::builder()
            // Upstream redirects could carry the identity JWT to another host.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .expect("static client configuration");
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let config_allow_loopback = config.cimd_allow_loopback;
        Ok(AppState {
            passwords: Passwords::new(config.max_concurrent_hashes),
            revoked: Arc::new(RevokedGrants::new(config.access_token_ttl)),
            cimd: Arc::new(CimdCache::new(
                config.cimd_allow_loopback,
                Arc::clone(&metrics),
            )),
            registrations: Arc::new(registrations),
            login_throttle: Arc::new(LoginThrottle::default()),
            mac: Arc::new(MacKey::random()),
            api_keys: Arc::new(ApiKeyCache::start(store.clone(), MCP_CACHE_TTL)),
            members: Arc::new(MemberCache::new(MCP_CACHE_TTL)),
            verified_tokens: cache::bounded(VERIFIED_TOKEN_TTL, MAX_VERIFIED_TOKENS),
            clients: cache::bounded(CLIENT_CACHE_TTL, MAX_CACHED_CLIENTS),
            policy: Arc::new(policy),
            tool_calls: Arc::new(tool_calls),
            audit: AuditLog::start(store.clone())
                .observed_by(Arc::clone(&metrics), Arc::clone(&tools)),
            keys: Arc::new(keys),
            providers: Arc::new(crate::federation::provider::Providers::new(
                &config.identity_providers,
                config.issuer(),
            )),
            store,
            config: Arc::new(config),
            tools,
            upstreams,
            identity_tokens: Arc::new(IdentityTokens::default()),
            metrics,
            draining: Arc::default(),
            jwks: Arc::new(crate::oauth::jwks::JwksCache::new(config_allow_loopback)),
            service_clients: cache::bounded(CLIENT_CACHE_TTL, MAX_CACHED_CLIENTS),
            shared_limits: None,
            setup: Arc::default(),
        })
    }

    /// Moves the tool-call and registration limits and the sign-in throttle
    /// to Redis, shared with every other instance using it.
    pub fn share_limits(&mut self, shared: Arc<crate::shared_limits::SharedLimits>) {
        let (registrations, tool_calls) = limits(&self.config);
        let metrics = Arc::clone(&self.metrics);
        self.registrations = Arc::new(registrations.shared(
            Arc::clone(&shared),
            "registration",
            Arc::clone(&metrics),
        ));
        self.tool_calls = Arc::new(tool_calls.shared(Arc::clone(&shared), "tool", metrics));
        self.login_throttle = Arc::new(LoginThrottle::shared(Arc::clone(&shared)));
        self.shared_limits = Some(shared);
    }

    /// Re-reads the catalog file and swaps in the new tool set; on any error
    /// the current tools stay and the error is returned for the log.
    pub fn reload_catalog(&self) -> Result<usize, crate::gateway::GatewayError> {
        let catalog = crate::gateway::load_configured(&self.config)?;
        let set =
            ToolSet::new(&self.policy, &catalog)?.offering(self.config.builtin_tools.as_deref());
        let count = catalog.tools.len();
        self.tools.replace(set);
        Ok(count)
    }
}

/// The DCR per-address buckets and the per-tool buckets, as configured.
fn limits(config: &Config) -> (TokenBuckets<IpAddr>, TokenBuckets<String>) {
    (
        TokenBuckets::new(
            config.registrations_per_ip_per_hour,
            config.registrations_per_ip_per_hour,
            Duration::from_secs(3600),
        ),
        TokenBuckets::new(
            config.rate_limit.burst,
            config.rate_limit.per_minute,
            Duration::from_secs(60),
        ),
    )
}
