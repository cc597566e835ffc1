//! `/login/mfa`: the TOTP step (or a recovery code) after the password step.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{second_factor_locked_page, sign_in, stage};
use crate::auth::session::{STEP_TIMEOUT, SessionAuth};
use crate::auth::sign_in::{SecondFactor, SecondFactorOutcome};
use crate::domain::ThrottleVerdict;
use crate::store::Credentials;
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::ClientIp;
use crate::web::extract::Form;
use crate::web::notice;
use crate::web::pages::{Nav, message};

#[derive(Template, WebTemplate)]
#[template(path = "auth/login_mfa.html")]
struct MfaPage {
    nav: Option<Nav>,
    error: Option<String>,
    /// "Use a passkey instead" is offered (passkeys are on and the user has one).
    passkey: bool,
    /// Only a passkey signs this user in (a WMDA admin under `PORTAL_ADMIN_MFA=passkey`).
    passkey_only: bool,
}

/// What a WMDA admin who types a code under `PORTAL_ADMIN_MFA=passkey` is told.
const PASSKEY_ONLY: &str = "WMDA admins sign in with a passkey here. No passkey yet? Open the passkey enrolment link in your mailbox, or ask another WMDA admin to send you one.";

impl MfaPage {
    async fn of(state: &AppState, creds: &Credentials, error: Option<String>) -> Result<Self, AppError> {
        let passkey = state.services.passkeys.enabled() && !state.store.list_passkeys(creds.user.id).await?.is_empty();
        let passkey_only = state.settings.passkey_required(&creds.user);
        Ok(MfaPage { nav: None, error, passkey, passkey_only })
    }
}

/// Fields of the TOTP form: `code` or `recovery_code`.
#[derive(Deserialize)]
pub struct MfaForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    recovery_code: String,
}

/// The user of a session at the TOTP step, if it is still within its time and the account is
/// still usable; otherwise the session is cleared.
pub(crate) async fn pending_user(
    state: &AppState,
    session: &Session,
) -> Result<Option<(Credentials, Option<String>)>, AppError> {
    let Some(SessionAuth::PasswordVerified { user_id, at, next }) = stage(session).await? else { return Ok(None) };
    if state.clock.now() - at > STEP_TIMEOUT {
        session.flush().await?;
        return Ok(None);
    }
    match state.store.find_credentials(user_id).await? {
        // Bound to the credentials that passed the password step (issue 12, point 2).
        Some(c) if crate::auth::stage_holds(&c, at) && c.totp_secret_enc.is_some() => Ok(Some((c, next))),
        _ => {
            session.flush().await?;
            Ok(None)
        }
    }
}

/// `GET /login/mfa`.
pub async fn show(State(state): State<AppState>, session: Session) -> Result<Response, AppError> {
    match pending_user(&state, &session).await? {
        Some((c, _)) if crate::auth::second_factor_locked(&c, state.clock.now()) => {
            second_factor_locked_page(&state, &session, false).await
        }
        Some((c, _)) => Ok(MfaPage::of(&state, &c, None).await?.into_response()),
        None => Ok(Redirect::to("/login").into_response()),
    }
}

/// `POST /login/mfa`: a TOTP code (steps -1, 0, +1; each step accepted once, atomically in the
/// database) or a single-use recovery code; then the session is signed in under a new id.
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
    Form(form): Form<MfaForm>,
) -> Result<Response, AppError> {
    let Some((creds, next)) = pending_user(&state, &session).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let now = state.clock.now();
    // Codes do not sign such an admin in: nothing is checked or counted.
    if state.settings.passkey_required(&creds.user) {
        let page = MfaPage::of(&state, &creds, Some(PASSKEY_ONLY.to_owned())).await?;
        return Ok((StatusCode::FORBIDDEN, page).into_response());
    }
    let outcome = sign_in(&state).verify_second_factor(&creds, &form.code, &form.recovery_code, ip, now).await?;
    match outcome {
        SecondFactorOutcome::Locked { mail_queued } => second_factor_locked_page(&state, &session, mail_queued).await,
        SecondFactorOutcome::Throttled { retry_after } => {
            let page = MfaPage::of(&state, &creds, Some(ThrottleVerdict::message(retry_after))).await?;
            Ok(super::with_retry_after((StatusCode::TOO_MANY_REQUESTS, page).into_response(), retry_after))
        }
        SecondFactorOutcome::SignedIn { method } => {
            let target = super::complete_sign_in(&state, &session, &creds.user, method.as_str(), next, ip).await?;
            match method {
                SecondFactor::RecoveryCode { left } => {
                    notice::redirect(&session, &target, recovery_codes_left(left)).await
                }
                SecondFactor::Totp => Ok(Redirect::to(&target).into_response()),
            }
        }
        SecondFactorOutcome::PasswordAgain => {
            session.flush().await?;
            Ok(message(
                StatusCode::OK,
                "Sign in again",
                &["Too many wrong codes: enter your password again, then a code your app shows now."],
                Some(("/login", "Sign in")),
            ))
        }
        SecondFactorOutcome::Refused { message } => {
            Ok(MfaPage::of(&state, &creds, Some(message)).await?.into_response())
        }
    }
}

/// What a user who signed in with a recovery code is told (issue 14, point 11): that it is used
/// up, how many are left, and what to do when few are.
fn recovery_codes_left(left: i64) -> String {
    let count = match left {
        0 => "You have no recovery codes left".to_owned(),
        1 => "You have 1 recovery code left".to_owned(),
        n => format!("You have {n} recovery codes left"),
    };
    let advice = if left <= 3 {
        " If your authenticator is lost, ask WMDA to reset your MFA, so you can set up a new one and get new codes."
    } else {
        ""
    };
    format!("You signed in with a recovery code; it cannot be used again. {count}.{advice}")
}
