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
use crate::auth::sign_in::PasswordOutcome;
use crate::domain::NextPath;
use crate::domain::failure_window::ThrottleVerdict;
use crate::store::Actor;
use crate::store::AuditAction;
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::ClientIp;
use crate::web::extract::{Form, Query};
use crate::web::pages::{Nav, message};

#[derive(Template, WebTemplate)]
#[template(path = "auth/login.html")]
struct LoginPage {
    nav: Option<Nav>,
    email: String,
    next: String,
    error: Option<String>,
    notice: Option<String>,
    /// "Sign in with a passkey" is offered (passkeys are on).
    passkeys: bool,
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
pub async fn show(State(state): State<AppState>, Query(q): Query<NextQuery>) -> impl IntoResponse {
    LoginPage {
        passkeys: state.services.passkeys.enabled(),
        nav: None,
        email: String::new(),
        next: NextPath::parse_optional(q.next.as_deref()).map(|n| n.to_string()).unwrap_or_default(),
        error: None,
        notice: None,
    }
}

fn again(state: &AppState, form: &LoginForm, status: StatusCode, error: String) -> Response {
    let page = LoginPage {
        passkeys: state.services.passkeys.enabled(),
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
    match super::sign_in(&state).verify_password(&form.email, &form.password, ip, now).await? {
        PasswordOutcome::Throttled { retry_after } => {
            let page = again(&state, &form, StatusCode::TOO_MANY_REQUESTS, ThrottleVerdict::message(retry_after));
            Ok(super::with_retry_after(page, retry_after))
        }
        // A password alone never enrols an authenticator (issue 3, point 3).
        PasswordOutcome::NoAuthenticator => Ok(message(
            StatusCode::FORBIDDEN,
            "No authenticator set up",
            &[
                "Your account has no authenticator app set up, and signing in needs one.",
                "Ask WMDA for a new invitation link: it lets you set one up.",
            ],
            None,
        )),
        PasswordOutcome::Verified { user_id } => {
            let next = NextPath::parse_optional(Some(&form.next)).map(|n| n.to_string());
            advance(&session, SessionAuth::PasswordVerified { user_id, at: now, next }).await?;
            Ok(Redirect::to("/login/mfa").into_response())
        }
        PasswordOutcome::Refused { message } => Ok(again(&state, &form, StatusCode::OK, message)),
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
            let actor = Actor::user(&c.user, ip);
            state
                .store
                .record_audit_event(&actor.event(AuditAction::SignOut, state.clock.now()).on_user(&c.user))
                .await?;
        }
    }
    session.flush().await?;
    Ok(Redirect::to("/login").into_response())
}
