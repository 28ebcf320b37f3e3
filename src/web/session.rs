//! Browser sessions: a random id in an `HttpOnly` cookie, stored hashed in the
//! database so any instance can read it.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::{
    identity::secret::{self, Secret},
    state::AppState,
    store::User,
};

pub const COOKIE: &str = "pcl_session";

pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

pub fn set_cookie(
    name: &str,
    value: &str,
    same_site: &str,
    secure: bool,
    max_age: Option<u64>,
) -> HeaderValue {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}");
    if secure {
        cookie.push_str("; Secure");
    }
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&cookie).expect("cookie values are base64url")
}

/// The signed-in user, if the session cookie names a live session.
pub async fn current_user(
    state: &AppState,
    headers: &HeaderMap,
) -> crate::store::Result<Option<User>> {
    match cookie_value(headers, COOKIE) {
        Some(id) if id.len() == 43 => state.store.session_user(&secret::hash(&id)).await,
        _ => Ok(None),
    }
}

/// Starts a session and returns its `Set-Cookie` header.
pub async fn start(state: &AppState, user: &User) -> crate::store::Result<HeaderValue> {
    let id = Secret::generate();
    state
        .store
        .create_session(&id.hash(), user.id, state.config.session_ttl)
        .await?;
    Ok(set_cookie(
        COOKIE,
        id.expose(),
        "Lax",
        state.config.issuer_is_https(),
        Some(state.config.session_ttl.as_secs()),
    ))
}

pub async fn end(state: &AppState, headers: &HeaderMap) -> crate::store::Result<HeaderValue> {
    if let Some(id) = cookie_value(headers, COOKIE) {
        state.store.delete_session(&secret::hash(&id)).await?;
    }
    Ok(set_cookie(
        COOKIE,
        "",
        "Lax",
        state.config.issuer_is_https(),
        Some(0),
    ))
}
