//! Fetching an upstream's OpenAPI document by URL when the catalog loads.
//! Loading is synchronous (start-up and SIGHUP reload), so the fetch runs
//! on its own thread with its own small runtime rather than blocking, or
//! nesting inside, the server's runtime.

use std::time::Duration;

/// Documents larger than this are refused (the largest public ones are a
/// few MiB).
const MAX_DOCUMENT_BYTES: usize = 32 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(30);

/// The text at `url`: `https`, or `http` to a loopback host; no redirects.
///
/// # Errors
/// Another scheme or host, a network failure, a non-200 answer, or a body
/// over 32 MiB, with a message naming the URL.
pub fn fetch(url: &str) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
        return Err(format!("{url}: use https (http only on loopback)"));
    }
    let owned = url.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(get(&owned))
    })
    .join()
    .map_err(|_| format!("{url}: the fetch failed"))?
}

async fn get(url: &str) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {}", e.without_url()))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(format!("{url}: answered {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("{url}: {}", e.without_url()))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("{url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
    }
    String::from_utf8(body).map_err(|_| format!("{url}: not UTF-8 text"))
}
