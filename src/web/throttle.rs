//! Throttles failed sign-ins so that guessing stays slow while the real user
//! still gets in (OWASP Authentication Cheat Sheet, "Login Throttling" and
//! "Account Lockout"; README "Sign-in throttling"). Three counters, each
//! with progressive delays rather than a lock-out:
//!
//! - per (account, origin): the origin is the client address, or the known
//!   device when the browser shows a valid known-device cookie for this
//!   account. A few free tries, then the wait doubles with each failure.
//! - per account, from unknown devices only: a much higher limit, so an
//!   attacker spreading guesses over many addresses is slowed too, while a
//!   device the user has signed in from before is never held back by it.
//! - per address, from unknown devices only: high enough for a corporate NAT
//!   or proxy, low enough to slow spraying one password across accounts.
//!
//! Accounts are keyed by their canonical email, so other spellings of an
//! address share its counters. Unknown emails are counted like known ones.
//!
//! With `redis_url` the counters live in Redis, shared by every instance
//! (`shared_limits`); if Redis does not answer in time, sign-in is refused
//! (fail closed): an attacker must not gain unthrottled guesses by making
//! Redis slow.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::shared_limits::{SharedLimits, ThrottleCounter};

/// How a throttle counter grows and what it costs.
#[derive(Debug, Clone, Copy)]
struct Limit {
    /// Failures allowed before any wait.
    free: u32,
    /// The wait after the first failure beyond `free`; it doubles with each
    /// further failure, up to [`MAX_DELAY`].
    base: Duration,
}

/// Per (account, origin): the guesser's own counter.
const PER_PAIR: Limit = Limit {
    free: 5,
    base: Duration::from_secs(30),
};
/// Per account, across unknown devices.
const PER_ACCOUNT: Limit = Limit {
    free: 50,
    base: Duration::from_secs(60),
};
/// Per address, across accounts, for unknown devices.
const PER_ADDRESS: Limit = Limit {
    free: 100,
    base: Duration::from_secs(30),
};
/// The longest wait any counter imposes.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// A counter with no failure for this long starts again from zero.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Entries kept before stale ones are swept.
const MAX_ENTRIES: usize = 100_000;

/// Where a sign-in attempt comes from, for the per-pair counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    Address(IpAddr),
    /// A device that signed in to this account before (its cookie id).
    KnownDevice(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Pair(String, Origin),
    Account(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
}

impl Limit {
    /// How long after the last failure the next try is allowed.
    fn delay(self, failures: u32) -> Duration {
        if failures < self.free {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free).min(16);
        self.base.saturating_mul(1 << doublings).min(MAX_DELAY)
    }
}

#[derive(Default)]
pub struct LoginThrottle {
    records: Mutex<HashMap<Key, Record>>,
    shared: Option<Arc<SharedLimits>>,
    /// The admin unlock (Unix seconds, from the store) last applied per
    /// account, so one unlock clears the counters once, not at every
    /// held-back attempt after it.
    unlocks: Mutex<HashMap<String, i64>>,
}

/// Whether a sign-in attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Held back for this long.
    Wait(Duration),
    /// The shared counters could not be read: refused (fail closed).
    Unavailable,
}

impl Key {
    /// The counter's name in Redis; lengths keep the parts unambiguous.
    fn shared_name(&self) -> String {
        match self {
            Key::Pair(account, Origin::Address(ip)) => {
                format!("pair:{}:{account}:ip:{ip}", account.len())
            }
            Key::Pair(account, Origin::KnownDevice(id)) => {
                format!("pair:{}:{account}:device:{id}", account.len())
            }
            Key::Account(account) => format!("account:{account}"),
            Key::Address(ip) => format!("address:{ip}"),
        }
    }
}

impl LoginThrottle {
    /// Counters kept in Redis, shared by every instance.
    pub fn shared(limits: Arc<SharedLimits>) -> LoginThrottle {
        LoginThrottle {
            records: Mutex::default(),
            shared: Some(limits),
            unlocks: Mutex::default(),
        }
    }

    fn counters(account: &str, origin: &Origin, ip: IpAddr) -> Vec<ThrottleCounter> {
        Self::keys(account, origin, ip)
            .into_iter()
            .map(|(key, limit)| ThrottleCounter {
                key: key.shared_name(),
                free: limit.free,
                base: limit.base,
            })
            .collect()
    }

    /// Whether the caller may try to sign in now. `account` is the canonical
    /// email; `ip` the client's address.
    pub async fn check(&self, account: &str, origin: &Origin, ip: IpAddr) -> Verdict {
        let wait = match &self.shared {
            None => self.blocked(account, origin, ip),
            Some(limits) => match limits
                .throttle_wait(&Self::counters(account, origin, ip), MAX_DELAY)
                .await
            {
                Ok(wait) => wait,
                Err(_) => return Verdict::Unavailable,
            },
        };
        match wait {
            Some(wait) => Verdict::Wait(wait),
            None => Verdict::Allowed,
        }
    }

    /// Counts a failed sign-in; `false` if the shared counters could not be
    /// written.
    pub async fn record_failure(&self, account: &str, origin: &Origin, ip: IpAddr) -> bool {
        match &self.shared {
            None => {
                self.failed(account, origin, ip);
                true
            }
            Some(limits) => limits
                .throttle_failed(&Self::counters(account, origin, ip), FORGET_AFTER)
                .await
                .is_ok(),
        }
    }

    /// Applies an admin's unlock of `account` made at `unlocked_at` (Unix
    /// seconds, any instance): the first time this instance sees it, the
    /// account's counters are cleared and true returned. Locally that is every
    /// origin's counter and the account-wide one; in Redis, the account-wide
    /// counter and this `origin`'s when given (other origins' counters stay, so an
    /// attacker's address gains nothing from the owner's unlock). The
    /// per-address counters stay: they protect other accounts too.
    pub async fn apply_unlock(
        &self,
        account: &str,
        origin: Option<&Origin>,
        unlocked_at: i64,
    ) -> bool {
        {
            let mut unlocks = self.unlocks.lock().expect("lock");
            if unlocks.get(account).is_some_and(|at| *at >= unlocked_at) {
                return false;
            }
            if unlocks.len() > MAX_ENTRIES {
                unlocks.clear();
            }
            unlocks.insert(account.to_owned(), unlocked_at);
        }
        match &self.shared {
            None => self
                .records
                .lock()
                .expect("lock")
                .retain(|key, _| match key {
                    Key::Pair(a, _) | Key::Account(a) => a != account,
                    Key::Address(_) => true,
                }),
            Some(limits) => {
                let pair = origin.map(|o| Key::Pair(account.to_owned(), o.clone()));
                for key in std::iter::once(Key::Account(account.to_owned())).chain(pair) {
                    // Best effort: a counter left behind only delays the owner.
                    let _ = limits.throttle_clear(&key.shared_name()).await;
                }
            }
        }
        true
    }

    /// A correct password from this origin: clears that origin's counter.
    pub async fn record_success(&self, account: &str, origin: &Origin) {
        match &self.shared {
            None => self.succeeded(account, origin),
            Some(limits) => {
                let key = Key::Pair(account.to_owned(), origin.clone()).shared_name();
                // A stale pair counter only delays this origin's next failure.
                let _ = limits.throttle_clear(&key).await;
            }
        }
    }

    fn keys(account: &str, origin: &Origin, ip: IpAddr) -> Vec<(Key, Limit)> {
        let mut keys = vec![(Key::Pair(account.to_owned(), origin.clone()), PER_PAIR)];
        if matches!(origin, Origin::Address(_)) {
            keys.push((Key::Account(account.to_owned()), PER_ACCOUNT));
            keys.push((Key::Address(ip), PER_ADDRESS));
        }
        keys
    }

    /// How long the caller must wait before trying again, if held back.
    /// `account` is the canonical email; `ip` the client's address.
    fn blocked(&self, account: &str, origin: &Origin, ip: IpAddr) -> Option<Duration> {
        self.blocked_at(account, origin, ip, Instant::now())
    }

    fn blocked_at(
        &self,
        account: &str,
        origin: &Origin,
        ip: IpAddr,
        now: Instant,
    ) -> Option<Duration> {
        let records = self.records.lock().expect("lock");
        Self::keys(account, origin, ip)
            .into_iter()
            .filter_map(|(key, limit)| {
                let r = records.get(&key)?;
                let until = r.last + limit.delay(r.failures);
                (until > now).then(|| until - now)
            })
            .max()
    }

    fn failed(&self, account: &str, origin: &Origin, ip: IpAddr) {
        self.failed_at(account, origin, ip, Instant::now());
    }

    fn failed_at(&self, account: &str, origin: &Origin, ip: IpAddr, now: Instant) {
        let mut records = self.records.lock().expect("lock");
        if records.len() > MAX_ENTRIES {
            records.retain(|_, r| now.duration_since(r.last) < FORGET_AFTER);
        }
        for (key, _) in Self::keys(account, origin, ip) {
            let r = records.entry(key).or_insert(Record {
                failures: 0,
                last: now,
            });
            if now.duration_since(r.last) >= FORGET_AFTER {
                r.failures = 0;
            }
            r.failures += 1;
            r.last = now;
        }
    }

    /// A correct password from this origin clears that origin's counter. The
    /// account-wide and address counters only decay: one success must not
    /// reset what an attacker elsewhere has been building up.
    fn succeeded(&self, account: &str, origin: &Origin) {
        self.records
            .lock()
            .expect("lock")
            .remove(&Key::Pair(account.to_owned(), origin.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "alice@acme.test";

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn delays_grow_after_the_free_tries_and_are_capped() {
        assert_eq!(PER_PAIR.delay(4), Duration::ZERO);
        assert_eq!(PER_PAIR.delay(5), Duration::from_secs(30));
        assert_eq!(PER_PAIR.delay(6), Duration::from_secs(60));
        assert_eq!(PER_PAIR.delay(40), MAX_DELAY);
    }

    #[test]
    fn a_guesser_is_held_back_but_not_the_user_elsewhere() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let attacker = Origin::Address(ip(1));
        for _ in 0..PER_PAIR.free {
            assert_eq!(t.blocked_at(A, &attacker, ip(1), now), None);
            t.failed_at(A, &attacker, ip(1), now);
        }
        assert!(t.blocked_at(A, &attacker, ip(1), now).is_some());
        assert_eq!(t.blocked_at(A, &Origin::Address(ip(2)), ip(2), now), None);
        // The wait runs out.
        let later = now + PER_PAIR.base;
        assert_eq!(t.blocked_at(A, &attacker, ip(1), later), None);
    }

    #[test]
    fn the_account_limit_spares_known_devices() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for n in 0..PER_ACCOUNT.free {
            let origin = Origin::Address(ip(n as u8));
            t.failed_at(A, &origin, ip(n as u8), now);
        }
        let fresh = Origin::Address(ip(200));
        assert!(t.blocked_at(A, &fresh, ip(200), now).is_some());
        let device = Origin::KnownDevice("d1".into());
        assert_eq!(t.blocked_at(A, &device, ip(200), now), None);
        // Other accounts are not affected.
        assert_eq!(t.blocked_at("bob@acme.test", &fresh, ip(200), now), None);
    }

    #[test]
    fn one_address_spraying_many_accounts_is_slowed() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let nat = Origin::Address(ip(9));
        for n in 0..PER_ADDRESS.free {
            t.failed_at(&format!("user{n}@acme.test"), &nat, ip(9), now);
        }
        assert!(t.blocked_at("new@acme.test", &nat, ip(9), now).is_some());
        let device = Origin::KnownDevice("d1".into());
        assert_eq!(t.blocked_at("new@acme.test", &device, ip(9), now), None);
    }

    #[tokio::test]
    async fn an_unlock_clears_the_account_once() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let origin = Origin::Address(ip(1));
        for _ in 0..PER_PAIR.free {
            t.failed_at(A, &origin, ip(1), now);
        }
        assert!(t.blocked_at(A, &origin, ip(1), now).is_some());
        assert!(t.apply_unlock(A, Some(&origin), 100).await);
        assert_eq!(t.blocked_at(A, &origin, ip(1), now), None);
        for _ in 0..PER_PAIR.free {
            t.failed_at(A, &origin, ip(1), now);
        }
        // The same unlock does not clear failures made after it.
        assert!(!t.apply_unlock(A, Some(&origin), 100).await);
        assert!(t.blocked_at(A, &origin, ip(1), now).is_some());
    }
}
