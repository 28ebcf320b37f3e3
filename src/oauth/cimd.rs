//! Client ID Metadata Documents: a `client_id` that is an https URL names a
//! JSON document describing the client. Fetching a URL chosen by a stranger
//! is an SSRF risk, so the fetch resolves the host itself, refuses
//! special-use addresses, pins the connection to the checked address, follows
//! no redirects and reads at most 5 KB within 5 seconds.
//!
//! Fetches are bounded too: concurrent requests naming the same URL share one
//! fetch, at most [`MAX_CONCURRENT_FETCHES`] run at once, and a failure is
//! remembered for [`FAILURE_CACHE`], so a stranger cannot turn one URL, or
//! many, into a flood of outgoing requests.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::sync::{OnceCell, Semaphore};

use serde::Deserialize;
use url::Url;

use super::redirect_uri::RedirectUri;

const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CACHE: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_CACHE: Duration = Duration::from_secs(300);
/// How long a failed fetch is answered from memory.
pub const FAILURE_CACHE: Duration = Duration::from_secs(30);
/// Metadata fetches in flight at once, over all URLs.
pub const MAX_CONCURRENT_FETCHES: usize = 16;
/// Cached entries (documents and failures) before expired ones are swept.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone)]
pub struct MetadataDocument {
    pub client_name: String,
    pub redirect_uris: Vec<RedirectUri>,
    /// Set when the document declares `token_endpoint_auth_method:
    /// "private_key_jwt"`: its `jwks_uri` (or inline `jwks`); the client
    /// must then authenticate with a client assertion.
    pub keys: Option<super::jwks::KeySource>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CimdError {
    #[error("the client_id URL is not allowed: {0}")]
    Forbidden(String),
    #[error("the client metadata document could not be fetched: {0}")]
    Fetch(String),
    #[error("the client metadata document is invalid: {0}")]
    Invalid(String),
}

/// A remembered document, or a remembered failure.
type Cached = Result<MetadataDocument, CimdError>;

/// One fetch's result, shared by every request that waited for it.
type Fetched = Result<(MetadataDocument, Option<Duration>), CimdError>;

pub struct CimdCache {
    allow_loopback: bool,
    /// Documents and recent failures, each with its expiry.
    entries: Mutex<HashMap<String, (Cached, Instant)>>,
    /// Fetches under way: later requests for the same URL await the first.
    in_flight: Mutex<HashMap<String, Arc<OnceCell<Fetched>>>>,
    fetches: Semaphore,
    /// Fetches actually sent, for tests and diagnostics.
    sent: std::sync::atomic::AtomicU64,
    metrics: Arc<crate::metrics::Metrics>,
}

#[derive(Deserialize)]
struct Document {
    client_id: String,
    client_name: Option<String>,
    redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    client_secret: Option<String>,
    jwks_uri: Option<String>,
    jwks: Option<serde_json::Value>,
}

impl CimdCache {
    pub fn new(allow_loopback: bool, metrics: Arc<crate::metrics::Metrics>) -> CimdCache {
        CimdCache {
            metrics,
            allow_loopback,
            entries: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            fetches: Semaphore::new(MAX_CONCURRENT_FETCHES),
            sent: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Whether `client_id` is meant as a metadata document URL.
    pub fn is_document_url(&self, client_id: &str) -> bool {
        client_id.starts_with("https://")
            || (self.allow_loopback && client_id.starts_with("http://"))
    }

    /// The document `client_id` names: from memory when fresh (or when its
    /// fetch failed less than [`FAILURE_CACHE`] ago), else fetched once for
    /// all concurrent callers.
    pub async fn get(&self, client_id: &str) -> Result<MetadataDocument, CimdError> {
        if let Some((result, expires)) = self.entries.lock().expect("lock").get(client_id)
            && *expires > Instant::now()
        {
            return result.clone();
        }
        let cell = Arc::clone(
            self.in_flight
                .lock()
                .expect("lock")
                .entry(client_id.to_owned())
                .or_default(),
        );
        // The first caller runs the fetch; the others wait for its result. If
        // the first is cancelled, a waiter takes over (OnceCell semantics).
        let fetched = cell
            .get_or_init(|| async {
                let result = self.fetch_bounded(client_id).await;
                let now = Instant::now();
                let cached = match &result {
                    Ok((doc, Some(ttl))) => Some((Ok(doc.clone()), now + *ttl)),
                    Ok((_, None)) => None,
                    Err(e) => Some((Err(e.clone()), now + FAILURE_CACHE)),
                };
                let mut entries = self.entries.lock().expect("lock");
                if entries.len() > MAX_ENTRIES {
                    entries.retain(|_, (_, expires)| *expires > now);
                }
                match cached {
                    Some(entry) => entries.insert(client_id.to_owned(), entry),
                    None => entries.remove(client_id),
                };
                result
            })
            .await
            .clone();
        {
            let mut in_flight = self.in_flight.lock().expect("lock");
            if in_flight
                .get(client_id)
                .is_some_and(|c| Arc::ptr_eq(c, &cell))
            {
                in_flight.remove(client_id);
            }
        }
        fetched.map(|(doc, _)| doc)
    }

    /// How many fetches this cache has sent.
    pub fn fetches_sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn fetch_bounded(
        &self,
        client_id: &str,
    ) -> Result<(MetadataDocument, Option<Duration>), CimdError> {
        let _permit = tokio::time::timeout(FETCH_TIMEOUT, self.fetches.acquire())
            .await
            .map_err(|_| CimdError::Fetch("too many metadata fetches in progress".into()))?
            .expect("the semaphore is never closed");
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let result = self.fetch(client_id).await;
        self.metrics.cimd_fetch(result.is_ok());
        result
    }

    async fn fetch(
        &self,
        client_id: &str,
    ) -> Result<(MetadataDocument, Option<Duration>), CimdError> {
        let (body, ttl) =
            fetch_untrusted(client_id, self.allow_loopback, MAX_DOCUMENT_BYTES).await?;
        let doc: Document =
            serde_json::from_slice(&body).map_err(|e| CimdError::Invalid(e.to_string()))?;
        Ok((validate(client_id, doc)?, ttl))
    }
}

/// Fetches a URL named by a stranger (a metadata document, a client's or an
/// enterprise identity provider's `jwks_uri`) under the SSRF rules of this
/// module: https only (http on loopback when `allow_loopback`, for tests),
/// no credentials or fragment, a path, every resolved address public, the
/// connection pinned to the checked address, no redirects, 200 only, at
/// most `max_bytes` within [`FETCH_TIMEOUT`]. Returns the body and how long
/// it may be cached (`None`: not at all).
///
/// # Errors
/// [`CimdError::Forbidden`] for a URL these rules refuse, [`CimdError::Fetch`]
/// when the fetch fails, [`CimdError::Invalid`] for a body over `max_bytes`.
pub async fn fetch_untrusted(
    url: &str,
    allow_loopback: bool,
    max_bytes: usize,
) -> Result<(Vec<u8>, Option<Duration>), CimdError> {
    let client_id = url;
    let url = Url::parse(client_id).map_err(|_| CimdError::Forbidden("not a URL".into()))?;
    let host = url
        .host_str()
        .ok_or_else(|| CimdError::Forbidden("no host".into()))?
        .to_owned();
    let loopback_ok = allow_loopback && url.scheme() == "http";
    if url.scheme() != "https" && !loopback_ok {
        return Err(CimdError::Forbidden("must use https".into()));
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(CimdError::Forbidden(
            "must not carry a fragment or credentials".into(),
        ));
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err(CimdError::Forbidden("must have a path".into()));
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::time::timeout(
        FETCH_TIMEOUT,
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    .map_err(|_| CimdError::Fetch("DNS lookup timed out".into()))?
    .map_err(|e| CimdError::Fetch(format!("DNS lookup failed: {e}")))?
    .collect();
    let addr = addrs
        .first()
        .copied()
        .ok_or_else(|| CimdError::Fetch("host has no address".into()))?;
    // The test-only switch admits loopback documents, over http or over
    // https with any certificate (a test cannot get a trusted one for
    // 127.0.0.1; clients such as the TypeScript SDK insist on https).
    let local_test = allow_loopback && addrs.iter().all(|a| a.ip().is_loopback());
    for a in &addrs {
        let allowed = if loopback_ok {
            a.ip().is_loopback()
        } else {
            is_public(a.ip()) || local_test
        };
        if !allowed {
            return Err(CimdError::Forbidden(format!(
                "{host} resolves to a non-public address"
            )));
        }
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(FETCH_TIMEOUT)
        .resolve(&host, addr)
        .danger_accept_invalid_certs(local_test)
        .build()
        .map_err(|e| CimdError::Fetch(e.to_string()))?;
    let mut response = client
        .get(url.clone())
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| CimdError::Fetch(e.without_url().to_string()))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(CimdError::Fetch(format!(
            "status {}",
            response.status().as_u16()
        )));
    }
    let ttl = cache_ttl(
        response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
    );
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| CimdError::Fetch(e.without_url().to_string()))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > max_bytes {
            return Err(CimdError::Invalid(format!("larger than {max_bytes} bytes")));
        }
    }
    Ok((body, ttl))
}

fn validate(client_id: &str, doc: Document) -> Result<MetadataDocument, CimdError> {
    if doc.client_id != client_id {
        return Err(CimdError::Invalid(
            "client_id does not equal the document URL".into(),
        ));
    }
    if doc.client_secret.is_some()
        || doc
            .token_endpoint_auth_method
            .as_deref()
            .is_some_and(|m| m.starts_with("client_secret"))
    {
        return Err(CimdError::Invalid(
            "a metadata document client cannot use a shared secret".into(),
        ));
    }
    // The name is stored with the grant; PostgreSQL refuses text with NUL,
    // so such a document is refused like any other unstorable input (other
    // control and format characters are removed below).
    if doc.client_name.as_deref().is_some_and(|n| n.contains('\0')) {
        return Err(CimdError::Invalid(
            "client_name must not contain NUL characters".into(),
        ));
    }
    let client_name = doc
        .client_name
        .and_then(|n| crate::display_text::clean(&n, 200))
        .ok_or_else(|| CimdError::Invalid("client_name is required".into()))?;
    let uris = doc
        .redirect_uris
        .filter(|u| !u.is_empty())
        .ok_or_else(|| CimdError::Invalid("redirect_uris is required".into()))?;
    let redirect_uris = uris
        .iter()
        .map(|u| RedirectUri::parse(u).map_err(|e| CimdError::Invalid(e.0)))
        .collect::<Result<Vec<_>, _>>()?;
    let keys = match doc.token_endpoint_auth_method.as_deref() {
        Some("private_key_jwt") => Some(match (doc.jwks_uri, doc.jwks) {
            (Some(uri), None) => super::jwks::KeySource::Uri(uri),
            (None, Some(jwks)) => super::jwks::KeySource::Inline(
                super::jwks::parse_inline(&jwks)
                    .map_err(|_| CimdError::Invalid("jwks is not a JWKS document".into()))?,
            ),
            _ => {
                return Err(CimdError::Invalid(
                    "private_key_jwt needs exactly one of jwks_uri and jwks".into(),
                ));
            }
        }),
        // Other methods are treated as before: a public client (SPEC §3.3).
        _ => None,
    };
    Ok(MetadataDocument {
        client_name,
        redirect_uris,
        keys,
    })
}

/// `max-age` up to 24 h; `no-store`/`no-cache` mean no caching.
fn cache_ttl(cache_control: Option<&str>) -> Option<Duration> {
    let Some(value) = cache_control else {
        return Some(DEFAULT_CACHE);
    };
    let mut ttl = Some(DEFAULT_CACHE);
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return None;
        }
        if let Some(secs) = lower
            .strip_prefix("max-age=")
            .and_then(|s| s.parse::<u64>().ok())
        {
            ttl = (secs > 0).then(|| Duration::from_secs(secs).min(MAX_CACHE));
        }
    }
    ttl
}

/// Rejects the special-use ranges of RFC 6890 and friends.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x64 && s[1] == 0xff9b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_use_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "192.168.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        assert!(is_public("93.184.216.34".parse().unwrap()));
    }

    #[test]
    fn a_client_name_with_nul_is_refused() {
        let url = "https://app.example/client.json";
        let doc = |name: &str| Document {
            client_id: url.into(),
            client_name: Some(name.into()),
            redirect_uris: Some(vec!["https://app.example/cb".into()]),
            token_endpoint_auth_method: None,
            client_secret: None,
            jwks_uri: None,
            jwks: None,
        };
        assert!(validate(url, doc("App")).is_ok());
        assert!(validate(url, doc("A\0pp")).is_err());
    }

    #[test]
    fn cache_control_is_honoured_up_to_a_day() {
        assert_eq!(cache_ttl(Some("max-age=60")), Some(Duration::from_secs(60)));
        assert_eq!(cache_ttl(Some("public, max-age=999999")), Some(MAX_CACHE));
        assert_eq!(cache_ttl(Some("no-store")), None);
    }
}
