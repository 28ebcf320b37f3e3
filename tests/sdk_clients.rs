//! The official MCP client SDKs against a live Portcullis: the TypeScript
//! SDK (`tests/js/sdk_client.mjs`, its `auth()` with DCR, with a Client ID
//! Metadata Document and with pre-registered credentials, and the API-key
//! path) and the Python SDK (`tests/python/sdk_client.py`, its
//! `OAuthClientProvider`). Each lists tools and calls `whoami`.

#[path = "common/cimd.rs"]
mod cimd;
mod common;
#[path = "common/external.rs"]
mod external;

use std::time::Duration;

use common::{TestServer, TestUser};
use portcullis::identity::scope::Role;
use serde_json::{Value, json};
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(120);
const REDIRECT: &str = "http://127.0.0.1:8976/callback";
const READ_TOOLS: [&str; 5] = [
    "list_api_keys",
    "list_connected_apps",
    "list_members",
    "list_tool_calls",
    "whoami",
];

struct Setup {
    server: TestServer,
    org: Uuid,
    user: TestUser,
}

async fn setup(role: Role) -> Setup {
    let server = TestServer::start().await;
    let org = server.org("SDK org").await;
    let user = server.user(org, role).await;
    Setup { server, org, user }
}

fn ts_client(s: &Setup, mode: &str) -> tokio::process::Command {
    let mut node = external::node();
    node.arg("sdk_client.mjs")
        .arg(s.server.resource())
        .arg(mode)
        .env("PCL_EMAIL", &s.user.email)
        .env("PCL_PASSWORD", &s.user.password)
        .env("PCL_REDIRECT_URI", REDIRECT);
    node
}

fn assert_oauth_identity(s: &Setup, out: &Value, client_id: &str, scopes: Value) {
    let whoami = &out["whoami"];
    assert_eq!(whoami["source"], "mcp-oauth", "{out}");
    assert_eq!(whoami["user_id"], s.user.id.to_string());
    assert_eq!(whoami["org_id"], s.org.to_string());
    assert_eq!(whoami["email"], s.user.email);
    assert_eq!(whoami["client_id"], client_id);
    assert_eq!(whoami["scopes"], scopes);
}

fn authorization_param(out: &Value, name: &str) -> Option<String> {
    let url = url::Url::parse(out["authorization_url"].as_str().unwrap()).unwrap();
    common::query_param(&url, name)
}

#[tokio::test]
async fn typescript_sdk_registers_by_dcr_and_completes_oauth_with_pkce() {
    let s = setup(Role::Member).await;
    let mut node = ts_client(&s, "oauth-dcr");
    node.env("PCL_SCOPE", "mcp:read mcp:write");
    let out = external::run_json(node, WITHIN).await;

    let client_id = out["client_id"].as_str().unwrap();
    assert!(Uuid::parse_str(client_id).is_ok(), "a DCR client id: {out}");
    assert_eq!(out["token_endpoint_auth_method"], "none");
    assert_eq!(
        authorization_param(&out, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        authorization_param(&out, "resource"),
        Some(s.server.resource())
    );
    assert_eq!(out["granted_scope"], "mcp:read mcp:write");
    assert_eq!(out["token_type"], "Bearer");
    assert_eq!(out["had_refresh_token"], true);
    assert_eq!(out["refresh_rotated"], true);
    assert_eq!(out["refreshed_scope"], "mcp:read mcp:write");
    assert_eq!(out["server"]["name"], "portcullis");
    assert_eq!(out["protocol_version"], "2025-11-25");
    assert_eq!(out["tools"], json!(READ_TOOLS));
    assert_oauth_identity(&s, &out, client_id, json!(["mcp:read", "mcp:write"]));
}

#[tokio::test]
async fn typescript_sdk_uses_a_client_id_metadata_document() {
    let s = setup(Role::Admin).await;
    let url = cimd::https_document(
        "/sdk/client.json",
        json!({
            "client_name": "MCP TypeScript SDK test",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    let mut node = ts_client(&s, "oauth-cimd");
    // No scope of its own: the SDK asks for the PRM's scopes_supported.
    node.env("PCL_CLIENT_METADATA_URL", &url)
        .env("PCL_APPROVE", "mcp:read mcp:write mcp:admin");
    let out = external::run_json(node, WITHIN).await;

    assert_eq!(out["client_id"], url, "the SDK used the URL as client id");
    assert_eq!(
        authorization_param(&out, "scope").as_deref(),
        Some("mcp:read mcp:write mcp:admin")
    );
    assert_eq!(out["granted_scope"], "mcp:read mcp:write mcp:admin");
    let mut tools = READ_TOOLS.to_vec();
    tools.extend(["delete_api_key", "delete_connected_app"]);
    tools.sort();
    assert_eq!(out["tools"], json!(tools));
    assert_oauth_identity(
        &s,
        &out,
        &url,
        json!(["mcp:read", "mcp:write", "mcp:admin"]),
    );
}

#[tokio::test]
async fn typescript_sdk_uses_pre_registered_confidential_credentials() {
    let s = setup(Role::Viewer).await;
    let response = s
        .server
        .register(json!({
            "client_name": "Pre-registered SDK client",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "client_secret_basic",
        }))
        .await;
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    let client: Value = response.json().await.unwrap();
    let client_id = client["client_id"].as_str().unwrap();
    let mut node = ts_client(&s, "oauth-preregistered");
    node.env("PCL_CLIENT_ID", client_id)
        .env(
            "PCL_CLIENT_SECRET",
            client["client_secret"].as_str().unwrap(),
        )
        .env("PCL_SCOPE", "mcp:read");
    let out = external::run_json(node, WITHIN).await;

    assert_eq!(out["client_id"], client_id, "no new registration");
    assert_eq!(out["granted_scope"], "mcp:read");
    assert_eq!(out["tools"], json!(READ_TOOLS));
    assert_oauth_identity(&s, &out, client_id, json!(["mcp:read"]));
}

#[tokio::test]
async fn typescript_sdk_sends_an_api_key_with_the_org_header() {
    let s = setup(Role::Member).await;
    let key = s.server.api_key(&s.user, s.org, "mcp:read mcp:write").await;
    let mut node = ts_client(&s, "apikey");
    node.env("PCL_API_KEY", &key)
        .env("PCL_ORG_HEADER", &s.server.state.config.org_header)
        .env("PCL_ORG_ID", s.org.to_string());
    let out = external::run_json(node, WITHIN).await;

    assert_eq!(out["tools"], json!(READ_TOOLS));
    let whoami = &out["whoami"];
    assert_eq!(whoami["source"], "mcp-bearer", "{out}");
    assert_eq!(whoami["user_id"], s.user.id.to_string());
    assert_eq!(whoami["org_id"], s.org.to_string());
    assert_eq!(whoami["scopes"], json!(["mcp:read", "mcp:write"]));
    let key_id = key.split('_').nth(1).unwrap();
    assert_eq!(whoami["api_key_id"], key_id);
}

#[tokio::test]
async fn python_sdk_completes_oauth_with_its_client_provider() {
    let s = setup(Role::Member).await;
    let mut python = external::python();
    python
        .arg("sdk_client.py")
        .arg(s.server.resource())
        .env("PCL_EMAIL", &s.user.email)
        .env("PCL_PASSWORD", &s.user.password)
        .env("PCL_REDIRECT_URI", REDIRECT)
        .env("PCL_SCOPE", "mcp:read mcp:write");
    let out = external::run_json(python, WITHIN).await;

    let client_id = out["client_id"].as_str().unwrap();
    assert!(Uuid::parse_str(client_id).is_ok(), "a DCR client id: {out}");
    assert_eq!(
        authorization_param(&out, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        authorization_param(&out, "resource"),
        Some(s.server.resource())
    );
    // The SDK adds offline_access because the server advertises it.
    assert_eq!(
        authorization_param(&out, "scope").as_deref(),
        Some("mcp:read mcp:write offline_access")
    );
    assert_eq!(out["granted_scope"], "mcp:read mcp:write offline_access");
    // Python SDK 2.x negotiates the newest version both sides speak.
    let version = out["protocol_version"].as_str().unwrap();
    assert!(["2025-11-25", "2026-07-28"].contains(&version), "{version}");
    assert_eq!(out["tools"], json!(READ_TOOLS));
    assert_oauth_identity(&s, &out, client_id, json!(["mcp:read", "mcp:write"]));
}
