//! Load benchmark for the MCP endpoint: `cargo bench --bench load`.
//!
//! Starts a real server (release build, SQLite in a temp dir) on loopback and
//! measures, in one run so the numbers are comparable:
//! - the baseline: an unauthenticated trivial handler (`/healthz`);
//! - authenticated `tools/list` with a JWT and with an API key, at maximum
//!   throughput (closed loop, `CONCURRENCY` connections);
//! - the same at half that rate (open loop) for latency percentiles;
//! - the auth layer in isolation: JWT verification and an API-key check;
//! - the gateway: a catalog tool at 1,000 calls/s against calling its
//!   upstream directly at the same rate.
//!
//! Client and server share the machine's cores, so absolute throughput is a
//! lower bound; the ratios against the baseline are the figures to compare.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use portcullis::{Config, identity::scope::Role, oauth::jwt};
use serde_json::json;
use uuid::Uuid;

const CONCURRENCY: usize = 32;
const DURATION: Duration = Duration::from_secs(5);

struct Target {
    name: &'static str,
    url: String,
    body: Option<String>,
    headers: Vec<(&'static str, String)>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn request(client: &reqwest::Client, t: &Target) -> reqwest::RequestBuilder {
    let mut r = match &t.body {
        Some(body) => client
            .post(&t.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .body(body.clone()),
        None => client.get(&t.url),
    };
    for (k, v) in &t.headers {
        r = r.header(*k, v);
    }
    r
}

/// Closed loop: as fast as `CONCURRENCY` connections go. Returns requests/s.
async fn max_throughput(client: &reqwest::Client, t: Arc<Target>) -> f64 {
    let deadline = Instant::now() + DURATION;
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let client = client.clone();
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let r = request(&client, &t).send().await.expect("request");
                assert!(
                    r.status().is_success(),
                    "{} answered {}",
                    t.name,
                    r.status()
                );
                r.bytes().await.unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / DURATION.as_secs_f64()
}

/// Open loop at `rate` requests/s; returns (p50, p99) latency.
async fn at_rate(
    client: &reqwest::Client,
    t: Arc<Target>,
    rate: f64,
) -> (Duration, Duration, usize) {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let deadline = Instant::now() + DURATION;
    // A fixed number of connections, as a real fleet of clients has; waiting
    // for one counts in the latency (measured from the scheduled time).
    let connections = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY * 2));
    let mut tasks = Vec::new();
    while Instant::now() < deadline {
        ticker.tick().await;
        let client = client.clone();
        let t = t.clone();
        let connections = connections.clone();
        let scheduled = Instant::now();
        tasks.push(tokio::spawn(async move {
            let _connection = connections.acquire().await.expect("never closed");
            let r = request(&client, &t).send().await.expect("request");
            assert!(r.status().is_success());
            r.bytes().await.unwrap();
            scheduled.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    for task in tasks {
        latencies.push(task.await.unwrap());
    }
    latencies.sort();
    (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.len(),
    )
}

fn main() {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A trivial upstream API for the gateway figures.
    let upstream_listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let upstream = format!(
        "http://127.0.0.1:{}",
        upstream_listener.local_addr().unwrap().port()
    );
    server_rt.spawn(async move {
        let app = axum::Router::new().route(
            "/api/items",
            axum::routing::get(|| async { axum::Json(json!({ "items": [1, 2, 3] })) }),
        );
        axum::serve(upstream_listener, app).await.unwrap()
    });
    let catalog = dir.path().join("catalog.toml");
    std::fs::write(
        &catalog,
        format!("[[upstream]]\nname = \"api\"\nbase_url = \"{upstream}/api\"\n\n[[tool]]\nname = \"list_items\"\ndescription = \"List items.\"\nupstream = \"api\"\nmethod = \"GET\"\npath = \"/items\"\n"),
    )
    .unwrap();
    let listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut config = Config::load(None, std::iter::empty()).unwrap();
    config.public_url = base.clone();
    config.database_url = format!("sqlite://{}", dir.path().join("bench.db").display());
    config.keys_dir = dir.path().join("keys");
    config.catalog = Some(catalog);
    // The benchmark measures the request path, not the rate limiter.
    config.rate_limit.burst = u32::MAX / 2;
    config.rate_limit.per_minute = u32::MAX / 2;
    let state = server_rt.block_on(portcullis::build(config)).unwrap();
    let serving = state.clone();
    server_rt.spawn(async move {
        portcullis::run(listener, serving, std::future::pending())
            .await
            .unwrap()
    });

    let (org, user_id, key) = server_rt.block_on(async {
        let org: Uuid = portcullis::admin::create_org(&state.store, "Bench")
            .await
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let user = portcullis::admin::create_user(
            &state.store,
            &state.passwords,
            "bench@example.test",
            "bench-password",
            org,
            Role::Member,
        )
        .await
        .unwrap();
        let key = portcullis::admin::create_api_key(
            &state.store,
            "pcl",
            "bench@example.test",
            org,
            Some("mcp:read mcp:write"),
            None,
        )
        .await
        .unwrap();
        (
            org,
            user["id"].as_str().unwrap().parse::<Uuid>().unwrap(),
            key["key"].as_str().unwrap().to_owned(),
        )
    });
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = jwt::AccessClaims {
        iss: base.clone(),
        sub: user_id,
        aud: format!("{base}/mcp"),
        exp: now + 3600,
        iat: now,
        nbf: now,
        jti: Uuid::new_v4(),
        client_id: "bench".into(),
        scope: "mcp:read mcp:write".into(),
        org_id: org,
        grant_id: Uuid::new_v4(),
    };
    let token = jwt::access_token(&state.keys, &claims);

    let call = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": "list_items", "arguments": {} } }).to_string();
    let list =
        json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {} }).to_string();
    let targets = [
        Arc::new(Target {
            name: "baseline GET /healthz (no auth)",
            url: format!("{base}/healthz"),
            body: None,
            headers: vec![],
        }),
        Arc::new(Target {
            name: "tools/list with JWT",
            url: format!("{base}/mcp"),
            body: Some(list.clone()),
            headers: vec![("authorization", format!("Bearer {token}"))],
        }),
        Arc::new(Target {
            name: "tools/list with API key",
            url: format!("{base}/mcp"),
            body: Some(list),
            headers: vec![
                ("authorization", format!("Bearer {key}")),
                ("x-organization-id", org.to_string()),
            ],
        }),
    ];

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    client_rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(CONCURRENCY * 2)
            .build()
            .unwrap();
        println!(
            "{:<34} {:>10} {:>8} {:>10} {:>10} {:>8}",
            "target", "max req/s", "ratio", "p50 @half", "p99 @half", "n"
        );
        let mut baseline = None;
        for t in &targets {
            // Warm connections and caches.
            for _ in 0..200 {
                request(&client, t)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
            }
            let rps = max_throughput(&client, t.clone()).await;
            let base_rps = *baseline.get_or_insert(rps);
            let (p50, p99, n) = at_rate(&client, t.clone(), rps / 2.0).await;
            println!(
                "{:<34} {:>10.0} {:>8.2} {:>10.2?} {:>10.2?} {:>8}",
                t.name,
                rps,
                rps / base_rps,
                p50,
                p99,
                n
            );
        }

        println!(
            "\ngateway at 1000 calls/s            {:>10} {:>10}",
            "p50", "p99"
        );
        let direct = Arc::new(Target {
            name: "upstream directly",
            url: format!("{upstream}/api/items"),
            body: None,
            headers: vec![],
        });
        let gateway = Arc::new(Target {
            name: "tools/call through the gateway",
            url: format!("{base}/mcp"),
            body: Some(call.clone()),
            headers: vec![
                ("authorization", format!("Bearer {key}")),
                ("x-organization-id", org.to_string()),
            ],
        });
        let mut figures = Vec::new();
        for t in [direct, gateway] {
            for _ in 0..200 {
                request(&client, &t)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
            }
            let (p50, p99, _) = at_rate(&client, t.clone(), 1000.0).await;
            println!("{:<34} {:>10.2?} {:>10.2?}", t.name, p50, p99);
            figures.push((p50, p99));
        }
        println!(
            "{:<34} {:>10.2?} {:>10.2?}",
            "gateway overhead",
            figures[1].0.saturating_sub(figures[0].0),
            figures[1].1.saturating_sub(figures[0].1)
        );
    });

    // The auth layer alone, without HTTP.
    let issuer = base.clone();
    let audience = format!("{base}/mcp");
    let n = 20_000;
    let started = Instant::now();
    for _ in 0..n {
        jwt::verify_access_token(&state.keys, &token, &issuer, &audience).unwrap();
    }
    let per_jwt = started.elapsed() / n;
    let (id, secret) = portcullis::identity::api_key::parse("pcl", &key).unwrap();
    let stored = server_rt
        .block_on(state.store.api_key(id))
        .unwrap()
        .unwrap();
    let started = Instant::now();
    for _ in 0..n {
        assert!(portcullis::identity::api_key::verify(
            secret,
            &stored.secret_hash
        ));
    }
    let per_key = started.elapsed() / n;
    println!(
        "\nauth layer in isolation: JWT verification {per_jwt:.2?}/request, API-key check {per_key:.2?}/request"
    );
}
