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

/// A paged list's counts and links (the audit log, the activity page): `templates/pager.html`
/// shows the links.
pub struct Pager {
    /// Rows the filter matches.
    pub total: i64,
    /// The page shown, from 1.
    pub page: i64,
    /// Pages in all (at least 1).
    pub pages: i64,
    /// The newer page's link, if there is one.
    pub prev: Option<String>,
    /// The older page's link, if there is one.
    pub next: Option<String>,
    /// The filtered set's CSV export.
    pub csv: String,
}

/// One page of a list: its rows, its [`Pager`], and a notice when the page asked for was not
/// one there is.
pub struct Paged<T> {
    /// The rows of the page shown.
    pub rows: Vec<T>,
    /// Counts and links.
    pub pager: Pager,
    /// "There is no page 7: showing the last page, 3." and the like.
    pub notice: Option<String>,
}

/// The link to page `page` (or, with `format`, the export) of the list at `path` filtered by
/// `filter` (empty values left out).
fn list_link(path: &str, filter: &[(&str, &str)], page: i64, format: Option<&str>) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in filter {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    if page > 1 {
        s.append_pair("page", &page.to_string());
    }
    if let Some(f) = format {
        s.append_pair("format", f);
    }
    format!("{path}?{}", s.finish())
}

/// One page of the list at `path` filtered by `filter` (the query's fields as typed, kept in
/// the links), at most `size` rows a page, as `?page=` asks (1 to
/// [`crate::domain::PageNumber::MAX`]): `fetch(limit, offset)` answers the rows and the total. A
/// page number that is none gives the first page, one past the end the last, each with a notice.
///
/// # Errors
/// `fetch`'s.
pub async fn paged<T, E, F, Fut>(
    requested: &str,
    size: u32,
    (path, filter): (&str, &[(&str, &str)]),
    fetch: F,
) -> Result<Paged<T>, E>
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
    let (page, pages) = (i64::from(page.get()), i64::from(pages.get()));
    let pager = Pager {
        total,
        page,
        pages,
        prev: (page > 1).then(|| list_link(path, filter, page - 1, None)),
        next: (page < pages).then(|| list_link(path, filter, page + 1, None)),
        csv: list_link(path, filter, 1, Some("csv")),
    };
    Ok(Paged { rows, pager, notice })
}

/// The answer to a CSV export whose filter is wrong (422): the export is not made, since leaving
/// the wrong part out would export more than was asked for; the messages say why.
pub fn export_refused(errors: &[String], back: &str) -> Response {
    let mut paragraphs: Vec<&str> = errors.iter().map(String::as_str).collect();
    paragraphs.push("Correct the filter and export again.");
    message(StatusCode::UNPROCESSABLE_ENTITY, "Export not made", &paragraphs, Some((back, "Back to the list")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_links_keep_the_filter_and_leave_out_empty_fields_and_page_one() {
        let filter = [("action", "secret.created"), ("from", ""), ("to", "2026-12-31")];
        assert_eq!(list_link("/x", &filter, 1, None), "/x?action=secret.created&to=2026-12-31");
        assert_eq!(list_link("/x", &filter, 3, None), "/x?action=secret.created&to=2026-12-31&page=3");
        assert_eq!(list_link("/x", &[("a", "&=?")], 1, Some("csv")), "/x?a=%26%3D%3F&format=csv");
    }

    #[tokio::test]
    async fn a_page_past_the_end_is_the_last_with_a_notice_and_links_to_its_neighbours() {
        let rows: Vec<i64> = (0..120).collect();
        let fetch = |limit: i64, offset: i64| {
            let rows = rows.clone();
            async move {
                let page: Vec<i64> = rows.iter().copied().skip(offset as usize).take(limit as usize).collect();
                Ok::<_, ()>((page, 120))
            }
        };
        let p = paged("9", 50, ("/x", &[("q", "v")]), fetch).await.unwrap();
        assert_eq!((p.pager.page, p.pager.pages, p.rows.len()), (3, 3, 20));
        assert!(p.notice.unwrap().contains("no page 9"));
        assert_eq!((p.pager.prev.as_deref(), p.pager.next.as_deref()), (Some("/x?q=v&page=2"), None));
        let p = paged("-1", 50, ("/x", &[]), fetch).await.unwrap();
        assert_eq!(
            (p.pager.page, p.pager.next.as_deref(), p.pager.csv.as_str()),
            (1, Some("/x?page=2"), "/x?format=csv")
        );
    }
}
