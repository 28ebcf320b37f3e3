//! Who may reach `/mcp`: OAuth access tokens of ours and API keys with the org
//! header; everything else gets a 401 with the challenge of SPEC §4.2.

mod common;
#[path = "common/mcp.rs"]
mod mcp;

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::TestServer;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis::{
    identity::scope::Role,
    oauth::{jwt, keys::Keys},
    store::Store,
};
use serde_json::{Value, json};
use uuid::Uuid;

fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

fn bare_challenge(server: &TestServer) -> String {
    format!(
        "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:read mcp:write\"",
        server.base
    )
}

/// A 401 for a presented credential: the bare challenge plus `invalid_token`.
async fn assert_refused(server: &TestServer, response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 401);
    let challenge = challenge(&response);
    assert!(
        challenge.starts_with(&format!(
            "{}, error=\"invalid_token\", error_description=\"",
            bare_challenge(server)
        )),
        "{challenge}"
    );
    response.json().await.unwrap()
}

#[tokio::test]
async fn no_credential_gets_the_discovery_challenge() {
    let server = TestServer::start().await;
    let response = mcp::post(&server, None, None, &mcp::tools_list(1)).await;
    assert_eq!(response.status(), 401);
    assert_eq!(challenge(&response), bare_challenge(&server));
    // rmcp's and other clients' discovery starts with an unauthenticated GET.
    let response = server
        .http
        .get(server.resource())
        .header("MCP-Protocol-Version", "2024-11-05")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(challenge(&response), bare_challenge(&server));
}

#[tokio::test]
async fn each_api_key_refusal_names_its_cause() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let other_org = server.org("Globex").await;
    let user = server.user(org, Role::Member).await;
    let key = server.api_key(&user, org, "mcp:read").await;
    let list = mcp::tools_list(1);

    // A missing or malformed org header is a configuration mistake: the
    // challenge must not say `invalid_token`, or OAuth-capable clients start
    // a sign-in for it.
    for org_header in [None, Some("not-a-uuid")] {
        let mut request = server
            .http
            .post(server.resource())
            .header("accept", "application/json, text/event-stream")
            .bearer_auth(&key)
            .json(&list);
        if let Some(value) = org_header {
            request = request.header("X-Organization-Id", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let challenge = challenge(&response);
        assert!(
            challenge.starts_with(&format!(
                "{}, error=\"invalid_request\", error_description=\"",
                bare_challenge(&server)
            )),
            "{challenge}"
        );
        assert!(!challenge.contains("invalid_token"), "{challenge}");
        let body: Value = response.json().await.unwrap();
        let expected = match org_header {
            None => "X-Organization-Id header required.",
            Some(_) => "X-Organization-Id must be an organization id (a UUID).",
        };
        assert_eq!(
            body,
            json!({"error": "invalid_request", "error_description": expected})
        );
    }

    let unknown = format!("pcl_{}_{}", Uuid::new_v4().simple(), "A".repeat(43));
    let body = assert_refused(
        &server,
        mcp::post(&server, Some(&unknown), Some(org), &list).await,
    )
    .await;
    assert_eq!(body["error_description"], "Unknown or revoked API key.");

    let id = key.split('_').nth(1).unwrap();
    let wrong_secret = format!("pcl_{id}_{}", "B".repeat(43));
    let body = assert_refused(
        &server,
        mcp::post(&server, Some(&wrong_secret), Some(org), &list).await,
    )
    .await;
    assert_eq!(body["error_description"], "Unknown or revoked API key.");

    let body = assert_refused(
        &server,
        mcp::post(&server, Some(&key), Some(other_org), &list).await,
    )
    .await;
    assert_eq!(
        body["error_description"],
        "This API key belongs to a different organization than the X-Organization-Id header names."
    );

    let leaver = server.user(org, Role::Member).await;
    let leaver_key = server.api_key(&leaver, org, "mcp:read").await;
    remove_membership(&server.state.store, leaver.id, org).await;
    let body = assert_refused(
        &server,
        mcp::post(&server, Some(&leaver_key), Some(org), &list).await,
    )
    .await;
    assert_eq!(
        body["error_description"],
        "The API key's user is not a member of that organization."
    );

    let response = mcp::post(&server, Some(&key), Some(org), &list).await;
    assert_eq!(response.status(), 200);
}

async fn remove_membership(store: &Store, user: Uuid, org: Uuid) {
    let sql = "DELETE FROM memberships WHERE user_id = $1 AND org_id = $2";
    match store {
        Store::Sqlite(pool) => sqlx::query(sql)
            .bind(user)
            .bind(org)
            .execute(pool)
            .await
            .map(drop),
        Store::Postgres(pool) => sqlx::query(sql)
            .bind(user)
            .bind(org)
            .execute(pool)
            .await
            .map(drop),
    }
    .unwrap();
}

#[tokio::test]
async fn the_org_header_name_is_configurable() {
    let server = TestServer::start_with(|c| c.org_header = "X-Tenant".into()).await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Viewer).await;
    let key = server.api_key(&user, org, "mcp:read").await;
    let response = mcp::post(&server, Some(&key), None, &mcp::tools_list(1)).await;
    assert_eq!(response.status(), 401);
    assert!(challenge(&response).contains("error=\"invalid_request\""));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_description"], "X-Tenant header required.");
    let client = mcp::connect(&server, &key, Some(org)).await;
    assert!(
        mcp::tool_names(&client)
            .await
            .contains(&"whoami".to_owned())
    );
}

#[tokio::test]
async fn a_revoked_key_stops_working_within_the_cache_ttl() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let key = server.api_key(&user, org, "mcp:read").await;
    let list = mcp::tools_list(1);
    assert_eq!(
        mcp::post(&server, Some(&key), Some(org), &list)
            .await
            .status(),
        200
    );

    // Revoked from the command line: this instance learns of it only through its cache expiring.
    let id = key.split('_').nth(1).unwrap();
    portcullis::admin::revoke_api_key(&server.state.store, id)
        .await
        .unwrap();
    let revoked_at = Instant::now();
    let bound = server.state.api_keys.ttl();
    let stopped = mcp::eventually(bound + Duration::from_secs(2), || async {
        mcp::post(&server, Some(&key), Some(org), &list)
            .await
            .status()
            == 401
    })
    .await;
    assert!(
        stopped,
        "the revoked key still works after {:?}",
        revoked_at.elapsed()
    );
    assert!(revoked_at.elapsed() <= bound + Duration::from_secs(1));
}

/// A live token's claims, for minting variations of it.
async fn live_claims(server: &TestServer) -> (String, jwt::AccessClaims) {
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let tokens = server.oauth_tokens(&user, "mcp:read").await;
    let claims = jwt::verify_access_token(
        &server.state.keys,
        &tokens.access_token,
        &server.base,
        &server.resource(),
    )
    .unwrap();
    (tokens.access_token, claims)
}

#[tokio::test]
async fn forged_and_misdirected_tokens_are_refused() {
    let server = TestServer::start().await;
    let (_, claims) = live_claims(&server).await;
    let keys = &server.state.keys;
    let list = mcp::tools_list(1);

    // The same claims re-signed with our key pass: what fails below fails for its one change.
    let resigned = jwt::access_token(keys, &claims);
    assert_eq!(
        mcp::post(&server, Some(&resigned), None, &list)
            .await
            .status(),
        200
    );

    let mut other_resource = claims.clone();
    other_resource.aud = "https://other.example/mcp".into();
    let mut expired = claims.clone();
    expired.iat -= 7200;
    expired.nbf -= 7200;
    expired.exp = expired.iat + 3600;
    let dir = tempfile::tempdir().unwrap();
    let stranger = Keys::load_or_create(dir.path()).unwrap();
    assert_ne!(stranger.active().kid, keys.active().kid);

    let kid = keys.active().kid.clone();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let none_header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "at+jwt", "kid": kid}).to_string());
    let alg_none = format!("{none_header}.{payload}.");

    let public_key = keys.jwks()["keys"][0]["n"].as_str().unwrap().to_owned();
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some(kid.clone());
    hs_header.typ = Some("at+jwt".into());
    let hs256 = jsonwebtoken::encode(
        &hs_header,
        &claims,
        &EncodingKey::from_secret(public_key.as_bytes()),
    )
    .unwrap();

    for (what, token) in [
        ("another resource", jwt::access_token(keys, &other_resource)),
        ("expired", jwt::access_token(keys, &expired)),
        ("unknown key", jwt::access_token(&stranger, &claims)),
        ("alg none", alg_none),
        ("HS256 with the public key", hs256),
        ("not a JWT", "opaque-garbage".into()),
    ] {
        let response = mcp::post(&server, Some(&token), None, &list).await;
        assert_eq!(response.status(), 401, "{what}");
        assert!(
            challenge(&response).contains("error=\"invalid_token\""),
            "{what}"
        );
    }
}

#[tokio::test]
async fn revoking_the_grant_stops_its_access_token() {
    let server = TestServer::start().await;
    let (token, claims) = live_claims(&server).await;
    let list = mcp::tools_list(1);
    assert_eq!(
        mcp::post(&server, Some(&token), None, &list).await.status(),
        200
    );
    let response = server
        .http
        .post(server.url("/revoke"))
        .form(&[("token", token.as_str()), ("client_id", &claims.client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let stopped = mcp::eventually(Duration::from_secs(5), || async {
        mcp::post(&server, Some(&token), None, &list).await.status() == 401
    })
    .await;
    assert!(stopped);
}

#[tokio::test]
async fn browsers_from_other_origins_are_refused_and_ours_get_cors() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let key = server.api_key(&user, org, "mcp:read").await;

    let preflight = server
        .http
        .request(reqwest::Method::OPTIONS, server.resource())
        .header("Origin", &server.base)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type, mcp-protocol-version, mcp-session-id, last-event-id",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        server.base.as_str()
    );
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for header in [
        "authorization",
        "content-type",
        "accept",
        "mcp-session-id",
        "mcp-protocol-version",
        "last-event-id",
    ] {
        assert!(allowed.contains(header), "{header} not in {allowed}");
    }

    let ours = server
        .http
        .post(server.resource())
        .header("Origin", &server.base)
        .header("Accept", "application/json, text/event-stream")
        .header("X-Organization-Id", org.to_string())
        .bearer_auth(&key)
        .json(&mcp::tools_list(1))
        .send()
        .await
        .unwrap();
    assert_eq!(ours.status(), 200);
    let exposed = ours.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for header in ["mcp-session-id", "www-authenticate", "mcp-protocol-version"] {
        assert!(exposed.contains(header), "{header} not in {exposed}");
    }

    // A local browser tool such as MCP Inspector runs on a loopback origin.
    let inspector = server
        .http
        .post(server.resource())
        .header("Origin", "http://localhost:6274")
        .header("Accept", "application/json, text/event-stream")
        .header("X-Organization-Id", org.to_string())
        .bearer_auth(&key)
        .json(&mcp::tools_list(1))
        .send()
        .await
        .unwrap();
    assert_eq!(inspector.status(), 200);
    assert_eq!(
        inspector.headers()["access-control-allow-origin"],
        "http://localhost:6274"
    );

    for origin in [
        "http://evil.example",
        "null",
        "https://localhost.evil.example",
        "http://127.0.0.1.nip.io:8080",
    ] {
        let response = server
            .http
            .post(server.resource())
            .header("Origin", origin)
            .header("Accept", "application/json, text/event-stream")
            .header("X-Organization-Id", org.to_string())
            .bearer_auth(&key)
            .json(&mcp::tools_list(1))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{origin}");
    }
}

#[tokio::test]
async fn the_trailing_slash_endpoint_answers_directly() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let key = server.api_key(&user, org, "mcp:read").await;
    let response = server
        .http
        .post(server.url("/mcp/"))
        .header("Accept", "application/json, text/event-stream")
        .header("X-Organization-Id", org.to_string())
        .bearer_auth(&key)
        .json(&mcp::tools_list(3))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], 3);
    assert!(
        body["result"]["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    );
}

/// The MCP guards cover `/mcp` alone: other paths are simply not found,
/// not an authentication challenge that would send clients into OAuth.
#[tokio::test]
async fn paths_beside_the_endpoint_are_not_found() {
    let server = TestServer::start().await;
    for path in [
        "/nothing-here",
        "/mcp/extra",
        "/mcpx",
        "/.well-known/unknown",
    ] {
        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert!(
            !response.headers().contains_key("www-authenticate"),
            "{path}"
        );
        assert_eq!(response.headers()["x-frame-options"], "DENY", "{path}");
    }
}

#[tokio::test]
async fn each_supported_protocol_version_is_negotiated() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let key = server.api_key(&user, org, "mcp:read").await;
    for version in ["2025-03-26", "2025-06-18", "2025-11-25"] {
        let initialize = json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {
                "protocolVersion": version,
                "capabilities": {},
                "clientInfo": {"name": "probe", "version": "1"}
            }
        });
        let response = server
            .http
            .post(server.resource())
            .header("Accept", "application/json, text/event-stream")
            .header("X-Organization-Id", org.to_string())
            .bearer_auth(&key)
            .json(&initialize)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{version}");
        assert!(
            response.headers().get("mcp-session-id").is_none(),
            "stateless: no session"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["result"]["protocolVersion"], version);
        assert_eq!(body["result"]["serverInfo"]["name"], "portcullis");
    }
}

#[tokio::test]
async fn accept_headers_are_read_leniently() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let key = server.api_key(&user, org, "mcp:read").await;
    for accept in [Some("application/json"), Some("*/*"), None] {
        let mut request = server
            .http
            .post(server.resource())
            .header("X-Organization-Id", org.to_string())
            .bearer_auth(&key)
            .json(&mcp::tools_list(1));
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "Accept: {accept:?}");
        let body: Value = response.json().await.unwrap();
        assert!(body["result"]["tools"].is_array());
    }
}

#[tokio::test]
async fn oversized_and_malformed_messages_get_json_rpc_errors() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let key = server.api_key(&user, org, "mcp:read").await;
    let send = |body: Vec<u8>| {
        server
            .http
            .post(server.resource())
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .header("X-Organization-Id", org.to_string())
            .bearer_auth(&key)
            .body(body)
            .send()
    };
    let big = send(vec![b' '; 200_000]).await.unwrap();
    assert_eq!(big.status(), 413);
    let body: serde_json::Value = big.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600);

    let malformed = send(b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ".to_vec())
        .await
        .unwrap();
    assert!(
        malformed.status().is_client_error(),
        "{}",
        malformed.status()
    );
    let body: serde_json::Value = malformed.json().await.expect("a JSON-RPC error body");
    assert_eq!(body["error"]["code"], -32700, "{body}");

    // A batch under a protocol version without batches (2025-06-18 and
    // later; 2025-03-26 had them, see interop.rs): 400 and -32600.
    let batch = server
        .http
        .post(server.resource())
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("MCP-Protocol-Version", "2025-06-18")
        .header("X-Organization-Id", org.to_string())
        .bearer_auth(&key)
        .json(&json!([mcp::tools_list(1), mcp::tools_list(2)]))
        .send()
        .await
        .unwrap();
    assert_eq!(batch.status(), 400);
    let body: Value = batch.json().await.unwrap();
    assert_eq!(
        (body["error"]["code"].clone(), body["id"].clone()),
        (json!(-32600), Value::Null)
    );

    // Well-formed JSON that is not one JSON-RPC message: 400 and -32600.
    for (sent, id) in [
        (json!("tools/list"), Value::Null),
        (
            json!({"jsonrpc": "1.0", "id": 7, "method": "tools/list"}),
            json!(7),
        ),
        (json!({"jsonrpc": "2.0", "id": 8, "method": 5}), json!(8)),
        (json!({"jsonrpc": "2.0", "id": 9}), json!(9)),
    ] {
        let response = send(serde_json::to_vec(&sent).unwrap()).await.unwrap();
        assert_eq!(response.status(), 400, "{sent}");
        let body: Value = response.json().await.expect("a JSON-RPC error body");
        assert_eq!(body["error"]["code"], -32600, "{sent}: {body}");
        assert_eq!(body["id"], id, "{sent}: {body}");
    }

    // tools/call with unusable params is "invalid params", not "method not found".
    for params in [
        json!({}),
        json!({"name": 5}),
        json!({"name": "whoami", "arguments": [1]}),
    ] {
        let call = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": params});
        let response = send(serde_json::to_vec(&call).unwrap()).await.unwrap();
        assert_eq!(response.status(), 200, "{params}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], -32602, "{params}: {body}");
        assert_eq!(body["id"], 4);
    }
}

/// Writes raw HTTP/1.1 on one connection and reads one response head.
async fn response_head(stream: &mut tokio::net::TcpStream, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.unwrap();
        assert_eq!(
            n,
            1,
            "connection closed mid-head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap().to_ascii_lowercase()
}

/// An OAuth client's first call is refused before its body is read; the
/// connection cannot be reused then, and the answer must say so, or a pooling
/// client sends its discovery request into a closing socket.
#[tokio::test]
async fn a_refusal_before_the_body_arrives_says_the_connection_closes() {
    let server = TestServer::start().await;
    let host = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    // The body is announced but never sent: the 401 cannot wait for it.
    let head = response_head(
        &mut stream,
        &format!(
            "POST /mcp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: 60\r\n\r\n"
        ),
    )
    .await;
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");

    // A request whose body is read keeps its connection for the next one.
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let body = "grant_type=password";
    let head = response_head(
        &mut stream,
        &format!(
            "POST /token HTTP/1.1\r\nHost: {host}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(head.starts_with("http/1.1 400"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut rest = vec![0u8; length];
    tokio::io::AsyncReadExt::read_exact(&mut stream, &mut rest)
        .await
        .unwrap();
    let head = response_head(
        &mut stream,
        &format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n"),
    )
    .await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
}
