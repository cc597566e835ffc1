//! `/login` (the password step) and `/logout`.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{advance, stage};
use crate::auth::session::SessionAuth;
use crate::domain::failure_window::ThrottleVerdict;
use crate::domain::{EmailAddress, NextPath};
use crate::store::Actor;
use crate::store::AuditAction;
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::ClientIp;
use crate::web::extract::{Form, Query};
use crate::web::pages::{Nav, message};

/// The one message for an unknown email, a wrong password and a disabled account (ASVS 5.0
/// 6.3.8: no account enumeration).
pub const WRONG_CREDENTIALS: &str = "The email address or password is wrong.";

#[derive(Template, WebTemplate)]
#[template(path = "auth/login.html")]
struct LoginPage {
    nav: Option<Nav>,
    email: String,
    next: String,
    error: Option<String>,
    notice: Option<String>,
}

/// `?next=` of the sign-in page.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Fields of the sign-in form; missing fields are empty, never a 4xx.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// `GET /login`.
pub async fn show(Query(q): Query<NextQuery>) -> impl IntoResponse {
    LoginPage {
        nav: None,
        email: String::new(),
        next: NextPath::parse_optional(q.next.as_deref()).map(|n| n.to_string()).unwrap_or_default(),
        error: None,
        notice: None,
    }
}

fn again(form: &LoginForm, status: StatusCode, error: String) -> Response {
    let page = LoginPage {
        nav: None,
        email: form.email.trim().to_owned(),
        next: NextPath::parse_optional(Some(&form.next)).map(|n| n.to_string()).unwrap_or_default(),
        error: Some(error),
        notice: None,
    };
    (status, page).into_response()
}

/// `POST /login`: checks the password (argon2id, the same path for unknown emails), then moves the
/// session to the TOTP step under a new id.
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let now = state.clock.now();
    let throttle = &state.services.throttle;
    // The throttle key is the typed email, normalised, whether or not an account has it.
    let key = form.email.trim().to_lowercase();
    let actor = Actor { user_id: None, label: key.chars().take(254).collect(), ip: Some(ip.to_string()) };
    // Held until the answer: an attempt in progress counts as a failure (bursts).
    let attempt = throttle.begin_pair(&state.store, &key, ip, now).await;
    if let Err(ThrottleVerdict::Blocked { retry_after }) = attempt {
        metrics::counter!("sign_in_throttled_total", "scope" => "account").increment(1);
        if throttle.refused(Some(&key), ip, now) {
            // One audit event per block, not one per refused request.
            state.store.record_audit_event(&actor.event(AuditAction::Throttled, now)).await?;
        }
        let page = again(&form, StatusCode::TOO_MANY_REQUESTS, ThrottleVerdict::message(retry_after));
        return Ok(super::with_retry_after(page, retry_after));
    }
    let creds = match EmailAddress::parse(&form.email) {
        Ok(email) => state.store.find_credentials_by_email(&email).await?,
        Err(_) => None,
    };
    let stored_hash = creds.as_ref().and_then(|c| c.password_hash.as_deref());
    let verified = state.services.hasher.verify(&form.password, stored_hash).await;
    match creds {
        Some(c) if verified && c.user.disabled_at.is_none() => {
            if c.totp_secret_enc.is_none() {
                // A password alone never enrols an authenticator (issue 3, point 3).
                return Ok(message(
                    StatusCode::FORBIDDEN,
                    "No authenticator set up",
                    &[
                        "Your account has no authenticator app set up, and signing in needs one.",
                        "Ask WMDA for a new invitation link: it lets you set one up.",
                    ],
                    None,
                ));
            }
            let next = NextPath::parse_optional(Some(&form.next)).map(|n| n.to_string());
            advance(&session, SessionAuth::PasswordVerified { user_id: c.user.id, at: now, next }).await?;
            Ok(Redirect::to("/login/mfa").into_response())
        }
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
            state.store.record_audit_event(&event).await?;
            let error = match throttle.record_failure(Some(&key), ip, now) {
                Some(block) => ThrottleVerdict::message(block),
                None => WRONG_CREDENTIALS.to_owned(),
            };
            Ok(again(&form, StatusCode::OK, error))
        }
    }
}

/// `POST /logout`: destroys the server-side session.
pub async fn logout(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
) -> Result<Response, AppError> {
    if let Some(SessionAuth::SignedIn { user_id, .. }) = stage(&session).await? {
        if let Some(c) = state.store.find_credentials(user_id).await? {
            let actor = Actor { user_id: Some(user_id), label: c.user.email.to_string(), ip: Some(ip.to_string()) };
            state
                .store
                .record_audit_event(&actor.event(AuditAction::SignOut, state.clock.now()).on_user(&c.user))
                .await?;
        }
    }
    session.flush().await?;
    Ok(Redirect::to("/login").into_response())
}
