//! Token families with one live branch, introspection limited to the token's
//! own client (or a configured resource server), and metadata-document
//! fetches that a stranger cannot multiply.

mod common;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{Json, Router, http::StatusCode as AxumStatus, routing::get};
use common::TestServer;
use portcullis::{
    identity::{scope::Role, secret},
    oauth::cimd::MAX_CONCURRENT_FETCHES,
    store::{Client, Grant, RefreshToken},
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

async fn refresh(server: &TestServer, client_id: &str, token: &str) -> (StatusCode, Value) {
    server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client_id),
        ])
        .await
}

fn refresh_token(body: &Value) -> String {
    body["refresh_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_refresh_token_family_keeps_one_live_branch() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let tokens = server.oauth_tokens(&user, "mcp:read").await;
    let id = tokens.client_id.as_str();
    let p = tokens.refresh_token.clone();
    let (status, c1) = refresh(&server, id, &p).await;
    assert_eq!(status, StatusCode::OK);
    // A thief presents P within the grace period and gets C2.
    let (status, c2) = refresh(&server, id, &p).await;
    assert_eq!(status, StatusCode::OK, "{c2}");
    // The legitimate client uses C1 first: C2's branch dies.
    let (status, c1_next) = refresh(&server, id, &refresh_token(&c1)).await;
    assert_eq!(status, StatusCode::OK, "{c1_next}");
    let answer = introspect(
        &server,
        &[("token", &refresh_token(&c2)), ("client_id", id)],
    )
    .await;
    assert_eq!(
        answer,
        json!({ "active": false }),
        "a killed sibling is not live"
    );
    let (status, body) = refresh(&server, id, &refresh_token(&c2)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // That reuse revoked the grant: C1's successor is dead too.
    let (status, body) = refresh(&server, id, &refresh_token(&c1_next)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let grant = server
        .state
        .store
        .refresh_token_grant(&secret::hash(&p))
        .await
        .unwrap()
        .unwrap();
    assert!(grant.revoked_at.is_some());
}

#[tokio::test]
async fn the_grace_answer_used_first_kills_the_first_replacement() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let tokens = server.oauth_tokens(&user, "mcp:read").await;
    let id = tokens.client_id.as_str();
    let (_, c1) = refresh(&server, id, &tokens.refresh_token).await;
    let (_, c2) = refresh(&server, id, &tokens.refresh_token).await;
    let (status, c2_next) = refresh(&server, id, &refresh_token(&c2)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = refresh(&server, id, &refresh_token(&c1)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = refresh(&server, id, &refresh_token(&c2_next)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the grant is revoked");
}

async fn introspect(server: &TestServer, form: &[(&str, &str)]) -> Value {
    server
        .http
        .post(server.url("/introspect"))
        .form(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn only_the_tokens_client_or_a_configured_resource_server_may_introspect() {
    let server = TestServer::start_with(|c| {
        c.introspection_clients = vec!["resource-server".into()];
    })
    .await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let tokens = server.oauth_tokens(&user, "mcp:read").await;
    // A stranger registers a confidential client of its own.
    let stranger: Value = server
        .register(json!({
            "client_name": "Stranger",
            "redirect_uris": ["https://stranger.example/cb"],
            "token_endpoint_auth_method": "client_secret_post",
        }))
        .await
        .json()
        .await
        .unwrap();
    let (sid, ssecret) = (
        stranger["client_id"].as_str().unwrap(),
        stranger["client_secret"].as_str().unwrap(),
    );
    for token in [&tokens.access_token, &tokens.refresh_token] {
        let answer = introspect(
            &server,
            &[
                ("token", token),
                ("client_id", sid),
                ("client_secret", ssecret),
            ],
        )
        .await;
        assert_eq!(answer, json!({ "active": false }));
    }
    // The operator's resource server sees every token.
    let rs_secret = "resource server secret, long and random enough";
    server
        .state
        .store
        .insert_client(&Client {
            client_id: "resource-server".into(),
            secret_hash: Some(secret::hash(rs_secret)),
            client_name: "Resource server".into(),
            redirect_uris: vec![],
            token_endpoint_auth_method: "client_secret_post".into(),
            metadata: json!({}),
            created_at: 0,
            revoked_at: None,
        })
        .await
        .unwrap();
    let answer = introspect(
        &server,
        &[
            ("token", &tokens.access_token),
            ("client_id", "resource-server"),
            ("client_secret", rs_secret),
        ],
    )
    .await;
    assert_eq!(answer["active"], true, "{answer}");
    // And the token's own client still sees its token.
    let answer = introspect(
        &server,
        &[
            ("token", &tokens.access_token),
            ("client_id", &tokens.client_id),
        ],
    )
    .await;
    assert_eq!(answer["active"], true, "{answer}");
}

/// A metadata host that counts requests, reports each arrival, and answers
/// only once `release` has permits. `/broken` always answers 500.
struct DocumentHost {
    base: String,
    hits: Arc<AtomicUsize>,
    arrivals: mpsc::UnboundedReceiver<()>,
    release: Arc<Semaphore>,
}

async fn document_host() -> DocumentHost {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let hits = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Semaphore::new(0));
    let (tx, arrivals) = mpsc::unbounded_channel();
    let (h, r, b) = (hits.clone(), release.clone(), base.clone());
    let doc = move |path: String| {
        let (h, r, tx, b) = (h.clone(), r.clone(), tx.clone(), b.clone());
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(());
            r.acquire().await.unwrap().forget();
            Json(json!({
                "client_id": format!("{b}/{path}"),
                "client_name": "Coalesced",
                "redirect_uris": ["http://127.0.0.1:9/callback"],
                "token_endpoint_auth_method": "none",
            }))
        }
    };
    let h2 = hits.clone();
    let router = Router::new()
        .route(
            "/broken",
            get(move || {
                let h2 = h2.clone();
                async move {
                    h2.fetch_add(1, Ordering::SeqCst);
                    AxumStatus::INTERNAL_SERVER_ERROR
                }
            }),
        )
        .route(
            "/doc/{name}",
            get(
                move |axum::extract::Path(name): axum::extract::Path<String>| {
                    doc(format!("doc/{name}"))
                },
            ),
        );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    DocumentHost {
        base,
        hits,
        arrivals,
        release,
    }
}

// One thread, so every spawned lookup has run to its first wait before the
// host sees the (single) request.
#[tokio::test(flavor = "current_thread")]
async fn concurrent_lookups_of_one_document_share_one_fetch() {
    let server = TestServer::start().await;
    let mut host = document_host().await;
    let url = format!("{}/doc/one", host.base);
    let lookups: Vec<_> = (0..10)
        .map(|_| {
            let cimd = server.state.cimd.clone();
            let url = url.clone();
            tokio::spawn(async move { cimd.get(&url).await.map(|d| d.client_name) })
        })
        .collect();
    host.arrivals.recv().await.unwrap();
    host.release.add_permits(100);
    for lookup in lookups {
        assert_eq!(lookup.await.unwrap().unwrap(), "Coalesced");
    }
    assert_eq!(host.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn fetches_are_capped_overall_and_failures_are_remembered() {
    let server = TestServer::start().await;
    let mut host = document_host().await;
    let lookups: Vec<_> = (0..MAX_CONCURRENT_FETCHES + 4)
        .map(|n| {
            let cimd = server.state.cimd.clone();
            let url = format!("{}/doc/n{n}", host.base);
            tokio::spawn(async move { cimd.get(&url).await.is_ok() })
        })
        .collect();
    for _ in 0..MAX_CONCURRENT_FETCHES {
        host.arrivals.recv().await.unwrap();
    }
    assert_eq!(
        server.state.cimd.fetches_sent(),
        MAX_CONCURRENT_FETCHES as u64,
        "the others wait for a slot"
    );
    host.release.add_permits(1000);
    for lookup in lookups {
        assert!(lookup.await.unwrap());
    }
    // A failing document is fetched once, then answered from memory.
    let before = host.hits.load(Ordering::SeqCst);
    let broken = format!("{}/broken", host.base);
    assert!(server.state.cimd.get(&broken).await.is_err());
    assert!(server.state.cimd.get(&broken).await.is_err());
    assert_eq!(host.hits.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn a_failed_grant_creation_leaves_the_code_unused() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let first = server.oauth_tokens(&user, "mcp:read").await;
    let taken = server
        .state
        .store
        .grants(Some(user.id), None)
        .await
        .unwrap()[0]
        .id;
    // A second authorization, for the same client.
    let pkce = common::Pkce::new();
    let url = server.authorize_url(&first.client_id, common::CALLBACK, "mcp:read", &pkce, "s");
    let callback = server
        .authorize_in_browser(&server.browser(), &url, &user, "mcp:read")
        .await;
    let code = common::query_param(&callback, "code").unwrap();
    // The grant insert fails inside the redemption (its id is taken): the
    // whole transaction rolls back, so the code is not spent.
    let failed = server
        .state
        .store
        .redeem_code::<()>(&secret::hash(&code), |c| {
            let grant = Grant {
                id: taken,
                client_id: c.client_id.clone(),
                client_name: c.client_name.clone(),
                redirect_uri: c.redirect_uri.clone(),
                user_id: c.user_id,
                org_id: c.org_id,
                scope: c.scope,
                resource: c.resource.clone(),
                nonce: None,
                created_at: 0,
                last_used_at: 0,
                revoked_at: None,
            };
            let refresh = RefreshToken {
                token_hash: secret::hash("unused"),
                grant_id: taken,
                parent_hash: None,
                created_at: 0,
                expires_at: i64::MAX,
            };
            Ok((grant, refresh))
        })
        .await;
    assert!(failed.is_err());
    let (status, body) = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", common::CALLBACK),
            ("code_verifier", &pkce.verifier),
            ("client_id", &first.client_id),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
