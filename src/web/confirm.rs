//! Changes that ask first (issue 14, point 4): disabling and enabling a user, resetting their
//! MFA, revoking a grant, changing a resource's audience.
//!
//! One [`Question`] per change says what will happen; the page puts it on the change's form as
//! `data-confirm*` attributes, where `static/portal.js` asks it in a dialog and then sends the form
//! with `confirm=yes`. Without JavaScript the form arrives without it, and the handler answers
//! [`page`]: the same question on a page whose button sends it again with `confirm=yes`. Either
//! way nothing changes until the answer is yes.

use askama::Template;
use askama_web::WebTemplate;
use axum::response::{IntoResponse, Response};

use super::extract::CurrentUser;
use super::pages::Nav;

/// The form field a confirmed change carries.
pub const CONFIRM_FIELD: &str = "confirm";

/// Whether a form's `confirm` field says yes (the only value that does).
pub fn given(confirm: &str) -> bool {
    confirm == "yes"
}

/// What a change asks before it is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The question, e.g. "Disable jane@example.org?"; the dialog's and the page's heading.
    pub title: String,
    /// What will happen, in a sentence or two.
    pub detail: String,
    /// The label of the button that makes the change, e.g. "Disable".
    pub button: String,
    /// Whether the change takes access away (a red button).
    pub danger: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    nav: Option<Nav>,
    question: Question,
    /// (label, value) of the value the change would set, e.g. ("New audience", "api://x").
    value: Option<(String, String)>,
    action: String,
    fields: Vec<(String, String)>,
    cancel: String,
}

/// The confirmation page of a change without JavaScript: `question`, the value it would set, and
/// a form that posts `fields` and `confirm=yes` to `action`; "Cancel" goes back to `cancel`.
pub fn page(
    user: &CurrentUser,
    question: Question,
    value: Option<(&str, &str)>,
    (action, fields): (&str, &[(&str, &str)]),
    cancel: &str,
) -> Response {
    ConfirmPage {
        nav: Nav::of(user),
        question,
        value: value.map(|(l, v)| (l.to_owned(), v.to_owned())),
        action: action.to_owned(),
        fields: fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        cancel: cancel.to_owned(),
    }
    .into_response()
}
