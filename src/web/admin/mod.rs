//! The WMDA admin console under `/admin` (DESIGN.md section 4): organisations, applications and
//! their resources, users, credential-manager grants, the overview and the audit log. Every route
//! takes [`WmdaAdmin`](super::extract::WmdaAdmin), so anyone else gets 404; every POST passes the
//! CSRF layer and records an audit event in the transaction of its change.

mod applications;
mod audit;
mod organisations;
mod overview;
mod reminders;
mod resources;
mod users;

use axum::Router;
use axum::routing::{get, post};

use super::AppState;

/// The routes under `/admin`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(overview::page))
        .route("/admin/organisations", get(organisations::list).post(organisations::create))
        .route("/admin/organisations/{id}", get(organisations::show))
        .route("/admin/organisations/{id}/rename", post(organisations::rename))
        .route("/admin/organisations/{id}/applications/new", get(applications::new_page))
        .route("/admin/organisations/{id}/applications", post(applications::create))
        .route("/admin/applications", get(applications::list))
        .route("/admin/applications/{id}", get(applications::show))
        .route("/admin/applications/{id}/grants", post(applications::grant))
        .route("/admin/applications/{id}/grants/{user_id}/revoke", post(applications::revoke))
        .route("/admin/applications/{id}/secrets/{secret_id}/delete", post(applications::delete_secret))
        .route("/admin/applications/{id}/self-rotation", post(applications::self_rotation))
        .route("/admin/applications/{id}/webhooks/{endpoint_id}/remove", post(applications::remove_webhook))
        .route("/admin/resources", get(resources::list))
        .route("/admin/resources/{id}", post(resources::update))
        .route("/admin/users", get(users::list).post(users::invite))
        .route("/admin/users/{id}/resend", post(users::resend))
        .route("/admin/users/{id}/disable", post(users::disable))
        .route("/admin/users/{id}/enable", post(users::enable))
        .route("/admin/users/{id}/reset-mfa", post(users::reset_mfa))
        .route("/admin/users/{id}/passkey-link", post(users::passkey_link))
        .route("/admin/audit", get(audit::page))
        .route("/admin/reminders", get(reminders::page))
}
