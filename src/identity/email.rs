//! Email addresses as identifiers. Two spellings that a person would read as
//! the same address must name one account, so every comparison — uniqueness,
//! sign-in lookup, throttling — uses one canonical form computed here, in
//! Rust only: SQL `lower()` is ASCII-only on SQLite and locale-dependent on
//! PostgreSQL, so it cannot be the rule.

use unicode_normalization::UnicodeNormalization;

/// The longest address accepted, in bytes (RFC 5321 §4.5.3.1: 64 + 1 + 255).
pub const MAX_EMAIL_BYTES: usize = 320;

/// Why an address was refused at creation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("{0:?} is not an email address")]
    Malformed(String),
}

/// The address as shown: trimmed, otherwise as typed. Refused when it has no
/// `local@domain` shape, contains control characters or whitespace, or is
/// longer than [`MAX_EMAIL_BYTES`].
pub fn display_form(raw: &str) -> Result<&str, EmailError> {
    let email = raw.trim();
    let malformed = || EmailError::Malformed(email.chars().take(80).collect());
    if email.is_empty() || email.len() > MAX_EMAIL_BYTES {
        return Err(malformed());
    }
    if email.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(malformed());
    }
    match email.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(email),
        _ => Err(malformed()),
    }
}

/// The form every comparison uses: trimmed, NFKC-normalised, then lowercased
/// with Unicode's full (locale-independent) mapping, then NFKC again since
/// lowercasing can leave non-normalised sequences. `CAROL@x.test` and
/// `carol@x.test` are one address; `al\u{130}ce` (Turkish dotted capital I)
/// lowercases to `ali\u{307}ce` and stays distinct from `alice`.
pub fn canonical(raw: &str) -> String {
    let nfkc: String = raw.trim().nfkc().collect();
    nfkc.to_lowercase().nfkc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_canonical_form_per_address() {
        assert_eq!(canonical(" CAROL@X.test "), "carol@x.test");
        assert_eq!(canonical("carol@x.test"), canonical("Carol@X.TEST"));
        // Fullwidth letters are compatibility forms of ASCII ones.
        assert_eq!(canonical("ｃａｒｏｌ@x.test"), "carol@x.test");
        assert_ne!(
            canonical("al\u{130}ce@acme.test"),
            canonical("alice@acme.test")
        );
        assert_ne!(
            canonical("al\u{131}ce@acme.test"),
            canonical("alice@acme.test")
        );
    }

    #[test]
    fn insane_addresses_are_refused() {
        for bad in [
            "",
            "   ",
            "carol",
            "@x.test",
            "carol@",
            "car\u{0}ol@x.test",
            "car\nol@x.test",
            "car ol@x.test",
            &format!("{}@x.test", "a".repeat(400)),
        ] {
            assert!(display_form(bad).is_err(), "{bad:?}");
        }
        assert_eq!(display_form(" Carol@X.test\n"), Ok("Carol@X.test"));
    }
}
