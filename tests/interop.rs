//! Faults found by replaying real clients' requests, each as a test of the
//! right answer: authorization schemes in any case, CORS for every header
//! `/mcp` reads, lenient form Content-Types, untrusted names that cannot
//! rewrite a page, and JSON-RPC batches under protocol 2025-03-26.

#[path = "common/cimd.rs"]
mod cimd;
mod common;
#[path = "common/mcp.rs"]
mod mcp;

use base64::{Engine, engine::general_purpose::STANDARD};
use common::{CALLBACK, Pkce, TestServer, query_param};
use portcullis::identity::scope::Role;
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

/// A confidential client (client_secret_basic) through sign-in and consent;
/// returns (client id, secret, authorization code, PKCE verifier).
async fn confidential_code(server: &TestServer, scope: &str) -> (String, String, String, String) {
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Admin).await;
    let registered: Value = server
        .register(json!({
            "client_name": "Backend",
            "redirect_uris": [CALLBACK],
            "token_endpoint_auth_method": "client_secret_basic",
        }))
        .await
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let secret = registered["client_secret"].as_str().unwrap().to_owned();
    let pkce = Pkce::new();
    let url = server.authorize_url(&client_id, CALLBACK, scope, &pkce, "s");
    let callback = server
        .authorize_in_browser(&server.browser(), &url, &user, scope)
        .await;
    let code = query_param(&callback, "code").unwrap();
    (client_id, secret, code, pkce.verifier)
}

#[tokio::test]
async fn authorization_schemes_are_case_insensitive_everywhere() {
    let server = TestServer::start().await;
    let (client_id, secret, code, verifier) =
        confidential_code(&server, "openid email mcp:read").await;
    let basic = STANDARD.encode(format!("{client_id}:{secret}"));

    // POST /token with `BASIC`, and two spaces before the credentials (1*SP).
    let response = server
        .http
        .post(server.url("/token"))
        .header(header::AUTHORIZATION, format!("BASIC  {basic}"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();

    // GET /userinfo with `BEARER`.
    for scheme in ["BEARER", "bearer", "Bearer"] {
        let response = server
            .http
            .get(server.url("/userinfo"))
            .header(header::AUTHORIZATION, format!("{scheme} {access}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }

    // /introspect and /revoke with `basic`.
    let introspected: Value = server
        .http
        .post(server.url("/introspect"))
        .header(header::AUTHORIZATION, format!("basic {basic}"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true);

    // /mcp with `BEARER` and extra spaces.
    let response = server
        .http
        .post(server.resource())
        .header(header::AUTHORIZATION, format!("BEARER   {access}"))
        .header(header::ACCEPT, "application/json, text/event-stream")
        .json(&mcp::tools_list(1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let revoked = server
        .http
        .post(server.url("/revoke"))
        .header(header::AUTHORIZATION, format!("BaSiC {basic}"))
        .form(&[("token", refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let (status, body) = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // Another scheme at a client-authenticating endpoint gets the Basic
    // challenge too (RFC 6749 §5.2).
    let response = server
        .http
        .post(server.url("/introspect"))
        .header(header::AUTHORIZATION, format!("Bearer {access}"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        "Basic realm=\"portcullis\""
    );

    // A wrong secret in any case is still refused, with the Basic challenge.
    let wrong = STANDARD.encode(format!("{client_id}:nope"));
    let response = server
        .http
        .post(server.url("/introspect"))
        .header(header::AUTHORIZATION, format!("BASIC {wrong}"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        "Basic realm=\"portcullis\""
    );
}

async fn preflight(server: &TestServer, requested: &str) -> (StatusCode, String) {
    let response = server
        .http
        .request(reqwest::Method::OPTIONS, server.resource())
        .header("Origin", "http://localhost:6274")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", requested)
        .send()
        .await
        .unwrap();
    let allowed = response
        .headers()
        .get("access-control-allow-headers")
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .unwrap_or_default();
    (response.status(), allowed)
}

#[tokio::test]
async fn browsers_may_send_every_header_mcp_reads() {
    let server = TestServer::start().await;
    let (status, allowed) = preflight(
        &server,
        "authorization,content-type,x-organization-id,mcp-method,mcp-name,mcp-param-region,mcp-protocol-version",
    )
    .await;
    assert!(status.is_success());
    let methods = server
        .http
        .request(reqwest::Method::OPTIONS, server.resource())
        .header("Origin", "http://localhost:6274")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap()
        .headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        methods.contains("POST") && !methods.contains("GET") && !methods.contains("DELETE"),
        "{methods}"
    );
    for name in [
        "authorization",
        "content-type",
        "x-organization-id",
        "mcp-method",
        "mcp-name",
        "mcp-param-region",
        "mcp-protocol-version",
    ] {
        assert!(
            allowed.split(',').any(|a| a.trim() == name),
            "{name} not in {allowed}"
        );
    }
    // A header /mcp does not read is not allowed, so the browser refuses it.
    let (_, allowed) = preflight(&server, "x-something-else").await;
    assert!(!allowed.contains("x-something-else"), "{allowed}");

    // The configured org header, whatever its name.
    let tenant = TestServer::start_with(|c| c.org_header = "X-Tenant".into()).await;
    let (_, allowed) = preflight(&tenant, "authorization,x-tenant").await;
    assert!(allowed.contains("x-tenant"), "{allowed}");
    let (_, allowed) = preflight(&tenant, "x-organization-id").await;
    assert!(!allowed.contains("x-organization-id"), "{allowed}");
}

#[tokio::test]
async fn the_token_endpoint_reads_a_form_whatever_else_the_content_type_lists() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let tokens = server.oauth_tokens(&user, "mcp:read").await;
    let mut refresh = tokens.refresh_token.clone();
    for content_type in [
        // MCP Inspector.
        "application/json, application/x-www-form-urlencoded",
        "Application/X-WWW-Form-Urlencoded; Charset=UTF-8",
        "application/x-www-form-urlencoded;charset=utf-8",
    ] {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", &refresh)
            .append_pair("client_id", &tokens.client_id)
            .finish();
        let response = server
            .http
            .post(server.url("/token"))
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{content_type}");
        let v: Value = response.json().await.unwrap();
        refresh = v["refresh_token"].as_str().unwrap().to_owned();
    }
    // A JSON body stays invalid_request (RFC 6749 §3.2).
    let response = server
        .http
        .post(server.url("/token"))
        .json(&json!({"grant_type": "refresh_token", "refresh_token": refresh, "client_id": tokens.client_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let v: Value = response.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request");

    // /revoke takes the same lenient rule.
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", &refresh)
        .append_pair("client_id", &tokens.client_id)
        .finish();
    let response = server
        .http
        .post(server.url("/revoke"))
        .header(
            header::CONTENT_TYPE,
            "application/json, application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // /register reads JSON with any case and charset.
    let response = server
        .http
        .post(server.url("/register"))
        .header(header::CONTENT_TYPE, "Application/JSON; Charset=UTF-8")
        .body(json!({"client_name": "x", "redirect_uris": [CALLBACK]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

/// The consent page for `client_id`, reached by a signed-in user.
async fn consent_page(server: &TestServer, client_id: &str, redirect_uri: &str) -> String {
    // One org for every page: org names are unique ignoring case.
    let org = match server.state.store.org_by_name("Acme Corp").await.unwrap() {
        Some(org) => org.id,
        None => server.org("Acme \u{202e}Corp").await,
    };
    let user = server.user(org, Role::Member).await;
    let browser = server.browser();
    server.sign_in(&browser, &user.email, &user.password).await;
    let url = server.authorize_url(client_id, redirect_uri, "mcp:read", &Pkce::new(), "s");
    let response = browser.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

#[tokio::test]
async fn untrusted_names_cannot_rewrite_the_page_around_them() {
    let server = TestServer::start().await;
    for (raw, shown) in [
        ("Evil App\u{202e}", "Evil App"),
        ("Cl\u{200b}aude", "Claude"),
        ("\u{2066}Mallory\u{2069} \u{061c}Inc\u{200f}", "Mallory Inc"),
    ] {
        let registered: Value = server
            .register(json!({"client_name": raw, "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(registered["client_name"], shown, "{raw:?}");
        let page = consent_page(&server, registered["client_id"].as_str().unwrap(), CALLBACK).await;
        assert!(
            page.contains(&format!("<bdi>{shown}</bdi>")),
            "the client name is isolated"
        );
        // The org name was cleaned at creation, and is isolated too.
        assert!(page.contains("<bdi>Acme Corp</bdi>"));
        for c in [
            '\u{202e}', '\u{200b}', '\u{2066}', '\u{2069}', '\u{061c}', '\u{200f}',
        ] {
            assert!(!page.contains(c), "{c:?} reached the page");
        }
    }

    // A Client ID Metadata Document's name gets the same treatment.
    let base = cimd::http_host(vec![(
        "/meta.json",
        json!({"client_name": "Doc\u{202e}Client", "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"}),
    )])
    .await;
    let page = consent_page(&server, &format!("{base}/meta.json"), CALLBACK).await;
    assert!(page.contains("<bdi>DocClient</bdi>"), "{page}");

    // An IDN redirect host is shown in its ASCII (punycode) form.
    let registered: Value = server
        .register(json!({"client_name": "IDN", "redirect_uris": ["https://\u{0430}pple.example/cb"], "token_endpoint_auth_method": "none"}))
        .await
        .json()
        .await
        .unwrap();
    let page = consent_page(
        &server,
        registered["client_id"].as_str().unwrap(),
        "https://\u{0430}pple.example/cb",
    )
    .await;
    assert!(page.contains("xn--pple-43d.example"), "{page}");
    assert!(!page.contains("\u{0430}pple"));
}

/// POSTs `body` to `/mcp` with an API key, under `version` when given.
async fn post_mcp(
    server: &TestServer,
    key: &str,
    org: uuid::Uuid,
    version: Option<&str>,
    mut body: String,
) -> reqwest::Response {
    // Revision 2026-07-28's per-request client context (SEP-2575).
    if version == Some("2026-07-28")
        && let Ok(mut message @ Value::Object(_)) = serde_json::from_str::<Value>(&body)
        && message.get("method").is_some()
        && message.get("params").is_none_or(Value::is_object)
    {
        if message.get("params").is_none() {
            message["params"] = json!({});
        }
        message["params"]["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "interop-test", "version": "1"},
        });
        body = message.to_string();
    }
    let body_text = body.clone();
    let mut request = server
        .http
        .post(server.resource())
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header(header::CONTENT_TYPE, "application/json")
        .header("X-Organization-Id", org.to_string())
        .bearer_auth(key)
        .body(body);
    if let Some(version) = version {
        request = request.header("MCP-Protocol-Version", version);
    }
    // Revision 2026-07-28's standard headers, as its clients send them.
    if version == Some("2026-07-28")
        && let Ok(message) = serde_json::from_str::<Value>(&body_text)
        && let Some(method) = message["method"].as_str()
    {
        request = request.header("Mcp-Method", method);
        if let Some(name) = message["params"]["name"].as_str() {
            request = request.header("Mcp-Name", name);
        }
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn batches_are_answered_for_protocol_2025_03_26() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let key = server.api_key(&user, org, "mcp:read").await;
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": "b", "method": "tools/call", "params": {"name": "whoami", "arguments": {}}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "delete_api_key", "arguments": {"id": "x", "confirm": true}}},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "no_such_tool"}},
        {"jsonrpc": "1.0", "id": 5, "method": "ping"},
    ]);
    // With the 2025-03-26 header, and with none (which means 2025-03-26).
    for version in [Some("2025-03-26"), None] {
        let response = post_mcp(&server, &key, org, version, batch.to_string()).await;
        assert_eq!(response.status(), StatusCode::OK, "{version:?}");
        let answers: Vec<Value> = response.json().await.unwrap();
        let ids: Vec<Value> = answers.iter().map(|a| a["id"].clone()).collect();
        assert_eq!(ids, [json!(1), json!("b"), json!(3), json!(4), json!(5)]);
        assert!(answers[0]["result"]["tools"].is_array());
        assert_eq!(
            answers[1]["result"]["structuredContent"]["source"],
            "mcp-bearer"
        );
        // A tool above the key's scopes answers exactly like a missing one.
        assert_eq!(answers[2]["error"], answers[3]["error"]);
        assert_eq!(answers[4]["error"]["code"], -32600);
    }
    // Only notifications: 202 and no body.
    let response = post_mcp(
        &server,
        &key,
        org,
        Some("2025-03-26"),
        json!([{"jsonrpc": "2.0", "method": "notifications/initialized"}]).to_string(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!(response.bytes().await.unwrap().is_empty());
    // An empty batch, and any batch under a later revision: -32600.
    for (version, body) in [
        (Some("2025-03-26"), "[]".to_owned()),
        (
            Some("2025-11-25"),
            json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]).to_string(),
        ),
        (
            Some("2026-07-28"),
            json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]).to_string(),
        ),
    ] {
        let response = post_mcp(&server, &key, org, version, body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let v: Value = response.json().await.unwrap();
        assert_eq!(v["error"]["code"], -32600, "{v}");
    }
}

#[tokio::test]
async fn duplicate_member_names_get_a_json_rpc_error() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let key = server.api_key(&user, org, "mcp:read").await;
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","name":"list_members"}}"#,
    ] {
        let response = post_mcp(&server, &key, org, Some("2025-11-25"), body.to_owned()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let v: Value = response.json().await.unwrap();
        assert_eq!(v["error"]["code"], -32600, "{v}");
    }
}

#[tokio::test]
async fn repeated_requests_get_exactly_the_bytes_rmcp_sent() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let key = server.api_key(&user, org, "mcp:read").await;
    for (version, method) in [
        ("2025-11-25", "tools/list"),
        ("2026-07-28", "tools/list"),
        ("2025-03-26", "ping"),
        ("2025-06-18", "tools/list"),
    ] {
        let body = |id: Value| {
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": {}}).to_string()
        };
        // The first answer comes from rmcp itself, the later ones from cache.
        let first = post_mcp(&server, &key, org, Some(version), body(json!(1)))
            .await
            .bytes()
            .await
            .unwrap();
        let again = post_mcp(&server, &key, org, Some(version), body(json!(1)))
            .await
            .bytes()
            .await
            .unwrap();
        assert_eq!(first, again, "{version} {method}");
        let text = String::from_utf8(first.to_vec()).unwrap();
        assert!(text.starts_with(r#"{"jsonrpc":"2.0","id":1,"#), "{text}");
        for id in [json!("a\"b"), json!(-7), json!("é")] {
            let answer = post_mcp(&server, &key, org, Some(version), body(id.clone()))
                .await
                .text()
                .await
                .unwrap();
            let expected = text.replacen(
                r#""id":1,"#,
                &format!("\"id\":{},", serde_json::to_string(&id).unwrap()),
                1,
            );
            assert_eq!(answer, expected, "{version} {method} {id}");
        }
        // Ids that are neither strings nor integers are refused, and echoed.
        for id in [json!(1.5), json!(null), json!({"a": 1})] {
            let response = post_mcp(&server, &key, org, Some(version), body(id.clone())).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
            let v: Value = response.json().await.unwrap();
            assert_eq!(
                (v["id"].clone(), v["error"]["code"].clone()),
                (id, json!(-32600))
            );
        }
        // A message rmcp cannot read (params of the wrong type) is still
        // answered in JSON-RPC.
        let response = post_mcp(
            &server,
            &key,
            org,
            Some(version),
            json!({"jsonrpc": "2.0", "id": 9, "method": method, "params": 5}).to_string(),
        )
        .await;
        assert!(response.status().is_client_error(), "{}", response.status());
        let v: Value = response.json().await.unwrap();
        assert_eq!(v["id"], 9, "{v}");
        assert!(v["error"]["code"].is_i64(), "{v}");
    }
}

#[tokio::test]
async fn revision_2026_07_28_serves_scope_filtered_private_tool_lists() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Admin).await;
    let read = server.api_key(&user, org, "mcp:read").await;
    let admin = server
        .api_key(&user, org, "mcp:read mcp:write mcp:admin")
        .await;
    let list = |key: String| {
        let server = &server;
        async move {
            let v: Value = post_mcp(
                server,
                &key,
                org,
                Some("2026-07-28"),
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string(),
            )
            .await
            .json()
            .await
            .unwrap();
            v
        }
    };
    let few = list(read.clone()).await;
    let all = list(admin).await;
    assert_eq!(few["result"]["cacheScope"], "private", "{few}");
    assert!(few["result"].get("ttlMs").is_some(), "{few}");
    assert!(
        few["result"]["tools"].as_array().unwrap().len()
            < all["result"]["tools"].as_array().unwrap().len()
    );
    // Older revisions get none of the 2026-07-28 fields.
    let old: Value = post_mcp(
        &server,
        &read,
        org,
        Some("2025-11-25"),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string(),
    )
    .await
    .json()
    .await
    .unwrap();
    for field in ["cacheScope", "ttlMs", "resultType"] {
        assert!(old["result"].get(field).is_none(), "{field} in {old}");
    }
    // A hidden tool answers exactly like a nonexistent one.
    let call = |name: &str| {
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": {"id": "x", "confirm": true}}})
            .to_string()
    };
    let hidden = post_mcp(
        &server,
        &read,
        org,
        Some("2026-07-28"),
        call("delete_api_key"),
    )
    .await
    .text()
    .await
    .unwrap();
    let missing = post_mcp(
        &server,
        &read,
        org,
        Some("2026-07-28"),
        call("no_such_tool"),
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(hidden, missing);
}

#[tokio::test]
async fn every_mcp_answer_is_json_rpc_and_credentials_are_unambiguous() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Admin).await;
    let read = server.api_key(&user, org, "mcp:read").await;
    let admin = server
        .api_key(&user, org, "mcp:read mcp:write mcp:admin")
        .await;
    let is_json_rpc_error = |v: &Value| v["jsonrpc"] == "2.0" && v["error"]["code"].is_i64();

    // Two Authorization headers: refused, whichever comes first.
    let response = server
        .http
        .post(server.resource())
        .header(header::AUTHORIZATION, format!("Bearer {admin}"))
        .header(header::AUTHORIZATION, format!("Bearer {read}"))
        .header("X-Organization-Id", org.to_string())
        .header(header::ACCEPT, "application/json, text/event-stream")
        .json(&mcp::tools_list(1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Two org headers, likewise.
    let response = server
        .http
        .post(server.resource())
        .bearer_auth(&read)
        .header("X-Organization-Id", org.to_string())
        .header("X-Organization-Id", uuid::Uuid::new_v4().to_string())
        .header(header::ACCEPT, "application/json, text/event-stream")
        .json(&mcp::tools_list(1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Ids beyond i64, wrong content types, other methods, foreign origins:
    // all JSON-RPC errors.
    let big = post_mcp(
        &server,
        &read,
        org,
        Some("2025-11-25"),
        r#"{"jsonrpc":"2.0","id":9223372036854775808,"method":"ping"}"#.to_owned(),
    )
    .await;
    assert_eq!(big.status(), StatusCode::BAD_REQUEST);
    assert!(is_json_rpc_error(&big.json().await.unwrap()));
    let notification = post_mcp(
        &server,
        &read,
        org,
        Some("2025-11-25"),
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":5}"#.to_owned(),
    )
    .await;
    if !notification.status().is_success() {
        assert!(is_json_rpc_error(&notification.json().await.unwrap()));
    }
    let text_plain = server
        .http
        .post(server.resource())
        .bearer_auth(&read)
        .header("X-Organization-Id", org.to_string())
        .header(header::CONTENT_TYPE, "text/plain")
        .body(mcp::tools_list(1).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(text_plain.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(is_json_rpc_error(&text_plain.json().await.unwrap()));
    let get = server
        .http
        .get(server.resource())
        .bearer_auth(&read)
        .header("X-Organization-Id", org.to_string())
        .header(header::ACCEPT, "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(is_json_rpc_error(&get.json().await.unwrap()));
    let foreign = server
        .http
        .post(server.resource())
        .header("Origin", "https://evil.example")
        .bearer_auth(&read)
        .header("X-Organization-Id", org.to_string())
        .json(&mcp::tools_list(1))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert!(is_json_rpc_error(&foreign.json().await.unwrap()));

    // A loopback public URL answers to any of loopback's names.
    let port = server.state.config.listen.port();
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let response = server
            .http
            .post(server.resource())
            .header(header::HOST, &host)
            .bearer_auth(&read)
            .header("X-Organization-Id", org.to_string())
            .header(header::ACCEPT, "application/json, text/event-stream")
            .json(&mcp::tools_list(1))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{host}");
    }

    // An unfinished request head is not buffered past 32 KiB: the server
    // answers 431 and closes at once, long before the header timeout.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.state.config.listen)
        .await
        .unwrap();
    let mut head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 200 * 1024));
    let _ = stream.write_all(&head).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("closed well before the 10 s header timeout");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        read.is_err() || answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
}

/// A registration body of the wrong shape is answered in RFC 7591 terms,
/// never with the name of a Rust type.
#[tokio::test]
async fn malformed_registration_metadata_is_described_for_the_client() {
    let server = TestServer::start().await;
    for body in [
        "[]",
        "\"x\"",
        "{\"redirect_uris\": 5}",
        "{\"redirect_uris\": [1]}",
    ] {
        let response = reqwest::Client::new()
            .post(server.url("/register"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"], "invalid_client_metadata", "{body}");
        let description = answer["error_description"].as_str().unwrap();
        assert!(
            !description.contains("struct") && !description.contains("Request"),
            "{body}: {description}"
        );
    }
}
