//! The emails' texts, rendered with askama (HTML escaped, plain text as is).

use askama::Template;

use crate::domain::LinkPurpose;
use crate::domain::{EmailKind, NewEmail};

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
        LinkPurpose::PasskeyEnrolment => (
            EmailKind::PasskeyEnrolment,
            "Register a passkey for the WMDA secret portal",
            "WMDA administrators sign in to the WMDA secret portal with a passkey (a security key, or your device's screen lock). Open the link below, confirm your password and a code from your authenticator app, and register your passkey.",
            "Register your passkey",
            "72 hours",
            "If you did not expect this, contact WMDA support.",
        ),
    };
    let name = if name.trim().is_empty() { recipient } else { name };
    let text = LinkText { name, intro, action, link, valid_for, outro }.render().unwrap_or_default();
    let html = LinkHtml { name, intro, action, link, valid_for, outro }.render().unwrap_or_default();
    NewEmail { kind, recipient: recipient.to_owned(), subject: subject.to_owned(), text_body: text, html_body: html }
}

#[derive(Template)]
#[template(path = "email/notice.txt")]
struct NoticeText<'a> {
    name: &'a str,
    paragraphs: &'a [String],
}

#[derive(Template)]
#[template(path = "email/notice.html")]
struct NoticeHtml<'a> {
    name: &'a str,
    paragraphs: &'a [String],
}

/// A plain notice of paragraphs (no link to act on but those written out in the text).
fn notice_email(kind: EmailKind, recipient: &str, name: &str, subject: &str, paragraphs: &[String]) -> NewEmail {
    let name = if name.is_empty() { recipient } else { name };
    NewEmail {
        kind,
        recipient: recipient.to_owned(),
        subject: subject.to_owned(),
        text_body: NoticeText { name, paragraphs }.render().unwrap_or_default(),
        html_body: NoticeHtml { name, paragraphs }.render().unwrap_or_default(),
    }
}

/// The email to a user whose second factor was just locked after 20 wrong codes (issue 12):
/// someone knows their password. `forgot_url` is the password-reset page, `support` WMDA's
/// address; the lock's end is in UTC.
pub fn second_factor_locked_email(
    recipient: &str,
    name: &str,
    locked_until: chrono::DateTime<chrono::Utc>,
    forgot_url: &str,
    support: &str,
) -> NewEmail {
    let paragraphs = [
        "Someone signed in to the WMDA secret portal with your password and then entered 20 wrong \
         authenticator or recovery codes."
            .to_owned(),
        format!(
            "To protect your account, signing in with it is locked until {} UTC. Sessions you have open stay open.",
            locked_until.format("%Y-%m-%d %H:%M")
        ),
        format!(
            "If this was not you, someone knows your password: reset it now at {forgot_url} \
             (a password reset does not lift the lock)."
        ),
        format!("To sign in again before then, ask WMDA at {support} to reset your MFA."),
    ];
    notice_email(
        EmailKind::SecondFactorLocked,
        recipient,
        name,
        "Someone knows your WMDA secret portal password: reset it",
        &paragraphs,
    )
}

/// The email to a user about a change made to their account on `/account` (issue 19; DESIGN.md
/// section 11: every change is emailed): `what` is one sentence ("Your password was changed.",
/// "A passkey named “Laptop” was added."), `ip` the address it came from, `at` when (UTC);
/// `account_url` their account page, `forgot_url` the password-reset page.
pub fn account_changed_email(
    recipient: &str,
    name: &str,
    what: &str,
    ip: &str,
    at: chrono::DateTime<chrono::Utc>,
    account_url: &str,
    forgot_url: &str,
) -> NewEmail {
    let paragraphs = [
        format!("{what} This was done on your account page from {ip} at {} UTC.", at.format("%Y-%m-%d %H:%M")),
        format!("You can see your password, recovery codes and passkeys at {account_url}."),
        format!(
            "If this was not you, someone has signed in to your account: reset your password at {forgot_url} \
             and tell WMDA."
        ),
    ];
    notice_email(EmailKind::AccountChanged, recipient, name, "Your WMDA secret portal account was changed", &paragraphs)
}

/// What the email about a secret a WMDA admin deleted says.
#[derive(Debug, Clone)]
pub struct DeletedSecretFacts<'a> {
    /// The secret's name.
    pub secret_name: &'a str,
    /// Its hint.
    pub hint: &'a crate::domain::Hint,
    /// Its application's name.
    pub application: &'a str,
    /// Its application's client ID.
    pub client_id: &'a str,
    /// The admin's reason (one line, at most 500 characters).
    pub reason: &'a str,
    /// The Manage API Credentials page, from `PORTAL_BASE_URL`.
    pub manage_url: &'a str,
}

/// The email to a credential manager of an application whose secret a WMDA admin deleted (as
/// compromised): which secret, why, and what to do next (issue 14, point 3). Never carries a
/// secret value (the portal does not have it).
pub fn secret_deleted_email(f: &DeletedSecretFacts<'_>, recipient: &str, name: &str) -> NewEmail {
    let paragraphs = [
        format!(
            "WMDA deleted the client secret \"{}\" (starts with {}) of {} (client ID {}). The reason given: {}",
            f.secret_name, f.hint, f.application, f.client_id, f.reason
        ),
        "It no longer works: a system that still uses it cannot obtain tokens.".to_owned(),
        format!(
            "What to do next: create a new secret on the Manage API Credentials page ({}), update your \
             system with it, and confirm that it connects. If you did not expect this, contact WMDA.",
            f.manage_url
        ),
    ];
    let subject = format!("Client secret \"{}\" of {} was deleted by WMDA", f.secret_name, f.application);
    notice_email(EmailKind::SecretDeleted, recipient, name, &subject, &paragraphs)
}

/// What an email about a machine API write says (issue 16, point 4).
#[derive(Debug, Clone)]
pub struct ApiWriteFacts<'a> {
    /// `created`, `deleted` or `abandoned`.
    pub what: &'a str,
    /// The application's name.
    pub application: &'a str,
    /// Its client ID.
    pub client_id: &'a str,
    /// The secret's name.
    pub secret_name: &'a str,
    /// Its hint.
    pub hint: &'a crate::domain::Hint,
    /// The caller's address.
    pub ip: &'a str,
    /// The application's section of the Manage page (for WMDA admins: its admin page).
    pub manage_url: &'a str,
    /// The recipients are WMDA admins: the application has no eligible credential manager.
    pub to_admins: bool,
}

/// The email to an application's credential managers about a write its partner system made
/// through the machine API (issue 16, point 4; DESIGN.md section 8): what happened, from which
/// address, which secret by name and hint, and a link to the application's section of the Manage
/// page. Never carries a value.
pub fn api_write_email(w: &ApiWriteFacts<'_>, recipient: &str, name: &str) -> NewEmail {
    let (ip, manage_url) = (w.ip, w.manage_url);
    let secret = format!("\"{}\" (starts with {})", w.secret_name, w.hint);
    let (subject, what) = match w.what {
        "created" => (
            format!("{} created a client secret itself", w.application),
            format!(
                "{} (client ID {}) created the client secret {secret} itself through the API, from {ip}.",
                w.application, w.client_id
            ),
        ),
        "abandoned" => (
            format!("{}: an unused client secret was replaced", w.application),
            format!(
                "The portal deleted the client secret {secret} of {} (client ID {}): the application created it \
                 through the API over an hour ago, never used it, and asked for a new one from {ip}.",
                w.application, w.client_id
            ),
        ),
        _ => (
            format!("{} deleted a client secret itself", w.application),
            format!(
                "{} (client ID {}) deleted its client secret {secret} through the API, from {ip}.",
                w.application, w.client_id
            ),
        ),
    };
    let mut paragraphs = vec![what];
    if w.to_admins {
        paragraphs.push(
            "You receive this as a WMDA admin because the application has no credential manager who can sign in: \
             grant the role to one of its organisation's technical contacts."
                .to_owned(),
        );
        paragraphs.push(format!("Not expected? Check and delete its secrets here: {manage_url}"));
    } else {
        paragraphs.push(format!("Not you, or not expected? Check and delete secrets here: {manage_url}"));
    }
    notice_email(EmailKind::ApiWrite, recipient, name, &subject, &paragraphs)
}

/// What the email about a change of an application's self-rotation says (issue 16, point 3).
#[derive(Debug, Clone)]
pub struct SelfRotationMailFacts<'a> {
    /// The application's name.
    pub application: &'a str,
    /// Its client ID.
    pub client_id: &'a str,
    /// Self-rotation is on after the change.
    pub on: bool,
    /// Who changed it: a credential manager's name, or `None` for WMDA (which forbade it).
    pub by: Option<&'a str>,
    /// The application's section of the Manage page.
    pub manage_url: &'a str,
}

/// The email about a change of self-rotation through the machine API (DESIGN.md section 8): to
/// the application's other credential managers when one of them turned it on or off, or to all
/// of them when a WMDA admin forbade it. Says what partner systems can do now.
pub fn self_rotation_email(f: &SelfRotationMailFacts<'_>, recipient: &str, name: &str) -> NewEmail {
    let (app, client_id, manage_url) = (f.application, f.client_id, f.manage_url);
    let (subject, paragraphs) = match (f.by, f.on) {
        (Some(by), true) => (
            format!("{app}: self-rotation turned on"),
            vec![
                format!(
                    "{by} turned on self-rotation for {app} (client ID {client_id}): partner systems holding one of its \
                    current client secrets can now create a new secret through the API (at most 2 a day, one pending \
                    per secret) and delete the secrets that created theirs. You are emailed each time they do."
                ),
                format!("Not expected? Turn it off here: {manage_url}"),
            ],
        ),
        (Some(by), false) => (
            format!("{app}: self-rotation turned off"),
            vec![
                format!(
                    "{by} turned off self-rotation for {app} (client ID {client_id}): partner systems can no longer \
                    create client secrets through the API; their requests are refused. Secrets are created on the \
                    Manage page again."
                ),
                format!("Manage the application's secrets here: {manage_url}"),
            ],
        ),
        (None, _) => (
            format!("{app}: self-rotation turned off by WMDA"),
            vec![
                format!(
                    "WMDA turned off self-rotation for {app} (client ID {client_id}) and does not allow it for now: \
                    partner systems can no longer create client secrets through the API; their requests are refused. \
                    Create the next secret on the Manage page, and ask WMDA support if you need self-rotation back."
                ),
                format!("Manage the application's secrets here: {manage_url}"),
            ],
        ),
    };
    notice_email(EmailKind::SelfRotation, recipient, name, &subject, &paragraphs)
}

/// The email to an application's credential managers when one of its webhook endpoints was
/// disabled (issue 17; DESIGN.md section 9): which endpoint (its host only: a Slack or Teams URL
/// is a credential), why, and where to enable it again.
pub fn webhook_disabled_email(
    application: &str,
    host: &str,
    manage_url: &str,
    recipient: &str,
    name: &str,
) -> NewEmail {
    let subject = format!("{application}: a webhook endpoint was disabled");
    let paragraphs = [
        format!(
            "The webhook endpoint at {host} of {application} has not accepted an event for 72 hours, so the portal \
             stopped sending to it. Its events wait: when you enable it again, it gets them, oldest first."
        ),
        format!("Check the receiver, then enable the endpoint here: {manage_url}"),
    ];
    notice_email(EmailKind::WebhookDisabled, recipient, name, &subject, &paragraphs)
}

/// What the urgent email about a secret found in public says (issue 15, point 4).
#[derive(Debug, Clone)]
pub struct ExposureFacts<'a> {
    /// The secret's name.
    pub secret_name: &'a str,
    /// Its hint.
    pub hint: &'a crate::domain::Hint,
    /// Its application's name.
    pub application: &'a str,
    /// Its application's client ID.
    pub client_id: &'a str,
    /// Where it was found, as the report gives it (may be empty).
    pub url: &'a str,
    /// Whether the portal deleted it (`PORTAL_LEAK_ACTION=delete`).
    pub deleted: bool,
    /// The recipients are WMDA admins: the application has no eligible credential manager.
    pub to_admins: bool,
    /// The Manage API Credentials page, from `PORTAL_BASE_URL`.
    pub manage_url: &'a str,
}

/// The urgent email to the credential managers (or the WMDA admins) of an application whose live
/// secret a leak report found in public: which secret, where, and what to do now. Sent at once,
/// not on the reminder schedule; never carries the value (the portal does not have it).
pub fn secret_exposed_email(f: &ExposureFacts<'_>, recipient: &str, name: &str) -> NewEmail {
    // A line of an email has at most 998 octets (RFC 5322 2.1.1): a longer URL is shortened here
    // (the audit log keeps it whole).
    let place = match f.url.chars().count() {
        0 => "in a public place".to_owned(),
        n if n > 700 => {
            format!("at {}… (shortened; the audit log has it whole)", f.url.chars().take(700).collect::<String>())
        }
        _ => format!("at {}", f.url),
    };
    let mut paragraphs = vec![format!(
        "The client secret \"{}\" (starts with {}) of {} (client ID {}) was found {place}. Anyone who saw it there can \
         obtain tokens as your system.",
        f.secret_name, f.hint, f.application, f.client_id
    )];
    if f.to_admins {
        paragraphs.push(
            "You receive this as a WMDA admin because the application has no credential manager who can act on it."
                .to_owned(),
        );
    }
    if f.deleted {
        paragraphs.push(
            "The portal has deleted it: it no longer works. Create a new secret on the Manage API Credentials page \
             and update your system with it."
                .to_owned(),
        );
    } else {
        paragraphs.push(
            "It still works. Act now: create a replacement on the Manage API Credentials page, update your system \
             with it, confirm that it connects, then delete this one."
                .to_owned(),
        );
    }
    paragraphs.push(format!("Manage API Credentials: {}", f.manage_url));
    paragraphs.push("Also remove the secret from where it was found, and from that place's history.".to_owned());
    let subject = format!("Urgent: client secret \"{}\" of {} was found in public", f.secret_name, f.application);
    notice_email(EmailKind::SecretExposed, recipient, name, &subject, &paragraphs)
}

/// What a reminder email says about its secret.
#[derive(Debug, Clone)]
pub struct ReminderFacts {
    /// The notice.
    pub notice: crate::domain::reminder::Notice,
    /// The secret's name (user-chosen: escaped in HTML; control characters never reach headers).
    pub secret_name: String,
    /// Its hint.
    pub hint: crate::domain::Hint,
    /// Its application's name.
    pub application: String,
    /// Its application's client ID.
    pub client_id: String,
    /// The expiration date, UTC.
    pub expires_on: chrono::NaiveDate,
    /// Days left on the day of sending.
    pub days_left: crate::domain::DaysLeft,
    /// Latest use at the token endpoint.
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The Manage API Credentials page, from `PORTAL_BASE_URL`.
    pub manage_url: String,
    /// "Create replacement" of this secret: the create form with its name and the latest date
    /// (issue 18, point 3); for WMDA admins, the application's admin page.
    pub replace_url: String,
    /// Sent to the WMDA admins because the application has no eligible credential manager.
    pub to_admins: bool,
}

#[derive(Template)]
#[template(path = "email/reminder.txt")]
struct ReminderText<'a> {
    f: &'a ReminderFacts,
    name: &'a str,
    headline: String,
    last_used: String,
    replaced: bool,
    expired: bool,
}

#[derive(Template)]
#[template(path = "email/reminder.html")]
struct ReminderHtml<'a> {
    f: &'a ReminderFacts,
    name: &'a str,
    headline: String,
    last_used: String,
    replaced: bool,
    expired: bool,
}

/// A reminder email for one recipient. Subject as in DESIGN.md's table, e.g.
/// `Client secret "Build server" of Partner-NL-DemoRegistry-DM expires in 7 days`. Never carries
/// a secret value (the portal does not have it).
pub fn reminder_email(f: &ReminderFacts, recipient: &str, name: &str) -> NewEmail {
    use crate::domain::reminder::Notice;
    let wording = f.notice.wording(f.days_left);
    let subject = format!("Client secret \"{}\" of {} {wording}", f.secret_name, f.application);
    let headline = subject.clone();
    let last_used = f.last_used_at.map_or_else(|| "never".to_owned(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string());
    let name = if name.trim().is_empty() { recipient } else { name };
    let replaced = f.notice == Notice::RotationComplete;
    let expired = f.notice == Notice::Expired;
    let text = ReminderText { f, name, headline: headline.clone(), last_used: last_used.clone(), replaced, expired }
        .render()
        .unwrap_or_default();
    let html = ReminderHtml { f, name, headline, last_used, replaced, expired }.render().unwrap_or_default();
    NewEmail { kind: EmailKind::Reminder, recipient: recipient.to_owned(), subject, text_body: text, html_body: html }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reminders_escape_names_in_html_and_never_carry_a_value() {
        use crate::domain::reminder::Notice;
        let facts = ReminderFacts {
            notice: Notice::OneWeek,
            secret_name: "<b>Build</b> \"server\"".into(),
            hint: crate::domain::Hint::new("abc", crate::domain::SecretFormat::V2),
            application: "Partner-NL-DemoRegistry-DM".into(),
            client_id: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
            expires_on: chrono::NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
            days_left: crate::domain::DaysLeft::between(
                chrono::NaiveDate::from_ymd_opt(2026, 12, 24).unwrap(),
                chrono::NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
            ),
            last_used_at: None,
            manage_url: "https://portal.example/manage-api-credentials".into(),
            replace_url: "https://portal.example/manage-api-credentials/c/secrets/new?replaces=s".into(),
            to_admins: true,
        };
        let e = reminder_email(&facts, "jane@example.org", "Jane");
        assert_eq!(
            e.subject,
            "Client secret \"<b>Build</b> \"server\"\" of Partner-NL-DemoRegistry-DM expires in 7 days"
        );
        assert!(!e.html_body.contains("<b>Build</b>"));
        assert!(
            e.text_body.contains("(starts with wmdacs_abc)")
                && e.text_body.contains("2026-12-31")
                && e.text_body.contains("7 days left")
        );
        assert!(e.text_body.contains("Last used: never"));
        assert!(e.text_body.contains("https://portal.example/manage-api-credentials"));
        assert!(e.text_body.contains("no credential manager"));
        // Sent to the WMDA admins (no credential manager): they grant the role, on the admin page.
        for step in ["Grant the credential manager role", "Update your system", "Confirm", "Delete the old secret"] {
            assert!(e.text_body.contains(step), "{step}");
        }
        // Issue 18, point 3: both parts carry the link (for managers, the secret's "Create replacement").
        let replace = "https://portal.example/manage-api-credentials/c/secrets/new?replaces=s";
        assert!(e.text_body.contains(replace) && e.html_body.contains(replace));
    }

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

    /// Every sentence of the notice emails reads as one line of words: no run of spaces left by a
    /// wrapped string in the source (found once in the self-rotation emails).
    #[test]
    fn notice_emails_have_no_runs_of_spaces() {
        let hint = crate::domain::Hint::new("abc", crate::domain::SecretFormat::V2);
        let mut emails = Vec::new();
        for (by, on) in [(Some("Jane Doe"), true), (Some("Jane Doe"), false), (None, false)] {
            let f = SelfRotationMailFacts {
                application: "Partner-NL-X-DM",
                client_id: "c1",
                on,
                by,
                manage_url: "https://p/m",
            };
            emails.push(self_rotation_email(&f, "piet@example.org", "Piet"));
        }
        for what in ["created", "abandoned", "deleted"] {
            let f = ApiWriteFacts {
                what,
                application: "Partner-NL-X-DM",
                client_id: "c1",
                secret_name: "Build",
                hint: &hint,
                ip: "198.51.100.7",
                manage_url: "https://p/m",
                to_admins: what == "deleted",
            };
            emails.push(api_write_email(&f, "piet@example.org", "Piet"));
        }
        for e in emails {
            for line in e.text_body.lines() {
                assert!(!line.trim_start().contains("  "), "{:?}: {line:?}", e.subject);
            }
        }
    }
}
