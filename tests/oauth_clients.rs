//! The registrations and flows of real MCP clients (SPEC §1), replayed as
//! each client sends them.

mod common;

use std::time::Duration;

use axum::{Json, Router, routing::get};
use common::{Pkce, TestServer, TestUser, query_param};
use portcullis::identity::scope::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn registered(server: &TestServer, body: Value) -> Value {
    let r = server.register(body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().await.unwrap()
}

/// Authorizes `client_id` for `user` on `redirect_uri` and returns the code.
async fn code(
    server: &TestServer,
    user: &TestUser,
    client_id: &str,
    redirect_uri: &str,
    scope: &str,
    pkce: &Pkce,
) -> String {
    let url = server.authorize_url(client_id, redirect_uri, scope, pkce, "state-1");
    let callback = server
        .authorize_in_browser(&server.browser(), &url, user, "mcp:read mcp:write")
        .await;
    assert!(
        callback.as_str().starts_with(redirect_uri),
        "{callback} is not on {redirect_uri}"
    );
    assert_eq!(query_param(&callback, "state").as_deref(), Some("state-1"));
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some(server.base.as_str())
    );
    query_param(&callback, "code").unwrap()
}

async fn member(server: &TestServer) -> TestUser {
    let org = server.org("Org").await;
    server.user(org, Role::Member).await
}

#[tokio::test]
async fn hosted_clients_register_their_real_redirect_uris_and_complete_the_flow() {
    let server = TestServer::start().await;
    let user = member(&server).await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({ "client_name": "Claude", "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"], "token_endpoint_auth_method": "client_secret_post", "grant_types": ["authorization_code", "refresh_token"] }),
            "https://claude.ai/api/mcp/auth_callback",
        ),
        (
            json!({ "client_name": "Claude", "redirect_uris": ["https://claude.com/api/mcp/auth_callback"], "token_endpoint_auth_method": "none", "scope": "claudeai" }),
            "https://claude.com/api/mcp/auth_callback",
        ),
        (
            json!({ "client_name": "ChatGPT", "redirect_uris": ["https://chatgpt.com/connector/oauth/abc123", "https://chatgpt.com/connector_platform_oauth_redirect"], "token_endpoint_auth_method": "none" }),
            "https://chatgpt.com/connector/oauth/abc123",
        ),
        (
            json!({ "client_name": "Cursor", "redirect_uris": ["cursor://anysphere.cursor-mcp/oauth/callback", "https://cursor.com/oauth/callback", "http://localhost:5173/callback"], "token_endpoint_auth_method": "none" }),
            "cursor://anysphere.cursor-mcp/oauth/callback",
        ),
        (
            json!({ "client_name": "Visual Studio Code", "redirect_uris": ["https://vscode.dev/redirect", "http://127.0.0.1:33418/"], "token_endpoint_auth_method": "none" }),
            "http://127.0.0.1:33418/",
        ),
        (
            json!({ "client_name": "Codex", "redirect_uris": ["http://127.0.0.1:41234/callback/7f3a"], "token_endpoint_auth_method": "none" }),
            "http://127.0.0.1:41234/callback/7f3a",
        ),
        (
            json!({ "client_name": "MCP Inspector", "redirect_uris": ["http://localhost:6274/oauth/callback"], "token_endpoint_auth_method": "none", "scope": "" }),
            "http://localhost:6274/oauth/callback",
        ),
    ];
    for (body, redirect_uri) in cases {
        let client = registered(&server, body.clone()).await;
        assert_eq!(
            client["token_endpoint_auth_method"],
            body["token_endpoint_auth_method"]
        );
        let client_id = client["client_id"].as_str().unwrap();
        let pkce = Pkce::new();
        let code = code(
            &server,
            &user,
            client_id,
            redirect_uri,
            "mcp:read mcp:write",
            &pkce,
        )
        .await;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri),
            ("code_verifier", pkce.verifier.as_str()),
            ("client_id", client_id),
        ];
        if let Some(secret) = client["client_secret"].as_str() {
            assert_eq!(client["client_secret_expires_at"], 0);
            form.push(("client_secret", secret));
        } else {
            assert_eq!(body["token_endpoint_auth_method"], "none");
        }
        let (status, tokens) = server.token(&form).await;
        assert_eq!(status, StatusCode::OK, "{body}: {tokens}");
        assert_eq!(tokens["token_type"], "Bearer");
        assert!(tokens["refresh_token"].is_string());
    }
}

#[tokio::test]
async fn codex_sends_the_supported_scopes_and_no_resource() {
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
    let client = registered(&server, json!({ "client_name": "Codex", "redirect_uris": ["http://127.0.0.1:41234/callback/1"], "token_endpoint_auth_method": "none" })).await;
    let client_id = client["client_id"].as_str().unwrap();
    let pkce = Pkce::new();
    let url = server.authorize_url(
        client_id,
        "http://127.0.0.1:41234/callback/1",
        &scopes.join(" "),
        &pkce,
        "s",
    );
    let url = url.split("&resource=").next().unwrap().to_owned();
    let callback = server
        .authorize_in_browser(&server.browser(), &url, &user, "mcp:read mcp:write")
        .await;
    let code = query_param(&callback, "code").unwrap();
    let (status, tokens) = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &pkce.verifier),
            ("client_id", client_id),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    // A member cannot hold admin even when every scope was asked for.
    assert_eq!(
        tokens["scope"],
        "mcp:read mcp:write openid email profile offline_access"
    );
    assert!(tokens["id_token"].is_string());
}

/// Serves Client ID Metadata Documents on loopback, as claude.ai and
/// chatgpt.com do on the public internet.
async fn metadata_host(documents: Vec<(&'static str, Value)>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut router = Router::new();
    for (path, mut doc) in documents {
        doc["client_id"] = Value::String(format!("{base}{path}"));
        router = router.route(
            path,
            get(move || async move { ([("cache-control", "max-age=60")], Json(doc)) }),
        );
    }
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

#[tokio::test]
async fn claude_code_uses_a_metadata_document_with_portless_loopback_redirects() {
    let server = TestServer::start().await;
    let user = member(&server).await;
    let host = metadata_host(vec![(
        "/oauth/claude-code-client-metadata",
        json!({ "client_name": "Claude Code", "redirect_uris": ["http://localhost/callback", "http://127.0.0.1/callback"], "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none" }),
    )])
    .await;
    let client_id = format!("{host}/oauth/claude-code-client-metadata");
    let redirect = "http://localhost:53682/callback";
    let pkce = Pkce::new();
    let code = code(
        &server,
        &user,
        &client_id,
        redirect,
        "mcp:read mcp:write",
        &pkce,
    )
    .await;
    let (status, tokens) = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", &pkce.verifier),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    // A different path on loopback is not a match, whatever the port.
    let url = server.authorize_url(
        &client_id,
        "http://localhost:53682/other",
        "mcp:read",
        &pkce,
        "s",
    );
    assert_eq!(
        server.http.get(&url).send().await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn chatgpt_via_metadata_document_and_bad_documents_show_an_error_page() {
    let server = TestServer::start().await;
    let user = member(&server).await;
    let host = metadata_host(vec![
        ("/chatgpt.json", json!({ "client_name": "ChatGPT", "redirect_uris": ["https://chatgpt.com/connector/oauth/xyz"] })),
        ("/secret.json", json!({ "client_name": "Bad", "redirect_uris": ["https://x.example/cb"], "token_endpoint_auth_method": "client_secret_basic" })),
        ("/noname.json", json!({ "redirect_uris": ["https://x.example/cb"] })),
    ])
    .await;
    let client_id = format!("{host}/chatgpt.json");
    let pkce = Pkce::new();
    let code = code(
        &server,
        &user,
        &client_id,
        "https://chatgpt.com/connector/oauth/xyz",
        "mcp:read",
        &pkce,
    )
    .await;
    assert!(!code.is_empty());
    for path in ["/secret.json", "/noname.json", "/missing.json"] {
        let url = server.authorize_url(
            &format!("{host}{path}"),
            "https://x.example/cb",
            "mcp:read",
            &pkce,
            "s",
        );
        let r = server.http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        assert!(r.headers().get("location").is_none());
    }
}

#[tokio::test]
async fn racing_refreshes_both_succeed_and_a_later_reuse_revokes_the_grant() {
    let server = TestServer::start().await;
    let user = member(&server).await;
    let tokens = server.oauth_tokens(&user, "mcp:read").await;
    let refresh = |token: String| {
        let server = &server;
        let client_id = tokens.client_id.clone();
        async move {
            server
                .token(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("client_id", &client_id),
                ])
                .await
        }
    };
    // Claude refreshes from two places at nearly the same moment.
    let (first_status, first) = refresh(tokens.refresh_token.clone()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (second_status, second) = refresh(tokens.refresh_token.clone()).await;
    assert_eq!(
        (first_status, second_status),
        (StatusCode::OK, StatusCode::OK),
        "{first} {second}"
    );
    assert_eq!(first["scope"], "mcp:read");

    // The replacement is used; after that the original is a stolen token.
    let (status, _) = refresh(first["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = refresh(tokens.refresh_token.clone()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // Reuse revoked the whole grant, including the racing sibling.
    let (status, _) = refresh(second["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn refresh_keeps_the_audience_and_may_only_narrow_scope() {
    let server = TestServer::start().await;
    let user = member(&server).await;
    let tokens = server.oauth_tokens(&user, "mcp:read mcp:write").await;
    let (status, body) = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &tokens.refresh_token),
            ("client_id", &tokens.client_id),
            ("scope", "mcp:read mcp:admin"),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    let (status, body) = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &tokens.refresh_token),
            ("client_id", &tokens.client_id),
            ("scope", "mcp:read"),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "mcp:read");
    let claims = decode(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], server.resource().as_str());
    let (status, body) = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ("client_id", &tokens.client_id),
            ("resource", "https://elsewhere.example/mcp"),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target"))
    );
}

#[tokio::test]
async fn openid_clients_get_an_id_token_and_userinfo() {
    let server = TestServer::start().await;
    let user = member(&server).await;
    let tokens = server.oauth_tokens(&user, "openid email mcp:read").await;
    let id = decode(tokens.raw["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], tokens.client_id.as_str());
    assert_eq!(id["email"], user.email.as_str());
    assert_eq!(id["email_verified"], true);
    let info: Value = server
        .http
        .get(server.url("/userinfo"))
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], user.id.to_string().as_str());
    assert_eq!(info["email"], user.email.as_str());
    let r = server
        .http
        .get(server.url("/userinfo"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn metadata_documents_are_exact() {
    let server = TestServer::start().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/mcp",
        "/.well-known/openid-configuration",
    ] {
        let m: Value = server
            .http
            .get(server.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(m["issuer"], server.base.as_str());
        assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(
            m["token_endpoint_auth_methods_supported"],
            json!([
                "none",
                "client_secret_post",
                "client_secret_basic",
                "private_key_jwt"
            ])
        );
        assert_eq!(m["client_id_metadata_document_supported"], true);
        assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    }
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let m: Value = server
            .http
            .get(server.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(m["resource"], server.resource().as_str());
        assert_eq!(m["authorization_servers"], json!([server.base]));
        assert_eq!(
            m["scopes_supported"],
            json!(["mcp:read", "mcp:write", "mcp:admin"])
        );
        assert_eq!(m["bearer_methods_supported"], json!(["header"]));
    }
    let jwks: Value = server
        .http
        .get(server.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(jwks["keys"][0]["kid"].is_string());
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "no private material in JWKS"
    );
}

fn decode(jwt: &str) -> Value {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap()
}
