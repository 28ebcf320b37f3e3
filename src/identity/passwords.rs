//! Password hashing with argon2id. Hashing is CPU-heavy by design, so it runs
//! on the blocking pool behind a semaphore: a login flood queues instead of
//! starving the request handlers (an argon2 denial-of-service lever otherwise).

use std::sync::Arc;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// Verified against when the account does not exist, so that a wrong email
    /// takes as long as a wrong password.
    dummy_hash: Arc<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least 8 characters")]
    TooShort,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

impl Passwords {
    pub fn new(max_concurrent: usize) -> Passwords {
        let dummy = hash_blocking("portcullis-timing-equaliser").expect("argon2 works");
        Passwords {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy_hash: Arc::new(dummy),
        }
    }

    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        if password.chars().count() < 8 {
            return Err(PasswordError::TooShort);
        }
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_blocking(&password))
            .await
            .map_err(|e| PasswordError::Hash(e.to_string()))?
    }

    /// Verifies `password` against `stored`, or against a dummy hash when there
    /// is no account, and answers false in that case.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        let password = password.to_owned();
        let (hash, real) = match stored {
            Some(h) => (h.to_owned(), true),
            None => (self.dummy_hash.as_str().to_owned(), false),
        };
        let ok = tokio::task::spawn_blocking(move || {
            Argon2::default()
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok()
        })
        .await
        .unwrap_or(false);
        ok && real
    }
}

fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    PasswordHasher::<argon2::PasswordHash>::hash_password(&Argon2::default(), password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}
