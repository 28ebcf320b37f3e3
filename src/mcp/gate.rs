//! Decisions about a `tools/call` made before the handler runs, because
//! they are answered in HTTP: a caller over its rate limit gets 429 with
//! `Retry-After` (SPEC §4.7), and with `insufficient_scope = "step_up"` a
//! call beyond the caller's scopes gets 403 with an `insufficient_scope`
//! challenge (§4.4). Inside a JSON-RPC batch, which has one HTTP status for
//! all its answers, the same refusals become JSON-RPC errors.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    audit::{self, Outcome},
    auth::{Identity, resource_metadata_url},
    jsonrpc::JsonRpcError,
};
use crate::{config::InsufficientScope, oauth::http_auth::Challenge, state::AppState};

/// Why a `tools/call` is refused before it runs.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// The tool needs `scope` (the scope needed plus those granted).
    StepUp { scope: String },
    /// The caller's bucket for this tool is empty for `wait`.
    RateLimited { wait: Duration },
}

/// The rate-limit bucket name shared by every tool the caller cannot see,
/// so that hidden and nonexistent tools are limited alike (and a stream of
/// random names makes one bucket, not one per name).
const UNSEEN_TOOLS: &str = "?unseen";

/// Admits or refuses a call of `tool` by `who`; records refusals in the
/// audit log. Unknown and hidden tools are rate-limited in one bucket and
/// then go on to the handler, which answers "tool not found" for both.
pub async fn admit(state: &AppState, who: &Identity, tool: &str) -> Result<(), Refusal> {
    let tools = state.tools.current();
    let visible = tools
        .get(tool)
        .filter(|entry| who.scopes.allows(entry.required));
    let bucket = match (tools.get(tool), visible) {
        (_, Some(_)) => who.bucket(tool),
        (Some(entry), None) if state.config.insufficient_scope == InsufficientScope::StepUp => {
            let mut call = audit::entry(who, tool, Outcome::Denied, Duration::ZERO, None);
            call.detail = Some(format!("needs the {} scope", entry.required));
            state.audit.record_call(call);
            let needed = who.scopes.mcp().with(entry.required);
            return Err(Refusal::StepUp {
                scope: needed.to_string(),
            });
        }
        _ => who.bucket(UNSEEN_TOOLS),
    };
    state.tool_calls.acquire(&bucket).await.map_err(|wait| {
        state.metrics.rate_limited("tool");
        let mut call = audit::entry(who, tool, Outcome::RateLimited, Duration::ZERO, None);
        call.detail = Some(format!(
            "over the per-tool rate limit; retry in {} s",
            wait.as_secs().max(1)
        ));
        state.audit.record_call(call);
        Refusal::RateLimited { wait }
    })
}

impl Refusal {
    /// The whole HTTP answer to a single request with this `id`.
    pub fn into_response(self, state: &AppState, id: &Value) -> Response {
        match self {
            Refusal::StepUp { scope } => step_up(state, &scope),
            Refusal::RateLimited { wait } => {
                let error = self_rate_limited(id, wait);
                let seconds = retry_seconds(wait);
                let mut response =
                    (StatusCode::TOO_MANY_REQUESTS, Json(error.to_value())).into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                response
            }
        }
    }

    /// The answer as one JSON-RPC error, for an element of a batch.
    pub fn into_error(self, id: &Value) -> JsonRpcError {
        match self {
            Refusal::StepUp { scope } => JsonRpcError::new(
                StatusCode::FORBIDDEN,
                id.clone(),
                JsonRpcError::SERVER_ERROR,
                STEP_UP_TEXT,
            )
            .with_data(json!({ "error": "insufficient_scope", "scope": scope })),
            Refusal::RateLimited { wait } => self_rate_limited(id, wait),
        }
    }
}

const STEP_UP_TEXT: &str = "This tool needs more permissions than this token has.";

/// RFC 6750 §3.1 `insufficient_scope`, naming what to ask for in a new
/// authorization: the scope needed plus those already granted.
fn step_up(state: &AppState, scope: &str) -> Response {
    let challenge = Challenge::bearer()
        .param("error", "insufficient_scope")
        .param("scope", scope)
        .param("resource_metadata", resource_metadata_url(&state.config))
        .param("error_description", STEP_UP_TEXT);
    let mut response = (
        StatusCode::FORBIDDEN,
        Json(json!({
            "error": "insufficient_scope",
            "error_description": STEP_UP_TEXT,
            "scope": scope,
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge.to_header_value());
    response
}

fn retry_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

fn self_rate_limited(id: &Value, wait: Duration) -> JsonRpcError {
    let seconds = retry_seconds(wait);
    JsonRpcError::new(
        StatusCode::TOO_MANY_REQUESTS,
        id.clone(),
        JsonRpcError::SERVER_ERROR,
        format!("Rate limit exceeded for this tool; retry after {seconds} s."),
    )
    .with_data(json!({ "error": "rate_limited", "retry_after": seconds }))
}

/// A per-request slot in which a gateway tool reports that its upstream
/// answered 429, so the HTTP layer answers 503 with `Retry-After` without
/// reading the response body back. Set by the handler, read by the endpoint.
#[derive(Debug, Clone, Default)]
pub struct UpstreamBackoff(Arc<AtomicU64>);

impl UpstreamBackoff {
    /// Records that the upstream asked for `seconds` (≥ 1) of rest.
    pub fn set(&self, seconds: u64) {
        self.0.store(seconds.max(1), Ordering::Relaxed);
    }

    /// The seconds an upstream asked for, if it did.
    pub fn get(&self) -> Option<u64> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            s => Some(s),
        }
    }
}

/// The error a gateway tool returns when its upstream answered 429: the
/// client sees a JSON-RPC error naming the wait, and (through
/// [`UpstreamBackoff`]) HTTP 503 with `Retry-After`, so it backs off instead
/// of treating it as a failed token (a 429 from us is about the caller's
/// own bucket).
pub fn upstream_rate_limited(retry_after: u64) -> rmcp::ErrorData {
    rmcp::ErrorData::new(
        rmcp::model::ErrorCode(JsonRpcError::SERVER_ERROR as i32),
        format!("The upstream service is busy; retry after {retry_after} s."),
        Some(json!({ "error": "upstream_rate_limited", "retry_after": retry_after })),
    )
}
