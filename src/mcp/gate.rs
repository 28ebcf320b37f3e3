//! Decisions about a `tools/call` that must be made in HTTP, before rmcp: a
//! rate-limited call answers 429 with `Retry-After` (SPEC §4.7), and with
//! `insufficient_scope = "step_up"` a call beyond the caller's scopes answers
//! 403 with an `insufficient_scope` challenge (§4.4). Both need the JSON-RPC
//! body, so it is read once here and handed on unchanged. A body that is not
//! one well-formed JSON-RPC message is answered here with a JSON-RPC error
//! (§6), where rmcp would answer in plain text.

use std::time::Duration;

use axum::{
    Json,
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    audit::Outcome,
    auth::{Identity, resource_metadata_url},
};
use crate::{config::InsufficientScope, oauth::http_auth::Challenge, state::AppState};

/// What this layer learns from a request body before rmcp sees it.
enum Envelope {
    /// A `tools/call` request: the tool it names and the request id.
    ToolCall { id: Value, tool: String },
    /// Any other well-formed message; rmcp handles it.
    Other,
}

/// A JSON-RPC error answered here, because rmcp would answer it in plain text
/// (or, for malformed `tools/call` params, as "method not found").
struct Invalid {
    status: StatusCode,
    id: Value,
    code: i64,
    message: &'static str,
}

impl IntoResponse for Invalid {
    fn into_response(self) -> Response {
        let body = json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "error": { "code": self.code, "message": self.message },
        });
        (self.status, Json(body)).into_response()
    }
}

/// Checks the JSON-RPC 2.0 envelope (§4, §5.1). `method` is decoded by serde,
/// so an escaped spelling such as `tools\/call` cannot slip past the gate.
fn envelope(bytes: &[u8]) -> Result<Envelope, Invalid> {
    let invalid = |status, id, code, message| Invalid {
        status,
        id,
        code,
        message,
    };
    let message: Value = serde_json::from_slice(bytes).map_err(|_| {
        invalid(
            StatusCode::BAD_REQUEST,
            Value::Null,
            -32700,
            "Parse error: the body is not valid JSON.",
        )
    })?;
    let Value::Object(message) = message else {
        let text = if message.is_array() {
            "Batches are not supported: send one JSON-RPC message per request."
        } else {
            "Invalid Request: the body must be a JSON-RPC message object."
        };
        return Err(invalid(StatusCode::BAD_REQUEST, Value::Null, -32600, text));
    };
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(
            StatusCode::BAD_REQUEST,
            id,
            -32600,
            "Invalid Request: \"jsonrpc\" must be \"2.0\".",
        ));
    }
    match message.get("method") {
        Some(Value::String(method)) if method == "tools/call" => {
            let params = message.get("params").and_then(Value::as_object);
            let tool = params.and_then(|p| p.get("name")).and_then(Value::as_str);
            let arguments_ok = params
                .and_then(|p| p.get("arguments"))
                .is_none_or(|a| a.is_object() || a.is_null());
            match tool {
                Some(tool) if arguments_ok => Ok(Envelope::ToolCall {
                    id,
                    tool: tool.to_owned(),
                }),
                // A request error, so HTTP 200 like every other JSON-RPC answer.
                _ => Err(invalid(
                    StatusCode::OK,
                    id,
                    -32602,
                    "Invalid params: tools/call needs \"name\" (a string) and optional \"arguments\" (an object).",
                )),
            }
        }
        Some(Value::String(_)) => Ok(Envelope::Other),
        Some(_) => Err(invalid(
            StatusCode::BAD_REQUEST,
            id,
            -32600,
            "Invalid Request: \"method\" must be a string.",
        )),
        // A response or error from the client: rmcp decides what to do with it.
        None if message.contains_key("result") || message.contains_key("error") => {
            Ok(Envelope::Other)
        }
        None => Err(invalid(
            StatusCode::BAD_REQUEST,
            id,
            -32600,
            "Invalid Request: a message needs a \"method\", or a \"result\" or \"error\".",
        )),
    }
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
    let call = match envelope(&bytes) {
        Ok(Envelope::ToolCall { id, tool }) => Some((id, tool)),
        Ok(Envelope::Other) => None,
        Err(invalid) => return invalid.into_response(),
    };
    if let Some((id, tool)) = &call
        && let Some(refusal) = admit(&state, &who, tool, id)
    {
        return refusal;
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if call.is_some() {
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
    const WHY: &str = "This tool needs more permissions than this token has.";
    let challenge = Challenge::bearer()
        .param("error", "insufficient_scope")
        .param("scope", scope)
        .param("resource_metadata", resource_metadata_url(&state.config))
        .param("error_description", WHY);
    let mut response = (
        StatusCode::FORBIDDEN,
        Json(json!({
            "error": "insufficient_scope",
            "error_description": WHY,
            "scope": scope,
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge.to_header_value());
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
