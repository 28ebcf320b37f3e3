//! Signing in through the product's own identity provider (OpenID Connect,
//! authorization code flow with PKCE): `/login/start/{id}` sends the browser
//! to the provider, `/login/callback/{id}` checks what comes back, maps the
//! claims to an account, its organizations and roles, and continues where
//! the sign-in was asked for (usually the consent page of an `/authorize`).

pub mod admin;
pub mod claims;
pub mod config;
pub mod handoff;
pub mod provider;

use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{AppendHeaders, IntoResponse, Redirect, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use crate::{
    identity::secret::constant_time_eq,
    state::AppState,
    store::{FederatedSignIn, SignInRefused},
    web::{PageError, login::safe_next, session},
};
use provider::ProviderError;

/// The cookie carrying one sign-in's `state`, `nonce` and PKCE verifier
/// across the trip to the provider, MAC'd with the shared key so any
/// instance can read it back and nobody can forge it.
const FLOW_COOKIE: &str = "pcl_federation";
const FLOW_PURPOSE: &str = "federation-flow";
/// How long a person may take at the provider.
const FLOW_TTL_SECS: i64 = 600;

#[derive(Serialize, Deserialize)]
struct Flow {
    provider: String,
    state: String,
    nonce: String,
    verifier: String,
    next: String,
    expires_at: i64,
}

impl Flow {
    fn seal(&self, state: &AppState) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("plain struct"));
        let tag = state.mac.tag(FLOW_PURPOSE, &[&body]);
        format!("{body}.{tag}")
    }

    fn open(state: &AppState, headers: &HeaderMap) -> Option<Flow> {
        let value = session::cookie_value(headers, FLOW_COOKIE)?;
        let (body, tag) = value.split_once('.')?;
        if !state.mac.verify(FLOW_PURPOSE, &[body], tag) {
            return None;
        }
        let flow: Flow = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
        (flow.expires_at > crate::store::now()).then_some(flow)
    }
}

#[derive(Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

fn unknown_provider() -> PageError {
    PageError {
        status: StatusCode::NOT_FOUND,
        title: "Unknown sign-in provider",
        message: "This sign-in option does not exist. Go back and choose another.".into(),
    }
}

/// A provider failure as a page: 502 when it could not be reached or
/// answered nonsense, 403 when its token was refused. Details go to the log.
fn provider_page(provider: &str, e: &ProviderError) -> PageError {
    tracing::warn!(provider, error = %e, "sign-in through identity provider failed");
    match e {
        ProviderError::Unreachable(_) | ProviderError::BadResponse(_) => PageError {
            status: StatusCode::BAD_GATEWAY,
            title: "The sign-in provider is not answering",
            message: format!(
                "We could not reach {provider} to sign you in. Try again in a moment; \
                 if it keeps failing, tell your administrator."
            ),
        },
        ProviderError::InvalidIdToken(_) => PageError {
            status: StatusCode::FORBIDDEN,
            title: "Sign-in refused",
            message: format!(
                "The answer from {provider} could not be verified, so you were not signed in. \
                 Start again from the sign-in page."
            ),
        },
    }
}

/// `GET /login/start/{id}`: sends the browser to the provider.
pub async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StartQuery>,
) -> Result<Response, PageError> {
    let provider = state.providers.get(&id).ok_or_else(unknown_provider)?;
    let started = provider
        .start()
        .await
        .map_err(|e| provider_page(&provider.config.name, &e))?;
    let flow = Flow {
        provider: id,
        state: started.state,
        nonce: started.nonce,
        verifier: started.verifier,
        next: safe_next(q.next.as_deref()).to_owned(),
        expires_at: crate::store::now() + FLOW_TTL_SECS,
    };
    // Lax: the provider sends the browser back with a top-level GET.
    let cookie = session::set_cookie(
        FLOW_COOKIE,
        &flow.seal(&state),
        "Lax",
        state.config.issuer_is_https(),
        Some(FLOW_TTL_SECS as u64),
    );
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&started.url)).into_response())
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn refused(message: impl Into<String>) -> PageError {
    PageError {
        status: StatusCode::FORBIDDEN,
        title: "Sign-in refused",
        message: message.into(),
    }
}

/// `GET /login/callback/{id}`: the provider's answer (OIDC Core §3.1.2.5).
pub async fn callback(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, PageError> {
    let provider = state.providers.get(&id).ok_or_else(unknown_provider)?;
    let name = provider.config.name.clone();
    let clear = session::set_cookie(
        FLOW_COOKIE,
        "",
        "Lax",
        state.config.issuer_is_https(),
        Some(0),
    );
    let flow = Flow::open(&state, &headers)
        .filter(|f| f.provider == id)
        .ok_or_else(|| {
            refused("This sign-in took too long or was started elsewhere. Start again from the sign-in page.")
        })?;
    // RFC 6749 §10.12: the answer must belong to the request this browser made.
    let state_ok = q
        .state
        .as_deref()
        .is_some_and(|s| constant_time_eq(s, &flow.state));
    if !state_ok {
        return Err(refused(
            "This answer from the sign-in provider does not match the sign-in you started. Start again from the sign-in page.",
        ));
    }
    if let Some(error) = q.error.as_deref() {
        tracing::info!(provider = %id, error, "identity provider returned an error");
        return Err(refused(format!(
            "{name} did not sign you in{}. Start again from the sign-in page.",
            if error == "access_denied" {
                " (access was denied)"
            } else {
                ""
            }
        )));
    }
    let code = q
        .code
        .as_deref()
        .ok_or_else(|| PageError::bad_request("The sign-in provider sent no code."))?;
    let claims = provider
        .finish(code, &flow.verifier, &flow.nonce)
        .await
        .map_err(|e| provider_page(&name, &e))?;
    let user = account_for(&state, &provider.config, &claims).await?;
    let cookie = session::start(&state, &user).await?;
    tracing::info!(user_id = %user.id, provider = %id, "signed in through identity provider");
    Ok((
        AppendHeaders([(header::SET_COOKIE, cookie), (header::SET_COOKIE, clear)]),
        Redirect::to(&flow.next),
    )
        .into_response())
}

/// The account for a provider's verified claims: mapped, found or created,
/// memberships refreshed (see `Store::federated_sign_in`), or a page saying
/// why not. Shared by the OpenID callback and the login hand-off.
pub(crate) async fn account_for(
    state: &AppState,
    config: &config::IdentityProviderConfig,
    claims: &serde_json::Map<String, serde_json::Value>,
) -> Result<crate::store::User, PageError> {
    let name = &config.name;
    let mapped = claims::map(config, claims).map_err(refused)?;
    let fixed_org = match &config.org {
        Some(org) => Some((
            claims::resolve_fixed_org(&state.store, org)
                .await?
                .ok_or_else(|| {
                    tracing::error!(provider = %config.id, org, "configured org does not exist");
                    refused("This sign-in option names an organization that does not exist. Tell your administrator.")
                })?,
            mapped.role,
        )),
        None => None,
    };
    let outcome = state
        .store
        .federated_sign_in(&FederatedSignIn {
            provider: &config.id,
            subject: &mapped.subject,
            email: &mapped.email,
            may_link: mapped.email_verified && config.link_verified_email,
            orgs: mapped
                .orgs
                .iter()
                .map(|o| (o.clone(), mapped.role))
                .collect(),
            create_orgs: config.create_orgs,
            fixed_org,
        })
        .await?;
    match outcome {
        Ok(user) => Ok(user),
        Err(SignInRefused::EmailTaken) => {
            tracing::info!(provider = %config.id, "federated sign-in refused: email belongs to another account");
            Err(refused(format!(
                "An account with the address {} already exists here and cannot be joined to your {name} sign-in. \
                 Sign in with your password instead, or ask your administrator to link the accounts.",
                mapped.email
            )))
        }
        Err(SignInRefused::Disabled) => {
            Err(refused("This account is disabled. Ask your administrator."))
        }
        Err(SignInRefused::NoOrganization) => Err(refused(format!(
            "Your {name} account is not a member of any organization here. Ask your administrator for access."
        ))),
    }
}
