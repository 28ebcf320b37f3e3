//! The complete OAuth flow as rmcp's own OAuth client performs it: discovery
//! from the protected-resource metadata, dynamic registration, authorization
//! with PKCE, sign-in and consent through the real forms, code exchange,
//! refresh, introspection and revocation.

mod common;

use common::{TestServer, captured_logs};
use portcullis::identity::scope::Role;
use reqwest::StatusCode;
use rmcp::transport::auth::{AuthorizationRequest, OAuthState};
use serde_json::Value;

#[tokio::test]
async fn rmcp_oauth_client_completes_the_flow_and_tokens_work_until_revoked() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;

    let mut oauth = OAuthState::new(server.resource().as_str(), None)
        .await
        .unwrap();
    oauth
        .start_authorization(
            AuthorizationRequest::new("http://127.0.0.1:9/callback")
                .with_client_name("rmcp test client")
                .with_scopes(["mcp:read", "mcp:write"]),
        )
        .await
        .unwrap();
    let authorize_url = oauth.get_authorization_url().await.unwrap();
    assert!(authorize_url.starts_with(&server.url("/authorize")));
    assert!(authorize_url.contains("code_challenge_method=S256"));

    let callback = server
        .authorize_in_browser(
            &server.browser(),
            &authorize_url,
            &user,
            "mcp:read mcp:write",
        )
        .await;
    assert_eq!(
        common::query_param(&callback, "iss").as_deref(),
        Some(server.base.as_str())
    );
    assert!(common::query_param(&callback, "state").is_some());
    oauth.handle_callback_url(callback.as_str()).await.unwrap();
    let manager = oauth.into_authorization_manager().expect("authorized");
    let access = manager.get_access_token().await.unwrap();
    let (client_id, credentials) = manager.get_credentials().await.unwrap();
    let first_refresh = credentials.unwrap();

    // The token is an RFC 9068 JWT for our resource, carrying org and grant.
    let claims = decode_claims(&access);
    assert_eq!(claims["iss"], server.base.as_str());
    assert_eq!(claims["aud"], server.resource().as_str());
    assert_eq!(claims["org_id"], org.to_string().as_str());
    assert_eq!(claims["sub"], user.id.to_string().as_str());
    assert_eq!(claims["client_id"], client_id.as_str());
    assert!(claims["grant_id"].is_string() && claims["jti"].is_string());
    assert_eq!(claims["scope"], "mcp:read mcp:write offline_access");

    // Refresh through the client, keeping the audience.
    let refreshed = manager.refresh_token().await.unwrap();
    let new_access = manager.get_access_token().await.unwrap();
    assert_ne!(new_access, access);
    assert_eq!(
        decode_claims(&new_access)["aud"],
        server.resource().as_str()
    );
    let _ = (refreshed, first_refresh);

    // Introspection (a public client may introspect its own tokens).
    let introspect = |token: String| {
        let server = &server;
        let client_id = client_id.clone();
        async move {
            let r = server
                .http
                .post(server.url("/introspect"))
                .form(&[("token", token.as_str()), ("client_id", &client_id)])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()
        }
    };
    let live = introspect(new_access.clone()).await;
    assert_eq!(live["active"], true);
    assert_eq!(live["scope"], "mcp:read mcp:write offline_access");
    assert_eq!(live["org_id"], org.to_string().as_str());

    // Revocation ends the grant: the access token is inactive at once.
    let r = server
        .http
        .post(server.url("/revoke"))
        .form(&[("token", new_access.as_str()), ("client_id", &client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        introspect(new_access).await,
        serde_json::json!({ "active": false })
    );
    assert!(
        manager.refresh_token().await.is_err(),
        "a revoked grant cannot be refreshed"
    );

    // Neither password hashes nor token hashes leak into logs.
    let stored = server.state.store.user(user.id).await.unwrap().unwrap();
    let logs = captured_logs();
    assert!(!logs.contains(&stored.password_hash));
    assert!(!logs.contains(&portcullis::identity::secret::hash(&access)));
    assert!(!logs.contains(&access));
}

pub fn decode_claims(jwt: &str) -> Value {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
