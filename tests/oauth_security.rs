//! Every MUST of SPEC §3, checked from the outside: what an attacker or a
//! broken client tries, and what the server must answer.

mod common;

use std::time::Duration;

use common::{CALLBACK, Pkce, TestServer, absolute, query_param};
use portcullis::identity::scope::Role;
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

/// Runs authorize + consent for a fresh public client and returns (client_id, code, pkce).
async fn code_for(server: &TestServer, role: Role, scope: &str) -> (String, String, Pkce) {
    let org = server.org("Org").await;
    let user = server.user(org, role).await;
    let client = server.register_public(&[CALLBACK]).await;
    let pkce = Pkce::new();
    let url = server.authorize_url(&client.client_id, CALLBACK, scope, &pkce, "s");
    let callback = server
        .authorize_in_browser(&server.browser(), &url, &user, scope)
        .await;
    (
        client.client_id,
        query_param(&callback, "code").unwrap(),
        pkce,
    )
}

async fn exchange(
    server: &TestServer,
    client_id: &str,
    code: &str,
    verifier: &str,
) -> (StatusCode, Value) {
    server
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
            ("client_id", client_id),
        ])
        .await
}

#[tokio::test]
async fn a_wrong_code_verifier_is_invalid_grant_and_does_not_burn_the_code() {
    let server = TestServer::start().await;
    let (client_id, code, pkce) = code_for(&server, Role::Member, "mcp:read").await;
    let wrong = Pkce::new();
    let (status, body) = exchange(&server, &client_id, &code, &wrong.verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, body) = exchange(&server, &client_id, &code, &pkce.verifier).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a stranger's wrong verifier must not burn the client's code: {body}"
    );
    let (status, _) = exchange(&server, &client_id, &code, &pkce.verifier).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "still single use");
}

#[tokio::test]
async fn five_wrong_code_verifiers_kill_the_code() {
    let server = TestServer::start().await;
    let (client_id, code, pkce) = code_for(&server, Role::Member, "mcp:read").await;
    for _ in 0..5 {
        let (status, body) = exchange(&server, &client_id, &code, &Pkce::new().verifier).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
    }
    let (status, body) = exchange(&server, &client_id, &code, &pkce.verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "guessing is bounded"
    );
}

#[tokio::test]
async fn plain_and_missing_pkce_are_refused_with_a_redirect_carrying_iss() {
    let server = TestServer::start().await;
    let client = server.register_public(&[CALLBACK]).await;
    for (extra, what) in [
        ("&code_challenge=abc&code_challenge_method=plain", "plain"),
        ("", "missing"),
    ] {
        let url = format!(
            "{}?response_type=code&client_id={}&redirect_uri={}&state=xyz{extra}",
            server.url("/authorize"),
            client.client_id,
            urlencode(CALLBACK)
        );
        let r = server.http.get(&url).send().await.unwrap();
        assert!(
            r.status() == StatusCode::FOUND || r.status() == StatusCode::SEE_OTHER,
            "{what}"
        );
        let location = absolute(
            &server.base,
            r.headers()[header::LOCATION].to_str().unwrap(),
        );
        assert!(location.as_str().starts_with(CALLBACK), "{what}");
        assert_eq!(
            query_param(&location, "error").as_deref(),
            Some("invalid_request"),
            "{what}"
        );
        assert_eq!(query_param(&location, "state").as_deref(), Some("xyz"));
        assert_eq!(
            query_param(&location, "iss").as_deref(),
            Some(server.base.as_str())
        );
    }
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let server = TestServer::start().await;
    let (client_id, code, pkce) = code_for(&server, Role::Member, "mcp:read").await;
    let (status, tokens) = exchange(&server, &client_id, &code, &pkce.verifier).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = exchange(&server, &client_id, &code, &pkce.verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let r = server
        .http
        .post(server.url("/introspect"))
        .form(&[
            ("token", tokens["access_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({ "active": false }));
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let server = TestServer::start_with(|c| c.code_ttl = Duration::ZERO).await;
    let (client_id, code, pkce) = code_for(&server, Role::Member, "mcp:read").await;
    let (status, body) = exchange(&server, &client_id, &code, &pkce.verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test]
async fn redirect_mismatch_and_unknown_clients_get_a_page_never_a_redirect() {
    let server = TestServer::start().await;
    let client = server.register_public(&[CALLBACK]).await;
    let pkce = Pkce::new();
    for url in [
        server.authorize_url(
            &client.client_id,
            "https://evil.example/cb",
            "mcp:read",
            &pkce,
            "s",
        ),
        server.authorize_url(
            &client.client_id,
            "http://127.0.0.1:9/callback/extra",
            "mcp:read",
            &pkce,
            "s",
        ),
        server.authorize_url("no-such-client", CALLBACK, "mcp:read", &pkce, "s"),
    ] {
        let r = server.http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(r.headers().get(header::LOCATION).is_none());
        assert!(
            r.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(r.headers()[header::X_FRAME_OPTIONS], "DENY");
    }
}

#[tokio::test]
async fn registration_refuses_dangerous_redirect_uris() {
    let server = TestServer::start().await;
    for uri in [
        "http://evil.example/cb",
        "javascript:alert(1)",
        "data:text/html,x",
        "file:///etc/passwd",
        "https://ok.example/cb#frag",
    ] {
        let r = server
            .register(json!({ "client_name": "x", "redirect_uris": [uri] }))
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{uri}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_redirect_uri", "{uri}");
    }
}

#[tokio::test]
async fn a_foreign_resource_is_invalid_target() {
    let server = TestServer::start().await;
    let client = server.register_public(&[CALLBACK]).await;
    let pkce = Pkce::new();
    let url = server
        .authorize_url(&client.client_id, CALLBACK, "mcp:read", &pkce, "s")
        .replace(
            &urlencode(&server.resource()),
            &urlencode("https://other.example/mcp"),
        );
    let r = server.http.get(&url).send().await.unwrap();
    let location = absolute(
        &server.base,
        r.headers()[header::LOCATION].to_str().unwrap(),
    );
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("invalid_target")
    );
    assert_eq!(
        query_param(&location, "iss").as_deref(),
        Some(server.base.as_str())
    );
}

#[tokio::test]
async fn scopes_above_the_role_are_never_granted() {
    let server = TestServer::start().await;
    let (client_id, code, pkce) =
        code_for(&server, Role::Viewer, "mcp:read mcp:write mcp:admin").await;
    let (status, body) = exchange(&server, &client_id, &code, &pkce.verifier).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["scope"], "mcp:read");
}

#[tokio::test]
async fn unticking_write_on_the_consent_page_down_scopes_the_grant() {
    let server = TestServer::start().await;
    let org = server.org("Org").await;
    let user = server.user(org, Role::Admin).await;
    let client = server.register_public(&[CALLBACK]).await;
    let pkce = Pkce::new();
    let url = server.authorize_url(
        &client.client_id,
        CALLBACK,
        "mcp:read mcp:write",
        &pkce,
        "s",
    );
    let callback = server
        .authorize_in_browser(&server.browser(), &url, &user, "mcp:read")
        .await;
    let code = query_param(&callback, "code").unwrap();
    let (_, body) = exchange(&server, &client.client_id, &code, &pkce.verifier).await;
    assert_eq!(body["scope"], "mcp:read");
    // mcp:admin is only granted when asked for by name; the default is read + write.
    let pkce = Pkce::new();
    let url = server.authorize_url(&client.client_id, CALLBACK, "", &pkce, "s");
    let callback = server
        .authorize_in_browser(
            &server.browser(),
            &url,
            &user,
            "mcp:read mcp:write mcp:admin",
        )
        .await;
    let code = query_param(&callback, "code").unwrap();
    let (_, body) = exchange(&server, &client.client_id, &code, &pkce.verifier).await;
    assert_eq!(body["scope"], "mcp:read mcp:write");
}

#[tokio::test]
async fn a_confidential_client_with_a_bad_secret_gets_401_invalid_client() {
    let server = TestServer::start().await;
    let r = server.register(json!({ "client_name": "Claude", "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"], "token_endpoint_auth_method": "client_secret_post" })).await;
    let client: Value = r.json().await.unwrap();
    let id = client["client_id"].as_str().unwrap();
    let (status, body) = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("code_verifier", "y"),
            ("client_id", id),
            ("client_secret", "wrong"),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let r = server
        .http
        .post(server.url("/token"))
        .basic_auth(id, Some("wrong"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("code_verifier", "y"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
}

#[tokio::test]
async fn malformed_and_oversized_bodies_get_rfc6749_errors() {
    let server = TestServer::start().await;
    let cases: Vec<(reqwest::RequestBuilder, StatusCode)> = vec![
        (
            server
                .http
                .post(server.url("/token"))
                .header(header::CONTENT_TYPE, "application/json")
                .body("{}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            server
                .http
                .post(server.url("/token"))
                .form(&[("grant_type", "password")]),
            StatusCode::BAD_REQUEST,
        ),
        (
            server
                .http
                .post(server.url("/token"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body("grant_type=a&grant_type=b"),
            StatusCode::BAD_REQUEST,
        ),
        (
            server
                .http
                .post(server.url("/token"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(vec![b'a'; 200_000]),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            server
                .http
                .post(server.url("/register"))
                .header(header::CONTENT_TYPE, "application/json")
                .body("{\"redirect_uris\": [1"),
            StatusCode::BAD_REQUEST,
        ),
        (
            server
                .http
                .post(server.url("/register"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(vec![b' '; 200_000]),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            server
                .http
                .post(server.url("/revoke"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(vec![0xff, 0xfe]),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (request, expected) in cases {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), expected);
        let body: Value = r.json().await.expect("a JSON error body");
        assert!(body["error"].is_string(), "{body}");
    }
    let r = server
        .http
        .post(server.url("/token"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn consent_without_the_csrf_token_is_refused() {
    let server = TestServer::start().await;
    let org = server.org("Org").await;
    let user = server.user(org, Role::Member).await;
    let client = server.register_public(&[CALLBACK]).await;
    let pkce = Pkce::new();
    let authorize = server.authorize_url(&client.client_id, CALLBACK, "mcp:read", &pkce, "s");
    let request = authorize.split_once('?').unwrap().1.to_owned();
    let browser = server.browser();
    // Sign in, then post a consent form with a forged token.
    let status = server.sign_in(&browser, &user.email, &user.password).await;
    assert!(status.is_redirection());
    let r = browser
        .post(server.url("/consent"))
        .form(&[
            ("csrf", "forged"),
            ("request", request.as_str()),
            ("org_id", &org.to_string()),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get(header::LOCATION).is_none());
}

#[tokio::test]
async fn pages_forbid_framing_and_caching_and_only_metadata_has_cors() {
    let server = TestServer::start().await;
    let r = server.http.get(server.url("/login")).send().await.unwrap();
    let h = r.headers();
    assert!(
        h[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
    assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
    assert!(h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-protected-resource/mcp",
        "/jwks.json",
    ] {
        let r = server
            .http
            .get(server.url(path))
            .header(header::ORIGIN, "http://localhost:6274")
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "*",
            "{path}"
        );
    }
    let preflight = server
        .http
        .request(reqwest::Method::OPTIONS, server.url("/token"))
        .header(header::ORIGIN, "http://localhost:6274")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(
        preflight.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "*"
    );
    let r = server
        .http
        .get(server.url("/authorize"))
        .header(header::ORIGIN, "http://localhost:6274")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_account() {
    let server = TestServer::start().await;
    let org = server.org("Org").await;
    let user = server.user(org, Role::Member).await;
    let browser = server.browser();
    let mut last = StatusCode::OK;
    for _ in 0..6 {
        last = server
            .sign_in(&browser, &user.email, "wrong password")
            .await;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn registration_is_rate_limited_per_address() {
    let server = TestServer::start_with(|c| c.registrations_per_ip_per_hour = 2).await;
    let body = json!({ "client_name": "x", "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none" });
    for _ in 0..2 {
        assert_eq!(
            server.register(body.clone()).await.status(),
            StatusCode::CREATED
        );
    }
    let limited = server.register(body).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        limited.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let error: Value = limited.json().await.unwrap();
    assert!(error["error"].is_string());
}

#[tokio::test]
async fn prompt_none_answers_silently_or_fails_with_the_oidc_error() {
    let server = TestServer::start().await;
    let org = server.org("Org").await;
    let user = server.user(org, Role::Member).await;
    let client = server.register_public(&[CALLBACK]).await;
    let browser = server.browser();
    let silent = |pkce: &Pkce| {
        format!(
            "{}&prompt=none",
            server.authorize_url(&client.client_id, CALLBACK, "mcp:read", pkce, "s")
        )
    };
    let error_of = |r: reqwest::Response| {
        let location = absolute(
            &server.base,
            r.headers()[header::LOCATION].to_str().unwrap(),
        );
        assert!(location.as_str().starts_with(CALLBACK));
        assert_eq!(
            query_param(&location, "iss").as_deref(),
            Some(server.base.as_str())
        );
        query_param(&location, "error")
    };
    // Signed out: no sign-in page, an error for the client.
    let r = browser.get(silent(&Pkce::new())).send().await.unwrap();
    assert_eq!(error_of(r).as_deref(), Some("login_required"));
    // Signed in but never approved: consent_required.
    server.sign_in(&browser, &user.email, &user.password).await;
    let r = browser.get(silent(&Pkce::new())).send().await.unwrap();
    assert_eq!(error_of(r).as_deref(), Some("consent_required"));
    // After one approval, the same request is answered with a code at once.
    let pkce = Pkce::new();
    let url = server.authorize_url(&client.client_id, CALLBACK, "mcp:read", &pkce, "s");
    server
        .authorize_in_browser(&browser, &url, &user, "mcp:read")
        .await;
    let r = browser.get(silent(&Pkce::new())).send().await.unwrap();
    let location = absolute(
        &server.base,
        r.headers()[header::LOCATION].to_str().unwrap(),
    );
    assert!(query_param(&location, "code").is_some(), "{location}");
}
