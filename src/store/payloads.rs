//! Payload logs: what a gateway call sent and got back, for upstreams that
//! opt in (`log_payloads`). Already redacted and capped by the caller.

use std::collections::HashMap;

use uuid::Uuid;

use super::{Result, Store};

/// One call's logged arguments and result, as JSON text.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Payload {
    pub call_id: Uuid,
    pub org_id: Uuid,
    pub at: i64,
    pub arguments: String,
    pub result: String,
}

impl Store {
    pub async fn insert_payload(&self, p: &Payload) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query("INSERT INTO tool_call_payloads (call_id, org_id, at, arguments, result) VALUES ($1, $2, $3, $4, $5)")
                .bind(p.call_id).bind(p.org_id).bind(p.at).bind(&p.arguments).bind(&p.result)
                .execute(pool).await?;
        });
        Ok(())
    }

    /// The org's payloads logged between `since` and `until` (Unix seconds,
    /// inclusive), by call id: one query for a page of the audit log.
    pub async fn payloads_between(
        &self,
        org_id: Uuid,
        since: i64,
        until: i64,
    ) -> Result<HashMap<Uuid, Payload>> {
        let rows: Vec<Payload> = on_pool!(self, |pool| {
            sqlx::query_as::<_, Payload>("SELECT call_id, org_id, at, arguments, result FROM tool_call_payloads WHERE org_id = $1 AND at >= $2 AND at <= $3")
                .bind(org_id).bind(since).bind(until)
                .fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(|p| (p.call_id, p)).collect())
    }
}
