//! The provisioning API under `/admin/api/v1` (README "Provisioning API"):
//! admin-token authentication, every endpoint, bad input, the OpenAPI
//! description kept true, and revocations reaching `/mcp` within the bound.

mod common;
#[path = "common/mcp.rs"]
mod mcp;

use std::time::Duration;

use common::TestServer;
use portcullis::identity::scope::Role;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use uuid::Uuid;

struct Api<'a> {
    server: &'a TestServer,
    token: String,
}

impl Api<'_> {
    async fn new(server: &TestServer) -> Api<'_> {
        let v = portcullis::provisioning::tokens::create(&server.state.store, "tests")
            .await
            .unwrap();
        Api {
            server,
            token: v["token"].as_str().unwrap().to_owned(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .server
            .http
            .request(method, self.server.url(&format!("/admin/api/v1{path}")))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn raw(&self, method: Method, path: &str, body: &str) -> (StatusCode, Value) {
        let response = self
            .server
            .http
            .request(method, self.server.url(&format!("/admin/api/v1{path}")))
            .bearer_auth(&self.token)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str, mentions: &str) {
    assert_eq!(got.0, status, "{got:?}");
    assert_eq!(got.1["error"], code, "{got:?}");
    let message = got.1["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(mentions),
        "{message:?} should mention {mentions:?}"
    );
}

#[tokio::test]
async fn admin_tokens_missing_bad_or_revoked_are_refused_with_a_challenge() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    assert_eq!(api.call(Method::GET, "/orgs", None).await.0, StatusCode::OK);
    for auth in [
        None,
        Some("Bearer pcadm_nope".to_owned()),
        Some("Basic abc".to_owned()),
        Some(format!("Bearer {}x", api.token)),
    ] {
        let mut request = server.http.get(server.url("/admin/api/v1/orgs"));
        if let Some(auth) = &auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{auth:?}");
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
        assert!(body["message"].as_str().unwrap().len() > 10);
    }
    // Revoked: refused from the next request on; the token is stored hashed.
    let listed = portcullis::provisioning::tokens::list(&server.state.store)
        .await
        .unwrap();
    assert!(!listed.to_string().contains(&api.token));
    let id = api.token.split('_').nth(1).unwrap();
    portcullis::provisioning::tokens::revoke(&server.state.store, id)
        .await
        .unwrap();
    let got = api.call(Method::GET, "/orgs", None).await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", "revoked");
    server.stop().await;
}

#[tokio::test]
async fn orgs_are_created_found_listed_in_pages_changed_and_deleted() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    let ext = format!("ext-{}", Uuid::new_v4().simple());
    let (status, org) = api
        .call(
            Method::POST,
            "/orgs",
            Some(json!({"name": "Acme", "external_id": ext})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{org}");
    assert_eq!(org["name"], "Acme");
    assert_eq!(org["external_id"], ext.as_str());
    let id = org["id"].as_str().unwrap().to_owned();
    assert_eq!(
        api.call(Method::GET, &format!("/orgs/{id}"), None).await.1,
        org
    );
    assert_eq!(
        api.call(Method::GET, &format!("/orgs?external_id={ext}"), None)
            .await
            .1["id"],
        id.as_str()
    );
    let got = api
        .call(Method::POST, "/orgs", Some(json!({"name": "acme"})))
        .await;
    assert_error(&got, StatusCode::CONFLICT, "conflict", "already exists");
    let got = api
        .call(
            Method::POST,
            "/orgs",
            Some(json!({"name": "Other", "external_id": ext})),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "conflict", "external_id");

    // Paging: three more orgs, pages of two, each org exactly once.
    for name in ["B", "C", "D"] {
        assert_eq!(
            api.call(Method::POST, "/orgs", Some(json!({"name": name})))
                .await
                .0,
            201
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/orgs?limit=2&cursor={c}"),
            None => "/orgs?limit=2".to_owned(),
        };
        let (status, page) = api.call(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|o| o["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    seen.dedup();
    assert_eq!(seen.len(), 4);

    let (status, renamed) = api
        .call(
            Method::PATCH,
            &format!("/orgs/{id}"),
            Some(json!({"name": "Acme Corp", "external_id": null})),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["name"], "Acme Corp");
    assert_eq!(renamed["external_id"], Value::Null);
    let got = api
        .call(Method::GET, &format!("/orgs?external_id={ext}"), None)
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", "external_id");

    // An org with members is kept; an empty one goes.
    let org_id: Uuid = id.parse().unwrap();
    let user = server.user(org_id, Role::Admin).await;
    let got = api.call(Method::DELETE, &format!("/orgs/{id}"), None).await;
    assert_error(&got, StatusCode::CONFLICT, "conflict", "members");
    assert_eq!(
        api.call(Method::DELETE, &format!("/users/{}", user.id), None)
            .await
            .0,
        204
    );
    assert_eq!(
        api.call(Method::DELETE, &format!("/orgs/{id}"), None)
            .await
            .0,
        204
    );
    let got = api.call(Method::GET, &format!("/orgs/{id}"), None).await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", &id);
    server.stop().await;
}

#[tokio::test]
async fn users_memberships_keys_and_apps_are_managed() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    let a = server.org("A").await;
    let b = server.org("B").await;
    let (status, user) = api
        .call(
            Method::POST,
            "/users",
            Some(
                json!({"email": "Ana@Example.test", "password": common::PASSWORD,
                "memberships": [{"org_id": a, "role": "admin"}]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    let uid = user["id"].as_str().unwrap().to_owned();
    assert_eq!(
        api.call(Method::GET, &format!("/users/{uid}"), None)
            .await
            .1["email"],
        "Ana@Example.test"
    );
    let got = api
        .call(Method::POST, "/users", Some(json!({"email": "ana@example.test", "memberships": [{"org_id": a, "role": "member"}]})))
        .await;
    assert_error(&got, StatusCode::CONFLICT, "conflict", "email");
    // Without a password (signs in through a provider).
    let (status, bob) = api
        .call(
            Method::POST,
            "/users",
            Some(json!({"email": "bob@example.test", "memberships": [
                {"org_id": a, "role": "member"}, {"org_id": b, "role": "viewer"}]})),
        )
        .await;
    assert_eq!(status, 201, "{bob}");
    assert_eq!(bob["memberships"].as_array().unwrap().len(), 2);
    let bob_id = bob["id"].as_str().unwrap().to_owned();

    let (status, page) = api
        .call(Method::GET, &format!("/orgs/{a}/users?limit=1"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let next = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, page2) = api
        .call(
            Method::GET,
            &format!("/orgs/{a}/users?limit=1&cursor={next}"),
            None,
        )
        .await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert_eq!(page2["next_cursor"], Value::Null);
    assert_ne!(page["items"][0]["id"], page2["items"][0]["id"]);

    // Memberships: role changed, last admin kept, member removed.
    let (status, m) = api
        .call(
            Method::PUT,
            &format!("/orgs/{b}/members/{bob_id}"),
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["role"], "member");
    let got = api
        .call(
            Method::PUT,
            &format!("/orgs/{a}/members/{uid}"),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "conflict", "only admin");
    assert_eq!(
        api.call(Method::DELETE, &format!("/orgs/{b}/members/{bob_id}"), None)
            .await
            .0,
        204
    );
    let got = api
        .call(Method::DELETE, &format!("/orgs/{b}/members/{bob_id}"), None)
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", "membership");

    // API keys and connected apps: listed and revoked.
    let ana = common::TestUser {
        id: uid.parse().unwrap(),
        email: "Ana@Example.test".into(),
        password: common::PASSWORD.into(),
    };
    let key = server.api_key(&ana, a, "mcp:read").await;
    let key_id = key.split('_').nth(1).unwrap();
    let (_, keys) = api
        .call(Method::GET, &format!("/users/{uid}/api-keys"), None)
        .await;
    assert_eq!(keys["items"][0]["id"], key_id);
    assert!(!keys.to_string().contains("secret"));
    let (_, keys) = api
        .call(Method::GET, &format!("/orgs/{a}/api-keys"), None)
        .await;
    assert_eq!(keys["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.call(Method::DELETE, &format!("/api-keys/{key_id}"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        api.call(Method::GET, &format!("/users/{uid}/api-keys"), None)
            .await
            .1["items"],
        json!([])
    );
    let got = api
        .call(Method::DELETE, &format!("/api-keys/{key_id}"), None)
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", "API key");

    let tokens = server.oauth_tokens(&ana, "mcp:read").await;
    let (_, apps) = api
        .call(Method::GET, &format!("/users/{uid}/apps"), None)
        .await;
    let grant = apps["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(apps["items"][0]["client_id"], tokens.client_id.as_str());
    assert_eq!(
        api.call(Method::DELETE, &format!("/apps/{grant}"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        api.call(Method::GET, &format!("/users/{uid}/apps"), None)
            .await
            .1["items"],
        json!([])
    );
    let list = mcp::tools_list(1);
    assert_eq!(
        mcp::post(&server, Some(&tokens.access_token), None, &list)
            .await
            .status(),
        401
    );

    // Disable, enable, delete.
    let (status, disabled) = api
        .call(Method::POST, &format!("/users/{bob_id}/disable"), None)
        .await;
    assert_eq!(status, 200);
    assert!(disabled["disabled_at"].is_i64());
    let (_, enabled) = api
        .call(Method::POST, &format!("/users/{bob_id}/enable"), None)
        .await;
    assert_eq!(enabled["disabled_at"], Value::Null);
    assert_eq!(
        api.call(Method::DELETE, &format!("/users/{bob_id}"), None)
            .await
            .0,
        204
    );
    let got = api
        .call(Method::GET, &format!("/users/{bob_id}"), None)
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", &bob_id);
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_400_with_a_clear_message() {
    let server = TestServer::start_with(|c| c.max_body_bytes = 4096).await;
    let api = Api::new(&server).await;
    let org = server.org("A").await;
    let cases: Vec<(Method, String, &str, &str)> = vec![
        (Method::POST, "/orgs".into(), "{not json", "JSON"),
        (Method::POST, "/orgs".into(), r#"{"name": 5}"#, "JSON"),
        (Method::POST, "/orgs".into(), r#"{"name": "x", "extra": 1}"#, "extra"),
        (Method::POST, "/orgs".into(), r#"{"name": "  "}"#, "name"),
        (Method::PATCH, format!("/orgs/{org}"), r#"{"name": 1}"#, "name"),
        (Method::PATCH, format!("/orgs/{org}"), r#"{}"#, "name"),
        (Method::POST, "/users".into(), r#"{"email": "x@example.test", "memberships": []}"#, "memberships"),
        (Method::POST, "/users".into(), r#"{"email": "nope", "memberships": [{"org_id": "00000000-0000-0000-0000-000000000000", "role": "member"}]}"#, "email"),
        (Method::POST, "/users".into(), &*Box::leak(format!(r#"{{"email": "y@example.test", "memberships": [{{"org_id": "{org}", "role": "owner"}}]}}"#).into_boxed_str()), "role"),
        (Method::POST, "/users".into(), &*Box::leak(format!(r#"{{"email": "y@example.test", "password": "short", "memberships": [{{"org_id": "{org}", "role": "member"}}]}}"#).into_boxed_str()), "password"),
        (Method::PUT, format!("/orgs/{org}/members/not-a-uuid"), r#"{"role": "member"}"#, "UUID"),
    ];
    for (method, path, body, mentions) in cases {
        let got = api.raw(method.clone(), &path, body).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request", mentions);
    }
    let got = api.call(Method::GET, "/orgs?limit=0", None).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request", "limit");
    let got = api.call(Method::GET, "/orgs/not-a-uuid", None).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request", "UUID");
    let big = json!({"name": "x".repeat(10_000)}).to_string();
    let got = api.raw(Method::POST, "/orgs", &big).await;
    assert_error(
        &got,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "too large",
    );
    let got = api.call(Method::GET, "/nothing/here", None).await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", "endpoint");
    let got = api
        .call(Method::GET, &format!("/users/{}", Uuid::new_v4()), None)
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", "user");
    server.stop().await;
}

#[tokio::test]
async fn deleting_or_disabling_a_user_stops_their_api_key_at_mcp() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    let org = server.org("A").await;
    let _admin = server.user(org, Role::Admin).await;
    let list = mcp::tools_list(1);
    for action in ["disable", "delete"] {
        let user = server.user(org, Role::Member).await;
        let key = server.api_key(&user, org, "mcp:read").await;
        assert_eq!(
            mcp::post(&server, Some(&key), Some(org), &list)
                .await
                .status(),
            200
        );
        let (method, path) = match action {
            "disable" => (Method::POST, format!("/users/{}/disable", user.id)),
            _ => (Method::DELETE, format!("/users/{}", user.id)),
        };
        assert!(api.call(method, &path, None).await.0.is_success());
        let bound = server.state.api_keys.ttl() + Duration::from_secs(5);
        let stopped = mcp::eventually(bound, || async {
            mcp::post(&server, Some(&key), Some(org), &list)
                .await
                .status()
                == 401
        })
        .await;
        assert!(stopped, "the key still works after {action}");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_openapi_description_matches_the_router() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    let response = server
        .http
        .get(server.url("/admin/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let methods = ["get", "post", "put", "patch", "delete"];
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 14);
    let zero = Uuid::nil().to_string();
    for (path, item) in paths {
        let concrete = path
            .replace("{org}", &zero)
            .replace("{user}", &zero)
            .replace("{id}", &zero);
        let relative = concrete.strip_prefix("/admin/api/v1").unwrap();
        for method in methods {
            let documented = item.get(method).is_some();
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body) = api.raw(m, relative, "{}").await;
            if documented {
                assert!(
                    status != 404
                        || body["error"] == "not_found"
                            && !body["message"].as_str().unwrap().contains("endpoint"),
                    "{method} {path} is documented but not served: {status} {body}"
                );
                assert_ne!(status, 405, "{method} {path} is documented but not served");
                assert!(item[method]["responses"].is_object(), "{method} {path}");
            } else {
                // Served methods are all documented: anything else is 405.
                assert_eq!(
                    status, 405,
                    "{method} {path} is served but not documented: {body}"
                );
                if !path.ends_with("openapi.json") {
                    assert_eq!(body["error"], "method_not_allowed", "{method} {path}");
                }
            }
        }
    }
    server.stop().await;
}

/// Runs the real binary against the test server's database.
async fn cli(server: &TestServer, args: &[&str]) -> Value {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .arg("--json")
        .env("PORTCULLIS_DATABASE_URL", &server.state.config.database_url)
        .env("PORTCULLIS_KEYS_DIR", &server.state.config.keys_dir)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn admin_tokens_are_created_listed_and_revoked_from_the_command_line() {
    let server = TestServer::start().await;
    let created = cli(&server, &["admin-token", "create", "--name", "sync"]).await;
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("pcadm_"));
    let id = created["id"].as_str().unwrap().to_owned();
    let orgs = |token: String| {
        let request = server.http.get(server.url("/admin/api/v1/orgs"));
        async move { request.bearer_auth(token).send().await.unwrap().status() }
    };
    assert_eq!(orgs(token.clone()).await, 200);
    let listed = cli(&server, &["admin-token", "list"]).await;
    assert_eq!(listed["tokens"][0]["name"], "sync");
    assert!(!listed.to_string().contains(&token[20..]));
    let revoked = cli(&server, &["admin-token", "revoke", "--id", &id]).await;
    assert_eq!(revoked["revoked"], true);
    assert_eq!(orgs(token).await, 401);
    server.stop().await;
}

#[tokio::test]
async fn machine_access_is_managed_service_clients_and_trusted_identity_providers() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    let org = server.org("Acme").await;

    // A service client with a secret, answered once; its token works.
    let (status, created) = api
        .call(
            Method::POST,
            &format!("/orgs/{org}/service-clients"),
            Some(json!({"name": "Nightly CI", "role": "member", "scope": "mcp:read"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let token = |(id, secret): (String, String)| {
        let request = server
            .http
            .post(server.url("/token"))
            .basic_auth(id, Some(secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("resource", server.resource().as_str()),
            ]);
        async move { request.send().await.unwrap() }
    };
    let answer = token((client_id.clone(), secret.clone())).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let access: Value = answer.json().await.unwrap();
    let access = access["access_token"].as_str().unwrap().to_owned();
    let whoami = || {
        let request = server
            .http
            .post(server.resource())
            .bearer_auth(&access)
            .header(header::ACCEPT, "application/json, text/event-stream")
            .json(&mcp::tools_call(1, "whoami", json!({})));
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(whoami().await, StatusCode::OK);
    let (status, listed) = api
        .call(Method::GET, &format!("/orgs/{org}/service-clients"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["service_clients"][0]["client_id"], client_id);
    assert!(listed["service_clients"][0].get("client_secret").is_none());

    // Keys as both a URL and a document: which one is meant is unclear.
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/orgs/{org}/service-clients"),
            Some(json!({"name": "x", "role": "member", "jwks_uri": "https://k.example/jwks", "jwks": {"keys": []}})),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );

    // Revoked: new tokens refused, the live one within the bound.
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/orgs/{org}/service-clients/{client_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        token((client_id.clone(), secret)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let refused = mcp::eventually(Duration::from_secs(20), || async {
        whoami().await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(refused, "the revoked client's token still works");
    let (status, body) = api
        .call(
            Method::DELETE,
            &format!("/orgs/{org}/service-clients/{client_id}"),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    // Trusted enterprise identity providers: asymmetric algorithms only.
    let idps = format!("/orgs/{org}/identity-providers");
    let (status, body) = api
        .call(
            Method::POST,
            &idps,
            Some(json!({"issuer": "https://idp.example", "jwks_uri": "https://idp.example/jwks", "algorithms": "HS256"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("asymmetric"),
        "{body}"
    );
    let (status, body) = api
        .call(
            Method::POST,
            &idps,
            Some(json!({"issuer": "https://idp.example", "jwks_uri": "https://idp.example/jwks"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, listed) = api.call(Method::GET, &idps, None).await;
    assert_eq!(
        listed["identity_providers"][0]["issuer"],
        "https://idp.example"
    );
    let (status, _) = api.call(Method::DELETE, &idps, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the issuer must be named");
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("{idps}?issuer=https%3A%2F%2Fidp.example"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, listed) = api.call(Method::GET, &idps, None).await;
    assert_eq!(listed["identity_providers"], json!([]));
}
