//! What metrics and request tracing cost on the authenticated `tools/list`
//! hot path: `cargo bench --bench observability`.
//!
//! Starts two release servers as child processes on loopback, each with its
//! own SQLite database, identical but for observability:
//! - `off`: `metrics_listen = "off"` (HTTP metrics not recorded) and no log
//!   subscriber (request spans are no-ops);
//! - `on`: metrics recorded, and the JSON log subscriber of `log_format =
//!   "json"` at the default filter (`portcullis=info`), writing to a sink, so
//!   every request's span is built and entered.
//!
//! It then measures closed-loop `tools/list` throughput with a JWT against
//! each in alternating rounds (off, on, off, on, ...) and prints each round
//! and the medians. Client and servers share the machine's cores, so compare
//! the ratio, not the absolute rates. `PORTCULLIS_BENCH_SECS` sets seconds
//! per round (default 5), `PORTCULLIS_BENCH_ROUNDS` rounds per mode (default 3).

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use portcullis::{
    Config,
    identity::{passwords::Passwords, scope::Role},
    oauth::{jwt, keys::Keys},
    store::Store,
};
use serde_json::json;
use uuid::Uuid;

const CONCURRENCY: usize = 32;
const ROLE: &str = "PORTCULLIS_BENCH_ROLE";
const DIR: &str = "PORTCULLIS_BENCH_DIR";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn config(dir: &Path, base: &str, observed: bool) -> Config {
    let mut config = Config::load(None, std::iter::empty()).unwrap();
    config.public_url = base.to_owned();
    config.database_url = format!("sqlite://{}", dir.join("bench.db").display());
    config.keys_dir = dir.join("keys");
    config.rate_limit.burst = u32::MAX / 2;
    config.rate_limit.per_minute = u32::MAX / 2;
    if !observed {
        config.metrics_listen = None;
    }
    config
}

/// Child role: one server, observed or not.
fn serve(dir: PathBuf, observed: bool) {
    if observed {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "portcullis=info,tower_http=warn",
            ))
            .with_writer(std::io::sink)
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    }
    runtime().block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let state = portcullis::build(config(&dir, &base, observed))
            .await
            .unwrap();
        println!("{base}");
        portcullis::run(listener, state, std::future::pending())
            .await
            .unwrap()
    })
}

struct Server {
    child: Child,
    base: String,
    token: String,
}

impl Server {
    fn spawn(role: &str, dir: &Path) -> Server {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(ROLE, role)
            .env(DIR, dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // The child prints its address once it is listening and ready.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line.trim().to_owned();
        let token = runtime().block_on(token_for(dir, &base));
        Server { child, base, token }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A member of a fresh org and an access token for them, signed with the
/// server's key.
async fn token_for(dir: &Path, base: &str) -> String {
    let config = config(dir, base, false);
    let keys = Keys::load_or_create(&config.keys_dir).unwrap();
    let store = Store::connect(&config.database_url).await.unwrap();
    let org: Uuid = portcullis::admin::create_org(&store, "Bench")
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let user = portcullis::admin::create_user(
        &store,
        &Passwords::new(1),
        "bench@example.test",
        "bench-password",
        org,
        Role::Member,
    )
    .await
    .unwrap();
    let user_id: Uuid = user["id"].as_str().unwrap().parse().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    jwt::access_token(
        &keys,
        &jwt::AccessClaims {
            iss: base.to_owned(),
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
            gty: None,
        },
    )
}

/// Closed loop for `secs`: `tools/list` as fast as `CONCURRENCY` connections
/// go. Returns requests/s.
async fn throughput(client: &reqwest::Client, server: &Server, secs: u64) -> f64 {
    let url = Arc::new(format!("{}/mcp", server.base));
    let auth = Arc::new(format!("Bearer {}", server.token));
    let body =
        json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {} }).to_string();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, url, auth, body) = (client.clone(), url.clone(), auth.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let r = client
                    .post(url.as_str())
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2025-06-18")
                    .header("authorization", auth.as_str())
                    .body(body.clone())
                    .send()
                    .await
                    .expect("request");
                assert!(
                    r.status().is_success(),
                    "tools/list answered {}",
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
    total as f64 / started.elapsed().as_secs_f64()
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("off") => return serve(std::env::var(DIR).unwrap().into(), false),
        Ok("on") => return serve(std::env::var(DIR).unwrap().into(), true),
        _ => {}
    }
    let secs = env_or("PORTCULLIS_BENCH_SECS", 5);
    let rounds = env_or("PORTCULLIS_BENCH_ROUNDS", 3);
    let (off_dir, on_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let off = Server::spawn("off", off_dir.path());
    let on = Server::spawn("on", on_dir.path());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .build()
        .unwrap();
    runtime().block_on(async {
        // Warm connections, caches and the allocator of both.
        throughput(&client, &off, 1).await;
        throughput(&client, &on, 1).await;
        let (mut off_rates, mut on_rates) = (Vec::new(), Vec::new());
        for round in 1..=rounds {
            let a = throughput(&client, &off, secs).await;
            let b = throughput(&client, &on, secs).await;
            println!("round {round}: off {a:.0} req/s, metrics+tracing {b:.0} req/s");
            off_rates.push(a);
            on_rates.push(b);
        }
        let (a, b) = (median(off_rates), median(on_rates));
        println!(
            "tools/list (JWT), median of {rounds}: off {a:.0} req/s, metrics+tracing {b:.0} req/s, cost {:.1}%",
            (1.0 - b / a) * 100.0
        );
    });
}
