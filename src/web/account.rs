//! `/account` (issue 19; DESIGN.md section 11): every signed-in user's own page. Change the
//! password, make new recovery codes, and register, rename and remove passkeys.
//!
//! Every change asks for the current password, unless a factor was used in this session within
//! the last 5 minutes ([`FRESH_FACTOR`]): the sign-in itself, or the password typed for an
//! earlier change (which then counts as that factor). A password change always asks for it.
//! Every change is audited and emailed to the user, in the transaction that makes it. TOTP is
//! not changed here (only through an admin's MFA reset link).

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use super::AppState;
use super::auth::enrol::RecoveryCodesPage;
use super::auth::passkey::{json_error, json_redirect, registration_options, save_registration};
use super::auth::stage;
use super::error::AppError;
use super::extract::{CurrentUser, Form, PathId};
use super::notice;
use super::pages::{Nav, home_path};
use super::session::AUTH_KEY;
use crate::auth::passkey::{CEREMONY_KEY, Ceremony, PASSKEYS_OFF, parse_name};
use crate::auth::session::FRESH_FACTOR;
use crate::auth::{NewPassword, RecoveryCode};
use crate::store::{AccountChange, AuditAction, PasskeyRemoval, StoreError, StoredPasskey};

/// The routes of `/account`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account", get(page))
        .route("/account/password", post(change_password))
        .route("/account/recovery-codes", post(new_recovery_codes))
        .route("/account/passkeys/options", post(passkey_options))
        .route("/account/passkeys", post(passkey_register))
        .route("/account/passkeys/{id}/rename", post(passkey_rename))
        .route("/account/passkeys/{id}/remove", post(passkey_remove))
}

/// One passkey as the page lists it.
struct PasskeyRow {
    id: Uuid,
    name: String,
    created: String,
    last_used: String,
    discoverable: bool,
}

impl PasskeyRow {
    fn of(p: &StoredPasskey) -> Self {
        PasskeyRow {
            id: p.id,
            name: p.name.clone(),
            created: p.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            last_used: p
                .last_used_at
                .map_or_else(|| "never".to_owned(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
            discoverable: p.discoverable,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "account/page.html")]
struct AccountPage {
    nav: Option<Nav>,
    email: String,
    home: &'static str,
    /// The current password is asked for (no factor within 5 minutes).
    ask_password: bool,
    recovery_codes_left: i64,
    passkeys_on: bool,
    passkeys_off: &'static str,
    passkeys: Vec<PasskeyRow>,
    /// A refused form's message, and which form (`password`, `recovery`, `passkey`, or a
    /// passkey's id).
    error: Option<(String, String)>,
}

/// The account page, with a refused form's message.
async fn render(
    state: &AppState,
    session: &Session,
    current: &CurrentUser,
    error: Option<(&str, String)>,
) -> Result<Response, AppError> {
    let user = &current.user;
    let now = state.clock.now();
    let fresh = stage(session).await?.is_some_and(|a| a.factor_is_fresh(now));
    let passkeys = state.store.list_passkeys(user.id).await?;
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let page = AccountPage {
        nav: Nav::of(current),
        email: user.email.to_string(),
        home: home_path(user.role),
        ask_password: !fresh,
        recovery_codes_left: state.store.unused_recovery_codes(user.id).await?,
        passkeys_on: state.services.passkeys.enabled(),
        passkeys_off: PASSKEYS_OFF,
        passkeys: passkeys.iter().map(PasskeyRow::of).collect(),
        error: error.map(|(form, message)| (form.to_owned(), message)),
    };
    Ok((status, page).into_response())
}

/// `GET /account`.
pub async fn page(State(state): State<AppState>, session: Session, current: CurrentUser) -> Result<Response, AppError> {
    render(&state, &session, &current, None).await
}

/// What a change needs first: a factor within [`FRESH_FACTOR`], or the current `password`
/// typed now (then it counts as that factor in this session). `Ok(Err(message))` when neither.
async fn confirmed(
    state: &AppState,
    session: &Session,
    current: &CurrentUser,
    password: &str,
) -> Result<Result<(), String>, AppError> {
    let now = state.clock.now();
    let Some(auth) = stage(session).await? else { return Err(AppError::SignInRequired { next: None }) };
    if password.is_empty() && auth.factor_is_fresh(now) {
        return Ok(Ok(()));
    }
    if password.is_empty() {
        return Ok(Err(format!(
            "Enter your current password to make this change (asked when you have not signed in within the last {} minutes).",
            FRESH_FACTOR.num_minutes()
        )));
    }
    let Some(creds) = state.store.find_credentials(current.user.id).await? else {
        return Err(AppError::SignInRequired { next: None });
    };
    match super::auth::sign_in(state).confirm_password(&creds, password, current.ip, now).await? {
        Ok(()) => {
            session.insert(AUTH_KEY, auth.with_factor_at(now)).await?;
            Ok(Ok(()))
        }
        Err(message) => Ok(Err(message)),
    }
}

/// The email of a change `what` (one sentence) made by `current` at `now`.
fn change_mail(state: &AppState, current: &CurrentUser, what: &str, now: DateTime<Utc>) -> crate::domain::NewEmail {
    super::auth::account_changed(state, &current.user, current.ip, what, now)
}

/// The password form.
#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

/// `POST /account/password`: the current password (always), then a new one by the enrolment
/// rules; every other session of the account ends, this one goes on.
pub async fn change_password(
    State(state): State<AppState>,
    session: Session,
    current: CurrentUser,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    let user = &current.user;
    if form.current_password.is_empty() {
        return render(&state, &session, &current, Some(("password", "Enter your current password.".into()))).await;
    }
    let inputs = [user.email.as_str(), user.display_name.as_str()];
    let password = match NewPassword::parse(&form.password, &form.password_confirm, &inputs) {
        Ok(p) => p,
        Err(e) => return render(&state, &session, &current, Some(("password", e.to_string()))).await,
    };
    if let Err(message) = confirmed(&state, &session, &current, &form.current_password).await? {
        return render(&state, &session, &current, Some(("password", message))).await;
    }
    let Some(creds) = state.store.find_credentials(user.id).await? else {
        return Err(AppError::SignInRequired { next: None });
    };
    let hasher = &state.services.hasher;
    let old_hash = creds.password_hash.clone().unwrap_or_default();
    if hasher.verify(password.expose(), Some(&old_hash)).await {
        let message = "The new password is your current one. Choose another.".to_owned();
        return render(&state, &session, &current, Some(("password", message))).await;
    }
    let new_hash = hasher.hash(&password).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = state.clock.now();
    let event = current.actor().event(AuditAction::PasswordChanged, now).on_user(user);
    let email = change_mail(&state, &current, "Your password was changed.", now);
    let change = AccountChange { event: &event, email: &email };
    if !state.store.change_password(user.id, &old_hash, &new_hash, change, now).await? {
        let message = "Your password was changed elsewhere meanwhile. Sign in again.".to_owned();
        return render(&state, &session, &current, Some(("password", message))).await;
    }
    state.services.mailer.wake();
    // Every other session ends (sessions_valid_after = now); this one is bound anew, under a
    // new id (ASVS 5.0 7.2.4).
    if let Some(auth) = stage(&session).await? {
        session.cycle_id().await?;
        session.insert(AUTH_KEY, auth.with_bound_at(now)).await?;
    }
    notice::redirect(&session, "/account", "Your password was changed. Every other session of your account has ended.")
        .await
}

/// The forms that need only the confirmation.
#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    current_password: String,
}

/// `POST /account/recovery-codes`: ten new recovery codes, shown once; the old ones stop working.
pub async fn new_recovery_codes(
    State(state): State<AppState>,
    session: Session,
    current: CurrentUser,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, AppError> {
    if let Err(message) = confirmed(&state, &session, &current, &form.current_password).await? {
        return render(&state, &session, &current, Some(("recovery", message))).await;
    }
    let now = state.clock.now();
    let codes: Vec<RecoveryCode> =
        (0..crate::auth::recovery::RECOVERY_CODES).map(|_| RecoveryCode::generate()).collect();
    let hashes: Vec<Vec<u8>> = codes.iter().map(|c| state.services.recovery_key.hash(c)).collect();
    let user = &current.user;
    let event = current.actor().event(AuditAction::RecoveryCodesReplaced, now).on_user(user);
    let email = change_mail(
        &state,
        &current,
        "New recovery codes were made for your account; the old ones no longer work.",
        now,
    );
    let change = AccountChange { event: &event, email: &email };
    match state.store.replace_recovery_codes(user.id, &hashes, change, now).await {
        Ok(()) => {}
        Err(StoreError::Conflict(c)) => {
            return render(&state, &session, &current, Some(("recovery", c.to_string()))).await;
        }
        Err(e) => return Err(e.into()),
    }
    state.services.mailer.wake();
    let page = RecoveryCodesPage {
        nav: Nav::of(&current),
        codes: codes.iter().map(|c| c.expose().to_owned()).collect(),
        home: "/account".to_owned(),
    };
    // Shown once: never stored by a cache (the security headers send no-store on every page).
    Ok(page.into_response())
}

/// The passkey registration form (sent by the page's script).
#[derive(Deserialize)]
pub struct PasskeyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    current_password: String,
}

/// `POST /account/passkeys/options`: the options of a passkey registration, after the
/// confirmation; the ceremony waits in this session for 5 minutes.
pub async fn passkey_options(
    State(state): State<AppState>,
    session: Session,
    current: CurrentUser,
    Form(form): Form<PasskeyForm>,
) -> Result<Response, AppError> {
    let passkeys = &state.services.passkeys;
    if !passkeys.enabled() {
        return Ok(json_error(StatusCode::NOT_FOUND, PASSKEYS_OFF));
    }
    let name = match parse_name(&form.name) {
        Ok(n) => n,
        Err(message) => return Ok(json_error(StatusCode::UNPROCESSABLE_ENTITY, message)),
    };
    if let Err(message) = confirmed(&state, &session, &current, &form.current_password).await? {
        return Ok(json_error(StatusCode::UNPROCESSABLE_ENTITY, &message));
    }
    registration_options(&state, &session, &current.user, name).await
}

/// `POST /account/passkeys`: the browser's answer to the registration; stores the passkey.
pub async fn passkey_register(
    State(state): State<AppState>,
    session: Session,
    current: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    // Taken out whatever follows: an answer is checked once.
    let ceremony = session.remove::<Ceremony>(CEREMONY_KEY).await?;
    let registered =
        match save_registration(&state, (&current.user, current.ip), ceremony, (&headers, &body), false).await? {
            Ok(r) => r,
            Err(refused) => return Ok(refused),
        };
    let text = if registered.discoverable {
        format!("Passkey “{}” added. You can sign in with it alone, or use it instead of a code.", registered.name)
    } else {
        format!(
            "Passkey “{}” added. Use it instead of a code after your password (this authenticator did not say it can sign in without a password).",
            registered.name
        )
    };
    notice::set(&session, text).await?;
    Ok(json_redirect("/account"))
}

/// The rename form.
#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    current_password: String,
}

/// `POST /account/passkeys/{id}/rename`.
pub async fn passkey_rename(
    State(state): State<AppState>,
    session: Session,
    current: CurrentUser,
    PathId(id): PathId<Uuid>,
    Form(form): Form<RenameForm>,
) -> Result<Response, AppError> {
    let user = &current.user;
    let passkeys = state.store.list_passkeys(user.id).await?;
    let Some(old) = passkeys.iter().find(|p| p.id == id) else { return Err(AppError::NotFound) };
    let form_id = id.to_string();
    let name = match parse_name(&form.name) {
        Ok(n) => n,
        Err(message) => return render(&state, &session, &current, Some((&form_id, message.to_owned()))).await,
    };
    if name == old.name {
        return notice::redirect(&session, "/account", format!("Passkey “{name}” kept its name.")).await;
    }
    if passkeys.iter().any(|p| p.name == name) {
        let message = "You have a passkey of this name. Choose another.".to_owned();
        return render(&state, &session, &current, Some((&form_id, message))).await;
    }
    if let Err(message) = confirmed(&state, &session, &current, &form.current_password).await? {
        return render(&state, &session, &current, Some((&form_id, message))).await;
    }
    let now = state.clock.now();
    let event = current
        .actor()
        .event(AuditAction::PasskeyRenamed, now)
        .on_user(user)
        .with_details(serde_json::json!({ "passkey_id": id, "from": old.name, "to": name }));
    let what = format!("Your passkey “{}” was renamed to “{name}”.", old.name);
    let email = change_mail(&state, &current, &what, now);
    match state.store.rename_passkey(user.id, id, &name, AccountChange { event: &event, email: &email }, now).await {
        Ok(true) => {}
        Ok(false) => return Err(AppError::NotFound),
        Err(StoreError::Conflict(c)) => {
            return render(&state, &session, &current, Some((&form_id, c.to_string()))).await;
        }
        Err(e) => return Err(e.into()),
    }
    state.services.mailer.wake();
    notice::redirect(&session, "/account", format!("Passkey “{}” renamed to “{name}”.", old.name)).await
}

/// `POST /account/passkeys/{id}/remove`.
pub async fn passkey_remove(
    State(state): State<AppState>,
    session: Session,
    current: CurrentUser,
    PathId(id): PathId<Uuid>,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, AppError> {
    let user = &current.user;
    let passkeys = state.store.list_passkeys(user.id).await?;
    let Some(old) = passkeys.iter().find(|p| p.id == id) else { return Err(AppError::NotFound) };
    let form_id = id.to_string();
    if let Err(message) = confirmed(&state, &session, &current, &form.current_password).await? {
        return render(&state, &session, &current, Some((&form_id, message))).await;
    }
    let now = state.clock.now();
    let event = current
        .actor()
        .event(AuditAction::PasskeyRemoved, now)
        .on_user(user)
        .with_details(serde_json::json!({ "passkey_id": id, "name": old.name }));
    let what = format!("Your passkey “{}” was removed from your account.", old.name);
    let email = change_mail(&state, &current, &what, now);
    // TOTP stays beside passkeys (it cannot be removed here), so removing a passkey never
    // removes the last second factor; but an admin who must sign in with a passkey keeps one.
    let keep_one = state.settings.passkey_required(user);
    let change = AccountChange { event: &event, email: &email };
    match state.store.remove_passkey(user.id, id, keep_one, change, now).await? {
        PasskeyRemoval::Removed => {
            state.services.mailer.wake();
            notice::redirect(&session, "/account", format!("Passkey “{}” removed.", old.name)).await
        }
        PasskeyRemoval::NotFound => Err(AppError::NotFound),
        PasskeyRemoval::LastOne => {
            let message = "This is your last passkey, and your account needs one: register another first.".to_owned();
            render(&state, &session, &current, Some((&form_id, message))).await
        }
    }
}
