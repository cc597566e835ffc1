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

/// Why a passkey enrolment link cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyLinkError {
    /// The account is disabled, has no password and authenticator yet (an invitation or MFA
    /// re-enrolment link leads to the passkey then), or has a passkey already (the link is for a
    /// first one).
    #[error(
        "{0} cannot use a passkey enrolment link: the account is disabled, has not set up its password and authenticator, or has a passkey already"
    )]
    NotApplicable(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A passkey enrolment link for `user` (issue 19; DESIGN.md section 11: an admin without a
/// passkey registers one only in a session begun with a fresh link from their mailbox): stored,
/// earlier unused ones retired, its email queued with the audit event `passkey.link_sent`. The
/// link (for the command line's output) is returned.
///
/// # Errors
/// [`PasskeyLinkError`].
pub async fn send_passkey_link(
    store: &Store,
    base_url: &BaseUrl,
    user: &User,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<IssuedLink, PasskeyLinkError> {
    let creds = store.find_credentials(user.id).await?.ok_or(StoreError::NotFound)?;
    // For a first passkey only: with one, the account signs in with it and adds others on
    // /account (DESIGN.md section 11: "an admin without one").
    if creds.user.disabled_at.is_some()
        || !super::link_applies(LinkPurpose::PasskeyEnrolment, &creds)
        || !store.list_passkeys(user.id).await?.is_empty()
    {
        return Err(PasskeyLinkError::NotApplicable(user.email.to_string()));
    }
    let link = issue(LinkPurpose::PasskeyEnrolment, base_url, &user.email, &user.display_name, now);
    store.issue_link(user, &link.stored, &link.email, actor, now).await?;
    Ok(link)
}

/// Under `PORTAL_ADMIN_MFA=passkey`, at start-up: emails a passkey enrolment link to each
/// enabled, enrolled WMDA admin who has no passkey and no unused link of the kind (so turning
/// the mode on reaches every admin once, and a restart sends nothing new). Returns how many.
///
/// # Errors
/// [`StoreError`].
pub async fn send_passkey_links(store: &Store, base_url: &BaseUrl, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let admins = store.admins_needing_passkey_link(now).await?;
    for admin in &admins {
        match send_passkey_link(store, base_url, admin, &Actor::system(), now).await {
            Ok(_) | Err(PasskeyLinkError::NotApplicable(_)) => {}
            Err(PasskeyLinkError::Store(e)) => return Err(e),
        }
    }
    Ok(admins.len())
}
