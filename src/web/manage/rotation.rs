//! The self-rotation switch of an application's section (issue 16, point 3; DESIGN.md section
//! 8): off by default; a credential manager turns it on so that the application's partner systems
//! may create their own successors through the machine API.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use tower_sessions::Session;

use crate::domain::ClientId;
use crate::store::SelfRotationChange;
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::{Form, OrganisationMember, PathId};
use crate::web::notice;

/// The switch's form: `self_rotation` is `on` or `off`.
#[derive(Deserialize)]
pub struct SwitchForm {
    #[serde(default)]
    self_rotation: String,
}

/// `POST /manage-api-credentials/{client_id}/self-rotation`: turns self-rotation on or off,
/// audited and emailed to the application's other credential managers, then back to the
/// application's section with a notice. Any other value of `self_rotation` changes nothing (400).
/// An application the user does not manage is 404; one a WMDA admin forbade self-rotation for
/// stays off, and the notice says so.
///
/// # Errors
/// [`AppError::BadRequest`], [`AppError::NotFound`], and the store's.
pub async fn switch(
    State(state): State<AppState>,
    member: OrganisationMember,
    PathId(client_id): PathId<ClientId>,
    session: Session,
    Form(form): Form<SwitchForm>,
) -> Result<Response, AppError> {
    let on = match form.self_rotation.as_str() {
        "on" => true,
        "off" => false,
        _ => return Err(AppError::BadRequest("Choose whether to turn self-rotation on or off.")),
    };
    let current = &member.current;
    let actor = current.actor();
    let who = (&actor, current.user.id, current.user.shown_name());
    let (base_url, now) = (&state.settings.base_url, state.clock.now());
    let (application, change) =
        crate::oauth::client_secrets::set_self_rotation(&state.store, base_url, who, client_id, on, now).await?;
    let text = match change {
        SelfRotationChange::Changed { emailed } => {
            if emailed > 0 {
                state.services.mailer.wake();
            }
            let told = match emailed {
                0 => String::new(),
                1 => " The other credential manager was emailed.".to_owned(),
                n => format!(" The {n} other credential managers were emailed."),
            };
            if on {
                format!(
                    "Self-rotation is on for {application}: its partner systems can now create their own client \
                     secrets through the API.{told}"
                )
            } else {
                format!(
                    "Self-rotation is off for {application}: its partner systems can no longer create client secrets \
                     through the API.{told}"
                )
            }
        }
        SelfRotationChange::Unchanged => {
            format!("Self-rotation was already {} for {application}: nothing changed.", if on { "on" } else { "off" })
        }
        SelfRotationChange::Forbidden => format!(
            "WMDA does not allow self-rotation for {application}: it stays off. Ask WMDA support if you need it."
        ),
    };
    let path = crate::domain::application::manage_section_path(&client_id.to_string());
    notice::redirect(&session, &path, text).await
}
