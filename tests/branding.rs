//! Branding (README "Branding"): the product name, accent colour and
//! support link on every page and in what MCP clients read.

mod common;

use common::TestServer;
use portcullis::identity::scope::Role;
use serde_json::{Value, json};

#[tokio::test]
async fn the_configured_brand_shows_on_pages_metadata_and_mcp() {
    let server = TestServer::start_with(|c| {
        c.product_name = "Acme <AI>".into();
        c.accent_color = Some("#0a7".into());
        c.support_url = Some("https://help.acme.test/".into());
        c.logo_url = Some("/logo.svg".into());
        c.instructions = Some("Acme's CRM and billing.".into());
    })
    .await;
    let login = server
        .http
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        login.contains("<title>Sign in · Acme &lt;AI&gt;</title>"),
        "{login}"
    );
    assert!(login.contains("<span class=\"brand-name\">Acme &lt;AI&gt;</span>"));
    assert!(login.contains("src=\"/logo.svg\""));
    assert!(login.contains("href=\"https://help.acme.test/\""));
    assert!(!login.contains("pcl:brand"));
    let css = server
        .http
        .get(server.url("/static/brand.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(css.contains("--accent: #0a7"));
    let prm: Value = server
        .http
        .get(server.url("/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource_name"], "Acme <AI> MCP");

    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let key = server.api_key(&user, org, "mcp:read").await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let answer: Value = server
        .http
        .post(server.resource())
        .header("Accept", "application/json, text/event-stream")
        .header("X-Organization-Id", org.to_string())
        .bearer_auth(&key)
        .json(&init)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let result = &answer["result"];
    assert_eq!(result["serverInfo"]["name"], "portcullis");
    assert_eq!(result["serverInfo"]["title"], "Acme <AI>");
    let instructions = result["instructions"].as_str().unwrap();
    assert!(
        instructions.starts_with("Acme <AI>. Acme's CRM and billing.")
            && instructions.contains("whoami"),
        "{instructions}"
    );
    server.stop().await;
}

#[test]
fn brand_settings_are_validated_at_start() {
    let load = |k: &str, v: &str| {
        portcullis::Config::load(None, [(k.to_owned(), v.to_owned())]).map_err(|e| e.to_string())
    };
    assert!(
        load("PORTCULLIS_ACCENT_COLOR", "red")
            .unwrap_err()
            .contains("#rgb")
    );
    assert!(load("PORTCULLIS_LOGO_URL", "https://cdn.example/logo.png").is_err());
    assert!(load("PORTCULLIS_SUPPORT_URL", "javascript:alert(1)").is_err());
    assert!(load("PORTCULLIS_SUPPORT_URL", "mailto:help@acme.test").is_ok());
}
