//! An alias names a catalog tool; it never decides what the tool needs. A
//! real upstream on loopback records every request it receives.

mod common;
#[path = "common/mcp.rs"]
mod mcp;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{Json, Router, extract::Request};
use common::TestServer;
use portcullis::identity::scope::Role;
use serde_json::json;

/// Methods the upstream received, in order.
type Received = Arc<Mutex<Vec<String>>>;

async fn start_upstream() -> (String, Received) {
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!(
        "http://127.0.0.1:{}/api",
        listener.local_addr().unwrap().port()
    );
    let seen = received.clone();
    let app = Router::new().fallback(move |request: Request| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(request.method().to_string());
            Json(json!({ "ok": true }))
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, received)
}

fn catalog(base: &str) -> String {
    format!(
        r#"
[[upstream]]
name = "notes"
base_url = "{base}"

[[tool]]
name = "delete_note"
alias = "get_note_deleted"
description = "Delete a note."
upstream = "notes"
method = "DELETE"
path = "/notes/{{id}}"
input_schema = {{ type = "object", properties = {{ id = {{ type = "string" }} }}, required = ["id"] }}

[[tool]]
name = "remove_note"
alias = "list_removed"
description = "Remove a note, declared read by mistake."
upstream = "notes"
method = "DELETE"
path = "/notes/{{id}}/remove"
scope = "mcp:read"
input_schema = {{ type = "object", properties = {{ id = {{ type = "string" }} }}, required = ["id"] }}

[[tool]]
name = "archive_note"
alias = "get_archived"
description = "Archive a note; tool_scopes names it by its declared name."
upstream = "notes"
method = "POST"
path = "/notes/{{id}}/archive"
input_schema = {{ type = "object", properties = {{ id = {{ type = "string" }} }}, required = ["id"] }}
"#
    )
}

#[tokio::test]
async fn an_alias_never_lowers_what_a_tool_needs() {
    let (base, received) = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.toml");
    std::fs::write(&path, catalog(&base)).unwrap();
    let server = TestServer::start_with(|c| {
        c.catalog = Some(path);
        c.tool_scopes = HashMap::from([("archive_note".to_owned(), "mcp:admin".to_owned())]);
    })
    .await;
    let org = server.org("Acme").await;
    let admin = server.user(org, Role::Admin).await;

    // A read key neither sees nor calls any of them.
    let read = mcp::connect(
        &server,
        &server.api_key(&admin, org, "mcp:read").await,
        Some(org),
    )
    .await;
    let names = mcp::tool_names(&read).await;
    for tool in ["get_note_deleted", "list_removed", "get_archived"] {
        assert!(
            !names.contains(&tool.to_owned()),
            "{tool} listed: {names:?}"
        );
        let refused = mcp::call_err(&read, tool).await;
        assert_eq!(refused.message, "tool not found", "{tool}");
    }
    // Nor does a write key, for what needs admin.
    let write = mcp::connect(
        &server,
        &server.api_key(&admin, org, "mcp:read mcp:write").await,
        Some(org),
    )
    .await;
    for tool in ["get_note_deleted", "list_removed", "get_archived"] {
        let refused = mcp::call_err(&write, tool).await;
        assert_eq!(refused.message, "tool not found", "{tool}");
    }
    assert!(
        received.lock().unwrap().is_empty(),
        "nothing reached the upstream"
    );

    // An admin key needs confirmation for the aliased DELETE.
    let full = mcp::connect(
        &server,
        &server
            .api_key(&admin, org, "mcp:read mcp:write mcp:admin")
            .await,
        Some(org),
    )
    .await;
    let unconfirmed = mcp::call(&full, "get_note_deleted", json!({ "id": "7" }))
        .await
        .unwrap();
    assert_eq!(unconfirmed.is_error, Some(true));
    assert!(received.lock().unwrap().is_empty());
    mcp::call_ok(
        &full,
        "get_note_deleted",
        json!({ "id": "7", "confirm": true }),
    )
    .await;
    assert_eq!(*received.lock().unwrap(), ["DELETE"]);
}
