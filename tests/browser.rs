//! The console in a real browser: headless Chromium (Debian's `chromium`)
//! driven by `tests/browser/console.mjs` with playwright-core, against the
//! real server. Screenshots of every page land in
//! `target/test-output/screenshots/`.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Stdio,
};

use common::TestServer;
use portcullis::{identity::scope::Role, store::ToolCall};
use serde_json::Value;
use uuid::Uuid;

const CHROMIUM: &str = "/usr/bin/chromium";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a setup command, failing the test loudly with its output if it fails.
fn run(program: &str, args: &[&str], dir: &Path) {
    let output = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Chromium and the Node packages, installed where missing: the test never
/// skips for want of a browser.
fn ensure_browser() {
    static READY: std::sync::Once = std::sync::Once::new();
    READY.call_once(|| {
        let root = manifest_dir();
        if !Path::new(CHROMIUM).exists() {
            eprintln!("{CHROMIUM} is missing; installing Debian's chromium package");
            run("apt-get", &["update", "-qq"], &root);
            run("apt-get", &["install", "-y", "-qq", "chromium"], &root);
        }
        assert!(Path::new(CHROMIUM).exists(), "{CHROMIUM} is still missing");
        let packages = root.join("tests/browser");
        if !packages.join("node_modules/playwright-core").exists() {
            run(
                "npm",
                &["ci", "--no-audit", "--no-fund", "--loglevel=error"],
                &packages,
            );
        }
    });
}

fn recorded_call(org: Uuid, user: Uuid, tool: &str, outcome: &str) -> ToolCall {
    ToolCall {
        id: Uuid::new_v4(),
        at: portcullis::store::now(),
        org_id: org,
        user_id: user,
        source: "mcp-oauth".into(),
        client_id: Some("recorded-client".into()),
        api_key_id: None,
        tool: tool.into(),
        outcome: outcome.into(),
        duration_ms: 12,
        upstream_status: None,
        detail: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_uses_the_console_in_chromium() {
    ensure_browser();
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let admin = server.user(org, Role::Admin).await;
    let viewer = server.user(org, Role::Viewer).await;
    // Calls made earlier by an OAuth client, so the activity page has history
    // beside the calls the browser test makes itself.
    server
        .state
        .store
        .insert_tool_calls(&[
            recorded_call(org, viewer.id, "list_widgets", "ok"),
            recorded_call(org, admin.id, "delete_widget", "denied"),
        ])
        .await
        .unwrap();

    let screenshots = manifest_dir().join("target/test-output/screenshots");
    let output = tokio::process::Command::new("node")
        .arg(manifest_dir().join("tests/browser/console.mjs"))
        .args([
            server.base.as_str(),
            admin.email.as_str(),
            admin.password.as_str(),
            viewer.email.as_str(),
            viewer.password.as_str(),
            &org.to_string(),
        ])
        .arg(&screenshots)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{stdout}\n{stderr}"));
    let steps = &report["steps"];
    let failed: Vec<String> = steps
        .as_object()
        .expect("steps")
        .iter()
        .filter(|(_, s)| s["ok"] != true)
        .map(|(name, s)| format!("{name}: {}", s["error"].as_str().unwrap_or("?")))
        .collect();
    assert!(
        output.status.success() && failed.is_empty(),
        "browser steps failed:\n{}\n{stderr}",
        failed.join("\n\n")
    );
    for step in [
        "sign_in",
        "keyboard",
        "create_key",
        "key_works_over_mcp",
        "revoke_key",
        "oauth_app",
        "viewer_cannot_create_write_key",
        "activity",
        "organization_and_connect",
        "no_script_errors",
    ] {
        assert_eq!(steps[step]["ok"], true, "{step} did not run");
    }
    assert_eq!(steps["key_works_over_mcp"]["source"], "mcp-bearer");
    assert_eq!(steps["revoke_key"]["status"], 401);
    assert_eq!(steps["oauth_app"]["userinfo_after"], 401);
    for page in [
        "login",
        "keys",
        "key-created",
        "consent",
        "apps",
        "viewer-refused",
        "activity",
        "org",
        "connect",
    ] {
        for size in ["desktop", "phone"] {
            let shot = screenshots.join(format!("{page}-{size}.png"));
            assert!(shot.exists(), "no screenshot {}", shot.display());
        }
    }
    // What the browser did is in the database too.
    assert!(
        server
            .state
            .store
            .api_keys(Some(viewer.id), None)
            .await
            .unwrap()
            .is_empty(),
        "the viewer's refused key was not created"
    );
}
