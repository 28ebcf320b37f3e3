//! Bounded, time-limited caches for the authentication hot path, built on
//! `moka`. Every entry expires after a fixed TTL, which is the bound on how
//! long a change in the database (a revoked key, a changed role) can go
//! unnoticed by this instance, and every cache holds at most a fixed number
//! of entries (README, "Performance"): a flood of distinct credentials evicts
//! rarely used entries (TinyLFU admission keeps the frequently used ones)
//! without scanning the map under a lock, and cannot grow memory past the
//! bound.

use std::{hash::Hash, time::Duration};

use sha2::{Digest, Sha256};

/// A cache key derived from a credential: its SHA-256 digest, so the cache
/// never holds a usable token or key and every key has the same small size.
pub type CredentialKey = [u8; 32];

/// The SHA-256 digest of `credential`, the key it is cached under.
pub fn credential_key(credential: &str) -> CredentialKey {
    Sha256::digest(credential.as_bytes()).into()
}

/// A concurrent cache of at most `max_entries` entries, each dropped `ttl`
/// after it was inserted.
pub fn bounded<K, V>(ttl: Duration, max_entries: u64) -> moka::sync::Cache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    moka::sync::Cache::builder()
        .max_capacity(max_entries)
        .time_to_live(ttl)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let cache = bounded(Duration::from_millis(20), 10);
        cache.insert("a", 1);
        assert_eq!(cache.get(&"a"), Some(1));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(cache.get(&"a"), None);
    }

    #[test]
    fn the_entry_count_stays_within_the_bound() {
        let cache = bounded(Duration::from_secs(60), 100);
        for i in 0..10_000u32 {
            cache.insert(credential_key(&i.to_string()), i);
        }
        cache.run_pending_tasks();
        assert!(cache.entry_count() <= 100, "{}", cache.entry_count());
    }

    #[test]
    fn credential_keys_are_digests() {
        assert_eq!(credential_key("t"), credential_key("t"));
        assert_ne!(credential_key("t"), credential_key("u"));
    }
}
