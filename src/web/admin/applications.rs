//! Applications: register one for an organisation, see any application with its secrets
//! (metadata only), grant and revoke the credential-manager role, delete a compromised secret.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// Parameters the application form may carry: kind, API, client ID and one `resource` per
/// allowed resource (an API has a handful; 256 is far above any real list).
const MAX_APPLICATION_FIELDS: usize = 256;
use crate::domain::{Api, ApplicationKind, ApplicationName, ClientId, ResourceId};
use crate::store::{Conflict, NewApplication, SelfRotationChange, StoreError, User, UserFilter, UserRole, UserStatus};
use crate::web::AppState;
use crate::web::confirm::{self, Question};
use crate::web::error::AppError;
use crate::web::extract::{CurrentUser, WmdaAdmin};
use crate::web::extract::{Form, Query};
use crate::web::extract::{PathId, PathIds};
use crate::web::manage::view::{SecretRow, secret_row};
use crate::web::notice;
use crate::web::pages::Nav;
use tower_sessions::Session;
use uuid::Uuid;

/// `?kind=&api=` of the registration form.
#[derive(Deserialize)]
pub struct KindQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    api: String,
}

/// A resource checkbox.
pub struct ResourceChoice {
    id: String,
    title: String,
    checked: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/application_new.html")]
struct NewPage {
    nav: Option<Nav>,
    org_id: String,
    org_reference: String,
    kind: String,
    api: String,
    name: String,
    client_id: String,
    resources: Vec<ResourceChoice>,
    errors: Vec<String>,
}

/// The registration form: `kind`, `api`, `client_id` (blank: generated), `resource` (repeated).
#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    api: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    resource: Vec<String>,
}

async fn new_page_for(
    state: &AppState,
    admin: &CurrentUser,
    org_id: uuid::Uuid,
    form: &CreateForm,
    errors: Vec<String>,
) -> Result<Response, AppError> {
    let org = state.store.find_organisation_by_id(org_id).await?;
    let kind = ApplicationKind::parse(&form.kind).map_err(|_| AppError::NotFound)?;
    let api = Api::parse(&form.api).map_err(|_| AppError::NotFound)?;
    let name = ApplicationName::derive(kind, &org.country, &org.code, api).map_err(|_| AppError::NotFound)?;
    let fresh = form.resource.is_empty() && errors.is_empty();
    let page = NewPage {
        nav: Nav::of(admin),
        org_id: org.id.to_string(),
        org_reference: org.reference().to_string(),
        kind: kind.to_string(),
        api: api.to_string(),
        name: name.to_string(),
        client_id: form.client_id.clone(),
        // Only the resources this kind and API allow are offered.
        resources: ResourceId::allowed(kind, api)
            .into_iter()
            .map(|r| ResourceChoice {
                id: r.to_string(),
                title: r.title().to_owned(),
                checked: fresh || form.resource.iter().any(|x| x == r.as_str()),
            })
            .collect(),
        errors: errors.clone(),
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok((status, page).into_response())
}

/// `GET /admin/organisations/{id}/applications/new?kind=&api=`: the derived name, the client ID
/// (entered or generated) and the allowed resources, before saving.
pub async fn new_page(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathId(org): PathId<Uuid>,
    Query(q): Query<KindQuery>,
) -> Result<Response, AppError> {
    let form = CreateForm { kind: q.kind, api: q.api, client_id: String::new(), resource: vec![] };
    new_page_for(&state, &admin, org, &form, vec![]).await
}

/// `POST /admin/organisations/{id}/applications`.
pub async fn create(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathId(org): PathId<Uuid>,
    session: Session,
    Form(form): Form<CreateForm, MAX_APPLICATION_FIELDS>,
) -> Result<Response, AppError> {
    let org_id = org;
    let kind = ApplicationKind::parse(&form.kind).map_err(|_| AppError::NotFound)?;
    let api = Api::parse(&form.api).map_err(|_| AppError::NotFound)?;
    let mut errors = Vec::new();
    let client_id = if form.client_id.trim().is_empty() {
        ClientId::generate()
    } else {
        match ClientId::parse(&form.client_id) {
            Ok(c) => c,
            Err(e) => {
                errors.push(e.to_string());
                ClientId::generate()
            }
        }
    };
    let mut resources = Vec::new();
    for r in &form.resource {
        match ResourceId::parse(r) {
            Ok(r) => resources.push(r),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if let Err(e) = ResourceId::check_all(kind, api, &resources) {
        errors.push(e.to_string());
    }
    if !errors.is_empty() {
        return new_page_for(&state, &admin, org_id, &form, errors).await;
    }
    let new = NewApplication { organisation_id: org_id, kind, api, client_id, resources };
    match state.store.create_application(&new, &admin.actor(), state.clock.now()).await {
        Ok(app) => {
            let text = format!(
                "{} is registered with client ID {}. Grant the credential manager role to two of its organisation's users below.",
                app.name, app.client_id
            );
            notice::redirect(&session, &application_path(app.id), text).await
        }
        Err(StoreError::Conflict(c @ (Conflict::ApplicationExists | Conflict::ClientIdTaken))) => {
            new_page_for(&state, &admin, org_id, &form, vec![c.to_string()]).await
        }
        Err(e) => Err(e.into()),
    }
}

/// An application's line in the list.
pub struct AppLine {
    id: String,
    name: String,
    client_id: String,
    managers: usize,
    secrets: usize,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/applications.html")]
struct ListPage {
    nav: Option<Nav>,
    applications: Vec<AppLine>,
}

/// `GET /admin/applications`: every application with its number of credential managers.
pub async fn list(State(state): State<AppState>, WmdaAdmin(admin): WmdaAdmin) -> Result<Response, AppError> {
    let applications = state
        .store
        .all_applications(None, None)
        .await?
        .into_iter()
        .map(|m| AppLine {
            id: m.application.id.to_string(),
            name: m.application.name,
            client_id: m.application.client_id.to_string(),
            managers: m.managers.len(),
            secrets: m.secrets.len(),
        })
        .collect();
    Ok(ListPage { nav: Nav::of(&admin), applications }.into_response())
}

/// A credential manager of the application.
pub struct ManagerRow {
    user_id: String,
    name: String,
    email: String,
    revoke: Question,
}

/// The application page's path.
fn application_path(id: Uuid) -> String {
    format!("/admin/applications/{id}")
}

/// What revoking the credential-manager role of `user` on the application `application` asks.
fn revoke_question(user: &User, application: &str) -> Question {
    Question {
        title: format!("Revoke the credential manager role of {} on {application}?", user.shown_name()),
        detail: "From their next request they no longer see this application, its client ID or its secrets, and \
                 they get no more reminders about it. The secrets they created keep working."
            .into(),
        button: "Revoke".into(),
        danger: true,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/application.html")]
struct ShowPage {
    nav: Option<Nav>,
    id: String,
    name: String,
    client_id: String,
    org_id: String,
    org_label: String,
    resources: Vec<(String, String)>,
    managers: Vec<ManagerRow>,
    candidates: Vec<(String, String)>,
    secrets: Vec<SecretRow>,
    error: Option<String>,
    self_rotation: bool,
    self_rotation_forbidden: bool,
    webhooks: Vec<crate::web::webhook_views::EndpointView>,
    /// Where the endpoints' remove forms post: `/admin/applications/{id}/webhooks`.
    webhooks_base: String,
}

async fn show_page(
    state: &AppState,
    admin: &CurrentUser,
    app_id: uuid::Uuid,
    error: Option<String>,
) -> Result<Response, AppError> {
    let m = state.store.all_applications(Some(app_id), None).await?.pop().ok_or(AppError::NotFound)?;
    let org_id = m.application.organisation_id;
    let org = state.store.find_organisation_by_id(org_id).await?;
    let members = state.store.list_users(&UserFilter { organisation_id: Some(org_id), ..Default::default() }).await?;
    let granted: Vec<uuid::Uuid> = state.store.list_credential_managers(app_id).await?.iter().map(|u| u.id).collect();
    let managers = members
        .iter()
        .filter(|u| granted.contains(&u.user.id))
        .map(|u| ManagerRow {
            user_id: u.user.id.to_string(),
            name: u.user.shown_name().to_owned(),
            email: u.user.email.to_string(),
            revoke: revoke_question(&u.user, &m.application.name),
        })
        .collect();
    let candidates = members
        .iter()
        .filter(|u| {
            !granted.contains(&u.user.id)
                && u.status != UserStatus::Disabled
                && matches!(u.user.role, UserRole::Member(_))
        })
        .map(|u| {
            let label = if u.user.display_name.trim().is_empty() {
                u.user.email.to_string()
            } else {
                format!("{} <{}>", u.user.display_name, u.user.email)
            };
            (u.user.id.to_string(), label)
        })
        .collect();
    let today = state.clock.today();
    let webhooks = state
        .store
        .application_webhooks(app_id, crate::web::webhook_views::DELIVERIES_SHOWN)
        .await?
        .iter()
        .map(|e| crate::web::webhook_views::EndpointView::of(e, &m.application.name, &state.services.webhooks))
        .collect();
    let page = ShowPage {
        nav: Nav::of(admin),
        id: app_id.to_string(),
        name: m.application.name.clone(),
        client_id: m.application.client_id.to_string(),
        org_id: org_id.to_string(),
        org_label: format!("{} ({})", org.reference(), org.display_name),
        resources: m.resources.iter().map(|r| (r.id.to_string(), r.audience.clone())).collect(),
        managers,
        candidates,
        secrets: m.secrets.iter().map(|s| secret_row(s, today)).collect(),
        error: error.clone(),
        self_rotation: m.application.self_rotation,
        self_rotation_forbidden: m.application.self_rotation_forbidden,
        webhooks,
        webhooks_base: format!("{}/webhooks", application_path(app_id)),
    };
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok((status, page).into_response())
}

/// `GET /admin/applications/{id}`.
pub async fn show(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathId(app): PathId<Uuid>,
) -> Result<Response, AppError> {
    show_page(&state, &admin, app, None).await
}

/// The grant form.
#[derive(Deserialize)]
pub struct GrantForm {
    #[serde(default)]
    user_id: String,
}

/// `POST /admin/applications/{id}/grants`: only to users of the application's organisation.
pub async fn grant(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathId(app): PathId<Uuid>,
    session: Session,
    Form(form): Form<GrantForm>,
) -> Result<Response, AppError> {
    let app_id = app;
    let Ok(user_id) = uuid::Uuid::parse_str(form.user_id.trim()) else {
        return show_page(&state, &admin, app_id, Some("Choose a user.".into())).await;
    };
    match state.store.grant_credential_manager(user_id, app_id, &admin.actor(), state.clock.now()).await {
        Ok(()) => {
            let user = state.store.find_user(user_id).await?;
            let text = format!(
                "{} is now a credential manager of this application: they see it from their next request.",
                user.shown_name()
            );
            notice::redirect(&session, &application_path(app_id), text).await
        }
        Err(StoreError::Conflict(c)) => show_page(&state, &admin, app_id, Some(c.to_string())).await,
        Err(e) => Err(e.into()),
    }
}

/// The form of a change that asks first: `confirm=yes` once asked ([`confirm`]).
#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /admin/applications/{id}/grants/{user_id}/revoke` (asks first): effective on the user's
/// next request.
pub async fn revoke(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathIds(app_id, user_id): PathIds<Uuid, Uuid>,
    session: Session,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, AppError> {
    let application = state.store.all_applications(Some(app_id), None).await?.pop().ok_or(AppError::NotFound)?;
    let user = state.store.find_user(user_id).await?;
    let path = application_path(app_id);
    if !confirm::given(&form.confirm) {
        let question = revoke_question(&user, &application.application.name);
        return Ok(confirm::page(&admin, question, None, (&format!("{path}/grants/{user_id}/revoke"), &[]), &path));
    }
    state.store.revoke_credential_manager(user_id, app_id, &admin.actor(), state.clock.now()).await?;
    let text = format!(
        "The credential manager role of {} on {} is revoked: from their next request they no longer see it.",
        user.shown_name(),
        application.application.name
    );
    notice::redirect(&session, &path, text).await
}

/// The admin's deletion form: a reason is required.
#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    reason: String,
}

/// `POST /admin/applications/{id}/secrets/{secret_id}/delete`: deletes a compromised secret,
/// the reason going into the audit event.
pub async fn delete_secret(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathIds(app, secret): PathIds<Uuid, Uuid>,
    session: Session,
    Form(form): Form<DeleteForm>,
) -> Result<Response, AppError> {
    let (app_id, secret_id) = (app, secret);
    let reason = form.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 || reason.chars().any(crate::domain::text::breaks_one_line) {
        return show_page(
            &state,
            &admin,
            app_id,
            Some("Give a reason for deleting the secret (up to 500 characters, one line).".into()),
        )
        .await;
    }
    let (base_url, now) = (&state.settings.base_url, state.clock.now());
    let ids = (app_id, secret_id);
    let (deleted, emailed) =
        crate::oauth::client_secrets::admin_delete(&state.store, base_url, &admin.actor(), ids, reason, now).await?;
    if emailed > 0 {
        state.services.mailer.wake();
    }
    let told = match emailed {
        0 => "It has no credential manager to email.".to_owned(),
        1 => "Its credential manager was emailed the reason.".to_owned(),
        n => format!("Its {n} credential managers were emailed the reason."),
    };
    let text = format!(
        "The client secret “{}” ({}) is deleted: it can no longer obtain tokens. {told}",
        deleted.name,
        deleted.hint.shown()
    );
    notice::redirect(&session, &application_path(app_id), text).await
}

/// The self-rotation form of the application page: `forbidden` is `yes` or `no`.
#[derive(Deserialize)]
pub struct SelfRotationForm {
    #[serde(default)]
    forbidden: String,
}

/// `POST /admin/applications/{id}/self-rotation` (issue 16, point 3): a WMDA admin forbids
/// self-rotation through the machine API (turning it off; its credential managers are emailed
/// when it was on) or allows it again (it stays off until a credential manager turns it on).
/// Audited. Any other value of `forbidden` changes nothing and the page says why (422).
///
/// # Errors
/// [`AppError::NotFound`] for an unknown application, and the store's.
pub async fn self_rotation(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathId(app_id): PathId<Uuid>,
    session: Session,
    Form(form): Form<SelfRotationForm>,
) -> Result<Response, AppError> {
    let forbidden = match form.forbidden.as_str() {
        "yes" => true,
        "no" => false,
        _ => {
            return show_page(&state, &admin, app_id, Some("Choose to forbid or to allow self-rotation.".into())).await;
        }
    };
    let (base_url, now) = (&state.settings.base_url, state.clock.now());
    let change = crate::oauth::client_secrets::forbid_self_rotation(
        &state.store,
        base_url,
        &admin.actor(),
        app_id,
        forbidden,
        now,
    )
    .await?;
    let text = match (change, forbidden) {
        (SelfRotationChange::Changed { emailed }, true) => {
            if emailed > 0 {
                state.services.mailer.wake();
            }
            match emailed {
                0 => "Self-rotation is forbidden for this application: its partner systems cannot create client secrets through the API.".to_owned(),
                n => format!("Self-rotation is forbidden and turned off for this application: its partner systems cannot create client secrets through the API. {} emailed.", if n == 1 { "Its credential manager was".to_owned() } else { format!("Its {n} credential managers were") }),
            }
        }
        (SelfRotationChange::Changed { .. }, false) => {
            "Self-rotation is allowed again for this application: it stays off until a credential manager turns it on."
                .to_owned()
        }
        (_, true) => "Self-rotation was already forbidden for this application: nothing changed.".to_owned(),
        (_, false) => "Self-rotation was already allowed for this application: nothing changed.".to_owned(),
    };
    notice::redirect(&session, &application_path(app_id), text).await
}

/// `POST /admin/applications/{id}/webhooks/{endpoint_id}/remove` (asks first; issue 17, point
/// 1): the endpoint gets no more events. Audited as `webhook.removed`.
///
/// # Errors
/// [`AppError::NotFound`] for an unknown application, or an endpoint not of it; the store's.
pub async fn remove_webhook(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathIds(app_id, endpoint_id): PathIds<Uuid, Uuid>,
    session: Session,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, AppError> {
    let application = state.store.all_applications(Some(app_id), None).await?.pop().ok_or(AppError::NotFound)?;
    let name = &application.application.name;
    let path = application_path(app_id);
    if !confirm::given(&form.confirm) {
        let endpoints = state.store.application_webhooks(app_id, 0).await?;
        let endpoint = endpoints.iter().find(|e| e.endpoint.id == endpoint_id).ok_or(AppError::NotFound)?;
        let view = crate::web::webhook_views::EndpointView::of(endpoint, name, &state.services.webhooks);
        let action = format!("{path}/webhooks/{endpoint_id}/remove");
        return Ok(confirm::page(&admin, view.remove, Some(("Endpoint", &view.url)), (&action, &[]), &path));
    }
    state.store.remove_webhook_endpoint((app_id, endpoint_id), &admin.actor(), state.clock.now()).await?;
    notice::redirect(&session, &path, format!("The webhook endpoint is removed: {name} gets no more events there."))
        .await
}
