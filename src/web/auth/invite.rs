//! `/invite/{token}`: accept an invitation (choose a password) or use an MFA re-enrolment link
//! (confirm the current password); both continue at `/mfa/setup`.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{advance, usable_link};
use crate::auth::NewPassword;
use crate::auth::session::SessionAuth;
use crate::domain::LinkPurpose;
use crate::domain::ThrottleVerdict;
use crate::store::{Actor, Credentials, LinkRecord};
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::ClientIp;
use crate::web::extract::Form;
use crate::web::pages::{Nav, link_refused};

#[derive(Template, WebTemplate)]
#[template(path = "auth/invite.html")]
struct InvitePage {
    nav: Option<Nav>,
    reenrolment: bool,
    email: String,
    action: String,
    error: Option<String>,
}

/// The form: `password` and `password_confirm` (invitation) or `password` (re-enrolment).
#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

const PURPOSES: &[LinkPurpose] = &[LinkPurpose::Invitation, LinkPurpose::MfaReenrolment];

fn page(link: &LinkRecord, creds: &Credentials, token: &str, error: Option<String>) -> Response {
    InvitePage {
        nav: None,
        reenrolment: link.purpose == LinkPurpose::MfaReenrolment,
        email: creds.user.email.to_string(),
        action: format!("/invite/{token}"),
        error,
    }
    .into_response()
}

/// `GET /invite/{token}`.
pub async fn show(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    Ok(match usable_link(&state, &token, PURPOSES, ip).await? {
        Some((link, creds)) => page(&link, &creds, &token, None),
        None => link_refused(&token),
    })
}

/// `POST /invite/{token}`.
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
    Path(token): Path<String>,
    Form(form): Form<InviteForm>,
) -> Result<Response, AppError> {
    let Some((link, creds)) = usable_link(&state, &token, PURPOSES, ip).await? else { return Ok(link_refused(&token)) };
    let now = state.clock.now();
    let user = &creds.user;
    let actor = Actor::user(user, ip);
    let used = match link.purpose {
        LinkPurpose::Invitation => {
            let inputs = [user.email.as_str(), user.display_name.as_str()];
            let password = match NewPassword::parse(&form.password, &form.password_confirm, &inputs) {
                Ok(p) => p,
                Err(e) => return Ok(page(&link, &creds, &token, Some(e.to_string()))),
            };
            let hash = state.services.hasher.hash(&password).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            state.store.accept_invitation(&link, &hash, (user, &actor), now).await?
        }
        LinkPurpose::MfaReenrolment | LinkPurpose::PasswordReset | LinkPurpose::PasskeyEnrolment => {
            let throttle = &state.services.throttle;
            let key = user.email.as_str();
            // Held until the answer: an attempt in progress counts as a failure (bursts).
            let attempt = throttle.begin_pair(&state.store, key, ip, now).await;
            if let Err(ThrottleVerdict::Blocked { retry_after }) = attempt {
                throttle.refused(Some(key), ip, now);
                return Ok(page(&link, &creds, &token, Some(ThrottleVerdict::message(retry_after))));
            }
            if !state.services.hasher.verify(&form.password, creds.password_hash.as_deref()).await {
                let error = throttle
                    .record_failure(Some(key), ip, now)
                    .map_or_else(|| "The password is wrong.".to_owned(), ThrottleVerdict::message);
                return Ok(page(&link, &creds, &token, Some(error)));
            }
            state.store.accept_reenrolment(&link, (user, &actor), now).await?
        }
    };
    if !used {
        return Ok(link_refused(&token));
    }
    advance(&session, SessionAuth::Enrolling { user_id: user.id, at: now }).await?;
    Ok(Redirect::to("/mfa/setup").into_response())
}
