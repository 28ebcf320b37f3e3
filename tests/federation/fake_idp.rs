//! A test-controlled OpenID Provider on loopback: discovery, JWKS, an
//! authorization endpoint that answers at once, and a token endpoint that
//! checks PKCE and returns whatever ID token the test asks for — including
//! forged ones (`alg: none`, HS256 keyed with the public key, wrong issuer,
//! audience, nonce or expiry). The happy path is also tested against the
//! real `oidc-provider` (tests/federation_browser.rs).
#![allow(dead_code)]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Form, Json, Router,
    extract::{Query, State},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// How the ID token is signed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Signing {
    Es256,
    /// `alg: none`, no signature.
    None,
    /// HS256 with the provider's public key (JWKS JSON) as the secret.
    Hs256WithPublicKey,
    /// ES256 by a key the provider does not publish, under a published kid.
    UnpublishedKey,
}

/// What the next answers look like; the test changes it between sign-ins.
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// Claims merged over the defaults (`null` removes one).
    pub claims: Value,
    pub signing: Signing,
    /// The `state` sent back instead of the one received.
    pub state: Option<String>,
    /// How long the token endpoint waits before answering.
    pub token_delay: Option<Duration>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            claims: json!({}),
            signing: Signing::Es256,
            state: None,
            token_delay: None,
        }
    }
}

struct Key {
    kid: String,
    pair: rcgen::KeyPair,
}

impl Key {
    fn new() -> Key {
        Key {
            kid: uuid::Uuid::new_v4().simple().to_string(),
            pair: rcgen::KeyPair::generate().unwrap(),
        }
    }

    fn jwk(&self) -> Value {
        let raw = self.pair.public_key_raw();
        json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&raw[33..65]),
        })
    }
}

struct Pending {
    nonce: Option<String>,
    challenge: String,
}

struct Inner {
    issuer: String,
    client_id: String,
    keys: Vec<Key>,
    behaviour: Behaviour,
    pending: HashMap<String, Pending>,
    jwks_fetches: usize,
}

#[derive(Clone)]
pub struct FakeIdp {
    pub issuer: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeIdp {
    pub async fn start(client_id: &str) -> FakeIdp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let idp = FakeIdp {
            issuer: issuer.clone(),
            inner: Arc::new(Mutex::new(Inner {
                issuer,
                client_id: client_id.to_owned(),
                keys: vec![Key::new()],
                behaviour: Behaviour::default(),
                pending: HashMap::new(),
                jwks_fetches: 0,
            })),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(idp.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        idp
    }

    pub fn set(&self, behaviour: Behaviour) {
        self.inner.lock().unwrap().behaviour = behaviour;
    }

    /// Replaces the signing key with a new one under a new `kid`.
    pub fn rotate_keys(&self) {
        self.inner.lock().unwrap().keys = vec![Key::new()];
    }

    /// `claims` signed (ES256) with the key the JWKS publishes.
    pub fn sign(&self, claims: &Value) -> String {
        let inner = self.inner.lock().unwrap();
        sign_es256(&inner.keys[0].kid, &inner.keys[0].pair, claims)
    }

    pub fn jwks_fetches(&self) -> usize {
        self.inner.lock().unwrap().jwks_fetches
    }
}

async fn discovery(State(idp): State<FakeIdp>) -> Json<Value> {
    let i = &idp.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn jwks(State(idp): State<FakeIdp>) -> Json<Value> {
    let mut inner = idp.inner.lock().unwrap();
    inner.jwks_fetches += 1;
    Json(json!({ "keys": inner.keys.iter().map(Key::jwk).collect::<Vec<_>>() }))
}

async fn authorize(
    State(idp): State<FakeIdp>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = idp.inner.lock().unwrap();
    assert_eq!(
        q.get("code_challenge_method").map(String::as_str),
        Some("S256")
    );
    assert_eq!(q.get("client_id"), Some(&inner.client_id));
    let code = uuid::Uuid::new_v4().simple().to_string();
    inner.pending.insert(
        code.clone(),
        Pending {
            nonce: q.get("nonce").cloned(),
            challenge: q["code_challenge"].clone(),
        },
    );
    let state = inner
        .behaviour
        .state
        .clone()
        .unwrap_or_else(|| q["state"].clone());
    let mut to = url::Url::parse(&q["redirect_uri"]).unwrap();
    to.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &state);
    Redirect::to(to.as_str()).into_response()
}

async fn token(State(idp): State<FakeIdp>, Form(form): Form<HashMap<String, String>>) -> Response {
    let delay = idp.inner.lock().unwrap().behaviour.token_delay;
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let inner = idp.inner.lock().unwrap();
    let Some(pending) = inner.pending.get(&form["code"]) else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(form["code_verifier"].as_bytes()));
    if challenge != pending.challenge {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut claims = json!({
        "iss": inner.issuer, "aud": inner.client_id, "sub": "fake-user-1",
        "email": "fed@example.test", "email_verified": true, "name": "Fed User",
        "iat": now, "exp": now + 300, "nonce": pending.nonce,
    });
    for (k, v) in inner.behaviour.claims.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    let key = &inner.keys[0];
    let id_token = match inner.behaviour.signing {
        Signing::Es256 => sign_es256(&key.kid, &key.pair, &claims),
        Signing::UnpublishedKey => {
            sign_es256(&key.kid, &rcgen::KeyPair::generate().unwrap(), &claims)
        }
        Signing::None => format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        ),
        Signing::Hs256WithPublicKey => {
            let secret = json!({ "keys": [key.jwk()] }).to_string();
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            header.kid = Some(key.kid.clone());
            jsonwebtoken::encode(
                &header,
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
            )
            .unwrap()
        }
    };
    Json(json!({
        "access_token": "upstream-access-token", "token_type": "Bearer", "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}

fn sign_es256(kid: &str, pair: &rcgen::KeyPair, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    let key = jsonwebtoken::EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}
