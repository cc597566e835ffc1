//! One-time link tokens: invitation (72 hours), password reset (1 hour), MFA re-enrolment
//! (72 hours). 256 random bits, base64url in the link, stored as SHA-256 (a fast hash suffices for
//! a high-entropy token, ASVS 5.0 6.5.2), single use.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use rand::{RngCore as _, TryRngCore as _};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Accept an invitation: set a password, then enrol TOTP.
    Invitation,
    /// Set a new password (TOTP still required afterwards).
    PasswordReset,
    /// Enrol a new authenticator after an admin reset the MFA; asks for the current password.
    MfaReenrolment,
    /// Register a first passkey (a WMDA admin under `PORTAL_ADMIN_MFA=passkey`, issue 19); asks
    /// for the current password and a TOTP code.
    PasskeyEnrolment,
}

impl LinkPurpose {
    /// The database value.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Invitation => "invitation",
            LinkPurpose::PasswordReset => "password_reset",
            LinkPurpose::MfaReenrolment => "mfa_reenrolment",
            LinkPurpose::PasskeyEnrolment => "passkey_enrolment",
        }
    }

    /// Parses the database value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invitation" => Some(LinkPurpose::Invitation),
            "password_reset" => Some(LinkPurpose::PasswordReset),
            "mfa_reenrolment" => Some(LinkPurpose::MfaReenrolment),
            "passkey_enrolment" => Some(LinkPurpose::PasskeyEnrolment),
            _ => None,
        }
    }

    /// How long a link stays valid: 72 hours for invitations, re-enrolment and passkey
    /// enrolment, 1 hour for password reset.
    pub fn lifetime(self) -> Duration {
        match self {
            LinkPurpose::PasswordReset => Duration::hours(1),
            LinkPurpose::Invitation | LinkPurpose::MfaReenrolment | LinkPurpose::PasskeyEnrolment => {
                Duration::hours(72)
            }
        }
    }

    /// The path the link opens, e.g. `/invite/{token}`.
    pub fn path(self, token: &LinkToken) -> String {
        match self {
            LinkPurpose::PasswordReset => format!("/password/reset/{}", token.expose()),
            LinkPurpose::PasskeyEnrolment => format!("/passkey/enrol/{}", token.expose()),
            LinkPurpose::Invitation | LinkPurpose::MfaReenrolment => format!("/invite/{}", token.expose()),
        }
    }
}

/// A link token. Secret: appears only in its email, the command line's output and the link;
/// `Debug` is redacted.
pub struct LinkToken(Zeroizing<String>);

impl LinkToken {
    /// 32 random bytes from the OS CSPRNG, base64url without padding (43 characters).
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        // `unwrap_err` panics if the OS has no entropy: no token rather than a predictable one.
        rand::rngs::OsRng.unwrap_err().fill_bytes(bytes.as_mut_slice());
        Self(Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_slice())))
    }

    /// A token taken from a link; `None` unless it has the generated shape.
    pub fn from_link(text: &str) -> Option<Self> {
        (text.len() == 43 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            .then(|| Self(Zeroizing::new(text.to_owned())))
    }

    /// Whether `text` looks like a token cut short (copied from a wrapped line, or only partly):
    /// between 1 and 42 characters of the token alphabet. Such a link is incomplete, not expired.
    pub fn looks_cut(text: &str) -> bool {
        (1..43).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    /// The token text.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The stored form: SHA-256 of the text (32 bytes).
    pub fn hash(&self) -> Vec<u8> {
        Sha256::digest(self.0.as_bytes()).to_vec()
    }
}

impl std::fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkToken([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_url_safe_characters() {
        let t = LinkToken::generate();
        assert_eq!(t.expose().len(), 43);
        assert!(LinkToken::from_link(t.expose()).is_some());
        assert_eq!(LinkToken::from_link(t.expose()).unwrap().hash(), t.hash());
        assert!(LinkToken::from_link("short").is_none());
        assert!(LinkToken::from_link(&"a/".repeat(22)[..43]).is_none());
        assert!(LinkToken::looks_cut(&t.expose()[..30]) && !LinkToken::looks_cut(t.expose()));
        assert!(!LinkToken::looks_cut("") && !LinkToken::looks_cut("a/b"));
        assert_eq!(LinkPurpose::Invitation.lifetime(), Duration::hours(72));
        assert_eq!(LinkPurpose::PasswordReset.lifetime(), Duration::hours(1));
        for p in [
            LinkPurpose::Invitation,
            LinkPurpose::PasswordReset,
            LinkPurpose::MfaReenrolment,
            LinkPurpose::PasskeyEnrolment,
        ] {
            assert_eq!(LinkPurpose::parse(p.as_str()), Some(p));
        }
    }
}
