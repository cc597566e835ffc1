//! `/mfa/setup`: TOTP enrolment, reachable only in the session that has just used an invitation
//! or re-enrolment link; then the recovery codes, shown once.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{advance, second_factor_failed, second_factor_locked_page, stage};
use crate::auth::recovery::RECOVERY_CODES;
use crate::auth::session::{IDLE_TIMEOUT, SessionAuth};
use crate::auth::{RecoveryCode, TotpCode, TotpSeed};
use crate::domain::ThrottleVerdict;
use crate::store::AuditAction;
use crate::store::{Actor, Credentials};
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::ClientIp;
use crate::web::extract::Form;
use crate::web::pages::{Nav, home_path};

#[derive(Template, WebTemplate)]
#[template(path = "auth/mfa_setup.html")]
struct SetupPage {
    nav: Option<Nav>,
    qr: String,
    key: String,
    account: String,
    error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/recovery_codes.html")]
struct RecoveryCodesPage {
    nav: Option<Nav>,
    codes: Vec<String>,
    home: String,
}

/// The enrolment form.
#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    code: String,
}

async fn enrolling_user(state: &AppState, session: &Session) -> Result<Option<Credentials>, AppError> {
    let Some(SessionAuth::Enrolling { user_id, at }) = stage(session).await? else { return Ok(None) };
    if state.clock.now() - at > IDLE_TIMEOUT {
        session.flush().await?;
        return Ok(None);
    }
    match state.store.find_credentials(user_id).await? {
        // Bound to the credentials of the link that started it; never over an active
        // authenticator (issue 12, point 2).
        Some(c) if crate::auth::may_enrol(&c, at) => Ok(Some(c)),
        _ => {
            session.flush().await?;
            Ok(None)
        }
    }
}

/// The seed offered to this user: the pending one (so a reload shows the same QR code), or a new
/// one stored encrypted as pending.
async fn offered_seed(state: &AppState, creds: &Credentials) -> Result<TotpSeed, AppError> {
    if let Some(enc) = &creds.totp_pending_enc {
        if let Ok(seed) = state.services.totp_vault.open(enc) {
            return Ok(seed);
        }
    }
    let seed = TotpSeed::generate();
    state.store.set_pending_totp(creds.user.id, &state.services.totp_vault.seal(&seed)).await?;
    Ok(seed)
}

fn setup_page(
    state: &AppState,
    creds: &Credentials,
    seed: &TotpSeed,
    error: Option<String>,
) -> Result<Response, AppError> {
    let account = creds.user.email.to_string();
    let qr = seed
        .qr_data_uri(&state.settings.totp_issuer, &account)
        .map_err(|e| anyhow::anyhow!("cannot draw the enrolment QR code: {e}"))?;
    Ok(SetupPage { nav: None, qr, key: seed.base32_grouped(), account, error }.into_response())
}

/// `GET /mfa/setup`.
pub async fn show(State(state): State<AppState>, session: Session) -> Result<Response, AppError> {
    let Some(creds) = enrolling_user(&state, &session).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    if crate::auth::second_factor_locked(&creds, state.clock.now()) {
        return second_factor_locked_page(&session).await;
    }
    let seed = offered_seed(&state, &creds).await?;
    setup_page(&state, &creds, &seed, None)
}

/// `POST /mfa/setup`: completes enrolment only with a valid code, whose step is stored as used;
/// then shows the recovery codes once and signs the user in.
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
    Form(form): Form<SetupForm>,
) -> Result<Response, AppError> {
    let Some(creds) = enrolling_user(&state, &session).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let now = state.clock.now();
    if crate::auth::second_factor_locked(&creds, now) {
        return second_factor_locked_page(&session).await;
    }
    let user = &creds.user;
    let key = user.email.as_str();
    let throttle = &state.services.throttle;
    let seed = offered_seed(&state, &creds).await?;
    // Held until the answer: an attempt in progress counts as a failure (bursts).
    let attempt = throttle.begin_pair(&state.store, key, ip, now).await;
    if let Err(ThrottleVerdict::Blocked { retry_after }) = attempt {
        throttle.refused(Some(key), ip, now);
        return setup_page(&state, &creds, &seed, Some(ThrottleVerdict::message(retry_after)));
    }
    let step = TotpCode::parse(&form.code).ok().and_then(|code| seed.matching_step(&code, now));
    let Some(step) = step else {
        // Counts toward the account's lock (20), but does not end the enrolment at 5: its link
        // is used up, and the code of a seed on screen is no guess.
        let actor = Actor { user_id: Some(user.id), label: key.to_owned(), ip: Some(ip.to_string()) };
        if let crate::auth::SecondFactorFailure::Locked(_) = second_factor_failed(&state, user, &actor, now).await? {
            return second_factor_locked_page(&session).await;
        }
        let error = match throttle.record_failure(Some(key), ip, now) {
            Some(block) => ThrottleVerdict::message(block),
            None => "The code is wrong. Enter the 6-digit code your app shows now for this account.".to_owned(),
        };
        return setup_page(&state, &creds, &seed, Some(error));
    };
    let codes: Vec<RecoveryCode> = (0..RECOVERY_CODES).map(|_| RecoveryCode::generate()).collect();
    let hashes: Vec<Vec<u8>> = codes.iter().map(|c| state.services.recovery_key.hash(c)).collect();
    let actor = Actor { user_id: Some(user.id), label: key.to_owned(), ip: Some(ip.to_string()) };
    let event = actor.event(AuditAction::MfaEnrolled, now).on_user(user);
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    if !state.store.complete_totp_enrolment(user.id, step, &hashes, &event, now).await? {
        session.flush().await?;
        return Ok(Redirect::to("/login").into_response());
    }
    throttle.record_success(&state.store, key, ip).await;
    advance(&session, SessionAuth::SignedIn { user_id: user.id, authenticated_at: now, last_seen: now }).await?;
    let nav = Some(Nav { name: if user.display_name.is_empty() { key.to_owned() } else { user.display_name.clone() } });
    Ok(RecoveryCodesPage {
        nav,
        codes: codes.iter().map(|c| c.expose().to_owned()).collect(),
        home: home_path(user.role).to_owned(),
    }
    .into_response())
}
