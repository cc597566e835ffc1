//! The passkey endpoints of signing in (issue 19; DESIGN.md section 11), called by the page
//! script `static/passkey.js`: each ceremony's options come from a POST (CSRF-checked, on the
//! sign-in routes' per-address limit) and its answer goes to another, as JSON. Answers are
//! `{"redirect": path}` or `{"error": message}` (never internals).
//!
//! - `POST /login/mfa/passkey/options`, `POST /login/mfa/passkey`: the second step with a
//!   passkey instead of a TOTP code, after the password step.
//! - `POST /login/passkey/options`, `POST /login/passkey?next=`: "Sign in with a passkey", a
//!   discoverable passkey alone (user verification required), which counts as both factors.
//!
//! Both end as the TOTP step does: the session id cycled, `auth.sign_in` (method `passkey`),
//! the throttles cleared for the pair.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::auth::passkey::{CEREMONY_KEY, Ceremony, FinishError, PasskeyRefusal};
use crate::domain::{NextPath, ThrottleVerdict};
use crate::store::{Actor, AuditAction, Credentials, PasskeyAdded};
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::{ClientIp, Query};

/// A JSON answer for the page script: `{"error": message}` with `status`.
pub(crate) fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// A JSON answer for the page script: go to `path`.
pub(crate) fn json_redirect(path: &str) -> Response {
    Json(serde_json::json!({ "redirect": path })).into_response()
}

/// Whether a ceremony's answer is JSON, as the page script sends it.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    crate::web::syntax::media_type_is(content_type, "application/json")
}

/// The answer to a ceremony's answer that is not JSON.
pub(crate) fn not_json() -> Response {
    json_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "The passkey answer must be JSON (application/json).")
}

/// The status a refusal is answered with.
pub(crate) fn refusal_status(refusal: PasskeyRefusal) -> StatusCode {
    match refusal {
        PasskeyRefusal::Off => StatusCode::NOT_FOUND,
        PasskeyRefusal::Malformed => StatusCode::BAD_REQUEST,
        PasskeyRefusal::Taken => StatusCode::CONFLICT,
        _ => StatusCode::FORBIDDEN,
    }
}

/// Starts registering a passkey named `name` (parsed) for `user`: refused when they have one
/// of that name; else the ceremony goes into the session and the options to the script. Shared
/// by `/account` and `/passkey/setup`.
pub(crate) async fn registration_options(
    state: &AppState,
    session: &Session,
    user: &crate::store::User,
    name: String,
) -> Result<Response, AppError> {
    let existing = state.store.list_passkeys(user.id).await?;
    if existing.iter().any(|p| p.name == name) {
        let message = crate::store::Conflict::PasskeyNameTaken.to_string();
        return Ok(json_error(StatusCode::UNPROCESSABLE_ENTITY, &message));
    }
    match state.services.passkeys.start_registration(user, name, &existing, state.clock.now()) {
        Ok((options, ceremony)) => {
            session.insert(CEREMONY_KEY, ceremony).await?;
            Ok(Json(options).into_response())
        }
        Err(refusal) => Ok(json_error(refusal_status(refusal), refusal.message())),
    }
}

/// Finishes a registration of `user` from `ip` with the session's `ceremony` (already taken
/// out) and the script's answer: the passkey is stored with its audit event (`passkey.added`)
/// and the email to the user, in one transaction. `Ok(Err(answer))` when refused (the JSON
/// to send). Shared by `/account` and `/passkey/setup`.
pub(crate) async fn save_registration(
    state: &AppState,
    (user, ip): (&crate::store::User, std::net::IpAddr),
    ceremony: Option<Ceremony>,
    (headers, body): (&HeaderMap, &Bytes),
    only_first: bool,
) -> Result<Result<crate::auth::passkey::Registered, Response>, AppError> {
    if !is_json(headers) {
        return Ok(Err(not_json()));
    }
    let now = state.clock.now();
    let passkeys = &state.services.passkeys;
    let registered = match passkeys.finish_registration(&state.store, ceremony, user.id, body, now).await {
        Ok(r) => r,
        Err(FinishError::Refused(refusal)) => return Ok(Err(json_error(refusal_status(refusal), refusal.message()))),
        Err(FinishError::Store(e)) => return Err(e.into()),
    };
    let id = uuid::Uuid::new_v4();
    let event = Actor::user(user, ip).event(AuditAction::PasskeyAdded, now).on_user(user).with_details(
        serde_json::json!({ "passkey_id": id, "name": registered.name, "discoverable": registered.discoverable }),
    );
    let what = format!("A passkey named “{}” was added to your account.", registered.name);
    let email = super::account_changed(state, user, ip, &what, now);
    let new = crate::store::NewPasskey {
        id,
        name: &registered.name,
        credential_id: &registered.credential_id,
        credential: &registered.credential,
        discoverable: registered.discoverable,
        only_first,
    };
    let change = crate::store::AccountChange { event: &event, email: &email };
    match state.store.add_passkey(user.id, &new, change, now).await {
        Ok(PasskeyAdded::Added) => {
            state.services.mailer.wake();
            Ok(Ok(registered))
        }
        Ok(PasskeyAdded::CredentialTaken) => {
            Ok(Err(json_error(refusal_status(PasskeyRefusal::Taken), PasskeyRefusal::Taken.message())))
        }
        Ok(PasskeyAdded::NotFirst) => Ok(Err(json_error(StatusCode::UNAUTHORIZED, FIRST_ONLY))),
        Err(crate::store::StoreError::Conflict(c)) => Ok(Err(json_error(StatusCode::CONFLICT, &c.to_string()))),
        Err(e) => Err(e.into()),
    }
}

/// What a first-passkey registration (the admin mode's enrolment) answers when the account has
/// one now.
pub(crate) const FIRST_ONLY: &str =
    "Your account has a passkey now (registered in another window): this setup has ended. Sign in with it.";

/// `?next=` of the passwordless finish.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

const NOT_AT_SECOND_STEP: &str = "Your sign-in has ended. Enter your email and password again.";

/// `POST /login/mfa/passkey/options`: the options of an assertion by one of the user's passkeys.
pub async fn second_step_options(State(state): State<AppState>, session: Session) -> Result<Response, AppError> {
    let Some((creds, _)) = super::mfa::pending_user(&state, &session).await? else {
        return Ok(json_error(StatusCode::UNAUTHORIZED, NOT_AT_SECOND_STEP));
    };
    let now = state.clock.now();
    let passkeys = state.store.list_passkeys(creds.user.id).await?;
    match state.services.passkeys.start_authentication(creds.user.id, &passkeys, now) {
        Ok((options, ceremony)) => {
            session.insert(CEREMONY_KEY, ceremony).await?;
            Ok(Json(options).into_response())
        }
        Err(refusal) => Ok(json_error(refusal_status(refusal), refusal.message())),
    }
}

/// `POST /login/mfa/passkey`: the assertion; signs the session in as a TOTP code does.
pub async fn second_step_finish(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    // Taken out whatever follows: an answer is checked once.
    let ceremony = session.remove::<Ceremony>(CEREMONY_KEY).await?;
    let Some((creds, next)) = super::mfa::pending_user(&state, &session).await? else {
        return Ok(json_error(StatusCode::UNAUTHORIZED, NOT_AT_SECOND_STEP));
    };
    if !is_json(&headers) {
        return Ok(not_json());
    }
    let answer = &body;
    let now = state.clock.now();
    if crate::auth::second_factor_locked(&creds, now) {
        session.flush().await?;
        return Ok(json_error(StatusCode::FORBIDDEN, "Signing in with this account is locked for 24 hours."));
    }
    let user = &creds.user;
    let throttle = &state.services.throttle;
    let attempt = throttle.begin_pair(&state.store, user.email.as_str(), ip, now).await;
    if let Err(ThrottleVerdict::Blocked { retry_after }) = attempt {
        throttle.refused(Some(user.email.as_str()), ip, now);
        let page = json_error(StatusCode::TOO_MANY_REQUESTS, &ThrottleVerdict::message(retry_after));
        return Ok(super::with_retry_after(page, retry_after));
    }
    let expected = Some(user.id);
    match state.services.passkeys.finish_authentication(&state.store, ceremony, expected, answer, now).await {
        Ok(_) => {
            throttle.record_success(&state.store, user.email.as_str(), ip).await;
            let target = super::complete_sign_in(&state, &session, user, "passkey", next, ip).await?;
            Ok(json_redirect(&target))
        }
        Err(FinishError::Store(e)) => Err(e.into()),
        Err(FinishError::Refused(refusal)) => refused(&state, Some(&creds), refusal, ip).await,
    }
}

/// `POST /login/passkey/options`: the options of a passwordless sign-in, in this session (a
/// short pre-sign-in one); counts in the address's sign-in window.
pub async fn passwordless_options(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
) -> Result<Response, AppError> {
    let now = state.clock.now();
    match state.services.passkeys.start_passwordless(now) {
        Ok((options, ceremony)) => {
            // Each challenge counts in the address's window (DESIGN.md section 11).
            state.services.throttle.record_failure(None, ip, now);
            session.insert(CEREMONY_KEY, ceremony).await?;
            Ok(Json(options).into_response())
        }
        Err(refusal) => Ok(json_error(refusal_status(refusal), refusal.message())),
    }
}

/// `POST /login/passkey?next=`: a discoverable passkey's assertion; signs the session in.
pub async fn passwordless_finish(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
    Query(q): Query<NextQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let ceremony = session.remove::<Ceremony>(CEREMONY_KEY).await?;
    if !is_json(&headers) {
        return Ok(not_json());
    }
    let answer = &body;
    let now = state.clock.now();
    let verified = match state.services.passkeys.finish_authentication(&state.store, ceremony, None, answer, now).await
    {
        Ok(v) => v,
        Err(FinishError::Store(e)) => return Err(e.into()),
        Err(FinishError::Refused(refusal)) => return refused(&state, None, refusal, ip).await,
    };
    let Some(creds) = state.store.find_credentials(verified.user_id).await? else {
        return refused(&state, None, PasskeyRefusal::Unknown, ip).await;
    };
    let user = &creds.user;
    // A disabled or not enrolled account is refused as the password step refuses it.
    if user.disabled_at.is_some() || creds.totp_secret_enc.is_none() || creds.password_hash.is_none() {
        return refused(&state, Some(&creds), PasskeyRefusal::Unknown, ip).await;
    }
    if crate::auth::second_factor_locked(&creds, now) {
        return Ok(json_error(StatusCode::FORBIDDEN, "Signing in with this account is locked for 24 hours."));
    }
    let throttle = &state.services.throttle;
    if let ThrottleVerdict::Blocked { retry_after } =
        throttle.check_pair_shared(&state.store, user.email.as_str(), ip, now).await
    {
        throttle.refused(Some(user.email.as_str()), ip, now);
        let page = json_error(StatusCode::TOO_MANY_REQUESTS, &ThrottleVerdict::message(retry_after));
        return Ok(super::with_retry_after(page, retry_after));
    }
    throttle.record_success(&state.store, user.email.as_str(), ip).await;
    let next = NextPath::parse_optional(q.next.as_deref()).map(|n| n.to_string());
    let target = super::complete_sign_in(&state, &session, user, "passkey", next, ip).await?;
    Ok(json_redirect(&target))
}

/// Records a refused passkey sign-in (`auth.sign_in_failed`, step `passkey`, with the reason)
/// and counts it against the address, and the pair when the account is known; answers with
/// the refusal's message, or the block's.
async fn refused(
    state: &AppState,
    creds: Option<&Credentials>,
    refusal: PasskeyRefusal,
    ip: std::net::IpAddr,
) -> Result<Response, AppError> {
    let now = state.clock.now();
    metrics::counter!("sign_ins_total", "result" => "failure", "step" => "passkey").increment(1);
    let actor = match creds {
        Some(c) => Actor::user(&c.user, ip),
        None => Actor { user_id: None, label: ip.to_string(), ip: Some(ip.to_string()) },
    };
    let mut event = actor
        .event(AuditAction::SignInFailed, now)
        .with_details(serde_json::json!({ "step": "passkey", "reason": refusal.reason() }));
    if let Some(c) = creds {
        event = event.on_user(&c.user);
    }
    state.store.record_audit_event(&event).await?;
    let block = state.services.throttle.record_failure(creds.map(|c| c.user.email.as_str()), ip, now);
    Ok(match block {
        Some(retry_after) => super::with_retry_after(
            json_error(StatusCode::TOO_MANY_REQUESTS, &ThrottleVerdict::message(retry_after)),
            retry_after,
        ),
        None => json_error(refusal_status(refusal), refusal.message()),
    })
}
