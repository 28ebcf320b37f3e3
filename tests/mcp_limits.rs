//! Rate limits per caller and tool (SPEC §4.7) and the optional step-up
//! answer for tools beyond a token's scopes (SPEC §4.4).

mod common;
#[path = "common/mcp.rs"]
mod mcp;

use std::time::Duration;

use common::TestServer;
use portcullis::{
    config::{InsufficientScope, RateLimitConfig},
    identity::scope::Role,
};
use serde_json::{Value, json};

#[tokio::test]
async fn an_exhausted_bucket_answers_429_for_that_caller_and_tool_only() {
    let server = TestServer::start_with(|c| {
        c.rate_limit = RateLimitConfig {
            burst: 2,
            per_minute: 1,
        }
    })
    .await;
    let org = server.org("Acme").await;
    let alice = server.user(org, Role::Member).await;
    let bob = server.user(org, Role::Member).await;
    let alice_key = server.api_key(&alice, org, "mcp:read").await;
    let bob_tokens = server.oauth_tokens(&bob, "mcp:read").await;
    let whoami = |id| mcp::tools_call(id, "whoami", json!({}));

    for id in 1..=2 {
        let response = mcp::post(&server, Some(&alice_key), Some(org), &whoami(id)).await;
        assert_eq!(response.status(), 200);
    }
    let limited = mcp::post(&server, Some(&alice_key), Some(org), &whoami(3)).await;
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], 3);
    assert_eq!(
        body["error"]["data"],
        json!({"error": "rate_limited", "retry_after": retry_after})
    );

    // Another tool for the same caller, the same tool for another caller, and
    // listing tools are all unaffected.
    let other_tool = mcp::tools_call(4, "list_members", json!({}));
    assert_eq!(
        mcp::post(&server, Some(&alice_key), Some(org), &other_tool)
            .await
            .status(),
        200
    );
    assert_eq!(
        mcp::post(&server, Some(&bob_tokens.access_token), None, &whoami(5))
            .await
            .status(),
        200
    );
    assert_eq!(
        mcp::post(&server, Some(&alice_key), Some(org), &mcp::tools_list(6))
            .await
            .status(),
        200
    );

    let bob_client = mcp::connect(&server, &bob_tokens.access_token, None).await;
    let recorded = mcp::eventually(Duration::from_secs(5), || async {
        let calls = mcp::call_ok(
            &bob_client,
            "list_tool_calls",
            json!({"outcome": "rate_limited"}),
        )
        .await;
        calls["tool_calls"]
            .as_array()
            .is_some_and(|c| c.len() == 1 && c[0]["tool"] == "whoami")
    })
    .await;
    assert!(recorded, "the refused call is in the audit log");
}

#[tokio::test]
async fn step_up_mode_asks_for_the_missing_scope_with_a_403() {
    let server = TestServer::start_with(|c| c.insufficient_scope = InsufficientScope::StepUp).await;
    let org = server.org("Acme").await;
    let admin = server.user(org, Role::Admin).await;
    let tokens = server.oauth_tokens(&admin, "mcp:read").await;

    let response = mcp::post(
        &server,
        Some(&tokens.access_token),
        None,
        &mcp::tools_call(
            1,
            "delete_connected_app",
            json!({"id": "x", "confirm": true}),
        ),
    )
    .await;
    assert_eq!(response.status(), 403);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with(&format!(
            "Bearer error=\"insufficient_scope\", scope=\"mcp:read mcp:admin\", resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
            server.base
        )),
        "{challenge}"
    );

    // Unknown tools and the listing behave as in the default mode.
    let client = mcp::connect(&server, &tokens.access_token, None).await;
    assert_eq!(
        mcp::call_err(&client, "no_such_tool").await.message,
        "tool not found"
    );
    assert!(
        !mcp::tool_names(&client)
            .await
            .contains(&"delete_connected_app".to_owned())
    );
}
