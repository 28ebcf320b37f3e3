//! Request ids and request spans: every request gets an `X-Request-Id` (the
//! caller's, when well-formed, else a new UUID), echoed on the response, and
//! runs inside a `request` span carrying that id, the method and the route
//! template, so every log line written while serving it names the request.

use std::time::Duration;

use axum::{
    extract::{MatchedPath, Request},
    http::{HeaderName, Response},
    middleware::Next,
};
use tower_http::{
    classify::{ServerErrorsAsFailures, SharedClassifier},
    trace::{MakeSpan, OnResponse, TraceLayer},
};
use tracing::Span;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Whether a caller's request id is safe to adopt, log and echo: 1 to 128
/// characters of `[A-Za-z0-9._:-]` (no spaces, quotes or control characters
/// that could forge log lines).
pub fn well_formed(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Removes a malformed `X-Request-Id`, so a fresh one is generated.
pub async fn drop_malformed(mut request: Request, next: Next) -> axum::response::Response {
    let malformed = request.headers().get_all(&X_REQUEST_ID).iter().count() > 1
        || request
            .headers()
            .get(&X_REQUEST_ID)
            .is_some_and(|v| !v.to_str().is_ok_and(well_formed));
    if malformed {
        request.headers_mut().remove(&X_REQUEST_ID);
    }
    next.run(request).await
}

/// The span every request runs in.
#[derive(Clone, Copy)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> Span {
        let id = request
            .headers()
            .get(&X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", |p| p.as_str());
        tracing::info_span!("request", request_id = %id, method = %request.method(), route = %route)
    }
}

/// One access line per response at debug level (target
/// `portcullis::access`), with status and duration.
#[derive(Clone, Copy)]
pub struct AccessLine;

impl<B> OnResponse<B> for AccessLine {
    fn on_response(self, response: &Response<B>, latency: Duration, _span: &Span) {
        tracing::debug!(
            target: "portcullis::access",
            status = response.status().as_u16(),
            duration_us = latency.as_micros() as u64,
            "response"
        );
    }
}

/// The tracing layer with [`RequestSpan`] and [`AccessLine`].
pub fn trace_layer()
-> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan, (), AccessLine> {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(AccessLine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_are_adopted() {
        for ok in ["abc", "0b6f-4c2e", "req_1.2:3", &"a".repeat(128)] {
            assert!(well_formed(ok), "{ok}");
        }
        for bad in ["", "a b", "x\"y", "line\nbreak", &"a".repeat(129), "é"] {
            assert!(!well_formed(bad), "{bad:?}");
        }
    }
}
