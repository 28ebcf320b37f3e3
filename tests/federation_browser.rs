//! Sign-in through a real OpenID Provider, end to end in headless Chromium:
//! node-oidc-provider (`tests/browser/oidc_provider.mjs`) on loopback beside
//! a second, test-controlled provider; the official TypeScript MCP SDK
//! registers and authorizes (`tests/browser/federation.mjs`), Chromium signs
//! in at the provider's own pages and consents at ours, and `whoami` over
//! `/mcp` shows the upstream user, the org mapped from their `groups` claim
//! and scopes capped by the mapped role.

mod common;
#[path = "common/external.rs"]
mod external;
#[path = "federation/fake_idp.rs"]
mod fake_idp;

use std::{path::PathBuf, process::Stdio, time::Duration};

use common::TestServer;
use portcullis::federation::config::IdentityProviderConfig;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const SECRET_VAR: &str = "PORTCULLIS_TEST_UPSTREAM_CLIENT_SECRET";
const REDIRECT: &str = "http://127.0.0.1:47203/callback";

fn browser_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !dir.join("node_modules/oidc-provider").exists() {
        let status = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm runs");
        assert!(status.success(), "npm ci in tests/browser failed");
    }
    // Like tests/browser.rs: the test never skips for want of a browser.
    if !std::path::Path::new("/usr/bin/chromium").exists() {
        for args in [
            &["update", "-qq"][..],
            &["install", "-y", "-qq", "chromium"],
        ] {
            let status = std::process::Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .expect("apt-get runs");
            assert!(status.success(), "apt-get {args:?} failed");
        }
    }
    dir
}

/// node-oidc-provider and the test-controlled provider, and Portcullis
/// configured with both.
struct World {
    idp: tokio::process::Child,
    /// Kept open: a closed pipe would end the provider at its next log line.
    _idp_stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    issuer: String,
    server: TestServer,
    org: uuid::Uuid,
    _other: fake_idp::FakeIdp,
}

async fn world() -> World {
    let dir = browser_dir();
    external::js_dir();
    let mut idp = tokio::process::Command::new("node")
        .arg(dir.join("oidc_provider.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(idp.stdout.take().unwrap()).lines();
    let mut next_line = async || -> Value {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("oidc-provider answers")
            .unwrap()
            .expect("oidc-provider printed a line");
        serde_json::from_str(&line).unwrap()
    };
    let issuer = next_line().await["issuer"].as_str().unwrap().to_owned();
    // The tests of this binary set it to the same value.
    unsafe { std::env::set_var(SECRET_VAR, "upstream-client-secret-for-tests") };

    let other = fake_idp::FakeIdp::start("other-client").await;
    let upstream: IdentityProviderConfig = toml::from_str(&format!(
        r#"
        id = "upstream"
        name = "Upstream IdP"
        issuer = "{issuer}"
        client_id = "portcullis"
        client_secret_env = "{SECRET_VAR}"
        scopes = ["groups"]
        org_claim = "groups"
        default_role = "member"
        "#
    ))
    .unwrap();
    let fixed: IdentityProviderConfig = toml::from_str(&format!(
        "id = \"partner\"\nname = \"Partner\"\nissuer = \"{}\"\nclient_id = \"other-client\"\norg = \"acme-eng\"\nallowed_algs = [\"ES256\"]",
        other.issuer
    ))
    .unwrap();
    let server = TestServer::start_with(move |c| {
        c.identity_providers = vec![upstream, fixed];
    })
    .await;
    let setup = json!({
        "redirect_uri": server.url("/login/callback/upstream"),
        "client_id": "portcullis",
        "client_secret": "upstream-client-secret-for-tests",
        "groups": { "alice": ["acme-eng", "unknown-team"] },
    });
    let stdin = idp.stdin.as_mut().unwrap();
    stdin
        .write_all(format!("{setup}\n").as_bytes())
        .await
        .unwrap();
    stdin.flush().await.unwrap();
    assert_eq!(next_line().await["ready"], true);
    let org = server
        .state
        .store
        .create_org_with_external_id("Acme Engineering", "acme-eng")
        .await
        .unwrap()
        .id;
    World {
        idp,
        _idp_stdout: lines,
        issuer,
        server,
        org,
        _other: other,
    }
}

/// Runs tests/browser/federation.mjs with `args` after the MCP URL.
async fn browser_flow(w: &World, args: &[&str]) -> Value {
    let output = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new("node")
            .arg(browser_dir().join("federation.mjs"))
            .arg(w.server.resource())
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser flow finishes")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_client_connects_for_a_user_of_a_real_openid_provider() {
    let mut w = world().await;
    let (server, org, issuer) = (&w.server, w.org, w.issuer.clone());
    let out = browser_flow(&w, &["Upstream IdP", "alice", REDIRECT]).await;

    let whoami = &out["whoami"];
    assert_eq!(whoami["email"], "alice@upstream.example", "{out}");
    assert_eq!(whoami["org_id"], org.to_string());
    assert_eq!(whoami["source"], "mcp-oauth");
    assert_eq!(whoami["client_id"], out["client_id"]);
    // `member` by default: admin was asked for and capped away.
    assert_eq!(whoami["scopes"], json!(["mcp:read", "mcp:write"]));
    assert_eq!(out["granted_scope"], "mcp:read mcp:write");
    assert!(
        !out["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap().starts_with("delete_")),
        "{out}"
    );
    let pages: Vec<&str> = out["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    // The browser really went through the provider's own pages, and from
    // there (through the callback, a redirect) back to our consent page.
    let at_provider = pages
        .iter()
        .position(|p| p.starts_with(&issuer))
        .unwrap_or_else(|| panic!("never at the provider: {pages:?}"));
    assert!(
        pages[at_provider..]
            .iter()
            .any(|p| p.starts_with(&server.url("/authorize?"))),
        "{pages:?}"
    );
    let user_id = whoami["user_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        server.state.store.user_providers(user_id).await.unwrap(),
        ["upstream"]
    );
    // "unknown-team" names no org here and none was created.
    assert!(
        server
            .state
            .store
            .org_id_by_external_id("unknown-team")
            .await
            .unwrap()
            .is_none()
    );
    w.idp.kill().await.ok();
}

/// Not a check but a measurement, run by `scripts/measure-sign-in`: the
/// whole OAuth flow (DCR, authorize, sign-in, consent, code exchange) in
/// Chromium, through the upstream provider and through the password form,
/// alternating, in the same run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run by scripts/measure-sign-in"]
async fn measure_federated_against_password_sign_in() {
    let mut w = world().await;
    let user = w
        .server
        .user(w.org, portcullis::identity::scope::Role::Member)
        .await;
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let (mut federated, mut password) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let out = browser_flow(&w, &["Upstream IdP", "alice", REDIRECT]).await;
        federated.push(out["timings"]["flow_ms"].as_f64().unwrap());
        let out = browser_flow(&w, &["--password", &user.email, REDIRECT, &user.password]).await;
        assert_eq!(out["whoami"]["email"], user.email.as_str());
        password.push(out["timings"]["flow_ms"].as_f64().unwrap());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "sign-in flow, {rounds} rounds each, median ms: federated {:.0} (all {:?}), password {:.0} (all {:?})",
        median(&mut federated.clone()),
        federated.iter().map(|v| v.round()).collect::<Vec<_>>(),
        median(&mut password.clone()),
        password.iter().map(|v| v.round()).collect::<Vec<_>>(),
    );
    w.idp.kill().await.ok();
}
