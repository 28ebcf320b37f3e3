//! API-key lookups for the MCP hot path. Key rows are cached by a digest of
//! their id for a few seconds (so a revocation anywhere takes effect within
//! the TTL), at most [`MAX_CACHED_KEYS`] of them, and the
//! `last_used_at` bookkeeping is written behind in batches instead of costing
//! an UPDATE per request.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use super::cache::{self, CredentialKey};
use crate::store::{self, ApiKey, Store};

/// The most API-key lookups (found or not) kept at once: a scan with random
/// keys evicts entries instead of growing memory.
pub const MAX_CACHED_KEYS: u64 = 20_000;

/// How often pending `last_used_at` updates are written.
const TOUCH_INTERVAL: Duration = Duration::from_secs(5);

pub struct ApiKeyCache {
    store: Store,
    /// `None` caches "no such key" too, so garbage keys cannot force a query
    /// per request.
    keys: moka::sync::Cache<CredentialKey, Option<Arc<ApiKey>>>,
    ttl: Duration,
    pending_touches: Arc<Mutex<HashMap<String, i64>>>,
}

impl ApiKeyCache {
    /// Starts the background writer of `last_used_at`; needs a Tokio runtime.
    pub fn start(store: Store, ttl: Duration) -> ApiKeyCache {
        let cache = ApiKeyCache {
            store,
            keys: cache::bounded(ttl, MAX_CACHED_KEYS),
            ttl,
            pending_touches: Arc::default(),
        };
        let store = cache.store.clone();
        let pending = Arc::clone(&cache.pending_touches);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TOUCH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                write_touches(&store, &pending).await;
            }
        });
        cache
    }

    /// How long a revoked key may keep working on this instance.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The key row (revoked or not) with this id, if any.
    pub async fn get(&self, id: &str) -> store::Result<Option<Arc<ApiKey>>> {
        let cache_key = cache::credential_key(id);
        if let Some(cached) = self.keys.get(&cache_key) {
            return Ok(cached);
        }
        let key = self.store.api_key(id).await?.map(Arc::new);
        self.keys.insert(cache_key, key.clone());
        Ok(key)
    }

    /// Drops a key this instance just revoked, so it stops here at once.
    pub fn forget(&self, id: &str) {
        self.keys.invalidate(&cache::credential_key(id));
    }

    /// Drops every cached key row (after a missed revocation, or when a
    /// user loses access everywhere): the next lookups re-read the store.
    pub fn forget_all(&self) {
        self.keys.invalidate_all();
    }

    pub fn record_use(&self, id: &str) {
        let now = store::now();
        let mut pending = self.pending_touches.lock().expect("lock");
        // Every request passes here: update in place, allocate only once per batch.
        match pending.get_mut(id) {
            Some(at) => *at = now,
            None => {
                pending.insert(id.to_owned(), now);
            }
        }
    }

    /// Writes every pending `last_used_at`; called on graceful shutdown.
    pub async fn flush(&self) {
        write_touches(&self.store, &self.pending_touches).await;
    }
}

async fn write_touches(store: &Store, pending: &Mutex<HashMap<String, i64>>) {
    let batch: Vec<(String, i64)> = std::mem::take(&mut *pending.lock().expect("lock"))
        .into_iter()
        .collect();
    if batch.is_empty() {
        return;
    }
    if let Err(e) = store.touch_api_keys(&batch).await {
        // Losing a last-used timestamp is harmless; keep no retry state.
        tracing::warn!(error = %e, keys = batch.len(), "could not record API key use");
    }
}
