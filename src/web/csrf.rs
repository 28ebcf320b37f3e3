//! CSRF protection for the form pages: a random token in a `SameSite=Strict`
//! cookie that each form must echo in a hidden field (double submit). A
//! cross-site page can neither read the cookie nor make the browser send it.

use axum::http::{HeaderMap, HeaderValue, header};

use super::session::{cookie_value, set_cookie};
use crate::identity::secret::{Secret, constant_time_eq};

pub const COOKIE: &str = "pcl_csrf";

/// The token to put in the form, and a `Set-Cookie` when the browser has none yet.
pub fn token(headers: &HeaderMap, secure: bool) -> (String, Option<HeaderValue>) {
    match cookie_value(headers, COOKIE) {
        Some(existing) if existing.len() == 43 => (existing, None),
        _ => {
            let fresh = Secret::generate().expose().to_owned();
            let cookie = set_cookie(COOKIE, &fresh, "Strict", secure, None);
            (fresh, Some(cookie))
        }
    }
}

pub fn verify(headers: &HeaderMap, submitted: Option<&str>) -> bool {
    match (cookie_value(headers, COOKIE), submitted) {
        (Some(cookie), Some(form)) => !cookie.is_empty() && constant_time_eq(&cookie, form),
        _ => false,
    }
}

pub fn with_cookie(
    mut response: axum::response::Response,
    cookie: Option<HeaderValue>,
) -> axum::response::Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
