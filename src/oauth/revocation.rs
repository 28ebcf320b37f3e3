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

use crate::{
    AppState,
    store::{self, Store},
};

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

/// Something that stopped being valid, as announced to every instance.
///
/// Announced with [`announce`] after the store write commits; on PostgreSQL
/// each instance's [`spawn_listener`] applies it on receipt (the announcing
/// instance too). On SQLite there is one instance per file and nothing to
/// announce. Whatever a notification misses, the `revocation_poll` refresh of
/// revoked grants and the few-second TTL of the key and membership caches
/// still catch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// A grant and every token issued from it.
    Grant(Uuid),
    /// An API key, by its id.
    ApiKey(String),
    /// A user's role in an org changed, or they left it.
    Membership { user_id: Uuid, org_id: Uuid },
    /// A user lost access everywhere (disabled or deleted): their cached
    /// memberships and API keys are dropped.
    User(Uuid),
    /// Several grants at once (a client revoked, a code replayed): every
    /// instance re-reads revoked grants now instead of at its next poll.
    Resync,
}

/// The PostgreSQL `LISTEN/NOTIFY` channel revocations travel on.
pub const CHANNEL: &str = "portcullis_revocations";

impl Revocation {
    /// `kind:id:sent_at_ms`; well below the 8000-byte NOTIFY payload limit.
    fn payload(&self) -> String {
        let sent = now_ms();
        match self {
            Revocation::Grant(id) => format!("grant:{id}:{sent}"),
            Revocation::ApiKey(id) => format!("key:{id}:{sent}"),
            Revocation::Membership { user_id, org_id } => {
                format!("member:{user_id}/{org_id}:{sent}")
            }
            Revocation::User(id) => format!("user:{id}:{sent}"),
            Revocation::Resync => format!("resync:-:{sent}"),
        }
    }

    /// The announcement and when it was sent (Unix milliseconds); `None` for
    /// a payload this version does not understand.
    fn parse(payload: &str) -> Option<(Revocation, i64)> {
        let (kind, rest) = payload.split_once(':')?;
        let (id, sent) = rest.rsplit_once(':')?;
        let sent: i64 = sent.parse().ok()?;
        let revocation = match kind {
            "grant" => Revocation::Grant(id.parse().ok()?),
            "key" => Revocation::ApiKey(id.to_owned()),
            "member" => {
                let (user, org) = id.split_once('/')?;
                Revocation::Membership {
                    user_id: user.parse().ok()?,
                    org_id: org.parse().ok()?,
                }
            }
            "user" => Revocation::User(id.parse().ok()?),
            "resync" => Revocation::Resync,
            _ => return None,
        };
        Some((revocation, sent))
    }
}

/// Tells every instance about a revocation that has just been committed.
///
/// The one call every revoking operation makes after its store write (grant,
/// API key, membership change, user disabled or deleted, client revoked),
/// before it answers, so other instances refuse the credential within the
/// notification's delivery time instead of a poll interval. A no-op on
/// SQLite. A failure is logged and otherwise ignored: the revocation itself
/// is committed, and polling and cache expiry still carry it.
pub async fn announce(store: &Store, revocation: &Revocation) {
    let Store::Postgres(pool) = store else {
        return;
    };
    let sent = sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(revocation.payload())
        .execute(pool)
        .await;
    if let Err(e) = sent {
        tracing::warn!(error = %e, ?revocation, "could not announce a revocation; other instances learn of it at their next poll");
    }
}

/// Applies a revocation to this instance's caches: [`announce`]d ones on
/// receipt, and the instance's own at once (before its announcement returns).
pub fn apply(state: &AppState, revocation: &Revocation) {
    match revocation {
        Revocation::Grant(id) => state.revoked.mark(*id),
        Revocation::ApiKey(id) => state.api_keys.forget(id),
        Revocation::Membership { user_id, org_id } => state.members.forget(*user_id, *org_id),
        // Rare enough that dropping every cached row is cheaper than an index.
        Revocation::User(_) => {
            state.members.forget_all();
            state.api_keys.forget_all();
        }
        Revocation::Resync => {}
    }
}

/// Applies a revocation here and announces it to the other instances: what a
/// request handler calls after the store write.
pub async fn revoked(state: &AppState, revocation: Revocation) {
    apply(state, &revocation);
    announce(&state.store, &revocation).await;
}

/// On PostgreSQL, listens for [`announce`]d revocations and applies each on
/// receipt. The listening connection is re-opened whenever it drops (a
/// database restart, a failover); every (re)connection is followed by a
/// resync (revoked grants re-read, key, membership and client caches
/// emptied), since notifications sent while nobody listened are lost.
pub fn spawn_listener(state: AppState) {
    let Store::Postgres(pool) = state.store.clone() else {
        return;
    };
    tokio::spawn(async move {
        let mut first = true;
        loop {
            if !first {
                // Not a busy loop while the database is down.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            first = false;
            let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for revocations; retrying");
                    continue;
                }
            };
            if let Err(e) = listener.listen(CHANNEL).await {
                tracing::warn!(error = %e, "cannot listen for revocations; retrying");
                continue;
            }
            resync(&state).await;
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => receive(&state, notification.payload()).await,
                    Ok(None) => {
                        tracing::warn!("revocation listener lost its connection; reconnecting");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "revocation listener failed; reconnecting");
                        break;
                    }
                }
            }
        }
    });
}

async fn receive(state: &AppState, payload: &str) {
    let Some((revocation, sent_ms)) = Revocation::parse(payload) else {
        tracing::warn!(payload, "ignoring an unknown revocation announcement");
        return;
    };
    if revocation == Revocation::Resync {
        resync_grants(state).await;
    } else {
        apply(state, &revocation);
    }
    let lag_ms = (now_ms() - sent_ms).max(0);
    state
        .metrics
        .revocation_lag(Duration::from_millis(lag_ms as u64));
}

async fn resync_grants(state: &AppState) {
    match state.revoked.refresh(&state.store).await {
        Ok(applied) => {
            for revoked_at in applied {
                state.metrics.revocation_applied(revoked_at);
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not re-read revoked grants"),
    }
    state.clients.invalidate_all();
}

async fn resync(state: &AppState) {
    resync_grants(state).await;
    state.api_keys.forget_all();
    state.members.forget_all();
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_read_back_as_sent() {
        let (user, org) = (Uuid::new_v4(), Uuid::new_v4());
        for revocation in [
            Revocation::Grant(Uuid::new_v4()),
            Revocation::ApiKey("k3y:with:colons".into()),
            Revocation::Membership {
                user_id: user,
                org_id: org,
            },
            Revocation::User(user),
            Revocation::Resync,
        ] {
            let (read, sent) = Revocation::parse(&revocation.payload()).expect("parses");
            assert_eq!(read, revocation);
            assert!((now_ms() - sent).abs() < 60_000);
        }
        assert_eq!(Revocation::parse("grant:not-a-uuid:1"), None);
        assert_eq!(Revocation::parse("later:x:1"), None);
        assert_eq!(Revocation::parse("garbage"), None);
    }
}
