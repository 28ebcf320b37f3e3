//! The OAuth 2.1 authorization server (SPEC §3).

pub mod assertion;
pub mod authorize;
pub mod cimd;
pub mod client;
pub mod error;
pub mod http_auth;
pub mod id_jag;
pub mod jwks;
pub mod jwt;
pub mod keys;
pub mod metadata;
pub mod pkce;
pub mod redirect_uri;
pub mod register;
pub mod revocation;
pub mod revoke;
pub mod service_client;
pub mod token;

use axum::{
    Router,
    http::{Method, header},
    routing::{get, post},
};
use tower_http::cors::{Any, CorsLayer};

use crate::state::AppState;

/// Endpoints a browser-based client calls cross-origin: CORS `*`, no
/// credentials (SPEC §3.11).
pub fn public_router() -> Router<AppState> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            "mcp-protocol-version".parse().expect("valid"),
        ])
        .max_age(std::time::Duration::from_secs(86400));
    Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::authorization_server),
        )
        .route(
            "/.well-known/oauth-authorization-server/mcp",
            get(metadata::authorization_server),
        )
        .route(
            "/.well-known/openid-configuration",
            get(metadata::authorization_server),
        )
        .route(
            "/.well-known/openid-configuration/mcp",
            get(metadata::authorization_server),
        )
        .route(
            "/mcp/.well-known/openid-configuration",
            get(metadata::authorization_server),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            get(metadata::protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(metadata::protected_resource),
        )
        .route("/jwks.json", get(metadata::jwks))
        .route("/register", post(register::register))
        .route("/token", post(token::token))
        .route("/revoke", post(revoke::revoke))
        .route("/introspect", post(revoke::introspect))
        .route("/userinfo", get(revoke::userinfo).post(revoke::userinfo))
        .layer(cors)
}

/// Browser-facing pages: no CORS, anti-framing headers.
pub fn page_router() -> Router<AppState> {
    Router::new()
        .route("/authorize", get(authorize::authorize))
        .route("/consent", post(authorize::consent))
}
