//! Throttles failed sign-ins per account and per client address, so password
//! guessing is slow and cannot be spread across accounts from one address.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

const WINDOW: Duration = Duration::from_secs(15 * 60);
const PER_ACCOUNT: u32 = 5;
const PER_ADDRESS: u32 = 20;

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginThrottle {
    fn keys(email: &str, ip: IpAddr) -> [(String, u32); 2] {
        [
            (
                format!("account:{}", email.to_ascii_lowercase()),
                PER_ACCOUNT,
            ),
            (format!("ip:{ip}"), PER_ADDRESS),
        ]
    }

    /// How long the caller must wait before trying again, if blocked.
    pub fn blocked(&self, email: &str, ip: IpAddr) -> Option<Duration> {
        let failures = self.failures.lock().expect("lock");
        Self::keys(email, ip).into_iter().find_map(|(key, limit)| {
            failures.get(&key).and_then(|(count, since)| {
                let elapsed = since.elapsed();
                (*count >= limit && elapsed < WINDOW).then(|| WINDOW - elapsed)
            })
        })
    }

    pub fn failed(&self, email: &str, ip: IpAddr) {
        let mut failures = self.failures.lock().expect("lock");
        if failures.len() > 100_000 {
            failures.retain(|_, (_, since)| since.elapsed() < WINDOW);
        }
        for (key, _) in Self::keys(email, ip) {
            let entry = failures.entry(key).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= WINDOW {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
        }
    }

    pub fn succeeded(&self, email: &str) {
        self.failures
            .lock()
            .expect("lock")
            .remove(&format!("account:{}", email.to_ascii_lowercase()));
    }
}
