//! Email addresses of portal users.

use std::fmt;

/// A syntactically valid email address, trimmed and lower-cased.
///
/// Rule (DESIGN.md section 3): emails are unique after lower-casing and trimming, done here and not
/// by the database, because SQLite's `COLLATE NOCASE` folds ASCII only. Syntax is checked by the
/// `email_address` crate (RFC 5321/5322); at most 254 characters (RFC 5321 4.5.3.1.3).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

/// Why a text is not an [`EmailAddress`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Nothing but white space was given.
    #[error("Enter an email address.")]
    Empty,
    /// Longer than 254 characters.
    #[error("An email address has at most 254 characters.")]
    TooLong,
    /// Not of the form `name@example.org`.
    #[error("Enter an email address like name@example.org.")]
    Invalid,
}

impl EmailAddress {
    /// Trims, lower-cases and checks `input`.
    ///
    /// # Errors
    /// [`EmailError`] naming what is wrong.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        let lowered = trimmed.to_lowercase();
        if lowered.chars().count() > 254 {
            return Err(EmailError::TooLong);
        }
        // A display-name form ("Jane <jane@x.org>") is valid RFC 5322 but not an address to store.
        if lowered.contains(['<', '>', ' ']) || !email_address::EmailAddress::is_valid(&lowered) {
            return Err(EmailError::Invalid);
        }
        Ok(Self(lowered))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn trims_and_lower_cases() {
        let e = EmailAddress::parse("  Jane.Doe@Example.ORG \n").unwrap();
        assert_eq!(e.as_str(), "jane.doe@example.org");
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        assert_eq!(EmailAddress::parse("   "), Err(EmailError::Empty));
        for bad in ["jane", "@example.org", "jane@", "Jane <jane@example.org>", "a b@example.org"] {
            assert_eq!(EmailAddress::parse(bad), Err(EmailError::Invalid), "{bad}");
        }
        let long = format!("{}@example.org", "a".repeat(250));
        assert_eq!(EmailAddress::parse(&long), Err(EmailError::TooLong));
    }

    proptest! {
        #[test]
        fn parsing_is_idempotent_and_case_blind(local in "[A-Za-z0-9._%+-]{1,30}", domain in "[A-Za-z0-9]{1,20}\\.[A-Za-z]{2,6}") {
            let raw = format!(" {local}@{domain} ");
            if let Ok(e) = EmailAddress::parse(&raw) {
                let again = EmailAddress::parse(e.as_str());
                prop_assert_eq!(again, Ok(e.clone()));
                prop_assert_eq!(EmailAddress::parse(&raw.to_uppercase()), Ok(e.clone()));
                prop_assert_eq!(e.as_str(), e.as_str().trim());
            }
        }
    }
}
