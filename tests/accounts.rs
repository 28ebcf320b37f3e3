//! Account lifecycle (README "Accounts") through the service the command
//! line, the console and the provisioning API share, against a live server:
//! each change is checked by what a client of the server then sees.

mod common;
#[path = "common/mcp.rs"]
mod mcp;

use std::time::Duration;

use common::{PASSWORD, TestServer};
use portcullis::identity::{
    accounts::{self, AccountError},
    scope::Role,
};
use reqwest::StatusCode;
use serde_json::json;

/// How long a change may take to reach the MCP hot path's caches (5 s TTL),
/// with room for a loaded machine.
const BOUND: Duration = Duration::from_secs(20);

async fn whoami_status(server: &TestServer, key: &str, org: uuid::Uuid) -> StatusCode {
    mcp::post(
        server,
        Some(key),
        Some(org),
        &mcp::tools_call(1, "whoami", json!({})),
    )
    .await
    .status()
}

#[tokio::test]
async fn orgs_are_listed_renamed_and_never_share_a_name_ignoring_case() {
    let server = TestServer::start().await;
    let store = &server.state.store;
    let acme = server.org("Acme").await;
    let admin = server.user(acme, Role::Admin).await;
    server.user(acme, Role::Viewer).await;

    let taken = accounts::create_org(store, "  ACME ").await.unwrap_err();
    assert!(matches!(taken, AccountError::Conflict(_)), "{taken}");
    assert_eq!(taken.code(), "conflict");
    let globex = accounts::create_org(store, "Globex").await.unwrap();
    let clash = accounts::rename_org(store, globex.id, "acme")
        .await
        .unwrap_err();
    assert!(matches!(clash, AccountError::Conflict(_)));
    let renamed = accounts::rename_org(store, globex.id, "Globex Corp")
        .await
        .unwrap();
    assert_eq!(renamed.name, "Globex Corp");
    // Renaming to another case of its own name is fine.
    accounts::rename_org(store, acme, "ACME").await.unwrap();

    let orgs = accounts::list_orgs(store).await.unwrap();
    let names: Vec<&str> = orgs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["ACME", "Globex Corp"]);
    assert_eq!((orgs[0].members, orgs[0].admins), (2, 1));

    server.add_to_org(&admin, globex.id, Role::Member).await;
    let users = accounts::list_users(store, Some(globex.id)).await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].email, admin.email);
    assert_eq!(users[0].memberships.len(), 2, "all of the user's orgs");
    assert_eq!(accounts::list_users(store, None).await.unwrap().len(), 2);
    let missing = accounts::list_users(store, Some(uuid::Uuid::new_v4()))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), "not_found");
    server.stop().await;
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in_and_their_keys_and_grants_are_refused_until_enabled() {
    let server = TestServer::start().await;
    let store = &server.state.store;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let key = server.api_key(&user, org, "mcp:read").await;
    let tokens = server.oauth_tokens(&user, "mcp:read").await;
    let browser = server.browser();
    assert_eq!(
        server.sign_in(&browser, &user.email, PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(whoami_status(&server, &key, org).await, StatusCode::OK);

    accounts::disable_user(store, user.id).await.unwrap();
    // Their session ended with it.
    let console = browser
        .get(server.url("/console/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(console.status(), StatusCode::SEE_OTHER);
    let refused = server
        .sign_in_then(&browser, &user.email, PASSWORD, "/")
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("disabled"));
    assert!(
        mcp::eventually(BOUND, || async {
            whoami_status(&server, &key, org).await == StatusCode::UNAUTHORIZED
        })
        .await,
        "the key is refused within the cache bound"
    );
    let access = mcp::post(
        &server,
        Some(&tokens.access_token),
        None,
        &mcp::tools_call(1, "whoami", json!({})),
    )
    .await;
    assert_eq!(access.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &tokens.refresh_token),
            ("client_id", &tokens.client_id),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");

    accounts::enable_user(store, user.id).await.unwrap();
    assert!(
        mcp::eventually(BOUND, || async {
            whoami_status(&server, &key, org).await == StatusCode::OK
        })
        .await,
        "the same key works again"
    );
    assert_eq!(
        server.sign_in(&browser, &user.email, PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    server.stop().await;
}

#[tokio::test]
async fn removing_a_member_revokes_their_keys_there_and_never_removes_the_last_admin() {
    let server = TestServer::start().await;
    let store = &server.state.store;
    let org = server.org("Acme").await;
    let admin = server.user(org, Role::Admin).await;
    let member = server.user(org, Role::Member).await;
    let key = server.api_key(&member, org, "mcp:read").await;
    assert_eq!(whoami_status(&server, &key, org).await, StatusCode::OK);

    let last = accounts::remove_member(store, admin.id, org)
        .await
        .unwrap_err();
    assert_eq!(last.code(), "last_admin");
    let revoked = accounts::remove_member(store, member.id, org)
        .await
        .unwrap();
    assert_eq!(revoked.api_keys.len(), 1);
    accounts::apply_locally(&server.state, &revoked);
    assert_eq!(
        whoami_status(&server, &key, org).await,
        StatusCode::UNAUTHORIZED,
        "refused at once on this instance"
    );
    let again = accounts::remove_member(store, member.id, org)
        .await
        .unwrap_err();
    assert_eq!(again.code(), "not_found");
    server.stop().await;
}

#[tokio::test]
async fn deleting_a_user_revokes_everything_and_keeps_the_audit() {
    let server = TestServer::start().await;
    let store = &server.state.store;
    let org = server.org("Acme").await;
    let admin = server.user(org, Role::Admin).await;
    let user = server.user(org, Role::Member).await;
    let key = server.api_key(&user, org, "mcp:read").await;
    let tokens = server.oauth_tokens(&user, "mcp:read").await;
    assert_eq!(whoami_status(&server, &key, org).await, StatusCode::OK);
    server.state.audit.flush().await;

    // The only admin of an org with other members cannot be deleted.
    let refused = accounts::delete_user(store, admin.id).await.unwrap_err();
    assert_eq!(refused.code(), "last_admin");

    let revoked = accounts::delete_user(store, user.id).await.unwrap();
    assert_eq!((revoked.grants.len(), revoked.api_keys.len()), (1, 1));
    accounts::apply_locally(&server.state, &revoked);
    assert_eq!(
        whoami_status(&server, &key, org).await,
        StatusCode::UNAUTHORIZED
    );
    let access = mcp::post(
        &server,
        Some(&tokens.access_token),
        None,
        &mcp::tools_call(1, "whoami", json!({})),
    )
    .await;
    assert_eq!(access.status(), StatusCode::UNAUTHORIZED);
    let calls = store
        .tool_calls(
            org,
            &portcullis::store::ToolCallFilter {
                user_id: Some(user.id),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        calls.len(),
        1,
        "the audit log keeps the deleted user's call"
    );
    assert!(store.user(user.id).await.unwrap().is_none());
    server.stop().await;
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_once_and_signs_out_everywhere() {
    let server = TestServer::start().await;
    let store = &server.state.store;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let browser = server.browser();
    server.sign_in(&browser, &user.email, PASSWORD).await;

    let link = accounts::issue_reset_link(store, &server.base, &user.email.to_uppercase())
        .await
        .unwrap();
    assert!(
        link.url
            .starts_with(&format!("{}/reset?token=", server.base))
    );
    assert!(link.expires_at - portcullis::store::now() <= 30 * 60);
    let token = link.url.split("token=").nth(1).unwrap();
    let weak = accounts::redeem_reset_link(store, &server.state.passwords, token, "short")
        .await
        .unwrap_err();
    assert_eq!(weak.code(), "weak_password");
    accounts::redeem_reset_link(
        store,
        &server.state.passwords,
        token,
        "a brand new passphrase",
    )
    .await
    .unwrap();
    let spent = accounts::redeem_reset_link(
        store,
        &server.state.passwords,
        token,
        "yet another passphrase",
    )
    .await
    .unwrap_err();
    assert_eq!(spent.code(), "not_found", "single use");
    let console = browser
        .get(server.url("/console/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(console.status(), StatusCode::SEE_OTHER, "signed out");
    let fresh = server.browser();
    assert_eq!(
        server.sign_in(&fresh, &user.email, PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server
            .sign_in(&fresh, &user.email, "a brand new passphrase")
            .await,
        StatusCode::SEE_OTHER
    );
    server.stop().await;
}

#[tokio::test]
async fn an_admin_unlock_lifts_the_sign_in_throttle() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let browser = server.browser();
    for _ in 0..5 {
        server
            .sign_in(&browser, &user.email, "wrong password!")
            .await;
    }
    assert_eq!(
        server.sign_in(&browser, &user.email, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    accounts::unlock_sign_in(&server.state.store, &user.email)
        .await
        .unwrap();
    assert_eq!(
        server.sign_in(&browser, &user.email, PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    server.stop().await;
}
