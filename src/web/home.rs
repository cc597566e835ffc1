//! The start page redirect and the signed-in homes.

use askama::Template;
use askama_web::WebTemplate;
use axum::response::{IntoResponse, Redirect, Response};

use super::error::AppError;
use super::extract::{CurrentUser, WmdaAdmin};
use super::pages::{Nav, home_path};

#[derive(Template, WebTemplate)]
#[template(path = "admin.html")]
struct AdminPage {
    nav: Option<Nav>,
    name: String,
}

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

/// `GET /admin`: the WMDA admin console.
pub async fn admin(WmdaAdmin(admin): WmdaAdmin) -> impl IntoResponse {
    AdminPage { nav: Nav::of(&admin), name: admin.name().to_owned() }
}
