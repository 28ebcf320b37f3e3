//! Limits shared across instances through Redis (`redis_url`): a burst sent
//! through two instances of one deployment together gets exactly the
//! configured budget, with the same `Retry-After` answers as one instance;
//! when Redis does not answer, rate limits fail open and sign-in fails
//! closed.
//!
//! Needs Redis at `PORTCULLIS_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`; `scripts/test` starts it). Each test uses its
//! own key prefix, so tests running at once never share a counter. Runs on
//! both databases: the two instances share the test's database.

mod common;
#[path = "common/mcp.rs"]
mod mcp;

use common::TestServer;
use portcullis::{Config, identity::scope::Role};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

fn redis_url() -> String {
    std::env::var("PORTCULLIS_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into())
}

/// Two instances of one deployment: same database, keys and Redis prefix.
async fn pair(configure: impl Fn(&mut Config) + Clone) -> (TestServer, TestServer) {
    let prefix = format!("portcullis-test-{}", Uuid::new_v4().simple());
    let first = configure.clone();
    let first_prefix = prefix.clone();
    let a = TestServer::start_with(move |c| {
        c.redis_url = Some(redis_url());
        // A loaded CI machine can take longer than the default 100 ms, and
        // a decision made without Redis would let the burst through.
        c.redis_timeout_ms = 5_000;
        c.redis_key_prefix = first_prefix;
        first(c);
    })
    .await;
    let shared = a.state.config.clone();
    let b = TestServer::start_with(move |c| {
        c.public_url = shared.public_url.clone();
        c.database_url = shared.database_url.clone();
        c.keys_dir = shared.keys_dir.clone();
        c.redis_url = shared.redis_url.clone();
        c.redis_key_prefix = prefix;
        c.redis_timeout_ms = shared.redis_timeout_ms;
        configure(c);
    })
    .await;
    (a, b)
}

/// `whoami` through `server` with an API key, addressed as `a`'s host (the
/// deployment's public host).
async fn whoami(server: &TestServer, a: &TestServer, key: &str, org: Uuid) -> reqwest::Response {
    server
        .http
        .post(server.resource())
        .header("Host", a.base.trim_start_matches("http://"))
        .header("Accept", "application/json, text/event-stream")
        .header("X-Organization-Id", org.to_string())
        .bearer_auth(key)
        .json(&mcp::tools_call(1, "whoami", json!({})))
        .send()
        .await
        .unwrap()
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .expect("a refusal says when to retry")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_burst_through_two_instances_gets_exactly_the_tool_budget() {
    // Five calls, then one a minute: no token comes back during the test.
    let (a, b) = pair(|c| {
        c.rate_limit.burst = 5;
        c.rate_limit.per_minute = 1;
    })
    .await;
    let org = a.org("Acme").await;
    let user = a.user(org, Role::Member).await;
    let key = a.api_key(&user, org, "mcp:read").await;

    let burst = (0..20).map(|i| {
        let server = if i % 2 == 0 { &a } else { &b };
        whoami(server, &a, &key, org)
    });
    let answers = futures::future::join_all(burst).await;
    let mut ok = 0;
    for response in answers {
        match response.status() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let wait = retry_after(&response);
                assert!((1..=60).contains(&wait), "Retry-After {wait}");
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"]["data"]["error"], "rate_limited");
                assert_eq!(body["error"]["data"]["retry_after"], json!(wait));
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 5, "two instances together allow the configured burst");
}

#[tokio::test]
async fn registrations_from_one_address_share_one_budget() {
    let (a, b) = pair(|c| c.registrations_per_ip_per_hour = 3).await;
    let mut created = 0;
    for i in 0..8 {
        let server = if i % 2 == 0 { &a } else { &b };
        let response = server
            .register(json!({ "client_name": "Burst", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none" }))
            .await;
        match response.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(retry_after(&response) >= 1);
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"], "too_many_requests");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(created, 3);
}

#[tokio::test]
async fn failed_sign_ins_on_either_instance_count_towards_one_throttle() {
    let (a, b) = pair(|_| {}).await;
    let org = a.org("Acme").await;
    let user = a.user(org, Role::Member).await;
    // Five free failures from this address, spread over both instances.
    for i in 0..5 {
        let server = if i % 2 == 0 { &a } else { &b };
        let status = server
            .sign_in(&server.browser(), &user.email, "guess")
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "failure {i}");
    }
    for server in [&a, &b] {
        let response = server
            .sign_in_then(&server.browser(), &user.email, &user.password, "/")
            .await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait = retry_after(&response);
        assert!((1..=30).contains(&wait), "Retry-After {wait}");
    }
}

#[tokio::test]
async fn without_redis_rate_limits_open_and_sign_in_closes() {
    // Nothing listens on port 1: every Redis call fails at once.
    let server = TestServer::start_with(|c| {
        c.redis_url = Some("redis://127.0.0.1:1".into());
        c.rate_limit.burst = 1;
        c.rate_limit.per_minute = 1;
    })
    .await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let key = server.api_key(&user, org, "mcp:read").await;
    for _ in 0..3 {
        assert_eq!(
            whoami(&server, &server, &key, org).await.status(),
            StatusCode::OK,
            "rate limits fail open"
        );
    }
    let response = server
        .sign_in_then(&server.browser(), &user.email, &user.password, "/")
        .await;
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "sign-in fails closed"
    );
    assert_eq!(retry_after(&response), 5);

    let ready = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["redis"], "unreachable");
    assert_eq!(body["checks"]["database"], "ok");

    let metrics = server.state.metrics.render(&server.state);
    assert!(
        metrics.contains("portcullis_redis_unavailable_total{limit=\"tool\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("portcullis_redis_unavailable_total{limit=\"sign_in\"} 1"));
}

#[tokio::test]
async fn readiness_names_redis_when_configured() {
    let (a, _b) = pair(|_| {}).await;
    let body: Value = a
        .http
        .get(a.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({ "status": "ready", "checks": { "database": "ok", "redis": "ok" } })
    );
}
