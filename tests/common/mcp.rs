//! MCP-side helpers: an rmcp client with a bearer credential (and the org
//! header for API keys), and raw JSON-RPC posts for what a client library
//! hides (status codes, challenges, headers).
#![allow(dead_code)]

use std::{collections::HashMap, time::Duration};

use reqwest::header;
use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult, ErrorData},
    service::{RunningService, ServiceError},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{TestServer, TestUser};

pub type Client = RunningService<RoleClient, ()>;

pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// Connects rmcp's client to `/mcp` with `bearer`, sending the org header when given.
pub async fn connect(server: &TestServer, bearer: &str, org: Option<Uuid>) -> Client {
    let mut headers = HashMap::new();
    if let Some(org) = org {
        headers.insert(
            http::HeaderName::try_from(server.state.config.org_header.as_str()).unwrap(),
            http::HeaderValue::try_from(org.to_string()).unwrap(),
        );
    }
    let config = StreamableHttpClientTransportConfig::with_uri(server.resource())
        .auth_header(bearer.to_owned())
        .custom_headers(headers);
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("MCP client connects")
}

/// rmcp's OAuth client end to end: discovery from the 401 on `/mcp`,
/// registration, authorization with PKCE (the browser step posts our real
/// forms, approving `scopes`), code exchange, and an MCP client whose
/// transport carries — and refreshes — the token itself.
pub async fn connect_with_rmcp_oauth(
    server: &TestServer,
    user: &TestUser,
    scopes: &[&str],
) -> RunningService<RoleClient, ()> {
    use rmcp::transport::auth::{AuthClient, AuthorizationRequest, OAuthState};
    let mut oauth = OAuthState::new(server.resource().as_str(), None)
        .await
        .unwrap();
    oauth
        .start_authorization(
            AuthorizationRequest::new(crate::common::CALLBACK)
                .with_client_name("rmcp OAuth client")
                .with_scopes(scopes.iter().copied()),
        )
        .await
        .unwrap();
    let url = oauth.get_authorization_url().await.unwrap();
    let callback = server
        .authorize_in_browser(&server.browser(), &url, user, &scopes.join(" "))
        .await;
    oauth.handle_callback_url(callback.as_str()).await.unwrap();
    let manager = oauth.into_authorization_manager().expect("authorized");
    let transport = StreamableHttpClientTransport::with_client(
        AuthClient::new(reqwest::Client::default(), manager),
        StreamableHttpClientTransportConfig::with_uri(server.resource()),
    );
    ().serve(transport).await.expect("MCP client connects")
}

pub async fn tool_names(client: &Client) -> Vec<String> {
    client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.into_owned())
        .collect()
}

pub async fn call(
    client: &Client,
    tool: &str,
    args: Value,
) -> Result<CallToolResult, ServiceError> {
    let Value::Object(args) = args else {
        panic!("tool arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
}

/// The structured result of a successful call.
pub async fn call_ok(client: &Client, tool: &str, args: Value) -> Value {
    let result = call(client, tool, args).await.expect("tools/call");
    assert_ne!(result.is_error, Some(true), "{tool} failed: {result:?}");
    result.structured_content.expect("structured content")
}

/// The JSON-RPC error of a call that the server refused.
pub async fn call_err(client: &Client, tool: &str) -> ErrorData {
    match call(client, tool, json!({})).await {
        Err(ServiceError::McpError(e)) => e,
        other => panic!("expected a JSON-RPC error from {tool}, got {other:?}"),
    }
}

/// One JSON-RPC message POSTed to `/mcp` as a client would, without the
/// client library in the way. Stateless mode answers without a prior
/// `initialize`.
pub async fn post(
    server: &TestServer,
    bearer: Option<&str>,
    org: Option<Uuid>,
    message: &Value,
) -> reqwest::Response {
    let mut request = server
        .http
        .post(server.resource())
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header("MCP-Protocol-Version", PROTOCOL_VERSION)
        .json(message);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(org) = org {
        request = request.header(server.state.config.org_header.as_str(), org.to_string());
    }
    request.send().await.unwrap()
}

pub fn tools_call(id: u64, tool: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}})
}

pub fn tools_list(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": {}})
}

/// Retries `check` until it holds or `within` has passed.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
