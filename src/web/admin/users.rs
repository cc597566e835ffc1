//! Users: the filtered list, invitations, disable and enable, MFA reset.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::invitation::invite_user;
use crate::domain::EmailAddress;
use crate::store::{NewUser, StoreError, UserFilter, UserRole, UserStatus};
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::PathId;
use crate::web::extract::{CurrentUser, WmdaAdmin};
use crate::web::extract::{Form, Query};
use crate::web::pages::Nav;
use uuid::Uuid;

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
    notice: Option<String>,
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
    fn of(u: &crate::store::UserSummary, admin: &CurrentUser) -> Self {
        UserRow {
            id: u.user.id.to_string(),
            email: u.user.email.to_string(),
            name: u.user.display_name.clone(),
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
        }
    }
}

async fn page_for(
    state: &AppState,
    admin: &CurrentUser,
    q: &ListQuery,
    form: &InviteForm,
    errors: Vec<String>,
    notice: Option<String>,
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
    let users = state.store.list_users(&filter).await?.into_iter().map(|u| UserRow::of(&u, admin)).collect();
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
        notice,
    };
    Ok((status, page).into_response())
}

/// `GET /admin/users?organisation=&role=&status=`.
pub async fn list(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    Query(q): Query<ListQuery>,
) -> Result<Response, AppError> {
    page_for(&state, &admin, &q, &InviteForm::default(), vec![], None).await
}

/// `POST /admin/users`: invites a user (email, name, organisation or WMDA admin); the link is
/// emailed, never shown to the admin.
pub async fn invite(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
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
    if form.name.chars().count() > 200 || form.name.chars().any(char::is_control) {
        errors.push("The name has at most 200 characters, on one line.".into());
    }
    let (Some(email), Some(role), true) = (email, role, errors.is_empty()) else {
        return page_for(&state, &admin, &ListQuery::default(), &form, errors, None).await;
    };
    let new = NewUser { email: email.clone(), display_name: form.name.trim().to_owned(), role };
    match invite_user(&state.store, &state.settings.base_url, &new, &admin.actor(), state.clock.now()).await {
        Ok(_) => {
            state.services.mailer.wake();
            let notice = Some(format!("Invitation emailed to {email}. The link works once, for 72 hours."));
            page_for(&state, &admin, &ListQuery::default(), &InviteForm::default(), vec![], notice).await
        }
        Err(StoreError::Conflict(c)) => {
            page_for(&state, &admin, &ListQuery::default(), &form, vec![c.to_string()], None).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/users/{id}/resend`: a new invitation link (the old one stops working).
pub async fn resend(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathId(user): PathId<Uuid>,
) -> Result<Response, AppError> {
    let user = state.store.find_user(user).await?;
    let new = NewUser { email: user.email.clone(), display_name: user.display_name.clone(), role: user.role };
    match invite_user(&state.store, &state.settings.base_url, &new, &admin.actor(), state.clock.now()).await {
        Ok(_) => {
            state.services.mailer.wake();
            let notice =
                Some(format!("A new invitation was emailed to {}; the previous link no longer works.", user.email));
            page_for(&state, &admin, &ListQuery::default(), &InviteForm::default(), vec![], notice).await
        }
        Err(StoreError::Conflict(c)) => {
            page_for(&state, &admin, &ListQuery::default(), &InviteForm::default(), vec![c.to_string()], None).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn set_disabled(state: &AppState, admin: &CurrentUser, user: Uuid, disabled: bool) -> Result<Response, AppError> {
    let user = state.store.find_user(user).await?;
    if user.id == admin.user.id {
        let errors = vec!["You cannot disable your own account.".to_owned()];
        return page_for(state, admin, &ListQuery::default(), &InviteForm::default(), errors, None).await;
    }
    let now = state.clock.now();
    state.store.set_user_disabled((&user, &admin.actor()), disabled, now).await?;
    Ok(Redirect::to("/admin/users").into_response())
}

/// `POST /admin/users/{id}/disable`: ends the user's sessions at once.
pub async fn disable(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathId(user): PathId<Uuid>,
) -> Result<Response, AppError> {
    set_disabled(&state, &admin, user, true).await
}

/// `POST /admin/users/{id}/enable`.
pub async fn enable(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathId(user): PathId<Uuid>,
) -> Result<Response, AppError> {
    set_disabled(&state, &admin, user, false).await
}

/// `POST /admin/users/{id}/reset-mfa`: removes the authenticator and recovery codes, ends the
/// user's sessions, and emails a one-time re-enrolment link (which asks for the current password,
/// so a password alone never enrols a new authenticator).
pub async fn reset_mfa(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathId(user): PathId<Uuid>,
) -> Result<Response, AppError> {
    let user = state.store.find_user(user).await?;
    crate::auth::link::reset_mfa(&state.store, &state.settings.base_url, &user, &admin.actor(), state.clock.now())
        .await?;
    state.services.mailer.wake();
    let notice =
        Some(format!("MFA reset for {}: their sessions ended, and a re-enrolment link was emailed.", user.email));
    page_for(&state, &admin, &ListQuery::default(), &InviteForm::default(), vec![], notice).await
}
