//! `builtin_tools`: only the built-in tools named are offered.

mod common;
#[path = "common/mcp.rs"]
mod mcp;

use common::TestServer;
use portcullis::identity::scope::Role;
use serde_json::{Value, json};

#[tokio::test]
async fn only_the_configured_builtin_tools_are_offered() {
    let server =
        TestServer::start_with(|c| c.builtin_tools = Some(vec!["whoami".to_owned()])).await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Admin).await;
    let key = server
        .api_key(&user, org, "mcp:read mcp:write mcp:admin")
        .await;
    let listed: Value = mcp::post(&server, Some(&key), Some(org), &mcp::tools_list(1))
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["whoami"]);
    let call: Value = mcp::post(
        &server,
        Some(&key),
        Some(org),
        &mcp::tools_call(2, "list_members", json!({})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(
        call.get("error").is_some() || call["result"]["isError"] == true,
        "{call}"
    );
    server.stop().await;
}
