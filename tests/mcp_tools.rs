//! Stories of MCP clients using the built-in tools through rmcp's client.

mod common;
#[path = "common/mcp.rs"]
mod mcp;

use std::time::Duration;

use common::TestServer;
use portcullis::identity::scope::Role;
use serde_json::json;

const READ_TOOLS: [&str; 5] = [
    "whoami",
    "list_api_keys",
    "list_connected_apps",
    "list_members",
    "list_tool_calls",
];
const ADMIN_TOOLS: [&str; 2] = ["delete_api_key", "delete_connected_app"];

#[tokio::test]
async fn each_oauth_scope_set_sees_exactly_its_tools() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let admin = server.user(org, Role::Admin).await;
    let everything: Vec<&str> = READ_TOOLS.iter().chain(&ADMIN_TOOLS).copied().collect();
    for (scope, expected) in [
        ("mcp:read", READ_TOOLS.to_vec()),
        // No built-in tool needs exactly mcp:write.
        ("mcp:read mcp:write", READ_TOOLS.to_vec()),
        ("mcp:read mcp:write mcp:admin", everything),
    ] {
        let scopes: Vec<&str> = scope.split(' ').collect();
        let client = mcp::connect_with_rmcp_oauth(&server, &admin, &scopes).await;
        assert_eq!(
            mcp::tool_names(&client).await,
            expected,
            "tools for {scope}"
        );
        let who = mcp::call_ok(&client, "whoami", json!({})).await;
        assert_eq!(who["source"], "mcp-oauth");
        assert_eq!(who["org_id"], org.to_string().as_str());
        assert_eq!(who["scopes"], json!(scopes), "scopes for {scope}");
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn a_hidden_tool_answers_exactly_like_a_missing_one() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let admin = server.user(org, Role::Admin).await;
    let tokens = server.oauth_tokens(&admin, "mcp:read").await;
    let client = mcp::connect(&server, &tokens.access_token, None).await;
    let hidden = mcp::call_err(&client, "delete_api_key").await;
    let missing = mcp::call_err(&client, "no_such_tool").await;
    assert_eq!(hidden, missing);
    assert_eq!(hidden.message, "tool not found");

    // On the wire too, byte for byte apart from the id.
    let raw = |tool: &'static str| {
        let server = &server;
        let token = tokens.access_token.clone();
        async move {
            let response = mcp::post(
                server,
                Some(&token),
                None,
                &mcp::tools_call(7, tool, json!({})),
            )
            .await;
            assert_eq!(response.status(), 200);
            response.text().await.unwrap()
        }
    };
    assert_eq!(raw("delete_connected_app").await, raw("no_such_tool").await);
}

#[tokio::test]
async fn whoami_over_oauth_names_the_client_and_granted_scopes() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let member = server.user(org, Role::Member).await;
    let tokens = server.oauth_tokens(&member, "mcp:read mcp:write").await;
    let client = mcp::connect(&server, &tokens.access_token, None).await;
    let me = mcp::call_ok(&client, "whoami", json!({})).await;
    assert_eq!(
        me,
        json!({
            "user_id": member.id,
            "org_id": org,
            "email": member.email,
            "source": "mcp-oauth",
            "scopes": ["mcp:read", "mcp:write"],
            "client_id": tokens.client_id,
        })
    );
}

#[tokio::test]
async fn whoami_with_an_api_key_names_the_key() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let member = server.user(org, Role::Member).await;
    let key = server.api_key(&member, org, "mcp:read").await;
    let client = mcp::connect(&server, &key, Some(org)).await;
    let me = mcp::call_ok(&client, "whoami", json!({})).await;
    let key_id = key.split('_').nth(1).unwrap();
    assert_eq!(
        me,
        json!({
            "user_id": member.id,
            "org_id": org,
            "email": member.email,
            "source": "mcp-bearer",
            "scopes": ["mcp:read"],
            "api_key_id": key_id,
        })
    );
    // The text content carries the same JSON for clients that ignore structuredContent.
    let result = mcp::call(&client, "whoami", json!({})).await.unwrap();
    let text = &result.content[0].as_text().unwrap().text;
    assert_eq!(serde_json::from_str::<serde_json::Value>(text).unwrap(), me);
}

#[tokio::test]
async fn a_demoted_members_write_key_sees_only_read_tools() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let key = server.api_key(&user, org, "mcp:read mcp:write").await;
    server.add_to_org(&user, org, Role::Viewer).await;
    let client = mcp::connect(&server, &key, Some(org)).await;
    assert_eq!(mcp::tool_names(&client).await, READ_TOOLS);
    let me = mcp::call_ok(&client, "whoami", json!({})).await;
    assert_eq!(me["scopes"], json!(["mcp:read"]));
}

#[tokio::test]
async fn tools_are_annotated_and_destructive_ones_take_confirm() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let admin = server.user(org, Role::Admin).await;
    let key = server.api_key(&admin, org, "mcp:admin").await;
    let client = mcp::connect(&server, &key, Some(org)).await;
    let tools = client.list_all_tools().await.unwrap();
    for tool in &tools {
        let annotations = tool.annotations.as_ref().expect("annotated");
        let destructive = ADMIN_TOOLS.contains(&tool.name.as_ref());
        assert_eq!(
            annotations.read_only_hint,
            Some(!destructive),
            "{}",
            tool.name
        );
        assert_eq!(
            annotations.destructive_hint,
            Some(destructive),
            "{}",
            tool.name
        );
        let required = tool.input_schema.get("required").unwrap();
        assert_eq!(
            required.as_array().unwrap().contains(&json!("confirm")),
            destructive,
            "{}",
            tool.name
        );
    }
}

#[tokio::test]
async fn deleting_an_api_key_without_confirm_changes_nothing() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let admin = server.user(org, Role::Admin).await;
    let admin_key = server.api_key(&admin, org, "mcp:admin").await;
    let victim = server.api_key(&admin, org, "mcp:read").await;
    let victim_id = victim.split('_').nth(1).unwrap().to_owned();
    let client = mcp::connect(&server, &admin_key, Some(org)).await;

    for args in [
        json!({"id": victim_id}),
        json!({"id": victim_id, "confirm": false}),
    ] {
        let result = mcp::call(&client, "delete_api_key", args).await.unwrap();
        assert_eq!(result.is_error, Some(true));
        let text = &result.content[0].as_text().unwrap().text;
        assert!(text.contains("\"confirm\": true"), "{text}");
    }
    let keys = mcp::call_ok(&client, "list_api_keys", json!({})).await;
    assert_eq!(keys["api_keys"].as_array().unwrap().len(), 2);
    let still = mcp::connect(&server, &victim, Some(org)).await;
    mcp::call_ok(&still, "whoami", json!({})).await;

    let deleted = mcp::call_ok(
        &client,
        "delete_api_key",
        json!({"id": victim_id, "confirm": true}),
    )
    .await;
    assert_eq!(deleted["deleted"], json!(true));
    let keys = mcp::call_ok(&client, "list_api_keys", json!({})).await;
    assert_eq!(keys["api_keys"].as_array().unwrap().len(), 1);
    // Deleted here, so this instance stops it at once rather than after the cache TTL.
    let response = mcp::post(&server, Some(&victim), Some(org), &mcp::tools_list(1)).await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn disconnecting_an_app_stops_its_tokens_at_once_and_only_within_the_org() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let other_org = server.org("Globex").await;
    let admin = server.user(org, Role::Admin).await;
    let member = server.user(org, Role::Member).await;
    let outsider = server.user(other_org, Role::Member).await;
    let app = server.oauth_tokens(&member, "mcp:read").await;
    let foreign = server.oauth_tokens(&outsider, "mcp:read").await;
    let admin_client = mcp::connect(
        &server,
        &server.api_key(&admin, org, "mcp:admin").await,
        Some(org),
    )
    .await;

    let apps = mcp::call_ok(&admin_client, "list_connected_apps", json!({})).await;
    let apps = apps["connected_apps"].as_array().unwrap();
    assert_eq!(apps.len(), 1, "only this org's apps: {apps:?}");
    assert_eq!(apps[0]["client_id"], json!(app.client_id));
    let app_id = apps[0]["id"].as_str().unwrap().to_owned();

    // The other org's grant cannot be reached even by its id.
    let foreign_grant = server
        .state
        .store
        .grants(Some(outsider.id), None)
        .await
        .unwrap()[0]
        .id;
    let result = mcp::call(
        &admin_client,
        "delete_connected_app",
        json!({"id": foreign_grant, "confirm": true}),
    )
    .await
    .unwrap();
    assert_eq!(result.is_error, Some(true));
    let foreign_client = mcp::connect(&server, &foreign.access_token, None).await;
    mcp::call_ok(&foreign_client, "whoami", json!({})).await;

    let app_client = mcp::connect(&server, &app.access_token, None).await;
    mcp::call_ok(&app_client, "whoami", json!({})).await;
    mcp::call_ok(
        &admin_client,
        "delete_connected_app",
        json!({"id": app_id, "confirm": true}),
    )
    .await;
    let response = mcp::post(&server, Some(&app.access_token), None, &mcp::tools_list(1)).await;
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

#[tokio::test]
async fn every_tool_call_lands_in_the_audit_log() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let admin = server.user(org, Role::Admin).await;
    let tokens = server.oauth_tokens(&admin, "mcp:read").await;
    let client = mcp::connect(&server, &tokens.access_token, None).await;
    mcp::call_ok(&client, "whoami", json!({})).await;
    mcp::call_err(&client, "delete_api_key").await;

    // Records are written behind, in batches: wait until both calls are in.
    let found = mcp::eventually(Duration::from_secs(5), || async {
        let calls = mcp::call_ok(&client, "list_tool_calls", json!({"limit": 200})).await;
        let recorded = |tool: &str| {
            calls["tool_calls"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["tool"] == tool))
        };
        recorded("whoami") && recorded("delete_api_key")
    })
    .await;
    assert!(
        found,
        "the whoami and delete_api_key calls were never recorded"
    );
    let calls = mcp::call_ok(&client, "list_tool_calls", json!({"limit": 200})).await;
    let calls = calls["tool_calls"].as_array().unwrap();
    let whoami = calls.iter().find(|c| c["tool"] == "whoami").unwrap();
    assert_eq!(whoami["outcome"], "ok");
    assert_eq!(whoami["source"], "mcp-oauth");
    assert_eq!(whoami["client_id"], json!(tokens.client_id));
    assert_eq!(whoami["user_id"], json!(admin.id));
    // A hidden tool is recorded exactly like a missing one, so the audit a
    // viewer can read does not tell hidden names apart.
    let denied = calls
        .iter()
        .find(|c| c["tool"] == "delete_api_key")
        .unwrap();
    assert_eq!(denied["outcome"], "error");

    let filtered = mcp::call_ok(
        &client,
        "list_tool_calls",
        json!({"tool": "delete_api_key", "limit": 1}),
    )
    .await;
    assert_eq!(filtered["tool_calls"].as_array().unwrap().len(), 1);
    let bad = mcp::call(&client, "list_tool_calls", json!({"limit": 0}))
        .await
        .unwrap();
    assert_eq!(bad.is_error, Some(true));
}

#[tokio::test]
async fn graceful_shutdown_writes_every_pending_audit_record() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let admin = server.user(org, Role::Admin).await;
    let key = server.api_key(&admin, org, "mcp:read").await;
    let client = mcp::connect(&server, &key, Some(org)).await;
    for _ in 0..10 {
        mcp::call_ok(&client, "whoami", json!({})).await;
    }
    client.cancel().await.unwrap();
    let store = server.state.store.clone();
    server.stop().await;
    let filter = portcullis::store::ToolCallFilter {
        limit: 100,
        ..Default::default()
    };
    assert_eq!(store.tool_calls(org, &filter).await.unwrap().len(), 10);
    let keys = store.api_keys(None, Some(org)).await.unwrap();
    assert!(
        keys[0].last_used_at.is_some(),
        "last use written behind on shutdown"
    );
}
