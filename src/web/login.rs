//! Sign-in and sign-out, shared by the OAuth flow and the console.

use crate::client_addr::ClientAddr;
use askama::Template;

use axum::{
    Form,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{AppendHeaders, IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    PageError, csrf, device, render, session,
    throttle::{Origin, Verdict},
};
use crate::{identity, state::AppState};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    next: &'a str,
    csrf: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    /// "Continue with …" buttons: (link, provider name).
    providers: Vec<(String, String)>,
    password_login: bool,
}

/// `/login/start/{id}?next=…` for each configured provider.
fn provider_buttons(state: &AppState, next: &str) -> Vec<(String, String)> {
    state
        .providers
        .oidc()
        .map(|p| (start_link(&p.config.id, next), p.config.name.clone()))
        .collect()
}

fn start_link(provider: &str, next: &str) -> String {
    format!(
        "/login/start/{provider}?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("next", next)
            .finish()
    )
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    csrf: Option<String>,
    next: Option<String>,
}

/// Only same-site paths may follow a sign-in, never another origin. Browsers
/// drop tabs and newlines from URLs and read `\` as `/`, so `/\t/evil.example`
/// would become `//evil.example`: only printable ASCII without `\` passes
/// (our own paths are percent-encoded, so nothing legitimate is lost).
pub(crate) fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n
        }
        _ => "/",
    }
}

fn page(
    state: &AppState,
    headers: &HeaderMap,
    next: &str,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let (token, cookie) = csrf::token(&state.mac, headers, state.config.issuer_is_https());
    let mut response = render(&LoginPage {
        next,
        csrf: &token,
        email,
        error,
        providers: provider_buttons(state, next),
        password_login: state.config.password_login,
    });
    *response.status_mut() = status;
    csrf::with_cookie(response, cookie)
}

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    // With one way to sign in, the page would be a single button: skip it.
    let mut providers = state.providers.oidc();
    if let (Some(only), None, false) = (
        providers.next(),
        providers.next(),
        state.config.password_login,
    ) {
        return Redirect::to(&start_link(&only.config.id, next)).into_response();
    }
    page(&state, &headers, next, "", None, StatusCode::OK)
}

pub async fn submit(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let secure = state.config.issuer_is_https();
    let next = safe_next(form.next.as_deref());
    if !state.config.password_login {
        return Err(PageError::forbidden(
            "Signing in with a password is turned off here. Use your organization's sign-in.",
        ));
    }
    if !csrf::verify(&state.mac, &headers, form.csrf.as_deref()) {
        return Ok(page(
            &state,
            &headers,
            next,
            &form.email,
            Some("Your session expired. Please sign in again."),
            StatusCode::FORBIDDEN,
        ));
    }
    let email = form.email.trim();
    // Throttled under the canonical form, so another spelling of the same
    // address shares its counters.
    let account = identity::email::canonical(email);
    let origin = match device::known(&state.mac, &headers, &account) {
        Some(id) => Origin::KnownDevice(id),
        None => Origin::Address(client),
    };
    let mut verdict = state.login_throttle.check(&account, &origin, client).await;
    // An admin may have unlocked the account (any instance, CLI or console);
    // looked up only when held back, so sign-in costs no extra query.
    if matches!(verdict, Verdict::Wait(_))
        && let Some(at) = state.store.sign_in_unlocked_at(&account).await?
        && state
            .login_throttle
            .apply_unlock(&account, Some(&origin), at)
            .await
    {
        verdict = state.login_throttle.check(&account, &origin, client).await;
    }
    if verdict == Verdict::Unavailable {
        state.metrics.redis_unavailable("sign_in");
        let mut response = page(
            &state,
            &headers,
            next,
            email,
            Some("Signing in is briefly unavailable. Try again in a few seconds."),
            StatusCode::SERVICE_UNAVAILABLE,
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(5));
        return Ok(response);
    }
    if let Verdict::Wait(wait) = verdict {
        state.metrics.rate_limited("sign_in");
        let seconds = wait.as_secs().max(1);
        let message = format!(
            "Too many failed attempts. Try again in {} minute(s).",
            seconds.div_ceil(60)
        );
        let mut response = page(
            &state,
            &headers,
            next,
            email,
            Some(&message),
            StatusCode::TOO_MANY_REQUESTS,
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return Ok(response);
    }
    // A malformed address names no account; it is still hashed below so it
    // takes as long as any other failure.
    let user = match identity::email::display_form(email) {
        Ok(_) => state.store.user_by_email(email).await?,
        Err(_) => None,
    };
    let ok = state
        .passwords
        .verify(
            &form.password,
            user.as_ref().map(|u| u.password_hash.as_str()),
        )
        .await;
    let Some(user) = user.filter(|_| ok) else {
        if !state
            .login_throttle
            .record_failure(&account, &origin, client)
            .await
        {
            state.metrics.redis_unavailable("sign_in");
        }
        tracing::info!(email, "sign-in failed");
        return Ok(page(
            &state,
            &headers,
            next,
            email,
            Some("Wrong email or password."),
            StatusCode::UNAUTHORIZED,
        ));
    };
    state.login_throttle.record_success(&account, &origin).await;
    if user.disabled_at.is_some() {
        // Said only after the right password, so it tells a guesser nothing.
        tracing::info!(user_id = %user.id, "sign-in refused: account disabled");
        return Ok(page(
            &state,
            &headers,
            next,
            email,
            Some("This account is disabled. Ask an administrator to enable it."),
            StatusCode::FORBIDDEN,
        ));
    }
    let cookie = session::start(&state, &user).await?;
    let known_device = device::remember(&state.mac, &headers, &account, secure);
    tracing::info!(user_id = %user.id, "signed in");
    Ok((
        AppendHeaders([
            (header::SET_COOKIE, cookie),
            (header::SET_COOKIE, known_device),
        ]),
        Redirect::to(next),
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    csrf: &'a str,
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf: Option<String>,
}

/// A link to `/logout` asks first: signing out is a state change, and a GET
/// that did it could be triggered by any site the user visits.
pub async fn confirm_logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (token, cookie) = csrf::token(&state.mac, &headers, state.config.issuer_is_https());
    csrf::with_cookie(render(&LogoutPage { csrf: &token }), cookie)
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Result<Response, PageError> {
    if !csrf::verify(&state.mac, &headers, form.csrf.as_deref()) {
        let mut page = confirm_logout(State(state), headers).await;
        *page.status_mut() = StatusCode::FORBIDDEN;
        return Ok(page);
    }
    let cookie = session::end(&state, &headers).await?;
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_plain_same_site_paths_follow_a_sign_in() {
        for kept in [
            "/",
            "/console/keys?org=1",
            "/authorize?client_id=a%20b&state=x",
        ] {
            assert_eq!(safe_next(Some(kept)), kept);
        }
        for refused in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "/caf\u{e9}",
            "javascript:alert(1)",
            "",
        ] {
            assert_eq!(safe_next(Some(refused)), "/", "{refused:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
