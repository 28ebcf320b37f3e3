//! How real clients refresh (SPEC §1, §3.6): Claude from two IPs at once,
//! clients that refresh five minutes before expiry, and clients that
//! refresh only once `/mcp` has answered 401.

mod common;
#[path = "common/compat.rs"]
mod compat;

use std::time::Duration;

use common::{TestServer, TestUser};
use compat::{Authorization, ClientAuth, authorize, register, whoami};
use portcullis::identity::scope::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A Claude-style confidential client with tokens for `user`.
async fn claude_tokens(server: &TestServer, user: &TestUser) -> (String, String, Value) {
    let client = register(
        server,
        json!({
            "client_name": "Claude",
            "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
            "token_endpoint_auth_method": "client_secret_post",
        }),
    )
    .await;
    let id = client["client_id"].as_str().unwrap().to_owned();
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    let tokens = authorize(
        server,
        user,
        Authorization {
            client_id: &id,
            redirect_uri: "https://claude.ai/api/mcp/auth_callback",
            scope: "mcp:read mcp:write",
            send_resource: true,
            auth: ClientAuth::SecretPost(&secret),
            approve: "mcp:read mcp:write",
        },
    )
    .await;
    (id, secret, tokens)
}

async fn refresh(server: &TestServer, id: &str, secret: &str, token: &str) -> (StatusCode, Value) {
    server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .await
}

async fn user(server: &TestServer) -> TestUser {
    let org = server.org("Refresh").await;
    server.user(org, Role::Member).await
}

#[tokio::test]
async fn two_racing_refreshes_both_get_working_tokens() {
    let server = TestServer::start().await;
    let user = user(&server).await;
    // The client carries on with either answer; the family keeps one branch,
    // so the other answer's refresh token dies once one is used.
    for keep in [0, 1] {
        let (id, secret, tokens) = claude_tokens(&server, &user).await;
        let old = tokens["refresh_token"].as_str().unwrap();
        let ((s1, first), (s2, second)) = tokio::join!(
            refresh(&server, &id, &secret, old),
            refresh(&server, &id, &secret, old)
        );
        assert_eq!(
            (s1, s2),
            (StatusCode::OK, StatusCode::OK),
            "{first} {second}"
        );
        for won in [&first, &second] {
            let me = whoami(&server, won["access_token"].as_str().unwrap()).await;
            assert_eq!(me["source"], "mcp-oauth");
        }
        let kept = [&first, &second][keep]["refresh_token"].as_str().unwrap();
        let (status, next) = refresh(&server, &id, &secret, kept).await;
        assert_eq!(status, StatusCode::OK, "{next}");
        let (status, next) = refresh(
            &server,
            &id,
            &secret,
            next["refresh_token"].as_str().unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "the kept branch lives on: {next}");
    }
}

#[tokio::test]
async fn a_client_that_refreshes_five_minutes_before_expiry() {
    // With a four-minute lifetime such a client refreshes right away.
    let server = TestServer::start_with(|c| c.access_token_ttl = Duration::from_secs(240)).await;
    let user = user(&server).await;
    let (id, secret, tokens) = claude_tokens(&server, &user).await;
    assert_eq!(tokens["expires_in"], 240);
    assert!(
        tokens["expires_in"].as_u64().unwrap() <= 300,
        "due for refresh"
    );
    let (status, fresh) = refresh(
        &server,
        &id,
        &secret,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    assert_eq!(fresh["expires_in"], 240);
    assert_ne!(fresh["refresh_token"], tokens["refresh_token"], "rotated");
    // Requests already in flight with the old access token still succeed.
    for access in [&tokens["access_token"], &fresh["access_token"]] {
        let me = whoami(&server, access.as_str().unwrap()).await;
        assert_eq!(me["user_id"], user.id.to_string());
    }
    // And the refresh after that works from the rotated token.
    let (status, _) = refresh(
        &server,
        &id,
        &secret,
        fresh["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_client_that_refreshes_only_after_a_401() {
    let server = TestServer::start_with(|c| c.access_token_ttl = Duration::from_secs(1)).await;
    let user = user(&server).await;
    let (id, secret, tokens) = claude_tokens(&server, &user).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(whoami(&server, &access).await["source"], "mcp-oauth");
    // The client keeps using its token until /mcp refuses it (expiry plus
    // the validator's clock-skew leeway).
    let call = || {
        server
            .http
            .post(server.resource())
            .bearer_auth(&access)
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}))
            .send()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let refused = loop {
        let r = call().await.unwrap();
        if r.status() == StatusCode::UNAUTHORIZED {
            break r;
        }
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the token never expired"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    let (status, fresh) = refresh(
        &server,
        &id,
        &secret,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let me = whoami(&server, fresh["access_token"].as_str().unwrap()).await;
    assert_eq!(me["source"], "mcp-oauth");
    assert_eq!(me["client_id"], id);
}
