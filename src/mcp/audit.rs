//! The audit trail of `tools/call` (SPEC §4.8). Callers hand a record to a
//! bounded channel and return at once; one background task writes records in
//! batches, so auditing never adds a database round trip to a call's latency.
//! `flush` is awaited on graceful shutdown so nothing recorded is lost.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::auth::Identity;
use crate::store::{self, Store, ToolCall};

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
}

impl AuditLog {
    /// Starts the writer task; needs a Tokio runtime.
    pub fn start(store: Store) -> AuditLog {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(store, receiver));
        AuditLog { queue }
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
        let call = ToolCall {
            id: Uuid::new_v4(),
            at: store::now(),
            org_id: who.org_id,
            user_id: who.user_id,
            source: who.source.as_str().to_owned(),
            client_id: who.client_id.clone(),
            api_key_id: who.api_key_id.clone(),
            tool: tool.to_owned(),
            outcome: outcome.as_str().to_owned(),
            duration_ms: took.as_millis().try_into().unwrap_or(i64::MAX),
            upstream_status: upstream_status.map(i64::from),
            detail: None,
        };
        if let Err(e) = self.queue.try_send(Message::Record(Box::new(call))) {
            tracing::warn!(error = %e, tool, "audit queue full; a tool call was not recorded");
        }
    }

    /// Waits until everything recorded so far has been written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_batches(store: Store, mut receiver: mpsc::Receiver<Message>) {
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
            write(&store, &batch).await;
            batch.clear();
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

async fn write(store: &Store, batch: &[ToolCall]) {
    for attempt in 1..=3 {
        match store.insert_tool_calls(batch).await {
            Ok(()) => return,
            Err(e) if attempt < 3 => {
                tracing::warn!(error = %e, attempt, "could not write audit records; retrying");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, lost = batch.len(), "audit records could not be written");
            }
        }
    }
}
