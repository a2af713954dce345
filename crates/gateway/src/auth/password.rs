//! argon2id password hashes, computed off the async runtime, at most one per
//! core at a time.
//!
//! Each hash takes ~19 MiB and a core for a while: without a bound, a burst
//! of wrong logins costs memory in proportion to its size (200 concurrent
//! ones raised the server's memory high-water mark by 3.8 GiB). Hashes run
//! on [`permits`] threads of their own, one per core; requests beyond them
//! wait their turn in a queue (which the per-account throttle and the rate
//! limit keep short). Threads of their own rather than a semaphore over
//! tokio's blocking pool: the allocator keeps a freed 19 MiB block in the
//! arena of the thread that freed it, so hashes spread over the pool's many
//! threads still grew the memory by ~300 MiB; on a few threads the blocks
//! are reused.

use crate::error::ApiError;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError, mpsc};

/// Passwords shorter than this are refused.
pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 256;

/// How many hashes may run at once: the cores.
pub fn permits() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads' queue.
static HASHERS: LazyLock<Mutex<mpsc::Sender<Job>>> = LazyLock::new(|| {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = std::sync::Arc::new(Mutex::new(rx));
    for i in 0..permits() {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || {
            loop {
                let job = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                match job {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a password-hashing thread");
        }
    }
    Mutex::new(tx)
});

/// Hashes running now, and the most that ever ran at once (exported as
/// `jamuna_password_hashing_peak`, so the bound can be seen from outside).
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Runs `work` (an argon2 computation) on a hashing thread when one is free.
async fn bounded<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        let peak = PEAK.fetch_max(now, Ordering::SeqCst).max(now);
        metrics::gauge!("jamuna_password_hashing_peak").set(peak as f64);
        let out = work();
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        let _ = done.send(out);
    });
    HASHERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .send(job)
        .map_err(|_| ApiError::Internal("the password-hashing threads are gone".into()))?;
    result.await.map_err(ApiError::internal)
}

/// The most hashes that ran at once since the process started.
pub fn peak() -> usize {
    PEAK.load(Ordering::SeqCst)
}

pub fn check_strength(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(ApiError::BadRequest(format!("a password needs at least {MIN_PASSWORD_CHARS} characters")));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(ApiError::BadRequest(format!("a password has at most {MAX_PASSWORD_CHARS} characters")));
    }
    Ok(())
}

/// The PHC string (`$argon2id$v=19$…`) of a password, with a random salt.
pub async fn hash(password: String) -> Result<String, ApiError> {
    bounded(move || {
        Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| ApiError::Internal(e.to_string().into()))
    })
    .await?
}

/// Does `password` match the PHC string `hash`?
pub async fn verify(password: String, hash: String) -> bool {
    bounded(move || Argon2::default().verify_password(password.as_bytes(), hash.as_str()).is_ok()).await.unwrap_or(false)
}

/// A hash to verify against when the user does not exist, so that a wrong
/// e-mail address takes as long as a wrong password.
pub fn dummy_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0dTq8nkyYcNzpwTqTBmUlR0w6RlWrnXm43hxBRxGvB0"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_are_salted() {
        let h1 = hash("correct horse battery".into()).await.unwrap();
        let h2 = hash("correct horse battery".into()).await.unwrap();
        assert!(h1.starts_with("$argon2id$"));
        assert_ne!(h1, h2, "salted");
        assert!(verify("correct horse battery".into(), h1.clone()).await);
        assert!(!verify("wrong horse battery".into(), h1).await);
        assert!(!verify("anything".into(), "not a hash".into()).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_hashes_run_at_once_than_there_are_cores() {
        let tasks: Vec<_> = (0..permits() * 4 + 2).map(|_| tokio::spawn(verify("wrong".into(), dummy_hash().into()))).collect();
        for t in tasks {
            assert!(!t.await.expect("joined"));
        }
        assert!((1..=permits()).contains(&peak()), "peak {} with {} permits", peak(), permits());
    }

    #[test]
    fn weak_passwords_are_refused() {
        assert!(check_strength("short").is_err());
        assert!(check_strength("long enough pass").is_ok());
    }
}
