//! Two instances behind one public URL share only the database and the keys
//! directory (SPEC §5): a token issued by one works on the other, and a
//! revocation or key rotation made through one is seen by the other within
//! the revocation poll, without a database query per request.

mod common;
#[path = "common/mcp.rs"]
mod mcp;

use std::time::Duration;

use common::TestServer;
use portcullis::identity::scope::Role;
use serde_json::{Value, json};

/// `whoami` on `server`, addressed as the shared public host (as a load
/// balancer forwards it).
async fn whoami_status(server: &TestServer, public_host: &str, token: &str) -> u16 {
    server
        .http
        .post(server.resource())
        .header("Host", public_host)
        .header("Accept", "application/json, text/event-stream")
        .bearer_auth(token)
        .json(&mcp::tools_call(1, "whoami", json!({})))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn revocation_and_key_rotation_reach_the_other_instance_within_the_poll() {
    let a = TestServer::start().await;
    let shared = a.state.config.clone();
    let b = TestServer::start_with(|c| {
        c.public_url = shared.public_url.clone();
        c.database_url = shared.database_url.clone();
        c.keys_dir = shared.keys_dir.clone();
    })
    .await;
    let public_host = a.base.trim_start_matches("http://").to_owned();
    let org = a.org("Acme").await;
    let user = a.user(org, Role::Member).await;

    let tokens = a.oauth_tokens(&user, "mcp:read").await;
    assert_eq!(
        whoami_status(&b, &public_host, &tokens.access_token).await,
        200,
        "a token from A works on B"
    );

    // A rotates its signing key; B verifies tokens signed with it once it has reloaded.
    let kid =
        portcullis::oauth::keys::Keys::rotate(&shared.keys_dir, Duration::from_secs(7200)).unwrap();
    a.state.keys.reload_if_changed().unwrap();
    let (status, refreshed) = a
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &tokens.refresh_token),
            ("client_id", &tokens.client_id),
        ])
        .await;
    assert_eq!(status, 200);
    let fresh = refreshed["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        jsonwebtoken::decode_header(&fresh).unwrap().kid.as_deref(),
        Some(kid.as_str())
    );
    let verified = mcp::eventually(Duration::from_secs(5), || async {
        whoami_status(&b, &public_host, &fresh).await == 200
    })
    .await;
    assert!(verified, "B did not pick up the rotated key");
    let jwks: Value = b
        .http
        .get(b.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "the previous key stays in JWKS"
    );

    // A revokes the grant; B refuses its tokens within the poll interval.
    let r = a
        .http
        .post(a.url("/revoke"))
        .form(&[("token", fresh.as_str()), ("client_id", &tokens.client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        whoami_status(&a, &public_host, &fresh).await,
        401,
        "the revoking instance refuses at once"
    );
    let poll = shared.revocation_poll;
    let refused = mcp::eventually(poll * 2 + Duration::from_secs(1), || async {
        whoami_status(&b, &public_host, &fresh).await == 401
    })
    .await;
    assert!(
        refused,
        "B still accepted a revoked token after {:?}",
        poll * 2 + Duration::from_secs(1)
    );
}

#[tokio::test]
async fn a_token_signed_with_a_key_rotated_elsewhere_verifies_at_once() {
    let a = TestServer::start().await;
    let shared = a.state.config.clone();
    // B never polls during the test: only the unknown `kid` can make it
    // re-read the keys directory.
    let b = TestServer::start_with(|c| {
        c.public_url = shared.public_url.clone();
        c.database_url = shared.database_url.clone();
        c.keys_dir = shared.keys_dir.clone();
        c.revocation_poll = Duration::from_secs(3600);
    })
    .await;
    let public_host = a.base.trim_start_matches("http://").to_owned();
    let org = a.org("Acme").await;
    let user = a.user(org, Role::Member).await;
    let tokens = a.oauth_tokens(&user, "mcp:read").await;
    assert_eq!(
        whoami_status(&b, &public_host, &tokens.access_token).await,
        200
    );

    let kid =
        portcullis::oauth::keys::Keys::rotate(&shared.keys_dir, Duration::from_secs(7200)).unwrap();
    a.state.keys.reload_if_changed().unwrap();
    let (status, refreshed) = a
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &tokens.refresh_token),
            ("client_id", &tokens.client_id),
        ])
        .await;
    assert_eq!(status, 200);
    let fresh = refreshed["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        jsonwebtoken::decode_header(&fresh).unwrap().kid.as_deref(),
        Some(kid.as_str())
    );
    assert!(b.state.keys.get(&kid).is_none(), "B has not polled");
    assert_eq!(
        whoami_status(&b, &public_host, &fresh).await,
        200,
        "B reloads the keys directory on the unknown kid"
    );
    assert!(b.state.keys.get(&kid).is_some());
}
