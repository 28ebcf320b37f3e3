//! OAuth figures: `cargo bench --bench oauth`.
//!
//! Starts a real server (release build) on loopback against SQLite in a temp
//! dir, and again against PostgreSQL when `PORTCULLIS_TEST_POSTGRES_URL` is set
//! (a fresh database is created there), and measures for each:
//! - the baseline: `GET /healthz`, sequential latency and closed-loop
//!   throughput with `CONCURRENCY` connections;
//! - the token endpoint: refresh-token grants (rotation included), p50/p99
//!   sequentially, and throughput with `CONCURRENCY` distinct grants each
//!   refreshed in a chain;
//! - authorization-code exchanges: throughput over many distinct codes;
//! - `/introspect` by a confidential client: throughput over distinct tokens;
//! - a complete flow: registration, authorize, sign-in (argon2id), consent,
//!   code exchange — the time a user waits on the server, excluding clicks.
//!
//! `PORTCULLIS_BENCH_SECS` sets the seconds per throughput measurement (5).

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use portcullis::{Config, identity::scope::Role};
use reqwest::{Client, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const CALLBACK: &str = "http://127.0.0.1:9/callback";
const CONCURRENCY: usize = 32;

fn duration() -> Duration {
    Duration::from_secs(
        std::env::var("PORTCULLIS_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5),
    )
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    (at(0.5), at(0.99))
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#61;", "=")
        .replace("&#43;", "+")
}

/// A signed-in browser with one registered public client.
struct Browser {
    http: Client,
    base: String,
    client_id: String,
}

/// Follows redirects by hand from `next`, signing in and consenting where
/// asked, until the callback; returns the code.
async fn code_for(browser: &Browser, email: &str, password: &str) -> (String, String) {
    let base = &browser.base;
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut url = url::Url::parse(&format!("{base}/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &browser.client_id)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("scope", "mcp:read mcp:write")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let mut next = url.to_string();
    let code = loop {
        let r = browser.http.get(&next).send().await.unwrap();
        let location = if r.status().is_redirection() {
            r.headers()[header::LOCATION].to_str().unwrap().to_owned()
        } else {
            let page_url = r.url().clone();
            let html = r.text().await.unwrap();
            let posted = if page_url.path() == "/login" {
                browser
                    .http
                    .post(format!("{base}/login"))
                    .form(&[
                        ("csrf", hidden(&html, "csrf")),
                        ("next", hidden(&html, "next")),
                        ("email", email.into()),
                        ("password", password.into()),
                    ])
                    .send()
                    .await
                    .unwrap()
            } else {
                browser
                    .http
                    .post(format!("{base}/consent"))
                    .form(&[
                        ("csrf", hidden(&html, "csrf")),
                        ("request", hidden(&html, "request")),
                        ("org_id", hidden(&html, "org_id")),
                        ("decision", "approve".into()),
                        ("grant_write", "on".into()),
                    ])
                    .send()
                    .await
                    .unwrap()
            };
            posted.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .to_owned()
        };
        if location.starts_with(CALLBACK) {
            let callback = url::Url::parse(&location).unwrap();
            break callback
                .query_pairs()
                .find(|(k, _)| k == "code")
                .unwrap()
                .1
                .into_owned();
        }
        next = url::Url::parse(base)
            .unwrap()
            .join(&location)
            .unwrap()
            .to_string();
    };
    (code, verifier)
}

async fn exchange(http: &Client, base: &str, client_id: &str, code: &str, verifier: &str) -> Value {
    let r = http
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "code exchange: {}", r.status());
    r.json().await.unwrap()
}

async fn new_browser(base: &str) -> Browser {
    let http = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let client: Value = http
        .post(format!("{base}/register"))
        .json(&json!({ "client_name": "bench", "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Browser {
        http,
        base: base.to_owned(),
        client_id: client["client_id"].as_str().unwrap().to_owned(),
    }
}

/// Registration, authorize, sign-in, consent and code exchange, from a
/// fresh browser; returns the browser (signed in) and the tokens.
async fn full_flow(base: &str, email: &str, password: &str) -> (Browser, Value) {
    let browser = new_browser(base).await;
    let (code, verifier) = code_for(&browser, email, password).await;
    let tokens = exchange(&browser.http, base, &browser.client_id, &code, &verifier).await;
    (browser, tokens)
}

/// Runs `work` on `CONCURRENCY` workers until the deadline; returns calls/s.
async fn throughput<F, Fut>(work: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let work = Arc::new(work);
    let deadline = Instant::now() + duration();
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CONCURRENCY {
        let (work, done) = (work.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                work(worker).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn row(what: &str, figure: String, baseline: String) {
    println!("{what:<58} {figure:>22} {baseline:>22}");
}

async fn database_url(dir: &std::path::Path, postgres: Option<&str>) -> String {
    match postgres {
        Some(admin_url) => {
            let name = format!("pcl_bench_{}", uuid::Uuid::new_v4().simple());
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
        None => format!("sqlite://{}", dir.join("bench.db").display()),
    }
}

async fn suite(label: &str, postgres: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut config = Config::load(None, std::iter::empty()).unwrap();
    config.public_url = base.clone();
    config.database_url = database_url(dir.path(), postgres).await;
    config.keys_dir = dir.path().join("keys");
    // The benchmark measures the endpoints, not the per-IP limits.
    config.registrations_per_ip_per_hour = u32::MAX / 2;
    let state = portcullis::build(config).await.unwrap();
    let serving = state.clone();
    tokio::spawn(async move {
        portcullis::run(listener, serving, std::future::pending())
            .await
            .unwrap()
    });
    let org: uuid::Uuid = portcullis::admin::create_org(&state.store, "Bench")
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (email, password) = ("bench@example.test", "bench-password-123");
    portcullis::admin::create_user(
        &state.store,
        &state.passwords,
        email,
        password,
        org,
        Role::Member,
    )
    .await
    .unwrap();

    let http = Client::builder()
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .build()
        .unwrap();
    let mut baseline = Vec::new();
    for _ in 0..500 {
        let started = Instant::now();
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        baseline.push(started.elapsed());
    }
    let healthz_rate = {
        let (http, base) = (http.clone(), base.clone());
        throughput(move |_| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                http.get(format!("{base}/healthz"))
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
            }
        })
        .await
    };

    // Distinct grants: one flow (one argon2id sign-in) per worker.
    let mut flows = Vec::new();
    let mut grants = Vec::new();
    let mut browsers = Vec::new();
    for _ in 0..CONCURRENCY {
        let started = Instant::now();
        let (browser, tokens) = full_flow(&base, email, password).await;
        flows.push(started.elapsed());
        grants.push((
            browser.client_id.clone(),
            tokens["refresh_token"].as_str().expect("tokens").to_owned(),
            tokens["access_token"].as_str().expect("tokens").to_owned(),
        ));
        browsers.push(browser);
    }

    // Sequential refreshes on one grant, for latency.
    let (client_id, mut refresh, _) = grants[0].clone();
    let mut refreshes = Vec::new();
    for _ in 0..500 {
        let started = Instant::now();
        let body: Value = http
            .post(format!("{base}/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
                ("client_id", client_id.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        refreshes.push(started.elapsed());
        refresh = body["refresh_token"].as_str().expect("rotated").to_owned();
    }
    grants[0].1 = refresh;

    // Refresh throughput: each worker rotates its own grant's chain.
    let chains: Arc<Vec<tokio::sync::Mutex<(String, String)>>> = Arc::new(
        grants
            .iter()
            .map(|(client, refresh, _)| tokio::sync::Mutex::new((client.clone(), refresh.clone())))
            .collect(),
    );
    let refresh_rate = {
        let (http, base, chains) = (http.clone(), base.clone(), chains.clone());
        throughput(move |worker| {
            let (http, base, chains) = (http.clone(), base.clone(), chains.clone());
            async move {
                let mut chain = chains[worker].lock().await;
                let body: Value = http
                    .post(format!("{base}/token"))
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", chain.1.as_str()),
                        ("client_id", chain.0.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                chain.1 = body["refresh_token"].as_str().expect("rotated").to_owned();
            }
        })
        .await
    };

    // Code exchanges: codes made first (their lifetime is 60 s), then
    // exchanged by all workers at once.
    let mut codes = Vec::new();
    let making = Instant::now();
    while codes.len() < 2_000 && making.elapsed() < Duration::from_secs(20) {
        let batch = browsers.iter().map(|b| code_for(b, email, password));
        for (i, code) in futures_join(batch).await.into_iter().enumerate() {
            codes.push((browsers[i].client_id.clone(), code));
        }
    }
    let code_count = codes.len();
    let codes = Arc::new(codes);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (http, base, codes, next) = (http.clone(), base.clone(), codes.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while let Some((client_id, (code, verifier))) =
                codes.get(next.fetch_add(1, Ordering::Relaxed))
            {
                exchange(&http, &base, client_id, code, verifier).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let code_rate = code_count as f64 / started.elapsed().as_secs_f64();

    // Introspection by a confidential client (a resource server).
    let rs: Value = http
        .post(format!("{base}/register"))
        .json(&json!({ "client_name": "resource server", "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "client_secret_basic" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rs = Arc::new((
        rs["client_id"].as_str().unwrap().to_owned(),
        rs["client_secret"].as_str().unwrap().to_owned(),
    ));
    let access: Arc<Vec<String>> = Arc::new(grants.iter().map(|g| g.2.clone()).collect());
    let introspect_rate = {
        let (http, base) = (http.clone(), base.clone());
        throughput(move |worker| {
            let (http, base, rs, access) = (http.clone(), base.clone(), rs.clone(), access.clone());
            async move {
                let body: Value = http
                    .post(format!("{base}/introspect"))
                    .basic_auth(&rs.0, Some(&rs.1))
                    .form(&[("token", access[worker].as_str())])
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(body["active"], true, "introspection: {body}");
            }
        })
        .await
    };

    let (b50, b99) = percentiles(baseline);
    let (t50, t99) = percentiles(refreshes);
    let (f50, f99) = percentiles(flows);
    println!("\n{label}");
    row("", "figure".into(), "GET /healthz".into());
    row(
        "token endpoint, refresh grant with rotation, p50 / p99",
        format!("{t50:.2?} / {t99:.2?}"),
        format!("{b50:.2?} / {b99:.2?}"),
    );
    row(
        &format!("refresh grants/s, {CONCURRENCY} distinct grants"),
        format!("{refresh_rate:.0}/s"),
        format!("{healthz_rate:.0}/s"),
    );
    row(
        &format!("authorization-code exchanges/s, {code_count} codes"),
        format!("{code_rate:.0}/s"),
        format!("{healthz_rate:.0}/s"),
    );
    row(
        &format!("/introspect/s, {CONCURRENCY} distinct tokens"),
        format!("{introspect_rate:.0}/s"),
        format!("{healthz_rate:.0}/s"),
    );
    row(
        "full flow (DCR→authorize→login→consent→token), p50 / p99",
        format!("{f50:.2?} / {f99:.2?}"),
        String::new(),
    );
}

/// Runs the futures concurrently on this task and collects their outputs.
async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out = Vec::with_capacity(set.len());
    // Polled together: each code needs a few round trips, and waiting for
    // them one by one would make the code-making phase outlast code lifetime.
    let mut pending: Vec<_> = set.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().map(|r| r.expect("ready")));
    out
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        suite("SQLite", None).await;
        match std::env::var("PORTCULLIS_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => suite("PostgreSQL", Some(&url)).await,
            _ => println!("\n(PostgreSQL skipped: PORTCULLIS_TEST_POSTGRES_URL is not set)"),
        }
    });
}
