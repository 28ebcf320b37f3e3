//! Account lifecycle in the console (README "Accounts"), through the real
//! forms: changing one's own password, and an org admin removing,
//! disabling, enabling and resetting members and renaming the org.

mod common;

use common::{PASSWORD, TestServer, TestUser, hidden};
use portcullis::identity::scope::Role;
use reqwest::{Client, StatusCode, header};

async fn get(server: &TestServer, browser: &Client, path: &str) -> (StatusCode, String) {
    let r = browser.get(server.url(path)).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn post(
    server: &TestServer,
    browser: &Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    browser
        .post(server.url(path))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn signed_in(server: &TestServer, user: &TestUser) -> Client {
    let browser = server.browser();
    assert_eq!(
        server.sign_in(&browser, &user.email, &user.password).await,
        StatusCode::SEE_OTHER
    );
    browser
}

#[tokio::test]
async fn a_user_changes_their_password_and_other_sessions_end() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let here = signed_in(&server, &user).await;
    let elsewhere = signed_in(&server, &user).await;

    let (status, page) = get(&server, &here, "/console/account").await;
    assert_eq!(status, StatusCode::OK);
    let csrf = hidden(&page, "csrf");
    let wrong = post(
        &server,
        &here,
        "/console/account/password",
        &[
            ("csrf", &csrf),
            ("current", "not my password"),
            ("password", "a new long passphrase"),
            ("confirm", "a new long passphrase"),
        ],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert!(wrong.text().await.unwrap().contains("current password"));
    let short = post(
        &server,
        &here,
        "/console/account/password",
        &[
            ("csrf", &csrf),
            ("current", PASSWORD),
            ("password", "too short"),
            ("confirm", "too short"),
        ],
    )
    .await;
    assert_eq!(short.status(), StatusCode::BAD_REQUEST);
    assert!(short.text().await.unwrap().contains("at least 12"));

    let done = post(
        &server,
        &here,
        "/console/account/password",
        &[
            ("csrf", &csrf),
            ("current", PASSWORD),
            ("password", "a new long passphrase"),
            ("confirm", "a new long passphrase"),
        ],
    )
    .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let (status, page) = get(&server, &here, "/console/account?notice=password-changed").await;
    assert_eq!(status, StatusCode::OK, "this session stays");
    assert!(page.contains("Your other sessions were signed out"));
    let (status, _) = get(&server, &elsewhere, "/console/keys").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the other session ended");
    assert_eq!(
        server
            .sign_in(&server.browser(), &user.email, "a new long passphrase")
            .await,
        StatusCode::SEE_OTHER
    );
    server.stop().await;
}

#[tokio::test]
async fn an_admin_disables_resets_removes_members_and_renames_the_org() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let other = server.org("Globex").await;
    let admin = server.user(org, Role::Admin).await;
    let member = server.user(org, Role::Member).await;
    let shared = server.user(org, Role::Member).await;
    server.add_to_org(&shared, other, Role::Member).await;
    let browser = signed_in(&server, &admin).await;
    let path = format!("/console/org?org={org}");
    let (status, page) = get(&server, &browser, &path).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = hidden(&page, "csrf");
    let org_s = org.to_string();
    let member_s = member.id.to_string();
    let shared_s = shared.id.to_string();
    let act = |action: &'static str, user: String| {
        let browser = browser.clone();
        let url = server.url(&format!("/console/org/{action}"));
        let fields = vec![
            ("csrf".to_owned(), csrf.clone()),
            ("org".to_owned(), org_s.clone()),
            ("user_id".to_owned(), user),
        ];
        async move { browser.post(url).form(&fields).send().await.unwrap() }
    };

    // Disable: the member cannot sign in; enable: they can again.
    let r = act("disable", member_s.clone()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = get(&server, &browser, &path).await;
    assert!(page.contains("disabled"));
    let refused = server
        .sign_in_then(&server.browser(), &member.email, PASSWORD, "/")
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        act("enable", member_s.clone()).await.status(),
        StatusCode::SEE_OTHER
    );
    signed_in(&server, &member).await;

    // An account that also belongs to an org this admin does not run is
    // not theirs to disable or reset.
    assert_eq!(
        act("disable", shared_s.clone()).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        act("reset-link", shared_s.clone()).await.status(),
        StatusCode::FORBIDDEN
    );

    // A reset link, used once through its page.
    let r = act("reset-link", member_s.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    let start = page.find("/reset?token=").unwrap();
    let end = start + page[start..].find('"').unwrap();
    let link = page[start..end].to_owned();
    let visitor = server.browser();
    let (status, reset) = get(&server, &visitor, &link).await;
    assert_eq!(status, StatusCode::OK);
    let reset_form = [
        ("csrf", hidden(&reset, "csrf")),
        ("token", hidden(&reset, "token")),
        ("password", "chosen by the member".to_owned()),
        ("confirm", "chosen by the member".to_owned()),
    ];
    let saved = visitor
        .post(server.url("/reset"))
        .form(&reset_form)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert!(
        saved.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/login")
    );
    let (status, _) = get(&server, &visitor, &link).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "single use");
    assert_eq!(
        server
            .sign_in(&server.browser(), &member.email, "chosen by the member")
            .await,
        StatusCode::SEE_OTHER
    );

    // Unlock, remove, and the last admin stays.
    assert_eq!(
        act("unlock", member_s.clone()).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        act("remove", member_s.clone()).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, page) = get(&server, &browser, &path).await;
    assert!(!page.contains(&member.email));
    assert_eq!(
        act("remove", admin.id.to_string()).await.status(),
        StatusCode::CONFLICT
    );

    // Rename; another org's name (ignoring case) is refused.
    let rename = |name: &'static str| {
        let browser = browser.clone();
        let url = server.url("/console/org/rename");
        let fields = vec![
            ("csrf".to_owned(), csrf.clone()),
            ("org".to_owned(), org_s.clone()),
            ("name".to_owned(), name.to_owned()),
        ];
        async move { browser.post(url).form(&fields).send().await.unwrap() }
    };
    let clash = rename("GLOBEX").await;
    assert_eq!(clash.status(), StatusCode::CONFLICT);
    assert!(clash.text().await.unwrap().contains("already exists"));
    assert_eq!(rename("Acme Corp").await.status(), StatusCode::SEE_OTHER);
    let (_, page) = get(&server, &browser, &path).await;
    assert!(page.contains("Acme Corp"));
    server.stop().await;
}
