//! The gateway end to end: a real upstream HTTP API on loopback that checks
//! the identity JWT against Portcullis's JWKS and echoes what it received.

mod common;
#[path = "common/mcp.rs"]
mod mcp;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use common::TestServer;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portcullis::identity::scope::Role;
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Upstream {
    /// Portcullis's base URL, known once it has started.
    issuer: Arc<OnceLock<String>>,
    base: Arc<OnceLock<String>>,
    received: Arc<Mutex<Vec<Value>>>,
}

impl Upstream {
    fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

/// Verifies the identity JWT the way a team's API would: against `/jwks.json`.
async fn verify_identity(upstream: &Upstream, headers: &HeaderMap) -> Result<Value, String> {
    let token = headers
        .get("x-portcullis-identity")
        .ok_or("no identity header")?
        .to_str()
        .map_err(|e| e.to_string())?;
    let issuer = upstream.issuer.get().ok_or("issuer unknown")?;
    let jwks: Value = reqwest::get(format!("{issuer}/jwks.json"))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let kid = jsonwebtoken::decode_header(token)
        .map_err(|e| e.to_string())?
        .kid
        .ok_or("no kid")?;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .ok_or("unknown kid")?;
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[upstream.base.get().unwrap()]);
    validation.set_issuer(&[issuer]);
    let data =
        jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| e.to_string())?;
    Ok(data.claims)
}

async fn handle(State(upstream): State<Upstream>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let path = parts.uri.path().to_owned();
    let claims = match verify_identity(&upstream, &parts.headers).await {
        Ok(c) => c,
        Err(e) => {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({ "message": format!("identity rejected: {e}") })),
            )
                .into_response();
        }
    };
    let record = json!({
        "method": parts.method.as_str(),
        "path": path,
        "query": parts.uri.query(),
        "body": serde_json::from_slice::<Value>(&body).ok(),
        "claims": claims,
        "authorization": parts.headers.get("authorization").map(|v| v.to_str().unwrap().to_owned()),
        "user_id": parts.headers.get("x-portcullis-user-id").map(|v| v.to_str().unwrap().to_owned()),
        "org_id": parts.headers.get("x-portcullis-org-id").map(|v| v.to_str().unwrap().to_owned()),
        "service_key": parts.headers.get("x-service-key").map(|v| v.to_str().unwrap().to_owned()),
    });
    upstream.received.lock().unwrap().push(record.clone());
    match path.as_str() {
        "/api/missing" => (
            StatusCode::NOT_FOUND,
            Json(json!({ "message": "No such contact" })),
        )
            .into_response(),
        "/api/busy" => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "7")],
            "slow down",
        )
            .into_response(),
        "/api/boom" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "panic at db.internal:5432 in query_contacts",
        )
            .into_response(),
        "/api/text" => ([("content-type", "text/plain")], "plain words").into_response(),
        "/api/slow" => {
            // The scenario itself: an upstream slower than its configured timeout.
            tokio::time::sleep(Duration::from_secs(5)).await;
            Json(json!({})).into_response()
        }
        _ => Json(record).into_response(),
    }
}

async fn start_upstream() -> Upstream {
    let upstream = Upstream::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!(
        "http://127.0.0.1:{}/api",
        listener.local_addr().unwrap().port()
    );
    upstream.base.set(base).unwrap();
    let app = Router::new().fallback(handle).with_state(upstream.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    upstream
}

fn catalog(base: &str) -> String {
    format!(
        r#"
[[upstream]]
name = "crm"
base_url = "{base}"
timeout = "1s"
headers_from_env = {{ "X-Service-Key" = "PORTCULLIS_TEST_CRM_KEY" }}

[[tool]]
name = "get_contact"
description = "Get a contact."
upstream = "crm"
method = "GET"
path = "/contacts/{{id}}"
input_schema = {{ type = "object", properties = {{ id = {{ type = "string" }}, fields = {{ type = "array", items = {{ type = "string" }} }} }}, required = ["id"], additionalProperties = false }}

[[tool]]
name = "create_contact"
description = "Create a contact."
upstream = "crm"
method = "POST"
path = "/contacts"
input_schema = {{ type = "object", properties = {{ name = {{ type = "string", minLength = 1 }}, age = {{ type = "integer" }} }}, required = ["name"] }}

[[tool]]
name = "delete_contact"
description = "Delete a contact."
upstream = "crm"
method = "DELETE"
path = "/contacts/{{id}}"
input_schema = {{ type = "object", properties = {{ id = {{ type = "string" }} }}, required = ["id"] }}

[[tool]]
name = "merge_contacts"
alias = "crm_merge"
description = "Merge contacts."
upstream = "crm"
method = "POST"
path = "/contacts/{{into}}/merge"
scope = "mcp:write"
input_schema = {{ type = "object", properties = {{ into = {{ type = "string" }} }}, required = ["into"] }}

[[tool]]
name = "export_contacts"
description = "Disabled."
upstream = "crm"
method = "GET"
path = "/export"
enabled = false

[[tool]]
name = "get_missing"
description = "Always 404."
upstream = "crm"
method = "GET"
path = "/missing"

[[tool]]
name = "get_busy"
description = "Always 429."
upstream = "crm"
method = "GET"
path = "/busy"

[[tool]]
name = "get_boom"
description = "Always 500."
upstream = "crm"
method = "GET"
path = "/boom"

[[tool]]
name = "get_text"
description = "Plain text."
upstream = "crm"
method = "GET"
path = "/text"

[[tool]]
name = "get_slow"
description = "Slower than the timeout."
upstream = "crm"
method = "GET"
path = "/slow"
"#
    )
}

struct Setup {
    server: TestServer,
    upstream: Upstream,
    org: uuid::Uuid,
    admin: common::TestUser,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    // PORTCULLIS_TEST_CRM_KEY comes from .cargo/config.toml.
    assert_eq!(
        std::env::var("PORTCULLIS_TEST_CRM_KEY").as_deref(),
        Ok("service-secret")
    );
    let upstream = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.toml");
    std::fs::write(&path, catalog(upstream.base.get().unwrap())).unwrap();
    let server = TestServer::start_with(|c| c.catalog = Some(path)).await;
    upstream.issuer.set(server.base.clone()).unwrap();
    let org = server.org("Acme").await;
    let admin = server.user(org, Role::Admin).await;
    Setup {
        server,
        upstream,
        org,
        admin,
        _dir: dir,
    }
}

#[tokio::test]
async fn each_scope_sees_its_subset_of_catalog_tools() {
    let s = setup().await;
    let gateway = |names: Vec<String>| {
        names
            .into_iter()
            .filter(|n| n.contains("contact") || n.starts_with("crm_"))
            .collect::<Vec<_>>()
    };
    let read = mcp::connect(
        &s.server,
        &s.server.api_key(&s.admin, s.org, "mcp:read").await,
        Some(s.org),
    )
    .await;
    assert_eq!(gateway(mcp::tool_names(&read).await), ["get_contact"]);
    let write = mcp::connect(
        &s.server,
        &s.server
            .api_key(&s.admin, s.org, "mcp:read mcp:write")
            .await,
        Some(s.org),
    )
    .await;
    assert_eq!(
        gateway(mcp::tool_names(&write).await),
        ["get_contact", "create_contact", "crm_merge"]
    );
    let admin = mcp::connect(
        &s.server,
        &s.server
            .api_key(&s.admin, s.org, "mcp:read mcp:write mcp:admin")
            .await,
        Some(s.org),
    )
    .await;
    let names = mcp::tool_names(&admin).await;
    assert_eq!(
        gateway(names.clone()),
        [
            "get_contact",
            "create_contact",
            "delete_contact",
            "crm_merge"
        ]
    );
    assert!(
        !names.contains(&"export_contacts".to_owned())
            && !names.contains(&"merge_contacts".to_owned())
    );
    // A hidden catalog tool answers like a nonexistent one, and nothing is sent.
    let hidden = mcp::call_err(&read, "create_contact").await;
    let missing = mcp::call_err(&read, "no_such_tool").await;
    assert_eq!(
        (hidden.code, hidden.message),
        (missing.code, missing.message)
    );
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn calls_map_to_paths_queries_and_bodies_with_a_verifiable_identity() {
    let s = setup().await;
    let key = s
        .server
        .api_key(&s.admin, s.org, "mcp:read mcp:write mcp:admin")
        .await;
    let client = mcp::connect(&s.server, &key, Some(s.org)).await;

    let got = mcp::call_ok(
        &client,
        "get_contact",
        json!({ "id": "a b/c", "fields": ["email", "name"] }),
    )
    .await;
    assert_eq!(got["method"], "GET");
    assert_eq!(got["path"], "/api/contacts/a%20b%2Fc");
    assert_eq!(got["query"], "fields=email&fields=name");
    let claims = &got["claims"];
    assert_eq!(claims["sub"], s.admin.id.to_string().as_str());
    assert_eq!(claims["org_id"], s.org.to_string().as_str());
    assert_eq!(claims["source"], "mcp-bearer");
    assert_eq!(claims["scope"], "mcp:read mcp:write mcp:admin");
    assert!(claims["api_key_id"].is_string());
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 60);
    assert_eq!(got["user_id"], s.admin.id.to_string().as_str());
    assert_eq!(got["org_id"], s.org.to_string().as_str());
    assert_eq!(got["service_key"], "service-secret");
    // The caller's API key never reaches the upstream.
    assert_eq!(got["authorization"], Value::Null);

    let created = mcp::call_ok(
        &client,
        "create_contact",
        json!({ "name": "Ada", "age": 36 }),
    )
    .await;
    assert_eq!(
        (created["method"].as_str(), created["path"].as_str()),
        (Some("POST"), Some("/api/contacts"))
    );
    assert_eq!(created["body"], json!({ "name": "Ada", "age": 36 }));

    let merged = mcp::call_ok(&client, "crm_merge", json!({ "into": "42" })).await;
    assert_eq!(merged["path"], "/api/contacts/42/merge");

    // Destructive: without confirm nothing is sent; with it, confirm is not forwarded.
    let before = s.upstream.count();
    let refused = mcp::call(&client, "delete_contact", json!({ "id": "42" }))
        .await
        .unwrap();
    assert_eq!(refused.is_error, Some(true));
    assert_eq!(s.upstream.count(), before);
    let deleted = mcp::call_ok(
        &client,
        "delete_contact",
        json!({ "id": "42", "confirm": true }),
    )
    .await;
    assert_eq!(
        (deleted["method"].as_str(), deleted["query"].as_str()),
        (Some("DELETE"), None)
    );

    // OAuth callers are identified as such.
    let tokens = s.server.oauth_tokens(&s.admin, "mcp:read").await;
    let oauth = mcp::connect(&s.server, &tokens.access_token, None).await;
    let got = mcp::call_ok(&oauth, "get_contact", json!({ "id": "1" })).await;
    assert_eq!(got["claims"]["source"], "mcp-oauth");
    assert_eq!(got["claims"]["client_id"], tokens.client_id.as_str());
    assert_eq!(got["authorization"], Value::Null);
}

#[tokio::test]
async fn invalid_arguments_name_the_field_and_send_nothing() {
    let s = setup().await;
    let key = s
        .server
        .api_key(&s.admin, s.org, "mcp:read mcp:write")
        .await;
    let client = mcp::connect(&s.server, &key, Some(s.org)).await;
    for (tool, args, field) in [
        ("create_contact", json!({}), "name is required"),
        (
            "create_contact",
            json!({ "name": "A", "age": "old" }),
            "age must be of type integer",
        ),
        (
            "get_contact",
            json!({ "id": "1", "extra": true }),
            "extra is not an accepted argument",
        ),
    ] {
        let result = mcp::call(&client, tool, args).await.unwrap();
        assert_eq!(result.is_error, Some(true));
        let text = result.content[0].as_text().unwrap().text.clone();
        assert!(text.contains(field), "{text}");
    }
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn upstream_failures_map_to_readable_results_and_backoff() {
    let s = setup().await;
    let key = s.server.api_key(&s.admin, s.org, "mcp:read").await;
    let client = mcp::connect(&s.server, &key, Some(s.org)).await;
    let text = |r: rmcp::model::CallToolResult| r.content[0].as_text().unwrap().text.clone();

    let missing = mcp::call(&client, "get_missing", json!({})).await.unwrap();
    assert_eq!(missing.is_error, Some(true));
    assert_eq!(text(missing), "Error (404): No such contact");

    let boom = mcp::call(&client, "get_boom", json!({})).await.unwrap();
    let message = text(boom);
    assert!(
        message.starts_with("Error (500)") && !message.contains("db.internal"),
        "{message}"
    );

    let plain = mcp::call(&client, "get_text", json!({})).await.unwrap();
    assert_ne!(plain.is_error, Some(true));
    assert_eq!(text(plain), "plain words");

    let slow = mcp::call(&client, "get_slow", json!({})).await.unwrap();
    assert_eq!(slow.is_error, Some(true));
    assert!(text(slow).contains("did not answer within 1 s"));

    // An upstream 429 is HTTP 503 with Retry-After, not a token failure.
    let response = mcp::post(
        &s.server,
        Some(&key),
        Some(s.org),
        &mcp::tools_call(9, "get_busy", json!({})),
    )
    .await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "7");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], 9);
    assert_eq!(body["error"]["data"]["retry_after"], 7);

    // Every gateway call is audited with the upstream status.
    let audited = mcp::eventually(Duration::from_secs(5), || async {
        let calls = s
            .server
            .state
            .store
            .tool_calls(
                s.org,
                &portcullis::store::ToolCallFilter {
                    limit: 50,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let statuses: HashMap<String, Option<i64>> = calls
            .into_iter()
            .map(|c| (c.tool, c.upstream_status))
            .collect();
        statuses.get("get_missing") == Some(&Some(404))
            && statuses.get("get_busy") == Some(&Some(429))
            && statuses.get("get_slow") == Some(&None)
    })
    .await;
    assert!(
        audited,
        "gateway calls were not audited with their upstream status"
    );
}
