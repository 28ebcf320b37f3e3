//! One person, one account, and sign-in that an attacker can slow but not
//! block: canonical emails, per-(account, origin) throttling with known
//! devices, session-bound CSRF tokens, and the last-admin rule under
//! concurrency. Runs on SQLite, and on PostgreSQL when
//! `PORTCULLIS_TEST_POSTGRES_URL` is set.

mod common;

use std::net::IpAddr;

use common::{PASSWORD, TestServer, hidden};
use portcullis::{
    admin::{self, AdminError},
    identity::scope::Role,
    store::{RoleChange, Store},
};
use reqwest::{StatusCode, header};

/// A cookie-keeping browser whose connections come from `ip` (any 127/8
/// address reaches the server on 127.0.0.1).
fn browser_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(IpAddr::from(ip))
        .build()
        .unwrap()
}

async fn create(server: &TestServer, email: &str, org: uuid::Uuid) -> Result<(), AdminError> {
    admin::create_user(
        &server.state.store,
        &server.state.passwords,
        email,
        PASSWORD,
        org,
        Role::Member,
    )
    .await
    .map(drop)
}

#[tokio::test]
async fn carol_in_capitals_then_in_lowercase_is_one_account() {
    let server = TestServer::start().await;
    let other = server.org("Other").await;
    let acme = server.org("Acme").await;
    create(&server, "CAROL@x.test", other).await.unwrap();
    for spelling in ["carol@x.test", " Carol@X.Test ", "ｃａｒｏｌ@x.test"] {
        assert!(
            matches!(
                create(&server, spelling, acme).await,
                Err(AdminError::Exists(_))
            ),
            "{spelling:?} is taken"
        );
    }
    // The console's create-user form answers the same.
    let admin_user = server.user(acme, Role::Admin).await;
    let browser = server.browser();
    let status = server.sign_in(&browser, &admin_user.email, PASSWORD).await;
    assert!(status.is_redirection());
    let page = browser
        .get(server.url(&format!("/console/org?org={acme}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = browser
        .post(server.url("/console/org/users"))
        .form(&[
            ("csrf", hidden(&page, "csrf").as_str()),
            ("org", &acme.to_string()),
            ("email", "carol@x.test"),
            ("password", "another long password"),
            ("role", "member"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    // The one account signs in under any spelling.
    for spelling in ["carol@x.test", "CAROL@X.TEST"] {
        let status = server.sign_in(&server.browser(), spelling, PASSWORD).await;
        assert!(status.is_redirection(), "{spelling}");
    }
}

#[tokio::test]
async fn insane_emails_are_refused_at_creation() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    for bad in [
        "carol",
        "car\u{0}ol@x.test",
        "carol@x.test\r\nBcc: y",
        "@x.test",
    ] {
        assert!(
            matches!(create(&server, bad, org).await, Err(AdminError::Invalid(_))),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn a_turkish_dotted_i_is_not_alice_and_gets_no_extra_guesses() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    create(&server, "alice@acme.test", org).await.unwrap();
    let attacker = browser_from([127, 0, 0, 21]);
    let dotted = "al\u{130}ce@acme.test";
    // The correct password under the look-alike spelling is not alice's account.
    let status = server.sign_in(&attacker, dotted, PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for _ in 0..5 {
        server.sign_in(&attacker, "alice@acme.test", "guess").await;
    }
    // Held back under every spelling of alice's address.
    for spelling in ["alice@acme.test", "ALICE@acme.test", " Alice@ACME.test"] {
        let status = server.sign_in(&attacker, spelling, PASSWORD).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{spelling:?}");
    }
    // The look-alike still does not reach alice.
    let status = server.sign_in(&attacker, dotted, PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_attacker_cannot_lock_the_user_out() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;

    // Guessing from one address is held back, with Retry-After.
    let attacker = browser_from([127, 0, 0, 2]);
    for _ in 0..5 {
        let status = server.sign_in(&attacker, &user.email, "guess").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let held = server
        .sign_in_then(&attacker, &user.email, PASSWORD, "/")
        .await;
    assert_eq!(held.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = held.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0);

    // The user, from another address, gets in and their device is remembered.
    let users_laptop = browser_from([127, 0, 0, 3]);
    let status = server.sign_in(&users_laptop, &user.email, PASSWORD).await;
    assert!(status.is_redirection(), "{status}");

    // The attacker spreads guesses over many addresses until the
    // account-wide limit holds back every unknown device…
    for host in 10..20u8 {
        let from = browser_from([127, 0, 0, host]);
        for _ in 0..5 {
            server.sign_in(&from, &user.email, "guess").await;
        }
    }
    let stranger = browser_from([127, 0, 0, 50]);
    let status = server.sign_in(&stranger, &user.email, PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // …but the known device still signs in, from any address.
    let status = server.sign_in(&users_laptop, &user.email, PASSWORD).await;
    assert!(status.is_redirection(), "{status}");
}

#[tokio::test]
async fn a_planted_csrf_cookie_and_field_pair_is_refused() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let planted = "z".repeat(43);
    for value in ["z", planted.as_str()] {
        let response = server
            .http
            .post(server.url("/login"))
            .header(header::COOKIE, format!("pcl_csrf={value}"))
            .form(&[
                ("csrf", value),
                ("next", "/"),
                ("email", user.email.as_str()),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{value}");
    }
    // A token from one session does not work in another.
    let first = server.browser();
    assert!(
        server
            .sign_in(&first, &user.email, PASSWORD)
            .await
            .is_redirection()
    );
    let page = first
        .get(server.url("/logout"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = hidden(&page, "csrf");
    let second = server.browser();
    assert!(
        server
            .sign_in(&second, &user.email, PASSWORD)
            .await
            .is_redirection()
    );
    let response = second
        .post(server.url("/logout"))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let page = second
        .get(server.url("/logout"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = second
        .post(server.url("/logout"))
        .form(&[("csrf", hidden(&page, "csrf").as_str())])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection());
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    let server = TestServer::start().await;
    let store = &server.state.store;
    let org = server.org("Race").await;
    let a = server.user(org, Role::Admin).await;
    let b = server.user(org, Role::Admin).await;
    for round in 0..20 {
        for admin in [&a, &b] {
            store
                .set_membership(admin.id, org, Role::Admin)
                .await
                .unwrap();
        }
        let (ra, rb) = tokio::join!(
            store.set_membership(a.id, org, Role::Member),
            store.set_membership(b.id, org, Role::Member)
        );
        let outcomes = [ra.unwrap(), rb.unwrap()];
        let admins = store
            .members(org)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.role == Role::Admin)
            .count();
        assert_eq!(admins, 1, "round {round}: {outcomes:?}");
        assert!(outcomes.contains(&RoleChange::LastAdmin));
        assert!(outcomes.contains(&RoleChange::Done));
    }
}

/// Runs `sql` with one uuid parameter on whichever database the server uses.
async fn execute(server: &TestServer, sql: &'static str, id: uuid::Uuid) {
    match &server.state.store {
        Store::Sqlite(pool) => sqlx::query(sql).bind(id).execute(pool).await.map(drop),
        Store::Postgres(pool) => sqlx::query(sql).bind(id).execute(pool).await.map(drop),
    }
    .unwrap();
}

#[tokio::test]
async fn the_migration_backfills_canonical_emails_and_refuses_duplicates() {
    let server = TestServer::start().await;
    let org = server.org("Legacy").await;
    create(&server, "Erin@x.test", org).await.unwrap();
    let store = &server.state.store;
    // Rows as written before the canonical column existed.
    let clear = "UPDATE users SET email_canonical = NULL WHERE id <> $1";
    execute(&server, clear, uuid::Uuid::nil()).await;
    store.migrate().await.unwrap();
    assert!(store.user_by_email("erin@X.TEST").await.unwrap().is_some());
    // Two legacy accounts of one person stop the start, naming both.
    execute(
        &server,
        "INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, 'ERIN@x.test', 'x', 0)",
        uuid::Uuid::new_v4(),
    )
    .await;
    execute(&server, clear, uuid::Uuid::nil()).await;
    let error = store.migrate().await.unwrap_err().to_string();
    assert!(
        error.contains("Erin@x.test") && error.contains("ERIN@x.test"),
        "{error}"
    );
}
