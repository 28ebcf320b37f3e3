//! The signed login hand-off (`/login/handoff`) from a product with its own
//! login: a valid assertion signs the person in (GET and POST), with the
//! same org and role mapping as OpenID sign-in; replayed, expired,
//! long-lived, wrongly signed or wrongly addressed assertions get a page.

mod common;
#[path = "federation/fake_idp.rs"]
mod fake_idp;

use common::TestServer;
use fake_idp::FakeIdp;
use portcullis::{federation::config::IdentityProviderConfig, identity::scope::Role};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use uuid::Uuid;

const PRODUCT: &str = "https://app.product.example";

struct Setup {
    server: TestServer,
    key: rcgen::KeyPair,
    jwks: FakeIdp,
    eng: Uuid,
}

async fn setup() -> Setup {
    let key = rcgen::KeyPair::generate().unwrap();
    let pem = key.public_key_pem();
    let jwks = FakeIdp::start("unused").await;
    let by_pem: IdentityProviderConfig = toml::from_str(&format!(
        "id = \"product\"\nname = \"Product\"\nissuer = \"{PRODUCT}\"\nhandoff_public_key_pem = '''{pem}'''\nallowed_algs = [\"ES256\"]\norg_claim = \"orgs\"\nrole_claim = \"role\"\nroles = {{ admin = \"admin\", viewer = \"viewer\" }}"
    ))
    .unwrap();
    let by_jwks: IdentityProviderConfig = toml::from_str(&format!(
        "id = \"product2\"\nname = \"Product 2\"\nissuer = \"{}\"\nhandoff_jwks_url = \"{}/jwks\"\nallowed_algs = [\"ES256\"]\norg = \"eng\"",
        jwks.issuer, jwks.issuer
    ))
    .unwrap();
    let server = TestServer::start_with(move |c| {
        c.identity_providers = vec![by_pem, by_jwks];
    })
    .await;
    let eng = server
        .state
        .store
        .create_org_with_external_id("Engineering", "eng")
        .await
        .unwrap()
        .id;
    Setup {
        server,
        key,
        jwks,
        eng,
    }
}

fn now() -> i64 {
    portcullis::store::now()
}

fn claims(s: &Setup, patch: Value) -> Value {
    let mut c = json!({
        "iss": PRODUCT, "aud": s.server.base, "sub": "product-user-7",
        "email": "handoff@example.test", "email_verified": true,
        "orgs": ["eng"], "role": "admin",
        "iat": now(), "exp": now() + 120, "jti": Uuid::new_v4().to_string(),
    });
    for (k, v) in patch.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn sign(key: &rcgen::KeyPair, claims: &Value) -> String {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    let key = jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

async fn get(s: &Setup, assertion: &str) -> reqwest::Response {
    s.server
        .http
        .get(s.server.url("/login/handoff"))
        .query(&[("assertion", assertion), ("next", "/console/keys")])
        .send()
        .await
        .unwrap()
}

async fn assert_refused(response: reqwest::Response, text: &str) {
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let html = response.text().await.unwrap();
    assert!(html.contains(text), "expected {text:?} in {html}");
}

#[tokio::test]
async fn a_valid_hand_off_signs_in_once_with_the_mapped_org_and_role() {
    let s = setup().await;
    let assertion = sign(&s.key, &claims(&s, json!({})));
    let response = get(&s, &assertion).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/console/keys");
    assert!(
        response.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .starts_with("pcl_session=")
    );
    let user = s
        .server
        .state
        .store
        .user_by_email("handoff@example.test")
        .await
        .unwrap()
        .expect("created just in time");
    assert_eq!(
        s.server.state.store.role(user.id, s.eng).await.unwrap(),
        Some(Role::Admin)
    );
    assert_eq!(
        s.server.state.store.user_providers(user.id).await.unwrap(),
        ["product"]
    );
    // The same assertion again, on any instance: refused.
    assert_refused(get(&s, &assertion).await, "already used").await;

    // As a POSTed form, with a new jti and a lower role: the role follows.
    let assertion = sign(&s.key, &claims(&s, json!({"role": "viewer"})));
    let response = s
        .server
        .http
        .post(s.server.url("/login/handoff"))
        .form(&[("assertion", assertion.as_str()), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        s.server.state.store.role(user.id, s.eng).await.unwrap(),
        Some(Role::Viewer)
    );

    // A product publishing a JWKS instead of a PEM key.
    let assertion = s.jwks.sign(&json!({
        "iss": s.jwks.issuer, "aud": s.server.base, "sub": "jwks-user",
        "email": "jwks@example.test", "iat": now(), "exp": now() + 60,
        "jti": "one",
    }));
    assert_eq!(get(&s, &assertion).await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn expired_misaddressed_long_lived_or_wrongly_signed_hand_offs_are_refused() {
    let s = setup().await;
    let other_key = rcgen::KeyPair::generate().unwrap();
    let cases = [
        (
            "expired",
            sign(
                &s.key,
                &claims(&s, json!({"iat": now() - 600, "exp": now() - 300})),
            ),
            "expired",
        ),
        (
            "wrong key",
            sign(&other_key, &claims(&s, json!({}))),
            "not valid",
        ),
        (
            "wrong audience",
            sign(
                &s.key,
                &claims(&s, json!({"aud": "https://elsewhere.example"})),
            ),
            "not valid",
        ),
        (
            "unknown issuer",
            sign(&s.key, &claims(&s, json!({"iss": "https://evil.example"}))),
            "not valid",
        ),
        (
            "lives ten minutes",
            sign(&s.key, &claims(&s, json!({"exp": now() + 600}))),
            "not valid",
        ),
        (
            "no jti",
            sign(&s.key, &claims(&s, json!({"jti": null}))),
            "not valid",
        ),
        (
            "no exp",
            sign(&s.key, &claims(&s, json!({"exp": null}))),
            "not valid",
        ),
        ("not a JWT", "garbage".to_owned(), "not valid"),
    ];
    for (name, assertion, text) in cases {
        let response = get(&s, &assertion).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{name}");
        let html = response.text().await.unwrap();
        assert!(html.contains(text), "{name}: {html}");
    }
    // HS256 keyed with the public key the product published.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some("JWT".into());
    let forged = jsonwebtoken::encode(
        &header,
        &claims(&s, json!({})),
        &jsonwebtoken::EncodingKey::from_secret(s.key.public_key_pem().as_bytes()),
    )
    .unwrap();
    assert_refused(get(&s, &forged).await, "not valid").await;
    // No assertion at all.
    let response = s
        .server
        .http
        .get(s.server.url("/login/handoff"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        s.server
            .state
            .store
            .user_by_email("handoff@example.test")
            .await
            .unwrap()
            .is_none()
    );
}
