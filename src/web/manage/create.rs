//! Creating a secret: the form (dialog or page) and the one response that shows the value.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::view::CreateForm;
use crate::domain::{ClientId, ExpiryDate, PlainSecret, SecretName};
use crate::store::AuditAction;
use crate::store::{Conflict, NewSecret, StoreError};
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::Form;
use crate::web::extract::OrganisationMember;
use crate::web::pages::{Nav, message};

#[derive(Template, WebTemplate)]
#[template(path = "manage/new.html")]
struct NewSecretPage {
    nav: Option<Nav>,
    app_name: String,
    client_id: String,
    limit: i64,
    form: CreateForm,
}

#[derive(Template, WebTemplate)]
#[template(path = "manage/created.html")]
struct CreatedPage {
    nav: Option<Nav>,
    app_name: String,
    name: String,
    hint: String,
    expires_on: String,
    value: String,
}

/// The create form's fields; missing ones are empty, never a 4xx.
#[derive(Deserialize)]
pub struct CreateFields {
    #[serde(default)]
    name: String,
    #[serde(default)]
    expires_on: String,
    #[serde(default)]
    form_id: String,
}

fn client_id(text: &str) -> Result<ClientId, AppError> {
    ClientId::parse(text).map_err(|_| AppError::NotFound)
}

/// `GET /manage-api-credentials/{client_id}/secrets/new`: the form as a page (without JavaScript).
pub async fn new_page(
    State(state): State<AppState>,
    member: OrganisationMember,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let managed = state.store.managed_application(member.current.user.id, client_id(&id)?).await?;
    Ok(NewSecretPage {
        nav: Nav::of(&member.current),
        app_name: managed.application.name,
        client_id: managed.application.client_id.to_string(),
        limit: state.settings.secret_limit,
        form: CreateForm::fresh(state.clock.today()),
    }
    .into_response())
}

/// `POST /manage-api-credentials/{client_id}/secrets`: checks the name and date, creates the
/// secret within the limit, and shows the value once (`Cache-Control: no-store`, the default of
/// every page). Invalid input re-renders the form with messages and the typed values, and stores
/// nothing. A repeated `form_id` creates nothing and never shows the value again.
pub async fn create(
    State(state): State<AppState>,
    member: OrganisationMember,
    Path(id): Path<String>,
    Form(fields): Form<CreateFields>,
) -> Result<Response, AppError> {
    let user = &member.current.user;
    let client_id = client_id(&id)?;
    // The application must be one the user manages before anything else is said.
    let managed = state.store.managed_application(user.id, client_id).await?;
    let today = state.clock.today();
    let name = SecretName::parse(&fields.name);
    let date = ExpiryDate::parse(&fields.expires_on, today);
    let form_id = Uuid::parse_str(fields.form_id.trim()).ok();
    let again = |form: CreateForm| {
        let page = NewSecretPage {
            nav: Nav::of(&member.current),
            app_name: managed.application.name.clone(),
            client_id: client_id.to_string(),
            limit: state.settings.secret_limit,
            form,
        };
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    };
    let mut form = CreateForm::fresh(today);
    form.name = fields.name.clone();
    form.expires_on = fields.expires_on.clone();
    let (name, expires, form_id) = match (name, date, form_id) {
        (Ok(n), Ok(d), Some(f)) => (n, d, f),
        (n, d, f) => {
            form.name_error = n.err().map(|e| e.to_string());
            form.date_error = d.err().map(|e| e.to_string());
            if f.is_none() && form.name_error.is_none() && form.date_error.is_none() {
                form.form_error = Some("This form is incomplete. Check the fields and select Create again.".into());
            }
            return Ok(again(form));
        }
    };
    let value = PlainSecret::generate();
    let new = NewSecret { name, expires, hash: value.hash(), hint: value.hint(), form_id };
    let now = state.clock.now();
    let event = member.current.actor().event(AuditAction::SecretCreated, now).with_details(serde_json::json!({
        "application": managed.application.name,
        "name": new.name.as_str(),
        "hint": new.hint,
        "expires_on": new.expires.date().to_string(),
    }));
    match state.store.create_client_secret(user.id, client_id, &new, state.settings.secret_limit, &event, now).await {
        Ok(secret) => Ok(CreatedPage {
            nav: Nav::of(&member.current),
            app_name: managed.application.name,
            name: secret.name,
            hint: secret.hint,
            expires_on: secret.expires_on.to_string(),
            value: value.expose().to_owned(),
        }
        .into_response()),
        Err(StoreError::Conflict(Conflict::SecretLimitReached)) => {
            form.form_error = Some(format!(
                "{} already has {} unexpired secrets, the most allowed. Delete a secret it no longer needs, then create the new one.",
                managed.application.name, state.settings.secret_limit
            ));
            Ok(again(form))
        }
        Err(StoreError::Conflict(Conflict::FormAlreadySubmitted)) => Ok(message(
            StatusCode::CONFLICT,
            "Secret already created",
            &[
                "This form was already submitted, and the client secret it created was shown then. It can never be shown again.",
                "If you did not copy it, delete that secret and create a new one.",
            ],
            Some(("/manage-api-credentials", "Back to Manage API Credentials")),
        )),
        Err(e) => Err(e.into()),
    }
}
