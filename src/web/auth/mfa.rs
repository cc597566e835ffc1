//! `/login/mfa`: the TOTP step (or a recovery code) after the password step.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{advance, second_factor_failed, second_factor_locked_page, stage};
use crate::auth::session::{STEP_TIMEOUT, SessionAuth};
use crate::auth::{RecoveryCode, SecondFactorFailure, TotpCode};
use crate::domain::NextPath;
use crate::domain::ThrottleVerdict;
use crate::store::AuditAction;
use crate::store::{Actor, Credentials};
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::ClientIp;
use crate::web::extract::Form;
use crate::web::pages::{Nav, home_path, message};

#[derive(Template, WebTemplate)]
#[template(path = "auth/login_mfa.html")]
struct MfaPage {
    nav: Option<Nav>,
    error: Option<String>,
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
async fn pending_user(state: &AppState, session: &Session) -> Result<Option<(Credentials, Option<String>)>, AppError> {
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
            second_factor_locked_page(&session).await
        }
        Some(_) => Ok(MfaPage { nav: None, error: None }.into_response()),
        None => Ok(Redirect::to("/login").into_response()),
    }
}

enum Outcome {
    Accepted(&'static str),
    Refused(&'static str, String),
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
    if crate::auth::second_factor_locked(&creds, now) {
        return second_factor_locked_page(&session).await;
    }
    let user = &creds.user;
    let key = user.email.as_str();
    let throttle = &state.services.throttle;
    let actor = Actor { user_id: Some(user.id), label: key.to_owned(), ip: Some(ip.to_string()) };
    // Held until the answer: an attempt in progress counts as a failure (bursts).
    let attempt = throttle.begin_pair(&state.store, key, ip, now).await;
    if let Err(ThrottleVerdict::Blocked { retry_after }) = attempt {
        metrics::counter!("sign_in_throttled_total", "scope" => "account").increment(1);
        if throttle.refused(Some(key), ip, now) {
            state.store.record_audit_event(&actor.event(AuditAction::Throttled, now).on_user(user)).await?;
        }
        let page = MfaPage { nav: None, error: Some(ThrottleVerdict::message(retry_after)) };
        return Ok(super::with_retry_after((StatusCode::TOO_MANY_REQUESTS, page).into_response(), retry_after));
    }

    let outcome = if !form.code.trim().is_empty() {
        match TotpCode::parse(&form.code) {
            Err(e) => Outcome::Refused("malformed_code", e.to_string()),
            Ok(code) => {
                let stored = creds.totp_secret_enc.as_deref().unwrap_or_default();
                let seed = state
                    .services
                    .totp_vault
                    .open(stored)
                    .map_err(|e| anyhow::anyhow!("cannot decrypt the TOTP seed of user {}: {e}", user.id))?;
                match seed.matching_step(&code, now) {
                    None => Outcome::Refused(
                        "wrong_code",
                        "The code is wrong. Check the time on your phone, and enter the code your app shows now."
                            .into(),
                    ),
                    Some(step) => {
                        let step = i64::try_from(step).unwrap_or(i64::MAX);
                        if state.store.accept_totp_step(user.id, step).await? {
                            Outcome::Accepted("totp")
                        } else {
                            // RFC 6238 5.2: a code is accepted once.
                            state
                                .store
                                .record_audit_event(&actor.event(AuditAction::TotpReplayRefused, now).on_user(user))
                                .await?;
                            Outcome::Refused(
                                "replayed_code",
                                "This code has already been used. Wait for the next code and enter it.".into(),
                            )
                        }
                    }
                }
            }
        }
    } else if !form.recovery_code.trim().is_empty() {
        match RecoveryCode::parse(&form.recovery_code) {
            Err(e) => Outcome::Refused("malformed_recovery_code", e.to_string()),
            Ok(code) => {
                let hash = state.services.recovery_key.hash(&code);
                if state.store.use_recovery_code(user.id, &hash, now).await? {
                    let left = state.store.unused_recovery_codes(user.id).await?;
                    let event = actor
                        .event(AuditAction::RecoveryCodeUsed, now)
                        .on_user(user)
                        .with_details(serde_json::json!({ "codes_left": left }));
                    state.store.record_audit_event(&event).await?;
                    Outcome::Accepted("recovery_code")
                } else {
                    Outcome::Refused("wrong_recovery_code", "This recovery code is wrong or was used before.".into())
                }
            }
        }
    } else {
        Outcome::Refused("empty", "Enter the 6-digit code from your authenticator app, or a recovery code.".into())
    };

    match outcome {
        Outcome::Accepted(method) => {
            throttle.record_success(&state.store, key, ip).await;
            advance(&session, SessionAuth::SignedIn { user_id: user.id, authenticated_at: now, last_seen: now })
                .await?;
            let event = actor
                .event(AuditAction::SignIn, now)
                .on_user(user)
                .with_details(serde_json::json!({ "method": method }));
            state.store.record_audit_event(&event).await?;
            metrics::counter!("sign_ins_total", "result" => "success", "step" => "mfa").increment(1);
            // `next` is checked again here, after the TOTP step.
            let target = NextPath::parse_optional(next.as_deref())
                .map_or_else(|| home_path(user.role).to_owned(), |n| n.to_string());
            Ok(Redirect::to(&target).into_response())
        }
        Outcome::Refused(reason, text) => {
            metrics::counter!("sign_ins_total", "result" => "failure", "step" => "mfa").increment(1);
            let event = actor
                .event(AuditAction::SignInFailed, now)
                .on_user(user)
                .with_details(serde_json::json!({ "step": "mfa", "reason": reason }));
            state.store.record_audit_event(&event).await?;
            let block = throttle.record_failure(Some(key), ip, now);
            // A guess (not an empty or malformed entry) counts against the account, from any
            // address.
            if matches!(reason, "wrong_code" | "replayed_code" | "wrong_recovery_code") {
                match second_factor_failed(&state, user, &actor, now).await? {
                    SecondFactorFailure::Locked(_) => return second_factor_locked_page(&session).await,
                    SecondFactorFailure::PasswordAgain => {
                        session.flush().await?;
                        return Ok(message(
                            StatusCode::OK,
                            "Sign in again",
                            &["Too many wrong codes: enter your password again, then a code your app shows now."],
                            Some(("/login", "Sign in")),
                        ));
                    }
                    SecondFactorFailure::TryAgain => {}
                }
            }
            let error = block.map_or(text, ThrottleVerdict::message);
            Ok(MfaPage { nav: None, error: Some(error) }.into_response())
        }
    }
}
