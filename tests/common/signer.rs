//! A party that signs JWTs with its own key pair and publishes its JWKS on
//! loopback: an enterprise identity provider minting ID-JAGs, or a client
//! authenticating with `private_key_jwt`. The server under test runs with
//! the test-only `cimd_allow_loopback` switch, so it fetches this JWKS over
//! http from 127.0.0.1 under the CIMD fetch rules.
#![allow(dead_code)]

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use axum::{Json, Router, routing::get};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use uuid::Uuid;

pub struct Signer {
    /// `http://127.0.0.1:PORT`: the issuer URL when it plays an IdP.
    pub base: String,
    /// `{base}/jwks.json`.
    pub jwks_uri: String,
    pub kid: String,
    /// The private key, PKCS#8 PEM (for the TypeScript SDK's providers).
    pub private_pem: String,
    /// The public key as a JWK.
    pub jwk: Value,
    key: EncodingKey,
    /// JWKS requests served.
    pub served: Arc<AtomicU64>,
}

impl Signer {
    /// A fresh ES256 key pair with its JWKS served on loopback.
    pub async fn start() -> Signer {
        let pair = rcgen::KeyPair::generate().unwrap();
        let private_pem = pair.serialize_pem();
        let raw = pair.public_key_raw();
        assert_eq!(raw.len(), 65, "uncompressed P-256 point");
        let kid = format!("k-{}", Uuid::new_v4().simple());
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&raw[33..65]),
            "kid": kid,
            "alg": "ES256",
            "use": "sig",
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let served = Arc::new(AtomicU64::new(0));
        let document = json!({ "keys": [jwk.clone()] });
        let counter = Arc::clone(&served);
        let router = Router::new().route(
            "/jwks.json",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let document = document.clone();
                async move { Json(document) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Signer {
            jwks_uri: format!("{base}/jwks.json"),
            base,
            kid,
            key: EncodingKey::from_ec_pem(private_pem.as_bytes()).unwrap(),
            private_pem,
            jwk,
            served,
        }
    }

    /// The JWKS document, for registering it inline.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk.clone()] })
    }

    /// `claims` signed ES256 with this key, header `typ` and `kid`.
    pub fn sign(&self, typ: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }

    /// An ID-JAG for `client_id` at `issuer` (our AS) about `sub`, valid for
    /// five minutes, with a fresh `jti`.
    pub fn id_jag_claims(&self, issuer: &str, client_id: &str, sub: &str, scope: &str) -> Value {
        let now = now();
        json!({
            "iss": self.base,
            "sub": sub,
            "aud": issuer,
            "client_id": client_id,
            "resource": format!("{issuer}/mcp"),
            "scope": scope,
            "jti": Uuid::new_v4().to_string(),
            "iat": now,
            "exp": now + 300,
        })
    }

    /// A client assertion (RFC 7523 §3) for `client_id` with audience `aud`.
    pub fn client_assertion(&self, client_id: &str, aud: &str) -> String {
        let now = now();
        self.sign(
            "JWT",
            &json!({
                "iss": client_id,
                "sub": client_id,
                "aud": aud,
                "jti": Uuid::new_v4().to_string(),
                "iat": now,
                "exp": now + 120,
            }),
        )
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An unsigned JWT (`alg: none`) with this header `typ`.
pub fn unsigned(typ: &str, claims: &Value) -> String {
    let header = json!({ "alg": "none", "typ": typ });
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// An HS256 JWT whose HMAC secret is `secret` (e.g. a public key's text):
/// the algorithm-confusion attack of RFC 8725 §2.1.
pub fn hs256(typ: &str, kid: &str, secret: &[u8], claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some(typ.to_owned());
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}
