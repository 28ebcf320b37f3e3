//! Decisions about a `tools/call` that must be made in HTTP, before rmcp: a
//! rate-limited call answers 429 with `Retry-After` (SPEC §4.7), and with
//! `insufficient_scope = "step_up"` a call beyond the caller's scopes answers
//! 403 with an `insufficient_scope` challenge (§4.4). Both need the JSON-RPC
//! body, so it is read once here and handed on unchanged.

use std::time::Duration;

use axum::{
    Json,
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    audit::Outcome,
    auth::{Identity, resource_metadata_url},
};
use crate::{config::InsufficientScope, state::AppState};

/// The parts of a JSON-RPC message this layer looks at. `method` is decoded by
/// serde, so an escaped spelling such as `tools\/call` cannot slip past.
#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    id: Value,
    method: Option<String>,
    params: Option<Params>,
}

#[derive(Deserialize)]
struct Params {
    name: Option<String>,
}

pub async fn admit_tool_calls(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(who) = request.extensions().get::<Identity>().cloned() else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, state.config.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            // JSON-RPC 2.0 §5.1: the id is unknown when the request was not read.
            let body = json!({
                "jsonrpc": "2.0",
                "id": null,
                "error": { "code": -32600, "message": "The request body is too large." },
            });
            return (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response();
        }
    };
    let parsed = if bytes.trim_ascii_start().starts_with(b"[") {
        serde_json::from_slice::<Vec<Message>>(&bytes)
    } else {
        serde_json::from_slice::<Message>(&bytes).map(|m| vec![m])
    };
    let messages = match parsed {
        Ok(messages) => messages,
        // rmcp answers text that is not JSON with plain text; clients expect a
        // JSON-RPC parse error (JSON-RPC 2.0 §5.1).
        Err(_) if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() => {
            let body = json!({
                "jsonrpc": "2.0",
                "id": null,
                "error": { "code": -32700, "message": "Parse error: the body is not valid JSON." },
            });
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
        // Valid JSON of another shape is rmcp's to judge.
        Err(_) => Vec::new(),
    };
    for message in &messages {
        if message.method.as_deref() != Some("tools/call") {
            continue;
        }
        let Some(tool) = message.params.as_ref().and_then(|p| p.name.as_deref()) else {
            continue;
        };
        if let Some(refusal) = admit(&state, &who, tool, &message.id) {
            return refusal;
        }
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if messages
        .iter()
        .any(|m| m.method.as_deref() == Some("tools/call"))
    {
        return upstream_backoff(response).await;
    }
    response
}

/// Marks a JSON-RPC error that means "the upstream API asked us to slow down".
const UPSTREAM_RATE_LIMITED: &str = "upstream_rate_limited";

/// The error a gateway tool returns when its upstream answered 429; the HTTP
/// layer turns it into 503 with `Retry-After` (see `upstream_backoff`).
pub fn upstream_rate_limited(retry_after: u64) -> rmcp::ErrorData {
    rmcp::ErrorData::new(
        rmcp::model::ErrorCode(-32000),
        format!("The upstream service is busy; retry after {retry_after} s."),
        Some(json!({ "error": UPSTREAM_RATE_LIMITED, "retry_after": retry_after })),
    )
}

/// An upstream's 429 reaches the client as HTTP 503 with `Retry-After`, so
/// clients back off instead of treating it as a failed token (a 429 from us
/// is about the caller's own bucket).
async fn upstream_backoff(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !is_json || response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, 16 * 1024 * 1024).await else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "response could not be read",
        )
            .into_response();
    };
    let retry_after = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| {
        let data = &v["error"]["data"];
        (data["error"] == UPSTREAM_RATE_LIMITED).then(|| data["retry_after"].as_u64().unwrap_or(1))
    });
    if let Some(seconds) = retry_after {
        parts.status = StatusCode::SERVICE_UNAVAILABLE;
        parts
            .headers
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn admit(state: &AppState, who: &Identity, tool: &str, id: &Value) -> Option<Response> {
    // Unknown tools go on to the handler, which answers "tool not found".
    let tools = state.tools.current();
    let entry = tools.get(tool)?;
    if !who.scopes.allows(entry.required) {
        if state.config.insufficient_scope == InsufficientScope::StepUp {
            state
                .audit
                .record(who, tool, Outcome::Denied, Duration::ZERO, None);
            let needed = who.scopes.mcp().with(entry.required);
            return Some(step_up(state, &needed.to_string()));
        }
        return None;
    }
    match state.tool_calls.take(&who.bucket(tool)) {
        Ok(()) => None,
        Err(wait) => {
            state
                .audit
                .record(who, tool, Outcome::RateLimited, Duration::ZERO, None);
            Some(rate_limited(id, wait))
        }
    }
}

/// RFC 6750 §3.1 `insufficient_scope`, naming what to ask for in a new
/// authorization: the scope needed plus those already granted.
fn step_up(state: &AppState, scope: &str) -> Response {
    let challenge = format!(
        "Bearer error=\"insufficient_scope\", scope=\"{scope}\", resource_metadata=\"{}\", \
         error_description=\"This tool needs more permissions than this token has.\"",
        resource_metadata_url(&state.config)
    );
    let mut response = (
        StatusCode::FORBIDDEN,
        Json(json!({
            "error": "insufficient_scope",
            "error_description": "This tool needs more permissions than this token has.",
            "scope": scope,
        })),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

fn rate_limited(id: &Value, wait: Duration) -> Response {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let body = json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {
            // Implementation-defined server error range of JSON-RPC 2.0 §5.1.
            "code": -32000,
            "message": format!("Rate limit exceeded for this tool; retry after {seconds} s."),
            "data": { "error": "rate_limited", "retry_after": seconds },
        },
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}
