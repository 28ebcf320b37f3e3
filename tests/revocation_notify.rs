//! Revocation everywhere at once on PostgreSQL: a revocation made through one
//! instance is announced with `LISTEN/NOTIFY` and refused by the other on
//! receipt, long before its revocation poll; a listener whose connection
//! drops reconnects and resyncs what it missed.
//!
//! SQLite serves one instance per file, so there is nothing to announce:
//! these tests say so and pass without running there, and run in full
//! whenever `PORTCULLIS_TEST_POSTGRES_URL` is set (`scripts/test` runs the
//! suite once with it).

mod common;
#[path = "common/mcp.rs"]
mod mcp;

use std::time::{Duration, Instant};

use common::{TestServer, TestUser};
use portcullis::{identity::scope::Role, oauth::jwt, store::Store};
use serde_json::json;
use uuid::Uuid;

/// Far longer than any test: only a notification (or a reconnect's resync)
/// can tell the other instance.
const NEVER: Duration = Duration::from_secs(3600);
/// Generous for a loaded 2-core CI machine; notifications take milliseconds.
const DEADLINE: Duration = Duration::from_secs(30);

fn on_postgres() -> bool {
    let set = std::env::var("PORTCULLIS_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty());
    if !set {
        eprintln!("LISTEN/NOTIFY applies to PostgreSQL only; set PORTCULLIS_TEST_POSTGRES_URL");
    }
    set
}

/// Two instances on one database and keys directory, neither polling.
async fn pair() -> (TestServer, TestServer) {
    // The lag is measured by polling `whoami` as fast as it answers.
    let a = TestServer::start_with(|c| {
        c.revocation_poll = NEVER;
        c.rate_limit.burst = u32::MAX / 2;
        c.rate_limit.per_minute = u32::MAX / 2;
    })
    .await;
    let shared = a.state.config.clone();
    let b = TestServer::start_with(|c| {
        c.public_url = shared.public_url.clone();
        c.database_url = shared.database_url.clone();
        c.keys_dir = shared.keys_dir.clone();
        c.revocation_poll = NEVER;
        c.rate_limit = shared.rate_limit.clone();
    })
    .await;
    wait_for_listeners(&a.state.store, 2).await;
    (a, b)
}

fn pool(store: &Store) -> &sqlx::PgPool {
    match store {
        Store::Postgres(pool) => pool,
        Store::Sqlite(_) => panic!("PostgreSQL only"),
    }
}

/// Waits until `n` connections of this database are listening, so nothing
/// is announced before anyone hears it.
async fn wait_for_listeners(store: &Store, n: i64) {
    let listening = mcp::eventually(DEADLINE, || async {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'",
        )
        .fetch_one(pool(store))
        .await
        .unwrap();
        count >= n
    })
    .await;
    assert!(listening, "the revocation listeners did not start");
}

/// `whoami` on `server` with `token` (and an org header for API keys),
/// addressed as the shared public host.
async fn status(server: &TestServer, public: &TestServer, token: &str, org: Option<Uuid>) -> u16 {
    let mut request = server
        .http
        .post(server.resource())
        .header("Host", public.base.trim_start_matches("http://"))
        .header("Accept", "application/json, text/event-stream")
        .bearer_auth(token)
        .json(&mcp::tools_call(1, "whoami", json!({})));
    if let Some(org) = org {
        request = request.header("X-Organization-Id", org.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status != 200 && std::env::var("DEBUG_NOTIFY").is_ok() {
        let challenge = response.headers().get("www-authenticate").cloned();
        eprintln!("{status} {challenge:?} {}", response.text().await.unwrap());
    }
    status
}

/// An access token for `user` in `org` from `client_id`, for a grant of its own.
fn token(a: &TestServer, user: &TestUser, org: Uuid, client_id: &str) -> (Uuid, String) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let grant = Uuid::new_v4();
    let claims = jwt::AccessClaims {
        iss: a.base.clone(),
        sub: user.id,
        aud: a.resource(),
        exp: now + 600,
        iat: now,
        nbf: now,
        jti: Uuid::new_v4(),
        client_id: client_id.to_owned(),
        scope: "mcp:read".into(),
        org_id: org,
        grant_id: grant,
        gty: None,
    };
    (grant, jwt::access_token(&a.state.keys, &claims))
}

/// Polls `b` until it refuses `token`; the time from the call to the refusal.
async fn refused_after(b: &TestServer, a: &TestServer, token: &str, org: Option<Uuid>) -> Duration {
    let started = Instant::now();
    while started.elapsed() < DEADLINE {
        if status(b, a, token, org).await == 401 {
            return started.elapsed();
        }
    }
    panic!("the other instance still accepted a revoked credential after {DEADLINE:?}");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Revokes through A's RFC 7009 endpoint and measures how long B keeps
/// accepting the token after A's answer. `PORTCULLIS_REVOCATION_LAG_SAMPLES`
/// sets the number of samples (default 20); the figures are printed
/// (`cargo test --test revocation_notify -- --nocapture`).
#[tokio::test]
async fn a_revoked_grant_is_refused_by_the_other_instance_on_notification() {
    if !on_postgres() {
        return;
    }
    let (a, b) = pair().await;
    let org = a.org("Acme").await;
    let user = a.user(org, Role::Member).await;

    // A real grant from the full flow first.
    let tokens = a.oauth_tokens(&user, "mcp:read").await;
    assert_eq!(status(&b, &a, &tokens.access_token, None).await, 200);
    let r = a
        .http
        .post(a.url("/revoke"))
        .form(&[
            ("token", tokens.refresh_token.as_str()),
            ("client_id", &tokens.client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    refused_after(&b, &a, &tokens.access_token, None).await;

    let samples: usize = std::env::var("PORTCULLIS_REVOCATION_LAG_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut lags = Vec::with_capacity(samples);
    for _ in 0..samples {
        let (_, access) = token(&a, &user, org, &tokens.client_id);
        assert_eq!(
            status(&b, &a, &access, None).await,
            200,
            "B accepts the token first"
        );
        let r = a
            .http
            .post(a.url("/revoke"))
            .form(&[("token", access.as_str()), ("client_id", &tokens.client_id)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        lags.push(refused_after(&b, &a, &access, None).await);
    }
    lags.sort();
    eprintln!(
        "revocation lag over {samples} samples (A's /revoke answer to B's first 401): p50 {:?}, p99 {:?}, max {:?}",
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags[lags.len() - 1]
    );
    let metrics = b.state.metrics.render(&b.state);
    assert!(
        metrics.contains("portcullis_revocation_propagation_seconds_count"),
        "B observed the propagation lag"
    );
}

#[tokio::test]
async fn a_revoked_api_key_and_a_demotion_reach_the_other_instance() {
    if !on_postgres() {
        return;
    }
    let (a, b) = pair().await;
    let org = a.org("Acme").await;
    let user = a.user(org, Role::Member).await;
    let created = portcullis::admin::create_api_key(
        &a.state.store,
        &a.state.config.api_key_prefix,
        &user.email,
        org,
        Some("mcp:read"),
        None,
    )
    .await
    .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        status(&b, &a, &key, Some(org)).await,
        200,
        "B caches the key"
    );
    portcullis::admin::revoke_api_key(&a.state.store, &id)
        .await
        .unwrap();
    let lag = refused_after(&b, &a, &key, Some(org)).await;
    eprintln!("API key revocation reached B after {lag:?}");

    // A member's membership cached on B, then changed through the CLI path.
    let other = a.org("Other").await;
    let admin = a.user(other, Role::Admin).await;
    a.add_to_org(&admin, org, Role::Member).await;
    let key = a.api_key(&admin, org, "mcp:read mcp:write").await;
    let can_write = |server: &'_ TestServer, key: String| {
        let request = server
            .http
            .post(server.resource())
            .header("Host", a.base.trim_start_matches("http://"))
            .header("Accept", "application/json, text/event-stream")
            .header("X-Organization-Id", org.to_string())
            .bearer_auth(key)
            .json(&mcp::tools_call(1, "whoami", json!({})));
        async move {
            let body = request.send().await.unwrap().text().await.unwrap();
            assert!(body.contains("mcp:read"), "whoami answered: {body}");
            body.contains("mcp:write")
        }
    };
    assert!(
        can_write(&b, key.clone()).await,
        "B caches the member's role"
    );
    a.add_to_org(&admin, org, Role::Viewer).await;
    let started = Instant::now();
    let mut seen = false;
    while started.elapsed() < DEADLINE {
        if !can_write(&b, key.clone()).await {
            seen = true;
            break;
        }
    }
    assert!(seen, "B still grants mcp:write to a viewer");
    eprintln!("demotion reached B after {:?}", started.elapsed());
}

/// A revocation whose announcement nobody heard (written straight to the
/// store while the listeners are cut off) is applied when B's listener
/// reconnects, and announcements reach B again afterwards.
#[tokio::test]
async fn a_listener_that_lost_its_connection_reconnects_and_resyncs() {
    if !on_postgres() {
        return;
    }
    let (a, b) = pair().await;
    let org = a.org("Acme").await;
    let user = a.user(org, Role::Member).await;
    let tokens = a.oauth_tokens(&user, "mcp:read").await;
    let grant = a.state.store.grants(Some(user.id), None).await.unwrap()[0].id;
    let missed = tokens.access_token.clone();
    assert_eq!(status(&b, &a, &missed, None).await, 200);

    // No announcement: as if it had been sent while B's connection was down.
    a.state.store.revoke_grant(grant).await.unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN %'",
    )
    .execute(pool(&a.state.store))
    .await
    .unwrap();
    refused_after(&b, &a, &missed, None).await;

    wait_for_listeners(&a.state.store, 2).await;
    let (_, announced) = token(&a, &user, org, &tokens.client_id);
    assert_eq!(status(&b, &a, &announced, None).await, 200);
    let r = a
        .http
        .post(a.url("/revoke"))
        .form(&[
            ("token", announced.as_str()),
            ("client_id", &tokens.client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    refused_after(&b, &a, &announced, None).await;
}
