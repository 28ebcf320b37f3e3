//! What operators see: Prometheus metrics on their own listener, with
//! bounded labels, counting what the server does.

mod common;
#[path = "common/mcp.rs"]
mod mcp;

use common::TestServer;
use portcullis::identity::scope::Role;
use reqwest::header;

#[tokio::test]
async fn metrics_count_requests_on_their_own_listener_with_bounded_labels() {
    let server = TestServer::start_with(|c| {
        c.rate_limit.burst = 2;
        c.rate_limit.per_minute = 1;
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_url = format!("http://{}/metrics", listener.local_addr().unwrap());
    tokio::spawn(portcullis::metrics::serve(listener, server.state.clone()));

    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let key = server.api_key(&user, org, "mcp:read").await;
    for id in 0..3 {
        let r = mcp::post(&server, Some(&key), Some(org), &mcp::tools_list(id)).await;
        assert_eq!(r.status(), 200);
    }
    for id in 0..3 {
        mcp::post(
            &server,
            Some(&key),
            Some(org),
            &mcp::tools_call(id, "whoami", serde_json::json!({})),
        )
        .await;
    }
    // Refused authentications, by reason.
    mcp::post(
        &server,
        Some("pcl_nope_nope"),
        Some(org),
        &mcp::tools_list(9),
    )
    .await;
    mcp::post(&server, None, None, &mcp::tools_list(9)).await;
    // Distinct raw paths must not become distinct label values.
    for n in 0..5 {
        server
            .http
            .get(server.url(&format!("/nothing/{n}")))
            .send()
            .await
            .unwrap();
    }

    let response = reqwest::get(&metrics_url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    for line in [
        r#"portcullis_http_requests_total{method="POST",route="/mcp",status="200"} 5"#,
        r#"portcullis_http_requests_total{method="POST",route="/mcp",status="401"} 2"#,
        r#"portcullis_http_requests_total{method="POST",route="/mcp",status="429"} 1"#,
        r#"portcullis_http_requests_total{method="GET",route="unmatched",status="404"} 5"#,
        r#"portcullis_mcp_requests_total{method="tools/list"} 3"#,
        r#"portcullis_mcp_requests_total{method="tools/call"} 3"#,
        r#"portcullis_rate_limited_total{limit="tool"} 1"#,
        r#"portcullis_tool_calls_total{outcome="ok",source="mcp-bearer",tool="whoami"} 2"#,
        r#"portcullis_tool_calls_total{outcome="rate_limited",source="mcp-bearer",tool="whoami"} 1"#,
        r#"portcullis_auth_failures_total{reason="unknown_key"} 1"#,
        r#"portcullis_auth_failures_total{reason="missing"} 1"#,
        r#"portcullis_build_info{version=""#,
        "portcullis_http_request_duration_seconds_bucket",
        r#"portcullis_db_pool_connections{state="idle"}"#,
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert!(!text.contains("/nothing/"), "raw paths leaked into labels");
    assert!(!text.contains(&key), "a secret reached the metrics");

    // Never on the public listener.
    let public = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_callers_well_formed_one_is_kept() {
    let server = TestServer::start().await;
    let fresh = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    let id = fresh.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let other = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_ne!(other.headers()["x-request-id"], id.as_str());

    let kept = server
        .http
        .get(server.url("/nothing-here"))
        .header("x-request-id", "trace-42.a:b_c")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "trace-42.a:b_c");

    // Anything that could forge a log line is replaced.
    for bad in ["a b", "x\"y", &"z".repeat(200)] {
        let replaced = server
            .http
            .get(server.url("/healthz"))
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let echoed = replaced.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(echoed, bad);
        assert_eq!(echoed.len(), 36);
    }
}

#[tokio::test]
async fn readiness_names_its_checks_and_turns_503_when_shutdown_begins() {
    let server = TestServer::start().await;
    let ready = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "ready", "checks": {"database": "ok"}})
    );
    // What the shutdown signal sets first, before connections drain.
    server
        .state
        .draining
        .store(true, std::sync::atomic::Ordering::Release);
    let draining = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(draining.status(), 503);
    let body: serde_json::Value = draining.json().await.unwrap();
    assert_eq!(body["status"], "shutting_down");
}

#[tokio::test]
async fn shutdown_waits_no_longer_than_the_grace_for_requests_in_progress() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start_with(|c| {
        c.shutdown_grace = std::time::Duration::from_millis(500);
        c.header_read_timeout = std::time::Duration::from_secs(60);
    })
    .await;
    // A request whose head never completes keeps its connection busy.
    let mut held = tokio::net::TcpStream::connect(server.state.config.listen)
        .await
        .unwrap();
    held.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    server.stop().await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "stopped after {:?}",
        started.elapsed()
    );
}
