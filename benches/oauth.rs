//! OAuth figures: `cargo bench --bench oauth`.
//!
//! Starts a real server (release build, SQLite in a temp dir) and measures,
//! sequentially over loopback:
//! - the token endpoint: refresh-token grants (rotation included), p50/p99;
//! - a complete flow: registration, authorize, sign-in (argon2id), consent,
//!   code exchange — the time a user waits on the server, excluding clicks;
//! - the baseline: `GET /healthz` on the same connection, for the ratio.

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use portcullis::{Config, identity::scope::Role};
use reqwest::{Client, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const CALLBACK: &str = "http://127.0.0.1:9/callback";

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

async fn full_flow(base: &str, email: &str, password: &str) -> String {
    let browser = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let client: Value = browser
        .post(format!("{base}/register"))
        .json(&json!({ "client_name": "bench", "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut url = url::Url::parse(&format!("{base}/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("scope", "mcp:read mcp:write")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let mut next = url.to_string();
    let code = loop {
        let r = browser.get(&next).send().await.unwrap();
        let location = if r.status().is_redirection() {
            r.headers()[header::LOCATION].to_str().unwrap().to_owned()
        } else {
            let page_url = r.url().clone();
            let html = r.text().await.unwrap();
            let posted = if page_url.path() == "/login" {
                browser
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
    let tokens: Value = browser
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &verifier),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    format!(
        "{}\n{}",
        client_id,
        tokens["refresh_token"].as_str().expect("tokens")
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let mut config = Config::load(None, std::iter::empty()).unwrap();
        config.public_url = base.clone();
        config.database_url = format!("sqlite://{}", dir.path().join("bench.db").display());
        config.keys_dir = dir.path().join("keys");
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

        let http = Client::new();
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

        let mut flows = Vec::new();
        let mut refresh = String::new();
        let mut client_id = String::new();
        for _ in 0..20 {
            let started = Instant::now();
            let out = full_flow(&base, email, password).await;
            flows.push(started.elapsed());
            let (id, token) = out.split_once('\n').unwrap();
            client_id = id.to_owned();
            refresh = token.to_owned();
        }

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

        let (b50, b99) = percentiles(baseline);
        let (t50, t99) = percentiles(refreshes);
        let (f50, f99) = percentiles(flows);
        println!("{:<44} {:>10} {:>10} {:>8}", "", "p50", "p99", "p50 ratio");
        println!(
            "{:<44} {:>10.2?} {:>10.2?} {:>8.1}",
            "baseline GET /healthz", b50, b99, 1.0
        );
        println!(
            "{:<44} {:>10.2?} {:>10.2?} {:>8.1}",
            "token endpoint (refresh grant, rotation)",
            t50,
            t99,
            t50.as_secs_f64() / b50.as_secs_f64()
        );
        println!(
            "{:<44} {:>10.2?} {:>10.2?} {:>8.1}",
            "full flow (DCR→authorize→login→consent→token)",
            f50,
            f99,
            f50.as_secs_f64() / b50.as_secs_f64()
        );
    });
}
