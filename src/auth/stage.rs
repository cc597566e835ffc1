//! Every stage of signing in is bound to the credentials that started it (issue 12, point 2).
//!
//! A session that passed the password step, holds an enrolment in progress, or is signed in,
//! began at an instant; the account's `sessions_valid_after` moves forward whenever its password,
//! MFA or status changes (password reset, MFA reset, enrolment, disabling). A stage that began
//! before that instant is over, at whatever step it stands (ASVS 5.0 7.4.3).
//!
//! Which one-time link may be used is bound the same way: to the state of the account it was
//! made for, so control of the mailbox alone never takes an account over.

use chrono::{DateTime, Duration, Utc};

use crate::domain::LinkPurpose;
use crate::store::Credentials;

/// Whether a stage (or a signed-in session) that began at `began` still holds: the account is
/// enabled and its password, MFA and status have not changed since.
pub fn stage_holds(creds: &Credentials, began: DateTime<Utc>) -> bool {
    creds.user.disabled_at.is_none() && creds.sessions_valid_after.is_none_or(|changed| changed <= began)
}

/// Whether a link of `purpose` may be used on the account as it stands now:
/// - an invitation while the account has neither a password nor an authenticator (a password,
///   once chosen, is only ever changed with the authenticator's help);
/// - an MFA re-enrolment link while it has a password (asked for) and no authenticator;
/// - a password reset while it has an authenticator, so the new password still needs the
///   second factor: while an MFA re-enrolment is pending, a reset would let the mailbox alone
///   choose the password that link asks for;
/// - a passkey enrolment link while it has both (it asks for the password and a TOTP code).
pub fn link_applies(purpose: LinkPurpose, creds: &Credentials) -> bool {
    let password = creds.password_hash.is_some();
    let authenticator = creds.totp_secret_enc.is_some();
    match purpose {
        LinkPurpose::Invitation => !password && !authenticator,
        LinkPurpose::MfaReenrolment => password && !authenticator,
        LinkPurpose::PasswordReset => password && authenticator,
        LinkPurpose::PasskeyEnrolment => password && authenticator,
    }
}

/// Whether an enrolment stage may offer and complete a new authenticator: the stage holds, the
/// account has its password, and no authenticator is active (enrolment never replaces one; an
/// MFA reset removes it first, and its link then starts a fresh enrolment stage).
pub fn may_enrol(creds: &Credentials, began: DateTime<Utc>) -> bool {
    stage_holds(creds, began) && creds.password_hash.is_some() && creds.totp_secret_enc.is_none()
}

/// Second-factor failures (TOTP and recovery codes, at sign-in and enrolment) of one account,
/// from any address, after which the session must pass the password step again (issue 12).
pub const SECOND_FACTOR_FAILURES_PER_PASSWORD: u32 = 5;
/// Second-factor failures of one account after which its second factor is locked.
pub const SECOND_FACTOR_FAILURES_BEFORE_LOCK: u32 = 20;
/// How long the lock lasts, unless a WMDA admin resets the MFA first. A password reset does not
/// lift it: control of the mailbox alone must not.
pub const SECOND_FACTOR_LOCK: Duration = Duration::hours(24);

/// Whether the account's second factor is locked at `now`.
pub fn second_factor_locked(creds: &Credentials, now: DateTime<Utc>) -> bool {
    creds.mfa_locked_until.is_some_and(|until| until > now)
}

/// What a counted second-factor failure leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactorFailure {
    /// Try again in this session.
    TryAgain,
    /// The session must pass the password step again.
    PasswordAgain,
    /// The 20th failure: the second factor is locked until this instant.
    Locked(DateTime<Utc>),
}

impl SecondFactorFailure {
    /// The consequence of the account's `count`th failure in a row (the count the store keeps,
    /// 1-based; the lock sets it back to 0).
    pub fn of(count: u32, locked_until: Option<DateTime<Utc>>) -> Self {
        match locked_until {
            Some(until) if count == 0 => SecondFactorFailure::Locked(until),
            _ if count % SECOND_FACTOR_FAILURES_PER_PASSWORD == 0 => SecondFactorFailure::PasswordAgain,
            _ => SecondFactorFailure::TryAgain,
        }
    }
}
