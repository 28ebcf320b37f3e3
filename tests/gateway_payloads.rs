//! Payload logs, opt-in per upstream: a call's arguments and result are
//! kept with its audit record, secrets redacted at any depth, and shown on
//! the console's Activity page; an upstream without `log_payloads` keeps none.

mod common;
#[path = "common/mcp.rs"]
mod mcp;

use std::time::Duration;

use axum::{Json, Router, routing::post};
use common::TestServer;
use portcullis::identity::scope::Role;
use serde_json::{Value, json};

#[tokio::test]
async fn logged_calls_keep_redacted_payloads_shown_on_the_activity_page() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().route(
        "/contacts",
        post(|Json(body): Json<Value>| async move {
            Json(json!({ "id": "c1", "name": body["name"], "api_token": "tok-123" }))
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[upstream]]
name = "crm"
base_url = "{base}"
log_payloads = true
redact = ["ssn"]

[[upstream]]
name = "quiet"
base_url = "{base}"

[[tool]]
name = "create_contact"
description = "Create a contact."
upstream = "crm"
method = "POST"
path = "/contacts"

[[tool]]
name = "list_archived"
description = "Switched off."
upstream = "quiet"
method = "GET"
path = "/archived"
enabled = false

[[tool]]
name = "create_quiet_contact"
description = "Create a contact, unlogged."
upstream = "quiet"
method = "POST"
path = "/contacts"
"#
        ),
    )
    .unwrap();
    let server = TestServer::start_with(|c| c.catalog = Some(path)).await;
    let org = server.org("Acme").await;
    let admin = server.user(org, Role::Admin).await;
    let key = server.api_key(&admin, org, "mcp:read mcp:write").await;
    let client = mcp::connect(&server, &key, Some(org)).await;
    let args = json!({ "name": "Ada", "password": "hunter2", "profile": { "ssn": "078-05-1120", "city": "London" } });
    mcp::call_ok(&client, "create_contact", args.clone()).await;
    mcp::call_ok(&client, "create_quiet_contact", args).await;

    let payloads = server
        .state
        .store
        .payloads_between(org, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(
        payloads.len(),
        1,
        "only the logging upstream keeps payloads"
    );
    let p = payloads.values().next().unwrap();
    let arguments: Value = serde_json::from_str(&p.arguments).unwrap();
    assert_eq!(
        arguments,
        json!({ "name": "Ada", "password": "[redacted]", "profile": { "ssn": "[redacted]", "city": "London" } })
    );
    let result: Value = serde_json::from_str(&p.result).unwrap();
    assert_eq!(
        result,
        json!({ "id": "c1", "name": "Ada", "api_token": "[redacted]" })
    );

    // The audit record is written behind; the page shows the payload once it is.
    let browser = server.browser();
    assert!(
        server
            .sign_in(&browser, &admin.email, &admin.password)
            .await
            .is_redirection()
    );
    let shown = mcp::eventually(Duration::from_secs(10), || async {
        let page = browser
            .get(server.url(&format!("/console/activity?org={org}&tool=create_contact")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        page.contains("Input and output") && page.contains("London")
    })
    .await;
    assert!(shown, "the Activity page does not show the payload");
    let page = browser
        .get(server.url(&format!("/console/activity?org={org}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("hunter2") && !page.contains("078-05-1120") && !page.contains("tok-123")
    );
    server.stop().await;
}
