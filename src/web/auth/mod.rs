//! Sign-in pages: password, TOTP, enrolment, invitations, password reset, sign-out.

pub mod enrol;
pub mod invite;
pub mod login;
pub mod mfa;
pub mod passkey;
pub mod passkey_setup;
pub mod password;

use tower_sessions::Session;

use super::error::AppError;
use super::session::AUTH_KEY;
use crate::auth::session::SessionAuth;

/// The session's sign-in stage, if any.
pub(crate) async fn stage(session: &Session) -> Result<Option<SessionAuth>, AppError> {
    Ok(session.get::<SessionAuth>(AUTH_KEY).await?)
}

/// Moves the session to `auth` under a new session id (ASVS 5.0 7.2.4: a new id at each
/// authentication step).
pub(crate) async fn advance(session: &Session, auth: SessionAuth) -> Result<(), AppError> {
    session.cycle_id().await?;
    session.insert(AUTH_KEY, auth).await?;
    Ok(())
}

/// The link behind `token` when it is usable for one of `purposes`, its account is enabled, and
/// the account still stands where the link's purpose needs it ([`crate::auth::link_applies`]);
/// otherwise `None`, and the attempt counts against the client's address in the link window
/// (guessing tokens is throttled, apart from sign-in failures).
pub(crate) async fn usable_link(
    state: &super::AppState,
    token: &str,
    purposes: &[crate::domain::LinkPurpose],
    ip: std::net::IpAddr,
) -> Result<Option<(crate::store::LinkRecord, crate::store::Credentials)>, AppError> {
    let now = state.clock.now();
    let found = match crate::domain::LinkToken::from_link(token) {
        Some(t) => state.store.find_link(&t.hash()).await?,
        None => None,
    };
    if let Some(link) = found.filter(|l| l.is_usable(now) && purposes.contains(&l.purpose)) {
        if let Some(creds) = state.store.find_credentials(link.user_id).await? {
            if creds.user.disabled_at.is_none() && crate::auth::link_applies(link.purpose, &creds) {
                return Ok(Some((link, creds)));
            }
        }
    }
    state.services.throttle.record_link_failure(ip, now);
    Ok(None)
}

/// Adds `Retry-After` (whole seconds, rounded up, at least 1; RFC 9110 10.2.3) to a 429 page, as
/// the per-address refusals carry it.
pub(crate) fn with_retry_after(
    mut response: axum::response::Response,
    retry_after: chrono::Duration,
) -> axum::response::Response {
    let seconds = crate::domain::failure_window::ThrottleVerdict::retry_after_seconds(retry_after);
    if let Ok(value) = axum::http::HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(axum::http::header::RETRY_AFTER, value);
    }
    response
}

/// Ends a sign-in whose last factor was just verified (a TOTP or recovery code, or a passkey):
/// the session is signed in under a new id (ASVS 5.0 7.2.4), `auth.sign_in` is recorded with
/// `method`, and the path to go to is returned: `next` when it is still a safe local path
/// (checked again here), else the user's home.
pub(crate) async fn complete_sign_in(
    state: &super::AppState,
    session: &Session,
    user: &crate::store::User,
    method: &'static str,
    next: Option<String>,
    ip: std::net::IpAddr,
) -> Result<String, AppError> {
    let now = state.clock.now();
    advance(session, SessionAuth::signed_in(user.id, now, method == "passkey")).await?;
    sign_in(state).record_sign_in(user, method, ip, now).await?;
    Ok(crate::domain::NextPath::parse_optional(next.as_deref())
        .map_or_else(|| super::pages::home_path(user.role).to_owned(), |n| n.to_string()))
}

/// The email telling `user` of a change `what` (one sentence) made from `ip` at `now` (UTC),
/// with links to their account page and the password reset (DESIGN.md section 11: every change
/// on `/account` is emailed).
pub(crate) fn account_changed(
    state: &super::AppState,
    user: &crate::store::User,
    ip: std::net::IpAddr,
    what: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::domain::NewEmail {
    crate::mail::views::account_changed_email(
        user.email.as_str(),
        &user.display_name,
        what,
        &ip.to_string(),
        now,
        &state.settings.base_url.join("/account"),
        &state.settings.base_url.join("/password/forgot"),
    )
}

/// The sign-in use cases over this portal's services.
pub(crate) fn sign_in(state: &super::AppState) -> crate::auth::sign_in::SignIn<'_> {
    let services = &state.services;
    crate::auth::sign_in::SignIn {
        store: &state.store,
        hasher: &services.hasher,
        throttle: &services.throttle,
        vault: &services.totp_vault,
        recovery_key: &services.recovery_key,
        base_url: &state.settings.base_url,
        support_email: &state.settings.support_email,
    }
}

/// The page of a session whose account's second factor is locked; the session is cleared, and
/// the sender woken when the lock email was queued now.
pub(crate) async fn second_factor_locked_page(
    state: &super::AppState,
    session: &Session,
    mail_queued: bool,
) -> Result<axum::response::Response, AppError> {
    if mail_queued {
        state.services.mailer.wake();
    }
    session.flush().await?;
    Ok(super::pages::message(
        axum::http::StatusCode::FORBIDDEN,
        "Sign-in locked",
        &[
            "Too many wrong codes were entered for this account, so signing in with it is locked for 24 hours.",
            "If that was not you, someone knows your password: reset it. To sign in sooner, ask WMDA to reset your MFA.",
        ],
        Some(("/password/forgot", "Reset your password")),
    ))
}
