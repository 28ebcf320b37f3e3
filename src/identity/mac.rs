//! The server's MAC key for values it hands to browsers and must recognise
//! later (CSRF tokens, known-device cookies). The key is random, kept in the
//! database (`server_secrets`) so every instance and every restart agrees.

use aws_lc_rs::hmac;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::identity::secret::constant_time_eq;

/// HMAC-SHA-256 under the shared server secret. Each use passes its own
/// `purpose` label so a tag made for one use never verifies for another.
pub struct MacKey(hmac::Key);

impl MacKey {
    /// A key from the stored secret (any length; 32 random bytes in practice).
    pub fn new(secret: &[u8]) -> MacKey {
        MacKey(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// A fresh random key, for an instance not yet connected to its store.
    pub fn random() -> MacKey {
        let secret = crate::identity::secret::Secret::generate();
        MacKey::new(secret.expose().as_bytes())
    }

    /// base64url (no padding, 43 characters) of HMAC(purpose ‖ 0 ‖ parts
    /// joined by 0). The separators keep `("ab", "c")` and `("a", "bc")` apart.
    pub fn tag(&self, purpose: &str, parts: &[&str]) -> String {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(purpose.as_bytes());
        for part in parts {
            ctx.update(&[0]);
            ctx.update(part.as_bytes());
        }
        URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
    }

    /// Whether `tag` is this key's tag over `purpose` and `parts`, compared in
    /// constant time.
    pub fn verify(&self, purpose: &str, parts: &[&str], tag: &str) -> bool {
        constant_time_eq(&self.tag(purpose, parts), tag)
    }
}

#[cfg(test)]
mod tests {
    use super::MacKey;

    #[test]
    fn tags_depend_on_key_purpose_and_parts() {
        let key = MacKey::new(b"k");
        let tag = key.tag("csrf", &["a", "b"]);
        assert_eq!(tag.len(), 43);
        assert!(key.verify("csrf", &["a", "b"], &tag));
        assert!(!key.verify("device", &["a", "b"], &tag));
        assert!(!key.verify("csrf", &["ab"], &tag));
        assert!(!MacKey::new(b"other").verify("csrf", &["a", "b"], &tag));
    }
}
