//! Users: the filtered list, invitations, disable and enable, MFA reset.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::auth::invitation::invite_user;
use crate::domain::EmailAddress;
use crate::store::{NewUser, StoreError, User, UserFilter, UserRole, UserStatus};
use crate::web::AppState;
use crate::web::confirm::{self, Question};
use crate::web::error::AppError;
use crate::web::extract::PathId;
use crate::web::extract::{CurrentUser, WmdaAdmin};
use crate::web::extract::{Form, Query};
use crate::web::notice;
use crate::web::pages::Nav;
use tower_sessions::Session;
use uuid::Uuid;

/// The users page, where every change on it ends.
const USERS: &str = "/admin/users";

/// The list's filters, as query parameters; empty means any.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    organisation: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    status: String,
}

/// A user's line.
pub struct UserRow {
    id: String,
    email: String,
    name: String,
    organisation: String,
    role: String,
    status: String,
    grants: i64,
    invited: bool,
    disabled: bool,
    /// Has a password and is not disabled: an MFA reset sends a re-enrolment link (also for an
    /// account whose enrolment never finished).
    mfa_resettable: bool,
    is_me: bool,
    /// The second factors in words: "TOTP, 2 passkeys, 7 recovery codes".
    factors: String,
    /// An active WMDA admin without a passkey, where passkeys are on: another admin may send a
    /// passkey enrolment link.
    passkey_link: bool,
    disable: Question,
    enable: Question,
    reset_mfa: Question,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/users.html")]
struct UsersPage {
    nav: Option<Nav>,
    users: Vec<UserRow>,
    organisations: Vec<(String, String)>,
    filter_organisation: String,
    filter_role: String,
    filter_status: String,
    email: String,
    name: String,
    organisation: String,
    errors: Vec<String>,
}

/// The invitation form: `organisation` is an organisation id, or `wmda` for a WMDA admin.
#[derive(Deserialize, Default)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    organisation: String,
}

impl UserRow {
    fn of(u: &crate::store::UserSummary, admin: &CurrentUser, passkeys_on: bool) -> Self {
        UserRow {
            id: u.user.id.to_string(),
            email: u.user.email.to_string(),
            name: u.user.shown_name().to_owned(),
            organisation: u.organisation.clone().unwrap_or_else(|| "WMDA".into()),
            role: match u.user.role {
                UserRole::WmdaAdmin => "WMDA admin".into(),
                UserRole::Member(_) if u.grants > 0 => "credential manager".into(),
                UserRole::Member(_) => "member".into(),
            },
            status: u.status.as_str().to_owned(),
            grants: u.grants,
            // Only an account without a password can be sent an invitation again.
            invited: u.status == UserStatus::Invited && !u.has_password,
            disabled: u.status == UserStatus::Disabled,
            mfa_resettable: u.has_password && u.status != UserStatus::Disabled,
            is_me: u.user.id == admin.user.id,
            factors: factors_in_words(u.factors),
            passkey_link: passkeys_on
                && u.user.role == UserRole::WmdaAdmin
                && u.status == UserStatus::Active
                && u.factors.passkeys == 0
                && u.user.id != admin.user.id,
            disable: disable_question(&u.user),
            enable: enable_question(&u.user),
            reset_mfa: reset_mfa_question(&u.user),
        }
    }
}

async fn page_for(
    state: &AppState,
    admin: &CurrentUser,
    q: &ListQuery,
    form: &InviteForm,
    errors: Vec<String>,
) -> Result<Response, AppError> {
    let filter = UserFilter {
        organisation_id: uuid::Uuid::parse_str(&q.organisation).ok(),
        wmda_admin: match q.role.as_str() {
            "wmda-admin" => Some(true),
            "member" => Some(false),
            _ => None,
        },
        status: UserStatus::parse(&q.status),
    };
    let users = state
        .store
        .list_users(&filter)
        .await?
        .into_iter()
        .map(|u| UserRow::of(&u, admin, state.services.passkeys.enabled()))
        .collect();
    let organisations = state
        .store
        .list_organisations()
        .await?
        .into_iter()
        .map(|o| (o.id.to_string(), o.reference().to_string()))
        .collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = UsersPage {
        nav: Nav::of(admin),
        users,
        organisations,
        filter_organisation: q.organisation.clone(),
        filter_role: q.role.clone(),
        filter_status: q.status.clone(),
        email: form.email.clone(),
        name: form.name.clone(),
        organisation: form.organisation.clone(),
        errors,
    };
    Ok((status, page).into_response())
}

/// `GET /admin/users?organisation=&role=&status=`.
pub async fn list(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    Query(q): Query<ListQuery>,
) -> Result<Response, AppError> {
    page_for(&state, &admin, &q, &InviteForm::default(), vec![]).await
}

/// `POST /admin/users`: invites a user (email, name, organisation or WMDA admin); the link is
/// emailed, never shown to the admin.
pub async fn invite(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    session: Session,
    Form(form): Form<InviteForm>,
) -> Result<Response, AppError> {
    let mut errors = Vec::new();
    let email = EmailAddress::parse(&form.email).map_err(|e| errors.push(e.to_string())).ok();
    let role = if form.organisation == "wmda" {
        Some(UserRole::WmdaAdmin)
    } else {
        match uuid::Uuid::parse_str(&form.organisation) {
            Ok(org) => match state.store.find_organisation_by_id(org).await {
                Ok(o) => Some(UserRole::Member(o.id)),
                Err(StoreError::NotFound) => {
                    errors.push("Choose an organisation, or WMDA for a WMDA admin.".into());
                    None
                }
                Err(e) => return Err(e.into()),
            },
            Err(_) => {
                errors.push("Choose an organisation, or WMDA for a WMDA admin.".into());
                None
            }
        }
    };
    if form.name.chars().count() > 200 || form.name.chars().any(crate::domain::text::breaks_one_line) {
        errors.push("The name has at most 200 characters, on one line.".into());
    }
    let (Some(email), Some(role), true) = (email, role, errors.is_empty()) else {
        return page_for(&state, &admin, &ListQuery::default(), &form, errors).await;
    };
    let new = NewUser { email: email.clone(), display_name: form.name.trim().to_owned(), role };
    match invite_user(&state.store, &state.settings.base_url, &new, &admin.actor(), state.clock.now()).await {
        Ok(_) => {
            state.services.mailer.wake();
            notice::redirect(
                &session,
                USERS,
                format!("Invitation emailed to {email}. The link works once, for 72 hours."),
            )
            .await
        }
        Err(StoreError::Conflict(c)) => {
            page_for(&state, &admin, &ListQuery::default(), &form, vec![c.to_string()]).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/users/{id}/resend`: a new invitation link (the old one stops working).
pub async fn resend(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathId(user): PathId<Uuid>,
    session: Session,
) -> Result<Response, AppError> {
    let user = state.store.find_user(user).await?;
    let new = NewUser { email: user.email.clone(), display_name: user.display_name.clone(), role: user.role };
    match invite_user(&state.store, &state.settings.base_url, &new, &admin.actor(), state.clock.now()).await {
        Ok(_) => {
            state.services.mailer.wake();
            let text = format!("A new invitation was emailed to {}; the previous link no longer works.", user.email);
            notice::redirect(&session, USERS, text).await
        }
        Err(StoreError::Conflict(c)) => {
            page_for(&state, &admin, &ListQuery::default(), &InviteForm::default(), vec![c.to_string()]).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The form of a change that asks first: `confirm=yes` once asked ([`confirm`]).
#[derive(Deserialize, Default)]
pub struct ConfirmForm {
    #[serde(default)]
    confirm: String,
}

/// What disabling `user` asks first.
fn disable_question(user: &User) -> Question {
    Question {
        title: format!("Disable {}?", user.shown_name()),
        detail: "Their sessions end at once and they can no longer sign in or reset their password. Their \
                 credential-manager roles and the secrets they created stay as they are; enable them to give the \
                 access back."
            .into(),
        button: "Disable".into(),
        danger: true,
    }
}

/// What enabling `user` asks first.
fn enable_question(user: &User) -> Question {
    Question {
        title: format!("Enable {}?", user.shown_name()),
        detail: "They can sign in again with their password and authenticator, with the credential-manager roles \
                 they held."
            .into(),
        button: "Enable".into(),
        danger: false,
    }
}

/// What resetting the MFA of `user` asks first.
fn reset_mfa_question(user: &User) -> Question {
    Question {
        title: format!("Reset the MFA of {}?", user.shown_name()),
        detail: format!(
            "Their authenticator and recovery codes stop working and their sessions end. {} gets an email with a \
             link, valid for 72 hours, to enrol a new authenticator; it asks for their current password.",
            user.email
        ),
        button: "Reset MFA".into(),
        danger: true,
    }
}

async fn set_disabled(
    state: &AppState,
    (admin, session): (&CurrentUser, &Session),
    user: Uuid,
    disabled: bool,
    confirm: &str,
) -> Result<Response, AppError> {
    let user = state.store.find_user(user).await?;
    if user.id == admin.user.id {
        let errors = vec!["You cannot disable your own account.".to_owned()];
        return page_for(state, admin, &ListQuery::default(), &InviteForm::default(), errors).await;
    }
    let (question, verb) =
        if disabled { (disable_question(&user), "disable") } else { (enable_question(&user), "enable") };
    if !confirm::given(confirm) {
        let action = format!("{USERS}/{}/{verb}", user.id);
        return Ok(confirm::page(admin, question, None, (&action, &[]), USERS));
    }
    let now = state.clock.now();
    state.store.set_user_disabled((&user, &admin.actor()), disabled, now).await?;
    let text = if disabled {
        format!("{} is disabled: their sessions ended and they can no longer sign in.", user.shown_name())
    } else {
        format!("{} is enabled: they can sign in again.", user.shown_name())
    };
    notice::redirect(session, USERS, text).await
}

/// `POST /admin/users/{id}/disable`: ends the user's sessions at once (asks first).
pub async fn disable(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathId(user): PathId<Uuid>,
    session: Session,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, AppError> {
    set_disabled(&state, (&admin, &session), user, true, &form.confirm).await
}

/// `POST /admin/users/{id}/enable` (asks first).
pub async fn enable(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathId(user): PathId<Uuid>,
    session: Session,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, AppError> {
    set_disabled(&state, (&admin, &session), user, false, &form.confirm).await
}

/// A user's second factors in words, for the users page (issue 19, point 4).
fn factors_in_words(f: crate::store::Factors) -> String {
    let plural = |n: i64, one: &str, many: &str| if n == 1 { format!("1 {one}") } else { format!("{n} {many}") };
    if !f.totp && f.passkeys == 0 {
        return "none yet".to_owned();
    }
    let mut parts = Vec::new();
    if f.totp {
        parts.push("TOTP".to_owned());
    }
    if f.passkeys > 0 {
        parts.push(plural(f.passkeys, "passkey", "passkeys"));
    }
    parts.push(plural(f.recovery_codes, "recovery code", "recovery codes"));
    parts.join(", ")
}

/// `POST /admin/users/{id}/passkey-link`: emails a WMDA admin a passkey enrolment link (issue
/// 19: under `PORTAL_ADMIN_MFA=passkey` an admin without a passkey registers one only from a
/// link in their mailbox). Not for oneself: a session's own admin asks another admin.
pub async fn passkey_link(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathId(user): PathId<Uuid>,
    session: Session,
) -> Result<Response, AppError> {
    let user = state.store.find_user(user).await?;
    if user.id == admin.user.id || user.role != UserRole::WmdaAdmin || !state.services.passkeys.enabled() {
        return Err(AppError::NotFound);
    }
    let now = state.clock.now();
    let text =
        match crate::auth::link::send_passkey_link(&state.store, &state.settings.base_url, &user, &admin.actor(), now)
            .await
        {
            Ok(_) => {
                state.services.mailer.wake();
                format!("A passkey enrolment link was emailed to {} (valid 72 hours).", user.email)
            }
            Err(crate::auth::link::PasskeyLinkError::NotApplicable(_)) => format!(
                "{} has not set up a password and authenticator, or is disabled: no passkey enrolment link was sent.",
                user.email
            ),
            Err(crate::auth::link::PasskeyLinkError::Store(e)) => return Err(e.into()),
        };
    notice::redirect(&session, USERS, text).await
}

/// `POST /admin/users/{id}/reset-mfa` (asks first): removes the authenticator and recovery
/// codes, ends the user's sessions, and emails a one-time re-enrolment link (which asks for the
/// current password, so a password alone never enrols a new authenticator).
pub async fn reset_mfa(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathId(user): PathId<Uuid>,
    session: Session,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, AppError> {
    let user = state.store.find_user(user).await?;
    if !confirm::given(&form.confirm) {
        let action = format!("{USERS}/{}/reset-mfa", user.id);
        return Ok(confirm::page(&admin, reset_mfa_question(&user), None, (&action, &[]), USERS));
    }
    crate::auth::link::reset_mfa(&state.store, &state.settings.base_url, &user, &admin.actor(), state.clock.now())
        .await?;
    state.services.mailer.wake();
    let text = format!(
        "MFA reset for {}: their sessions ended, and a re-enrolment link was emailed to {}.",
        user.shown_name(),
        user.email
    );
    notice::redirect(&session, USERS, text).await
}
