//! Text the store cannot hold, refused at the edge. PostgreSQL refuses any
//! text containing NUL (U+0000) and SQLite truncates it, so such a value
//! reaching a statement turned an ordinary lookup (`client_id=a%00b` at
//! `/token`) into a 500. One layer over the OAuth endpoints and one over the
//! pages look at every value a handler can read — the percent-decoded path
//! and query, HTTP Basic credentials, and the body as a form or as JSON —
//! and answer with the router's own error before any handler runs: RFC 6749
//! JSON `invalid_request` (`invalid_client_metadata` at `/register`,
//! RFC 7591 §3.2.2) or a readable page. See README "Limits and hardening".

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::Engine;
use percent_encoding::percent_decode;
use serde_json::Value;

use crate::{oauth::error::OAuthError, state::AppState, web::PageError};

/// Why a request was refused before reaching its handler.
enum Refusal {
    /// A value contains NUL.
    Nul,
    /// The body is larger than `max_body_bytes`.
    TooLarge,
    /// The body did not arrive within `body_read_timeout` (or the client left).
    Unread,
}

/// For the OAuth endpoints: refusals in RFC 6749 §5.2 / RFC 7591 §3.2.2 JSON.
pub async fn refuse_unstorable_oauth(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let registration = request.uri().path() == "/register";
    match inspect(request, state.config.max_body_bytes).await {
        Ok(request) => next.run(request).await,
        Err(Refusal::Nul) if registration => OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "client metadata must not contain NUL characters",
        )
        .into_response(),
        Err(Refusal::Nul) => {
            OAuthError::invalid_request("request parameters must not contain NUL characters")
                .into_response()
        }
        // Plain statuses: the OAuth error layer words them as RFC 6749 errors.
        Err(Refusal::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        Err(Refusal::Unread) => StatusCode::REQUEST_TIMEOUT.into_response(),
    }
}

/// For the pages (sign-in, consent, console): refusals as readable pages.
pub async fn refuse_unstorable_page(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match inspect(request, state.config.max_body_bytes).await {
        Ok(request) => next.run(request).await,
        Err(Refusal::Nul) => PageError::bad_request(
            "The address or form contains a character that is not allowed (NUL). \
             Go back and check what you typed.",
        )
        .into_response(),
        Err(Refusal::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        Err(Refusal::Unread) => StatusCode::REQUEST_TIMEOUT.into_response(),
    }
}

async fn inspect(request: Request, limit: usize) -> Result<Request, Refusal> {
    let uri = request.uri();
    if decodes_to_nul(uri.path().as_bytes())
        || uri.query().is_some_and(|q| decodes_to_nul(q.as_bytes()))
        || basic_credentials_hold_nul(&request)
    {
        return Err(Refusal::Nul);
    }
    if !declares_body(&request) {
        return Ok(request);
    }
    let (parts, body) = request.into_parts();
    let bytes =
        axum::body::to_bytes(body, limit).await.map_err(|e| {
            match std::error::Error::source(&e) {
                Some(inner) if inner.is::<http_body_util::LengthLimitError>() => Refusal::TooLarge,
                _ => Refusal::Unread,
            }
        })?;
    if body_holds_nul(&bytes) {
        return Err(Refusal::Nul);
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn declares_body(request: &Request) -> bool {
    let headers = request.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0")
}

/// Percent-decoding covers both `%00` and a raw NUL byte.
fn decodes_to_nul(raw: &[u8]) -> bool {
    percent_decode(raw).any(|b| b == 0)
}

/// RFC 6749 §2.3.1: Basic credentials are form-encoded, then base64-encoded.
fn basic_credentials_hold_nul(request: &Request) -> bool {
    request
        .headers()
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest)
        })
        .filter_map(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .any(|raw| decodes_to_nul(&raw))
}

/// A JSON body is judged by its decoded strings (`"\u0000"`), anything else
/// as a form (`a%00b`); a raw NUL byte is refused in either.
fn body_holds_nul(bytes: &Bytes) -> bool {
    if bytes.contains(&0) {
        return true;
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(json) => json_holds_nul(&json),
        Err(_) => decodes_to_nul(bytes),
    }
}

fn json_holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(json_holds_nul),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.contains('\0') || json_holds_nul(v)),
        _ => false,
    }
}

/// Whether any string (or key) in a JSON value contains NUL: for JSON that
/// arrives by another path than the guarded routers (MCP tool arguments).
pub fn json_contains_nul(value: &Value) -> bool {
    json_holds_nul(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_found_however_it_is_encoded() {
        assert!(body_holds_nul(&Bytes::from_static(b"client_id=a%00b")));
        assert!(body_holds_nul(&Bytes::from_static(
            br#"{"client_name":"a\u0000b"}"#
        )));
        assert!(body_holds_nul(&Bytes::from_static(b"a\0b")));
        assert!(!body_holds_nul(&Bytes::from_static(
            br#"{"client_uri":"https://x.example/%00"}"#
        )));
        assert!(!body_holds_nul(&Bytes::from_static(
            b"grant_type=authorization_code&code=abc"
        )));
        assert!(decodes_to_nul(b"/console/keys/a%00b"));
        assert!(!decodes_to_nul(b"next=%2Fconsole"));
    }
}
