//! Public keys of others: the JWKS of a client (`jwks` given inline or a
//! `jwks_uri`) or of an enterprise identity provider. Documents at a URL are
//! fetched under the SSRF rules of Client ID Metadata Documents
//! ([`super::cimd::fetch_untrusted`]), cached, and fetched again for an
//! unknown `kid` at most once per [`REFETCH_AFTER`] per URL, so a stream of
//! assertions naming made-up keys cannot turn into a stream of fetches.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use tokio::sync::Semaphore;

use super::cimd::{CimdError, FAILURE_CACHE, MAX_CONCURRENT_FETCHES, fetch_untrusted};

/// Largest JWKS document read, in bytes (a dozen RSA keys).
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// How long a fetched JWKS is used before it is fetched again.
pub const JWKS_TTL: Duration = Duration::from_secs(600);
/// The shortest time between two fetches of one URL caused by unknown `kid`s.
pub const REFETCH_AFTER: Duration = Duration::from_secs(30);
/// URLs whose documents are kept at once.
const MAX_URLS: u64 = 10_000;

/// Where a party's public keys are.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWKS given at registration (RFC 7591 `jwks`).
    Inline(Arc<JwkSet>),
    /// A JWKS document at this URL (RFC 7591 `jwks_uri`).
    Uri(String),
}

/// Why no key was found; the text is safe for an `error_description` (it
/// never holds key material).
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyError {
    #[error("the key set could not be fetched: {0}")]
    Fetch(#[from] CimdError),
    #[error("the key set is not a JWKS document")]
    NotJwks,
    #[error("no key with kid {0:?} in the key set")]
    UnknownKid(String),
    #[error("the assertion names no kid and the key set does not hold exactly one key")]
    Ambiguous,
}

#[derive(Clone)]
struct Fetched {
    keys: Result<Arc<JwkSet>, KeyError>,
    at: Instant,
}

/// Cached key sets by URL, shared by client authentication and identity
/// assertions.
pub struct JwksCache {
    allow_loopback: bool,
    documents: moka::sync::Cache<String, Fetched>,
    fetches: Semaphore,
    sent: std::sync::atomic::AtomicU64,
}

impl JwksCache {
    /// `allow_loopback` is the CIMD test switch (`cimd_allow_loopback`).
    pub fn new(allow_loopback: bool) -> JwksCache {
        JwksCache {
            allow_loopback,
            documents: moka::sync::Cache::builder()
                .max_capacity(MAX_URLS)
                .time_to_live(JWKS_TTL)
                .build(),
            fetches: Semaphore::new(MAX_CONCURRENT_FETCHES),
            sent: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many JWKS fetches this cache has sent (tests, diagnostics).
    pub fn fetches_sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The key `kid` names in `source` (or its only key when `kid` is absent).
    ///
    /// # Errors
    /// [`KeyError`]: the set could not be had, or holds no such key.
    pub async fn key(&self, source: &KeySource, kid: Option<&str>) -> Result<Jwk, KeyError> {
        match source {
            KeySource::Inline(set) => select(set, kid),
            KeySource::Uri(url) => {
                let cached = self.documents.get(url);
                if let Some(Fetched { keys, at }) = &cached {
                    let stale_for_unknown_kid = at.elapsed() >= REFETCH_AFTER;
                    let failed_recently = keys.is_err() && at.elapsed() < FAILURE_CACHE;
                    match keys {
                        Ok(set) => match select(set, kid) {
                            Err(KeyError::UnknownKid(_)) if stale_for_unknown_kid => {}
                            other => return other,
                        },
                        Err(e) if failed_recently => return Err(e.clone()),
                        Err(_) => {}
                    }
                }
                let fetched = self.fetch(url).await;
                self.documents.insert(url.clone(), fetched.clone());
                select(fetched.keys?.as_ref(), kid)
            }
        }
    }

    async fn fetch(&self, url: &str) -> Fetched {
        let keys = async {
            let _permit = tokio::time::timeout(Duration::from_secs(5), self.fetches.acquire())
                .await
                .map_err(|_| CimdError::Fetch("too many key fetches in progress".into()))?
                .expect("the semaphore is never closed");
            self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (body, _) = fetch_untrusted(url, self.allow_loopback, MAX_JWKS_BYTES).await?;
            let set: JwkSet = serde_json::from_slice(&body).map_err(|_| KeyError::NotJwks)?;
            Ok::<_, KeyError>(Arc::new(set))
        }
        .await;
        if let Err(e) = &keys {
            tracing::warn!(%url, error = %e, "JWKS fetch failed");
        }
        Fetched {
            keys,
            at: Instant::now(),
        }
    }
}

/// Parses a JWKS given inline (RFC 7591 `jwks`).
///
/// # Errors
/// [`KeyError::NotJwks`] when it is not one.
pub fn parse_inline(value: &serde_json::Value) -> Result<Arc<JwkSet>, KeyError> {
    serde_json::from_value::<JwkSet>(value.clone())
        .map(Arc::new)
        .map_err(|_| KeyError::NotJwks)
}

fn select(set: &JwkSet, kid: Option<&str>) -> Result<Jwk, KeyError> {
    match kid {
        Some(kid) => set
            .find(kid)
            .cloned()
            .ok_or_else(|| KeyError::UnknownKid(crate::oauth::http_auth::quoted_string_safe(kid))),
        None if set.keys.len() == 1 => Ok(set.keys[0].clone()),
        None => Err(KeyError::Ambiguous),
    }
}
