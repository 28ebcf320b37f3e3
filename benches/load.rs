//! Load benchmark for the MCP endpoint: `cargo bench --bench load`.
//!
//! Starts the real server (release build, SQLite in a temp dir) in a child
//! process on loopback, so its memory can be read apart from the load
//! generator's, and measures, in one run so the numbers are comparable:
//! - the baselines: an unauthenticated trivial handler (`/healthz`), and an
//!   ideal hand-written axum server (another child process) that verifies
//!   the RS256 token on every request and filters a static tool list by scope;
//! - authenticated `tools/list` with a JWT and with an API key, and the
//!   built-in `whoami` `tools/call`, at maximum throughput (closed loop,
//!   `CONCURRENCY` connections);
//! - each at half that rate (open loop, fixed rate) for p50/p99 latency;
//! - the server's resident memory at idle, under load, and during and after
//!   floods of distinct valid tokens and of random API keys, with a
//!   legitimate client's latency during the flood;
//! - the auth layer in isolation: signing, JWT verification, an API-key check;
//! - the gateway: a catalog tool at 1,000 calls/s against calling its
//!   upstream directly at the same rate.
//!
//! Environment: `PORTCULLIS_BENCH_SECS` (seconds per measurement, default 5),
//! `PORTCULLIS_BENCH_FLOOD` (credentials per flood, default 100,000) and
//! `PORTCULLIS_BENCH_SETTLE` (seconds to wait after the floods, default 65).
//! Client and server share the machine's cores, so absolute throughput is a
//! lower bound; the ratios against the baselines are the figures to compare.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use jsonwebtoken::{DecodingKey, Validation};
use portcullis::{
    Config,
    identity::{passwords::Passwords, scope::Role},
    oauth::{jwt, keys::Keys},
    store::Store,
};
use serde_json::{Value, json};
use uuid::Uuid;

const CONCURRENCY: usize = 32;
const ROLE: &str = "PORTCULLIS_BENCH_ROLE";
const DIR: &str = "PORTCULLIS_BENCH_DIR";

fn duration() -> Duration {
    Duration::from_secs(
        std::env::var("PORTCULLIS_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5),
    )
}

fn flood_size() -> usize {
    std::env::var("PORTCULLIS_BENCH_FLOOD")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000)
}

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
    let deadline = Instant::now() + duration();
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
    total as f64 / duration().as_secs_f64()
}

/// Open loop at `rate` requests/s for `length`; returns (p50, p99, count).
/// Latency runs from the scheduled send time, so queueing counts.
async fn at_rate_for(
    client: &reqwest::Client,
    t: Arc<Target>,
    rate: f64,
    length: Duration,
) -> (Duration, Duration, usize) {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let deadline = Instant::now() + length;
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
            assert!(
                r.status().is_success(),
                "{} answered {}",
                t.name,
                r.status()
            );
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

async fn at_rate(
    client: &reqwest::Client,
    t: Arc<Target>,
    rate: f64,
) -> (Duration, Duration, usize) {
    at_rate_for(client, t, rate, duration()).await
}

/// Resident and peak resident memory of a process, in MiB (Linux).
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A child process of this benchmark, killed when dropped.
struct Server {
    child: Child,
    base: String,
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
        Server {
            child,
            base: line.trim().to_owned(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn portcullis_config(dir: &Path, base: &str) -> Config {
    let mut config = Config::load(None, std::iter::empty()).unwrap();
    config.public_url = base.to_owned();
    config.database_url = format!("sqlite://{}", dir.join("bench.db").display());
    config.keys_dir = dir.join("keys");
    config.catalog = Some(dir.join("catalog.toml"));
    // The benchmark measures the request path, not the rate limiter.
    config.rate_limit.burst = u32::MAX / 2;
    config.rate_limit.per_minute = u32::MAX / 2;
    config
}

/// Child role: the real server.
fn serve_portcullis(dir: PathBuf) {
    server_runtime().block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let state = portcullis::build(portcullis_config(&dir, &base))
            .await
            .unwrap();
        println!("{base}");
        portcullis::run(listener, state, std::future::pending())
            .await
            .unwrap()
    })
}

/// What the ideal server knows: verification keys by `kid`, and each tool's
/// JSON with the scope that shows it.
struct Ideal {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
    tools: Vec<(String, Value)>,
}

#[derive(serde::Deserialize)]
struct IdealClaims {
    scope: String,
}

/// The ideal server's only handler: what a hand-written `tools/list` with
/// full RS256 verification on every request must do, and nothing more.
async fn ideal_mcp(State(ideal): State<Arc<Ideal>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    if header.typ.as_deref() != Some(jwt::ACCESS_TOKEN_TYP) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Some(key) = header.kid.as_deref().and_then(|kid| ideal.keys.get(kid)) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Ok(data) = jsonwebtoken::decode::<IdealClaims>(token, key, &ideal.validation) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let scopes: Vec<&str> = data.claims.scope.split(' ').collect();
    let tools: Vec<&Value> = ideal
        .tools
        .iter()
        .filter(|(scope, _)| scopes.contains(&scope.as_str()))
        .map(|(_, tool)| tool)
        .collect();
    Json(json!({ "jsonrpc": "2.0", "id": request["id"], "result": { "tools": tools } }))
        .into_response()
}

/// Child role: the ideal server, verifying against the same keys directory
/// and listing the tools the parent wrote to `ideal_tools.json`.
fn serve_ideal(dir: PathBuf) {
    let config: Value =
        serde_json::from_slice(&std::fs::read(dir.join("ideal.json")).unwrap()).unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(Keys::load_or_create(&dir.join("keys")).unwrap().jwks()).unwrap();
    let keys = jwks
        .keys
        .iter()
        .map(|jwk| {
            (
                jwk.common.key_id.clone().unwrap(),
                DecodingKey::from_jwk(jwk).unwrap(),
            )
        })
        .collect();
    let mut validation = Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.set_issuer(&[config["issuer"].as_str().unwrap()]);
    validation.set_audience(&[config["audience"].as_str().unwrap()]);
    let tools = config["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["scope"].as_str().unwrap().to_owned(), t["tool"].clone()))
        .collect();
    let ideal = Arc::new(Ideal {
        keys,
        validation,
        tools,
    });
    server_runtime().block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let app = axum::Router::new()
            .route("/mcp", axum::routing::post(ideal_mcp))
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .with_state(ideal);
        println!("{base}");
        axum::serve(listener, app).await.unwrap()
    })
}

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("server") => return serve_portcullis(std::env::var(DIR).unwrap().into()),
        Ok("ideal") => return serve_ideal(std::env::var(DIR).unwrap().into()),
        _ => {}
    }
    drive();
}

fn claims_for(base: &str, user_id: Uuid, org: Uuid) -> jwt::AccessClaims {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    jwt::AccessClaims {
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
    }
}

/// Sends each of `tokens` once (closed loop) while a legitimate client sends
/// `legit` at a fixed rate; returns (seconds taken, legit p50, legit p99,
/// peak server RSS during the flood in MiB).
async fn flood(
    client: &reqwest::Client,
    pid: u32,
    url: String,
    extra: Vec<(&'static str, String)>,
    tokens: Vec<String>,
    legit: Arc<Target>,
) -> (f64, Duration, Duration, f64) {
    let tokens = Arc::new(tokens);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, tokens, next, url, extra) = (
            client.clone(),
            tokens.clone(),
            next.clone(),
            url.clone(),
            extra.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let list = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }).to_string();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(token) = tokens.get(i) else { break };
                let mut r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .bearer_auth(token)
                    .body(list.clone());
                for (k, v) in &extra {
                    r = r.header(*k, v);
                }
                r.send().await.unwrap().bytes().await.unwrap();
            }
        }));
    }
    let sampler = {
        let tokens = tokens.clone();
        let next = next.clone();
        tokio::spawn(async move {
            let mut peak = 0f64;
            while next.load(std::sync::atomic::Ordering::Relaxed) < tokens.len() {
                peak = peak.max(memory(pid).0);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        })
    };
    // The legitimate client runs for as long as the flood, at 200 req/s.
    let legit_client = client.clone();
    let legit_task = tokio::spawn(async move {
        let mut latencies = Vec::new();
        let mut ticker = tokio::time::interval(Duration::from_millis(5));
        while next.load(std::sync::atomic::Ordering::Relaxed) < tokens.len() {
            ticker.tick().await;
            let scheduled = Instant::now();
            let r = request(&legit_client, &legit).send().await.unwrap();
            assert!(r.status().is_success(), "legitimate client refused");
            r.bytes().await.unwrap();
            latencies.push(scheduled.elapsed());
        }
        latencies.sort();
        (percentile(&latencies, 0.5), percentile(&latencies, 0.99))
    });
    for task in tasks {
        task.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let (p50, p99) = legit_task.await.unwrap();
    let peak = sampler.await.unwrap();
    (secs, p50, p99, peak)
}

fn drive() {
    let dir = tempfile::tempdir().unwrap();
    let rt = server_runtime();
    // A trivial upstream API for the gateway figures, in this process.
    let upstream_listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let upstream = format!(
        "http://127.0.0.1:{}",
        upstream_listener.local_addr().unwrap().port()
    );
    rt.spawn(async move {
        let app = axum::Router::new().route(
            "/api/items",
            axum::routing::get(|| async { axum::Json(json!({ "items": [1, 2, 3] })) }),
        );
        axum::serve(upstream_listener, app).await.unwrap()
    });
    std::fs::write(
        dir.path().join("catalog.toml"),
        format!("[[upstream]]\nname = \"api\"\nbase_url = \"{upstream}/api\"\n\n[[tool]]\nname = \"list_items\"\ndescription = \"List items.\"\nupstream = \"api\"\nmethod = \"GET\"\npath = \"/items\"\n"),
    )
    .unwrap();
    let server = Server::spawn("server", dir.path());
    let base = server.base.clone();
    let (idle_rss, _) = memory(server.pid());

    let config = portcullis_config(dir.path(), &base);
    let keys = Keys::load_or_create(&config.keys_dir).unwrap();
    let (store, org, user_id, key) = rt.block_on(async {
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
            "bench-password-123",
            org,
            Role::Member,
        )
        .await
        .unwrap();
        let key = portcullis::admin::create_api_key(
            &store,
            "pcl",
            "bench@example.test",
            org,
            Some("mcp:read mcp:write"),
            None,
        )
        .await
        .unwrap();
        (
            store,
            org,
            user["id"].as_str().unwrap().parse::<Uuid>().unwrap(),
            key["key"].as_str().unwrap().to_owned(),
        )
    });
    let token = jwt::access_token(&keys, &claims_for(&base, user_id, org));
    let mcp = format!("{base}/mcp");
    let list =
        json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {} }).to_string();
    let whoami = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": "whoami", "arguments": {} } }).to_string();
    let call = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": "list_items", "arguments": {} } }).to_string();
    let jwt_header = vec![("authorization", format!("Bearer {token}"))];
    let key_headers = vec![
        ("authorization", format!("Bearer {key}")),
        ("x-organization-id", org.to_string()),
    ];

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .build()
        .unwrap();

    // The ideal server lists what Portcullis lists for this token, plus two
    // tools the token's scopes hide, so it filters as Portcullis does.
    let listed: Value = rt.block_on(async {
        request(
            &client,
            &Target {
                name: "tools/list",
                url: mcp.clone(),
                body: Some(list.clone()),
                headers: jwt_header.clone(),
            },
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
    });
    let mut ideal_tools: Vec<Value> = listed["result"]["tools"]
        .as_array()
        .expect("tools/list answered")
        .iter()
        .map(|t| json!({ "scope": "mcp:read", "tool": t }))
        .collect();
    for name in ["hidden_one", "hidden_two"] {
        ideal_tools.push(json!({ "scope": "mcp:admin", "tool": { "name": name, "description": "Hidden.", "inputSchema": { "type": "object" } } }));
    }
    std::fs::write(
        dir.path().join("ideal.json"),
        json!({ "issuer": base, "audience": mcp, "tools": ideal_tools }).to_string(),
    )
    .unwrap();
    let ideal = Server::spawn("ideal", dir.path());

    let targets = [
        Arc::new(Target {
            name: "baseline GET /healthz (no auth)",
            url: format!("{base}/healthz"),
            body: None,
            headers: vec![],
        }),
        Arc::new(Target {
            name: "baseline ideal axum, RS256 per req",
            url: format!("{}/mcp", ideal.base),
            body: Some(list.clone()),
            headers: jwt_header.clone(),
        }),
        Arc::new(Target {
            name: "tools/list with JWT",
            url: mcp.clone(),
            body: Some(list.clone()),
            headers: jwt_header.clone(),
        }),
        Arc::new(Target {
            name: "tools/list with API key",
            url: mcp.clone(),
            body: Some(list.clone()),
            headers: key_headers.clone(),
        }),
        Arc::new(Target {
            name: "tools/call whoami with JWT",
            url: mcp.clone(),
            body: Some(whoami),
            headers: jwt_header.clone(),
        }),
    ];

    let pid = server.pid();
    rt.block_on(async {
        println!(
            "{:<36} {:>10} {:>8} {:>8} {:>10} {:>10} {:>8}",
            "target", "max req/s", "/healthz", "/ideal", "p50 @half", "p99 @half", "n"
        );
        let mut rates = Vec::new();
        let mut load_rss = 0f64;
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
            if t.url.starts_with(&base) {
                load_rss = load_rss.max(memory(pid).0);
            }
            rates.push(rps);
            let (p50, p99, n) = at_rate(&client, t.clone(), rps / 2.0).await;
            println!(
                "{:<36} {:>10.0} {:>8.2} {:>8.2} {:>10.2?} {:>10.2?} {:>8}",
                t.name,
                rps,
                rps / rates[0],
                rates.get(1).map_or(f64::NAN, |ideal| rps / ideal),
                p50,
                p99,
                n
            );
        }
        println!(
            "whoami tools/call / tools/list (JWT): {:.2}",
            rates[4] / rates[2]
        );
        let (_, peak_load) = memory(pid);
        println!(
            "\nserver RSS: idle {idle_rss:.1} MiB, under load {load_rss:.1} MiB (peak {peak_load:.1} MiB); ideal server peak {:.1} MiB",
            memory(ideal.pid()).1
        );

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
            url: mcp.clone(),
            body: Some(call.clone()),
            headers: key_headers.clone(),
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

    // Floods: distinct valid tokens, then random API keys, each sent once
    // while a legitimate JWT client sends tools/list at 200 req/s.
    let n = flood_size();
    let started = Instant::now();
    let tokens: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    (0..n / 2)
                        .map(|_| jwt::access_token(&keys, &claims_for(&base, user_id, org)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let signing = started.elapsed() / tokens.len().max(1) as u32;
    let random_keys: Vec<String> = (0..n)
        .map(|_| {
            format!(
                "pcl_{}_{}",
                Uuid::new_v4().simple(),
                &format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())[..43]
            )
        })
        .collect();
    let legit = Arc::new(Target {
        name: "legitimate tools/list",
        url: mcp.clone(),
        body: Some(list.clone()),
        headers: jwt_header.clone(),
    });
    rt.block_on(async {
        let (quiet50, quiet99, _) =
            at_rate_for(&client, legit.clone(), 200.0, Duration::from_secs(2)).await;
        println!(
            "\nlegitimate client at 200 req/s, no flood: p50 {quiet50:.2?} p99 {quiet99:.2?}"
        );
        let count = tokens.len();
        let (secs, p50, p99, peak) = flood(
            &client,
            pid,
            mcp.clone(),
            vec![],
            tokens,
            legit.clone(),
        )
        .await;
        println!(
            "flood of {count} distinct valid JWTs: {:.0} req/s; legitimate p50 {p50:.2?} p99 {p99:.2?}; server RSS peak during {peak:.1} MiB, after {:.1} MiB",
            count as f64 / secs,
            memory(pid).0
        );
        let count = random_keys.len();
        let (secs, p50, p99, peak) = flood(
            &client,
            pid,
            mcp.clone(),
            vec![("x-organization-id", org.to_string())],
            random_keys,
            legit.clone(),
        )
        .await;
        println!(
            "flood of {count} random API keys: {:.0} req/s; legitimate p50 {p50:.2?} p99 {p99:.2?}; server RSS peak during {peak:.1} MiB, after {:.1} MiB",
            count as f64 / secs,
            memory(pid).0
        );
        // Memory once the caches' entries have expired (60 s for tokens).
        let settle = std::env::var("PORTCULLIS_BENCH_SETTLE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(65);
        tokio::time::sleep(Duration::from_secs(settle)).await;
        request(&client, &legit).send().await.unwrap();
        println!(
            "server RSS {settle} s after the floods: {:.1} MiB (peak over the run {:.1} MiB)",
            memory(pid).0,
            memory(pid).1
        );
    });
    drop(store);

    // The auth layer alone, without HTTP.
    let issuer = base.clone();
    let audience = format!("{base}/mcp");
    let rounds = 2_000;
    let active = keys.active();
    let pem = std::fs::read(config.keys_dir.join(format!("{}.pem", active.kid))).unwrap();
    let library_key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(active.kid.clone());
    header.typ = Some(jwt::ACCESS_TOKEN_TYP.into());
    let claims = claims_for(&base, user_id, org);
    let started = Instant::now();
    for _ in 0..rounds {
        jsonwebtoken::encode(&header, &claims, &library_key).unwrap();
    }
    let per_library_sign = started.elapsed() / rounds;
    let started = Instant::now();
    for _ in 0..rounds {
        jwt::access_token(&keys, &claims);
    }
    let per_sign = started.elapsed() / rounds;
    println!(
        "\nsigning: pre-parsed key {per_sign:.2?}/token (flood tokens: {signing:.2?} on 2 threads), jsonwebtoken::encode {per_library_sign:.2?}/token"
    );
    let started = Instant::now();
    for _ in 0..rounds * 10 {
        jwt::verify_access_token(&keys, &token, &issuer, &audience).unwrap();
    }
    let per_jwt = started.elapsed() / (rounds * 10);
    let (id, secret) = portcullis::identity::api_key::parse("pcl", &key).unwrap();
    let stored = rt.block_on(async {
        Store::connect(&config.database_url)
            .await
            .unwrap()
            .api_key(id)
            .await
            .unwrap()
            .unwrap()
    });
    let started = Instant::now();
    for _ in 0..rounds * 10 {
        assert!(portcullis::identity::api_key::verify(
            secret,
            &stored.secret_hash
        ));
    }
    let per_key = started.elapsed() / (rounds * 10);
    println!(
        "auth layer in isolation: JWT verification {per_jwt:.2?}/request, API-key check {per_key:.2?}/request"
    );
}
