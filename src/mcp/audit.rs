//! The audit trail of `tools/call` (SPEC §4.8). Callers hand a record to a
//! bounded channel and return at once; one background task writes records in
//! batches, so auditing never adds a database round trip to a call's latency.
//! `flush` is awaited on graceful shutdown so nothing recorded is lost.
//!
//! Calls of destructive tools are the exception: [`AuditLog::write_now`]
//! stores their record before the answer is sent, so a crash cannot lose the
//! trace of a deletion that was reported as done (README "Limits and
//! hardening" gives the write-behind loss window for the rest).
//!
//! A batch is one statement. When the database refuses it, the records are
//! written one by one so that one bad record never costs the others; the
//! ones still refused are logged and counted ([`AuditLog::lost`]).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::auth::Identity;
use crate::store::{self, Store, StoreError, ToolCall};

/// Records waiting to be written; beyond this the writer is far behind the
/// database and new records are dropped with a warning rather than slowing
/// every caller down.
const QUEUE: usize = 65_536;
const MAX_BATCH: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Error,
    /// The tool is outside the caller's scopes.
    Denied,
    RateLimited,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Denied => "denied",
            Outcome::RateLimited => "rate_limited",
        }
    }
}

enum Message {
    Record(Box<ToolCall>),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Message>,
    store: Store,
    lost: Arc<AtomicU64>,
    /// Counts every recorded call in the metrics; tool names outside the
    /// current tool set are counted as `unknown` so labels stay bounded.
    metrics: Option<(Arc<crate::metrics::Metrics>, Arc<super::server::Tools>)>,
}

impl AuditLog {
    /// Starts the writer task; needs a Tokio runtime.
    pub fn start(store: Store) -> AuditLog {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let lost = Arc::new(AtomicU64::new(0));
        tokio::spawn(write_batches(store.clone(), receiver, Arc::clone(&lost)));
        AuditLog {
            queue,
            store,
            lost,
            metrics: None,
        }
    }

    /// The same log, also counting each call in `metrics`.
    pub fn observed_by(
        mut self,
        metrics: Arc<crate::metrics::Metrics>,
        tools: Arc<super::server::Tools>,
    ) -> AuditLog {
        self.metrics = Some((metrics, tools));
        self
    }

    fn observe(&self, call: &ToolCall) {
        if let Some((metrics, tools)) = &self.metrics {
            let known = tools.current().get(&call.tool).is_some();
            metrics.tool_call(
                if known { &call.tool } else { "unknown" },
                &call.source,
                &call.outcome,
                Duration::from_millis(call.duration_ms.max(0) as u64),
            );
        }
    }

    /// Records that could not be stored since start: refused by the database
    /// even alone, or dropped because the queue was full.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Queues a record; `upstream_status` is the HTTP status of a gateway call.
    pub fn record(
        &self,
        who: &Identity,
        tool: &str,
        outcome: Outcome,
        took: Duration,
        upstream_status: Option<u16>,
    ) {
        self.record_call(entry(who, tool, outcome, took, upstream_status));
    }

    /// Queues a record built with [`entry`] (write-behind).
    pub fn record_call(&self, call: ToolCall) {
        self.observe(&call);
        if let Err(e) = self.queue.try_send(Message::Record(Box::new(call))) {
            self.lost.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "audit queue full; a tool call was not recorded");
        }
    }

    /// Stores a record before returning, for calls whose trace must survive a
    /// crash (destructive tools). If the store cannot take it now, the record
    /// is queued for the background writer instead and a warning is logged.
    pub async fn write_now(&self, call: ToolCall) {
        self.observe(&call);
        let calls = [call];
        for attempt in 1..=2 {
            match self.store.insert_tool_calls(&calls).await {
                Ok(()) => return,
                Err(e) if attempt < 2 && !refused(&e) => {
                    tracing::warn!(error = %e, "could not write an audit record; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, tool = %calls[0].tool, "audit record of a destructive call queued instead of written");
                    break;
                }
            }
        }
        let [call] = calls;
        self.record_call(call);
    }

    /// Waits until everything recorded so far has been written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// A record of one call by `who`; `upstream_status` is the HTTP status of a
/// gateway call. Set `detail` on the result to say what the call acted on.
pub fn entry(
    who: &Identity,
    tool: &str,
    outcome: Outcome,
    took: Duration,
    upstream_status: Option<u16>,
) -> ToolCall {
    ToolCall {
        id: Uuid::new_v4(),
        at: store::now(),
        org_id: who.org_id,
        user_id: who.user_id,
        source: who.source.as_str().to_owned(),
        client_id: who.client_id.clone(),
        api_key_id: who.api_key_id.clone(),
        // Capped here too, so a 60 KB name does not sit in the queue.
        tool: store::storable(tool, store::AUDIT_TEXT_CHARS),
        outcome: outcome.as_str().to_owned(),
        duration_ms: took.as_millis().try_into().unwrap_or(i64::MAX),
        upstream_status: upstream_status.map(i64::from),
        detail: None,
    }
}

async fn write_batches(store: Store, mut receiver: mpsc::Receiver<Message>, lost: Arc<AtomicU64>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut waiting = Vec::new();
    while let Some(first) = receiver.recv().await {
        let mut next = Some(first);
        // Take whatever else is already queued: under load this makes batches
        // large, when idle a single record is written at once.
        while let Some(message) = next {
            match message {
                Message::Record(call) => batch.push(*call),
                Message::Flush(done) => waiting.push(done),
            }
            next = if batch.len() < MAX_BATCH {
                receiver.try_recv().ok()
            } else {
                None
            };
        }
        if !batch.is_empty() {
            let failed = write(&store, &batch).await;
            lost.fetch_add(failed, Ordering::Relaxed);
            batch.clear();
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Whether the database refused the statement itself (a constraint, a value
/// it cannot hold), as opposed to being unreachable or busy.
fn refused(e: &StoreError) -> bool {
    matches!(e, StoreError::Database(sqlx::Error::Database(_)))
}

/// Writes `batch`, retrying while the database is unreachable; a batch it
/// refuses is written record by record. Returns how many records were lost.
async fn write(store: &Store, batch: &[ToolCall]) -> u64 {
    for attempt in 1..=3 {
        match store.insert_tool_calls(batch).await {
            Ok(()) => return 0,
            Err(e) if refused(&e) => {
                tracing::warn!(error = %e, records = batch.len(), "audit batch refused; writing its records one by one");
                return write_one_by_one(store, batch).await;
            }
            Err(e) if attempt < 3 => {
                tracing::warn!(error = %e, attempt, "could not write audit records; retrying");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, lost = batch.len(), "audit records could not be written");
            }
        }
    }
    batch.len() as u64
}

async fn write_one_by_one(store: &Store, batch: &[ToolCall]) -> u64 {
    let mut lost = 0;
    for call in batch {
        if let Err(e) = store.insert_tool_calls(std::slice::from_ref(call)).await {
            lost += 1;
            tracing::error!(error = %e, id = %call.id, org_id = %call.org_id, tool = %call.tool, "audit record refused by the database; skipped");
        }
    }
    lost
}
