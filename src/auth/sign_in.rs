//! Signing in (issue 3; ASVS 5.0 6.3): the password step and the second factor (a TOTP code or
//! a recovery code), as functions over plain inputs that return an outcome. Each records its own
//! audit events, throttle counts and metrics; the caller (the sign-in pages, later the API) keeps
//! the session and renders.
//!
//! The rules: an unknown email, a wrong password and a disabled account take the same path (the
//! hash is always checked) and get the same answer ([`WRONG_CREDENTIALS`], ASVS 5.0 6.3.8); a
//! password alone never enrols an authenticator; a TOTP step (RFC 6238, steps -1 to +1) is
//! accepted once, atomically in the database (RFC 6238 5.2); a recovery code once; per (email,
//! address) 5 failures in a row block for 30 s, doubling to 15 minutes ([`Throttle`]); per
//! account 5 second-factor failures in a row send the session back to the password step and 20
//! lock the second factor for 24 hours with an email to the user (issue 12).

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::recovery::RECOVERY_CODES;
use super::stage::{SECOND_FACTOR_FAILURES_BEFORE_LOCK, SECOND_FACTOR_LOCK};
use super::{PasswordHasher, RecoveryCode, RecoveryCodeKey, SecondFactorFailure, Throttle, TotpCode, TotpVault};
use crate::domain::{BaseUrl, EmailAddress, ThrottleVerdict};
use crate::mail::views::second_factor_locked_email;
use crate::store::{Actor, AuditAction, Credentials, Store, StoreError, User};

/// The one message for an unknown email, a wrong password and a disabled account.
pub const WRONG_CREDENTIALS: &str = "The email address or password is wrong.";

/// What the sign-in use cases work with, borrowed from the services.
#[derive(Debug, Clone, Copy)]
pub struct SignIn<'a> {
    /// The database.
    pub store: &'a Store,
    /// argon2id, bounded.
    pub hasher: &'a PasswordHasher,
    /// The failed-attempt throttles.
    pub throttle: &'a Throttle,
    /// Opens the stored TOTP seeds.
    pub vault: &'a TotpVault,
    /// Hashes recovery codes.
    pub recovery_key: &'a RecoveryCodeKey,
    /// For the password-reset link in the lock email.
    pub base_url: &'a BaseUrl,
    /// Named in the lock email.
    pub support_email: &'a str,
}

/// Why a sign-in step could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored TOTP seed does not open under the master key.
    #[error("cannot decrypt the TOTP seed of user {0}")]
    Seed(Uuid),
}

/// What the password step found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordOutcome {
    /// The (email, address) pair is blocked for this long; nothing was checked.
    Throttled {
        /// Until the next attempt is allowed.
        retry_after: Duration,
    },
    /// Right password, enabled and enrolled account: the second factor is next.
    Verified {
        /// The user.
        user_id: Uuid,
    },
    /// Right password, but the account has no authenticator, and a password alone never enrols
    /// one: a new invitation link is needed.
    NoAuthenticator,
    /// Refused: [`WRONG_CREDENTIALS`], or the block this failure started.
    Refused {
        /// The message to show.
        message: String,
    },
}

/// The second factor a sign-in used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    /// A TOTP code.
    Totp,
    /// A recovery code, now used up; `left` codes remain (the user is told, issue 14, point 11).
    RecoveryCode {
        /// Unused recovery codes after this one.
        left: i64,
    },
}

impl SecondFactor {
    /// The name recorded in `auth.sign_in`: `totp` or `recovery_code`.
    pub fn as_str(self) -> &'static str {
        match self {
            SecondFactor::Totp => "totp",
            SecondFactor::RecoveryCode { .. } => "recovery_code",
        }
    }
}

/// What the second-factor step found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecondFactorOutcome {
    /// The account's second factor is locked (before this attempt, or by it); the session is
    /// to be ended. `mail_queued`: the lock email was queued now (wake the sender).
    Locked {
        /// The lock email waits in the outbox.
        mail_queued: bool,
    },
    /// The (email, address) pair is blocked for this long; nothing was checked.
    Throttled {
        /// Until the next attempt is allowed.
        retry_after: Duration,
    },
    /// The second factor is right: once the session is signed in, [`SignIn::record_sign_in`]
    /// records it.
    SignedIn {
        /// The factor that was used.
        method: SecondFactor,
    },
    /// Too many wrong codes in a row: the password step again.
    PasswordAgain,
    /// Refused; the message to show.
    Refused {
        /// What to fix, or the block's wait.
        message: String,
    },
}

/// What an enrolment attempt found.
#[derive(Debug)]
pub enum EnrolOutcome {
    /// The account's second factor is locked (before, or by this attempt); `mail_queued`: the
    /// lock email was queued now.
    Locked {
        /// The lock email waits in the outbox.
        mail_queued: bool,
    },
    /// Refused (a wrong code, or the pair's block); the message to show on the setup page.
    Refused {
        /// What to fix, or the block's wait.
        message: String,
    },
    /// The account changed since the link was used (or the step was taken): nothing enrolled.
    Gone,
    /// Enrolled: the recovery codes, to show once (only their hashes are stored).
    Enrolled {
        /// The new recovery codes.
        codes: Vec<RecoveryCode>,
    },
}

impl SignIn<'_> {
    /// The password step for the typed `email` and `password` from `ip` at `now` (UTC).
    ///
    /// # Errors
    /// [`SignInError::Store`].
    pub async fn verify_password(
        &self,
        email: &str,
        password: &str,
        ip: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<PasswordOutcome, SignInError> {
        // The throttle key is the typed email, normalised, whether or not an account has it.
        let key = email.trim().to_lowercase();
        let actor = Actor { user_id: None, label: key.chars().take(254).collect(), ip: Some(ip.to_string()) };
        // Held until the answer: an attempt in progress counts as a failure (bursts).
        let attempt = self.throttle.begin_pair(self.store, &key, ip, now).await;
        if let Err(ThrottleVerdict::Blocked { retry_after }) = attempt {
            metrics::counter!("sign_in_throttled_total", "scope" => "account").increment(1);
            if self.throttle.refused(Some(&key), ip, now) {
                // One audit event per block, not one per refused request.
                self.store.record_audit_event(&actor.event(AuditAction::Throttled, now)).await?;
            }
            return Ok(PasswordOutcome::Throttled { retry_after });
        }
        let creds = match EmailAddress::parse(email) {
            Ok(email) => self.store.find_credentials_by_email(&email).await?,
            Err(_) => None,
        };
        let stored_hash = creds.as_ref().and_then(|c| c.password_hash.as_deref());
        let verified = self.hasher.verify(password, stored_hash).await;
        match creds {
            Some(c) if verified && c.user.disabled_at.is_none() => Ok(if c.totp_secret_enc.is_none() {
                PasswordOutcome::NoAuthenticator
            } else {
                PasswordOutcome::Verified { user_id: c.user.id }
            }),
            other => {
                metrics::counter!("sign_ins_total", "result" => "failure", "step" => "password").increment(1);
                let reason = match &other {
                    None => "unknown_email",
                    Some(c) if c.user.disabled_at.is_some() => "disabled",
                    Some(c) if c.password_hash.is_none() => "no_password",
                    Some(_) => "wrong_password",
                };
                let mut event = actor
                    .event(AuditAction::SignInFailed, now)
                    .with_details(serde_json::json!({ "step": "password", "reason": reason }));
                if let Some(c) = &other {
                    event = event.on_user(&c.user);
                    event.actor_user_id = Some(c.user.id);
                }
                self.store.record_audit_event(&event).await?;
                let message = match self.throttle.record_failure(Some(&key), ip, now) {
                    Some(block) => ThrottleVerdict::message(block),
                    None => WRONG_CREDENTIALS.to_owned(),
                };
                Ok(PasswordOutcome::Refused { message })
            }
        }
    }

    /// The second factor of `creds` (an account past the password step): the typed TOTP `code`,
    /// or else the typed `recovery_code`, from `ip` at `now` (UTC).
    ///
    /// # Errors
    /// [`SignInError`].
    pub async fn verify_second_factor(
        &self,
        creds: &Credentials,
        code: &str,
        recovery_code: &str,
        ip: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<SecondFactorOutcome, SignInError> {
        if super::second_factor_locked(creds, now) {
            return Ok(SecondFactorOutcome::Locked { mail_queued: false });
        }
        let user = &creds.user;
        let key = user.email.as_str();
        let actor = Actor::user(user, ip);
        // Held until the answer: an attempt in progress counts as a failure (bursts).
        let _attempt = match self.begin_account_attempt(user, (&actor, ip), now).await? {
            Ok(attempt) => attempt,
            Err(retry_after) => return Ok(SecondFactorOutcome::Throttled { retry_after }),
        };
        let checked = if code.trim().is_empty() {
            self.check_recovery_code(user, &actor, recovery_code, now).await?
        } else {
            self.check_totp(creds, &actor, code, now).await?
        };
        let (reason, message) = match checked {
            Ok(method) => {
                self.throttle.record_success(self.store, key, ip).await;
                return Ok(SecondFactorOutcome::SignedIn { method });
            }
            Err(refused) => refused,
        };
        metrics::counter!("sign_ins_total", "result" => "failure", "step" => "mfa").increment(1);
        let event = actor
            .event(AuditAction::SignInFailed, now)
            .on_user(user)
            .with_details(serde_json::json!({ "step": "mfa", "reason": reason }));
        self.store.record_audit_event(&event).await?;
        let block = self.throttle.record_failure(Some(key), ip, now);
        // A guess (not an empty or malformed entry) counts against the account, from any address.
        if matches!(reason, "wrong_code" | "replayed_code" | "wrong_recovery_code") {
            match self.second_factor_failed(user, &actor, now).await? {
                (SecondFactorFailure::Locked(_), mail_queued) => {
                    return Ok(SecondFactorOutcome::Locked { mail_queued });
                }
                (SecondFactorFailure::PasswordAgain, _) => return Ok(SecondFactorOutcome::PasswordAgain),
                (SecondFactorFailure::TryAgain, _) => {}
            }
        }
        Ok(SecondFactorOutcome::Refused { message: block.map_or(message, ThrottleVerdict::message) })
    }

    /// Checks the current `password` of a signed-in account (`creds`) before a change on
    /// `/account` (issue 19; ASVS 5.0 6.2.3): the same throttle as the password step, per
    /// (email, address); a wrong password is recorded as `auth.sign_in_failed` with step
    /// `account`. `Ok(Err(message))` when refused.
    ///
    /// # Errors
    /// [`SignInError::Store`].
    pub async fn confirm_password(
        &self,
        creds: &Credentials,
        password: &str,
        ip: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<Result<(), String>, SignInError> {
        let user = &creds.user;
        let key = user.email.as_str();
        let actor = Actor::user(user, ip);
        let _attempt = match self.begin_account_attempt(user, (&actor, ip), now).await? {
            Ok(attempt) => attempt,
            Err(retry_after) => return Ok(Err(ThrottleVerdict::message(retry_after))),
        };
        if self.hasher.verify(password, creds.password_hash.as_deref()).await {
            return Ok(Ok(()));
        }
        let event = actor
            .event(AuditAction::SignInFailed, now)
            .on_user(user)
            .with_details(serde_json::json!({ "step": "account", "reason": "wrong_password" }));
        self.store.record_audit_event(&event).await?;
        Ok(Err(match self.throttle.record_failure(Some(key), ip, now) {
            Some(block) => ThrottleVerdict::message(block),
            None => "The current password is wrong.".to_owned(),
        }))
    }

    /// Begins an attempt on a known account by `actor` from `ip`: the pair throttle's
    /// attempt, held until the answer (an attempt in progress counts as a failure), or, while
    /// the pair is blocked, the wait, with one `auth.throttled` event per block.
    async fn begin_account_attempt(
        &self,
        user: &User,
        (actor, ip): (&Actor, IpAddr),
        now: DateTime<Utc>,
    ) -> Result<Result<super::throttle::PairAttempt<'_>, Duration>, SignInError> {
        let key = user.email.as_str();
        match self.throttle.begin_pair(self.store, key, ip, now).await {
            Ok(attempt) => Ok(Ok(attempt)),
            Err(verdict) => {
                let retry_after = match verdict {
                    ThrottleVerdict::Blocked { retry_after } => retry_after,
                    ThrottleVerdict::Allowed => Duration::seconds(1),
                };
                metrics::counter!("sign_in_throttled_total", "scope" => "account").increment(1);
                if self.throttle.refused(Some(key), ip, now) {
                    self.store.record_audit_event(&actor.event(AuditAction::Throttled, now).on_user(user)).await?;
                }
                Ok(Err(retry_after))
            }
        }
    }

    /// Records a completed sign-in of `user` by `method` from `ip` at `now` (UTC), once the
    /// session is signed in: the audit event `auth.sign_in` and the success metric.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn record_sign_in(
        &self,
        user: &User,
        method: &'static str,
        ip: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let actor = Actor::user(user, ip);
        let event =
            actor.event(AuditAction::SignIn, now).on_user(user).with_details(serde_json::json!({ "method": method }));
        self.store.record_audit_event(&event).await?;
        metrics::counter!("sign_ins_total", "result" => "success", "step" => "mfa").increment(1);
        Ok(())
    }

    /// A TOTP code: `Ok(Ok(SecondFactor::Totp))` when right and not used before, else the refusal's reason
    /// and message.
    async fn check_totp(
        &self,
        creds: &Credentials,
        actor: &Actor,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<SecondFactor, (&'static str, String)>, SignInError> {
        let user = &creds.user;
        let code = match TotpCode::parse(code) {
            Ok(code) => code,
            Err(e) => return Ok(Err(("malformed_code", e.to_string()))),
        };
        let stored = creds.totp_secret_enc.as_deref().unwrap_or_default();
        let seed = self.vault.open(stored).map_err(|_| SignInError::Seed(user.id))?;
        let Some(step) = seed.matching_step(&code, now) else {
            let text = "The code is wrong. Check the time on your phone, and enter the code your app shows now.";
            return Ok(Err(("wrong_code", text.into())));
        };
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        if self.store.accept_totp_step(user.id, step).await? {
            return Ok(Ok(SecondFactor::Totp));
        }
        // RFC 6238 5.2: a code is accepted once.
        self.store.record_audit_event(&actor.event(AuditAction::TotpReplayRefused, now).on_user(user)).await?;
        Ok(Err(("replayed_code", "This code has already been used. Wait for the next code and enter it.".into())))
    }

    /// A recovery code (or nothing typed at all): `Ok(Ok(SecondFactor::RecoveryCode { left }))`
    /// when right and unused (it is used up now), else the refusal's reason and message.
    async fn check_recovery_code(
        &self,
        user: &User,
        actor: &Actor,
        recovery_code: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<SecondFactor, (&'static str, String)>, SignInError> {
        if recovery_code.trim().is_empty() {
            return Ok(Err((
                "empty",
                "Enter the 6-digit code from your authenticator app, or a recovery code.".into(),
            )));
        }
        let code = match RecoveryCode::parse(recovery_code) {
            Ok(code) => code,
            Err(e) => return Ok(Err(("malformed_recovery_code", e.to_string()))),
        };
        if !self.store.use_recovery_code(user.id, &self.recovery_key.hash(&code), now).await? {
            return Ok(Err(("wrong_recovery_code", "This recovery code is wrong or was used before.".into())));
        }
        let left = self.store.unused_recovery_codes(user.id).await?;
        let event = actor
            .event(AuditAction::RecoveryCodeUsed, now)
            .on_user(user)
            .with_details(serde_json::json!({ "codes_left": left }));
        self.store.record_audit_event(&event).await?;
        Ok(Ok(SecondFactor::RecoveryCode { left }))
    }

    /// Counts a second-factor failure of `user` (from any address, at sign-in or enrolment) and
    /// says what follows: after 5 the password step again, after 20 a 24-hour lock with an
    /// email to the user, queued with the audit event `auth.mfa_locked`; the flag says whether
    /// that email was queued now.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn second_factor_failed(
        &self,
        user: &User,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(SecondFactorFailure, bool), StoreError> {
        let until = now + SECOND_FACTOR_LOCK;
        let reset = self.base_url.join("/password/forgot");
        let mail =
            second_factor_locked_email(user.email.as_str(), &user.display_name, until, &reset, self.support_email);
        let (count, locked) = self
            .store
            .record_second_factor_failure((user, actor), SECOND_FACTOR_FAILURES_BEFORE_LOCK, until, &mail, now)
            .await?;
        if locked.is_some() {
            metrics::counter!("sign_in_throttled_total", "scope" => "second_factor_lock").increment(1);
        }
        Ok((SecondFactorFailure::of(count, locked), locked.is_some()))
    }

    /// Enrols the authenticator of `seed` (the one offered to `creds`, an account at the
    /// enrolment stage) with the typed `code` from `ip` at `now` (UTC): the code's step is stored
    /// as used, [`RECOVERY_CODES`] recovery codes are made, and `auth.mfa_enrolled` is recorded.
    /// A wrong code counts toward the account's lock (20) but does not end the enrolment at 5:
    /// its link is used up, and the code of a seed on screen is no guess.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn enrol(
        &self,
        creds: &Credentials,
        seed: &super::TotpSeed,
        code: &str,
        ip: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<EnrolOutcome, StoreError> {
        if super::second_factor_locked(creds, now) {
            return Ok(EnrolOutcome::Locked { mail_queued: false });
        }
        let user = &creds.user;
        let key = user.email.as_str();
        let actor = Actor::user(user, ip);
        // Held until the answer: an attempt in progress counts as a failure (bursts).
        let attempt = self.throttle.begin_pair(self.store, key, ip, now).await;
        if let Err(ThrottleVerdict::Blocked { retry_after }) = attempt {
            self.throttle.refused(Some(key), ip, now);
            return Ok(EnrolOutcome::Refused { message: ThrottleVerdict::message(retry_after) });
        }
        let step = TotpCode::parse(code).ok().and_then(|code| seed.matching_step(&code, now));
        let Some(step) = step else {
            if let (SecondFactorFailure::Locked(_), mail_queued) = self.second_factor_failed(user, &actor, now).await? {
                return Ok(EnrolOutcome::Locked { mail_queued });
            }
            let message = match self.throttle.record_failure(Some(key), ip, now) {
                Some(block) => ThrottleVerdict::message(block),
                None => "The code is wrong. Enter the 6-digit code your app shows now for this account.".to_owned(),
            };
            return Ok(EnrolOutcome::Refused { message });
        };
        let codes: Vec<RecoveryCode> = (0..RECOVERY_CODES).map(|_| RecoveryCode::generate()).collect();
        let hashes: Vec<Vec<u8>> = codes.iter().map(|c| self.recovery_key.hash(c)).collect();
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        if !self.store.complete_totp_enrolment((user, &actor), step, &hashes, now).await? {
            return Ok(EnrolOutcome::Gone);
        }
        self.throttle.record_success(self.store, key, ip).await;
        Ok(EnrolOutcome::Enrolled { codes })
    }
}
