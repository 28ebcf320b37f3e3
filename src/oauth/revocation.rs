//! Which grants are revoked, as seen by this instance. Verifying an access
//! token must not cost a database round trip, so each instance keeps the set
//! of recently revoked grants in memory and refreshes it from the store every
//! `revocation_poll`; revocations made here are visible at once, those made on
//! other instances within one poll interval.

use std::{
    collections::HashMap,
    sync::{Mutex, RwLock},
    time::Duration,
};

use uuid::Uuid;

use crate::store::{self, Store};

pub struct RevokedGrants {
    revoked: RwLock<HashMap<Uuid, i64>>,
    /// Revocations are read with overlap so none is missed at the boundary.
    last_poll: Mutex<i64>,
    /// Only grants revoked within this window can still have live access tokens.
    window: Duration,
}

impl RevokedGrants {
    pub fn new(access_token_ttl: Duration) -> RevokedGrants {
        RevokedGrants {
            revoked: RwLock::new(HashMap::new()),
            last_poll: Mutex::new(0),
            window: access_token_ttl + Duration::from_secs(120),
        }
    }

    pub fn is_revoked(&self, grant_id: Uuid) -> bool {
        self.revoked.read().expect("lock").contains_key(&grant_id)
    }

    pub fn mark(&self, grant_id: Uuid) {
        self.revoked
            .write()
            .expect("lock")
            .insert(grant_id, store::now());
    }

    /// Reads revocations made since the last poll (on any instance) and
    /// forgets those too old to matter; returns the revocation times (Unix
    /// seconds) of grants this instance had not known were revoked.
    pub async fn refresh(&self, store: &Store) -> store::Result<Vec<i64>> {
        let now = store::now();
        let since = {
            let last = *self.last_poll.lock().expect("lock");
            if last == 0 {
                now - self.window.as_secs() as i64
            } else {
                last - 5
            }
        };
        let rows = store.revoked_grants_since(since).await?;
        let horizon = now - self.window.as_secs() as i64;
        let mut revoked = self.revoked.write().expect("lock");
        let mut applied = Vec::new();
        for (grant, at) in rows {
            if revoked.insert(grant, at).is_none() {
                applied.push(at);
            }
        }
        revoked.retain(|_, at| *at >= horizon);
        *self.last_poll.lock().expect("lock") = now;
        Ok(applied)
    }
}
