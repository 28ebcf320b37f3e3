//! Discovery documents: RFC 8414 / OIDC authorization-server metadata, RFC 9728
//! protected-resource metadata, and the JWKS.

use axum::{Json, extract::State, http::header, response::IntoResponse};
use serde_json::{Value, json};

use crate::{identity::scope::Scope, state::AppState};

pub async fn authorization_server(State(state): State<AppState>) -> Json<Value> {
    let issuer = state.config.issuer();
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "registration_endpoint": format!("{issuer}/register"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks.json"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", super::id_jag::JWT_BEARER_GRANT],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": super::assertion::ASYMMETRIC,
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic", "private_key_jwt"],
        "revocation_endpoint_auth_signing_alg_values_supported": super::assertion::ASYMMETRIC,
        "introspection_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": super::assertion::ASYMMETRIC,
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
        "scopes_supported": Scope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["sub", "email", "email_verified", "org_id"],
        "resource_indicators_supported": true,
    }))
}

pub async fn protected_resource(State(state): State<AppState>) -> Json<Value> {
    let issuer = state.config.issuer();
    Json(json!({
        "resource": state.config.resource(),
        "authorization_servers": [issuer],
        "scopes_supported": Scope::MCP.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "bearer_methods_supported": ["header"],
        "resource_name": format!("{} MCP", state.config.product_name),
    }))
}

pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.keys.jwks()),
    )
}
