//! Enterprise-managed authorization (README "Enterprise sign-in (identity
//! assertions)"): an enterprise identity provider played by the test (a key
//! pair, its JWKS on loopback, ID-JAGs minted here) that an org trusts; a
//! confidential client exchanges an ID-JAG at `/token` with the jwt-bearer
//! grant. Every check is shown failing on its own.

mod common;
#[path = "common/compat.rs"]
mod compat;
#[path = "common/mcp.rs"]
mod mcp;
#[path = "common/signer.rs"]
mod signer;

use common::{CALLBACK, TestServer, TestUser};
use compat::{jwt_claims, whoami};
use portcullis::{identity::scope::Role, machine_admin};
use reqwest::StatusCode;
use serde_json::{Value, json};
use signer::Signer;
use uuid::Uuid;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ID_JAG: &str = "oauth-id-jag+jwt";

struct Setup {
    server: TestServer,
    idp: Signer,
    org: Uuid,
    user: TestUser,
    client_id: String,
    secret: String,
}

/// An org trusting a fresh IdP, a member linked to the IdP subject
/// `alice`, and a confidential client.
async fn setup(role: Role) -> Setup {
    let server = TestServer::start().await;
    setup_on(server, role).await
}

async fn setup_on(server: TestServer, role: Role) -> Setup {
    let org = server.org("Acme").await;
    let user = server.user(org, role).await;
    let idp = Signer::start().await;
    machine_admin::trust_idp(
        &server.state.store,
        org,
        &idp.base,
        &idp.jwks_uri,
        None,
        false,
    )
    .await
    .unwrap();
    machine_admin::link_identity(&server.state.store, &idp.base, "alice", &user.email)
        .await
        .unwrap();
    let registered: Value = server
        .register(json!({ "client_name": "Assistant", "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "client_secret_basic" }))
        .await
        .json()
        .await
        .unwrap();
    Setup {
        server,
        idp,
        org,
        user,
        client_id: registered["client_id"].as_str().unwrap().to_owned(),
        secret: registered["client_secret"].as_str().unwrap().to_owned(),
    }
}

impl Setup {
    fn claims(&self) -> Value {
        self.idp.id_jag_claims(
            &self.server.base,
            &self.client_id,
            "alice",
            "mcp:read mcp:write",
        )
    }

    /// Exchanges `assertion` at `server`'s token endpoint as the client.
    async fn exchange_at(
        &self,
        server: &TestServer,
        assertion: &str,
        scope: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut form = vec![("grant_type", JWT_BEARER), ("assertion", assertion)];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let response = server
            .http
            .post(server.url("/token"))
            .basic_auth(&self.client_id, Some(&self.secret))
            .form(&form)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn exchange(&self, assertion: &str) -> (StatusCode, Value) {
        self.exchange_at(&self.server, assertion, None).await
    }

    /// Asserts `assertion` is refused with `invalid_grant` naming `check`.
    async fn refused(&self, assertion: &str, check: &str) {
        let (status, body) = self.exchange(assertion).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{check}: {body}");
        assert_eq!(body["error"], "invalid_grant", "{check}: {body}");
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.contains(check),
            "expected {check:?} in {description:?}"
        );
        assert!(
            !description.contains(&self.idp.jwk["x"].as_str().unwrap()[..16]),
            "a key leaked"
        );
    }
}

#[tokio::test]
async fn an_id_jag_from_a_trusted_idp_becomes_an_access_token_without_refresh() {
    let s = setup(Role::Member).await;
    let (status, body) = s.exchange(&s.idp.sign(ID_JAG, &s.claims())).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "mcp:read mcp:write");
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["org_id"], s.org.to_string());
    assert_eq!(claims["aud"], s.server.resource());
    let me = whoami(&s.server, body["access_token"].as_str().unwrap()).await;
    assert_eq!(me["source"], "mcp-oauth");
    assert_eq!(me["user_id"], s.user.id.to_string());
    assert_eq!(me["email"], s.user.email);
    assert_eq!(me["client_id"], s.client_id);
}

#[tokio::test]
async fn each_identity_assertion_check_fails_on_its_own() {
    let s = setup(Role::Member).await;
    let ok = s.claims();
    let with = |key: &str, value: Value| {
        let mut c = s.claims();
        c[key] = value;
        c
    };
    let now = signer::now();

    s.refused(&s.idp.sign("JWT", &ok), "typ").await;
    let stranger = Signer::start().await;
    let mut foreign = ok.clone();
    foreign["iss"] = json!(stranger.base);
    s.refused(
        &stranger.sign(ID_JAG, &foreign),
        "not a trusted identity provider",
    )
    .await;
    let other_org = s.server.org("Globex").await;
    s.refused(
        &s.idp
            .sign(ID_JAG, &with("aud_tenant", json!(other_org.to_string()))),
        "not trusted by the organization",
    )
    .await;
    s.refused(
        &s.idp
            .sign(ID_JAG, &with("aud", json!("https://elsewhere.example"))),
        "aud",
    )
    .await;
    s.refused(
        &s.idp
            .sign(ID_JAG, &with("client_id", json!("another-client"))),
        "client_id",
    )
    .await;
    s.refused(
        &s.idp.sign(
            ID_JAG,
            &with("resource", json!("https://elsewhere.example/mcp")),
        ),
        "resource",
    )
    .await;
    let mut expired = s.claims();
    expired["iat"] = json!(now - 400);
    expired["exp"] = json!(now - 100);
    s.refused(&s.idp.sign(ID_JAG, &expired), "expired").await;
    s.refused(
        &s.idp.sign(ID_JAG, &with("exp", json!(now + 3600))),
        "too long",
    )
    .await;
    s.refused(&signer::unsigned(ID_JAG, &s.claims()), "alg none")
        .await;
    let public_key_text = s.idp.jwk.to_string();
    s.refused(
        &signer::hs256(ID_JAG, &s.idp.kid, public_key_text.as_bytes(), &s.claims()),
        "HS256",
    )
    .await;
    s.refused(&stranger.sign(ID_JAG, &s.claims()), "kid").await;
    s.refused(
        &s.idp.sign(ID_JAG, &with("sub", json!("nobody"))),
        "no account",
    )
    .await;

    // Replay: the first use works, the second does not.
    let once = s.idp.sign(ID_JAG, &s.claims());
    assert_eq!(s.exchange(&once).await.0, 200);
    s.refused(&once, "already used").await;

    // The untouched claims still work (every failure above was its own).
    assert_eq!(s.exchange(&s.idp.sign(ID_JAG, &s.claims())).await.0, 200);
}

#[tokio::test]
async fn scope_is_capped_by_the_assertion_and_the_role() {
    let s = setup(Role::Viewer).await;
    // Asking for more than the role allows is refused...
    let (status, body) = s
        .exchange_at(
            &s.server,
            &s.idp.sign(ID_JAG, &s.claims()),
            Some("mcp:read mcp:write"),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope")),
        "{body}"
    );
    assert!(body["error_description"].as_str().unwrap().contains("role"));
    // ...more than the assertion too...
    let mut narrow = s.claims();
    narrow["scope"] = json!("mcp:read");
    let (status, body) = s
        .exchange_at(&s.server, &s.idp.sign(ID_JAG, &narrow), Some("mcp:admin"))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    // ...and without a requested scope the assertion's is capped by the role.
    let (status, body) = s.exchange(&s.idp.sign(ID_JAG, &s.claims())).await;
    assert_eq!(
        (status, body["scope"].as_str()),
        (StatusCode::OK, Some("mcp:read")),
        "{body}"
    );
}

#[tokio::test]
async fn a_public_client_cannot_exchange_an_assertion() {
    let s = setup(Role::Member).await;
    let public = s.server.register_public(&[CALLBACK]).await;
    let mut claims = s.claims();
    claims["client_id"] = json!(public.client_id);
    let (status, body) = s
        .server
        .token(&[
            ("grant_type", JWT_BEARER),
            ("assertion", &s.idp.sign(ID_JAG, &claims)),
            ("client_id", &public.client_id),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
}

#[tokio::test]
async fn an_unknown_subject_is_linked_by_email_only_where_the_org_allows_it() {
    let s = setup(Role::Member).await;
    let colleague = s.server.user(s.org, Role::Member).await;
    let mut claims = s.claims();
    claims["sub"] = json!("bob");
    claims["email"] = json!(colleague.email);
    s.refused(&s.idp.sign(ID_JAG, &claims), "no account").await;

    machine_admin::trust_idp(
        &s.server.state.store,
        s.org,
        &s.idp.base,
        &s.idp.jwks_uri,
        Some("ES256"),
        true,
    )
    .await
    .unwrap();
    claims["jti"] = json!(Uuid::new_v4().to_string());
    let (status, body) = s.exchange(&s.idp.sign(ID_JAG, &claims)).await;
    assert_eq!(status, 200, "{body}");
    let me = whoami(&s.server, body["access_token"].as_str().unwrap()).await;
    assert_eq!(me["user_id"], colleague.id.to_string());
    // The link holds from now on, even without the email.
    claims["jti"] = json!(Uuid::new_v4().to_string());
    claims.as_object_mut().unwrap().remove("email");
    assert_eq!(s.exchange(&s.idp.sign(ID_JAG, &claims)).await.0, 200);

    // An algorithm the org did not allow is refused (ES256 only now).
    let listed = machine_admin::list_idps(&s.server.state.store, s.org)
        .await
        .unwrap();
    assert_eq!(
        listed["identity_providers"][0]["algorithms"],
        json!(["ES256"])
    );
    let refused = machine_admin::trust_idp(
        &s.server.state.store,
        s.org,
        &s.idp.base,
        &s.idp.jwks_uri,
        Some("HS256"),
        true,
    )
    .await;
    assert!(refused.is_err(), "symmetric algorithms cannot be trusted");
}

#[tokio::test]
async fn a_replayed_assertion_is_refused_by_a_second_instance_sharing_the_database() {
    let a = TestServer::start().await;
    let shared = a.state.config.clone();
    let b = TestServer::start_with(|c| {
        c.public_url = shared.public_url.clone();
        c.database_url = shared.database_url.clone();
        c.keys_dir = shared.keys_dir.clone();
    })
    .await;
    let s = setup_on(a, Role::Member).await;
    let assertion = s.idp.sign(ID_JAG, &s.claims());
    let (status, body) = s.exchange_at(&s.server, &assertion, None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s.exchange_at(&b, &assertion, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );
    // A fresh assertion works on B: the refusal was the replay alone.
    let (status, _) = s
        .exchange_at(&b, &s.idp.sign(ID_JAG, &s.claims()), None)
        .await;
    assert_eq!(status, 200);
}
