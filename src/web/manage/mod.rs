//! The Manage API Credentials page (seed guide, section 4): a credential manager's applications,
//! client IDs and secrets; creating a secret shown once; deleting a secret.

mod activity;
mod create;
mod delete;
mod rotation;
pub(crate) mod view;
mod webhooks;

use axum::Router;
use axum::routing::{get, post};

use super::AppState;

/// The routes under `/manage-api-credentials`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/manage-api-credentials", get(view::page))
        .route("/manage-api-credentials/activity", get(activity::page))
        .route("/manage-api-credentials/{client_id}/secrets/new", get(create::new_page))
        .route("/manage-api-credentials/{client_id}/secrets", post(create::create))
        .route("/manage-api-credentials/{client_id}/secrets/{secret_id}", get(delete::confirm_page))
        // POST only: a GET here answers 405.
        .route("/manage-api-credentials/{client_id}/secrets/{secret_id}/delete", post(delete::delete))
        .route("/manage-api-credentials/{client_id}/self-rotation", post(rotation::switch))
        .route("/manage-api-credentials/{client_id}/webhooks/new", get(webhooks::new_page))
        // A URL of up to 2,000 characters, percent-encoded, gets the form's message, not a 413.
        .route(
            "/manage-api-credentials/{client_id}/webhooks",
            post(webhooks::add).layer(axum::extract::DefaultBodyLimit::max(super::ADMIN_BODY_LIMIT)),
        )
        .route("/manage-api-credentials/{client_id}/webhooks/{endpoint_id}/test", post(webhooks::test))
        .route("/manage-api-credentials/{client_id}/webhooks/{endpoint_id}/enable", post(webhooks::enable))
        .route("/manage-api-credentials/{client_id}/webhooks/{endpoint_id}/remove", post(webhooks::remove))
}
