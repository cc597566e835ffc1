//! An application's webhook endpoints on the Manage page (issue 17, points 1 and 6; DESIGN.md
//! section 9): the add form (a page of its own), the one answer that shows a `standard`
//! endpoint's signing secret, "Send test event" (once a minute), "Enable" and "Remove". Every
//! action first finds the application among those the user manages now (404 otherwise), and an
//! endpoint only within it.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use crate::domain::ClientId;
use crate::domain::webhook::{EndpointFormErrors, WebhookEvent, WebhookFormat};
use crate::oauth::webhook_endpoints::{AddError, Added};
use crate::store::{ManagedApplication, TestEvent};
use crate::web::AppState;
use crate::web::confirm;
use crate::web::error::AppError;
use crate::web::extract::{CurrentUser, Form, OrganisationMember, PathId, PathIds};
use crate::web::manage::view::utc_minute;
use crate::web::notice;
use crate::web::pages::Nav;

/// The add form's fields as typed (missing ones empty, never a 4xx); `events` repeats.
#[derive(Deserialize, Default)]
pub struct EndpointFields {
    #[serde(default)]
    url: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    form_id: String,
}

/// A choice of the form: its value, its words, whether it is checked.
pub struct Choice {
    /// The form's value, e.g. `slack`.
    pub value: &'static str,
    /// Its words.
    pub label: &'static str,
    /// Checked.
    pub checked: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "manage/webhook_new.html")]
struct NewEndpointPage {
    nav: Option<Nav>,
    app_name: String,
    client_id: String,
    url: String,
    formats: Vec<Choice>,
    events: Vec<Choice>,
    errors: EndpointFormErrors,
    form_error: Option<String>,
    max_endpoints: i64,
    /// The form's one-time id: the one submitted when it is re-rendered, else a new one.
    form_id: String,
}

impl NewEndpointPage {
    fn of(current: &CurrentUser, app: &ManagedApplication, fields: &EndpointFields) -> Self {
        let format = if fields.format.is_empty() { WebhookFormat::Standard.as_str() } else { fields.format.trim() };
        NewEndpointPage {
            nav: Nav::of(current),
            app_name: app.application.name.clone(),
            client_id: app.application.client_id.to_string(),
            url: fields.url.clone(),
            formats: WebhookFormat::ALL
                .iter()
                .map(|f| Choice { value: f.as_str(), label: f.label(), checked: f.as_str() == format })
                .collect(),
            events: WebhookEvent::ALL
                .iter()
                .map(|e| Choice {
                    value: e.as_str(),
                    label: e.description(),
                    checked: fields.events.iter().any(|chosen| chosen.trim() == e.as_str()),
                })
                .collect(),
            errors: EndpointFormErrors::default(),
            form_error: None,
            max_endpoints: crate::domain::webhook::MAX_ENDPOINTS,
            form_id: Uuid::parse_str(fields.form_id.trim()).unwrap_or_else(|_| Uuid::new_v4()).to_string(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "manage/webhook_added.html")]
struct AddedPage {
    nav: Option<Nav>,
    app_name: String,
    client_id: String,
    url: String,
    format: &'static str,
    events: Vec<&'static str>,
    signing_secret: Option<String>,
}

/// The application's section of the Manage page.
fn section(client_id: ClientId) -> String {
    crate::domain::application::manage_section_path(&client_id.to_string())
}

/// `GET /manage-api-credentials/{client_id}/webhooks/new`: the add form, every event chosen.
pub async fn new_page(
    State(state): State<AppState>,
    member: OrganisationMember,
    PathId(client_id): PathId<ClientId>,
) -> Result<Response, AppError> {
    let managed = state.store.managed_application(member.current.user.id, client_id).await?;
    let all = EndpointFields {
        events: WebhookEvent::ALL.iter().map(|e| e.as_str().to_owned()).collect(),
        ..EndpointFields::default()
    };
    Ok(NewEndpointPage::of(&member.current, &managed, &all).into_response())
}

/// `POST /manage-api-credentials/{client_id}/webhooks`: adds the endpoint and shows a
/// `standard` endpoint's signing secret once (`Cache-Control: no-store`, every page's default).
/// A wrong field re-renders the form (422) with a message beside it and the values as typed,
/// and stores nothing; so does the sixth endpoint. A second submit of the same form (its
/// `form_id`) adds nothing and says so (409).
pub async fn add(
    State(state): State<AppState>,
    member: OrganisationMember,
    PathId(client_id): PathId<ClientId>,
    Form(fields): Form<EndpointFields>,
) -> Result<Response, AppError> {
    let current = &member.current;
    let managed = state.store.managed_application(current.user.id, client_id).await?;
    let added = state
        .services
        .webhooks
        .add(
            &state.store,
            (&current.actor(), Some(current.user.id)),
            managed.application.id,
            (&fields.url, &fields.format, &fields.events, &fields.form_id),
            state.clock.now(),
        )
        .await;
    let again = |errors: EndpointFormErrors, form_error: Option<String>| {
        let mut page = NewEndpointPage::of(current, &managed, &fields);
        (page.errors, page.form_error) = (errors, form_error);
        Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
    };
    match added {
        Ok(Added { endpoint, shown_url, signing_secret }) => Ok(AddedPage {
            nav: Nav::of(current),
            app_name: managed.application.name.clone(),
            client_id: client_id.to_string(),
            url: shown_url,
            format: endpoint.endpoint.format.label(),
            events: endpoint.endpoint.events.iter().map(|e| e.as_str()).collect(),
            signing_secret: signing_secret.map(|s| s.expose().to_owned()),
        }
        .into_response()),
        Err(AddError::Invalid(errors)) => again(errors, None),
        Err(AddError::Limit(message)) => again(EndpointFormErrors::default(), Some(message)),
        Err(AddError::AlreadySubmitted) => Ok(crate::web::pages::message(
            StatusCode::CONFLICT,
            "Endpoint already added",
            &[
                "This form was already submitted, and the endpoint it added is listed on the Manage page. A standard endpoint's signing secret was shown then, and can never be shown again.",
                "If you did not copy it, remove that endpoint and add it again.",
            ],
            Some((&section(client_id), "Back to Manage API Credentials")),
        )),
        Err(AddError::Store(e)) => Err(e.into()),
    }
}

/// `POST /manage-api-credentials/{client_id}/webhooks/{endpoint_id}/test`: queues a test event
/// (`webhook.test`) for that endpoint, at most once a minute, and says so.
pub async fn test(
    State(state): State<AppState>,
    member: OrganisationMember,
    PathIds(client_id, endpoint_id): PathIds<ClientId, Uuid>,
    session: Session,
) -> Result<Response, AppError> {
    let managed = state.store.managed_application(member.current.user.id, client_id).await?;
    let app = &managed.application;
    let client = client_id.to_string();
    let outcome = state
        .services
        .webhooks
        .send_test(&state.store, (app.id, &app.name, &client), endpoint_id, state.clock.now())
        .await?;
    let text = match outcome {
        TestEvent::Queued { behind: 0 } => {
            "Test event sent. Its delivery appears under the endpoint's recent deliveries within seconds: reload \
             this page to see the answer."
                .to_owned()
        }
        TestEvent::Queued { behind } => format!(
            "Test event queued behind {behind} pending event{} of this endpoint: each endpoint gets its events in order.",
            if behind == 1 { "" } else { "s" }
        ),
        TestEvent::Disabled => {
            "This endpoint is disabled: enable it first. Its pending events are then delivered, oldest first."
                .to_owned()
        }
        TestEvent::TooSoon { again_at } => {
            format!("A test event was sent less than a minute ago: send another after {}.", utc_minute(again_at))
        }
    };
    notice::redirect(&session, &section(client_id), text).await
}

/// `POST /manage-api-credentials/{client_id}/webhooks/{endpoint_id}/enable`: a disabled
/// endpoint gets events again, its oldest pending one first. Audited.
pub async fn enable(
    State(state): State<AppState>,
    member: OrganisationMember,
    PathIds(client_id, endpoint_id): PathIds<ClientId, Uuid>,
    session: Session,
) -> Result<Response, AppError> {
    let current = &member.current;
    let managed = state.store.managed_application(current.user.id, client_id).await?;
    let ids = (managed.application.id, endpoint_id);
    let text = if state.services.webhooks.enable(&state.store, &current.actor(), ids, state.clock.now()).await? {
        "The webhook endpoint is enabled: its pending events are being delivered, oldest first."
    } else {
        "The webhook endpoint was enabled already: nothing changed."
    };
    notice::redirect(&session, &section(client_id), text).await
}

/// The remove form: `confirm=yes` once asked ([`confirm`]).
#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /manage-api-credentials/{client_id}/webhooks/{endpoint_id}/remove` (asks first): the
/// endpoint gets no more events. Audited.
pub async fn remove(
    State(state): State<AppState>,
    member: OrganisationMember,
    PathIds(client_id, endpoint_id): PathIds<ClientId, Uuid>,
    session: Session,
    Form(form): Form<RemoveForm>,
) -> Result<Response, AppError> {
    let current = &member.current;
    let managed = state.store.managed_application(current.user.id, client_id).await?;
    let app = &managed.application;
    let back = section(client_id);
    if !confirm::given(&form.confirm) {
        let endpoints = state.store.application_webhooks(app.id, 0).await?;
        let endpoint = endpoints.iter().find(|e| e.endpoint.id == endpoint_id).ok_or(AppError::NotFound)?;
        let view = crate::web::webhook_views::EndpointView::of(endpoint, &app.name, &state.services.webhooks);
        let action = format!("/manage-api-credentials/{client_id}/webhooks/{endpoint_id}/remove");
        return Ok(confirm::page(current, view.remove, Some(("Endpoint", &view.url)), (&action, &[]), &back));
    }
    state.store.remove_webhook_endpoint((app.id, endpoint_id), &current.actor(), state.clock.now()).await?;
    let text = format!("The webhook endpoint is removed: {} gets no more events.", app.name);
    notice::redirect(&session, &back, text).await
}
