//! What the console shows follows the organization chosen in the switcher;
//! connected apps are one row per app; consent never pre-ticks admin; error
//! pages offer a way back.

mod common;

use common::{TestServer, hidden};
use portcullis::identity::scope::Role;
use reqwest::StatusCode;

#[tokio::test]
async fn keys_and_apps_follow_the_org_switcher_and_apps_are_one_row_each() {
    let server = TestServer::start().await;
    let acme = server.org("Acme").await;
    let globex = server.org("Globex").await;
    let user = server.user(acme, Role::Admin).await;
    // One app connected in Acme (before a second org makes consent ask which).
    let first = server.oauth_tokens(&user, "mcp:read").await;
    server.add_to_org(&user, globex, Role::Member).await;
    let acme_key = server.api_key(&user, acme, "mcp:read").await;
    let globex_key = server.api_key(&user, globex, "mcp:read").await;
    let browser = server.browser();
    server.sign_in(&browser, &user.email, &user.password).await;
    let page = |path: String| {
        let browser = browser.clone();
        let url = server.url(&path);
        async move { browser.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let id = |key: &str| key.split('_').nth(1).unwrap()[..8].to_owned();

    let keys = page(format!("/console/keys?org={acme}")).await;
    assert!(keys.contains(&id(&acme_key)) && !keys.contains(&id(&globex_key)));
    let keys = page(format!("/console/keys?org={globex}")).await;
    assert!(keys.contains(&id(&globex_key)) && !keys.contains(&id(&acme_key)));

    let grant_org = server
        .state
        .store
        .grants(Some(user.id), None)
        .await
        .unwrap()[0]
        .org_id;
    let other_org = if grant_org == acme { globex } else { acme };
    let apps = page(format!("/console/apps?org={grant_org}")).await;
    assert_eq!(apps.matches("name=\"client_id\"").count(), 1);
    assert!(apps.contains("Test client"));
    let apps_elsewhere = page(format!("/console/apps?org={other_org}")).await;
    assert!(apps_elsewhere.contains("No apps are connected"));

    let disconnect = browser
        .post(server.url("/console/apps/revoke"))
        .form(&[
            ("csrf", hidden(&apps, "csrf")),
            ("client_id", first.client_id.clone()),
            ("org", grant_org.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(disconnect.status(), StatusCode::SEE_OTHER);
    assert!(
        server
            .state
            .store
            .grants(Some(user.id), None)
            .await
            .unwrap()
            .is_empty()
    );
    server.stop().await;
}

#[tokio::test]
async fn consent_never_pre_ticks_admin_and_error_pages_lead_back() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Admin).await;
    let client = server.register_public(&[common::CALLBACK]).await;
    let pkce = common::Pkce::new();
    let url = server.authorize_url(
        &client.client_id,
        common::CALLBACK,
        "mcp:read mcp:write mcp:admin",
        &pkce,
        "s",
    );
    let browser = server.browser();
    server.sign_in(&browser, &user.email, &user.password).await;
    let consent = browser
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let admin_box = consent
        .split("<label")
        .find(|l| l.contains("grant_admin"))
        .expect("admin is offered to an admin");
    assert!(!admin_box.contains("checked"), "{admin_box}");
    let write_box = consent
        .split("<label")
        .find(|l| l.contains("grant_write"))
        .unwrap();
    assert!(write_box.contains("checked"));

    let missing = server
        .http
        .get(server.url("/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(
        missing
            .text()
            .await
            .unwrap()
            .contains("Back to the console")
    );
    server.stop().await;
}
