//! `/mfa/setup`: TOTP enrolment, reachable only in the session that has just used an invitation
//! or re-enrolment link; then the recovery codes, shown once.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{advance, second_factor_locked_page, stage};
use crate::auth::TotpSeed;
use crate::auth::session::{IDLE_TIMEOUT, SessionAuth};
use crate::auth::sign_in::EnrolOutcome;
use crate::store::Credentials;
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

/// The recovery codes, shown once, with a link on (`home`): after enrolment and on `/account`.
#[derive(Template, WebTemplate)]
#[template(path = "auth/recovery_codes.html")]
pub(crate) struct RecoveryCodesPage {
    pub(crate) nav: Option<Nav>,
    pub(crate) codes: Vec<String>,
    pub(crate) home: String,
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
        return second_factor_locked_page(&state, &session, false).await;
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
    // Checked before a seed is offered (and stored): a locked account gets no new one.
    if crate::auth::second_factor_locked(&creds, now) {
        return second_factor_locked_page(&state, &session, false).await;
    }
    let seed = offered_seed(&state, &creds).await?;
    let codes = match super::sign_in(&state).enrol(&creds, &seed, &form.code, ip, now).await? {
        EnrolOutcome::Locked { mail_queued } => return second_factor_locked_page(&state, &session, mail_queued).await,
        EnrolOutcome::Refused { message } => return setup_page(&state, &creds, &seed, Some(message)),
        EnrolOutcome::Gone => {
            session.flush().await?;
            return Ok(Redirect::to("/login").into_response());
        }
        EnrolOutcome::Enrolled { codes } => codes,
    };
    let user = &creds.user;
    // Under PORTAL_ADMIN_MFA=passkey a WMDA admin goes on to register a passkey: this session
    // began with a link from their mailbox (issue 19).
    if state.settings.passkey_required(user) {
        advance(&session, SessionAuth::PasskeyEnrolment { user_id: user.id, at: now }).await?;
        let codes = codes.iter().map(|c| c.expose().to_owned()).collect();
        return Ok(RecoveryCodesPage { nav: None, codes, home: "/passkey/setup".to_owned() }.into_response());
    }
    advance(&session, SessionAuth::signed_in(user.id, now, false)).await?;
    let nav = Some(Nav { name: user.shown_name().to_owned(), notice: None });
    Ok(RecoveryCodesPage {
        nav,
        codes: codes.iter().map(|c| c.expose().to_owned()).collect(),
        home: home_path(user.role).to_owned(),
    }
    .into_response())
}
