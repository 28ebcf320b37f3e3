//! API keys for clients that skip OAuth: `{prefix}_{key_id}_{secret}`, where
//! the id finds the row in one lookup and the 256-bit secret is stored hashed.

use super::secret::{self, Secret};

pub struct MintedKey {
    pub id: String,
    pub secret_hash: String,
    /// The full key, shown once.
    pub key: Secret,
}

pub fn mint(prefix: &str) -> MintedKey {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let secret = Secret::generate();
    let key = Secret::from_presented(format!("{prefix}_{id}_{}", secret.expose()));
    MintedKey {
        id,
        secret_hash: secret.hash(),
        key,
    }
}

/// Splits a presented key into its id and secret; `None` if it is not one of ours.
pub fn parse<'a>(prefix: &str, presented: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = presented.strip_prefix(prefix)?.strip_prefix('_')?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) && secret.len() == 43)
        .then_some((id, secret))
}

pub fn verify(presented_secret: &str, stored_hash: &str) -> bool {
    secret::verify(presented_secret, stored_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_parse_and_verify() {
        let minted = mint("pcl");
        let (id, secret) = parse("pcl", minted.key.expose()).unwrap();
        assert_eq!(id, minted.id);
        assert!(verify(secret, &minted.secret_hash));
        assert!(parse("pcl", "pcl_short_x").is_none());
        assert!(parse("other", minted.key.expose()).is_none());
    }
}
