//! The first-run path (README "First run"): while no user exists, `serve`
//! prints a one-time URL, `/setup?token=…`, where the first organization
//! and its admin are created in the browser. The token is random, lives
//! only in this process's memory, and is spent by its first successful use
//! (or forgotten at restart). Containers use the unattended path instead:
//! `PORTCULLIS_BOOTSTRAP_ADMIN_EMAIL`, `…_PASSWORD_FILE` and `…_ORG`.

use std::sync::Mutex;

use askama::Template;
use axum::{
    Form,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{PageError, csrf, render, session};
use crate::{
    admin,
    identity::{
        accounts,
        passwords::{self, MIN_PASSWORD_CHARS},
        scope::Role,
        secret::{Secret, constant_time_eq},
    },
    state::AppState,
    store::Store,
};

/// The one-time setup token of this process, if setup is still open.
#[derive(Default)]
pub struct SetupToken(Mutex<Option<String>>);

impl SetupToken {
    /// Opens setup with a fresh random token and returns it.
    pub fn open(&self) -> String {
        let token = Secret::generate().expose().to_owned();
        *self.0.lock().expect("lock") = Some(token.clone());
        token
    }

    fn matches(&self, presented: &str) -> bool {
        self.0
            .lock()
            .expect("lock")
            .as_deref()
            .is_some_and(|t| constant_time_eq(t, presented))
    }

    fn close(&self) {
        *self.0.lock().expect("lock") = None;
    }
}

/// What the unattended first run created.
pub struct Bootstrapped {
    pub org_name: String,
    pub email: String,
}

/// Creates the first org and admin from `PORTCULLIS_BOOTSTRAP_ADMIN_EMAIL`,
/// `PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD_FILE` (the password is the file's
/// first line) and `PORTCULLIS_BOOTSTRAP_ADMIN_ORG` (default "Default"),
/// when no user exists yet. Returns `None` when the variables are absent or
/// users already exist; an error when they are set but unusable.
pub async fn bootstrap_from_env(
    store: &Store,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Bootstrapped>, String> {
    let Some(email) = env("PORTCULLIS_BOOTSTRAP_ADMIN_EMAIL").filter(|e| !e.trim().is_empty())
    else {
        return Ok(None);
    };
    if store.user_count().await.map_err(|e| e.to_string())? > 0 {
        return Ok(None);
    }
    let file = env("PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD_FILE").ok_or(
        "PORTCULLIS_BOOTSTRAP_ADMIN_EMAIL is set but PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD_FILE is not",
    )?;
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD_FILE {file}: {e}"))?;
    let password = text.lines().next().unwrap_or_default();
    passwords::policy(password, Some(&email))
        .map_err(|e| format!("the bootstrap admin's password in {file}: {e}"))?;
    let org_name = env("PORTCULLIS_BOOTSTRAP_ADMIN_ORG")
        .filter(|o| !o.trim().is_empty())
        .unwrap_or_else(|| "Default".into());
    let org = accounts::create_org(store, &org_name)
        .await
        .map_err(|e| e.to_string())?;
    let hasher = passwords::Passwords::new(1);
    admin::create_user(store, &hasher, &email, password, org.id, Role::Admin)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some(Bootstrapped {
        org_name: org.name,
        email,
    }))
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage<'a> {
    csrf: &'a str,
    token: &'a str,
    org: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    min_password: usize,
}

#[derive(Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
}

#[derive(Deserialize)]
pub struct SetupForm {
    csrf: Option<String>,
    #[serde(default)]
    token: String,
    #[serde(default)]
    org: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

fn closed() -> PageError {
    PageError {
        status: StatusCode::NOT_FOUND,
        title: "Setup is not open",
        message: "This server is already set up, or the setup link is not the one printed at start (it changes at every restart). Sign in at /login.".into(),
    }
}

async fn still_open(state: &AppState, token: &str) -> Result<(), PageError> {
    if state.store.user_count().await? > 0 {
        state.setup.close();
        return Err(closed());
    }
    if !state.setup.matches(token) {
        return Err(closed());
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn page(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    org: &str,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let (csrf, cookie) = csrf::token(&state.mac, headers, state.config.issuer_is_https());
    let mut response = render(&SetupPage {
        csrf: &csrf,
        token,
        org,
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
    Query(q): Query<SetupQuery>,
) -> Result<Response, PageError> {
    let token = q.token.unwrap_or_default();
    still_open(&state, &token).await?;
    Ok(page(&state, &headers, &token, "", "", None, StatusCode::OK))
}

pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> Result<Response, PageError> {
    if !csrf::verify(&state.mac, &headers, form.csrf.as_deref()) {
        return Err(PageError::forbidden(
            "This form has expired or did not come from this site. Open the setup link again.",
        ));
    }
    still_open(&state, &form.token).await?;
    let again = |message: String| {
        Ok(page(
            &state,
            &headers,
            &form.token,
            &form.org,
            &form.email,
            Some(&message),
            StatusCode::BAD_REQUEST,
        ))
    };
    if form.password != form.confirm {
        return again("The password and its confirmation differ.".into());
    }
    if let Err(e) = passwords::policy(&form.password, Some(&form.email)) {
        return again(super::console::sentence(&e.to_string()));
    }
    let org = match accounts::create_org(&state.store, &form.org).await {
        Ok(org) => org,
        Err(e) => return again(super::console::sentence(&e.to_string())),
    };
    let created = admin::create_user(
        &state.store,
        &state.passwords,
        &form.email,
        &form.password,
        org.id,
        Role::Admin,
    )
    .await;
    let user = match created {
        Ok(v) => v["id"].as_str().and_then(|id| id.parse().ok()),
        Err(e) => {
            // Nothing half-done: the org goes again when its admin cannot be made.
            let _ = state.store.delete_org_if_empty(org.id).await;
            return again(super::console::sentence(&e.to_string()));
        }
    };
    state.setup.close();
    let Some(user) = (match user {
        Some(id) => state.store.user(id).await?,
        None => None,
    }) else {
        return Err(PageError::internal());
    };
    tracing::info!(user_id = %user.id, org_id = %org.id, "first organization and admin created through /setup");
    let cookie = session::start(&state, &user).await?;
    Ok((
        [(header::SET_COOKIE, cookie)],
        Redirect::to(&format!("/console/connect?org={}&notice=welcome", org.id)),
    )
        .into_response())
}
