//! CSRF protection for the form pages. A random value lives in a
//! `SameSite=Strict` cookie; the form's hidden field carries an HMAC, under
//! the server's key, of that value and of the session cookie (signed double
//! submit, per OWASP's CSRF cheat sheet). A cross-site page can neither read
//! the cookies nor make the browser send them, and someone who can plant a
//! cookie (`pcl_csrf=z` from a sibling subdomain) still cannot produce the
//! field: it needs the key and the victim's session id.

use axum::http::{HeaderMap, HeaderValue, header};

use super::session::{self, cookie_value, set_cookie};
use crate::identity::{
    mac::MacKey,
    secret::{Secret, constant_time_eq},
};

pub const COOKIE: &str = "pcl_csrf";
const PURPOSE: &str = "csrf";

fn field(key: &MacKey, headers: &HeaderMap, cookie: &str) -> String {
    let session = cookie_value(headers, session::COOKIE).unwrap_or_default();
    key.tag(PURPOSE, &[cookie, &session])
}

/// The token to put in the form, and a `Set-Cookie` when the browser has none yet.
pub fn token(key: &MacKey, headers: &HeaderMap, secure: bool) -> (String, Option<HeaderValue>) {
    match cookie_value(headers, COOKIE) {
        Some(existing) if existing.len() == 43 => (field(key, headers, &existing), None),
        _ => {
            let fresh = Secret::generate().expose().to_owned();
            let cookie = set_cookie(COOKIE, &fresh, "Strict", secure, None);
            (field(key, headers, &fresh), Some(cookie))
        }
    }
}

/// Whether `submitted` is the token [`token`] gives for these cookies.
pub fn verify(key: &MacKey, headers: &HeaderMap, submitted: Option<&str>) -> bool {
    match (cookie_value(headers, COOKIE), submitted) {
        (Some(cookie), Some(form)) if cookie.len() == 43 => {
            constant_time_eq(&field(key, headers, &cookie), form)
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(cookies).unwrap());
        h
    }

    #[test]
    fn the_field_is_bound_to_the_cookie_and_the_session() {
        let key = MacKey::new(b"server");
        let c = "a".repeat(43);
        let signed_in = headers(&format!("{COOKIE}={c}; pcl_session=s1"));
        let (token, set) = super::token(&key, &signed_in, false);
        assert!(set.is_none());
        assert!(verify(&key, &signed_in, Some(&token)));
        // Another session, another key, a planted pair: all refused.
        assert!(!verify(
            &key,
            &headers(&format!("{COOKIE}={c}; pcl_session=s2")),
            Some(&token)
        ));
        assert!(!verify(&MacKey::new(b"other"), &signed_in, Some(&token)));
        assert!(!verify(&key, &headers(&format!("{COOKIE}=z")), Some("z")));
        assert!(!verify(&key, &headers(&format!("{COOKIE}={c}")), Some(&c)));
        assert!(!verify(&key, &signed_in, None));
    }
}
