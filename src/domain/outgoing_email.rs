//! An outgoing email: what the views render, the store queues in the outbox and the mail
//! transports deliver (DESIGN.md section 3, Emails).

/// What kind of email a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailKind {
    /// An invitation link.
    Invitation,
    /// A password-reset link.
    PasswordReset,
    /// An MFA re-enrolment link.
    MfaReenrolment,
    /// An expiry reminder.
    Reminder,
    /// The second factor was locked after 20 failures (issue 12): someone knows the password.
    SecondFactorLocked,
    /// A WMDA admin deleted a secret of the application (compromised), with the reason.
    SecretDeleted,
    /// A leak report found a live secret of the application in public (issue 15): urgent.
    SecretExposed,
    /// A partner system created or deleted a secret through the machine API (issue 16).
    ApiWrite,
    /// Self-rotation of an application was turned on or off, or forbidden by WMDA (issue 16).
    SelfRotation,
    /// A webhook endpoint was disabled after 72 hours without a 2xx answer (issue 17).
    WebhookDisabled,
    /// A change the user made on `/account`: password, recovery codes, passkeys (issue 19).
    AccountChanged,
    /// A passkey enrolment link (a WMDA admin under `PORTAL_ADMIN_MFA=passkey`, issue 19).
    PasskeyEnrolment,
}

impl EmailKind {
    /// The database value.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailKind::Invitation => "invitation",
            EmailKind::PasswordReset => "password_reset",
            EmailKind::MfaReenrolment => "mfa_reenrolment",
            EmailKind::Reminder => "reminder",
            EmailKind::SecondFactorLocked => "second_factor_locked",
            EmailKind::SecretDeleted => "secret_deleted",
            EmailKind::SecretExposed => "secret_exposed",
            EmailKind::ApiWrite => "api_write",
            EmailKind::SelfRotation => "self_rotation",
            EmailKind::WebhookDisabled => "webhook_disabled",
            EmailKind::AccountChanged => "account_changed",
            EmailKind::PasskeyEnrolment => "passkey_enrolment",
        }
    }

    /// Parses the database value; `None` for any other text.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Invitation,
            Self::PasswordReset,
            Self::MfaReenrolment,
            Self::Reminder,
            Self::SecondFactorLocked,
            Self::SecretDeleted,
            Self::SecretExposed,
            Self::ApiWrite,
            Self::SelfRotation,
            Self::WebhookDisabled,
            Self::AccountChanged,
            Self::PasskeyEnrolment,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// An email to queue. Never carries a client secret, password, TOTP seed or recovery code
/// (DESIGN.md section 6); link emails carry their one-time link.
#[derive(Clone)]
pub struct NewEmail {
    /// Kind.
    pub kind: EmailKind,
    /// One recipient address.
    pub recipient: String,
    /// Subject, plain text (encoded per RFC 2047 when sent).
    pub subject: String,
    /// Plain-text body.
    pub text_body: String,
    /// HTML body.
    pub html_body: String,
}

impl std::fmt::Debug for NewEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bodies may carry one-time links: keep them out of logs.
        f.debug_struct("NewEmail")
            .field("kind", &self.kind)
            .field("recipient", &self.recipient)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_their_database_values_only() {
        for k in [
            EmailKind::Invitation,
            EmailKind::PasswordReset,
            EmailKind::MfaReenrolment,
            EmailKind::Reminder,
            EmailKind::SecondFactorLocked,
            EmailKind::SecretDeleted,
        ] {
            assert_eq!(EmailKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EmailKind::parse("Invitation"), None);
    }
}
