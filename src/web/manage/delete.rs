//! Deleting a secret: the confirmation (dialog or page) and the POST.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use uuid::Uuid;

use super::view::{SecretRow, secret_row};
use crate::domain::ClientId;
use crate::store::Deletion;
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::OrganisationMember;
use crate::web::extract::PathIds;
use crate::web::pages::Nav;

#[derive(Template, WebTemplate)]
#[template(path = "manage/secret.html")]
struct SecretPage {
    nav: Option<Nav>,
    app_name: String,
    client_id: String,
    secret: SecretRow,
    deleted: bool,
    token_lifetime_minutes: i64,
}

/// `GET /manage-api-credentials/{client_id}/secrets/{secret_id}`: the delete confirmation as a
/// page (without JavaScript); a deleted secret says "already deleted".
pub async fn confirm_page(
    State(state): State<AppState>,
    member: OrganisationMember,
    PathIds(client_id, secret_id): PathIds<ClientId, Uuid>,
) -> Result<Response, AppError> {
    let user = &member.current.user;
    let managed = state.store.managed_application(user.id, client_id).await?;
    let secret = state.store.managed_secret(user.id, client_id, secret_id).await?;
    Ok(SecretPage {
        nav: Nav::of(&member.current),
        app_name: managed.application.name,
        client_id: client_id.to_string(),
        deleted: secret.secret.deleted_at.is_some(),
        secret: secret_row(&secret, state.clock.today()),
        token_lifetime_minutes: state.settings.token_lifetime_seconds / 60,
    }
    .into_response())
}

/// `POST /manage-api-credentials/{client_id}/secrets/{secret_id}/delete`: tombstones the secret
/// (new tokens are refused from the next request on), one audit event, then back to the page.
pub async fn delete(
    State(state): State<AppState>,
    member: OrganisationMember,
    PathIds(client_id, secret_id): PathIds<ClientId, Uuid>,
) -> Result<Response, AppError> {
    let (actor, user_id, now) = (member.current.actor(), member.current.user.id, state.clock.now());
    match crate::oauth::client_secrets::delete(&state.store, &actor, user_id, client_id, secret_id, now).await? {
        Deletion::Deleted(_) => {
            Ok(Redirect::to(&format!("/manage-api-credentials?deleted={secret_id}")).into_response())
        }
        Deletion::AlreadyDeleted(_) => confirm_page(State(state), member, PathIds(client_id, secret_id)).await,
    }
}
