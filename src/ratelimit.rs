//! Token buckets: in memory, per process, by default; shared by every
//! instance through Redis when `redis_url` is set (`shared_limits`), so the
//! configured budget holds for the whole deployment. Nothing about
//! correctness depends on them: when Redis does not answer in time, the
//! request is let through (fail open), logged and counted.

use std::{
    collections::HashMap,
    fmt::Display,
    hash::Hash,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{metrics::Metrics, shared_limits::SharedLimits};

pub struct TokenBuckets<K> {
    capacity: f64,
    refill_per_sec: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
    shared: Option<Shared>,
}

/// Where a shared bucket lives and how an unanswered decision is counted.
struct Shared {
    limits: Arc<SharedLimits>,
    /// The bucket family in Redis and the `limit` label of the metrics.
    space: &'static str,
    metrics: Arc<Metrics>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl<K: Hash + Eq + Clone> TokenBuckets<K> {
    /// `burst` calls at once, refilled at `per` / `period`.
    pub fn new(burst: u32, per: u32, period: Duration) -> Self {
        TokenBuckets {
            capacity: burst as f64,
            refill_per_sec: per as f64 / period.as_secs_f64(),
            buckets: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// Keeps these buckets in Redis, under `space`, instead of in memory.
    pub fn shared(
        mut self,
        limits: Arc<SharedLimits>,
        space: &'static str,
        metrics: Arc<Metrics>,
    ) -> Self {
        self.shared = Some(Shared {
            limits,
            space,
            metrics,
        });
        self
    }

    /// Takes one token, or says how long until one is available: from Redis
    /// when shared (letting the request through if Redis does not answer
    /// within its timeout), else from this process's buckets.
    pub async fn acquire(&self, key: &K) -> Result<(), Duration>
    where
        K: Display,
    {
        let Some(shared) = &self.shared else {
            return self.take(key);
        };
        match shared
            .limits
            .take(
                shared.space,
                &key.to_string(),
                self.capacity,
                self.refill_per_sec,
            )
            .await
        {
            Ok(decision) => decision,
            Err(_unavailable) => {
                shared.metrics.redis_unavailable(shared.space);
                Ok(())
            }
        }
    }

    /// Takes one token from this process's buckets, or says how long until
    /// one is available.
    pub fn take(&self, key: &K) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("lock");
        if buckets.len() > 100_000 {
            // Full buckets carry no information; dropping them bounds memory.
            let capacity = self.capacity;
            let rate = self.refill_per_sec;
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < capacity
            });
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.refill_per_sec).min(self.capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.refill_per_sec;
            Err(Duration::from_secs_f64(wait))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empties_then_reports_wait() {
        let buckets = TokenBuckets::new(2, 60, Duration::from_secs(60));
        assert!(buckets.take(&"a").is_ok());
        assert!(buckets.take(&"a").is_ok());
        let wait = buckets.take(&"a").unwrap_err();
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO);
        assert!(buckets.take(&"b").is_ok());
    }
}
