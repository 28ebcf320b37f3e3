//! The `/mcp` endpoint after authentication, top to bottom: read the body
//! once, check the JSON-RPC framing ([`jsonrpc`]), admit a `tools/call`
//! ([`gate`]), answer a repeatable request from its cached bytes
//! ([`answers`]) or hand the message to one shared rmcp service, and turn an
//! upstream's 429 into 503 with `Retry-After`.
//!
//! JSON-RPC batches are answered here for protocol 2025-03-26, the one
//! revision that allowed them (a request with no `MCP-Protocol-Version`
//! header is 2025-03-26 by the 2025-06-18 transport rules): each message is
//! admitted and answered on its own, notifications and client responses get
//! no answer, and a batch of only those gets 202 (JSON-RPC 2.0 §6).

use std::sync::Arc;

use axum::{
    Json,
    body::{Body, to_bytes},
    extract::Request,
    http::{HeaderValue, Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpService, session::never::NeverSessionManager,
};
use serde_json::{Map, Value};
use tower::ServiceExt;

use super::{
    answers::{Answers, Template},
    auth::Identity,
    gate::{self, UpstreamBackoff},
    jsonrpc::{self, Envelope, JsonRpcError},
    server::McpServer,
};
use crate::state::AppState;

/// Requests whose result depends only on the caller's scopes and the request
/// (method, params and the headers rmcp reads), never on stored data.
const REPEATABLE: [&str; 4] = ["tools/list", "ping", "server/discover", "initialize"];

/// The one revision whose clients may send batches.
const BATCH_VERSION: &str = "2025-03-26";
/// Messages in one batch; more is a client bug or an attack.
const MAX_BATCH: usize = 64;

/// Everything `/mcp` needs, built once at start.
pub struct Endpoint {
    state: AppState,
    service: StreamableHttpService<McpServer, NeverSessionManager>,
    answers: Answers,
}

impl Endpoint {
    pub fn new(
        state: AppState,
        service: StreamableHttpService<McpServer, NeverSessionManager>,
    ) -> Endpoint {
        Endpoint {
            state,
            service,
            answers: Answers::default(),
        }
    }

    /// Answers one `/mcp` request; the auth layer has attached the caller's
    /// [`Identity`].
    pub async fn serve(self: Arc<Self>, request: Request) -> Response {
        if request.method() != Method::POST {
            let response = self.rmcp(request).await;
            return json_rpc_framed(response, Value::Null, false).await;
        }
        let Some(who) = request.extensions().get::<Identity>().cloned() else {
            return self.rmcp(request).await;
        };
        let (parts, body) = request.into_parts();
        let bytes = match to_bytes(body, self.state.config.max_body_bytes).await {
            Ok(bytes) => bytes,
            // JSON-RPC 2.0 §5.1: the id is unknown when the request was not read.
            Err(e) => {
                let too_large = std::error::Error::source(&e)
                    .is_some_and(|inner| inner.is::<http_body_util::LengthLimitError>());
                let (status, message) = if too_large {
                    (
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "The request body is too large.",
                    )
                } else {
                    // The body did not arrive within `body_read_timeout`.
                    (
                        StatusCode::REQUEST_TIMEOUT,
                        "The request body did not arrive in time.",
                    )
                };
                return JsonRpcError::new(
                    status,
                    Value::Null,
                    JsonRpcError::INVALID_REQUEST,
                    message,
                )
                .into_response();
            }
        };
        match jsonrpc::parse(&bytes) {
            Ok(Value::Array(messages)) => self.batch(parts, &who, messages).await,
            Ok(message) => self.single(parts, &who, message, bytes).await,
            Err(error) => error.into_response(),
        }
    }

    /// Hands a request to the shared rmcp service.
    async fn rmcp(&self, request: Request) -> Response {
        match self.service.clone().oneshot(request).await {
            Ok(response) => response.map(Body::new),
            Err(never) => match never {},
        }
    }

    async fn single(
        &self,
        mut parts: Parts,
        who: &Identity,
        message: Value,
        bytes: axum::body::Bytes,
    ) -> Response {
        let envelope = jsonrpc::envelope(&message);
        if let Ok(Envelope::Request { method, .. }) = &envelope {
            self.state.metrics.mcp_request(method);
        }
        match envelope {
            Err(error) => error.into_response(),
            Ok(Envelope::Request {
                id,
                tool: Some(tool),
                ..
            }) => {
                if let Err(refusal) = gate::admit(&self.state, who, &tool).await {
                    return refusal.into_response(&self.state, &id);
                }
                let backoff = UpstreamBackoff::default();
                parts.extensions.insert(backoff.clone());
                let mut response = self
                    .rmcp(Request::from_parts(parts, Body::from(bytes)))
                    .await;
                if let Some(seconds) = backoff.get() {
                    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                }
                response
            }
            Ok(Envelope::Request { id, method, .. }) if REPEATABLE.contains(&method.as_str()) => {
                self.repeatable(parts, who, &message, &id, bytes).await
            }
            Ok(Envelope::Request { id, .. }) => {
                let sent_json = is_json(&parts);
                let response = self
                    .rmcp(Request::from_parts(parts, Body::from(bytes)))
                    .await;
                json_rpc_framed(response, id, sent_json).await
            }
            Ok(_) => {
                let sent_json = is_json(&parts);
                let response = self
                    .rmcp(Request::from_parts(parts, Body::from(bytes)))
                    .await;
                json_rpc_framed(response, Value::Null, sent_json).await
            }
        }
    }

    /// A [`REPEATABLE`] request: from its cached answer, or through rmcp,
    /// keeping the answer for next time.
    async fn repeatable(
        &self,
        parts: Parts,
        who: &Identity,
        message: &Value,
        id: &Value,
        bytes: axum::body::Bytes,
    ) -> Response {
        let (Some(id_json), Some(key)) = (id_json(id), answer_key(&parts, who, message)) else {
            let sent_json = is_json(&parts);
            let response = self
                .rmcp(Request::from_parts(parts, Body::from(bytes)))
                .await;
            return json_rpc_framed(response, id.clone(), sent_json).await;
        };
        let tools = self.state.tools.current();
        if let Some(template) = self.answers.get(&tools, &key) {
            return template.respond(&id_json);
        }
        let response = self
            .rmcp(Request::from_parts(parts, Body::from(bytes)))
            .await;
        let response = json_rpc_framed(response, id.clone(), true).await;
        let (head, body) = response.into_parts();
        // rmcp's JSON answers are complete in memory; this only collects them.
        let Ok(body) = to_bytes(body, usize::MAX).await else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        if let Some(template) = Template::capture(&head, &body, &id_json) {
            self.answers
                .put(&tools, &self.state.tools.current(), key, template);
        }
        Response::from_parts(head, Body::from(body))
    }

    async fn batch(&self, parts: Parts, who: &Identity, messages: Vec<Value>) -> Response {
        let version = parts
            .headers
            .get("mcp-protocol-version")
            .map(|v| v.to_str().unwrap_or("?"));
        if let Some(version) = version.filter(|v| *v != BATCH_VERSION) {
            return JsonRpcError::new(
                StatusCode::BAD_REQUEST,
                Value::Null,
                JsonRpcError::INVALID_REQUEST,
                format!(
                    "Invalid Request: protocol version {version} has no batches; send one JSON-RPC message per request."
                ),
            )
            .into_response();
        }
        if messages.is_empty() || messages.len() > MAX_BATCH {
            return JsonRpcError::new(
                StatusCode::BAD_REQUEST,
                Value::Null,
                JsonRpcError::INVALID_REQUEST,
                format!("Invalid Request: a batch holds 1 to {MAX_BATCH} messages."),
            )
            .into_response();
        }
        let mut answers = Vec::new();
        for message in messages {
            if let Some(answer) = self.batch_member(&parts, who, message).await {
                answers.push(answer);
            }
        }
        if answers.is_empty() {
            return StatusCode::ACCEPTED.into_response();
        }
        (StatusCode::OK, Json(Value::Array(answers))).into_response()
    }

    /// The answer to one message of a batch, if it gets one.
    async fn batch_member(&self, parts: &Parts, who: &Identity, message: Value) -> Option<Value> {
        let id = match jsonrpc::envelope(&message) {
            Err(error) => return Some(error.to_value()),
            // Stateless: rmcp ignores notifications and has no pending
            // request a client response could answer.
            Ok(Envelope::Notification | Envelope::Response) => return None,
            Ok(Envelope::Request { id, method, .. }) if method == "initialize" => {
                // 2025-03-26 §Batching: initialize must not be part of a batch.
                return Some(
                    JsonRpcError::new(
                        StatusCode::BAD_REQUEST,
                        id,
                        JsonRpcError::INVALID_REQUEST,
                        "Invalid Request: initialize cannot be part of a batch.",
                    )
                    .to_value(),
                );
            }
            Ok(Envelope::Request { id, tool, method }) => {
                self.state.metrics.mcp_request(&method);
                if let Some(tool) = tool
                    && let Err(refusal) = gate::admit(&self.state, who, &tool).await
                {
                    return Some(refusal.into_error(&id).to_value());
                }
                id
            }
        };
        let mut parts = parts.clone();
        parts.headers.remove(header::CONTENT_LENGTH);
        let body = serde_json::to_vec(&message).expect("a parsed value serializes");
        let response = self
            .rmcp(Request::from_parts(parts, Body::from(body)))
            .await;
        let status = response.status();
        let bytes = to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(answer @ Value::Object(_)) => Some(answer),
            _ => Some(
                JsonRpcError::new(
                    status,
                    id,
                    JsonRpcError::INVALID_REQUEST,
                    String::from_utf8_lossy(&bytes).into_owned(),
                )
                .to_value(),
            ),
        }
    }
}

/// rmcp answers a message it cannot read into its types (wrong params,
/// an unknown shape) in plain text; `/mcp` answers in JSON-RPC everywhere
/// (SPEC §6). A refusal of a JSON body is a bad request, not a media type.
async fn json_rpc_framed(response: Response, id: Value, sent_json: bool) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.starts_with("application/json") || ct.starts_with("text/event-stream")
        });
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let text = to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let (status, code) = match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE if sent_json => {
            (StatusCode::BAD_REQUEST, JsonRpcError::INVALID_REQUEST)
        }
        s if s.is_server_error() => (s, -32603),
        s => (s, JsonRpcError::INVALID_REQUEST),
    };
    JsonRpcError::new(status, id, code, text).into_response()
}

/// The id as rmcp serializes it (a string, or an integer in `i64`); other
/// ids go through rmcp every time.
fn id_json(id: &Value) -> Option<Vec<u8>> {
    match id {
        Value::String(_) => serde_json::to_vec(id).ok(),
        Value::Number(n) if n.is_i64() => serde_json::to_vec(id).ok(),
        _ => None,
    }
}

/// Everything rmcp's answer to a repeatable request can depend on: the
/// caller's scopes (the tool list), the method and params, and the headers
/// rmcp reads (`Host` and `Origin` for its DNS-rebinding checks, every
/// `Mcp-*` header for protocol version and standard-header validation, the
/// content type). `None` for a request that should not be cached.
/// Whether the request says its body is JSON.
fn is_json(parts: &Parts) -> bool {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

fn answer_key(parts: &Parts, who: &Identity, message: &Value) -> Option<String> {
    if !is_json(parts) {
        return None;
    }
    let content_type = parts.headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let object: &Map<String, Value> = message.as_object()?;
    let mut key = String::with_capacity(256);
    let mut field = |text: &str| {
        key.push_str(&text.len().to_string());
        key.push(':');
        key.push_str(text);
    };
    field(&who.scopes.to_string());
    field(content_type);
    for (name, value) in &parts.headers {
        let name = name.as_str();
        if name == "host" || name == "origin" || name.starts_with("mcp-") {
            field(name);
            field(value.to_str().ok()?);
        }
    }
    field(object.get("method")?.as_str()?);
    let params = object
        .get("params")
        .map(Value::to_string)
        .unwrap_or_default();
    field(&params);
    Some(key)
}
