//! In-memory token buckets. Limits protect this instance's capacity, so they
//! are deliberately per process: nothing about correctness depends on them.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::Mutex,
    time::{Duration, Instant},
};

pub struct TokenBuckets<K> {
    capacity: f64,
    refill_per_sec: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
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
        }
    }

    /// Takes one token, or says how long until one is available.
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
