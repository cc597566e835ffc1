//! One-time notices after a change (Post/Redirect/Get): a handler that changed something stores
//! what happened in the session and redirects (303) to a page; the next page a signed-in user
//! opens with GET shows it once, in the header's [`Nav`](super::pages::Nav) (issue 14, point 4:
//! "every admin action ends on a page, not the POST URL, with a notice of what happened").
//!
//! It is kept in the tower-sessions record of the session that made the change, so it follows the
//! user across replicas and never appears in a URL, where a link could forge one.

use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use super::error::AppError;

/// The session key of the pending notice.
const NOTICE_KEY: &str = "notice";

/// Removes and returns the session's pending notice. The session is written only when it held one.
///
/// # Errors
/// [`AppError::Internal`] when the session store fails.
pub async fn take(session: &Session) -> Result<Option<String>, AppError> {
    if session.get::<String>(NOTICE_KEY).await?.is_none() {
        return Ok(None);
    }
    Ok(session.remove::<String>(NOTICE_KEY).await?)
}

/// Stores `text` as the notice of the next page the session opens (a page script's change,
/// which then navigates itself).
///
/// # Errors
/// [`AppError::Internal`] when the session store fails.
pub async fn set(session: &Session, text: impl Into<String>) -> Result<(), AppError> {
    session.insert(NOTICE_KEY, text.into()).await?;
    Ok(())
}

/// Stores `text` as the notice of the next page and answers `303 See Other` to `path` (a path of
/// this portal).
///
/// # Errors
/// [`AppError::Internal`] when the session store fails.
pub async fn redirect(session: &Session, path: &str, text: impl Into<String>) -> Result<Response, AppError> {
    session.insert(NOTICE_KEY, text.into()).await?;
    Ok(Redirect::to(path).into_response())
}
