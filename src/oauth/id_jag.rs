//! Enterprise-managed authorization: the JWT bearer grant (RFC 7523 §2.1,
//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`) with an
//! identity assertion JWT authorization grant (ID-JAG, the MCP extension
//! "Enterprise-Managed Authorization") issued by an enterprise identity
//! provider that an org trusts. Every check names itself in the
//! `invalid_grant` description; no key material is ever echoed.

use serde_json::Value;
use uuid::Uuid;

use super::{
    assertion::{self, Claims},
    client::OAuthClient,
    error::{OAuthError, OAuthResult},
    jwks::KeySource,
    service_client::{access_token_only, check_resource},
    token::TokenForm,
};
use crate::{
    identity::scope::{Role, ScopeSet},
    state::AppState,
    store::{self, EnterpriseIdp, Grant},
};

/// RFC 7523 §2.1.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The ID-JAG media type in the JWT header `typ`.
pub const ID_JAG_TYP: &str = "oauth-id-jag+jwt";
/// Longest accepted ID-JAG lifetime (`exp - iat`), in seconds: they are
/// meant to be used at once.
pub const MAX_ID_JAG_LIFETIME: i64 = 300;

/// Answers the jwt-bearer grant for an authenticated client.
///
/// # Errors
/// `invalid_grant` naming the failed check; `invalid_scope`,
/// `invalid_target`, `invalid_client` (a public client).
pub async fn jwt_bearer(
    state: &AppState,
    client: &OAuthClient,
    form: &TokenForm,
) -> OAuthResult<Value> {
    if client.is_public() {
        return Err(OAuthError::invalid_client(
            "the jwt-bearer grant needs client authentication (a secret or private_key_jwt)",
        ));
    }
    let jwt = form
        .get("assertion")
        .ok_or_else(|| OAuthError::invalid_request("assertion is required"))?;
    check_resource(state, form)?;
    let refused =
        |why: String| OAuthError::invalid_grant(format!("identity assertion refused: {why}"));
    let (header, unverified) = assertion::peek(jwt).map_err(refused)?;
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(ID_JAG_TYP) || t.eq_ignore_ascii_case("application/oauth-id-jag+jwt")
    });
    if !typ_ok {
        return Err(refused(format!("typ must be {ID_JAG_TYP}")));
    }
    let issuer = unverified
        .iss
        .clone()
        .ok_or_else(|| refused("it has no iss".into()))?;
    let idp = trusting_idp(state, &issuer, unverified.aud_tenant.as_deref())
        .await
        .map_err(refused)?;
    let claims = assertion::verify(
        &state.jwks,
        &KeySource::Uri(idp.jwks_uri.clone()),
        jwt,
        &idp.algorithms,
    )
    .await
    .map_err(refused)?;
    let exp = check_claims(state, client, &claims, &issuer).map_err(refused)?;
    let subject = claims
        .sub
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or_else(|| refused("it needs a sub".into()))?;
    let jti = claims
        .jti
        .as_deref()
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| refused("it needs a jti of at most 256 characters".into()))?;
    if !state
        .store
        .spend_assertion_id(&issuer, jti, exp + assertion::LEEWAY_SECS)
        .await?
    {
        return Err(refused("its jti was already used (replay)".into()));
    }
    let (user_id, role) = member(state, &idp, subject, claims.email.as_deref())
        .await
        .map_err(refused)?;
    let scope = granted_scope(form.get("scope"), claims.scope.as_deref(), role)?;
    let now = store::now();
    let grant = Grant {
        id: Uuid::new_v4(),
        client_id: client.client_id.clone(),
        client_name: client.name.clone(),
        redirect_uri: String::new(),
        user_id,
        org_id: idp.org_id,
        scope,
        resource: state.config.resource(),
        nonce: None,
        created_at: now,
        last_used_at: now,
        revoked_at: None,
    };
    state.store.insert_grant_without_refresh(&grant).await?;
    tracing::info!(grant_id = %grant.id, client_id = %client.client_id, org_id = %idp.org_id, issuer = %issuer, "identity assertion exchanged");
    Ok(access_token_only(
        state,
        user_id,
        &client.client_id,
        idp.org_id,
        grant.id,
        scope,
        None,
    ))
}

/// The org's trust in `issuer`: the only org trusting it, or the one the
/// assertion names in `aud_tenant` (an org id).
async fn trusting_idp(
    state: &AppState,
    issuer: &str,
    tenant: Option<&str>,
) -> Result<EnterpriseIdp, String> {
    let trusted = state
        .store
        .enterprise_idps_by_issuer(issuer)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "enterprise IdP lookup failed");
            "the issuer could not be looked up".to_owned()
        })?;
    if trusted.is_empty() {
        return Err("its issuer is not a trusted identity provider".into());
    }
    match tenant {
        Some(tenant) => trusted
            .into_iter()
            .find(|idp| idp.org_id.to_string() == tenant)
            .ok_or_else(|| "its issuer is not trusted by the organization in aud_tenant".into()),
        None if trusted.len() == 1 => Ok(trusted.into_iter().next().expect("one")),
        None => Err("several organizations trust this issuer; name one in aud_tenant".into()),
    }
}

/// `aud`, `client_id`, `resource` and the times; returns `exp`.
fn check_claims(
    state: &AppState,
    client: &OAuthClient,
    claims: &Claims,
    issuer: &str,
) -> Result<i64, String> {
    if claims.iss.as_deref() != Some(issuer) {
        return Err("iss changed".into());
    }
    if !claims.audience_is_one_of(&[state.config.issuer()]) {
        return Err("aud must be this authorization server's issuer".into());
    }
    if claims.client_id.as_deref() != Some(client.client_id.as_str()) {
        return Err("its client_id is not the authenticated client".into());
    }
    let ours = state.config.resource();
    let resources = claims.resources();
    if claims.resource.is_some()
        && !resources
            .iter()
            .any(|r| super::authorize::same_resource(r, &ours))
    {
        return Err("its resource is not this server's MCP resource".into());
    }
    claims.check_times(store::now(), MAX_ID_JAG_LIFETIME)
}

/// The member `subject` of `idp` is: by its link, else by email when the
/// org allows linking by email.
async fn member(
    state: &AppState,
    idp: &EnterpriseIdp,
    subject: &str,
    email: Option<&str>,
) -> Result<(Uuid, Role), String> {
    let internal = |e: store::StoreError| {
        tracing::error!(error = %e, "identity assertion lookup failed");
        "the account could not be looked up".to_owned()
    };
    let user_id = match state
        .store
        .external_identity_user(&idp.issuer, subject)
        .await
        .map_err(internal)?
    {
        Some(user_id) => user_id,
        None => {
            let email = email
                .filter(|_| idp.link_by_email)
                .ok_or("no account is linked to this subject")?;
            let user = state
                .store
                .user_by_email(email)
                .await
                .map_err(internal)?
                .ok_or("no account is linked to this subject or its email")?;
            if state
                .store
                .role(user.id, idp.org_id)
                .await
                .map_err(internal)?
                .is_none()
            {
                return Err("no member of the organization has this email".into());
            }
            match state
                .store
                .link_external_identity(&idp.issuer, subject, user.id, Some(email))
                .await
            {
                Ok(()) | Err(store::StoreError::Conflict) => {}
                Err(e) => return Err(internal(e)),
            }
            tracing::info!(user_id = %user.id, issuer = %idp.issuer, "enterprise subject linked by email");
            user.id
        }
    };
    if state
        .store
        .user(user_id)
        .await
        .map_err(internal)?
        .is_none_or(|u| u.disabled_at.is_some())
    {
        return Err("the user's account is disabled".into());
    }
    let role = state
        .store
        .role(user_id, idp.org_id)
        .await
        .map_err(internal)?
        .ok_or("the user is not a member of the trusting organization")?;
    Ok((user_id, role))
}

/// Requested ∩ the assertion's `scope` ∩ the role's ceiling; asking for
/// more than the assertion or the role allows is `invalid_scope`.
fn granted_scope(
    requested: Option<&str>,
    asserted: Option<&str>,
    role: Role,
) -> OAuthResult<ScopeSet> {
    let asserted = asserted.map(ScopeSet::parse_lenient).map(ScopeSet::mcp);
    let ceiling = role.ceiling().mcp();
    let scope = match requested {
        Some(requested) => {
            let requested = ScopeSet::parse_lenient(requested).mcp();
            if asserted.is_some_and(|a| !requested.is_subset_of(a)) {
                return Err(OAuthError::invalid_scope(
                    "the requested scope exceeds the assertion's scope",
                ));
            }
            if !requested.is_subset_of(ceiling) {
                return Err(OAuthError::invalid_scope(format!(
                    "the requested scope exceeds the member's role ({ceiling})"
                )));
            }
            requested
        }
        None => asserted.unwrap_or(ceiling).intersect(ceiling),
    };
    if scope.is_empty() {
        return Err(OAuthError::invalid_scope(
            "no MCP scope remains for this member",
        ));
    }
    Ok(scope)
}
