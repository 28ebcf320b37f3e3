//! Token endpoint rate for the jwt-bearer grant (an ID-JAG from an enterprise
//! IdP, README "Enterprise sign-in (identity assertions)") against the
//! refresh-token grant, in the same run, on the same server:
//! `CARGO_TARGET_DIR=/work/bench-target cargo bench --bench assertions`.
//!
//! One confidential client (HTTP Basic) makes both kinds of request, so only
//! the grant differs. ID-JAGs are signed (ES256) before the measurement so
//! the bench client's signing does not share the cores with the server while
//! it is measured; each has its own `jti` (spent in the database on use).
//! SQLite in a temp dir, and PostgreSQL too when
//! `PORTCULLIS_TEST_POSTGRES_URL` is set. `PORTCULLIS_BENCH_SECS` sets the
//! seconds per measurement (5).

#[path = "../tests/common/signer.rs"]
mod signer;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use portcullis::{
    Config,
    identity::{scope::Role, secret},
    machine_admin,
    store::{self, AuthCode},
};
use reqwest::Client;
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
    config.registrations_per_ip_per_hour = u32::MAX / 2;
    // The IdP's JWKS is served on loopback (the test-only switch).
    config.cimd_allow_loopback = true;
    let state = portcullis::build(config).await.unwrap();
    let serving = state.clone();
    tokio::spawn(async move {
        portcullis::run(listener, serving, std::future::pending())
            .await
            .unwrap()
    });
    let store = &state.store;
    let org: uuid::Uuid = portcullis::admin::create_org(store, "Bench").await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let email = "bench@example.test";
    let user: uuid::Uuid = portcullis::admin::create_user(
        store,
        &state.passwords,
        email,
        "bench-password-123",
        org,
        Role::Member,
    )
    .await
    .unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let idp = signer::Signer::start().await;
    machine_admin::trust_idp(store, org, &idp.base, &idp.jwks_uri, None, false)
        .await
        .unwrap();
    machine_admin::link_identity(store, &idp.base, "bench-subject", email)
        .await
        .unwrap();
    let http = Client::builder()
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .build()
        .unwrap();
    let client: Value = http
        .post(format!("{base}/register"))
        .json(&json!({ "client_name": "bench", "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "client_secret_basic" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    let client_secret = client["client_secret"].as_str().unwrap().to_owned();

    // One grant per worker, from a code written to the store and exchanged.
    let mut chains = Vec::new();
    for _ in 0..CONCURRENCY {
        let code = uuid::Uuid::new_v4().to_string();
        let verifier = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let now = store::now();
        store
            .insert_code(&AuthCode {
                code_hash: secret::hash(&code),
                client_id: client_id.clone(),
                client_name: "bench".into(),
                user_id: user,
                org_id: org,
                redirect_uri: CALLBACK.into(),
                code_challenge: URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
                scope: portcullis::identity::scope::ScopeSet::parse_lenient("mcp:read mcp:write"),
                resource: format!("{base}/mcp"),
                nonce: None,
                created_at: now,
                expires_at: now + 60,
                grant_id: None,
            })
            .await
            .unwrap();
        let tokens: Value = http
            .post(format!("{base}/token"))
            .basic_auth(&client_id, Some(&client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", CALLBACK),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        chains.push(tokio::sync::Mutex::new(
            tokens["refresh_token"].as_str().expect("tokens").to_owned(),
        ));
    }
    let chains = Arc::new(chains);

    // Warm-up: one exchange fetches and caches the IdP's JWKS.
    let mint = |idp: &signer::Signer| {
        idp.sign(
            "oauth-id-jag+jwt",
            &idp.id_jag_claims(&base, &client_id, "bench-subject", "mcp:read mcp:write"),
        )
    };
    let warm = http
        .post(format!("{base}/token"))
        .basic_auth(&client_id, Some(&client_secret))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", mint(&idp).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert!(warm.status().is_success(), "jwt-bearer: {}", warm.status());
    let minting = Instant::now();
    let budget = 40_000;
    let assertions: Arc<Vec<String>> = Arc::new((0..budget).map(|_| mint(&idp)).collect());
    eprintln!(
        "{label}: {budget} ID-JAGs signed in {:?}",
        minting.elapsed()
    );

    let refresh_rate = {
        let (http, base, chains) = (http.clone(), base.clone(), chains.clone());
        let (id, secret) = (client_id.clone(), client_secret.clone());
        throughput(move |worker| {
            let (http, base, chains) = (http.clone(), base.clone(), chains.clone());
            let (id, secret) = (id.clone(), secret.clone());
            async move {
                let mut chain = chains[worker].lock().await;
                let body: Value = http
                    .post(format!("{base}/token"))
                    .basic_auth(&id, Some(&secret))
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", chain.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                *chain = body["refresh_token"].as_str().expect("rotated").to_owned();
            }
        })
        .await
    };

    let next = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let jwt_bearer_rate = {
        let (http, base, assertions) = (http.clone(), base.clone(), assertions.clone());
        let (id, secret, next, refused) = (
            client_id.clone(),
            client_secret.clone(),
            next.clone(),
            refused.clone(),
        );
        throughput(move |_| {
            let (http, base, assertions) = (http.clone(), base.clone(), assertions.clone());
            let (id, secret, next, refused) =
                (id.clone(), secret.clone(), next.clone(), refused.clone());
            async move {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(assertion) = assertions.get(i) else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return;
                };
                let status = http
                    .post(format!("{base}/token"))
                    .basic_auth(&id, Some(&secret))
                    .form(&[
                        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                        ("assertion", assertion.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .status();
                if !status.is_success() {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .await
    };
    let used = next.load(Ordering::Relaxed);
    assert!(
        used < budget,
        "the bench ran out of pre-signed assertions ({budget}); raise the budget"
    );
    assert_eq!(
        refused.load(Ordering::Relaxed),
        0,
        "an exchange was refused"
    );
    println!(
        "{label}: token endpoint, {CONCURRENCY} workers, {:?} each",
        duration()
    );
    println!("{label}:   refresh_token grant (rotation)          {refresh_rate:>8.0} /s");
    println!("{label}:   jwt-bearer grant (ID-JAG, ES256, jti)   {jwt_bearer_rate:>8.0} /s");
    println!(
        "{label}:   ratio jwt-bearer / refresh             {:>8.2}",
        jwt_bearer_rate / refresh_rate
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        suite("sqlite", None).await;
        if let Ok(url) = std::env::var("PORTCULLIS_TEST_POSTGRES_URL") {
            suite("postgres", Some(&url)).await;
        }
    });
}
