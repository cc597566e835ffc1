//! `GET /admin`: what needs attention.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::domain::DaysLeft;
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::WmdaAdmin;
use crate::web::pages::Nav;

/// A secret that expires soon.
pub struct SoonRow {
    application_id: String,
    application: String,
    name: String,
    hint: String,
    expires_on: String,
    days_left: String,
}

/// A live secret a leak report found in public (issue 15): listed first.
pub struct ExposedRow {
    application_id: String,
    application: String,
    name: String,
    hint: String,
    expires_on: String,
    exposed: crate::web::manage::view::ExposureView,
}

/// An application that needs attention.
pub struct AppRow {
    id: String,
    name: String,
    managers: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/overview.html")]
struct OverviewPage {
    nav: Option<Nav>,
    exposed: Vec<ExposedRow>,
    soon: Vec<SoonRow>,
    without_secret: Vec<AppRow>,
    few_managers: Vec<AppRow>,
    /// No organisation exists yet: the page says where to start.
    empty: bool,
}

/// `GET /admin`: first the live secrets that leak reports found in public, then secrets with
/// fewer than 30 days left across all organisations; applications
/// without an unexpired secret; applications with fewer than two credential managers.
pub async fn page(State(state): State<AppState>, WmdaAdmin(admin): WmdaAdmin) -> Result<Response, AppError> {
    let today = state.clock.today();
    let soon = state
        .store
        .secrets_expiring_soon(today)
        .await?
        .into_iter()
        .map(|s| SoonRow {
            application_id: s.application_id.to_string(),
            application: s.application,
            name: s.secret.name,
            hint: s.secret.hint.shown(),
            expires_on: s.secret.expires_on.to_string(),
            days_left: DaysLeft::between(today, s.secret.expires_on).to_string(),
        })
        .collect();
    let exposed = state
        .store
        .exposed_secrets(state.clock.now())
        .await?
        .into_iter()
        .filter_map(|s| {
            let exposed = crate::web::manage::view::ExposureView::of(s.secret.exposure.as_ref()?);
            Some(ExposedRow {
                application_id: s.application_id.to_string(),
                application: s.application,
                name: s.secret.name,
                hint: s.secret.hint.shown(),
                expires_on: s.secret.expires_on.to_string(),
                exposed,
            })
        })
        .collect();
    let apps = state.store.application_attention(state.clock.now()).await?;
    let empty = apps.is_empty() && state.store.list_organisations().await?.is_empty();
    let row = |a: &crate::store::ApplicationAttention| AppRow {
        id: a.id.to_string(),
        name: a.name.clone(),
        managers: a.managers,
    };
    Ok(OverviewPage {
        nav: Nav::of(&admin),
        exposed,
        soon,
        without_secret: apps.iter().filter(|a| a.live_secrets == 0).map(row).collect(),
        few_managers: apps.iter().filter(|a| a.managers < 2).map(row).collect(),
        empty,
    }
    .into_response())
}
