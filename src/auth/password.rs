//! Passwords: the policy for new ones and argon2id hashing off the async runtime.

use std::sync::Arc;

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// Fewest characters in a password (ASVS 5.0 6.2.1: at least 8; WMDA asks 12).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Most characters in a password (ASVS 5.0 6.2.9 allows at least 64).
pub const MAX_PASSWORD_CHARS: usize = 128;

/// A new password that meets the policy: 12 to 128 characters (Unicode scalar values), no
/// composition rules (ASVS 5.0 6.2.5), and not easily guessed: zxcvbn must estimate more than
/// 10^10 guesses (score 3 or 4), with the user's email and name counted as known words
/// (ASVS 5.0 6.2.4, 6.2.11).
pub struct NewPassword(SecretString);

/// Why a password is refused. Messages never repeat the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Fewer than 12 characters.
    #[error("Use at least 12 characters.")]
    TooShort,
    /// More than 128 characters.
    #[error("Use at most 128 characters.")]
    TooLong,
    /// Easy to guess; the text is zxcvbn's advice when it has some.
    #[error("This password is easy to guess. {0}")]
    EasilyGuessed(String),
    /// The confirmation differs.
    #[error("The two passwords differ.")]
    Mismatch,
}

impl NewPassword {
    /// Checks `password` (and that `confirm` repeats it) against the policy.
    ///
    /// # Errors
    /// [`PasswordError`].
    pub fn parse(password: &str, confirm: &str, user_inputs: &[&str]) -> Result<Self, PasswordError> {
        let chars = password.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(PasswordError::TooShort);
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(PasswordError::TooLong);
        }
        let estimate = zxcvbn::zxcvbn(password, user_inputs);
        if u8::from(estimate.score()) < 3 {
            let advice = estimate
                .feedback()
                .and_then(|f| f.suggestions().first().map(ToString::to_string))
                .unwrap_or_else(|| "Add more words or characters that are hard to guess.".to_owned());
            return Err(PasswordError::EasilyGuessed(advice));
        }
        if password != confirm {
            return Err(PasswordError::Mismatch);
        }
        Ok(Self(SecretString::from(password)))
    }

    /// The password, for hashing.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword([REDACTED])")
    }
}

/// Hashes and verifies passwords with argon2id at m = 12 MiB, t = 3, p = 1 ([`argon2_params`]),
/// on the blocking thread pool, with at most `max_in_flight` hashes running at once: each takes
/// 12 MiB and about 20 ms of a core, so the bound caps memory under a burst of sign-ins. Stored
/// hashes carry their own parameters, so hashes made with others (the crate's default m = 19 MiB,
/// t = 2) still verify.
///
/// Verifying for an unknown email runs the same work against a dummy hash, so the answer's
/// timing does not tell whether the account exists (ASVS 5.0 6.3.8).
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    dummy_hash: Arc<str>,
}

/// Hashing failed (the blocking pool is gone, or argon2 refused its input).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError;

/// argon2id with m = 12 MiB, t = 3, p = 1: one of the configurations the OWASP Password Storage
/// Cheat Sheet lists as equally strong as its minimum (m = 19 MiB, t = 2), chosen because it needs
/// a third less memory per hash for the same CPU time (issue 8: under 64 MB resident under
/// sign-in load; ASVS 5.0 11.4.2).
pub fn argon2_params() -> Argon2<'static> {
    let params = argon2::Params::new(12 * 1024, 3, 1, None).unwrap_or_default();
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

impl PasswordHasher {
    /// A hasher allowing `max_in_flight` concurrent hashes (at least 1). Computes the dummy hash
    /// now (about 20 ms).
    pub fn new(max_in_flight: usize) -> Self {
        let max_in_flight = max_in_flight.max(1);
        // A random password nobody knows; its hash only has to have the real parameters.
        let dummy = crate::domain::PlainSecret::generate();
        let dummy_hash =
            argon2_params().hash_password(dummy.expose().as_bytes()).map(|h| h.to_string()).unwrap_or_default();
        Self { permits: Arc::new(Semaphore::new(max_in_flight)), max_in_flight, dummy_hash: dummy_hash.into() }
    }

    /// How many hashes run right now.
    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.permits.available_permits()
    }

    /// The bound given at construction.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Hashes a new password into a PHC string (`$argon2id$v=19$m=12288,t=3,p=1$…`).
    ///
    /// # Errors
    /// [`HashError`].
    pub async fn hash(&self, password: &NewPassword) -> Result<String, HashError> {
        let password = SecretString::from(password.expose());
        self.run(move || {
            argon2_params()
                .hash_password(password.expose_secret().as_bytes())
                .map(|h| h.to_string())
                .map_err(|_| HashError)
        })
        .await?
    }

    /// Whether `password` matches `stored` (a PHC string). With no stored hash (unknown email,
    /// or an account whose invitation was never accepted) the dummy hash is verified instead and
    /// the answer is `false`.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let (hash, real) = match stored {
            Some(h) => (h.to_owned(), true),
            None => (self.dummy_hash.to_string(), false),
        };
        let password = SecretString::from(password);
        let matched = self
            .run(move || Argon2::default().verify_password(password.expose_secret().as_bytes(), hash.as_str()).is_ok())
            .await
            .unwrap_or(false);
        matched && real
    }

    /// Runs `work` on the blocking pool once a permit is free. The permit moves into the blocking
    /// task: when the request is dropped (the client went away) the hash still runs to its end,
    /// and its permit is held until then, so disconnecting clients cannot start more hashes than
    /// the bound (memory exhaustion, ASVS 5.0 2.4.1).
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, HashError> {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| HashError)?;
        tokio::task::spawn_blocking(move || {
            let _held_until_the_hash_ends = permit;
            work()
        })
        .await
        .map_err(|_| HashError)
    }
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").field("max_in_flight", &self.max_in_flight).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_counts_characters_and_refuses_guessable_passwords() {
        assert_eq!(NewPassword::parse("short", "short", &[]).unwrap_err(), PasswordError::TooShort);
        let long = "x".repeat(129);
        assert_eq!(NewPassword::parse(&long, &long, &[]).unwrap_err(), PasswordError::TooLong);
        assert!(matches!(
            NewPassword::parse("password1234", "password1234", &[]),
            Err(PasswordError::EasilyGuessed(_))
        ));
        assert!(matches!(
            NewPassword::parse("jane.doe@example.org", "jane.doe@example.org", &["jane.doe@example.org"]),
            Err(PasswordError::EasilyGuessed(_))
        ));
        let good = "correct horse battery staple";
        assert!(NewPassword::parse(good, good, &[]).is_ok());
        assert_eq!(
            NewPassword::parse(good, "correct horse battery stapler", &[]).unwrap_err(),
            PasswordError::Mismatch
        );
        // Twelve characters of any script count as twelve, whatever their bytes.
        let kanji = "東京特許許可局長今日急遽休暇";
        assert!(NewPassword::parse(kanji, kanji, &[]).is_ok());
        let eleven = "東京特許許可局長今日急";
        assert_eq!(NewPassword::parse(eleven, eleven, &[]).unwrap_err(), PasswordError::TooShort);
        assert!(!format!("{:?}", NewPassword::parse(good, good, &[]).unwrap()).contains("horse"));
    }

    #[tokio::test]
    async fn hashes_verify_and_unknown_accounts_take_the_same_path() {
        let hasher = PasswordHasher::new(2);
        let pw = NewPassword::parse("correct horse battery staple", "correct horse battery staple", &[]).unwrap();
        let hash = hasher.hash(&pw).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=12288,t=3,p=1$"), "{hash}");
        assert!(hasher.verify("correct horse battery staple", Some(&hash)).await);
        assert!(!hasher.verify("wrong horse battery staple", Some(&hash)).await);
        // No stored hash: the dummy is verified (real work), and the answer is no, even for the
        // dummy's own password (which nobody knows).
        let started = std::time::Instant::now();
        assert!(!hasher.verify("correct horse battery staple", None).await);
        assert!(started.elapsed() > std::time::Duration::from_millis(2), "the dummy verification did no work");
        assert!(hasher.dummy_hash.starts_with("$argon2id$v=19$m=12288,t=3,p=1$"));
    }

    #[tokio::test]
    async fn hashes_stored_with_the_earlier_parameters_still_verify() {
        let old = Argon2::default().hash_password(b"correct horse battery staple").unwrap().to_string();
        assert!(old.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{old}");
        let hasher = PasswordHasher::new(1);
        assert!(hasher.verify("correct horse battery staple", Some(&old)).await);
        assert!(!hasher.verify("correct horse battery stapler", Some(&old)).await);
    }

    /// Found by the load benchmark: a request dropped while its hash ran gave its permit back at
    /// once, so clients that disconnect could run any number of hashes (12 MiB each) at a time.
    #[tokio::test]
    async fn requests_dropped_mid_hash_keep_the_bound() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let hasher = PasswordHasher::new(1);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        for _ in 0..5 {
            let (h, running, peak) = (hasher.clone(), running.clone(), peak.clone());
            let request = tokio::spawn(async move {
                h.run(move || {
                    peak.fetch_max(running.fetch_add(1, SeqCst) + 1, SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(60));
                    running.fetch_sub(1, SeqCst);
                })
                .await
            });
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            request.abort();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while running.load(SeqCst) > 0 || hasher.in_flight() > 0 {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(peak.load(SeqCst), 1, "more hashes ran at once than the bound");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_than_the_bound_run_at_once() {
        let hasher = PasswordHasher::new(2);
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let h = hasher.clone();
            let peak = peak.clone();
            tasks.push(tokio::spawn(async move {
                let watcher = {
                    let h = h.clone();
                    let peak = peak.clone();
                    tokio::spawn(async move {
                        for _ in 0..200 {
                            peak.fetch_max(h.in_flight(), std::sync::atomic::Ordering::SeqCst);
                            tokio::time::sleep(std::time::Duration::from_micros(200)).await;
                        }
                    })
                };
                h.verify("anything at all here", None).await;
                watcher.abort();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
        assert!((1..=2).contains(&peak), "peak {peak}");
        assert_eq!(hasher.in_flight(), 0);
    }
}
