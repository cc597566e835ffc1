//! Resources and their audiences (one value per resource, shared by every application that holds
//! it; unique; never a resource id).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::domain::{Audience, ResourceId};
use crate::store::StoreError;
use crate::web::AppState;
use crate::web::confirm::{self, Question};
use crate::web::error::AppError;
use crate::web::extract::Form;
use crate::web::extract::PathId;
use crate::web::extract::{CurrentUser, WmdaAdmin};
use crate::web::notice;
use crate::web::pages::Nav;
use tower_sessions::Session;

/// A resource's line.
pub struct ResourceRow {
    id: String,
    title: String,
    api: String,
    audience: String,
    error: Option<String>,
    change: Question,
}

/// The resources page, where every change on it ends.
const RESOURCES: &str = "/admin/resources";

/// What changing the audience of `resource` from `current` asks first; tokens already issued
/// stay valid for at most `token_lifetime_minutes`.
fn audience_question(resource: ResourceId, current: &str, token_lifetime_minutes: i64) -> Question {
    Question {
        title: format!("Change the audience of {}?", resource.title()),
        detail: format!(
            "Every token issued from now on for {} carries the new audience, for every application that holds it. \
             APIs that accept only the current audience, {current}, will refuse those tokens. Tokens already \
             issued keep the current audience until they expire (at most {token_lifetime_minutes} minutes).",
            resource.as_str()
        ),
        button: "Change audience".into(),
        danger: true,
    }
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
    let minutes = state.settings.token_lifetime_seconds / 60;
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
                change: audience_question(r.id, &r.audience, minutes),
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

/// The audience form; `confirm=yes` once asked ([`confirm`]).
#[derive(Deserialize)]
pub struct AudienceForm {
    #[serde(default)]
    audience: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /admin/resources/{id}`: changes the audience (asks first; audited).
pub async fn update(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathId(resource): PathId<ResourceId>,
    session: Session,
    Form(form): Form<AudienceForm>,
) -> Result<Response, AppError> {
    let refuse = |message: String| Some((resource, form.audience.clone(), message));
    let audience = match Audience::parse(&form.audience) {
        Ok(audience) => audience,
        Err(e) => return page_for(&state, &admin, refuse(e.to_string())).await,
    };
    let resources = state.store.list_resources().await?;
    let current = resources.iter().find(|r| r.id == resource).ok_or(AppError::NotFound)?;
    if current.audience == audience.as_str() {
        let text = format!("The audience of {} is already {audience}: nothing changed.", resource.title());
        return notice::redirect(&session, RESOURCES, text).await;
    }
    if !confirm::given(&form.confirm) {
        let question = audience_question(resource, &current.audience, state.settings.token_lifetime_seconds / 60);
        let action = format!("{RESOURCES}/{resource}");
        let fields = [("audience", audience.as_str())];
        return Ok(confirm::page(
            &admin,
            question,
            Some(("New audience", audience.as_str())),
            (&action, &fields),
            RESOURCES,
        ));
    }
    match state.store.set_resource_audience(resource, &audience, &admin.actor(), state.clock.now()).await {
        Ok(()) => {
            let text =
                format!("The audience of {} is now {audience}: tokens issued from now on carry it.", resource.title());
            notice::redirect(&session, RESOURCES, text).await
        }
        Err(StoreError::Conflict(c)) => page_for(&state, &admin, refuse(c.to_string())).await,
        Err(e) => Err(e.into()),
    }
}
