//! Hardening benchmark: `cargo bench --bench hardening`.
//!
//! Runs the release binary as a child process (so its RSS is its own and it
//! can be killed with SIGKILL) and measures:
//! - memory: RSS idle, during and after 500 failed sign-ins;
//! - connections: legitimate `/healthz` latency while 500 slowloris
//!   connections are held (re-opened as soon as the server closes them),
//!   with the default cap and with the cap equal to the attackers' count;
//! - audit durability: per `kill -9` under load, how many answered
//!   write-behind calls and how many answered deletions have no audit record.
//!
//! With `PORTCULLIS_TEST_POSTGRES_URL` set, the kill test also runs on
//! PostgreSQL (a fresh database per kill).

use std::{
    collections::HashSet,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use portcullis::{
    admin,
    identity::{passwords::Passwords, scope::Role},
    store::{Store, ToolCallFilter},
};
use serde_json::{Value, json};
use tokio::{io::AsyncWriteExt, net::TcpStream};
use uuid::Uuid;

/// The server binary: this build's, or `PORTCULLIS_BENCH_BIN` (for example a
/// release binary driven by a quickly built debug client).
fn server_binary() -> String {
    std::env::var("PORTCULLIS_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_portcullis").to_owned())
}

struct Server {
    child: Child,
    base: String,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(dir: &std::path::Path, database_url: &str, env: &[(&str, String)]) -> Server {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut command = Command::new(server_binary());
    command
        .env_clear()
        .env("PORTCULLIS_LISTEN", format!("127.0.0.1:{port}"))
        .env("PORTCULLIS_PUBLIC_URL", &base)
        .env("PORTCULLIS_DATABASE_URL", database_url)
        .env("PORTCULLIS_KEYS_DIR", dir.join("keys"))
        .env("PORTCULLIS_RATE_LIMIT__BURST", "1000000")
        .env("PORTCULLIS_RATE_LIMIT__PER_MINUTE", "1000000")
        .env("RUST_LOG", "portcullis=error")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let child = command.spawn().expect("start the release binary");
    let server = Server {
        child,
        base: base.clone(),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not start");
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

struct Seeded {
    org: Uuid,
    admin_key: String,
    doomed: Vec<String>,
}

async fn seed(database_url: &str, doomed: usize) -> Seeded {
    let store = Store::connect(database_url).await.unwrap();
    store.migrate().await.unwrap();
    let org: Uuid = admin::create_org(&store, "Bench").await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let passwords = Passwords::new(1);
    admin::create_user(
        &store,
        &passwords,
        "admin@bench.test",
        "bench-password-123",
        org,
        Role::Admin,
    )
    .await
    .unwrap();
    let key = |scopes: &'static str| {
        let store = store.clone();
        async move {
            admin::create_api_key(&store, "pcl", "admin@bench.test", org, Some(scopes), None)
                .await
                .unwrap()
        }
    };
    let admin_key = key("mcp:read mcp:write mcp:admin").await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ids = Vec::with_capacity(doomed);
    for _ in 0..doomed {
        ids.push(key("mcp:read").await["id"].as_str().unwrap().to_owned());
    }
    drop(store);
    Seeded {
        org,
        admin_key,
        doomed: ids,
    }
}

// ---- memory ----

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("hidden field") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

async fn failed_sign_in(client: &reqwest::Client, base: &str, email: &str) {
    let page = client
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf");
    let answer = client
        .post(format!("{base}/login"))
        .form(&[
            ("email", email),
            ("password", "not-the-password"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::UNAUTHORIZED);
}

async fn memory() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    seed(&url, 0).await;
    let server = start(dir.path(), &url, &[]).await;
    let pid = server.child.id();
    // Idle: started and answering, no sign-in yet.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss_mib(pid);
    // 25 client addresses × 20 unknown emails: each attempt costs one
    // argon2id verification and none is refused by the per-address limit.
    let peak = Arc::new(Mutex::new(idle));
    let running = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, running) = (peak.clone(), running.clone());
        tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                let now = rss_mib(pid);
                {
                    let mut p = peak.lock().unwrap();
                    *p = p.max(now);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for a in 0..25u8 {
        let base = server.base.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .cookie_store(true)
                .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + a)))
                .build()
                .unwrap();
            for i in 0..20 {
                failed_sign_in(&client, &base, &format!("nobody{a}-{i}@bench.test")).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = started.elapsed();
    running.store(false, Ordering::Relaxed);
    sampler.await.unwrap();
    let after = rss_mib(pid);
    tokio::time::sleep(portcullis::identity::passwords::RELEASE_AFTER + Duration::from_secs(2))
        .await;
    let released = rss_mib(pid);
    println!("## Memory: 500 failed sign-ins (25 addresses × 20 unknown emails)");
    println!(
        "  took {:.1} s ({:.0} sign-ins/s)",
        took.as_secs_f64(),
        500.0 / took.as_secs_f64()
    );
    println!("  RSS idle            {idle:7.1} MiB");
    println!("  RSS peak during     {:7.1} MiB", *peak.lock().unwrap());
    println!("  RSS right after     {after:7.1} MiB");
    println!(
        "  RSS {}s after       {released:7.1} MiB",
        portcullis::identity::passwords::RELEASE_AFTER.as_secs() + 2
    );
}

// ---- slowloris ----

/// One attacker connection, re-opened whenever the server closes it: a
/// partial request head, then one more byte a second.
async fn slowloris(addr: SocketAddr, held: Arc<AtomicUsize>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .is_err()
        {
            continue;
        }
        held.fetch_add(1, Ordering::Relaxed);
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if s.write_all(b"X-a: b\r\n").await.is_err() {
                break;
            }
        }
        held.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Open loop at 200 requests/s for 3 s on one keep-alive client.
async fn legit_latency(base: &str) -> (Duration, Duration, usize, usize) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut ticker = tokio::time::interval(Duration::from_millis(5));
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut tasks = Vec::new();
    while Instant::now() < deadline {
        ticker.tick().await;
        let (client, url) = (client.clone(), format!("{base}/healthz"));
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let ok = client
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            (started.elapsed(), ok)
        }));
    }
    let mut latencies = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (took, ok) = t.await.unwrap();
        if ok {
            latencies.push(took);
        } else {
            failed += 1;
        }
    }
    latencies.sort();
    (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.len(),
        failed,
    )
}

async fn connections(max_connections: Option<usize>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    seed(&url, 0).await;
    let env: Vec<(&str, String)> = max_connections
        .map(|n| vec![("PORTCULLIS_MAX_CONNECTIONS", n.to_string())])
        .unwrap_or_default();
    let server = start(dir.path(), &url, &env).await;
    let (p50, p99, n, failed) = legit_latency(&server.base).await;
    let cap = max_connections.map_or("default cap (10,000)".to_owned(), |n| {
        format!("max_connections = {n}")
    });
    println!("## Connections: {cap}");
    println!(
        "  /healthz at 200/s, no attack:            p50 {} p99 {} ({n} ok, {failed} failed)",
        ms(p50),
        ms(p99)
    );
    let held = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let attackers: Vec<_> = (0..500)
        .map(|_| tokio::spawn(slowloris(server.addr, held.clone(), stop.clone())))
        .collect();
    let wait = Instant::now();
    while held.load(Ordering::Relaxed) < 500 && wait.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rss = rss_mib(server.child.id());
    let (p50, p99, n, failed) = legit_latency(&server.base).await;
    println!(
        "  /healthz at 200/s, {} slowloris held:     p50 {} p99 {} ({n} ok, {failed} failed); server RSS {rss:.1} MiB",
        held.load(Ordering::Relaxed),
        ms(p50),
        ms(p99)
    );
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        a.abort();
    }
}

// ---- audit durability ----

async fn post_mcp(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    org: Uuid,
    body: Value,
) -> Option<Value> {
    let response = client
        .post(format!("{base}/mcp"))
        .bearer_auth(key)
        .header("X-Organization-Id", org.to_string())
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&body)
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

struct KillResult {
    answered_behind: usize,
    lost_behind: usize,
    answered_deletes: usize,
    lost_deletes: usize,
    behind_rate: f64,
}

async fn kill_once(database_url: &str, dir: &std::path::Path) -> KillResult {
    let seeded = seed(database_url, 2000).await;
    let server = start(dir, database_url, &[]).await;
    let base = server.base.clone();
    let answered_probes = Arc::new(Mutex::new(Vec::<String>::new()));
    let answered_deletes = Arc::new(Mutex::new(Vec::<String>::new()));
    let doomed = Arc::new(Mutex::new(seeded.doomed.clone()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    let client = reqwest::Client::new();
    // Write-behind: unknown tools are audited under the exact name called.
    for t in 0..8 {
        let (client, base, key, probes) = (
            client.clone(),
            base.clone(),
            seeded.admin_key.clone(),
            answered_probes.clone(),
        );
        let org = seeded.org;
        tasks.push(tokio::spawn(async move {
            for n in 0.. {
                let name = format!("probe_{t}_{n}");
                let body = json!({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": name, "arguments": {}}});
                match post_mcp(&client, &base, &key, org, body).await {
                    Some(v) if v.get("error").is_some() => probes.lock().unwrap().push(name),
                    _ => break,
                }
            }
        }));
    }
    // Destructive: deletions, stored before they are answered.
    for _ in 0..4 {
        let (client, base, key, doomed, deletes) = (
            client.clone(),
            base.clone(),
            seeded.admin_key.clone(),
            doomed.clone(),
            answered_deletes.clone(),
        );
        let org = seeded.org;
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(id) = doomed.lock().unwrap().pop() else { break };
                let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "delete_api_key", "arguments": {"id": id, "confirm": true}}});
                match post_mcp(&client, &base, &key, org, body).await {
                    Some(v) if v["result"]["structuredContent"]["deleted"] == json!(true) => {
                        deletes.lock().unwrap().push(id)
                    }
                    _ => break,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let elapsed = started.elapsed();
    for t in tasks {
        let _ = t.await;
    }
    let store = Store::connect(database_url).await.unwrap();
    let filter = ToolCallFilter {
        limit: 1_000_000,
        ..Default::default()
    };
    let stored = store.tool_calls(seeded.org, &filter).await.unwrap();
    drop(store);
    let names: HashSet<&str> = stored.iter().map(|c| c.tool.as_str()).collect();
    let details: Vec<&str> = stored
        .iter()
        .filter(|c| c.tool == "delete_api_key")
        .filter_map(|c| c.detail.as_deref())
        .collect();
    let probes = answered_probes.lock().unwrap();
    let deletes = answered_deletes.lock().unwrap();
    KillResult {
        answered_behind: probes.len(),
        lost_behind: probes
            .iter()
            .filter(|p| !names.contains(p.as_str()))
            .count(),
        answered_deletes: deletes.len(),
        lost_deletes: deletes
            .iter()
            .filter(|id| !details.iter().any(|d| d.contains(id.as_str())))
            .count(),
        behind_rate: probes.len() as f64 / elapsed.as_secs_f64(),
    }
}

async fn fresh_postgres(admin_url: &str) -> String {
    let name = format!("pcl_bench_{}", Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(admin_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let mut url = url::Url::parse(admin_url).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

async fn kills(backend: &str, postgres: Option<&str>) {
    const KILLS: usize = 5;
    println!(
        "## Audit per kill -9 under load ({backend}, {KILLS} kills; 8 clients calling unknown tools, 4 deleting API keys)"
    );
    let (mut lost_total, mut lost_max, mut deletes_lost, mut answered, mut deletes) =
        (0, 0, 0, 0, 0);
    let mut rate = 0.0;
    for _ in 0..KILLS {
        let dir = tempfile::tempdir().unwrap();
        let url = match postgres {
            Some(admin) => fresh_postgres(admin).await,
            None => format!("sqlite://{}", dir.path().join("k.db").display()),
        };
        let r = kill_once(&url, dir.path()).await;
        println!(
            "  write-behind: {} answered, {} without a record; deletions: {} answered, {} without a record",
            r.answered_behind, r.lost_behind, r.answered_deletes, r.lost_deletes
        );
        lost_total += r.lost_behind;
        lost_max = lost_max.max(r.lost_behind);
        deletes_lost += r.lost_deletes;
        answered += r.answered_behind;
        deletes += r.answered_deletes;
        rate += r.behind_rate / KILLS as f64;
    }
    let mean = lost_total as f64 / KILLS as f64;
    println!(
        "  mean {mean:.1} (max {lost_max}) write-behind records lost per kill of {answered} answered at {rate:.0} calls/s ≈ {:.1} ms of calls; deletions lost: {deletes_lost} of {deletes}",
        mean / rate * 1000.0
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        memory().await;
        connections(None).await;
        connections(Some(500)).await;
        kills("SQLite", None).await;
        if let Ok(pg) = std::env::var("PORTCULLIS_TEST_POSTGRES_URL")
            && !pg.is_empty()
        {
            kills("PostgreSQL", Some(&pg)).await;
        }
    });
}
