//! Creating a secret: the form (dialog or page) and the one response that shows the value.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::view::CreateForm;
use crate::domain::ClientId;
use crate::oauth::client_secrets::{self, CreateError, Created, SecretForm};
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::Form;
use crate::web::extract::OrganisationMember;
use crate::web::extract::PathId;
use crate::web::extract::Query;
use crate::web::pages::{Nav, message};
use uuid::Uuid;

#[derive(Template, WebTemplate)]
#[template(path = "manage/new.html")]
struct NewSecretPage {
    nav: Option<Nav>,
    app_name: String,
    client_id: String,
    limit: i64,
    form: CreateForm,
    /// The secret a replacement replaces: “name” (hint…).
    replacing: Option<String>,
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
    client_id: String,
    /// A token request that reads the secret from a variable (never the value itself).
    curl: String,
    /// The secret it replaces: “name” (hint…), and its id (the delete link).
    replaced: Option<(String, String)>,
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
    #[serde(default)]
    replaces: String,
}

/// `?replaces=<secret id>`: "Create replacement" of that secret.
#[derive(Deserialize, Default)]
pub struct NewQuery {
    #[serde(default)]
    replaces: String,
}

/// The live, unexpired secret of `managed` that `replaces` names, if it names one.
fn replaced<'a>(
    managed: &'a crate::store::ManagedApplication,
    replaces: &str,
    state: &AppState,
) -> Option<&'a crate::store::SecretView> {
    let id = Uuid::parse_str(replaces.trim()).ok()?;
    let now = state.clock.now();
    managed.secrets.iter().find(|s| s.secret.id == id && s.secret.deleted_at.is_none() && s.secret.expires_at > now)
}

/// “name” (hint…) of a secret.
fn named(s: &crate::store::SecretView) -> String {
    format!("“{}” ({})", s.secret.name, s.secret.hint.shown())
}

/// `GET /manage-api-credentials/{client_id}/secrets/new`: the form as a page (without
/// JavaScript). With `?replaces=<secret id>` of a live, unexpired secret of the application
/// ("Create replacement", issue 18 point 3), the name is that secret's and the date the latest
/// allowed; any other value gives the plain form.
pub async fn new_page(
    State(state): State<AppState>,
    member: OrganisationMember,
    PathId(client_id): PathId<ClientId>,
    Query(q): Query<NewQuery>,
) -> Result<Response, AppError> {
    let managed = state.store.managed_application(member.current.user.id, client_id).await?;
    let mut form = CreateForm::fresh(state.clock.today());
    let old = replaced(&managed, &q.replaces, &state);
    if let Some(old) = old {
        (form.name, form.replaces) = (old.secret.name.clone(), old.secret.id.to_string());
    }
    Ok(NewSecretPage {
        nav: Nav::of(&member.current),
        replacing: old.map(named),
        app_name: managed.application.name,
        client_id: managed.application.client_id.to_string(),
        limit: state.settings.secret_limit,
        form,
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
    PathId(client_id): PathId<ClientId>,
    Form(fields): Form<CreateFields>,
) -> Result<Response, AppError> {
    // The application must be one the user manages before anything else is said.
    let managed = state.store.managed_application(member.current.user.id, client_id).await?;
    let app_name = &managed.application.name;
    let old = replaced(&managed, &fields.replaces, &state);
    let replaces = old.map(|s| s.secret.id.to_string()).unwrap_or_default();
    let form = SecretForm {
        name: &fields.name,
        expires_on: &fields.expires_on,
        form_id: &fields.form_id,
        replaces: &replaces,
    };
    let (actor, user_id, limit) = (member.current.actor(), member.current.user.id, state.settings.secret_limit);
    let created =
        client_secrets::create(&state.store, &actor, user_id, client_id, app_name, form, limit, state.clock.now())
            .await;
    let again = |name_error, date_error, form_error| {
        let mut form = CreateForm::fresh(state.clock.today());
        (form.name, form.expires_on) = (fields.name.clone(), fields.expires_on.clone());
        (form.name_error, form.date_error, form.form_error) = (name_error, date_error, form_error);
        form.replaces.clone_from(&replaces);
        let page = NewSecretPage {
            nav: Nav::of(&member.current),
            app_name: app_name.clone(),
            client_id: client_id.to_string(),
            limit,
            form,
            replacing: old.map(named),
        };
        Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
    };
    match created {
        Ok(Created { secret, value }) => Ok(CreatedPage {
            nav: Nav::of(&member.current),
            app_name: app_name.clone(),
            name: secret.name,
            hint: secret.hint.shown(),
            expires_on: secret.expires_on.to_string(),
            value: value.expose().to_owned(),
            client_id: client_id.to_string(),
            curl: super::view::curl_example(
                &state.settings.base_url.join("/oauth2/token"),
                &managed.application.client_id,
                managed.resources.first().map(|r| r.id.as_str()),
            ),
            replaced: old.map(|s| (named(s), s.secret.id.to_string())),
        }
        .into_response()),
        Err(CreateError::Invalid { name, expires_on, form }) => again(name, expires_on, form),
        Err(CreateError::LimitReached(message)) => again(None, None, Some(message)),
        Err(CreateError::AlreadySubmitted) => Ok(message(
            StatusCode::CONFLICT,
            "Secret already created",
            &[
                "This form was already submitted, and the client secret it created was shown then. It can never be shown again.",
                "If you did not copy it, delete that secret and create a new one.",
            ],
            Some(("/manage-api-credentials", "Back to Manage API Credentials")),
        )),
        Err(CreateError::Store(e)) => Err(e.into()),
    }
}
