//! Resources and resource templates backed by REST routes: listed and read
//! by scope like tools, a hidden one answering exactly like a missing one,
//! every read audited; the `resources` capability only when some exist.

mod common;
#[path = "common/mcp.rs"]
mod mcp;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use common::TestServer;
use portcullis::identity::scope::Role;
use serde_json::{Value, json};

type Seen = Arc<Mutex<Vec<(String, bool)>>>;

async fn crm(State(seen): State<Seen>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let identified = request.headers().contains_key("x-portcullis-identity")
        && !request.headers().contains_key("authorization");
    seen.lock().unwrap().push((path.clone(), identified));
    match path.as_str() {
        "/api/pipeline" => Json(json!({ "stages": ["lead", "won"] })).into_response(),
        "/api/contacts/42" => Json(json!({ "id": "42", "name": "Ada" })).into_response(),
        "/api/audit" => Json(json!({ "entries": [] })).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn rpc(method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params })
}

async fn answer(server: &TestServer, key: &str, org: uuid::Uuid, message: Value) -> Value {
    let response = mcp::post(server, Some(key), Some(org), &message).await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, 200, "{message}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn resources_are_listed_read_and_hidden_by_scope() {
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api", listener.local_addr().unwrap());
    let app = Router::new().fallback(crm).with_state(Arc::clone(&seen));
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

[[resource]]
uri = "crm://pipeline"
name = "pipeline"
description = "The sales pipeline's stages."
upstream = "crm"
path = "/pipeline"
mime_type = "application/json"

[[resource]]
uri = "crm://audit"
name = "audit"
upstream = "crm"
path = "/audit"
scope = "mcp:admin"

[[resource_template]]
uri_template = "crm://contacts/{{id}}"
name = "contact"
description = "One contact by id."
upstream = "crm"
path = "/contacts/{{id}}"
"#
        ),
    )
    .unwrap();
    let server = TestServer::start_with(|c| c.catalog = Some(path)).await;
    let org = server.org("Acme").await;
    let admin = server.user(org, Role::Admin).await;
    let read = server.api_key(&admin, org, "mcp:read").await;
    let all = server
        .api_key(&admin, org, "mcp:read mcp:write mcp:admin")
        .await;

    let init = answer(
        &server,
        &read,
        org,
        json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": mcp::PROTOCOL_VERSION, "capabilities": {},
            "clientInfo": { "name": "t", "version": "1" } } }),
    )
    .await;
    assert!(
        init["result"]["capabilities"]["resources"].is_object(),
        "{init}"
    );

    let listed = answer(&server, &read, org, rpc("resources/list", json!({}))).await;
    let uris: Vec<&str> = listed["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris, ["crm://pipeline"]);
    let listed = answer(&server, &all, org, rpc("resources/list", json!({}))).await;
    assert_eq!(listed["result"]["resources"].as_array().unwrap().len(), 2);
    let templates = answer(
        &server,
        &read,
        org,
        rpc("resources/templates/list", json!({})),
    )
    .await;
    assert_eq!(
        templates["result"]["resourceTemplates"][0]["uriTemplate"],
        "crm://contacts/{id}"
    );

    let pipeline = answer(
        &server,
        &read,
        org,
        rpc("resources/read", json!({ "uri": "crm://pipeline" })),
    )
    .await;
    let contents = &pipeline["result"]["contents"][0];
    assert_eq!(contents["uri"], "crm://pipeline");
    assert_eq!(contents["mimeType"], "application/json");
    let text: Value = serde_json::from_str(contents["text"].as_str().unwrap()).unwrap();
    assert_eq!(text["stages"][1], "won");

    let contact = answer(
        &server,
        &read,
        org,
        rpc("resources/read", json!({ "uri": "crm://contacts/42" })),
    )
    .await;
    assert!(
        contact["result"]["contents"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Ada")
    );
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|(_, identified)| *identified)
    );
    assert_eq!(seen.lock().unwrap()[1].0, "/api/contacts/42");

    // Hidden (admin-only) and nonexistent answer alike, apart from the URI echoed.
    let sent = seen.lock().unwrap().len();
    let hidden = answer(
        &server,
        &read,
        org,
        rpc("resources/read", json!({ "uri": "crm://audit" })),
    )
    .await;
    let missing = answer(
        &server,
        &read,
        org,
        rpc("resources/read", json!({ "uri": "crm://nothing" })),
    )
    .await;
    assert_eq!(hidden["error"]["code"], missing["error"]["code"]);
    assert_eq!(hidden["error"]["message"], missing["error"]["message"]);
    assert_eq!(hidden["error"]["code"], -32002);
    assert_eq!(
        seen.lock().unwrap().len(),
        sent,
        "nothing hidden reaches the upstream"
    );
    // A template value that is not one segment matches nothing.
    let traversal = answer(
        &server,
        &read,
        org,
        rpc(
            "resources/read",
            json!({ "uri": "crm://contacts/42/../../audit" }),
        ),
    )
    .await;
    assert_eq!(traversal["error"]["code"], -32002);
    // The upstream's 404 is a resource not found too.
    let gone = answer(
        &server,
        &read,
        org,
        rpc("resources/read", json!({ "uri": "crm://contacts/7" })),
    )
    .await;
    assert_eq!(gone["error"]["code"], -32002);
    // An admin reads the admin resource.
    let audit = answer(
        &server,
        &all,
        org,
        rpc("resources/read", json!({ "uri": "crm://audit" })),
    )
    .await;
    assert!(audit["result"]["contents"].is_array(), "{audit}");

    // Every read is audited under the URI asked for.
    let audited = mcp::eventually(Duration::from_secs(10), || async {
        let calls = server
            .state
            .store
            .tool_calls(
                org,
                &portcullis::store::ToolCallFilter {
                    limit: 50,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let find = |tool: &str| {
            calls
                .iter()
                .find(|c| c.tool == tool)
                .map(|c| c.outcome.clone())
        };
        find("resources/read crm://pipeline").as_deref() == Some("ok")
            && find("resources/read crm://audit").is_some()
            && find("resources/read crm://nothing").as_deref() == Some("error")
    })
    .await;
    assert!(audited, "resource reads were not audited");
    server.stop().await;
}

#[tokio::test]
async fn without_resources_the_capability_and_methods_are_absent() {
    let server = TestServer::start().await;
    let org = server.org("Plain").await;
    let admin = server.user(org, Role::Admin).await;
    let key = server.api_key(&admin, org, "mcp:read").await;
    let listed = answer(&server, &key, org, rpc("resources/list", json!({}))).await;
    assert_eq!(listed["error"]["code"], -32601, "{listed}");
    let init = answer(
        &server,
        &key,
        org,
        json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": mcp::PROTOCOL_VERSION, "capabilities": {},
            "clientInfo": { "name": "t", "version": "1" } } }),
    )
    .await;
    assert!(
        init["result"]["capabilities"].get("resources").is_none(),
        "{init}"
    );
    server.stop().await;
}
