//! Limits shared by every instance through Redis (`redis_url`): the per-tool
//! rate limits, the DCR per-address limit and the sign-in throttles count
//! in Redis instead of in each process, so N instances allow the configured
//! budget, not N times it.
//!
//! Each decision is one Lua script, atomic on the Redis server and one round
//! trip, with Redis's own clock (`TIME`) so instances with skewed clocks
//! agree. No request waits on Redis longer than `redis_timeout_ms`; a decision
//! Redis does not answer in time is [`Unavailable`], and the caller fails
//! open (rate limits) or closed (sign-in throttles).

use std::{
    sync::atomic::{AtomicI64, Ordering},
    time::Duration,
};

use redis::{
    Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

/// How often an unreachable Redis is logged (it is counted every time).
const LOG_EVERY_SECS: i64 = 10;

/// Redis did not answer in time, or answered with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

/// One counter of the sign-in throttle: its Redis key suffix, the failures
/// allowed before any wait, and the first wait after them (doubling with
/// each further failure).
#[derive(Debug, Clone)]
pub struct ThrottleCounter {
    pub key: String,
    pub free: u32,
    pub base: Duration,
}

pub struct SharedLimits {
    connection: ConnectionManager,
    /// The longest a request waits for Redis.
    timeout: Duration,
    prefix: String,
    bucket: Script,
    throttle_wait: Script,
    throttle_fail: Script,
    /// Unix seconds of the last "Redis unavailable" log line.
    last_logged: AtomicI64,
}

/// A token bucket in a hash `{tokens, at}` (`at` in Redis milliseconds).
/// ARGV: capacity, refill per second. Returns 0 when a token was taken, else
/// the milliseconds until one is available.
const BUCKET: &str = r"
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = capacity
  at = now
end
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate / 1000)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * 1000 / rate) + 1000)
return wait
";

/// The wait in milliseconds imposed by the most restrictive of KEYS (hashes
/// `{failures, last}`). ARGV: per key `free`, `base_ms`; then `max_ms`.
const THROTTLE_WAIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max_ms = tonumber(ARGV[#KEYS * 2 + 1])
local wait = 0
for i, key in ipairs(KEYS) do
  local state = redis.call('HMGET', key, 'failures', 'last')
  local failures = tonumber(state[1])
  local last = tonumber(state[2])
  local free = tonumber(ARGV[i * 2 - 1])
  local base = tonumber(ARGV[i * 2])
  if failures ~= nil and last ~= nil and failures >= free then
    local delay = math.min(base * 2 ^ math.min(failures - free, 16), max_ms)
    wait = math.max(wait, last + delay - now)
  end
end
return math.ceil(wait)
";

/// Counts one failure on every KEY; a counter idle for `forget_ms` starts
/// again from zero. ARGV: `forget_ms`.
const THROTTLE_FAIL: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local forget = tonumber(ARGV[1])
for _, key in ipairs(KEYS) do
  local state = redis.call('HMGET', key, 'failures', 'last')
  local failures = tonumber(state[1]) or 0
  local last = tonumber(state[2]) or now
  if now - last >= forget then
    failures = 0
  end
  redis.call('HSET', key, 'failures', failures + 1, 'last', tostring(now))
  redis.call('PEXPIRE', key, forget)
end
return 0
";

impl SharedLimits {
    /// A lazily connecting, self-reconnecting client of `url`; never waits
    /// for Redis, so an instance starts (and serves) while Redis is down.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> redis::RedisResult<SharedLimits> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        Ok(SharedLimits {
            connection: client.get_connection_manager_lazy(config)?,
            timeout,
            prefix: prefix.to_owned(),
            bucket: Script::new(BUCKET),
            throttle_wait: Script::new(THROTTLE_WAIT),
            throttle_fail: Script::new(THROTTLE_FAIL),
            last_logged: AtomicI64::new(0),
        })
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}:{kind}:{name}", self.prefix)
    }

    /// Runs `call` within the timeout; any failure is [`Unavailable`] and
    /// logged at most every few seconds.
    async fn bounded<T, F>(&self, what: &str, call: F) -> Result<T, Unavailable>
    where
        F: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let error = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {:?}", self.timeout),
        };
        let now = crate::store::now();
        let last = self.last_logged.load(Ordering::Relaxed);
        if now - last >= LOG_EVERY_SECS
            && self
                .last_logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(error, what, "Redis unavailable for a shared limit");
        }
        Err(Unavailable)
    }

    /// Takes one token from the bucket `space`/`name` holding `capacity`
    /// tokens refilled at `refill_per_sec`: `Ok(Err(wait))` when it is empty.
    pub async fn take(
        &self,
        space: &str,
        name: &str,
        capacity: f64,
        refill_per_sec: f64,
    ) -> Result<Result<(), Duration>, Unavailable> {
        let mut connection = self.connection.clone();
        let key = self.key(space, name);
        let mut invocation = self.bucket.key(key);
        invocation.arg(capacity).arg(refill_per_sec);
        let wait_ms: u64 = self
            .bounded("rate limit", invocation.invoke_async(&mut connection))
            .await?;
        Ok(match wait_ms {
            0 => Ok(()),
            ms => Err(Duration::from_millis(ms)),
        })
    }

    /// The wait the sign-in throttle imposes now, if any.
    pub async fn throttle_wait(
        &self,
        counters: &[ThrottleCounter],
        max: Duration,
    ) -> Result<Option<Duration>, Unavailable> {
        let mut connection = self.connection.clone();
        let mut invocation = self.throttle_wait.prepare_invoke();
        for counter in counters {
            invocation.key(self.key("throttle", &counter.key));
        }
        for counter in counters {
            invocation
                .arg(counter.free)
                .arg(counter.base.as_millis() as u64);
        }
        invocation.arg(max.as_millis() as u64);
        let wait_ms: i64 = self
            .bounded("sign-in throttle", invocation.invoke_async(&mut connection))
            .await?;
        Ok((wait_ms > 0).then(|| Duration::from_millis(wait_ms as u64)))
    }

    /// Counts a failed sign-in on each counter.
    pub async fn throttle_failed(
        &self,
        counters: &[ThrottleCounter],
        forget_after: Duration,
    ) -> Result<(), Unavailable> {
        let mut connection = self.connection.clone();
        let mut invocation = self.throttle_fail.prepare_invoke();
        for counter in counters {
            invocation.key(self.key("throttle", &counter.key));
        }
        invocation.arg(forget_after.as_millis() as u64);
        let _: i64 = self
            .bounded("sign-in throttle", invocation.invoke_async(&mut connection))
            .await?;
        Ok(())
    }

    /// Clears one counter (a successful sign-in from that origin).
    pub async fn throttle_clear(&self, key: &str) -> Result<(), Unavailable> {
        let mut connection = self.connection.clone();
        let key = self.key("throttle", key);
        let _: i64 = self
            .bounded(
                "sign-in throttle",
                redis::cmd("DEL").arg(key).query_async(&mut connection),
            )
            .await?;
        Ok(())
    }

    /// `PING`, for `/readyz`.
    pub async fn ping(&self) -> Result<(), Unavailable> {
        let mut connection = self.connection.clone();
        let _: String = self
            .bounded("readiness", redis::cmd("PING").query_async(&mut connection))
            .await?;
        Ok(())
    }
}
