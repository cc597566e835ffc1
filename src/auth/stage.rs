//! Every stage of signing in is bound to the credentials that started it (issue 12, point 2).
//!
//! A session that passed the password step, holds an enrolment in progress, or is signed in,
//! began at an instant; the account's `sessions_valid_after` moves forward whenever its password,
//! MFA or status changes (password reset, MFA reset, enrolment, disabling). A stage that began
//! before that instant is over, at whatever step it stands (ASVS 5.0 7.4.3).
//!
//! Which one-time link may be used is bound the same way: to the state of the account it was
//! made for, so control of the mailbox alone never takes an account over.

use chrono::{DateTime, Utc};

use super::LinkPurpose;
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
///   choose the password that link asks for.
pub fn link_applies(purpose: LinkPurpose, creds: &Credentials) -> bool {
    let password = creds.password_hash.is_some();
    let authenticator = creds.totp_secret_enc.is_some();
    match purpose {
        LinkPurpose::Invitation => !password && !authenticator,
        LinkPurpose::MfaReenrolment => password && !authenticator,
        LinkPurpose::PasswordReset => password && authenticator,
    }
}

/// Whether an enrolment stage may offer and complete a new authenticator: the stage holds, the
/// account has its password, and no authenticator is active (enrolment never replaces one; an
/// MFA reset removes it first, and its link then starts a fresh enrolment stage).
pub fn may_enrol(creds: &Credentials, began: DateTime<Utc>) -> bool {
    stage_holds(creds, began) && creds.password_hash.is_some() && creds.totp_secret_enc.is_none()
}
