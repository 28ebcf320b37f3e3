//! The HTTP `Authorization` header and `WWW-Authenticate` challenges, read and
//! written in one place for every endpoint (`/mcp`, `/token`, `/revoke`,
//! `/introspect`, `/userinfo`).
//!
//! RFC 9110 §11.1: the scheme name is case-insensitive (`Bearer`, `BEARER`,
//! `bearer` are the same). §11.4: `credentials = auth-scheme [ 1*SP (
//! token68 / #auth-param ) ]`, so one or more spaces separate the scheme
//! from its credentials.

use axum::http::{HeaderMap, HeaderValue, header};
use base64::{Engine, engine::general_purpose::STANDARD};

/// An `Authorization` header that is present but cannot be read; the text
/// says what is wrong, for an `error_description`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// The scheme and credentials of the `Authorization` header, or `None` when
/// the request has none.
///
/// # Errors
/// [`Malformed`] when the header is not visible ASCII or has no credentials.
pub fn authorization(headers: &HeaderMap) -> Result<Option<(&str, &str)>, Malformed> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    // Two credentials are ambiguous: which one is the caller?
    if values.next().is_some() {
        return Err(Malformed("Send one Authorization header, not several."));
    }
    let value = value
        .to_str()
        .map_err(|_| Malformed("The Authorization header is not valid text."))?
        .trim_matches([' ', '\t']);
    let Some((scheme, credentials)) = value.split_once(' ') else {
        return Err(Malformed(
            "The Authorization header needs a scheme and credentials.",
        ));
    };
    // 1*SP between scheme and credentials; trailing OWS tolerated.
    let credentials = credentials.trim_start_matches(' ');
    if credentials.is_empty() {
        return Err(Malformed(
            "The Authorization header needs a scheme and credentials.",
        ));
    }
    Ok(Some((scheme, credentials)))
}

/// The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1).
///
/// `Ok(None)`: no `Authorization` header at all.
///
/// # Errors
/// [`Malformed`] for another scheme, or a token with inner whitespace (a
/// token68 has none).
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, Malformed> {
    let Some((scheme, token)) = authorization(headers)? else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Malformed(
            "Use Authorization: Bearer <access token or API key>.",
        ));
    }
    if token.contains([' ', '\t']) {
        return Err(Malformed("A bearer token cannot contain spaces."));
    }
    Ok(Some(token))
}

/// The client id and secret of an `Authorization: Basic` header, each
/// form-urldecoded as RFC 6749 §2.3.1 requires.
///
/// `Ok(None)`: no `Authorization` header, or one with another scheme (the
/// client may then authenticate in the body).
///
/// # Errors
/// [`Malformed`] when the Basic credentials are not base64 of `id:secret`.
pub fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, Malformed> {
    let Some((scheme, encoded)) = authorization(headers)? else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let malformed = || Malformed("malformed HTTP Basic credentials");
    let decoded = STANDARD
        .decode(encoded)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(malformed)?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// A `WWW-Authenticate` challenge (RFC 9110 §11.6.1) with its auth-params in
/// the order they were added, e.g.
/// `Bearer resource_metadata="…", scope="mcp:read", error="invalid_token"`.
#[derive(Debug, Clone)]
pub struct Challenge {
    scheme: &'static str,
    params: Vec<(&'static str, String)>,
}

impl Challenge {
    /// RFC 6750 §3.
    pub fn bearer() -> Challenge {
        Challenge {
            scheme: "Bearer",
            params: Vec::new(),
        }
    }

    /// RFC 7617 §2, for `invalid_client` after HTTP Basic (RFC 6749 §5.2).
    pub fn basic() -> Challenge {
        Challenge {
            scheme: "Basic",
            params: vec![("realm", "portcullis".to_owned())],
        }
    }

    /// Adds `name="value"`; the value is made a safe quoted-string (printable
    /// ASCII without `"` and `\`, RFC 6750 §3), so no caller-supplied text
    /// can end the string or the header.
    pub fn param(mut self, name: &'static str, value: impl AsRef<str>) -> Challenge {
        self.params.push((name, quoted_string_safe(value.as_ref())));
        self
    }

    /// The header value.
    pub fn to_header_value(&self) -> HeaderValue {
        let mut text = self.scheme.to_owned();
        for (i, (name, value)) in self.params.iter().enumerate() {
            text.push_str(if i == 0 { " " } else { ", " });
            text.push_str(&format!("{name}=\"{value}\""));
        }
        HeaderValue::from_str(&text).expect("printable ASCII by construction")
    }
}

/// Keeps text inside an RFC 9110 quoted-string that RFC 6750 §3 further
/// limits to printable ASCII without `"` and `\`.
pub fn quoted_string_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_takes_one_or_more_spaces() {
        for value in [
            "Bearer abc",
            "BEARER abc",
            "bearer abc",
            "bEaReR   abc",
            "Bearer abc ",
        ] {
            assert_eq!(bearer_token(&headers(value)), Ok(Some("abc")), "{value}");
        }
        assert_eq!(bearer_token(&HeaderMap::new()), Ok(None));
        for value in ["Bearer", "Bearer ", "Basic abc", "Bearerabc", "Bearer a b"] {
            assert!(bearer_token(&headers(value)).is_err(), "{value}");
        }
    }

    #[test]
    fn several_authorization_headers_are_refused() {
        let mut h = headers("Bearer a");
        h.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert!(bearer_token(&h).is_err());
        assert!(basic_credentials(&h).is_err());
    }

    #[test]
    fn basic_is_case_insensitive_and_form_urldecoded() {
        // RFC 6749 §2.3.1: "a b:c%3Ad" form-urlencoded is "a+b:c%253Ad".
        let encoded = STANDARD.encode("a+b:c%3Ad");
        for scheme in ["Basic", "BASIC", "basic"] {
            assert_eq!(
                basic_credentials(&headers(&format!("{scheme}  {encoded}"))),
                Ok(Some(("a b".to_owned(), "c:d".to_owned())))
            );
        }
        assert_eq!(basic_credentials(&headers("Bearer x")), Ok(None));
        assert!(basic_credentials(&headers("Basic !!!")).is_err());
        assert!(
            basic_credentials(&headers(&format!("Basic {}", STANDARD.encode("nocolon")))).is_err()
        );
    }

    #[test]
    fn challenges_keep_their_order_and_quote_safely() {
        let value = Challenge::bearer()
            .param("resource_metadata", "https://x/.well-known/y")
            .param("error", "invalid_token")
            .param("error_description", "bad \"quote\"\r\nInjected: yes")
            .to_header_value();
        assert_eq!(
            value.to_str().unwrap(),
            "Bearer resource_metadata=\"https://x/.well-known/y\", error=\"invalid_token\", \
             error_description=\"bad 'quote'??Injected: yes\""
        );
        assert_eq!(
            Challenge::basic().to_header_value().to_str().unwrap(),
            "Basic realm=\"portcullis\""
        );
    }
}
