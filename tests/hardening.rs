//! Stories of an attacker who sends what the store cannot hold, holds
//! connections open, or tries to fill the database — and of the legitimate
//! users who must keep being served (README "Limits and hardening").

mod common;
#[path = "common/mcp.rs"]
mod mcp;

use std::time::{Duration, Instant};

use base64::Engine;
use common::{CALLBACK, TestServer};
use portcullis::{
    identity::scope::Role,
    mcp::audit::AuditLog,
    store::{ToolCall, ToolCallFilter},
};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use uuid::Uuid;

fn all_calls() -> ToolCallFilter {
    ToolCallFilter {
        limit: 1000,
        ..Default::default()
    }
}

async fn oauth_error(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "an RFC 6749 JSON error"
    );
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn nul_in_oauth_parameters_gets_the_endpoints_json_error_not_a_500() {
    let server = TestServer::start().await;
    for path in ["/token", "/revoke", "/introspect"] {
        let response = server
            .http
            .post(server.url(path))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&token=abc&client_id=a%00b&client_secret=s")
            .send()
            .await
            .unwrap();
        assert_eq!(
            oauth_error(response).await,
            (StatusCode::BAD_REQUEST, "invalid_request".into()),
            "{path}"
        );
    }
    let response = server
        .http
        .get(server.url("/userinfo?access_token=a%00b"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        oauth_error(response).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    // RFC 6749 §2.3.1: Basic credentials are form-encoded before base64.
    let basic = base64::engine::general_purpose::STANDARD.encode("a%00b:secret");
    let response = server
        .http
        .post(server.url("/token"))
        .header(header::AUTHORIZATION, format!("Basic {basic}"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        oauth_error(response).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    let response = server
        .register(json!({ "client_name": "a\u{0}b", "redirect_uris": [CALLBACK] }))
        .await;
    assert_eq!(
        oauth_error(response).await,
        (StatusCode::BAD_REQUEST, "invalid_client_metadata".into())
    );
    // The same endpoints still work for ordinary input.
    server.register_public(&[CALLBACK]).await;
}

#[tokio::test]
async fn nul_on_pages_gets_a_readable_page() {
    let server = TestServer::start().await;
    let browser = server.browser();
    let pages = [
        browser
            .post(server.url("/login"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("email=a%00b&password=whatever&csrf=x"),
        browser.get(server.url("/authorize?client_id=a%00b&response_type=code")),
        browser
            .post(server.url("/console/keys"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("name=a%00b&org=x&csrf=x"),
        browser.get(server.url("/console/activity?tool=a%00b")),
        browser
            .post(server.url("/consent"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("client_id=a%00b&csrf=x"),
    ];
    for request in pages {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(response.text().await.unwrap().contains("not allowed"));
    }
}

/// PostgreSQL refused a NUL in a tool name and the whole audit batch with it.
#[tokio::test]
async fn a_tool_name_with_nul_is_recorded_and_costs_no_other_record() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let viewer = server.user(org, Role::Viewer).await;
    let key = server.api_key(&viewer, org, "mcp:read").await;
    let poisoned = mcp::post(
        &server,
        Some(&key),
        Some(org),
        &mcp::tools_call(1, "x\u{0}", json!({})),
    )
    .await;
    assert_eq!(poisoned.status(), StatusCode::OK);
    let long_name = "n".repeat(60_000);
    mcp::post(
        &server,
        Some(&key),
        Some(org),
        &mcp::tools_call(2, &long_name, json!({})),
    )
    .await;
    let client = mcp::connect(&server, &key, Some(org)).await;
    mcp::call_ok(&client, "whoami", json!({})).await;
    let filtered = mcp::call(&client, "list_tool_calls", json!({"tool": "a\u{0}"}))
        .await
        .unwrap();
    assert_eq!(
        filtered.is_error,
        Some(true),
        "refused, not a store failure"
    );
    server.state.audit.flush().await;

    let calls = server
        .state
        .store
        .tool_calls(org, &all_calls())
        .await
        .unwrap();
    let tools: Vec<&str> = calls.iter().map(|c| c.tool.as_str()).collect();
    assert_eq!(calls.len(), 4, "{tools:?}");
    assert!(tools.contains(&"x\u{FFFD}"));
    assert!(tools.contains(&"whoami"));
    let capped = calls.iter().find(|c| c.tool.starts_with('n')).unwrap();
    assert_eq!(capped.tool.chars().count(), 200, "stored names are capped");
    assert_eq!(server.state.audit.lost(), 0);
}

fn record(org: Uuid, tool: &str) -> ToolCall {
    ToolCall {
        id: Uuid::new_v4(),
        at: portcullis::store::now(),
        org_id: org,
        user_id: Uuid::new_v4(),
        source: "mcp-bearer".into(),
        client_id: None,
        api_key_id: Some("k".into()),
        tool: tool.into(),
        outcome: "ok".into(),
        duration_ms: 1,
        upstream_status: None,
        detail: None,
    }
}

#[tokio::test]
async fn a_batch_the_database_refuses_is_written_record_by_record() {
    let server = TestServer::start().await;
    let org = Uuid::new_v4();
    let audit = AuditLog::start(server.state.store.clone());
    let good: Vec<ToolCall> = (0..50).map(|i| record(org, &format!("t{i}"))).collect();
    // A record the database refuses even after its text is made storable:
    // a second row with an existing primary key.
    let mut refused = record(org, "duplicate");
    refused.id = good[10].id;
    for (i, call) in good.iter().enumerate() {
        audit.record_call(call.clone());
        if i == 25 {
            audit.record_call(refused.clone());
            audit.record_call(record(org, "nul\u{0}name"));
        }
    }
    audit.flush().await;
    let stored = server
        .state
        .store
        .tool_calls(org, &all_calls())
        .await
        .unwrap();
    assert_eq!(stored.len(), 51, "every good record and the NUL one kept");
    assert_eq!(audit.lost(), 1, "the refused record is counted");
}

#[tokio::test]
async fn a_deletion_is_in_the_audit_before_its_answer_and_names_what_it_deleted() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let admin = server.user(org, Role::Admin).await;
    let admin_key = server.api_key(&admin, org, "mcp:admin").await;
    let doomed = server.api_key(&admin, org, "mcp:read").await;
    let doomed_id = doomed.split('_').nth(1).unwrap().to_owned();
    let client = mcp::connect(&server, &admin_key, Some(org)).await;
    mcp::call_ok(
        &client,
        "delete_api_key",
        json!({"id": doomed_id, "confirm": true}),
    )
    .await;
    // No flush: the record must already be in the store.
    let filter = ToolCallFilter {
        tool: Some("delete_api_key".into()),
        limit: 10,
        ..Default::default()
    };
    let calls = server.state.store.tool_calls(org, &filter).await.unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].outcome, "ok");
    let detail = calls[0].detail.as_deref().unwrap_or_default();
    assert!(detail.contains(&doomed_id), "{detail}");
    assert!(detail.contains("test key"), "{detail}");
}

#[tokio::test]
async fn registration_metadata_and_redirect_uris_are_bounded() {
    let server = TestServer::start().await;
    let big = format!("https://app.example/{}", "a".repeat(5000));
    let response = server
        .register(json!({ "redirect_uris": [CALLBACK], "client_uri": big }))
        .await;
    assert_eq!(
        oauth_error(response).await,
        (StatusCode::BAD_REQUEST, "invalid_client_metadata".into())
    );
    for uri in [
        "https://app.example/cb\r\nSet-Cookie: a=b",
        "https://app.example/c\tb",
    ] {
        let response = server.register(json!({ "redirect_uris": [uri] })).await;
        assert_eq!(
            oauth_error(response).await,
            (StatusCode::BAD_REQUEST, "invalid_redirect_uri".into()),
            "{uri:?}"
        );
    }
}

#[tokio::test]
async fn registrations_never_used_expire_and_used_ones_stay() {
    let server = TestServer::start_with(|c| c.unused_registration_ttl = Duration::ZERO).await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let unused = server.register_public(&[CALLBACK]).await;
    let used = server.oauth_tokens(&user, "mcp:read").await;
    let later = server.register_public(&[CALLBACK]).await;
    let store = &server.state.store;
    assert!(store.client(&unused.client_id).await.unwrap().is_none());
    assert!(store.client(&used.client_id).await.unwrap().is_some());
    assert!(store.client(&later.client_id).await.unwrap().is_some());
}

/// Reads until the peer closes; `None` if it is still open after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

/// A complete `GET /healthz` on a kept-alive connection.
async fn healthz(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"\r\n\r\nok") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "answered before closing");
        answer.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn a_slowloris_connection_is_closed_after_the_header_timeout() {
    let server = TestServer::start_with(|c| {
        c.header_read_timeout = Duration::from_millis(500);
        c.idle_timeout = Duration::from_secs(30);
    })
    .await;
    let addr = server.state.config.listen;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A byte every 100 ms keeps it busy but never completes the head.
    let trickle = async {
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if slow.write_all(b"X").await.is_err() {
                break;
            }
        }
    };
    let mut reader = TcpStream::connect(addr).await.unwrap();
    let (_, silent) = tokio::join!(trickle, closed_within(&mut reader, Duration::from_secs(5)));
    let silent = silent.expect("a connection that sends nothing is closed");
    assert!(silent >= Duration::from_millis(400), "{silent:?}");
    let slow_closed = closed_within(&mut slow, Duration::from_secs(1)).await;
    assert!(slow_closed.is_some(), "the trickling connection is closed");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let server = TestServer::start_with(|c| {
        c.header_read_timeout = Duration::from_secs(30);
        c.idle_timeout = Duration::from_millis(500);
    })
    .await;
    let mut stream = TcpStream::connect(server.state.config.listen)
        .await
        .unwrap();
    healthz(&mut stream).await;
    let idle = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("closed when idle");
    assert!(idle >= Duration::from_millis(400), "{idle:?}");
}

#[tokio::test]
async fn a_body_that_does_not_arrive_gets_an_answer_in_time() {
    let server = TestServer::start_with(|c| c.body_read_timeout = Duration::from_millis(500)).await;
    let mut stream = TcpStream::connect(server.state.config.listen)
        .await
        .unwrap();
    stream
        .write_all(
            b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type",
        )
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("answered before the client gives up")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // /mcp answers the same in JSON-RPC, not as "too large".
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let key = server.api_key(&user, org, "mcp:read").await;
    let mut stream = TcpStream::connect(server.state.config.listen)
        .await
        .unwrap();
    stream
        .write_all(
            format!(
                "POST /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\nX-Organization-Id: {org}\r\n\
                 Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n\
                 Content-Length: 100\r\n\r\n{{\"jsonrpc\"",
                server.state.config.listen
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("answered before the client gives up")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("-32600"), "{answer}");
}

#[tokio::test]
async fn held_connections_at_the_cap_do_not_keep_a_legitimate_client_out() {
    let server = TestServer::start_with(|c| {
        c.max_connections = 3;
        c.header_read_timeout = Duration::from_secs(60);
        c.idle_timeout = Duration::from_secs(60);
    })
    .await;
    let addr = server.state.config.listen;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // Served once, so certainly accepted and counted; then held idle.
        healthz(&mut stream).await;
        held.push(stream);
    }
    let started = Instant::now();
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        reqwest::Client::new().get(server.url("/healthz")).send(),
    )
    .await
    .expect("served long before any timeout frees a connection")
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        closed_within(&mut held[0], Duration::from_secs(5))
            .await
            .is_some(),
        "the connection idle longest made room"
    );
}
