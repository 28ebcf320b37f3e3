//! Signed JWTs that others present to us: client assertions (RFC 7523 §2.2,
//! `private_key_jwt`) and identity assertion grants (ID-JAG). This module
//! reads the header, verifies the signature with one of the party's public
//! keys under an asymmetric algorithm, and gives back the claims; each
//! caller then checks its own claims and says which check failed.

use std::str::FromStr;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::Jwk};
use serde::Deserialize;
use serde_json::Value;

use super::jwks::{JwksCache, KeySource};

/// The JWS algorithms accepted from others: asymmetric only, so a public key
/// can never be used as an HMAC secret (RFC 8725 §3.1, §3.2).
pub const ASYMMETRIC: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];
/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECS: i64 = 30;

/// The protected header as sent, before anything is trusted.
#[derive(Debug, Deserialize)]
pub struct Header {
    pub alg: String,
    pub typ: Option<String>,
    pub kid: Option<String>,
}

/// The claims both kinds of assertion use; `aud` and `resource` may be a
/// string or an array.
#[derive(Debug, Default, Deserialize)]
pub struct Claims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub aud: Option<Value>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub nbf: Option<i64>,
    pub jti: Option<String>,
    pub client_id: Option<String>,
    pub resource: Option<Value>,
    pub scope: Option<String>,
    pub email: Option<String>,
    pub aud_tenant: Option<String>,
}

impl Claims {
    /// Whether `aud` is, or contains, one of `accepted`.
    pub fn audience_is_one_of(&self, accepted: &[&str]) -> bool {
        strings(self.aud.as_ref())
            .iter()
            .any(|a| accepted.contains(&a.as_str()))
    }

    /// The `resource` values.
    pub fn resources(&self) -> Vec<String> {
        strings(self.resource.as_ref())
    }

    /// Checks `exp` (required), `nbf` and `iat` against `now` with
    /// [`LEEWAY_SECS`], and that the assertion lives at most `max_lifetime`
    /// seconds (from `iat`, or from now when it has none).
    ///
    /// # Errors
    /// A text naming the failed check.
    pub fn check_times(&self, now: i64, max_lifetime: i64) -> Result<i64, String> {
        let exp = self.exp.ok_or("the assertion has no exp")?;
        if exp + LEEWAY_SECS <= now {
            return Err("the assertion has expired (exp)".into());
        }
        if self.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
            return Err("the assertion is not valid yet (nbf)".into());
        }
        if self.iat.is_some_and(|iat| iat > now + LEEWAY_SECS) {
            return Err("the assertion was issued in the future (iat)".into());
        }
        let start = self.iat.unwrap_or(now).min(now);
        if exp - start > max_lifetime + LEEWAY_SECS {
            return Err(format!(
                "the assertion lives too long (exp - iat over {max_lifetime} seconds)"
            ));
        }
        Ok(exp)
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The header and the claims of `jwt`, unverified: only for choosing whose
/// keys to verify it with.
///
/// # Errors
/// A text saying what is malformed.
pub fn peek(jwt: &str) -> Result<(Header, Claims), String> {
    let mut parts = jwt.split('.');
    let (Some(header), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the assertion is not a signed JWT (three parts)".into());
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
    };
    let header: Header = decode(header)
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or("the assertion's header is not valid JSON with an alg")?;
    let claims: Claims = decode(payload)
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or("the assertion's claims are not a valid JSON object")?;
    Ok((header, claims))
}

/// Verifies the signature of `jwt` with the key its header names in
/// `source`, under an algorithm of `allowed` (which must be asymmetric), and
/// returns its claims. Claims are not checked here.
///
/// # Errors
/// A text naming the failed check, never key material.
pub async fn verify(
    jwks: &JwksCache,
    source: &KeySource,
    jwt: &str,
    allowed: &[String],
) -> Result<Claims, String> {
    let (header, _) = peek(jwt)?;
    if header.alg.eq_ignore_ascii_case("none") {
        return Err("unsigned assertions (alg none) are refused".into());
    }
    if !ASYMMETRIC.contains(&header.alg.as_str()) {
        return Err(format!(
            "alg {} is refused; use an asymmetric algorithm",
            crate::oauth::http_auth::quoted_string_safe(&header.alg)
        ));
    }
    if !allowed.iter().any(|a| a == &header.alg) {
        return Err(format!("alg {} is not allowed for this issuer", header.alg));
    }
    let alg = Algorithm::from_str(&header.alg).map_err(|_| "unsupported alg".to_owned())?;
    let jwk = jwks
        .key(source, header.kid.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    check_key_algorithm(&jwk, alg)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| "the key set holds an unusable key")?;
    let mut validation = Validation::new(alg);
    // Times, audience and issuer are checked by the caller, with texts that
    // name the failed check.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Claims>(jwt, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                "the assertion's signature does not verify".to_owned()
            }
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                "the assertion's alg does not match its key".to_owned()
            }
            _ => "the assertion could not be verified".to_owned(),
        })
}

/// A key that declares its `alg` is used with that algorithm only.
fn check_key_algorithm(jwk: &Jwk, alg: Algorithm) -> Result<(), String> {
    match jwk.common.key_algorithm {
        Some(declared) if format!("{declared:?}") != format!("{alg:?}") => {
            Err("the assertion's alg differs from its key's alg".into())
        }
        _ => Ok(()),
    }
}

/// The default algorithm list: every asymmetric one.
pub fn all_asymmetric() -> Vec<String> {
    ASYMMETRIC.iter().map(|a| (*a).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(iat: Option<i64>, exp: Option<i64>, nbf: Option<i64>) -> Claims {
        Claims {
            iat,
            exp,
            nbf,
            ..Claims::default()
        }
    }

    #[test]
    fn times_are_checked_with_leeway_and_a_lifetime_cap() {
        let now = 1_000_000;
        assert_eq!(
            claims(Some(now), Some(now + 300), None).check_times(now, 300),
            Ok(now + 300)
        );
        assert!(
            claims(Some(now), None, None)
                .check_times(now, 300)
                .unwrap_err()
                .contains("no exp")
        );
        assert!(
            claims(Some(now - 400), Some(now - 31), None)
                .check_times(now, 300)
                .unwrap_err()
                .contains("expired")
        );
        // Within the leeway an assertion just past `exp` is still taken.
        assert!(
            claims(Some(now - 100), Some(now - 10), None)
                .check_times(now, 300)
                .is_ok()
        );
        assert!(
            claims(Some(now), Some(now + 3600), None)
                .check_times(now, 300)
                .unwrap_err()
                .contains("too long")
        );
        assert!(
            claims(None, Some(now + 3600), None)
                .check_times(now, 300)
                .is_err()
        );
        assert!(
            claims(Some(now), Some(now + 60), Some(now + 120))
                .check_times(now, 300)
                .unwrap_err()
                .contains("nbf")
        );
        assert!(
            claims(Some(now + 120), Some(now + 200), None)
                .check_times(now, 300)
                .unwrap_err()
                .contains("iat")
        );
    }

    #[test]
    fn audiences_and_resources_may_be_strings_or_arrays() {
        let one = Claims {
            aud: Some(serde_json::json!("https://as.example")),
            ..Claims::default()
        };
        let many = Claims {
            aud: Some(serde_json::json!(["https://other", "https://as.example"])),
            resource: Some(serde_json::json!(["https://as.example/mcp"])),
            ..Claims::default()
        };
        assert!(one.audience_is_one_of(&["https://as.example"]));
        assert!(many.audience_is_one_of(&["https://as.example"]));
        assert!(!one.audience_is_one_of(&["https://as.example/token"]));
        assert_eq!(many.resources(), vec!["https://as.example/mcp".to_owned()]);
    }

    #[test]
    fn peek_reads_the_header_and_refuses_what_is_not_a_jws() {
        let part = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let jwt = format!(
            "{}.{}.",
            part(serde_json::json!({"alg": "none", "typ": "oauth-id-jag+jwt"})),
            part(serde_json::json!({"iss": "https://idp"}))
        );
        let (header, claims) = peek(&jwt).unwrap();
        assert_eq!(header.alg, "none");
        assert_eq!(claims.iss.as_deref(), Some("https://idp"));
        assert!(peek("a.b").is_err());
        assert!(peek("a.b.c.d").is_err());
        assert!(peek("!!.??.x").is_err());
    }
}
