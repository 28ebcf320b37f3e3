//! Sign-in through an upstream OpenID Provider, against a test-controlled
//! provider on loopback (tests/federation/fake_idp.rs): the whole OAuth flow
//! from `/authorize` through the provider and back to consent, then `whoami`
//! over `/mcp`; account linking rules; memberships refreshed from claims;
//! and every forged or broken answer refused with a readable page.

mod common;
#[path = "federation/fake_idp.rs"]
mod fake_idp;
#[path = "common/mcp.rs"]
mod mcp;

use std::time::Duration;

use common::{CALLBACK, Pkce, TestServer, absolute, query_param};
use fake_idp::{Behaviour, FakeIdp, Signing};
use portcullis::{federation::config::IdentityProviderConfig, identity::scope::Role};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use url::Url;
use uuid::Uuid;

const CLIENT_ID: &str = "portcullis-test";

fn provider(id: &str, issuer: &str, extra: &str) -> IdentityProviderConfig {
    toml::from_str(&format!(
        "id = \"{id}\"\nname = \"{id} IdP\"\nissuer = \"{issuer}\"\nclient_id = \"{CLIENT_ID}\"\nallowed_algs = [\"ES256\"]\n{extra}"
    ))
    .unwrap()
}

/// `groups` names orgs by external id; `roles` maps to roles.
const BY_CLAIM: &str = r#"
org_claim = "groups"
create_orgs = false
role_claim = "roles"
roles = { "mcp-admin" = "admin", "mcp-viewer" = "viewer" }
default_role = "member"
link_verified_email = true
"#;

struct Setup {
    server: TestServer,
    idp: FakeIdp,
    eng: Uuid,
    ops: Uuid,
}

async fn setup(extra_providers: Vec<IdentityProviderConfig>) -> Setup {
    let idp = FakeIdp::start(CLIENT_ID).await;
    let issuer = idp.issuer.clone();
    let server = TestServer::start_with(move |c| {
        c.identity_providers = vec![provider("fake", &issuer, BY_CLAIM)];
        c.identity_providers.extend(extra_providers);
    })
    .await;
    let store = &server.state.store;
    let eng = store
        .create_org_with_external_id("Engineering", "eng")
        .await
        .unwrap()
        .id;
    let ops = store
        .create_org_with_external_id("Operations", "ops")
        .await
        .unwrap()
        .id;
    Setup {
        server,
        idp,
        eng,
        ops,
    }
}

enum End {
    /// The browser left for the client's redirect URI.
    Callback(Url),
    /// A page that is neither a form we fill nor a redirect.
    Page(StatusCode, String),
}

/// A browser from `start` to the end: follows redirects on our server and
/// the provider's, picks "Continue with {provider}" on the sign-in page and
/// approves the consent page with every available box ticked.
async fn drive(s: &TestServer, browser: &reqwest::Client, provider: &str, start: &str) -> End {
    let mut location = absolute(&s.base, start);
    for _ in 0..15 {
        let ours = location.as_str().starts_with(&s.base);
        let loopback = location.host_str() == Some("127.0.0.1");
        // `/console` is where `sign_in` asks to land: signed in.
        if !ours && !loopback
            || location.as_str().starts_with(CALLBACK)
            || ours && location.path() == "/console"
        {
            return End::Callback(location);
        }
        let response = browser.get(location.clone()).send().await.unwrap();
        let status = response.status();
        if status.is_redirection() {
            let to = response.headers()[header::LOCATION].to_str().unwrap();
            location = location.join(to).unwrap();
            continue;
        }
        let html = response.text().await.unwrap();
        if status != StatusCode::OK {
            return End::Page(status, html);
        }
        if location.path() == "/login" {
            let marker = format!("href=\"/login/start/{provider}?");
            let at = html.find(&marker).expect("a button for the provider");
            let href = &html[at + 6..];
            let href = &href[..href.find('"').unwrap()];
            location = absolute(&s.base, &href.replace("&amp;", "&"));
        } else if html.contains("action=\"/consent\"") {
            let form = [
                ("csrf", common::hidden(&html, "csrf")),
                ("request", common::hidden(&html, "request")),
                ("org_id", common::hidden(&html, "org_id")),
                ("decision", "approve".to_owned()),
                ("grant_write", "on".to_owned()),
                ("grant_admin", "on".to_owned()),
            ];
            let response = browser
                .post(s.url("/consent"))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert!(response.status().is_redirection());
            let to = response.headers()[header::LOCATION].to_str().unwrap();
            location = absolute(&s.base, to);
        } else {
            return End::Page(status, html);
        }
    }
    panic!("too many redirects");
}

/// DCR, then `/authorize` through the provider and consent, then the code
/// exchange: the token response.
async fn federated_tokens(s: &TestServer, browser: &reqwest::Client, provider: &str) -> Value {
    federated_tokens_in(s, browser, provider, None).await
}

async fn federated_tokens_in(
    s: &TestServer,
    browser: &reqwest::Client,
    provider: &str,
    org: Option<Uuid>,
) -> Value {
    let client = s.register_public(&[CALLBACK]).await;
    let pkce = Pkce::new();
    let mut url = s.authorize_url(
        &client.client_id,
        CALLBACK,
        "mcp:read mcp:write mcp:admin",
        &pkce,
        "client-state",
    );
    if let Some(org) = org {
        url.push_str(&format!("&org_id={org}"));
    }
    let End::Callback(callback) = drive(s, browser, provider, &url).await else {
        panic!("the flow did not reach the client");
    };
    assert_eq!(
        query_param(&callback, "state").as_deref(),
        Some("client-state")
    );
    let code = query_param(&callback, "code").expect("a code");
    let (status, tokens) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &pkce.verifier),
            ("client_id", &client.client_id),
            ("resource", &s.resource()),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

async fn whoami(s: &TestServer, token: &str) -> (StatusCode, Value) {
    let response = mcp::post(
        s,
        Some(token),
        None,
        &mcp::tools_call(1, "whoami", json!({})),
    )
    .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["result"]["structuredContent"].clone())
}

/// Just the sign-in (no OAuth client): `/login/start` to the end.
async fn sign_in(s: &TestServer, browser: &reqwest::Client, provider: &str) -> End {
    drive(
        s,
        browser,
        provider,
        &format!("/login/start/{provider}?next=/console"),
    )
    .await
}

fn refused(end: End, status: StatusCode, text: &str) {
    match end {
        End::Page(got, html) => {
            assert_eq!(got, status, "{html}");
            assert!(html.contains(text), "expected {text:?} in {html}");
        }
        End::Callback(url) => panic!("expected a refusal page, reached {url}"),
    }
}

#[tokio::test]
async fn an_upstream_user_connects_a_client_with_the_org_and_role_their_claims_give() {
    let fixed_idp = FakeIdp::start(CLIENT_ID).await;
    let s = setup(vec![provider(
        "partner",
        &fixed_idp.issuer,
        "org = \"partners\"\ndefault_role = \"viewer\"",
    )])
    .await;
    s.server
        .state
        .store
        .create_org_with_external_id("Partners", "partners")
        .await
        .unwrap();
    // Both providers are offered, with the password form.
    let login = s
        .server
        .http
        .get(s.server.url("/login"))
        .send()
        .await
        .unwrap();
    let html = login.text().await.unwrap();
    assert!(html.contains("Continue with fake IdP") && html.contains("Continue with partner IdP"));
    assert!(html.contains("name=\"password\""));

    s.idp.set(Behaviour {
        claims: json!({"groups": ["eng"], "roles": ["mcp-viewer"]}),
        ..Behaviour::default()
    });
    let browser = s.server.browser();
    let tokens = federated_tokens(&s.server, &browser, "fake").await;
    // A viewer: the scopes are capped by the mapped role.
    assert_eq!(tokens["scope"], "mcp:read");
    let (status, me) = whoami(&s.server, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["email"], "fed@example.test");
    assert_eq!(me["org_id"], s.eng.to_string());
    assert_eq!(me["scopes"], json!(["mcp:read"]));
    let user_id: Uuid = me["user_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        s.server.state.store.user_providers(user_id).await.unwrap(),
        ["fake"]
    );

    // The same person again, now an admin: the same account, a new role.
    s.idp.set(Behaviour {
        claims: json!({"groups": ["eng"], "roles": ["mcp-admin"]}),
        ..Behaviour::default()
    });
    let tokens = federated_tokens(&s.server, &s.server.browser(), "fake").await;
    assert_eq!(tokens["scope"], "mcp:read mcp:write mcp:admin");
    let (_, me) = whoami(&s.server, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(me["user_id"], user_id.to_string());

    // The second provider puts everyone in its fixed org.
    fixed_idp.set(Behaviour {
        claims: json!({"sub": "p-1", "email": "partner@example.test"}),
        ..Behaviour::default()
    });
    let tokens = federated_tokens(&s.server, &s.server.browser(), "partner").await;
    assert_eq!(tokens["scope"], "mcp:read");

    // A federated-only account has no password to sign in with.
    for password in ["", "!federated", "correct horse battery staple"] {
        let status = s
            .server
            .sign_in(&s.server.browser(), "fed@example.test", password)
            .await;
        assert_ne!(status, StatusCode::SEE_OTHER, "{password:?}");
    }
}

#[tokio::test]
async fn a_group_removed_at_the_provider_removes_the_membership_and_its_tokens() {
    let s = setup(vec![]).await;
    s.idp.set(Behaviour {
        claims: json!({"groups": ["eng", "ops"]}),
        ..Behaviour::default()
    });
    let tokens = federated_tokens_in(&s.server, &s.server.browser(), "fake", Some(s.eng)).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let (status, me) = whoami(&s.server, &access).await;
    assert_eq!(status, StatusCode::OK);
    let user_id: Uuid = me["user_id"].as_str().unwrap().parse().unwrap();
    let org: Uuid = me["org_id"].as_str().unwrap().parse().unwrap();
    assert!(org == s.eng || org == s.ops);
    let other = if org == s.eng { "ops" } else { "eng" };

    // At the provider the person leaves the org the token is for.
    s.idp.set(Behaviour {
        claims: json!({"groups": [other]}),
        ..Behaviour::default()
    });
    assert!(matches!(
        sign_in(&s.server, &s.server.browser(), "fake").await,
        End::Callback(_)
    ));
    let memberships = s.server.state.store.memberships(user_id).await.unwrap();
    assert_eq!(memberships.len(), 1);
    assert_ne!(memberships[0].org.id, org);
    // Within the revocation bound the access token stops working, and the
    // refresh token cannot mint another.
    assert!(
        mcp::eventually(Duration::from_secs(20), || async {
            whoami(&s.server, &access).await.0 == StatusCode::UNAUTHORIZED
        })
        .await,
        "the token still works after the membership is gone"
    );
    let (status, body) = s
        .server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", "unused"),
        ])
        .await;
    assert_ne!(status, StatusCode::OK, "{body}");

    // No group at all: refused, and nothing is left.
    s.idp.set(Behaviour {
        claims: json!({"groups": []}),
        ..Behaviour::default()
    });
    refused(
        sign_in(&s.server, &s.server.browser(), "fake").await,
        StatusCode::FORBIDDEN,
        "not a member of any organization",
    );
    assert!(
        s.server
            .state
            .store
            .memberships(user_id)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_existing_account_is_linked_only_for_a_verified_email_when_allowed() {
    let s = setup(vec![]).await;
    let user = s.server.user(s.eng, Role::Member).await;
    s.idp.set(Behaviour {
        claims: json!({"sub": "linker", "email": user.email, "email_verified": false, "groups": ["eng"]}),
        ..Behaviour::default()
    });
    refused(
        sign_in(&s.server, &s.server.browser(), "fake").await,
        StatusCode::FORBIDDEN,
        "already exists",
    );
    assert!(
        s.server
            .state
            .store
            .user_providers(user.id)
            .await
            .unwrap()
            .is_empty()
    );

    s.idp.set(Behaviour {
        claims: json!({"sub": "linker", "email": user.email, "email_verified": true, "groups": ["eng"]}),
        ..Behaviour::default()
    });
    assert!(matches!(
        sign_in(&s.server, &s.server.browser(), "fake").await,
        End::Callback(_)
    ));
    assert_eq!(
        s.server.state.store.user_providers(user.id).await.unwrap(),
        ["fake"]
    );
    // The linked account keeps its password.
    assert_eq!(
        s.server
            .sign_in(&s.server.browser(), &user.email, &user.password)
            .await,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_provider_that_does_not_allow_linking_never_links() {
    let idp = FakeIdp::start(CLIENT_ID).await;
    let issuer = idp.issuer.clone();
    let server = TestServer::start_with(move |c| {
        c.identity_providers = vec![provider("fake", &issuer, "org = \"eng\"")];
    })
    .await;
    let eng = server
        .state
        .store
        .create_org_with_external_id("Engineering", "eng")
        .await
        .unwrap()
        .id;
    let user = server.user(eng, Role::Member).await;
    idp.set(Behaviour {
        claims: json!({"email": user.email, "email_verified": true}),
        ..Behaviour::default()
    });
    refused(
        sign_in(&server, &server.browser(), "fake").await,
        StatusCode::FORBIDDEN,
        "already exists",
    );
}

#[tokio::test]
async fn forged_or_mismatched_answers_are_refused_with_a_page() {
    let s = setup(vec![]).await;
    let base = json!({"groups": ["eng"]});
    let with = |patch: Value| {
        let mut claims = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let cases: Vec<(&str, Behaviour)> = vec![
        (
            "wrong state",
            Behaviour {
                claims: base.clone(),
                state: Some("forged".into()),
                ..Behaviour::default()
            },
        ),
        (
            "wrong nonce",
            Behaviour {
                claims: with(json!({"nonce": "replayed"})),
                ..Behaviour::default()
            },
        ),
        (
            "no nonce",
            Behaviour {
                claims: with(json!({"nonce": null})),
                ..Behaviour::default()
            },
        ),
        (
            "other issuer",
            Behaviour {
                claims: with(json!({"iss": "https://evil.example"})),
                ..Behaviour::default()
            },
        ),
        (
            "other audience",
            Behaviour {
                claims: with(json!({"aud": "someone-else"})),
                ..Behaviour::default()
            },
        ),
        (
            "several audiences, no azp",
            Behaviour {
                claims: with(json!({"aud": [CLIENT_ID, "other"]})),
                ..Behaviour::default()
            },
        ),
        (
            "azp of another client",
            Behaviour {
                claims: with(json!({"azp": "other"})),
                ..Behaviour::default()
            },
        ),
        (
            "expired",
            Behaviour {
                claims: with(json!({"exp": now - 3600, "iat": now - 7200})),
                ..Behaviour::default()
            },
        ),
        (
            "issued in the future",
            Behaviour {
                claims: with(json!({"iat": now + 3600, "exp": now + 7200})),
                ..Behaviour::default()
            },
        ),
        (
            "alg none",
            Behaviour {
                claims: base.clone(),
                signing: Signing::None,
                ..Behaviour::default()
            },
        ),
        (
            "HS256 keyed with the public key",
            Behaviour {
                claims: base.clone(),
                signing: Signing::Hs256WithPublicKey,
                ..Behaviour::default()
            },
        ),
        (
            "unpublished key",
            Behaviour {
                claims: base.clone(),
                signing: Signing::UnpublishedKey,
                ..Behaviour::default()
            },
        ),
    ];
    for (name, behaviour) in cases {
        s.idp.set(behaviour);
        match sign_in(&s.server, &s.server.browser(), "fake").await {
            End::Page(status, html) => {
                assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {html}");
                assert!(html.contains("Sign-in refused"), "{name}: {html}");
                assert!(
                    !html.contains("ClaimsVerification"),
                    "{name}: internals shown"
                );
            }
            End::Callback(url) => panic!("{name}: signed in ({url})"),
        }
    }
    // Nobody was created by any of them.
    assert!(
        s.server
            .state
            .store
            .user_by_email("fed@example.test")
            .await
            .unwrap()
            .is_none()
    );

    // A callback without the browser's flow cookie is refused too.
    let response = s
        .server
        .http
        .get(s.server.url("/login/callback/fake?code=x&state=y"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // An unknown provider is a 404 page.
    let response = s
        .server
        .http
        .get(s.server.url("/login/start/nobody"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rotated_provider_keys_are_fetched_again_but_not_for_every_unknown_kid() {
    let s = setup(vec![]).await;
    s.idp.set(Behaviour {
        claims: json!({"groups": ["eng"]}),
        ..Behaviour::default()
    });
    assert!(matches!(
        sign_in(&s.server, &s.server.browser(), "fake").await,
        End::Callback(_)
    ));
    let fetches = s.idp.jwks_fetches();
    s.idp.rotate_keys();
    assert!(
        matches!(
            sign_in(&s.server, &s.server.browser(), "fake").await,
            End::Callback(_)
        ),
        "a token under the new key is accepted after one refetch"
    );
    assert_eq!(s.idp.jwks_fetches(), fetches + 1);
    // Right after, another unknown key does not make us fetch again.
    s.idp.rotate_keys();
    refused(
        sign_in(&s.server, &s.server.browser(), "fake").await,
        StatusCode::FORBIDDEN,
        "Sign-in refused",
    );
    assert_eq!(s.idp.jwks_fetches(), fetches + 1);
}

#[tokio::test]
async fn an_unreachable_or_slow_provider_gets_a_readable_page_not_a_hung_request() {
    // A port bound but not listening: connections are refused, and the
    // port stays ours for the whole test (a port freed again could be taken
    // by another test's server running in parallel).
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed = reserved.local_addr().unwrap().port();
    let s = setup(vec![provider(
        "down",
        &format!("http://127.0.0.1:{closed}"),
        "org = \"eng\"",
    )])
    .await;
    let started = std::time::Instant::now();
    refused(
        sign_in(&s.server, &s.server.browser(), "down").await,
        StatusCode::BAD_GATEWAY,
        "could not reach",
    );
    eprintln!("unreachable provider answered in {:?}", started.elapsed());

    // The token endpoint hangs: the callback still answers, with a page.
    s.idp.set(Behaviour {
        claims: json!({"groups": ["eng"]}),
        token_delay: Some(Duration::from_secs(120)),
        ..Behaviour::default()
    });
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        // Far above the server's own bound; the test fails rather than hangs.
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    refused(
        sign_in(&s.server, &browser, "fake").await,
        StatusCode::BAD_GATEWAY,
        "could not reach",
    );
    eprintln!("slow provider answered in {:?}", started.elapsed());
    drop(reserved);
}

#[tokio::test]
async fn with_password_login_off_and_one_provider_the_login_page_goes_straight_there() {
    let idp = FakeIdp::start(CLIENT_ID).await;
    let issuer = idp.issuer.clone();
    let server = TestServer::start_with(move |c| {
        c.identity_providers = vec![provider("fake", &issuer, "org = \"eng\"")];
        c.password_login = false;
    })
    .await;
    let response = server
        .http
        .get(server.url("/login?next=/console"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection());
    assert_eq!(
        response.headers()[header::LOCATION],
        "/login/start/fake?next=%2Fconsole"
    );
    // The password form is refused even when posted directly.
    let eng = server
        .state
        .store
        .create_org_with_external_id("Engineering", "eng")
        .await
        .unwrap()
        .id;
    let user = server.user(eng, Role::Member).await;
    let response = server
        .http
        .post(server.url("/login"))
        .form(&[
            ("email", user.email.as_str()),
            ("password", user.password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_console_names_the_provider_and_shows_the_org_external_id() {
    let s = setup(vec![]).await;
    let colleague = s.server.user(s.eng, Role::Member).await;
    s.idp.set(Behaviour {
        claims: json!({"groups": ["eng"], "roles": ["mcp-admin"]}),
        ..Behaviour::default()
    });
    let browser = s.server.browser();
    assert!(matches!(
        sign_in(&s.server, &browser, "fake").await,
        End::Callback(_)
    ));
    let html = browser
        .get(s.server.url(&format!("/console/org?org={}", s.eng)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The account names its provider; the org shows its external id; each
    // member row says how that member signs in.
    assert!(html.contains("via <bdi>fake IdP</bdi>"), "{html}");
    assert!(
        html.contains("External id: <code><bdi>eng</bdi></code>"),
        "{html}"
    );
    let row = |email: &str| {
        let at = html.find(email).unwrap_or_else(|| panic!("{email} listed"));
        html[at..at + html[at..].find("</tr>").unwrap()].to_owned()
    };
    assert!(row("fed@example.test").contains("<bdi>fake IdP</bdi>"));
    assert!(row(&colleague.email).contains("<bdi>password</bdi>"));
}
