//! The known-device cookie (OWASP Authentication Cheat Sheet: a device the
//! user has signed in from before is not subject to the account-wide
//! throttle). Set at each successful sign-in; its value is a random device id
//! and an HMAC binding that id to the account's canonical email, so it cannot
//! be forged, nor moved to another account.

use axum::http::{HeaderMap, HeaderValue};

use super::session::{cookie_value, set_cookie};
use crate::identity::{mac::MacKey, secret::Secret};

pub const COOKIE: &str = "pcl_device";
const PURPOSE: &str = "known-device";
/// How long a device stays known without signing in again: 180 days.
const MAX_AGE_SECS: u64 = 180 * 24 * 3600;

/// The device id, if the browser shows a valid cookie for `account` (the
/// canonical email).
pub fn known(key: &MacKey, headers: &HeaderMap, account: &str) -> Option<String> {
    let value = cookie_value(headers, COOKIE)?;
    let (id, tag) = value.split_once('.')?;
    (id.len() == 43 && key.verify(PURPOSE, &[id, account], tag)).then(|| id.to_owned())
}

/// The `Set-Cookie` marking this browser as known for `account`, keeping
/// its device id when it already has one for that account.
pub fn remember(key: &MacKey, headers: &HeaderMap, account: &str, secure: bool) -> HeaderValue {
    let id = known(key, headers, account).unwrap_or_else(|| Secret::generate().expose().to_owned());
    let tag = key.tag(PURPOSE, &[&id, account]);
    set_cookie(
        COOKIE,
        &format!("{id}.{tag}"),
        "Lax",
        secure,
        Some(MAX_AGE_SECS),
    )
}

#[cfg(test)]
mod tests {
    use axum::http::header;

    use super::*;

    #[test]
    fn a_device_cookie_is_bound_to_its_account() {
        let key = MacKey::new(b"k");
        let set = remember(&key, &HeaderMap::new(), "alice@acme.test", false);
        let value = set.to_str().unwrap().split(';').next().unwrap().to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(&value).unwrap());
        let id = known(&key, &headers, "alice@acme.test").expect("known");
        assert_eq!(known(&key, &headers, "bob@acme.test"), None);
        assert_eq!(
            known(&MacKey::new(b"other"), &headers, "alice@acme.test"),
            None
        );
        // Signing in again keeps the id.
        let again = remember(&key, &headers, "alice@acme.test", false);
        assert!(again.to_str().unwrap().contains(&id));
    }
}
