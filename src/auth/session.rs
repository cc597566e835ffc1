//! What a session holds while a user signs in, and the rule for whether a signed-in session
//! still stands (ASVS 5.0 7.3.1, 7.3.2; DESIGN.md section 4): within its idle and absolute
//! limits, the account enabled and enrolled, and nothing ended its sessions since.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::{Store, StoreError, User};

/// A signed-in session ends after this long without a request (ASVS 5.0 7.3.1).
pub const IDLE_TIMEOUT: Duration = Duration::minutes(30);
/// A signed-in session ends this long after sign-in, whatever happens (ASVS 5.0 7.3.2).
pub const ABSOLUTE_TIMEOUT: Duration = Duration::hours(12);
/// The TOTP step, or enrolment, must follow the password step within this time.
pub const STEP_TIMEOUT: Duration = Duration::minutes(10);
/// `last_seen` is written at most this often (tower-sessions only extends a session on writes).
pub const LAST_SEEN_GRANULARITY: Duration = Duration::minutes(1);
/// Where a session stands in signing in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum SessionAuth {
    /// The password was right; the TOTP step is next. Reaches only `/login/mfa`.
    PasswordVerified {
        /// The user.
        user_id: Uuid,
        /// When the password was verified.
        at: DateTime<Utc>,
        /// Where to go after the TOTP step (checked again then).
        next: Option<String>,
    },
    /// An invitation or re-enrolment link was just used. Reaches only `/mfa/setup`.
    Enrolling {
        /// The user.
        user_id: Uuid,
        /// When the link was used.
        at: DateTime<Utc>,
    },
    /// Password and second factor done (or a passkey alone, which counts as both).
    SignedIn {
        /// The user.
        user_id: Uuid,
        /// When the second step (or enrolment) completed: the absolute limit counts from here.
        authenticated_at: DateTime<Utc>,
        /// The latest request, to within [`LAST_SEEN_GRANULARITY`].
        last_seen: DateTime<Utc>,
        /// When a factor was last checked in this session, if later than `authenticated_at`:
        /// the password or a passkey a change on `/account` asked for (issue 19). Within
        /// [`FRESH_FACTOR`] of it a change needs no other.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        factor_at: Option<DateTime<Utc>>,
        /// When this session was bound anew to the account's credentials, if it was: a password
        /// change made in it ends every session but this one (issue 19). The account's
        /// `sessions_valid_after` is compared with this instead of `authenticated_at`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bound_at: Option<DateTime<Utc>>,
        /// The sign-in used a passkey (at the second step, alone, or registering the first one):
        /// under `PORTAL_ADMIN_MFA=passkey` a WMDA admin's session needs it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        passkey: bool,
    },
    /// A WMDA admin under `PORTAL_ADMIN_MFA=passkey` who has no passkey, in a session begun with
    /// a link from their mailbox and their TOTP code (issue 19): reaches only `/passkey/setup`,
    /// where registering a first passkey signs them in.
    PasskeyEnrolment {
        /// The user.
        user_id: Uuid,
        /// When the link (or the TOTP enrolment) was used.
        at: DateTime<Utc>,
    },
}

/// A change on `/account` needs the current password, or a second factor used within this
/// time (DESIGN.md section 11; ASVS 5.0 6.2.3, 7.5.1).
pub const FRESH_FACTOR: Duration = Duration::minutes(5);

impl SessionAuth {
    /// A session signed in at `now` (UTC); `passkey`: with a passkey.
    pub fn signed_in(user_id: Uuid, now: DateTime<Utc>, passkey: bool) -> Self {
        SessionAuth::SignedIn {
            user_id,
            authenticated_at: now,
            last_seen: now,
            factor_at: None,
            bound_at: None,
            passkey,
        }
    }

    /// Whether this is a sign-in made with a passkey.
    pub fn used_passkey(&self) -> bool {
        matches!(self, SessionAuth::SignedIn { passkey: true, .. })
    }

    /// Whether a signed-in session used a factor within [`FRESH_FACTOR`] of `now`.
    pub fn factor_is_fresh(&self, now: DateTime<Utc>) -> bool {
        match self {
            SessionAuth::SignedIn { authenticated_at, factor_at, .. } => {
                now - factor_at.unwrap_or(*authenticated_at).max(*authenticated_at) <= FRESH_FACTOR
            }
            _ => false,
        }
    }

    /// The same signed-in session with a factor checked at `now`; other stages unchanged.
    #[must_use]
    pub fn with_factor_at(mut self, now: DateTime<Utc>) -> Self {
        if let SessionAuth::SignedIn { factor_at, .. } = &mut self {
            *factor_at = Some(now);
        }
        self
    }

    /// The same signed-in session bound anew to the account at `now` (after a password change
    /// made in it), a factor checked then too; other stages unchanged.
    #[must_use]
    pub fn with_bound_at(mut self, now: DateTime<Utc>) -> Self {
        if let SessionAuth::SignedIn { bound_at, factor_at, .. } = &mut self {
            *bound_at = Some(now);
            *factor_at = Some(now);
        }
        self
    }
}

/// Whether a session's sign-in still stands, and what to write back.
#[derive(Debug, Clone)]
pub enum SessionCheck {
    /// The session holds no completed sign-in (nothing to end).
    NotSignedIn,
    /// It did, but it has ended: idle or absolute limit passed, the account is gone, disabled,
    /// not enrolled, or its sessions were ended since. The session is to be emptied.
    Ended,
    /// It stands, for this user.
    Valid {
        /// The user.
        user: User,
        /// The sign-in with `last_seen` moved to now, when it is at least
        /// [`LAST_SEEN_GRANULARITY`] old: to be written back.
        refreshed: Option<SessionAuth>,
    },
}

/// Checks a session's sign-in at `now` (UTC) against the limits and the account as stored.
///
/// # Errors
/// [`StoreError`] when the account cannot be read.
pub async fn check_signed_in(
    store: &Store,
    auth: Option<SessionAuth>,
    now: DateTime<Utc>,
) -> Result<SessionCheck, StoreError> {
    let Some(SessionAuth::SignedIn { user_id, authenticated_at, last_seen, factor_at, bound_at, passkey }) = auth
    else {
        return Ok(SessionCheck::NotSignedIn);
    };
    if now - last_seen > IDLE_TIMEOUT || now - authenticated_at > ABSOLUTE_TIMEOUT {
        return Ok(SessionCheck::Ended);
    }
    let Some(creds) = store.find_credentials(user_id).await? else {
        return Ok(SessionCheck::Ended);
    };
    if !super::stage_holds(&creds, bound_at.unwrap_or(authenticated_at).max(authenticated_at))
        || creds.totp_secret_enc.is_none()
    {
        return Ok(SessionCheck::Ended);
    }
    let refreshed = (now - last_seen >= LAST_SEEN_GRANULARITY).then_some(SessionAuth::SignedIn {
        user_id,
        authenticated_at,
        last_seen: now,
        factor_at,
        bound_at,
        passkey,
    });
    Ok(SessionCheck::Valid { user: creds.user, refreshed })
}
