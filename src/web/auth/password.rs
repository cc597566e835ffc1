//! `/password/forgot` and `/password/reset/{token}`: password reset by email. The answer never
//! tells whether the email has an account; the TOTP step is still needed afterwards.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::usable_link;
use crate::auth::NewPassword;
use crate::domain::EmailAddress;
use crate::domain::LinkPurpose;
use crate::store::Actor;
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::ClientIp;
use crate::web::extract::Form;
use crate::web::pages::{Nav, link_refused, message};

#[derive(Template, WebTemplate)]
#[template(path = "auth/password_forgot.html")]
struct ForgotPage {
    nav: Option<Nav>,
    sent: bool,
    email: String,
    error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/password_reset.html")]
struct ResetPage {
    nav: Option<Nav>,
    email: String,
    action: String,
    error: Option<String>,
}

/// The forgot-password form.
#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// The new-password form.
#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

/// `GET /password/forgot`.
pub async fn forgot_show() -> impl IntoResponse {
    ForgotPage { nav: None, sent: false, email: String::new(), error: None }
}

/// `POST /password/forgot`: queues the request for `jobs::password_resets` (which emails a link,
/// valid 1 hour, when the address has an account with an active authenticator, at most 3 an hour
/// per account) and answers at once, the same way either way; 10 requests an hour per address,
/// then 429.
pub async fn forgot_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Form(form): Form<ForgotForm>,
) -> Result<Response, AppError> {
    let email = match EmailAddress::parse(&form.email) {
        Ok(e) => e,
        Err(e) => {
            return Ok(ForgotPage {
                nav: None,
                sent: false,
                email: form.email.trim().to_owned(),
                error: Some(e.to_string()),
            }
            .into_response());
        }
    };
    let now = state.clock.now();
    // Per address, known and unknown emails alike: 10 an hour, then 429.
    // Shared by replicas (issue 12): memory, then the database's block.
    let key = crate::auth::throttle::address_key(ip);
    let limit = &state.services.reset_requests;
    if let crate::domain::failure_window::ThrottleVerdict::Blocked { retry_after } =
        limit.check_shared(&state.store, &key, now).await
    {
        limit.refused(key, now);
        metrics::counter!("sign_in_throttled_total", "scope" => "password_reset").increment(1);
        return Err(AppError::TooManyRequests {
            retry_after_seconds: crate::domain::failure_window::ThrottleVerdict::retry_after_seconds(retry_after),
        });
    }
    // Checked and counted at once: simultaneous requests cannot all pass the check first.
    let Ok(_attempt) = limit.begin(key, now) else {
        metrics::counter!("sign_in_throttled_total", "scope" => "password_reset").increment(1);
        return Err(AppError::TooManyRequests { retry_after_seconds: 1 });
    };
    limit.record(key, now);
    // The lookup, the per-account limit and the email happen off the request path, so the
    // answer takes the same time whether or not the address has an account.
    state.services.password_resets.submit(email, ip, now);
    Ok(ForgotPage { nav: None, sent: true, email: String::new(), error: None }.into_response())
}

/// `GET /password/reset/{token}`.
pub async fn reset_show(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    Ok(match usable_link(&state, &token, &[LinkPurpose::PasswordReset], ip).await? {
        Some((_, creds)) => ResetPage {
            nav: None,
            email: creds.user.email.to_string(),
            action: format!("/password/reset/{token}"),
            error: None,
        }
        .into_response(),
        None => link_refused(&token),
    })
}

/// `POST /password/reset/{token}`: sets the new password and ends every session of the user.
pub async fn reset_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
    Path(token): Path<String>,
    Form(form): Form<ResetForm>,
) -> Result<Response, AppError> {
    let Some((link, creds)) = usable_link(&state, &token, &[LinkPurpose::PasswordReset], ip).await? else {
        return Ok(link_refused(&token));
    };
    let user = &creds.user;
    let inputs = [user.email.as_str(), user.display_name.as_str()];
    let password = match NewPassword::parse(&form.password, &form.password_confirm, &inputs) {
        Ok(p) => p,
        Err(e) => {
            return Ok(ResetPage {
                nav: None,
                email: user.email.to_string(),
                action: format!("/password/reset/{token}"),
                error: Some(e.to_string()),
            }
            .into_response());
        }
    };
    let now = state.clock.now();
    let hash = state.services.hasher.hash(&password).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let actor = Actor::user(user, ip);
    if !state.store.reset_password(&link, &hash, (user, &actor), now).await? {
        return Ok(link_refused(&token));
    }
    session.flush().await?;
    Ok(message(
        StatusCode::OK,
        "Password changed",
        &[
            "Your password has been changed, and every session of your account has ended.",
            "Sign in with the new password and a code from your authenticator app.",
        ],
        Some(("/login", "Sign in")),
    ))
}
