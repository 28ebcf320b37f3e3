//! Machine clients (README "Machine clients"): an org admin creates a
//! service client, which gets tokens with the `client_credentials` grant,
//! authenticating with a secret or with `private_key_jwt`; revoking it stops
//! its tokens. Also `private_key_jwt` for registered clients and for a
//! Client ID Metadata Document client completing the authorization code flow.

#[path = "common/cimd.rs"]
mod cimd;
mod common;
#[path = "common/compat.rs"]
mod compat;
#[path = "common/mcp.rs"]
mod mcp;
#[path = "common/signer.rs"]
mod signer;

use std::time::Duration;

use common::{CALLBACK, Pkce, TestServer, query_param};
use compat::{jwt_claims, whoami};
use portcullis::{
    identity::scope::Role,
    machine_admin::{self, ServiceAuth},
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use signer::Signer;
use uuid::Uuid;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

async fn service_client(
    server: &TestServer,
    org: Uuid,
    role: Role,
    scopes: Option<&str>,
    auth: ServiceAuth,
) -> Value {
    machine_admin::create_service_client(&server.state.store, org, "Nightly CI", role, scopes, auth)
        .await
        .unwrap()
}

async fn post_token(
    server: &TestServer,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (StatusCode, Value, Option<String>) {
    let mut request = server.http.post(server.url("/token")).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        challenge,
    )
}

/// `whoami`'s HTTP status for `token`.
async fn whoami_status(server: &TestServer, token: &str) -> u16 {
    server
        .http
        .post(server.resource())
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&mcp::tools_call(1, "whoami", json!({})))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_service_client_with_a_secret_gets_tokens_whoami_names_it_and_revocation_stops_it() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let created = service_client(&server, org, Role::Member, None, ServiceAuth::Secret).await;
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(created["scopes"], json!(["mcp:read", "mcp:write"]));

    // The README's curl: client_secret_basic, no scope (all of the client's).
    let (status, body, _) = post_token(
        &server,
        Some((&client_id, &secret)),
        &[
            ("grant_type", "client_credentials"),
            ("resource", &server.resource()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "no refresh token: {body}"
    );
    assert_eq!(body["scope"], "mcp:read mcp:write");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let claims = jwt_claims(&token);
    assert_eq!(claims["sub"], client_id);
    assert_eq!(claims["client_id"], client_id);
    assert_eq!(claims["org_id"], org.to_string());
    assert_eq!(claims["aud"], server.resource());

    let me = whoami(&server, &token).await;
    assert_eq!(me["source"], "mcp-client-credentials", "{me}");
    assert_eq!(me["client_name"], "Nightly CI");
    assert_eq!(me["user_id"], client_id);
    assert_eq!(me["org_id"], org.to_string());
    assert_eq!(me["scopes"], json!(["mcp:read", "mcp:write"]));

    // A narrower scope is granted; a wider one is refused.
    let (status, body, _) = post_token(
        &server,
        Some((&client_id, &secret)),
        &[("grant_type", "client_credentials"), ("scope", "mcp:read")],
    )
    .await;
    assert_eq!(
        (status, body["scope"].as_str()),
        (StatusCode::OK, Some("mcp:read"))
    );
    let (status, body, _) = post_token(
        &server,
        Some((&client_id, &secret)),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "mcp:read mcp:admin"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );

    // A wrong secret is invalid_client with the Basic challenge.
    let (status, body, challenge) = post_token(
        &server,
        Some((&client_id, "wrong")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    assert!(challenge.unwrap().starts_with("Basic"));

    // It may introspect its own token; revoking one token alone is a no-op
    // answered 200 (revoking the client is how its tokens stop).
    let introspected: Value = server
        .http
        .post(server.url("/introspect"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["sub"], client_id);
    let response = server
        .http
        .post(server.url("/revoke"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(whoami_status(&server, &token).await, 200);

    // Revoked (as the CLI does, outside this process): the token stops
    // within the revocation poll, and no new token is issued.
    let revoked =
        machine_admin::revoke_service_client(&server.state.store, client_id.parse().unwrap(), None)
            .await
            .unwrap();
    assert_eq!(revoked["revoked"], true);
    assert!(
        mcp::eventually(Duration::from_secs(30), || async {
            whoami_status(&server, &token).await == 401
        })
        .await,
        "the revoked service client's token still works"
    );
    assert!(
        mcp::eventually(Duration::from_secs(30), || async {
            post_token(
                &server,
                Some((&client_id, &secret)),
                &[("grant_type", "client_credentials")],
            )
            .await
            .0 == StatusCode::UNAUTHORIZED
        })
        .await
    );
    assert!(
        !common::captured_logs().contains(&secret),
        "the secret was logged"
    );
}

#[tokio::test]
async fn a_service_client_with_private_key_jwt_gets_tokens_and_each_assertion_is_single_use() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let keys = Signer::start().await;
    let created = service_client(
        &server,
        org,
        Role::Viewer,
        Some("mcp:read mcp:write"),
        ServiceAuth::JwksUri(keys.jwks_uri.clone()),
    )
    .await;
    assert!(created.get("client_secret").is_none());
    // The role's ceiling caps the scopes at creation.
    assert_eq!(created["scopes"], json!(["mcp:read"]));
    let client_id = created["client_id"].as_str().unwrap().to_owned();

    let assertion = keys.client_assertion(&client_id, &server.base);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion.as_str()),
    ];
    let (status, body, _) = post_token(&server, None, &form).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(whoami(&server, &token).await["scopes"], json!(["mcp:read"]));

    // The same assertion again is a replay.
    let (status, body, _) = post_token(&server, None, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    assert!(
        body["error_description"].as_str().unwrap().contains("jti"),
        "{body}"
    );

    // The token endpoint URL is an accepted audience; another is not.
    let at_token_endpoint = keys.client_assertion(&client_id, &server.url("/token"));
    let (status, _, _) = post_token(
        &server,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &at_token_endpoint),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let elsewhere = keys.client_assertion(&client_id, "https://other.example");
    let (status, body, _) = post_token(
        &server,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &elsewhere),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error_description"].as_str().unwrap().contains("aud"),
        "{body}"
    );

    // Signed by another key: refused.
    let stranger = Signer::start().await;
    let forged = stranger.client_assertion(&client_id, &server.base);
    let (status, _, _) = post_token(
        &server,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &forged),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Without an assertion, the client_id alone proves nothing.
    let (status, _, _) = post_token(
        &server,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    machine_admin::revoke_service_client(
        &server.state.store,
        client_id.parse().unwrap(),
        Some(org),
    )
    .await
    .unwrap();
    assert!(
        mcp::eventually(Duration::from_secs(30), || async {
            whoami_status(&server, &token).await == 401
        })
        .await
    );
}

#[tokio::test]
async fn only_service_clients_may_use_client_credentials() {
    let server = TestServer::start().await;
    let registered: Value = server
        .register(json!({ "client_name": "Confidential", "redirect_uris": [CALLBACK] }))
        .await
        .json()
        .await
        .unwrap();
    let (status, body, _) = post_token(
        &server,
        Some((
            registered["client_id"].as_str().unwrap(),
            registered["client_secret"].as_str().unwrap(),
        )),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
    );
}

#[tokio::test]
async fn a_registered_client_with_an_inline_jwks_authenticates_at_revoke_and_introspect() {
    let server = TestServer::start().await;
    let keys = Signer::start().await;
    let response = server
        .register(json!({
            "client_name": "Signed",
            "redirect_uris": [CALLBACK],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": keys.jwks(),
        }))
        .await;
    assert_eq!(response.status(), 201);
    let registered: Value = response.json().await.unwrap();
    assert_eq!(registered["token_endpoint_auth_method"], "private_key_jwt");
    assert!(registered.get("client_secret").is_none());
    let client_id = registered["client_id"].as_str().unwrap();
    let assertion = keys.client_assertion(client_id, &server.base);
    let response = server
        .http
        .post(server.url("/revoke"))
        .form(&[
            ("token", "unknown"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // No assertion: this client cannot fall back to being public.
    let response = server
        .http
        .post(server.url("/revoke"))
        .form(&[("token", "unknown"), ("client_id", client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // Registration without keys is refused.
    let response = server
        .register(json!({
            "client_name": "Keyless",
            "redirect_uris": [CALLBACK],
            "token_endpoint_auth_method": "private_key_jwt",
        }))
        .await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn a_metadata_document_client_with_private_key_jwt_completes_the_authorization_code_flow() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let keys = Signer::start().await;
    let host = cimd::http_host(vec![(
        "/signed-client.json",
        json!({
            "client_name": "Signed hosted client",
            "redirect_uris": [CALLBACK],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": keys.jwks_uri,
        }),
    )])
    .await;
    let client_id = format!("{host}/signed-client.json");
    let pkce = Pkce::new();
    let url = server.authorize_url(&client_id, CALLBACK, "mcp:read", &pkce, "s");
    let callback = server
        .authorize_in_browser(&server.browser(), &url, &user, "mcp:read")
        .await;
    let code = query_param(&callback, "code").expect("a code");
    let exchange = |assertion: Option<String>| {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.clone()),
            ("redirect_uri", CALLBACK.to_owned()),
            ("code_verifier", pkce.verifier.clone()),
            ("client_id", client_id.clone()),
        ];
        if let Some(a) = assertion {
            form.push(("client_assertion_type", ASSERTION_TYPE.to_owned()));
            form.push(("client_assertion", a));
        }
        let server = &server;
        async move {
            let response = server
                .http
                .post(server.url("/token"))
                .form(&form)
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    // Without the assertion the document's client is refused...
    let (status, body) = exchange(None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    // ...and with it the code is exchanged.
    let (status, body) = exchange(Some(keys.client_assertion(&client_id, &server.base))).await;
    assert_eq!(status, 200, "{body}");
    let me = whoami(&server, body["access_token"].as_str().unwrap()).await;
    assert_eq!(me["source"], "mcp-oauth");
    assert_eq!(me["client_id"], client_id);
    assert_eq!(me["user_id"], user.id.to_string());
}

#[tokio::test]
async fn metadata_advertises_the_grants_and_signed_client_authentication() {
    let server = TestServer::start().await;
    let m: Value = server
        .http
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let grants = m["grant_types_supported"].as_array().unwrap();
    for grant in [
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ] {
        assert!(grants.contains(&json!(grant)), "{grant}");
    }
    assert!(
        m["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("private_key_jwt"))
    );
    let algs = m["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.contains(&json!("ES256")) && algs.contains(&json!("RS256")));
    assert!(
        !algs
            .iter()
            .any(|a| a.as_str().unwrap().starts_with("HS") || a == "none")
    );
}
