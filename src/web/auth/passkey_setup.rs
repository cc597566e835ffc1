//! Registering a first passkey under `PORTAL_ADMIN_MFA=passkey` (issue 19; DESIGN.md section
//! 11): a WMDA admin without one can register one only in a session begun with a fresh link
//! from their mailbox. Either the passkey enrolment link (`/passkey/enrol/{token}`, which asks
//! for the password and a TOTP code), or the TOTP enrolment of an invitation or MFA re-enrolment
//! link, puts the session at [`SessionAuth::PasskeyEnrolment`]; it reaches only `/passkey/setup`
//! for 30 minutes, where registering the passkey signs the admin in.

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use super::passkey::{json_error, json_redirect};
use super::{advance, sign_in, stage, usable_link};
use crate::auth::passkey::{CEREMONY_KEY, Ceremony, parse_name};
use crate::auth::session::{IDLE_TIMEOUT, SessionAuth};
use crate::auth::sign_in::SecondFactorOutcome;
use crate::domain::{LinkPurpose, ThrottleVerdict};
use crate::store::{Actor, Credentials};
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::{ClientIp, Form};
use crate::web::pages::{Nav, home_path, link_refused};

#[derive(Template, WebTemplate)]
#[template(path = "auth/passkey_link.html")]
struct LinkPage {
    nav: Option<Nav>,
    email: String,
    action: String,
    error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/passkey_setup.html")]
struct SetupPage {
    nav: Option<Nav>,
    email: String,
    passkeys_on: bool,
}

/// The link form: the password and a TOTP code.
#[derive(Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

const PURPOSES: &[LinkPurpose] = &[LinkPurpose::PasskeyEnrolment];

fn link_page(creds: &Credentials, token: &str, error: Option<String>) -> Response {
    LinkPage { nav: None, email: creds.user.email.to_string(), action: format!("/passkey/enrol/{token}"), error }
        .into_response()
}

/// `GET /passkey/enrol/{token}`.
pub async fn link_show(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    Ok(match usable_link(&state, &token, PURPOSES, ip).await? {
        Some((_, creds)) if has_passkey(&state, creds.user.id).await? => already_has_passkey(),
        Some((_, creds)) => link_page(&creds, &token, None),
        None => link_refused(&token),
    })
}

async fn has_passkey(state: &AppState, user_id: Uuid) -> Result<bool, AppError> {
    Ok(!state.store.list_passkeys(user_id).await?.is_empty())
}

/// The answer to a passkey enrolment link of an account that has a passkey now: the link is
/// for a first one only.
fn already_has_passkey() -> Response {
    crate::web::pages::message(
        StatusCode::GONE,
        "You have a passkey already",
        &[
            "This link registers a first passkey, and your account has one now: sign in with it.",
            "Add more passkeys on your account page once signed in.",
        ],
        Some(("/login", "Sign in")),
    )
}

/// `POST /passkey/enrol/{token}`: the password (throttled per pair), then a TOTP code (the
/// second step's checks: single use, throttle, lock); the link is used up and the session moves
/// to the passkey enrolment stage under a new id.
pub async fn link_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
    Path(token): Path<String>,
    Form(form): Form<LinkForm>,
) -> Result<Response, AppError> {
    let Some((link, creds)) = usable_link(&state, &token, PURPOSES, ip).await? else { return Ok(link_refused(&token)) };
    let now = state.clock.now();
    let user = &creds.user;
    if has_passkey(&state, user.id).await? {
        return Ok(already_has_passkey());
    }
    if form.code.trim().is_empty() {
        let message = "Enter the 6-digit code your authenticator app shows now.".to_owned();
        return Ok(link_page(&creds, &token, Some(message)));
    }
    let throttle = &state.services.throttle;
    let key = user.email.as_str();
    {
        // Held until the answer: an attempt in progress counts as a failure (bursts).
        let attempt = throttle.begin_pair(&state.store, key, ip, now).await;
        if let Err(ThrottleVerdict::Blocked { retry_after }) = attempt {
            throttle.refused(Some(key), ip, now);
            return Ok(link_page(&creds, &token, Some(ThrottleVerdict::message(retry_after))));
        }
        if !state.services.hasher.verify(&form.password, creds.password_hash.as_deref()).await {
            let error = throttle
                .record_failure(Some(key), ip, now)
                .map_or_else(|| "The password is wrong.".to_owned(), ThrottleVerdict::message);
            return Ok(link_page(&creds, &token, Some(error)));
        }
    }
    match sign_in(&state).verify_second_factor(&creds, &form.code, "", ip, now).await? {
        SecondFactorOutcome::SignedIn { .. } => {}
        SecondFactorOutcome::Locked { mail_queued } => {
            return super::second_factor_locked_page(&state, &session, mail_queued).await;
        }
        SecondFactorOutcome::Throttled { retry_after } => {
            return Ok(link_page(&creds, &token, Some(ThrottleVerdict::message(retry_after))));
        }
        SecondFactorOutcome::PasswordAgain => {
            let message = "Too many wrong codes: enter your password again, then a code your app shows now.";
            return Ok(link_page(&creds, &token, Some(message.to_owned())));
        }
        SecondFactorOutcome::Refused { message } => return Ok(link_page(&creds, &token, Some(message))),
    }
    let actor = Actor::user(user, ip);
    if !state.store.accept_passkey_link(&link, (user, &actor), now).await? {
        return Ok(link_refused(&token));
    }
    advance(&session, SessionAuth::PasskeyEnrolment { user_id: user.id, at: now }).await?;
    Ok(Redirect::to("/passkey/setup").into_response())
}

/// The account of a session at the passkey enrolment stage, within 30 minutes and still usable;
/// otherwise `None` and the session cleared.
async fn enrolling(state: &AppState, session: &Session) -> Result<Option<Credentials>, AppError> {
    let Some(SessionAuth::PasskeyEnrolment { user_id, at }) = stage(session).await? else { return Ok(None) };
    if state.clock.now() - at > IDLE_TIMEOUT {
        session.flush().await?;
        return Ok(None);
    }
    match state.store.find_credentials(user_id).await? {
        // A first passkey only: registered meanwhile (another tab), the stage is over.
        Some(c)
            if crate::auth::stage_holds(&c, at)
                && c.totp_secret_enc.is_some()
                && !has_passkey(state, user_id).await? =>
        {
            Ok(Some(c))
        }
        _ => {
            session.flush().await?;
            Ok(None)
        }
    }
}

/// `GET /passkey/setup`.
pub async fn setup_show(State(state): State<AppState>, session: Session) -> Result<Response, AppError> {
    let Some(creds) = enrolling(&state, &session).await? else { return Ok(Redirect::to("/login").into_response()) };
    let page =
        SetupPage { nav: None, email: creds.user.email.to_string(), passkeys_on: state.services.passkeys.enabled() };
    Ok(page.into_response())
}

/// The name form of the setup page.
#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

const SETUP_ENDED: &str = "No passkey setup is waiting in this browser session: it lasts 30 minutes after the link from your mailbox, and ends once a passkey is registered. Open the link again, or sign in.";

/// `POST /passkey/setup/options`.
pub async fn setup_options(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<NameForm>,
) -> Result<Response, AppError> {
    let Some(creds) = enrolling(&state, &session).await? else {
        return Ok(json_error(StatusCode::UNAUTHORIZED, SETUP_ENDED));
    };
    let name = match parse_name(&form.name) {
        Ok(n) => n,
        Err(message) => return Ok(json_error(StatusCode::UNPROCESSABLE_ENTITY, message)),
    };
    super::passkey::registration_options(&state, &session, &creds.user, name).await
}

/// `POST /passkey/setup`: the registration's answer; stores the passkey (audited, emailed) and
/// signs the session in with it.
pub async fn setup_finish(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let ceremony = session.remove::<Ceremony>(CEREMONY_KEY).await?;
    let Some(creds) = enrolling(&state, &session).await? else {
        return Ok(json_error(StatusCode::UNAUTHORIZED, SETUP_ENDED));
    };
    let user = &creds.user;
    let registered =
        match super::passkey::save_registration(&state, (user, ip), ceremony, (&headers, &body), true).await? {
            Ok(r) => r,
            Err(refused) => return Ok(refused),
        };
    let now = state.clock.now();
    advance(&session, SessionAuth::signed_in(user.id, now, true)).await?;
    sign_in(&state).record_sign_in(user, "passkey", ip, now).await?;
    crate::web::notice::set(
        &session,
        format!("Passkey “{}” registered: sign in with it from now on.", registered.name),
    )
    .await?;
    Ok(json_redirect(home_path(user.role)))
}
