//! The signed-in person's own account: change the password (the current one
//! is required; every other session of theirs ends, this one stays).

use askama::Template;
use axum::{
    Form,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{Chrome, Console, back_to};
use crate::{
    identity::{
        accounts::{self, AccountError},
        passwords::MIN_PASSWORD_CHARS,
        secret,
    },
    state::AppState,
    web::{PageError, session},
};

#[derive(Template)]
#[template(path = "console/account.html")]
struct AccountPage {
    chrome: Chrome,
    error: Option<String>,
    min_password: usize,
}

#[derive(Deserialize)]
pub struct ShowQuery {
    org: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: Option<String>,
    org: Option<String>,
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

pub async fn show(mut console: Console, Query(q): Query<ShowQuery>) -> Result<Response, PageError> {
    console.select(q.org.as_deref())?;
    let page = AccountPage {
        chrome: console.chrome("account", q.notice.as_deref()),
        error: None,
        min_password: MIN_PASSWORD_CHARS,
    };
    Ok(console.render(&page, StatusCode::OK))
}

pub async fn change_password(
    State(state): State<AppState>,
    mut console: Console,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    console.verify_csrf(form.csrf.as_deref())?;
    console.select(form.org.as_deref())?;
    let refuse = |console: Console, message: String, status| {
        let page = AccountPage {
            chrome: console.chrome("account", None),
            error: Some(message),
            min_password: MIN_PASSWORD_CHARS,
        };
        Ok(console.render(&page, status))
    };
    if form.password != form.confirm {
        return refuse(
            console,
            "The new password and its confirmation differ.".into(),
            StatusCode::BAD_REQUEST,
        );
    }
    let keep = session::cookie_value(&headers, session::COOKIE).map(|id| secret::hash(&id));
    let user = console.user.clone();
    match accounts::change_own_password(
        &state.store,
        &state.passwords,
        &user,
        &form.current,
        &form.password,
        keep.as_deref(),
    )
    .await
    {
        Ok(()) => Ok(back_to("/console/account", &console, "password-changed").into_response()),
        Err(AccountError::Store(e)) => Err(e.into()),
        Err(e @ (AccountError::Invalid(_) | AccountError::Password(_))) => refuse(
            console,
            super::sentence(&e.to_string()),
            StatusCode::BAD_REQUEST,
        ),
        Err(e) => {
            tracing::error!(error = %e, "changing a password failed");
            Err(PageError::internal())
        }
    }
}
