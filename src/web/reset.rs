//! `/reset?token=…`: the page a one-time password reset link opens (README
//! "Accounts"). The token is checked when the page is shown and spent when
//! the new password is saved; the form carries it in a hidden field, and the
//! page sends `Referrer-Policy: no-referrer` like every page, so it does not
//! leak to other sites.

use askama::Template;
use axum::{
    Form,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{PageError, csrf, render};
use crate::{
    identity::{
        accounts::{self, AccountError},
        passwords::MIN_PASSWORD_CHARS,
        secret,
    },
    state::AppState,
};

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage<'a> {
    csrf: &'a str,
    token: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    min_password: usize,
}

#[derive(Deserialize)]
pub struct ResetQuery {
    token: Option<String>,
}

#[derive(Deserialize)]
pub struct ResetForm {
    csrf: Option<String>,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

fn dead_link() -> PageError {
    PageError {
        status: StatusCode::NOT_FOUND,
        title: "This link no longer works",
        message: "The password reset link is unknown, already used or older than 30 minutes. Ask your administrator for a new one.".into(),
    }
}

fn page(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let (csrf, cookie) = csrf::token(&state.mac, headers, state.config.issuer_is_https());
    let mut response = render(&ResetPage {
        csrf: &csrf,
        token,
        email,
        error,
        min_password: MIN_PASSWORD_CHARS,
    });
    *response.status_mut() = status;
    csrf::with_cookie(response, cookie)
}

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ResetQuery>,
) -> Result<Response, PageError> {
    let token = q.token.unwrap_or_default();
    let ticket = state
        .store
        .password_reset(&secret::hash(&token))
        .await?
        .ok_or_else(dead_link)?;
    Ok(page(
        &state,
        &headers,
        &token,
        &ticket.email,
        None,
        StatusCode::OK,
    ))
}

pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ResetForm>,
) -> Result<Response, PageError> {
    if !csrf::verify(&state.mac, &headers, form.csrf.as_deref()) {
        return Err(PageError::forbidden(
            "This form has expired or did not come from this site. Open the link again.",
        ));
    }
    let ticket = state
        .store
        .password_reset(&secret::hash(&form.token))
        .await?
        .ok_or_else(dead_link)?;
    let again = |message: &str| {
        Ok(page(
            &state,
            &headers,
            &form.token,
            &ticket.email,
            Some(message),
            StatusCode::BAD_REQUEST,
        ))
    };
    if form.password != form.confirm {
        return again("The new password and its confirmation differ.");
    }
    match accounts::redeem_reset_link(&state.store, &state.passwords, &form.token, &form.password)
        .await
    {
        Ok(_) => Ok(Redirect::to("/login?next=%2F").into_response()),
        Err(AccountError::Password(e)) => again(&super::console::sentence(&e.to_string())),
        Err(AccountError::NotFound(_)) => Err(dead_link()),
        Err(AccountError::Store(e)) => Err(e.into()),
        Err(e) => {
            tracing::error!(error = %e, "password reset failed");
            Err(PageError::internal())
        }
    }
}
