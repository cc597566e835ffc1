//! The emails' texts, rendered with askama (HTML escaped, plain text as is).

use askama::Template;

use crate::auth::LinkPurpose;
use crate::store::{EmailKind, NewEmail};

#[derive(Template)]
#[template(path = "email/link.txt")]
struct LinkText<'a> {
    name: &'a str,
    intro: &'a str,
    action: &'a str,
    link: &'a str,
    valid_for: &'a str,
    outro: &'a str,
}

#[derive(Template)]
#[template(path = "email/link.html")]
struct LinkHtml<'a> {
    name: &'a str,
    intro: &'a str,
    action: &'a str,
    link: &'a str,
    valid_for: &'a str,
    outro: &'a str,
}

/// The email carrying a one-time link (`link` is absolute, built from `PORTAL_BASE_URL`).
/// `name` is the recipient's display name (or email); it is escaped in the HTML part.
pub fn link_email(purpose: LinkPurpose, recipient: &str, name: &str, link: &str) -> NewEmail {
    let (kind, subject, intro, action, valid_for, outro) = match purpose {
        LinkPurpose::Invitation => (
            EmailKind::Invitation,
            "Your invitation to the WMDA secret portal",
            "WMDA has invited you to the self-service portal where credential managers manage the client secrets of their organisation's API applications. Open the link below to choose a password and set up an authenticator app (multi-factor sign-in is required).",
            "Accept the invitation",
            "72 hours",
            "If you did not expect this invitation, you can ignore this email.",
        ),
        LinkPurpose::PasswordReset => (
            EmailKind::PasswordReset,
            "Reset your WMDA secret portal password",
            "Someone asked to reset the password of your account on the WMDA secret portal. Open the link below to choose a new one; you will still need your authenticator app to sign in.",
            "Choose a new password",
            "1 hour",
            "If you did not ask for this, ignore this email: your password stays as it is.",
        ),
        LinkPurpose::MfaReenrolment => (
            EmailKind::MfaReenrolment,
            "Set up your authenticator again for the WMDA secret portal",
            "A WMDA administrator has reset the multi-factor sign-in of your account. Open the link below, confirm your current password and set up your authenticator app again.",
            "Set up your authenticator",
            "72 hours",
            "If you did not ask WMDA for this, contact WMDA support.",
        ),
    };
    let name = if name.trim().is_empty() { recipient } else { name };
    let text = LinkText { name, intro, action, link, valid_for, outro }.render().unwrap_or_default();
    let html = LinkHtml { name, intro, action, link, valid_for, outro }.render().unwrap_or_default();
    NewEmail { kind, recipient: recipient.to_owned(), subject: subject.to_owned(), text_body: text, html_body: html }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_in_html_and_links_appear_in_both_parts() {
        let e =
            link_email(LinkPurpose::Invitation, "jane@example.org", "<b>Jane</b>", "https://portal.example/invite/abc");
        assert!(
            e.html_body.contains("&#60;b&#62;Jane&#60;/b&#62;") || e.html_body.contains("&lt;b&gt;Jane"),
            "{}",
            e.html_body
        );
        assert!(!e.html_body.contains("<b>Jane</b>"));
        assert!(e.text_body.contains("<b>Jane</b>"));
        assert!(e.text_body.contains("https://portal.example/invite/abc"));
        assert!(e.html_body.contains("href=\"https://portal.example/invite/abc\""));
        assert!(e.text_body.contains("72 hours"));
    }
}
