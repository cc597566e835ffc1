//! Client secrets: name, expiration date, value, hint and hash (DESIGN.md section 3).

use std::fmt;

use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveTime, Utc};
use unicode_normalization::UnicodeNormalization;

pub use super::secret_value::{HINT_LENGTH, Hint, PlainSecret, SECRET_LENGTH, SecretFormat, SecretHash, Shape};

/// Most characters (Unicode scalar values) in a secret name.
pub const SECRET_NAME_MAX: usize = 100;

/// A client secret's name: after trimming and NFC, 1 to 100 Unicode scalar values, without
/// control characters (Cc) or bidi controls (U+200E, U+200F, U+202A-U+202E, U+2066-U+2069).
/// Everything else is allowed, including the zero-width joiner of emoji.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretName(String);

/// Why a text is not a [`SecretName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretNameError {
    /// Empty after trimming.
    #[error("Enter a name for the client secret.")]
    Empty,
    /// More than 100 characters.
    #[error("The name has {0} characters; use at most 100.")]
    TooLong(usize),
    /// A control character (tab, new line, ...).
    #[error("The name cannot contain control characters such as tabs or line breaks.")]
    ControlCharacter,
    /// A bidirectional-text control character.
    #[error("The name cannot contain invisible text-direction characters.")]
    BidiControl,
    /// Only invisible characters (zero-width spaces and joiners, soft hyphens).
    #[error("Enter a name with visible characters.")]
    Invisible,
}

/// Characters that show nothing on their own: a name of only these (and spaces) is no name.
impl SecretName {
    /// Trims, normalises to NFC and checks `input`.
    ///
    /// # Errors
    /// [`SecretNameError`].
    pub fn parse(input: &str) -> Result<Self, SecretNameError> {
        let name: String = input.trim().nfc().collect();
        if name.is_empty() {
            return Err(SecretNameError::Empty);
        }
        if name.chars().any(super::text::breaks_one_line) {
            return Err(SecretNameError::ControlCharacter);
        }
        if name.chars().all(super::text::is_invisible) {
            return Err(SecretNameError::Invisible);
        }
        if name.chars().any(super::text::is_bidi_control) {
            return Err(SecretNameError::BidiControl);
        }
        let len = name.chars().count();
        if len > SECRET_NAME_MAX {
            return Err(SecretNameError::TooLong(len));
        }
        Ok(Self(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client secret's expiration date `D`: a UTC calendar date with `today <= D <= today + 1 year`.
///
/// The secret works up to and including `D` and stops at `D+1 00:00:00Z`
/// ([`ExpiryDate::expires_at`]). One year ahead is the same month and day next year; 29 February
/// gives 28 February (seed guide: "1 year maximum", a WMDA security policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExpiryDate(NaiveDate);

/// Why a text is not an acceptable [`ExpiryDate`]. Each case has its own message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryDateError {
    /// Nothing given.
    #[error("Enter an expiration date.")]
    Missing,
    /// Digits in another layout, such as `12/11/2026`.
    #[error("Write the date as YYYY-MM-DD, for example 2027-03-31.")]
    NotIso,
    /// Not a date at all.
    #[error("This is not a date: write it as YYYY-MM-DD.")]
    NotADate,
    /// ISO layout, but no such day (`2026-13-01`, `2026-02-30`).
    #[error("There is no such day in the calendar: check the month and the day.")]
    NoSuchDay,
    /// A year with more (or fewer) than four digits, such as `+10000-01-01`.
    #[error("The year must have four digits.")]
    YearOutOfRange,
    /// Before today (UTC).
    #[error("The expiration date cannot be in the past; the earliest is {today} (today, UTC).")]
    InPast {
        /// Today, UTC.
        today: NaiveDate,
    },
    /// After today + 1 year.
    #[error("The expiration date can be at most one year ahead: {max} at the latest.")]
    TooFarAhead {
        /// The latest allowed date.
        max: NaiveDate,
    },
}

impl ExpiryDate {
    /// The latest allowed expiration date for a secret created `today`: the same month and day
    /// next year, 28 February for 29 February. This is also the form's default.
    pub fn max_for(today: NaiveDate) -> NaiveDate {
        // chrono clamps to the month's last day, so 2028-02-29 + 12 months = 2029-02-28.
        today.checked_add_months(Months::new(12)).unwrap_or(NaiveDate::MAX)
    }

    /// Parses a strict ISO `YYYY-MM-DD` date and checks it against `today` (UTC).
    ///
    /// # Errors
    /// [`ExpiryDateError`], a distinct case for each way the input can be wrong.
    pub fn parse(input: &str, today: NaiveDate) -> Result<Self, ExpiryDateError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ExpiryDateError::Missing);
        }
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        let date = if b.len() == 10 && digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10) {
            NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| ExpiryDateError::NoSuchDay)?
        } else if is_long_year(s) {
            return Err(ExpiryDateError::YearOutOfRange);
        } else if s.chars().any(|c| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_digit() || matches!(c, '/' | '.' | '-' | ' '))
        {
            return Err(ExpiryDateError::NotIso);
        } else {
            return Err(ExpiryDateError::NotADate);
        };
        Self::check(date, today)
    }

    /// Checks an already-typed date against `today` (UTC).
    ///
    /// # Errors
    /// [`ExpiryDateError::InPast`] or [`ExpiryDateError::TooFarAhead`].
    pub fn check(date: NaiveDate, today: NaiveDate) -> Result<Self, ExpiryDateError> {
        if date < today {
            return Err(ExpiryDateError::InPast { today });
        }
        let max = Self::max_for(today);
        if date > max {
            return Err(ExpiryDateError::TooFarAhead { max });
        }
        Ok(Self(date))
    }

    /// The date `D`.
    pub fn date(self) -> NaiveDate {
        self.0
    }

    /// The instant the secret stops working: `D+1 00:00:00Z`.
    pub fn expires_at(self) -> DateTime<Utc> {
        expiry_instant(self.0)
    }
}

/// The instant a secret with expiration date `date` stops working: the next day at 00:00:00 UTC.
pub fn expiry_instant(date: NaiveDate) -> DateTime<Utc> {
    date.succ_opt().unwrap_or(NaiveDate::MAX).and_time(NaiveTime::MIN).and_utc()
}

/// `[+-]` and five or more digits before `-MM-DD`, e.g. `+10000-01-01`.
fn is_long_year(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let Some((year, rest)) = body.split_once('-') else {
        return false;
    };
    (year.len() > 4 || s.starts_with(['+', '-']))
        && year.chars().all(|c| c.is_ascii_digit())
        && !year.is_empty()
        && rest.len() == 5
        && rest.chars().enumerate().all(|(i, c)| if i == 2 { c == '-' } else { c.is_ascii_digit() })
}

/// Whole UTC calendar days from `today` to an expiration date `D` (`D - today`): 0 means "expires
/// today", negative means expired (DESIGN.md section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DaysLeft(i64);

/// Fewer than this many days left is "expires soon" (seed guide: "less than one month").
pub const EXPIRES_SOON_DAYS: i64 = 30;

impl DaysLeft {
    /// `expires_on - today` in days.
    pub fn between(today: NaiveDate, expires_on: NaiveDate) -> Self {
        Self((expires_on - today).num_days())
    }

    /// The number of days; negative once expired.
    pub fn days(self) -> i64 {
        self.0
    }

    /// Past its expiration date.
    pub fn is_expired(self) -> bool {
        self.0 < 0
    }

    /// Fewer than 30 days left and not yet expired: the warning icon with text.
    pub fn expires_soon(self) -> bool {
        (0..EXPIRES_SOON_DAYS).contains(&self.0)
    }
}

impl fmt::Display for DaysLeft {
    /// "expired", "expires today", "1 day left", "12 days left" (never "1 days").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            n if n < 0 => f.write_str("expired"),
            0 => f.write_str("expires today"),
            1 => f.write_str("1 day left"),
            n => write!(f, "{n} days left"),
        }
    }
}

/// The secret limit (DESIGN.md section 3: at most `PORTAL_SECRET_LIMIT`, 3 by default, unexpired
/// and undeleted secrets per application, so a rotation has room for the new one): whether an
/// application holding `live` such secrets is at the limit of `most`. The one rule behind the
/// store's check (under the application's lock), the page's "at limit" state and the message.
pub fn secret_limit_reached(live: i64, most: i64) -> bool {
    live >= most
}

/// What a credential manager reads when `application` is at the limit of `most` secrets.
pub fn secret_limit_message(application: &str, most: i64) -> String {
    format!(
        "{application} already has {most} unexpired secrets, the most allowed. Delete a secret it no longer needs, then create the new one."
    )
}

/// Whether `date` is 29 February.
pub fn is_leap_day(date: NaiveDate) -> bool {
    date.month() == 2 && date.day() == 29
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn secret_names_are_trimmed_normalised_and_checked() {
        assert_eq!(SecretName::parse("  Secret by Jane Doe ").unwrap().as_str(), "Secret by Jane Doe");
        // "e" + combining acute becomes the single NFC scalar "é".
        assert_eq!(SecretName::parse("Cafe\u{301}").unwrap().as_str(), "Café");
        assert_eq!(SecretName::parse(" \t "), Err(SecretNameError::Empty));
        assert_eq!(SecretName::parse(""), Err(SecretNameError::Empty));
        assert_eq!(SecretName::parse("a\tb"), Err(SecretNameError::ControlCharacter));
        assert_eq!(SecretName::parse("a\u{7f}b"), Err(SecretNameError::ControlCharacter));
        assert_eq!(SecretName::parse("a\u{2028}b"), Err(SecretNameError::ControlCharacter));
        assert_eq!(SecretName::parse("a\u{2029}b"), Err(SecretNameError::ControlCharacter));
        assert_eq!(SecretName::parse("\u{200B}"), Err(SecretNameError::Invisible));
        assert_eq!(SecretName::parse("\u{200B} \u{FEFF}\u{2060}"), Err(SecretNameError::Invisible));
        assert_eq!(SecretName::parse("abc\u{202E}def"), Err(SecretNameError::BidiControl));
        assert_eq!(SecretName::parse("abc\u{2067}def"), Err(SecretNameError::BidiControl));
        assert_eq!(SecretName::parse(&"x".repeat(100)).unwrap().as_str().len(), 100);
        assert_eq!(SecretName::parse(&"x".repeat(101)), Err(SecretNameError::TooLong(101)));
        // Family emoji with zero-width joiners, right-to-left text and markup are names like any other.
        for ok in
            ["👩\u{200D}👩\u{200D}👧", "سر الخادم", "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>"]
        {
            assert_eq!(SecretName::parse(ok).unwrap().as_str(), ok);
        }
        // 100 emoji are 100 scalar values even though they are 400 bytes.
        assert!(SecretName::parse(&"🔑".repeat(100)).is_ok());
    }

    #[test]
    fn expiry_dates_refuse_each_wrong_input_with_its_own_message() {
        let today = d("2026-11-29");
        let cases = [
            ("2026-13-01", ExpiryDateError::NoSuchDay),
            ("12/11/2026", ExpiryDateError::NotIso),
            ("not-a-date", ExpiryDateError::NotADate),
            ("", ExpiryDateError::Missing),
            ("+10000-01-01", ExpiryDateError::YearOutOfRange),
            ("2026-11-28", ExpiryDateError::InPast { today }),
            ("2027-11-30", ExpiryDateError::TooFarAhead { max: d("2027-11-29") }),
        ];
        let mut messages = std::collections::HashSet::new();
        for (input, expected) in cases {
            let err = ExpiryDate::parse(input, today).unwrap_err();
            assert_eq!(err, expected, "{input:?}");
            assert!(messages.insert(err.to_string()), "message of {input:?} is not distinct");
        }
        assert_eq!(ExpiryDate::parse("10000-01-01", today), Err(ExpiryDateError::YearOutOfRange));
        assert_eq!(ExpiryDate::parse("2026-02-30", today), Err(ExpiryDateError::NoSuchDay));
        assert_eq!(ExpiryDate::parse("2026-11-29", today).unwrap().date(), today);
        assert_eq!(ExpiryDate::parse(" 2027-11-29 ", today).unwrap().date(), d("2027-11-29"));
    }

    #[test]
    fn one_year_from_29_february_is_28_february() {
        let leap = d("2028-02-29");
        assert_eq!(ExpiryDate::max_for(leap), d("2029-02-28"));
        assert!(ExpiryDate::parse("2029-02-28", leap).is_ok());
        assert_eq!(ExpiryDate::parse("2029-03-01", leap), Err(ExpiryDateError::TooFarAhead { max: d("2029-02-28") }));
        // From 28 February of the year before a leap year, 29 February is not yet reachable.
        assert_eq!(ExpiryDate::max_for(d("2027-02-28")), d("2028-02-28"));
        assert!(ExpiryDate::parse("2028-02-29", d("2027-03-01")).is_ok());
        assert!(is_leap_day(leap));
    }

    #[test]
    fn a_secret_stops_at_midnight_utc_after_its_expiration_date() {
        let e = ExpiryDate::parse("2027-01-31", d("2026-11-29")).unwrap();
        assert_eq!(e.expires_at().to_rfc3339(), "2027-02-01T00:00:00+00:00");
    }

    #[test]
    fn days_left_are_whole_calendar_days() {
        let today = d("2026-11-29");
        assert_eq!(DaysLeft::between(today, today).to_string(), "expires today");
        assert_eq!(DaysLeft::between(today, d("2026-11-30")).to_string(), "1 day left");
        assert_eq!(DaysLeft::between(today, d("2026-12-01")).to_string(), "2 days left");
        assert_eq!(DaysLeft::between(today, d("2026-11-28")).to_string(), "expired");
        assert!(DaysLeft::between(today, d("2026-12-28")).expires_soon()); // 29 days
        assert!(!DaysLeft::between(today, d("2026-12-29")).expires_soon()); // 30 days
        assert!(!DaysLeft::between(today, d("2026-11-28")).expires_soon());
        assert!(DaysLeft::between(today, d("2026-11-28")).is_expired());
    }

    fn dates() -> impl Strategy<Value = NaiveDate> {
        (1970i32..2200, 1u32..=366).prop_filter_map("valid day", |(y, o)| NaiveDate::from_yo_opt(y, o))
    }

    proptest! {
        #[test]
        fn accepted_names_are_trimmed_nfc_and_short(input in "\\PC{0,120}") {
            match SecretName::parse(&input) {
                Ok(name) => {
                    let s = name.as_str();
                    prop_assert_eq!(s, s.trim());
                    prop_assert!((1..=SECRET_NAME_MAX).contains(&s.chars().count()));
                    prop_assert!(!s.chars().any(|c| c.is_control() || crate::domain::text::is_bidi_control(c)));
                    prop_assert_eq!(SecretName::parse(s), Ok(name.clone()));
                }
                Err(SecretNameError::TooLong(n)) => prop_assert!(n > SECRET_NAME_MAX),
                Err(_) => {}
            }
        }

        #[test]
        fn any_name_with_a_control_or_bidi_character_is_refused(
            a in "[a-z]{1,10}", b in "[a-z]{1,10}",
            c in prop_oneof![Just('\u{0}'), Just('\n'), Just('\u{1b}'), Just('\u{85}'), Just('\u{200E}'), Just('\u{202B}'), Just('\u{2069}')]
        ) {
            let name = format!("{a}{c}{b}");
            prop_assert!(SecretName::parse(&name).is_err());
        }

        #[test]
        fn accepted_dates_lie_between_today_and_a_year_ahead(today in dates(), offset in -400i64..800) {
            let date = today + chrono::Duration::days(offset);
            let text = date.format("%Y-%m-%d").to_string();
            match ExpiryDate::parse(&text, today) {
                Ok(e) => {
                    prop_assert!(e.date() >= today && e.date() <= ExpiryDate::max_for(today));
                    prop_assert!((0..=366).contains(&offset));
                    prop_assert_eq!(e.expires_at().date_naive(), e.date().succ_opt().unwrap());
                    prop_assert!(DaysLeft::between(today, e.date()).days() == offset);
                }
                Err(ExpiryDateError::InPast { .. }) => prop_assert!(offset < 0),
                Err(ExpiryDateError::TooFarAhead { max }) => {
                    prop_assert!(offset >= 365);
                    prop_assert!(date > max);
                }
                Err(e) => prop_assert!(false, "unexpected {e:?} for {text}"),
            }
        }

        #[test]
        fn max_date_is_same_day_next_year_or_28_february(today in dates()) {
            let max = ExpiryDate::max_for(today);
            prop_assert_eq!(max.year(), today.year() + 1);
            prop_assert_eq!(max.month(), today.month());
            if is_leap_day(today) { prop_assert_eq!(max.day(), 28); } else { prop_assert_eq!(max.day(), today.day()); }
        }

        #[test]
        fn non_iso_text_never_parses(s in "[0-9/. a-z-]{0,12}") {
            let today = d("2026-11-29");
            if let Ok(e) = ExpiryDate::parse(&s, today) {
                prop_assert_eq!(e.date().format("%Y-%m-%d").to_string(), s.trim());
            }
        }
    }
}
