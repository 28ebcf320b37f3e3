//! Tools imported from real OpenAPI documents (`openapi =` on an upstream)
//! reach a test upstream with the operation's method, path, query, headers
//! and body; `[[operation]]` overrides rename, rescope and disable tools;
//! bad arguments are refused before anything is sent.

mod common;
#[path = "common/mcp.rs"]
mod mcp;

use std::sync::{Arc, Mutex};

use axum::{
    Json, Router,
    extract::{Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use common::TestServer;
use portcullis::identity::scope::Role;
use serde_json::{Value, json};

type Seen = Arc<Mutex<Vec<Value>>>;

/// Records each request and answers what the document says it answers.
async fn record(State(seen): State<Seen>, request: Request) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let headers: serde_json::Map<String, Value> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
        .collect();
    let bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    seen.lock().unwrap().push(
        json!({ "method": method, "path": path, "query": query, "headers": headers, "body": body }),
    );
    match (method.as_str(), path.as_str()) {
        ("GET", p) if p.ends_with("/namespaces") => {
            Json(json!({ "namespaces": [["accounting"]] })).into_response()
        }
        ("POST", p) if p.ends_with("/namespaces") => {
            Json(json!({ "namespace": ["accounting", "tax"], "properties": {} })).into_response()
        }
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

fn shared(name: &str) -> String {
    format!(
        "{}/tests/fixtures/openapi/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[tokio::test]
async fn imported_operations_forward_with_method_path_query_headers_and_body() {
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(record).with_state(Arc::clone(&seen));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let catalog = format!(
        r#"
[[upstream]]
name = "iceberg"
base_url = "{upstream}/catalog"
openapi = "{iceberg}"
operations = ["listNamespaces", "createNamespace", "namespaceExists", "dropTable", "loadTable"]

[[upstream]]
name = "overseerr"
base_url = "{upstream}/api/v1"
openapi = "{overseerr}"
include_tags = ["request"]
exclude_paths = ["/request/count", "/request/{{requestId}}/retry"]

[[operation]]
upstream = "iceberg"
id = "listNamespaces"
alias = "list_iceberg_namespaces"
description = "Namespaces of the warehouse."

[[operation]]
upstream = "iceberg"
id = "loadTable"
enabled = false

[[operation]]
upstream = "iceberg"
id = "namespaceExists"
scope = "mcp:write"
"#,
        iceberg = shared("iceberg-rest-catalog-open-api.yaml"),
        overseerr = shared("overseerr-api.yml"),
    );
    let path = dir.path().join("catalog.toml");
    std::fs::write(&path, catalog).unwrap();
    let server = TestServer::start_with(|c| c.catalog = Some(path)).await;
    let org = server.org("Lakehouse").await;
    let admin = server.user(org, Role::Admin).await;

    let read = mcp::connect(
        &server,
        &server.api_key(&admin, org, "mcp:read").await,
        Some(org),
    )
    .await;
    let names = mcp::tool_names(&read).await;
    assert!(
        names.contains(&"list_iceberg_namespaces".to_owned()),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n == "list_namespaces" || n == "load_table"),
        "{names:?}"
    );
    // Raised to mcp:write by the override: hidden from a read key, like a missing tool.
    assert!(!names.contains(&"namespace_exists".to_owned()), "{names:?}");
    assert!(names.iter().any(|n| n == "get_request"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("count")), "{names:?}");

    let tools = read.list_all_tools().await.unwrap();
    let list = tools
        .iter()
        .find(|t| t.name == "list_iceberg_namespaces")
        .unwrap();
    assert_eq!(
        list.description.as_deref(),
        Some("Namespaces of the warehouse.")
    );
    assert!(list.output_schema.is_some());

    let out = mcp::call_ok(
        &read,
        "list_iceberg_namespaces",
        json!({ "prefix": "warehouse", "pageSize": 10, "parent": "a" }),
    )
    .await;
    assert_eq!(out["namespaces"], json!([["accounting"]]));
    {
        let got = seen.lock().unwrap().pop().unwrap();
        assert_eq!(got["method"], "GET");
        assert_eq!(got["path"], "/catalog/v1/warehouse/namespaces");
        assert_eq!(got["query"], "pageSize=10&parent=a");
        // The caller's credential never reaches the upstream; Portcullis's identity does.
        assert_eq!(got["headers"].get("authorization"), None);
        assert!(got["headers"].get("x-portcullis-identity").is_some());
    }

    let write = mcp::connect(
        &server,
        &server
            .api_key(&admin, org, "mcp:read mcp:write mcp:admin")
            .await,
        Some(org),
    )
    .await;
    mcp::call_ok(
        &write,
        "create_namespace",
        json!({
            "prefix": "wh",
            "namespace": ["accounting", "tax"],
            "properties": { "owner": "Hank" },
            "Idempotency-Key": "8a1b3c3e-7f4e-4c71-9b0a-2f0d6a3e1c55"
        }),
    )
    .await;
    {
        let got = seen.lock().unwrap().pop().unwrap();
        assert_eq!(got["method"], "POST");
        assert_eq!(got["path"], "/catalog/v1/wh/namespaces");
        assert_eq!(
            got["body"],
            json!({ "namespace": ["accounting", "tax"], "properties": { "owner": "Hank" } })
        );
        assert_eq!(
            got["headers"]["idempotency-key"],
            "8a1b3c3e-7f4e-4c71-9b0a-2f0d6a3e1c55"
        );
    }

    let result = mcp::call(
        &write,
        "namespace_exists",
        json!({ "prefix": "wh", "namespace": "tax" }),
    )
    .await
    .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(seen.lock().unwrap().pop().unwrap()["method"], "HEAD");

    // DELETE is destructive: nothing is sent without "confirm": true.
    let before = seen.lock().unwrap().len();
    let args = json!({ "prefix": "wh", "namespace": "tax", "table": "t1", "purgeRequested": true });
    let refused = mcp::call(&write, "drop_table", args.clone()).await.unwrap();
    assert_eq!(refused.is_error, Some(true));
    assert_eq!(seen.lock().unwrap().len(), before);
    let mut confirmed = args;
    confirmed["confirm"] = json!(true);
    mcp::call(&write, "drop_table", confirmed).await.unwrap();
    {
        let got = seen.lock().unwrap().pop().unwrap();
        assert_eq!(got["method"], "DELETE");
        assert_eq!(got["path"], "/catalog/v1/wh/namespaces/tax/tables/t1");
        assert_eq!(got["query"], "purgeRequested=true");
    }

    // Overseerr has no operationIds: names come from the method and path.
    mcp::call(
        &write,
        "post_request_request_id_status",
        json!({ "requestId": "7", "status": "approve" }),
    )
    .await
    .unwrap();
    {
        let got = seen.lock().unwrap().pop().unwrap();
        assert_eq!(got["method"], "POST");
        assert_eq!(got["path"], "/api/v1/request/7/approve");
    }

    // Invalid arguments name the argument and send nothing.
    let before = seen.lock().unwrap().len();
    let bad = mcp::call(
        &write,
        "create_namespace",
        json!({ "prefix": "wh", "namespace": "tax" }),
    )
    .await
    .unwrap();
    assert_eq!(bad.is_error, Some(true));
    let text = bad.content[0].as_text().unwrap().text.clone();
    assert!(text.contains("namespace must be of type array"), "{text}");
    assert_eq!(seen.lock().unwrap().len(), before);
    server.stop().await;
}

#[test]
fn the_cli_prints_a_catalog_that_loads_and_overrides_that_name_nothing_are_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "catalog",
            "import",
            &shared("overseerr-api.yml"),
            "--upstream",
            "overseerr",
            "--base-url",
            "http://127.0.0.1:5055/api/v1",
            "--include-tag",
            "request",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("openapi = \""), "{text}");
    assert!(text.contains("include_tags = [\"request\"]"), "{text}");
    assert!(
        text.contains("id = \"POST /request/{requestId}/{status}\""),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.toml");
    let catalog = portcullis::gateway::catalog::parse(&path, &text, &|_| None).unwrap();
    assert!(
        catalog
            .tools
            .iter()
            .any(|t| t.name == "post_request_request_id_status")
    );

    let bad = format!("{text}\n[[operation]]\nupstream = \"overseerr\"\nid = \"nope\"\n");
    let err = portcullis::gateway::catalog::parse(&path, &bad, &|_| None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("operation.id") && err.contains("nope"),
        "{err}"
    );
}

#[tokio::test]
async fn a_reload_reads_the_document_again_and_a_broken_one_keeps_the_tools() {
    let dir = tempfile::tempdir().unwrap();
    let doc = |extra: bool| {
        let mut paths = json!({
            "/contacts/{id}": { "get": { "operationId": "getContact", "summary": "One contact.",
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": { "200": { "description": "ok" } } } }
        });
        if extra {
            paths["/deals"] = json!({ "get": { "operationId": "listDeals", "summary": "Deals.",
                "responses": { "200": { "description": "ok" } } } });
        }
        json!({ "openapi": "3.1.0", "info": { "title": "CRM", "version": "1" }, "paths": paths })
            .to_string()
    };
    std::fs::write(dir.path().join("crm.json"), doc(false)).unwrap();
    let path = dir.path().join("catalog.toml");
    std::fs::write(
        &path,
        "[[upstream]]\nname = \"crm\"\nbase_url = \"http://127.0.0.1:9/api\"\nopenapi = \"crm.json\"\n",
    )
    .unwrap();
    let server = TestServer::start_with(|c| c.catalog = Some(path)).await;
    let names = || {
        server
            .state
            .tools
            .current()
            .names()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(names().contains(&"get_contact".to_owned()));
    assert!(!names().contains(&"list_deals".to_owned()));

    std::fs::write(dir.path().join("crm.json"), doc(true)).unwrap();
    server.state.reload_catalog().unwrap();
    assert!(names().contains(&"list_deals".to_owned()));

    std::fs::write(dir.path().join("crm.json"), "{ not json").unwrap();
    let err = server.state.reload_catalog().unwrap_err().to_string();
    assert!(
        err.contains("catalog.toml") && err.contains("crm.json"),
        "{err}"
    );
    assert!(
        names().contains(&"list_deals".to_owned()),
        "the previous tools stay"
    );
    server.stop().await;
}
