//! What the console's Tools page summarises: recent calls per tool.

use uuid::Uuid;

use super::{Result, Store};

/// One audited call, reduced to what the statistics need.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CallSample {
    pub tool: String,
    pub outcome: String,
    pub duration_ms: i64,
}

/// At most this many calls are read for the statistics of one page view.
const MAX_SAMPLES: i64 = 200_000;

impl Store {
    /// The org's calls since `since` (Unix seconds), newest first, capped.
    pub async fn call_samples_since(&self, org_id: Uuid, since: i64) -> Result<Vec<CallSample>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, CallSample>("SELECT tool, outcome, duration_ms FROM tool_calls WHERE org_id = $1 AND at >= $2 ORDER BY at DESC LIMIT $3")
                .bind(org_id).bind(since).bind(MAX_SAMPLES)
                .fetch_all(pool).await?
        }))
    }
}
