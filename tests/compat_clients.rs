//! The client-compatibility matrix (SPEC §1): each real client's
//! registration and authorization replayed as that client sends it,
//! finished by a `whoami` at `/mcp`.

#[path = "common/cimd.rs"]
mod cimd;
mod common;
#[path = "common/compat.rs"]
mod compat;

use common::{TestServer, TestUser};
use compat::{Authorization, ClientAuth, assert_whoami, authorize, register};
use portcullis::identity::scope::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn member(server: &TestServer) -> TestUser {
    let org = server.org("Compat").await;
    server.user(org, Role::Member).await
}

const RW: &str = "mcp:read mcp:write";

#[tokio::test]
async fn chatgpt_registers_by_dcr_with_both_redirects_and_asks_for_openid() {
    let server = TestServer::start().await;
    let user = member(&server).await;
    let client = register(&server, json!({
        "client_name": "ChatGPT",
        "redirect_uris": ["https://chatgpt.com/connector/oauth/c0nn3ct0r", "https://chatgpt.com/connector_platform_oauth_redirect"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }))
    .await;
    let id = client["client_id"].as_str().unwrap();
    for redirect_uri in [
        "https://chatgpt.com/connector/oauth/c0nn3ct0r",
        "https://chatgpt.com/connector_platform_oauth_redirect",
    ] {
        let tokens = authorize(
            &server,
            &user,
            Authorization {
                client_id: id,
                redirect_uri,
                scope: "openid email profile mcp:read mcp:write",
                send_resource: true,
                auth: ClientAuth::None,
                approve: RW,
            },
        )
        .await;
        assert!(tokens["id_token"].is_string());
        assert_whoami(
            &server,
            &tokens,
            &user,
            id,
            json!(["mcp:read", "mcp:write"]),
        )
        .await;
    }
}

#[tokio::test]
async fn chatgpt_uses_a_client_id_metadata_document() {
    let server = TestServer::start().await;
    let user = member(&server).await;
    let host = cimd::http_host(vec![(
        "/oauth/chatgpt-client.json",
        json!({ "client_name": "ChatGPT", "redirect_uris": ["https://chatgpt.com/connector/oauth/c1md"], "token_endpoint_auth_method": "none" }),
    )])
    .await;
    let id = format!("{host}/oauth/chatgpt-client.json");
    let tokens = authorize(
        &server,
        &user,
        Authorization {
            client_id: &id,
            redirect_uri: "https://chatgpt.com/connector/oauth/c1md",
            scope: RW,
            send_resource: true,
            auth: ClientAuth::None,
            approve: RW,
        },
    )
    .await;
    assert_whoami(
        &server,
        &tokens,
        &user,
        &id,
        json!(["mcp:read", "mcp:write"]),
    )
    .await;
}

#[tokio::test]
async fn claude_finds_us_through_a_401_and_registers_with_client_secret_post() {
    let server = TestServer::start().await;
    let user = member(&server).await;
    // Claude starts with an unauthenticated call and follows resource_metadata.
    let r = server
        .http
        .post(server.resource())
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    let prm_url = format!("{}/.well-known/oauth-protected-resource/mcp", server.base);
    assert!(
        challenge.contains(&format!("resource_metadata=\"{prm_url}\"")),
        "{challenge}"
    );
    let prm: Value = server
        .http
        .get(&prm_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["authorization_servers"][0], server.base);

    let client = register(
        &server,
        json!({
            "client_name": "Claude",
            "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_post",
        }),
    )
    .await;
    let id = client["client_id"].as_str().unwrap();
    let secret = client["client_secret"].as_str().expect("a secret");
    let tokens = authorize(
        &server,
        &user,
        Authorization {
            client_id: id,
            redirect_uri: "https://claude.ai/api/mcp/auth_callback",
            scope: RW,
            send_resource: true,
            auth: ClientAuth::SecretPost(secret),
            approve: RW,
        },
    )
    .await;
    assert_whoami(
        &server,
        &tokens,
        &user,
        id,
        json!(["mcp:read", "mcp:write"]),
    )
    .await;
}

#[tokio::test]
async fn claude_registers_a_public_client_with_scope_claudeai() {
    let server = TestServer::start().await;
    let user = member(&server).await;
    let client = register(&server, json!({
        "client_name": "Claude",
        "redirect_uris": ["https://claude.ai/api/mcp/auth_callback", "https://claude.com/api/mcp/auth_callback"],
        "token_endpoint_auth_method": "none",
        "scope": "claudeai",
    }))
    .await;
    assert!(client.get("client_secret").is_none());
    let id = client["client_id"].as_str().unwrap();
    // It then asks for "claudeai" too: an unknown scope, dropped, leaving the default.
    let tokens = authorize(
        &server,
        &user,
        Authorization {
            client_id: id,
            redirect_uri: "https://claude.com/api/mcp/auth_callback",
            scope: "claudeai",
            send_resource: true,
            auth: ClientAuth::None,
            approve: RW,
        },
    )
    .await;
    assert_eq!(tokens["scope"], "mcp:read mcp:write");
    assert_whoami(
        &server,
        &tokens,
        &user,
        id,
        json!(["mcp:read", "mcp:write"]),
    )
    .await;
}

#[tokio::test]
async fn claude_code_uses_its_metadata_document_with_portless_loopback_redirects() {
    let server = TestServer::start().await;
    let user = member(&server).await;
    let host = cimd::http_host(vec![(
        "/oauth/claude-code-client-metadata",
        json!({ "client_name": "Claude Code", "redirect_uris": ["http://localhost/callback", "http://127.0.0.1/callback"], "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none" }),
    )])
    .await;
    let id = format!("{host}/oauth/claude-code-client-metadata");
    for redirect_uri in [
        "http://localhost:49152/callback",
        "http://127.0.0.1:61000/callback",
    ] {
        let tokens = authorize(
            &server,
            &user,
            Authorization {
                client_id: &id,
                redirect_uri,
                scope: RW,
                send_resource: true,
                auth: ClientAuth::None,
                approve: RW,
            },
        )
        .await;
        assert_whoami(
            &server,
            &tokens,
            &user,
            &id,
            json!(["mcp:read", "mcp:write"]),
        )
        .await;
    }
}

#[tokio::test]
async fn claude_code_registers_by_dcr_with_a_loopback_callback() {
    let server = TestServer::start().await;
    let user = member(&server).await;
    let client = register(
        &server,
        json!({
            "client_name": "Claude Code (portcullis)",
            "redirect_uris": ["http://localhost:53219/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    let id = client["client_id"].as_str().unwrap();
    let tokens = authorize(
        &server,
        &user,
        Authorization {
            client_id: id,
            redirect_uri: "http://localhost:53219/callback",
            scope: "mcp:read mcp:write",
            send_resource: true,
            auth: ClientAuth::None,
            approve: "mcp:read",
        },
    )
    .await;
    // The user unticked write on the consent page.
    assert_eq!(tokens["scope"], "mcp:read");
    assert_whoami(&server, &tokens, &user, id, json!(["mcp:read"])).await;
}

#[tokio::test]
async fn cursor_registers_three_redirect_uris_and_uses_its_private_scheme() {
    let server = TestServer::start().await;
    let user = member(&server).await;
    let uris = [
        "cursor://anysphere.cursor-mcp/oauth/callback",
        "https://cursor.com/oauth/callback",
        "http://localhost:5173/callback",
    ];
    let client = register(
        &server,
        json!({
            "client_name": "Cursor",
            "redirect_uris": uris,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    assert_eq!(client["redirect_uris"], json!(uris));
    let id = client["client_id"].as_str().unwrap();
    for redirect_uri in uris {
        let tokens = authorize(
            &server,
            &user,
            Authorization {
                client_id: id,
                redirect_uri,
                scope: RW,
                send_resource: true,
                auth: ClientAuth::None,
                approve: RW,
            },
        )
        .await;
        assert_whoami(
            &server,
            &tokens,
            &user,
            id,
            json!(["mcp:read", "mcp:write"]),
        )
        .await;
    }
}

#[tokio::test]
async fn vscode_checks_the_resource_exactly_and_uses_its_loopback_redirect() {
    let server = TestServer::start().await;
    let user = member(&server).await;
    // VS Code refuses the server unless PRM `resource` equals the URL it was given.
    let prm: Value = server
        .http
        .get(server.url("/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], server.resource());
    let client = register(&server, json!({
        "client_name": "Visual Studio Code",
        "redirect_uris": ["https://vscode.dev/redirect", "http://127.0.0.1:33418/", "http://127.0.0.1:33418", "http://localhost:33418/"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    }))
    .await;
    let id = client["client_id"].as_str().unwrap();
    let tokens = authorize(
        &server,
        &user,
        Authorization {
            client_id: id,
            redirect_uri: "http://127.0.0.1:33418/",
            scope: RW,
            send_resource: true,
            auth: ClientAuth::None,
            approve: RW,
        },
    )
    .await;
    assert_whoami(
        &server,
        &tokens,
        &user,
        id,
        json!(["mcp:read", "mcp:write"]),
    )
    .await;
}

#[tokio::test]
async fn codex_asks_for_every_supported_scope_without_a_resource() {
    let server = TestServer::start().await;
    let user = member(&server).await;
    let metadata: Value = server
        .http
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let scopes: Vec<&str> = metadata["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let redirect = "http://127.0.0.1:41877/callback/8c1d2e";
    let client = register(
        &server,
        json!({
            "client_name": "Codex",
            "redirect_uris": [redirect],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    let id = client["client_id"].as_str().unwrap();
    let tokens = authorize(
        &server,
        &user,
        Authorization {
            client_id: id,
            redirect_uri: redirect,
            scope: &scopes.join(" "),
            send_resource: false,
            auth: ClientAuth::None,
            approve: "mcp:read mcp:write mcp:admin",
        },
    )
    .await;
    // Never a step-up: a member gets the most their role allows, at once.
    assert_eq!(
        tokens["scope"],
        "mcp:read mcp:write openid email profile offline_access"
    );
    assert_whoami(
        &server,
        &tokens,
        &user,
        id,
        json!(["mcp:read", "mcp:write"]),
    )
    .await;
}

async fn preflight(server: &TestServer, path: &str, method: &str, headers: &str) {
    let r = server
        .http
        .request(Method::OPTIONS, server.url(path))
        .header("origin", INSPECTOR)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", headers)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "preflight {path}: {}", r.status());
    let allowed = r.headers().get("access-control-allow-origin");
    assert!(
        allowed.is_some_and(|v| v == "*" || v == INSPECTOR),
        "preflight {path} allows {allowed:?}"
    );
    let allowed_headers = r
        .headers()
        .get("access-control-allow-headers")
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .unwrap_or_default();
    for h in headers.split(',') {
        assert!(
            allowed_headers == "*" || allowed_headers.contains(h.trim()),
            "preflight {path} does not allow {h}: {allowed_headers}"
        );
    }
}

const INSPECTOR: &str = "http://localhost:6274";

#[tokio::test]
async fn mcp_inspector_runs_the_whole_flow_from_a_browser_page() {
    let server = TestServer::start().await;
    let user = member(&server).await;
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
    ] {
        preflight(&server, path, "GET", "mcp-protocol-version").await;
        let r = server
            .http
            .get(server.url(path))
            .header("origin", INSPECTOR)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers().contains_key("access-control-allow-origin"),
            "{path}"
        );
    }
    preflight(&server, "/register", "POST", "content-type").await;
    let r = server
        .http
        .post(server.url("/register"))
        .header("origin", INSPECTOR)
        .json(&json!({ "client_name": "MCP Inspector", "redirect_uris": ["http://localhost:6274/oauth/callback"], "token_endpoint_auth_method": "none", "scope": "" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(r.headers().contains_key("access-control-allow-origin"));
    let client: Value = r.json().await.unwrap();
    let id = client["client_id"].as_str().unwrap();

    preflight(&server, "/token", "POST", "content-type").await;
    let tokens = authorize(
        &server,
        &user,
        Authorization {
            client_id: id,
            redirect_uri: "http://localhost:6274/oauth/callback",
            scope: RW,
            send_resource: true,
            auth: ClientAuth::None,
            approve: RW,
        },
    )
    .await;
    let access = tokens["access_token"].as_str().unwrap();

    preflight(
        &server,
        "/mcp",
        "POST",
        "authorization,content-type,mcp-protocol-version",
    )
    .await;
    let r = server
        .http
        .post(server.resource())
        .header("origin", INSPECTOR)
        .bearer_auth(access)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some(INSPECTOR)
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["result"]["structuredContent"]["source"], "mcp-oauth");
    assert_eq!(body["result"]["structuredContent"]["client_id"], id);
}

#[tokio::test]
async fn claude_code_cursor_and_codex_send_an_api_key_with_the_org_header() {
    let server = TestServer::start().await;
    let org = server.org("Compat").await;
    let user = server.user(org, Role::Member).await;
    let key = server.api_key(&user, org, "mcp:read mcp:write").await;
    let r = server
        .http
        .post(server.resource())
        .bearer_auth(&key)
        .header(server.state.config.org_header.as_str(), org.to_string())
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let me = &body["result"]["structuredContent"];
    assert_eq!(me["source"], "mcp-bearer");
    assert_eq!(me["org_id"], org.to_string());
    assert_eq!(me["scopes"], json!(["mcp:read", "mcp:write"]));
}
