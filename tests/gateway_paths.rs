//! A caller's value never changes which upstream route is called: each
//! placeholder value stays exactly one segment of the declared path, and
//! nothing a caller sends can change the upstream's scheme, host, port or
//! query (RFC 3986 §5.2.4 dot-segment removal is the trap).

mod common;
#[path = "common/mcp.rs"]
mod mcp;

use std::sync::{Arc, Mutex};

use axum::{Json, Router, extract::Request};
use common::TestServer;
use portcullis::identity::scope::Role;
use serde_json::json;

/// Records the raw request target of everything it receives.
async fn start_upstream() -> (String, Arc<Mutex<Vec<String>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&received);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!(
        "http://127.0.0.1:{}/api",
        listener.local_addr().unwrap().port()
    );
    let app = Router::new().fallback(move |request: Request| {
        let seen = Arc::clone(&seen);
        async move {
            let target = format!("{} {}", request.method(), request.uri());
            seen.lock().unwrap().push(target.clone());
            Json(json!({ "target": target }))
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, received)
}

#[tokio::test]
async fn placeholder_values_stay_one_segment_of_the_declared_route() {
    let (base, received) = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[upstream]]
name = "crm"
base_url = "{base}"

[[tool]]
name = "delete_contact"
description = "Delete a contact of an org."
upstream = "crm"
method = "DELETE"
path = "/orgs/{{org}}/contacts/{{id}}"
input_schema = {{ type = "object", properties = {{ org = {{ type = "string" }}, id = {{ type = "string" }} }}, required = ["org", "id"] }}

[[tool]]
name = "get_contact"
description = "Get a contact."
upstream = "crm"
method = "GET"
path = "/contacts/{{id}}"
input_schema = {{ type = "object", properties = {{ id = {{ type = "string" }} }}, required = ["id"] }}
"#
        ),
    )
    .unwrap();
    let server = TestServer::start_with(|c| c.catalog = Some(path)).await;
    let org = server.org("Acme").await;
    let admin = server.user(org, Role::Admin).await;
    let key = server
        .api_key(&admin, org, "mcp:read mcp:write mcp:admin")
        .await;
    let client = mcp::connect(&server, &key, Some(org)).await;

    // Dot segments, plain and encoded, in either placeholder: refused with
    // an isError naming the argument, and nothing is sent.
    for bad in [
        ".",
        "..",
        "%2e",
        "%2e%2e",
        "%2E%2e",
        ".%2e",
        "%2e.",
        "%252e%252e",
        "%25252e",
    ] {
        for (arg, args) in [
            ("id", json!({"org": "acme", "id": bad, "confirm": true})),
            ("org", json!({"org": bad, "id": "7", "confirm": true})),
        ] {
            let result = mcp::call(&client, "delete_contact", args).await.unwrap();
            assert_eq!(result.is_error, Some(true), "{bad:?} in {arg}");
            let text = serde_json::to_string(&result.content).unwrap();
            assert!(text.contains(arg), "{text}");
        }
        let result = mcp::call(&client, "get_contact", json!({"id": bad}))
            .await
            .unwrap();
        assert_eq!(result.is_error, Some(true), "{bad:?}");
    }
    assert!(
        received.lock().unwrap().is_empty(),
        "{:?}",
        received.lock().unwrap()
    );

    // Anything else is data in one segment: it can add no segment, query,
    // fragment, host or port.
    for (value, segment) in [
        ("a/b", "a%2Fb"),
        ("../x", "..%2Fx"),
        ("x?admin=1", "x%3Fadmin%3D1"),
        ("x#frag", "x%23frag"),
        ("@evil.example:80", "%40evil.example%3A80"),
        ("...", "..."),
        ("a b", "a%20b"),
        ("%2e%2e%2fsecret", "%252e%252e%252fsecret"),
        ("7", "7"),
    ] {
        received.lock().unwrap().clear();
        let result = mcp::call(&client, "get_contact", json!({"id": value}))
            .await
            .unwrap();
        assert_ne!(result.is_error, Some(true), "{value:?}");
        assert_eq!(
            received.lock().unwrap().as_slice(),
            [format!("GET /api/contacts/{segment}")],
            "{value:?}"
        );
    }
    received.lock().unwrap().clear();
    let result = mcp::call(
        &client,
        "delete_contact",
        json!({"org": "acme", "id": "x/../../y", "confirm": true}),
    )
    .await
    .unwrap();
    assert_ne!(result.is_error, Some(true));
    assert_eq!(
        received.lock().unwrap().as_slice(),
        ["DELETE /api/orgs/acme/contacts/x%2F..%2F..%2Fy"]
    );
}

#[test]
fn catalog_routes_cannot_carry_dot_segments_or_queries() {
    for bad_path in ["/a/../b", "/a/./b", "/a?x=1", "/a#f", "/a%2Fb", "/a b"] {
        let text = format!(
            r#"
[[upstream]]
name = "crm"
base_url = "http://127.0.0.1:9/api"

[[tool]]
name = "get_x"
description = "x"
upstream = "crm"
method = "GET"
path = "{bad_path}"
"#
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.toml");
        std::fs::write(&path, text).unwrap();
        let error = portcullis::gateway::catalog::load(&path, &|_| None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("tool.path"), "{bad_path}: {error}");
    }
}
