//! The console's machine-access page (issue 16): an org admin trusts an
//! enterprise identity provider, creates a service client whose secret is
//! shown once and works at `/token`, sees its calls in the activity, and
//! revokes it; members who are not admins cannot reach the page.

mod common;
#[path = "common/compat.rs"]
mod compat;

use common::{TestServer, TestUser, hidden};
use portcullis::identity::scope::Role;
use reqwest::StatusCode;

async fn signed_in(server: &TestServer, user: &TestUser) -> reqwest::Client {
    let browser = server.browser();
    let status = server.sign_in(&browser, &user.email, &user.password).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    browser
}

async fn get(browser: &reqwest::Client, server: &TestServer, path: &str) -> (StatusCode, String) {
    let response = browser.get(server.url(path)).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

fn code_text(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in {html}"))
        + marker.len();
    let end = start + html[start..].find('<').unwrap();
    html[start..end].to_owned()
}

#[tokio::test]
async fn an_admin_manages_identity_providers_and_service_clients() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let admin = server.user(org, Role::Admin).await;
    let browser = signed_in(&server, &admin).await;
    let path = format!("/console/org/machines?org={org}");
    let (status, html) = get(&browser, &server, &path).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = hidden(&html, "csrf");
    let org_text = org.to_string();

    // Trust an IdP; a symmetric algorithm is refused with a readable error.
    let refused = browser
        .post(server.url("/console/org/machines/idps"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("org", &org_text),
            ("issuer", "https://idp.example.com"),
            ("jwks_uri", "https://idp.example.com/jwks"),
            ("algorithms", "HS256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("not an asymmetric"));
    let trusted = browser
        .post(server.url("/console/org/machines/idps"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("org", &org_text),
            ("issuer", "https://idp.example.com"),
            ("jwks_uri", "https://idp.example.com/jwks"),
            ("algorithms", "RS256"),
            ("link_by_email", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(trusted.status(), StatusCode::SEE_OTHER);
    let idps = server.state.store.enterprise_idps(org).await.unwrap();
    assert_eq!(idps.len(), 1);
    assert!(idps[0].link_by_email);

    // Create a service client: the secret is on this answer only.
    let created = browser
        .post(server.url("/console/org/machines/clients"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("org", &org_text),
            ("name", "Console robot"),
            ("role", "viewer"),
            ("scopes", ""),
            ("jwks_uri", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::OK);
    let html = created.text().await.unwrap();
    let client_id = code_text(&html, "created-client-id");
    let secret = code_text(&html, "created-client-secret");
    let (_, again) = get(&browser, &server, &path).await;
    assert!(again.contains("Console robot") && !again.contains(&secret));

    let (status, body) = server
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "mcp:read");
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        compat::whoami(&server, &token).await["client_name"],
        "Console robot"
    );

    // Its call is in the activity, under its name.
    let shown = activity_shows_the_call(&browser, &server, org).await;
    assert!(shown, "the service client's call is not in the activity");

    // Revoked from the console: refused at once on this instance.
    let revoked = browser
        .post(server.url("/console/org/machines/clients/revoke"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("org", &org_text),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    let status = server
        .http
        .post(server.resource())
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A member who is not an admin cannot see the page.
    let member = server.user(org, Role::Member).await;
    let member_browser = signed_in(&server, &member).await;
    let (status, _) = get(&member_browser, &server, &path).await;
    assert_ne!(status, StatusCode::OK);
}

/// Polls the activity page until it shows the service client's call (the
/// audit log is written in the background).
async fn activity_shows_the_call(
    browser: &reqwest::Client,
    server: &TestServer,
    org: uuid::Uuid,
) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let (_, html) = get(browser, server, &format!("/console/activity?org={org}")).await;
        if html.contains("service client Console robot") && html.contains("mcp-client-credentials")
        {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    false
}
