//! Password hashing with argon2id (OWASP's minimum: 19 MiB, 2 passes).
//!
//! Hashing is CPU- and memory-heavy by design, so it runs on a dedicated pool
//! of `max_concurrent_hashes` threads, and each thread reuses one block
//! buffer for every hash instead of allocating 19 MiB per computation: a
//! login flood queues instead of starving the request handlers, and memory
//! stays at most one buffer per thread however many sign-ins fail. A thread
//! idle for [`RELEASE_AFTER`] gives its buffer back, so memory returns to its
//! idle level after a burst (README "Limits and hardening").

use std::time::Duration;

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::phc::{Output, ParamsString, Salt},
};
use rand::RngCore;
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

/// How long a hashing thread keeps its block buffer without work.
pub const RELEASE_AFTER: Duration = Duration::from_secs(10);
/// Hash requests waiting per thread before callers wait to enqueue.
const QUEUE_PER_THREAD: usize = 64;

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

#[derive(Clone)]
pub struct Passwords {
    jobs: flume::Sender<Job>,
    /// Verified against when the account does not exist, so that a wrong email
    /// takes as long as a wrong password.
    dummy_hash: std::sync::Arc<String>,
}

/// The one password policy, for the command line, the console, the reset
/// page and first-run setup (README "Accounts"): at least this many
/// characters (Unicode scalar values), long enough that an online guess is
/// hopeless under the sign-in throttle (NIST SP 800-63B §3.1.1.2 asks for at
/// least 8 and no composition rules; we ask for 12 and none either).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// At most this many characters, so one request cannot buy a long hash.
pub const MAX_PASSWORD_CHARS: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least 12 characters")]
    TooShort,
    #[error("password must be at most 1024 characters")]
    TooLong,
    #[error("password must not be the account's email address")]
    IsEmail,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

impl Passwords {
    /// Starts `threads` hashing threads (at least one); they end when the
    /// last clone of the returned value is dropped.
    pub fn new(threads: usize) -> Passwords {
        let threads = threads.max(1);
        let (jobs, queue) = flume::bounded::<Job>(threads * QUEUE_PER_THREAD);
        for n in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || hashing_thread(queue))
                .expect("spawn a hashing thread");
        }
        let dummy = {
            let (done, wait) = std::sync::mpsc::channel();
            let job: Job = Box::new(move |memory| {
                let _ = done.send(hash_with(memory, "portcullis-timing-equaliser"));
            });
            jobs.send(job).expect("hashing threads run");
            wait.recv()
                .expect("hashing thread answers")
                .expect("argon2 works")
        };
        Passwords {
            jobs,
            dummy_hash: std::sync::Arc::new(dummy),
        }
    }

    /// Runs `work` on a hashing thread with that thread's block buffer.
    async fn on_pool<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Option<T> {
        let (done, wait) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _ = done.send(work(memory));
        });
        self.jobs.send_async(job).await.ok()?;
        wait.await.ok()
    }

    /// Hashes a password that meets [`policy`]; refuses one that does not.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        policy(password, None)?;
        let password = password.to_owned();
        self.on_pool(move |memory| hash_with(memory, &password))
            .await
            .unwrap_or_else(|| Err(PasswordError::Hash("hashing threads stopped".into())))
    }

    /// Verifies `password` against `stored`, or against a dummy hash when there
    /// is no account, and answers false in that case.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let password = password.to_owned();
        let (hash, real) = match stored {
            Some(h) => (h.to_owned(), true),
            None => (self.dummy_hash.as_str().to_owned(), false),
        };
        let ok = self
            .on_pool(move |memory| verify_with(memory, &password, &hash))
            .await
            .unwrap_or(false);
        ok && real
    }
}

/// Checks `password` against the one policy: [`MIN_PASSWORD_CHARS`] to
/// [`MAX_PASSWORD_CHARS`] characters, and not the account's own email
/// (compared in its canonical form) when `email` is given.
pub fn policy(password: &str, email: Option<&str>) -> Result<(), PasswordError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordError::TooLong);
    }
    if email.is_some_and(|e| {
        crate::identity::email::canonical(e) == crate::identity::email::canonical(password)
    }) {
        return Err(PasswordError::IsEmail);
    }
    Ok(())
}

fn hashing_thread(queue: flume::Receiver<Job>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        match queue.recv_timeout(RELEASE_AFTER) {
            Ok(job) => job(&mut memory),
            Err(flume::RecvTimeoutError::Timeout) => memory = Vec::new(),
            Err(flume::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// `memory` grown (once) to what `params` needs; the same buffer serves
/// every later hash on this thread.
fn blocks<'m>(memory: &'m mut Vec<Block>, params: &Params) -> &'m mut [Block] {
    let needed = params.block_count();
    if memory.len() < needed {
        *memory = vec![Block::default(); needed];
    }
    &mut memory[..needed]
}

fn hash_with(memory: &mut Vec<Block>, password: &str) -> Result<String, PasswordError> {
    let failed = |e: &dyn std::fmt::Display| PasswordError::Hash(e.to_string());
    let params = Params::default();
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            &salt,
            &mut out,
            blocks(memory, &params),
        )
        .map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// Recomputes the hash with the stored algorithm, version and parameters
/// and compares in constant time; any malformed stored hash is a mismatch.
fn verify_with(memory: &mut Vec<Block>, password: &str, stored: &str) -> bool {
    let Ok(phc) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(phc.algorithm.as_str()) else {
        return false;
    };
    let version = match phc.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&phc) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let computed = Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut out,
        blocks(memory, &params),
    );
    computed.is_ok() && bool::from(out.ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[tokio::test]
    async fn hashes_verify_both_ways_with_the_argon2_crate() {
        let passwords = Passwords::new(2);
        let ours = passwords.hash("correct horse battery").await.unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", ours.as_str())
                .is_ok()
        );
        let theirs = argon2::PasswordHasher::<PasswordHash>::hash_password(
            &Argon2::default(),
            b"another password",
        )
        .unwrap()
        .to_string();
        assert!(passwords.verify("another password", Some(&theirs)).await);
        assert!(!passwords.verify("wrong password", Some(&theirs)).await);
        assert!(!passwords.verify("another password", Some("garbage")).await);
        assert!(!passwords.verify("another password", None).await);
    }
}
