//! Organisations: country code, immutable code, and the `<CC>-<code>` reference.

use std::fmt;

/// An ISO 3166-1 alpha-2 country code, upper case (`NL`).
///
/// Checked against the `rust_iso3166` crate's list of officially assigned codes, not a hand-typed
/// list (DESIGN.md section 3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode(String);

/// Why a text is not a [`CountryCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountryCodeError {
    /// Not two letters A-Z.
    #[error("A country code is two letters, for example NL.")]
    NotTwoLetters,
    /// Two letters, but not an assigned ISO 3166-1 alpha-2 code.
    #[error("{0} is not an ISO 3166-1 country code.")]
    Unknown(String),
}

impl CountryCode {
    /// Trims and upper-cases `input` and checks it is an assigned ISO 3166-1 alpha-2 code.
    ///
    /// # Errors
    /// [`CountryCodeError`].
    pub fn parse(input: &str) -> Result<Self, CountryCodeError> {
        let code = input.trim();
        if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(CountryCodeError::NotTwoLetters);
        }
        let upper = code.to_ascii_uppercase();
        match rust_iso3166::from_alpha2(&upper) {
            Some(_) => Ok(Self(upper)),
            None => Err(CountryCodeError::Unknown(upper)),
        }
    }

    /// The two upper-case letters.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The country's English short name from ISO 3166-1 (`Netherlands (Kingdom of the)`).
    pub fn country_name(&self) -> &'static str {
        rust_iso3166::from_alpha2(&self.0).map_or("", |c| c.name)
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An organisation's immutable code: `[A-Za-z0-9]{2,40}`, used in application names.
///
/// Unique per country ignoring case (the database holds that with an index on `lower(code)`); the
/// case as entered is kept for display (DESIGN.md section 3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrganisationCode(String);

/// Why a text is not an [`OrganisationCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrganisationCodeError {
    /// Fewer than 2 or more than 40 characters.
    #[error("An organisation code has 2 to 40 characters.")]
    Length,
    /// A character outside A-Z, a-z, 0-9.
    #[error("An organisation code has only letters A-Z and digits, no spaces or dashes.")]
    Characters,
}

impl OrganisationCode {
    /// Trims `input` and checks `[A-Za-z0-9]{2,40}`.
    ///
    /// # Errors
    /// [`OrganisationCodeError`].
    pub fn parse(input: &str) -> Result<Self, OrganisationCodeError> {
        let code = input.trim();
        if !code.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(OrganisationCodeError::Characters);
        }
        if !(2..=40).contains(&code.len()) {
            return Err(OrganisationCodeError::Length);
        }
        Ok(Self(code.to_owned()))
    }

    /// The code as entered.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrganisationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How an organisation is referred to on the command line and in logs: `<CC>-<code>`,
/// e.g. `NL-DemoRegistry` (DESIGN.md section 3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrganisationRef {
    /// The organisation's country.
    pub country: CountryCode,
    /// The organisation's code.
    pub code: OrganisationCode,
}

/// Why a text is not an [`OrganisationRef`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrganisationRefError {
    /// No dash between country and code.
    #[error("Refer to an organisation as CC-code, for example NL-DemoRegistry.")]
    Shape,
    /// The country part is wrong.
    #[error(transparent)]
    Country(#[from] CountryCodeError),
    /// The code part is wrong.
    #[error(transparent)]
    Code(#[from] OrganisationCodeError),
}

impl OrganisationRef {
    /// Parses `NL-DemoRegistry`.
    ///
    /// # Errors
    /// [`OrganisationRefError`].
    pub fn parse(input: &str) -> Result<Self, OrganisationRefError> {
        let (cc, code) = input.trim().split_once('-').ok_or(OrganisationRefError::Shape)?;
        Ok(Self { country: CountryCode::parse(cc)?, code: OrganisationCode::parse(code)? })
    }
}

impl fmt::Display for OrganisationRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.country, self.code)
    }
}

/// An organisation's display name: free text, trimmed, 1 to 200 characters, no control
/// characters. It can be renamed; application names use the immutable code instead.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrganisationDisplayName(String);

/// Why a text is not an [`OrganisationDisplayName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrganisationDisplayNameError {
    /// Empty after trimming.
    #[error("Enter the organisation's name.")]
    Empty,
    /// More than 200 characters.
    #[error("The name can have at most 200 characters.")]
    TooLong,
    /// A control character.
    #[error("The name cannot contain control characters such as tabs or line breaks.")]
    ControlCharacter,
}

impl OrganisationDisplayName {
    /// Trims and checks `input`.
    ///
    /// # Errors
    /// [`OrganisationDisplayNameError`].
    pub fn parse(input: &str) -> Result<Self, OrganisationDisplayNameError> {
        let name = input.trim();
        if name.is_empty() {
            return Err(OrganisationDisplayNameError::Empty);
        }
        if name.chars().any(super::text::breaks_one_line) {
            return Err(OrganisationDisplayNameError::ControlCharacter);
        }
        if name.chars().count() > 200 {
            return Err(OrganisationDisplayNameError::TooLong);
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn country_codes_come_from_iso_3166() {
        assert_eq!(CountryCode::parse(" nl ").unwrap().as_str(), "NL");
        assert_eq!(CountryCode::parse("DE").unwrap().as_str(), "DE");
        assert_eq!(CountryCode::parse("XX"), Err(CountryCodeError::Unknown("XX".into())));
        assert_eq!(CountryCode::parse("UK"), Err(CountryCodeError::Unknown("UK".into())));
        assert_eq!(CountryCode::parse("NLD"), Err(CountryCodeError::NotTwoLetters));
        assert_eq!(CountryCode::parse("N1"), Err(CountryCodeError::NotTwoLetters));
        assert_eq!(CountryCode::parse("ÑL"), Err(CountryCodeError::NotTwoLetters));
    }

    #[test]
    fn organisation_codes_are_letters_and_digits() {
        assert_eq!(OrganisationCode::parse("DemoRegistry").unwrap().as_str(), "DemoRegistry");
        assert_eq!(OrganisationCode::parse("A"), Err(OrganisationCodeError::Length));
        assert_eq!(OrganisationCode::parse(&"a".repeat(41)), Err(OrganisationCodeError::Length));
        assert_eq!(OrganisationCode::parse("Demo-Registry"), Err(OrganisationCodeError::Characters));
        assert_eq!(OrganisationCode::parse("Démo"), Err(OrganisationCodeError::Characters));
    }

    #[test]
    fn display_names_are_trimmed_free_text() {
        assert_eq!(OrganisationDisplayName::parse("  Demo Registry B.V. ").unwrap().as_str(), "Demo Registry B.V.");
        assert_eq!(OrganisationDisplayName::parse(" "), Err(OrganisationDisplayNameError::Empty));
        assert_eq!(OrganisationDisplayName::parse("a\nb"), Err(OrganisationDisplayNameError::ControlCharacter));
        assert_eq!(OrganisationDisplayName::parse("a\u{2028}b"), Err(OrganisationDisplayNameError::ControlCharacter));
        assert_eq!(OrganisationDisplayName::parse(&"é".repeat(201)), Err(OrganisationDisplayNameError::TooLong));
    }

    #[test]
    fn organisation_refs_round_trip() {
        let r = OrganisationRef::parse("nl-DemoRegistry").unwrap();
        assert_eq!(r.to_string(), "NL-DemoRegistry");
        assert!(OrganisationRef::parse("NLDemo").is_err());
    }

    proptest! {
        #[test]
        fn any_valid_code_parses_to_itself(code in "[A-Za-z0-9]{2,40}") {
            let parsed = OrganisationCode::parse(&code).unwrap();
            prop_assert_eq!(parsed.as_str(), code.as_str());
        }

        #[test]
        fn codes_with_other_characters_are_refused(code in "[A-Za-z0-9]{0,10}[^A-Za-z0-9\\s][A-Za-z0-9]{0,10}") {
            prop_assert!(OrganisationCode::parse(&code).is_err());
        }

        #[test]
        fn every_accepted_country_code_is_two_upper_case_letters(cc in "[A-Za-z]{2}") {
            if let Ok(c) = CountryCode::parse(&cc) {
                prop_assert_eq!(c.as_str(), cc.to_ascii_uppercase());
                prop_assert!(!c.country_name().is_empty());
            }
        }
    }
}
