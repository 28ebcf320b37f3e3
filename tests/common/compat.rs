//! Replaying a real client's OAuth requests (SPEC §1) and checking the
//! result at `/mcp`, for the client-compatibility matrix.
#![allow(dead_code)]

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Pkce, TestServer, TestUser, query_param};

/// How a client authenticates at the token endpoint.
pub enum ClientAuth<'a> {
    None,
    SecretPost(&'a str),
    SecretBasic(&'a str),
}

pub struct Authorization<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
    /// Whether the client sends RFC 8707 `resource` (Codex does not).
    pub send_resource: bool,
    pub auth: ClientAuth<'a>,
    /// What the user leaves ticked on the consent page.
    pub approve: &'a str,
}

/// DCR as the client sends it; asserts 201 and returns the registration.
pub async fn register(server: &TestServer, body: Value) -> Value {
    let response = server.register(body.clone()).await;
    assert_eq!(response.status(), StatusCode::CREATED, "{body}");
    let registered: Value = response.json().await.unwrap();
    assert_eq!(
        registered["token_endpoint_auth_method"],
        body["token_endpoint_auth_method"]
    );
    registered
}

/// Authorization request, sign-in and consent, code exchange: returns the
/// token response.
pub async fn authorize(server: &TestServer, user: &TestUser, a: Authorization<'_>) -> Value {
    let pkce = Pkce::new();
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", a.client_id)
        .append_pair("redirect_uri", a.redirect_uri)
        .append_pair("scope", a.scope)
        .append_pair("state", "compat-state")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    if a.send_resource {
        url.query_pairs_mut()
            .append_pair("resource", &server.resource());
    }
    let callback = server
        .authorize_in_browser(&server.browser(), url.as_str(), user, a.approve)
        .await;
    assert!(
        callback.as_str().starts_with(a.redirect_uri),
        "{callback} is not on {}",
        a.redirect_uri
    );
    assert_eq!(
        query_param(&callback, "state").as_deref(),
        Some("compat-state")
    );
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some(server.base.as_str())
    );
    let code = query_param(&callback, "code").expect("a code");
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code),
        ("redirect_uri", a.redirect_uri.to_owned()),
        ("code_verifier", pkce.verifier.clone()),
    ];
    if a.send_resource {
        form.push(("resource", server.resource()));
    }
    let mut request = server.http.post(server.url("/token"));
    match a.auth {
        ClientAuth::None => form.push(("client_id", a.client_id.to_owned())),
        ClientAuth::SecretPost(secret) => {
            form.push(("client_id", a.client_id.to_owned()));
            form.push(("client_secret", secret.to_owned()));
        }
        ClientAuth::SecretBasic(secret) => {
            request = request.basic_auth(a.client_id, Some(secret));
        }
    }
    let response = request.form(&form).send().await.unwrap();
    let status = response.status();
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["refresh_token"].is_string());
    let claims = jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(
        claims["aud"],
        server.resource(),
        "audience is the MCP resource"
    );
    tokens
}

/// `whoami` at `/mcp` with `access_token`, as a raw JSON-RPC call.
pub async fn whoami(server: &TestServer, access_token: &str) -> Value {
    let response = server
        .http
        .post(server.resource())
        .bearer_auth(access_token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["result"]["structuredContent"].clone()
}

/// Asserts `whoami` says this is `user` over OAuth with `client_id` and `scopes`.
pub async fn assert_whoami(
    server: &TestServer,
    tokens: &Value,
    user: &TestUser,
    client_id: &str,
    scopes: Value,
) {
    let me = whoami(server, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(me["source"], "mcp-oauth", "{me}");
    assert_eq!(me["user_id"], user.id.to_string());
    assert_eq!(me["email"], user.email);
    assert_eq!(me["client_id"], client_id);
    assert_eq!(me["scopes"], scopes);
}

pub fn jwt_claims(jwt: &str) -> Value {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap()
}
