//! Portcullis as an OpenID Connect provider, checked by an independent relying
//! party (the `openidconnect` crate): discovery, the code flow with PKCE and a
//! nonce, ID-token signature and claims, and `/userinfo`.

mod common;

use common::{CALLBACK, TestServer, query_param};
use openidconnect::{
    AuthorizationCode, ClientId, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
    core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims},
};
use portcullis::identity::scope::Role;

#[tokio::test]
async fn an_independent_relying_party_verifies_id_tokens_and_userinfo() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let registered = server.register_public(&[CALLBACK]).await;

    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.base.clone()).unwrap(), &http)
            .await
            .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(registered.client_id.clone()),
        None,
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.to_owned()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("mcp:read".into()))
        .set_pkce_challenge(challenge)
        .url();

    let callback = server
        .authorize_in_browser(&server.browser(), url.as_str(), &user, "mcp:read")
        .await;
    assert_eq!(
        query_param(&callback, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    let code = query_param(&callback, "code").unwrap();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");

    let id_token = tokens.id_token().expect("an ID token for the openid scope");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("a valid ID token");
    assert_eq!(claims.subject().as_str(), user.id.to_string());
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        Some(user.email.as_str())
    );
    assert_eq!(claims.email_verified(), Some(true));
    // A wrong nonce is refused by the relying party: the nonce is really bound.
    assert!(
        id_token
            .claims(&client.id_token_verifier(), &Nonce::new("other".into()))
            .is_err()
    );

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), user.id.to_string());
    assert_eq!(info.email().map(|e| e.as_str()), Some(user.email.as_str()));
}
