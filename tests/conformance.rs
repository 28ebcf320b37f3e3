//! The official MCP conformance suite (`@modelcontextprotocol/conformance`,
//! installed in tests/js) against a live Portcullis:
//!
//! - `conformance authorization`: the authorization-server scenarios, with
//!   `--resource`; the suite prints an authorization URL and waits for the
//!   callback, and this test signs in and consents through the real forms.
//! - `conformance server`: every server scenario of the 2025-11-25 spec.
//!   The suite sends no credential, so it talks to a small forwarding proxy
//!   that adds an API key and the org header; the proxy's address is the
//!   server's public URL, as behind a real reverse proxy.
//!
//! Failures must match tests/conformance/expected-failures.txt exactly: a
//! new failure or a baseline entry that now passes both fail the test.

mod common;
#[path = "common/external.rs"]
mod external;

use std::{
    collections::BTreeSet,
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, header},
    response::Response,
};
use common::TestServer;
use portcullis::identity::scope::Role;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

const SUITE: &str = "node_modules/@modelcontextprotocol/conformance/dist/index.js";

/// Every check of every scenario the suite wrote under `dir`, as
/// `(scenario, check id, status, message)`.
fn results(dir: &Path) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let checks = path.join("checks.json");
        if !checks.exists() {
            continue;
        }
        // Directories are named `<kind>-<scenario>-<timestamp>`, the
        // timestamp like `2026-01-02T03-04-05-678Z`.
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let without_time = &name[..name.len() - "-2026-01-02T03-04-05-678Z".len()];
        let scenario = without_time
            .strip_prefix("authorization-server-")
            .or_else(|| without_time.strip_prefix("server-"))
            .unwrap_or_else(|| panic!("unexpected result directory {name}"))
            .to_owned();
        let parsed: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(&checks).unwrap()).unwrap();
        for check in parsed {
            out.push((
                scenario.clone(),
                check["id"].as_str().unwrap_or("").to_owned(),
                check["status"].as_str().unwrap_or("").to_owned(),
                check["errorMessage"].as_str().unwrap_or("").to_owned(),
            ));
        }
    }
    out.sort();
    out
}

fn failures(results: &[(String, String, String, String)]) -> Vec<String> {
    results
        .iter()
        .filter(|(_, _, status, _)| status == "FAILURE")
        .map(|(scenario, id, _, message)| format!("{scenario}:{id}  ({message})"))
        .collect()
}

#[tokio::test]
async fn authorization_server_scenarios_pass() {
    let server = TestServer::start().await;
    let org = server.org("Conformance").await;
    let user = server.user(org, Role::Member).await;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let client = server.register_public(&[&redirect]).await;
    let out = tempfile::tempdir().unwrap();

    let mut suite = external::node();
    suite
        .arg(SUITE)
        .arg("authorization")
        .args(["--url", &server.base])
        .args(["--client-id", &client.client_id])
        .args(["--resource", &server.resource()])
        .args(["--port", &port.to_string()])
        .arg("--output-dir")
        .arg(out.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = suite.spawn().expect("conformance suite starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut transcript = String::new();
    let authorize_prefix = format!("{}/authorize?", server.base);
    let mut authorize_url = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    // The suite prints the URL, then starts its callback listener.
    loop {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no callback listener in time:\n{transcript}"))
            .unwrap()
            .unwrap_or_else(|| panic!("suite ended before asking for sign-in:\n{transcript}"));
        transcript.push_str(&line);
        transcript.push('\n');
        if line.starts_with(&authorize_prefix) {
            authorize_url = Some(line.trim().to_owned());
        }
        if line.starts_with("Callback server started") {
            break;
        }
    }
    let authorize_url = authorize_url.expect("the suite printed an authorization URL");
    assert!(authorize_url.contains("code_challenge_method=S256"));
    let callback = server
        .authorize_in_browser(&server.browser(), &authorize_url, &user, "mcp:read")
        .await;
    assert!(callback.as_str().starts_with(&redirect), "{callback}");
    let answer = reqwest::get(callback.as_str()).await.unwrap();
    assert!(answer.status().is_success());

    let drain = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            transcript.push_str(&line);
            transcript.push('\n');
        }
        child.wait().await.unwrap()
    };
    let status = tokio::time::timeout_at(deadline.into(), drain)
        .await
        .expect("suite finishes");
    let results = results(out.path());
    let failed = failures(&results);
    assert!(failed.is_empty(), "failures: {failed:#?}\n{transcript}");
    for scenario in [
        "authorization-server-metadata-endpoint",
        "authorization-code-grant",
    ] {
        assert!(
            results
                .iter()
                .any(|(s, _, status, _)| s == scenario && status == "SUCCESS"),
            "{scenario} did not pass: {results:#?}"
        );
    }
    assert!(
        results.iter().all(|(_, _, status, _)| status == "SUCCESS"),
        "{results:#?}"
    );
    assert!(status.success(), "{status}\n{transcript}");
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    credentials: Vec<(String, String)>,
    http: reqwest::Client,
}

/// Forwards a request unchanged (Host and Origin included) to the server,
/// adding the credential headers, and streams the answer back.
async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 4 << 20).await.unwrap();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = parts.headers.clone();
    for hop in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::CONTENT_LENGTH,
    ] {
        headers.remove(hop);
    }
    for (name, value) in &proxy.credentials {
        headers.insert(
            header::HeaderName::try_from(name.as_str()).unwrap(),
            HeaderValue::try_from(value.as_str()).unwrap(),
        );
    }
    let upstream = proxy
        .http
        .request(parts.method, format!("{}{path}", proxy.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await
        .unwrap();
    let mut response = Response::builder().status(upstream.status());
    for (name, value) in upstream.headers() {
        if name != header::TRANSFER_ENCODING && name != header::CONNECTION {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(upstream.bytes_stream()))
        .unwrap()
}

/// `scenario` or `scenario:check-id` per line, then the reason.
fn baseline(file: &str) -> BTreeSet<String> {
    let path = external::repo().join("tests/conformance").join(file);
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (entry, reason) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            assert!(!reason.trim().is_empty(), "{entry} needs a reason");
            entry.to_owned()
        })
        .collect()
}

#[tokio::test]
async fn server_scenarios_pass_except_the_baseline() {
    server_scenarios(
        "2025-11-25",
        "expected-failures.txt",
        &[
            "server-initialize",
            "ping",
            "tools-list",
            "json-schema-2020-12",
            "server-sse-polling",
            "server-sse-multiple-streams",
            "dns-rebinding-protection",
        ],
    )
    .await;
}

/// Revision 2026-07-28: stateless core, `server/discover`, standard headers.
#[tokio::test]
async fn server_scenarios_of_2026_07_28_pass_except_the_baseline() {
    server_scenarios(
        "2026-07-28",
        "expected-failures-2026-07-28.txt",
        &[
            "server-stateless",
            "tools-list",
            "caching",
            "http-header-validation",
            "dns-rebinding-protection",
        ],
    )
    .await;
}

/// Runs every server scenario of `spec_version`; failures must be exactly
/// those listed in `tests/conformance/{baseline_file}`.
async fn server_scenarios(spec_version: &str, baseline_file: &str, must_run: &[&str]) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let server = TestServer::start_with(|c| c.public_url = public.clone()).await;
    let org = server.org("Conformance").await;
    let user = server.user(org, Role::Admin).await;
    let key = server
        .api_key(&user, org, "mcp:read mcp:write mcp:admin")
        .await;
    let proxy = Proxy {
        upstream: server.base.clone(),
        credentials: vec![
            ("authorization".into(), format!("Bearer {key}")),
            (server.state.config.org_header.clone(), org.to_string()),
        ],
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap(),
    };
    let app = Router::new().fallback(forward).with_state(proxy);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let out = tempfile::tempdir().unwrap();
    let mut suite = external::node();
    suite
        .arg(SUITE)
        .arg("server")
        .args(["--url", &format!("{public}/mcp")])
        .args(["--suite", "all", "--spec-version", spec_version])
        .arg("--output-dir")
        .arg(out.path());
    let output = tokio::time::timeout(Duration::from_secs(300), suite.output())
        .await
        .expect("suite finishes")
        .unwrap();
    let transcript = String::from_utf8_lossy(&output.stdout);
    let results = results(out.path());
    let ran: BTreeSet<&str> = results.iter().map(|(s, ..)| s.as_str()).collect();
    for scenario in must_run {
        assert!(
            ran.contains(*scenario),
            "{scenario} did not run:\n{transcript}"
        );
    }

    let expected = baseline(baseline_file);
    let failed: Vec<String> = failures(&results);
    let unexpected: Vec<&String> = failed
        .iter()
        .filter(|f| {
            let (scenario_check, _) = f.split_once("  ").unwrap();
            let scenario = scenario_check.split(':').next().unwrap();
            !expected.contains(scenario_check) && !expected.contains(scenario)
        })
        .collect();
    let stale: Vec<&String> = expected
        .iter()
        .filter(|entry| {
            !failed.iter().any(|f| {
                let (scenario_check, _) = f.split_once("  ").unwrap();
                scenario_check == entry.as_str()
                    || scenario_check.split(':').next() == Some(entry.as_str())
            })
        })
        .collect();
    assert!(
        unexpected.is_empty() && stale.is_empty(),
        "unexpected failures: {unexpected:#?}\nbaseline entries that no longer fail: {stale:#?}\n{transcript}"
    );
    let passed = results
        .iter()
        .filter(|(_, _, status, _)| status == "SUCCESS")
        .count();
    assert!(passed >= 30, "only {passed} checks passed:\n{transcript}");
}
