//! Pieces shared by the pages.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::extract::CurrentUser;
use crate::store::UserRole;

/// The signed-in part of the page header.
#[derive(Debug, Clone)]
pub struct Nav {
    /// The user's name (their email when they have none).
    pub name: String,
    /// What the user's last change did, shown once above the page's content
    /// ([`super::notice`]).
    pub notice: Option<String>,
}

impl Nav {
    /// The header for a signed-in user, with the notice of their last change.
    pub fn of(user: &CurrentUser) -> Option<Nav> {
        Some(Nav { name: user.name().to_owned(), notice: user.notice.clone() })
    }
}

/// A page with a title, some paragraphs and an optional link.
#[derive(Template, WebTemplate)]
#[template(path = "message.html")]
pub struct MessagePage {
    /// Header.
    pub nav: Option<Nav>,
    /// Title and heading.
    pub title: String,
    /// Text.
    pub paragraphs: Vec<String>,
    /// (href, label).
    pub link: Option<(String, String)>,
}

/// A message page with a status code.
pub fn message(status: StatusCode, title: &str, paragraphs: &[&str], link: Option<(&str, &str)>) -> Response {
    let page = MessagePage {
        nav: None,
        title: title.to_owned(),
        paragraphs: paragraphs.iter().map(|p| (*p).to_owned()).collect(),
        link: link.map(|(h, l)| (h.to_owned(), l.to_owned())),
    };
    (status, page).into_response()
}

/// The page a user lands on after signing in.
pub fn home_path(role: UserRole) -> &'static str {
    match role {
        UserRole::WmdaAdmin => "/admin",
        UserRole::Member(_) => "/manage-api-credentials",
    }
}

/// The answer to the one-time link of `token`: for a token cut short ([`LinkToken::looks_cut`],
/// a link copied in part), that it is incomplete (issue 14, point 6); otherwise
/// [`link_not_valid`]. A cut token names no account, so saying so tells nothing.
///
/// [`LinkToken::looks_cut`]: crate::domain::LinkToken::looks_cut
pub fn link_refused(token: &str) -> Response {
    if !crate::domain::LinkToken::looks_cut(token) {
        return link_not_valid();
    }
    message(
        StatusCode::NOT_FOUND,
        "This link is incomplete",
        &[
            "This link is incomplete: part of it is missing. Copy the whole link from the email (it may run on to the next line) and open it again.",
        ],
        Some(("/login", "Go to sign in")),
    )
}

/// The answer to a one-time link that is unknown, used, expired, or for a disabled account:
/// the same page for each, so the link tells nothing about the account.
pub fn link_not_valid() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "This link is no longer valid",
        &[
            "The link has been used already, has expired, or was replaced by a newer one.",
            "Ask WMDA for a new invitation, or request a new password-reset link.",
        ],
        Some(("/login", "Go to sign in")),
    )
}

/// Middleware of the pages: a 404 page ([`super::error::not_found`], from an unknown path or a
/// handler's `NotFound`) answered to a signed-in user keeps the header with their name and "Sign
/// out" (issue 14, point 11). Only 404s read the session and the account again.
pub async fn signed_in_not_found(
    axum::extract::State(state): axum::extract::State<super::AppState>,
    session: tower_sessions::Session,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    if response.extensions().get::<super::error::NotFoundPage>().is_none() {
        return response;
    }
    let Ok(auth) = session.get::<crate::auth::session::SessionAuth>(super::session::AUTH_KEY).await else {
        return response;
    };
    match crate::auth::session::check_signed_in(&state.store, auth, state.clock.now()).await {
        Ok(crate::auth::session::SessionCheck::Valid { user, .. }) => {
            super::error::not_found_for(Some(Nav { name: user.shown_name().to_owned(), notice: None }))
        }
        _ => response,
    }
}

/// A filter's date as typed (`YYYY-MM-DD`, UTC): `None` when empty; a message naming the field
/// (`label`, e.g. "from") when it is no date, and that bound is then left out.
pub fn filter_date(text: &str, label: &str) -> Result<Option<chrono::NaiveDate>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    crate::domain::parse_date(text.trim())
        .map(Some)
        .map_err(|_| format!("The {label} date must be YYYY-MM-DD, between 1970-01-01 and 9999-12-31."))
}

/// One page of a list of at most `size` rows a page, as `?page=` asks (1 to
/// [`crate::domain::PageNumber::MAX`]): `fetch(limit, offset)` answers the rows and the total. A page
/// number that is none gives the first page, one past the end the last, each with a notice.
/// Returns the rows, the total, the page shown, the number of pages, and the notice.
///
/// # Errors
/// `fetch`'s.
pub async fn paged<T, E, F, Fut>(
    requested: &str,
    size: u32,
    fetch: F,
) -> Result<(Vec<T>, i64, i64, i64, Option<String>), E>
where
    F: Fn(i64, i64) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, i64), E>>,
{
    use crate::domain::PageNumber;
    let (mut page, mut notice) = match PageNumber::parse(requested) {
        Ok(p) => (p, None),
        Err(e) => (PageNumber::FIRST, Some(format!("{e} Showing the first page."))),
    };
    let offset = |p: PageNumber| i64::try_from(p.offset(size)).unwrap_or(i64::MAX);
    let (mut rows, mut total) = fetch(i64::from(size), offset(page)).await?;
    let pages = PageNumber::count(u64::try_from(total).unwrap_or(0), size);
    if page > pages {
        notice = Some(format!("There is no page {}: showing the last page, {}.", page.get(), pages.get()));
        page = pages;
        (rows, total) = fetch(i64::from(size), offset(page)).await?;
    }
    Ok((rows, total, i64::from(page.get()), i64::from(pages.get()), notice))
}

/// The answer to a CSV export whose filter is wrong (422): the export is not made, since leaving
/// the wrong part out would export more than was asked for; the messages say why.
pub fn export_refused(errors: &[String], back: &str) -> Response {
    let mut paragraphs: Vec<&str> = errors.iter().map(String::as_str).collect();
    paragraphs.push("Correct the filter and export again.");
    message(StatusCode::UNPROCESSABLE_ENTITY, "Export not made", &paragraphs, Some((back, "Back to the list")))
}
