//! Issuing one-time links: one function ([`issue`]) makes the token, its stored form (a SHA-256
//! hash, valid for the purpose's lifetime) and its email for every purpose: invitation (72
//! hours), password reset (1 hour), MFA re-enrolment (72 hours). The use cases that send one
//! are here too, except the invitation ([`super::invitation::invite_user`]).

use chrono::{DateTime, Duration, Utc};

use crate::domain::{BaseUrl, EmailAddress, LinkPurpose, LinkToken, NewEmail};
use crate::mail::views::link_email;
use crate::store::{Actor, NewLink, Store, StoreError, User};

/// Reset emails per account within [`RESET_WINDOW`]; past it the email is silently not queued
/// (counted in `link_emails_suppressed_total`), the answer unchanged (issue 12, point 3).
pub const RESETS_PER_ACCOUNT: i64 = 3;
/// The per-account window of [`RESETS_PER_ACCOUNT`].
pub const RESET_WINDOW: Duration = Duration::hours(1);

/// A link made by [`issue`], not yet stored. `Debug` leaves the link out (it is a secret).
pub struct IssuedLink {
    /// What the store keeps: the token's hash, purpose and expiry.
    pub stored: NewLink,
    /// The email that carries the link, to queue with it.
    pub email: NewEmail,
    /// The absolute link (for the command line's output only; otherwise only in the email).
    pub url: String,
}

impl std::fmt::Debug for IssuedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedLink").field("purpose", &self.stored.purpose).finish_non_exhaustive()
    }
}

/// Makes a new link for `purpose`, issued at `now` (UTC), for `recipient` (greeted as `name`).
pub fn issue(
    purpose: LinkPurpose,
    base_url: &BaseUrl,
    recipient: &EmailAddress,
    name: &str,
    now: DateTime<Utc>,
) -> IssuedLink {
    let token = LinkToken::generate();
    let url = base_url.join(&purpose.path(&token));
    let email = link_email(purpose, recipient.as_str(), name, &url);
    let stored = NewLink { token_hash: token.hash(), purpose, expires_at: now + purpose.lifetime() };
    IssuedLink { stored, email, url }
}

/// A password-reset request for `email` from `actor` at `now`: for an enabled account with a
/// password and an active authenticator ([`super::link_applies`]), stores a reset link and
/// queues its email with the audit event `auth.password_reset_requested`, unless the account had
/// [`RESETS_PER_ACCOUNT`] reset emails in the last [`RESET_WINDOW`]. Returns whether an email
/// was queued; an unknown email queues nothing, the same way.
///
/// # Errors
/// [`StoreError`].
pub async fn request_password_reset(
    store: &Store,
    base_url: &BaseUrl,
    email: &EmailAddress,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Some(creds) = store.find_credentials_by_email(email).await? else { return Ok(false) };
    if creds.user.disabled_at.is_some() || !super::link_applies(LinkPurpose::PasswordReset, &creds) {
        return Ok(false);
    }
    let link = issue(LinkPurpose::PasswordReset, base_url, email, &creds.user.display_name, now);
    let limit = Some((RESETS_PER_ACCOUNT, now - RESET_WINDOW));
    let queued = store.issue_link_within(&creds.user, &link.stored, &link.email, actor, now, limit).await?;
    if !queued {
        metrics::counter!("link_emails_suppressed_total", "email" => "password_reset").increment(1);
    }
    Ok(queued)
}

/// An admin's MFA reset of `user`: removes the authenticator and recovery codes, ends the
/// user's sessions, and queues a re-enrolment link (which asks for the current password, so a
/// password alone never enrols a new authenticator), with the audit event `user.mfa_reset`.
///
/// # Errors
/// [`StoreError`].
pub async fn reset_mfa(
    store: &Store,
    base_url: &BaseUrl,
    user: &User,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let link = issue(LinkPurpose::MfaReenrolment, base_url, &user.email, &user.display_name, now);
    store.reset_mfa(user, &link.stored, &link.email, actor, now).await
}
