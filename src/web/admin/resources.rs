//! Resources and their audiences (one value per resource, shared by every application that holds
//! it; unique; never a resource id).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::domain::ResourceId;
use crate::store::StoreError;
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::Form;
use crate::web::extract::PathId;
use crate::web::extract::{CurrentUser, WmdaAdmin};
use crate::web::pages::Nav;

/// A resource's line.
pub struct ResourceRow {
    id: String,
    title: String,
    api: String,
    audience: String,
    error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/resources.html")]
struct ResourcesPage {
    nav: Option<Nav>,
    resources: Vec<ResourceRow>,
}

async fn page_for(
    state: &AppState,
    admin: &CurrentUser,
    failed: Option<(ResourceId, String, String)>,
) -> Result<Response, AppError> {
    let resources = state
        .store
        .list_resources()
        .await?
        .into_iter()
        .map(|r| {
            let mut row = ResourceRow {
                id: r.id.to_string(),
                title: r.id.title().to_owned(),
                api: r.id.api().to_string(),
                audience: r.audience,
                error: None,
            };
            if let Some((id, typed, error)) = &failed {
                if *id == r.id {
                    row.audience = typed.clone();
                    row.error = Some(error.clone());
                }
            }
            row
        })
        .collect();
    let status = if failed.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok((status, ResourcesPage { nav: Nav::of(admin), resources }).into_response())
}

/// `GET /admin/resources`.
pub async fn list(State(state): State<AppState>, WmdaAdmin(admin): WmdaAdmin) -> Result<Response, AppError> {
    page_for(&state, &admin, None).await
}

/// The audience form.
#[derive(Deserialize)]
pub struct AudienceForm {
    #[serde(default)]
    audience: String,
}

/// `POST /admin/resources/{id}`: changes the audience (audited).
pub async fn update(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathId(resource): PathId<ResourceId>,
    Form(form): Form<AudienceForm>,
) -> Result<Response, AppError> {
    match state.store.set_resource_audience(resource, &form.audience, &admin.actor(), state.clock.now()).await {
        Ok(()) => Ok(Redirect::to("/admin/resources").into_response()),
        Err(StoreError::Conflict(c)) => {
            page_for(&state, &admin, Some((resource, form.audience.clone(), c.to_string()))).await
        }
        Err(e) => Err(e.into()),
    }
}
