//! Who a caller is within an org, as needed on every MCP request: their email
//! (for `whoami`) and their current role (the ceiling on their scopes). Served
//! from a short-lived cache so a request costs no database round trip, while a
//! demotion or removal from the org still takes effect within the TTL.

use std::time::Duration;

use uuid::Uuid;

use super::cache;
use crate::{
    identity::scope::Role,
    store::{self, Store},
};

/// The most (user, org) memberships kept at once.
pub const MAX_CACHED_MEMBERSHIPS: u64 = 20_000;

#[derive(Debug, Clone)]
pub struct Membership {
    pub email: String,
    pub role: Role,
    /// The account is disabled: every credential of it is refused.
    pub disabled: bool,
}

pub struct MemberCache {
    /// `None` remembers that the user is not a member, so a removed user's
    /// still-valid token does not cost a query per request either.
    entries: moka::sync::Cache<(Uuid, Uuid), Option<Membership>>,
}

impl MemberCache {
    pub fn new(ttl: Duration) -> MemberCache {
        MemberCache {
            entries: cache::bounded(ttl, MAX_CACHED_MEMBERSHIPS),
        }
    }

    pub async fn get(
        &self,
        store: &Store,
        user_id: Uuid,
        org_id: Uuid,
    ) -> store::Result<Option<Membership>> {
        if let Some(cached) = self.entries.get(&(user_id, org_id)) {
            return Ok(cached);
        }
        let membership = store.caller(user_id, org_id).await?.map(|c| Membership {
            email: c.email,
            role: c.role,
            disabled: c.disabled,
        });
        self.entries.insert((user_id, org_id), membership.clone());
        Ok(membership)
    }

    /// Drops one membership, so a role change or removal applies at once.
    pub fn forget(&self, user_id: Uuid, org_id: Uuid) {
        self.entries.invalidate(&(user_id, org_id));
    }

    /// Drops every cached membership (after a missed revocation, or when a
    /// user loses access everywhere).
    pub fn forget_all(&self) {
        self.entries.invalidate_all();
    }
}
