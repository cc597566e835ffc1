//! The start page redirect and the signed-in homes.

use axum::response::{IntoResponse, Redirect, Response};

use super::error::AppError;
use super::extract::CurrentUser;
use super::pages::home_path;

/// `GET /`: the user's home, or sign-in.
pub async fn root(user: Result<CurrentUser, AppError>) -> Response {
    match user {
        Ok(u) => Redirect::to(home_path(u.user.role)).into_response(),
        Err(AppError::SignInRequired { .. }) => Redirect::to("/login").into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /manage-clients`: the guide's older address.
pub async fn manage_clients() -> Redirect {
    Redirect::permanent("/manage-api-credentials")
}
