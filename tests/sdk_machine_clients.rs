//! The official TypeScript SDK's machine-client providers against
//! Portcullis (`tests/js/machine_client.mjs`): `ClientCredentialsProvider`
//! (a secret), `PrivateKeyJwtProvider` (`private_key_jwt`), and the
//! jwt-bearer grant with an ID-JAG from an enterprise IdP played by the
//! test; each ends with `whoami`.

mod common;
#[path = "common/external.rs"]
mod external;
#[path = "common/signer.rs"]
mod signer;

use std::time::Duration;

use common::{CALLBACK, TestServer};
use portcullis::{
    identity::scope::Role,
    machine_admin::{self, ServiceAuth},
};
use serde_json::{Value, json};
use signer::Signer;

const WITHIN: Duration = Duration::from_secs(120);

fn machine_client(server: &TestServer, mode: &str) -> tokio::process::Command {
    let mut node = external::node();
    node.arg("machine_client.mjs")
        .arg(server.resource())
        .arg(mode)
        .env("PCL_ISSUER", &server.base);
    node
}

#[tokio::test]
async fn typescript_sdk_client_credentials_provider_with_a_secret() {
    let server = TestServer::start().await;
    let org = server.org("SDK org").await;
    let created = machine_admin::create_service_client(
        &server.state.store,
        org,
        "SDK robot",
        Role::Member,
        Some("mcp:read"),
        ServiceAuth::Secret,
    )
    .await
    .unwrap();
    let mut node = machine_client(&server, "client-credentials");
    node.env("PCL_CLIENT_ID", created["client_id"].as_str().unwrap())
        .env(
            "PCL_CLIENT_SECRET",
            created["client_secret"].as_str().unwrap(),
        );
    let out = external::run_json(node, WITHIN).await;
    assert_eq!(out["whoami"]["source"], "mcp-client-credentials", "{out}");
    assert_eq!(out["whoami"]["client_name"], "SDK robot");
    assert_eq!(out["whoami"]["client_id"], created["client_id"]);
    assert_eq!(out["whoami"]["org_id"], org.to_string());
    assert_eq!(out["whoami"]["scopes"], json!(["mcp:read"]));
    assert_eq!(out["had_refresh_token"], false);
}

#[tokio::test]
async fn typescript_sdk_private_key_jwt_provider() {
    let server = TestServer::start().await;
    let org = server.org("SDK org").await;
    let keys = Signer::start().await;
    let created = machine_admin::create_service_client(
        &server.state.store,
        org,
        "SDK signed robot",
        Role::Admin,
        None,
        ServiceAuth::Jwks(keys.jwks().to_string()),
    )
    .await
    .unwrap();
    let mut node = machine_client(&server, "private-key-jwt");
    node.env("PCL_CLIENT_ID", created["client_id"].as_str().unwrap())
        .env("PCL_PRIVATE_KEY", &keys.private_pem);
    let out = external::run_json(node, WITHIN).await;
    assert_eq!(out["whoami"]["source"], "mcp-client-credentials", "{out}");
    assert_eq!(out["whoami"]["client_name"], "SDK signed robot");
    assert_eq!(
        out["whoami"]["scopes"],
        json!(["mcp:read", "mcp:write", "mcp:admin"])
    );
}

#[tokio::test]
async fn typescript_sdk_exchanges_an_id_jag_and_calls_whoami() {
    let server = TestServer::start().await;
    let org = server.org("SDK org").await;
    let user = server.user(org, Role::Member).await;
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
    machine_admin::link_identity(&server.state.store, &idp.base, "alice@corp", &user.email)
        .await
        .unwrap();
    let registered: Value = server
        .register(json!({ "client_name": "SDK assistant", "redirect_uris": [CALLBACK] }))
        .await
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().unwrap();
    let assertion = idp.sign(
        "oauth-id-jag+jwt",
        &idp.id_jag_claims(&server.base, client_id, "alice@corp", "mcp:read mcp:write"),
    );
    let mut node = machine_client(&server, "id-jag");
    node.env("PCL_CLIENT_ID", client_id)
        .env(
            "PCL_CLIENT_SECRET",
            registered["client_secret"].as_str().unwrap(),
        )
        .env("PCL_ASSERTION", &assertion);
    let out = external::run_json(node, WITHIN).await;
    assert_eq!(out["whoami"]["source"], "mcp-oauth", "{out}");
    assert_eq!(out["whoami"]["user_id"], user.id.to_string());
    assert_eq!(out["whoami"]["email"], user.email);
    assert_eq!(out["whoami"]["client_id"], client_id);
    assert_eq!(out["whoami"]["scopes"], json!(["mcp:read", "mcp:write"]));
    assert_eq!(out["had_refresh_token"], false);
}
