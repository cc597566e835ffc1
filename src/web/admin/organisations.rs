//! Organisations: list, create, rename.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::domain::organisation::OrganisationDisplayName;
use crate::domain::{Api, ApplicationKind, ApplicationName, CountryCode, OrganisationCode};
use crate::store::{Conflict, Organisation, StoreError, UserFilter};
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::Form;
use crate::web::extract::PathId;
use crate::web::extract::WmdaAdmin;
use crate::web::notice;
use crate::web::pages::Nav;
use tower_sessions::Session;
use uuid::Uuid;

/// An organisation's line.
pub struct OrgRow {
    id: String,
    reference: String,
    display_name: String,
    country: String,
}

fn row(o: &Organisation) -> OrgRow {
    OrgRow {
        id: o.id.to_string(),
        reference: o.reference().to_string(),
        display_name: o.display_name.clone(),
        country: o.country.country_name().to_owned(),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/organisations.html")]
struct ListPage {
    nav: Option<Nav>,
    organisations: Vec<OrgRow>,
    display_name: String,
    country: String,
    code: String,
    errors: Vec<String>,
}

/// The create form.
#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    code: String,
}

async fn list_page(
    state: &AppState,
    admin: &crate::web::extract::CurrentUser,
    form: Option<&CreateForm>,
    errors: Vec<String>,
) -> Result<ListPage, AppError> {
    let organisations = state.store.list_organisations().await?.iter().map(row).collect();
    Ok(ListPage {
        nav: Nav::of(admin),
        organisations,
        display_name: form.map(|f| f.display_name.clone()).unwrap_or_default(),
        country: form.map(|f| f.country.clone()).unwrap_or_default(),
        code: form.map(|f| f.code.clone()).unwrap_or_default(),
        errors,
    })
}

/// `GET /admin/organisations`.
pub async fn list(State(state): State<AppState>, WmdaAdmin(admin): WmdaAdmin) -> Result<Response, AppError> {
    Ok(list_page(&state, &admin, None, vec![]).await?.into_response())
}

/// `POST /admin/organisations`: display name, ISO 3166-1 country code, immutable code unique per
/// country ignoring case.
pub async fn create(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    session: Session,
    Form(form): Form<CreateForm>,
) -> Result<Response, AppError> {
    let name = OrganisationDisplayName::parse(&form.display_name);
    let country = CountryCode::parse(&form.country);
    let code = OrganisationCode::parse(&form.code);
    let (name, country, code) = match (name, country, code) {
        (Ok(n), Ok(c), Ok(k)) => (n, c, k),
        (n, c, k) => {
            let errors =
                [n.err().map(|e| e.to_string()), c.err().map(|e| e.to_string()), k.err().map(|e| e.to_string())]
                    .into_iter()
                    .flatten()
                    .collect();
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, list_page(&state, &admin, Some(&form), errors).await?)
                .into_response());
        }
    };
    match state.store.create_organisation(&name, &country, &code, &admin.actor(), state.clock.now()).await {
        Ok(org) => {
            let text = format!(
                "{} ({}) is created. Next: register its applications below, then invite its users.",
                org.reference(),
                org.display_name
            );
            notice::redirect(&session, &format!("/admin/organisations/{}", org.id), text).await
        }
        Err(StoreError::Conflict(Conflict::OrganisationExists)) => {
            let errors = vec![format!("{country}-{code} already exists (codes are compared ignoring case).")];
            Ok((StatusCode::CONFLICT, list_page(&state, &admin, Some(&form), errors).await?).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// An application type offered for registration, with the name it would get.
pub struct Offer {
    kind: String,
    api: String,
    name: String,
}

/// A user of the organisation.
pub struct MemberRow {
    email: String,
    name: String,
    status: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/organisation.html")]
struct ShowPage {
    nav: Option<Nav>,
    org: OrgRow,
    applications: Vec<(String, String, usize)>,
    offers: Vec<Offer>,
    members: Vec<MemberRow>,
    error: Option<String>,
}

async fn show_page(
    state: &AppState,
    admin: &crate::web::extract::CurrentUser,
    org_id: uuid::Uuid,
    error: Option<String>,
) -> Result<ShowPage, AppError> {
    let org = state.store.find_organisation_by_id(org_id).await?;
    let apps = state.store.list_applications_of_organisation(org.id).await?;
    let managed = state.store.all_applications(None, Some(org.id)).await?;
    let applications =
        managed.iter().map(|m| (m.application.id.to_string(), m.application.name.clone(), m.managers.len())).collect();
    let mut offers = Vec::new();
    for kind in ApplicationKind::ALL {
        for api in Api::ALL {
            let taken = apps.iter().any(|a| a.kind == kind && a.api == api);
            if let (Ok(name), false) = (ApplicationName::derive(kind, &org.country, &org.code, api), taken) {
                offers.push(Offer { kind: kind.to_string(), api: api.to_string(), name: name.to_string() });
            }
        }
    }
    let members = state
        .store
        .list_users(&UserFilter { organisation_id: Some(org.id), ..Default::default() })
        .await?
        .into_iter()
        .map(|u| MemberRow {
            email: u.user.email.to_string(),
            name: u.user.shown_name().to_owned(),
            status: u.status.as_str().to_owned(),
        })
        .collect();
    Ok(ShowPage { nav: Nav::of(admin), org: row(&org), applications, offers, members, error })
}

/// `GET /admin/organisations/{id}`: its applications, the application types it can still get
/// (each shown with the name it would get), its users, and the rename form.
pub async fn show(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathId(org): PathId<Uuid>,
) -> Result<Response, AppError> {
    Ok(show_page(&state, &admin, org, None).await?.into_response())
}

/// The rename form.
#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    display_name: String,
}

/// `POST /admin/organisations/{id}/rename`: the display name only; the code never changes.
pub async fn rename(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    PathId(org): PathId<Uuid>,
    session: Session,
    Form(form): Form<RenameForm>,
) -> Result<Response, AppError> {
    let org_id = org;
    match OrganisationDisplayName::parse(&form.display_name) {
        Ok(name) => {
            state.store.rename_organisation(org_id, &name, &admin.actor(), state.clock.now()).await?;
            let text = format!(
                "The organisation is renamed to {}; its code and application names stay as they are.",
                name.as_str()
            );
            notice::redirect(&session, &format!("/admin/organisations/{org_id}"), text).await
        }
        Err(e) => Ok((StatusCode::UNPROCESSABLE_ENTITY, show_page(&state, &admin, org_id, Some(e.to_string())).await?)
            .into_response()),
    }
}
