//! The Activity page names the app (not its client id), shows the
//! upstream's status and says why a call failed or was refused.

mod common;
#[path = "common/mcp.rs"]
mod mcp;

use std::time::Duration;

use common::TestServer;
use portcullis::{identity::scope::Role, store::ToolCall};
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn activity_names_the_app_and_says_why_a_call_failed() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Admin).await;
    let key = server.api_key(&user, org, "mcp:read").await;

    // A built-in tool refusing its arguments: the reason is recorded.
    let answer = mcp::post(
        &server,
        Some(&key),
        Some(org),
        &mcp::tools_call(1, "list_tool_calls", json!({"limit": 0})),
    )
    .await;
    assert_eq!(answer.status(), 200);

    // A gateway call through a registered app that the upstream failed.
    let app = server
        .register(json!({
            "client_name": "Acme Assistant",
            "redirect_uris": ["https://app.example/callback"],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    assert_eq!(app.status(), 201);
    let app: serde_json::Value = app.json().await.unwrap();
    let client_id = app["client_id"].as_str().unwrap().to_owned();
    let call = ToolCall {
        id: Uuid::new_v4(),
        at: portcullis::store::now(),
        org_id: org,
        user_id: user.id,
        source: "mcp-oauth".into(),
        client_id: Some(client_id.clone()),
        api_key_id: None,
        tool: "crm_get_contact".into(),
        outcome: "error".into(),
        duration_ms: 12,
        upstream_status: Some(502),
        detail: Some("The upstream answered 502 Bad Gateway".into()),
    };
    server.state.store.insert_tool_calls(&[call]).await.unwrap();

    let browser = server.browser();
    server.sign_in(&browser, &user.email, &user.password).await;
    let url = server.url(&format!("/console/activity?org={org}"));
    let fetch = || {
        let (browser, url) = (browser.clone(), url.clone());
        async move { browser.get(url).send().await.unwrap().text().await.unwrap() }
    };
    // The audit log is written behind the call: wait for the record.
    let recorded = mcp::eventually(Duration::from_secs(10), || async {
        fetch().await.contains("limit must be between 1 and 200.")
    })
    .await;
    let page = fetch().await;
    assert!(recorded, "the refused call's reason is shown: {page}");
    assert!(page.contains("<bdi>Acme Assistant</bdi>"), "{page}");
    assert!(!page.contains(&format!("<bdi>{client_id}</bdi>")), "{page}");
    assert!(
        page.contains(r#"<td data-label="Upstream">502</td>"#),
        "{page}"
    );
    assert!(
        page.contains("The upstream answered 502 Bad Gateway"),
        "{page}"
    );
}
