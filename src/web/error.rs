//! The HTML error type of the pages: every failure becomes a page that never shows internals.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::store::StoreError;

/// What went wrong while answering a page request.
#[derive(Debug)]
pub enum AppError {
    /// Nothing here for this user (also: another organisation's data, the wrong role).
    NotFound,
    /// Sign-in needed; the path to come back to.
    SignInRequired {
        /// Same-origin path of the request, for `?next=`.
        next: Option<String>,
    },
    /// Too many failed attempts from this address.
    TooManyRequests {
        /// Seconds until the next attempt is allowed.
        retry_after_seconds: i64,
    },
    /// A request the page cannot read (too many fields, not a form, an unreadable value); the
    /// text says what, never echoing the input.
    BadRequest(&'static str),
    /// The body is larger than the route accepts (its `DefaultBodyLimit`).
    PayloadTooLarge,
    /// The database did not answer.
    Unavailable,
    /// A bug or an unexpected failure; logged with an operation id the page shows.
    Internal(anyhow::Error),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound,
            StoreError::Unavailable(_) => AppError::Unavailable,
            other => AppError::Internal(other.into()),
        }
    }
}

impl From<crate::auth::sign_in::SignInError> for AppError {
    fn from(e: crate::auth::sign_in::SignInError) -> Self {
        match e {
            crate::auth::sign_in::SignInError::Store(e) => e.into(),
            seed @ crate::auth::sign_in::SignInError::Seed(_) => AppError::Internal(seed.into()),
        }
    }
}

impl From<tower_sessions::session::Error> for AppError {
    fn from(e: tower_sessions::session::Error) -> Self {
        AppError::Internal(anyhow::anyhow!("session store: {e}"))
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        AppError::Internal(e)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    nav: Option<super::pages::Nav>,
    title: &'a str,
    message: &'a str,
    operation_id: Option<String>,
}

/// Marks the response of [`not_found`], so the pages' middleware can give it the header of a
/// signed-in user ([`super::pages::signed_in_not_found`]).
#[derive(Debug, Clone, Copy)]
pub struct NotFoundPage;

fn page(status: StatusCode, title: &str, message: &str, operation_id: Option<String>) -> Response {
    page_with(None, status, title, message, operation_id)
}

fn page_with(
    nav: Option<super::pages::Nav>,
    status: StatusCode,
    title: &str,
    message: &str,
    operation_id: Option<String>,
) -> Response {
    let body = ErrorPage { nav, title, message, operation_id }.render().unwrap_or_else(|_| message.to_owned());
    let mut response = (status, axum::response::Html(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The error page for an unexpected failure: logged with an operation id that the page shows.
pub fn internal(detail: &str) -> Response {
    let operation_id = uuid::Uuid::new_v4().to_string();
    tracing::error!(operation_id = %operation_id, error = detail, "request failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Something went wrong on our side. If it happens again, tell WMDA support this reference:",
        Some(operation_id),
    )
}

/// The 404 page, with the header of `nav`'s user when one is signed in (issue 14, point 11).
pub fn not_found_for(nav: Option<super::pages::Nav>) -> Response {
    let mut response = page_with(
        nav,
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is nothing here, or you have no access to it.",
        None,
    );
    response.extensions_mut().insert(NotFoundPage);
    response
}

/// The 404 page without a header; on the pages, [`super::pages::signed_in_not_found`] adds the
/// signed-in user's.
pub fn not_found() -> Response {
    not_found_for(None)
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::NotFound => not_found(),
            AppError::SignInRequired { next } => {
                let target = match next.filter(|n| n != "/") {
                    Some(n) => format!(
                        "/login?next={}",
                        url::form_urlencoded::byte_serialize(n.as_bytes()).collect::<String>()
                    ),
                    None => "/login".to_owned(),
                };
                Redirect::to(&target).into_response()
            }
            AppError::TooManyRequests { retry_after_seconds } => {
                let mut r = page(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many attempts",
                    &crate::domain::failure_window::ThrottleVerdict::message(chrono::Duration::seconds(
                        retry_after_seconds,
                    )),
                    None,
                );
                if let Ok(v) = HeaderValue::from_str(&retry_after_seconds.max(1).to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                r
            }
            AppError::BadRequest(text) => page(StatusCode::BAD_REQUEST, "The request could not be read", text, None),
            AppError::PayloadTooLarge => page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request is too large",
                "The request is larger than this page accepts.",
                None,
            ),
            AppError::Unavailable => {
                tracing::warn!("the database did not answer");
                page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    "The portal cannot reach its database. Please try again in a minute.",
                    None,
                )
            }
            AppError::Internal(e) => internal(&format!("{e:#}")),
        }
    }
}
