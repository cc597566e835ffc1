//! Numbers and dates from URLs and forms, parsed into bounded types before any arithmetic
//! (issue 12, point 6). `overflow-checks = true` in the release profile stays as a tripwire
//! behind them.

use chrono::{Datelike as _, NaiveDate};

/// A page number of a paginated list: 1 to [`PageNumber::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PageNumber(u32);

/// Why a page number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("The page must be a whole number from 1 to 1,000,000.")]
pub struct InvalidPage;

impl PageNumber {
    /// The highest page number accepted.
    pub const MAX: u32 = 1_000_000;
    /// The first page.
    pub const FIRST: PageNumber = PageNumber(1);

    /// Parses `?page=`: empty is the first page; digits only (no sign, no exponent), 1 to
    /// 1,000,000.
    ///
    /// # Errors
    /// [`InvalidPage`].
    pub fn parse(text: &str) -> Result<Self, InvalidPage> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self::FIRST);
        }
        if text.len() > 7 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidPage);
        }
        match text.parse::<u32>() {
            Ok(n) if (1..=Self::MAX).contains(&n) => Ok(Self(n)),
            _ => Err(InvalidPage),
        }
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The rows to skip for pages of `page_size` rows (at most 10^6 x 2^32, so no overflow).
    pub fn offset(self, page_size: u32) -> u64 {
        u64::from(self.0 - 1) * u64::from(page_size)
    }

    /// How many pages `total` rows make at `page_size` a page: at least 1, at most
    /// [`PageNumber::MAX`].
    pub fn count(total: u64, page_size: u32) -> PageNumber {
        let size = u64::from(page_size.max(1));
        let pages = total.div_ceil(size).clamp(1, u64::from(Self::MAX));
        PageNumber(u32::try_from(pages).unwrap_or(Self::MAX))
    }
}

/// Why a date was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("A date must be YYYY-MM-DD, between 1970-01-01 and 9999-12-31.")]
pub struct InvalidDate;

/// Parses a `YYYY-MM-DD` date typed into a form or URL, between 1970-01-01 and 9999-12-31
/// (exactly four digits for the year: chrono alone would take `+10000` or `-1`).
///
/// # Errors
/// [`InvalidDate`].
pub fn parse_date(text: &str) -> Result<NaiveDate, InvalidDate> {
    let text = text.trim();
    let b = text.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return Err(InvalidDate);
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| InvalidDate)?;
    if (1970..=9999).contains(&date.year()) { Ok(date) } else { Err(InvalidDate) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn page_numbers_are_bounded() {
        assert_eq!(PageNumber::parse(""), Ok(PageNumber::FIRST));
        assert_eq!(PageNumber::parse("7").map(PageNumber::get), Ok(7));
        assert_eq!(PageNumber::parse("1000000").map(PageNumber::get), Ok(1_000_000));
        for bad in ["0", "-1", "+1", "1e3", "1000001", "99999999999999999999", "1.5", "abc", "0x10", "１"] {
            assert_eq!(PageNumber::parse(bad), Err(InvalidPage), "{bad}");
        }
        assert_eq!(PageNumber::parse("1000000").unwrap().offset(u32::MAX), 999_999 * u64::from(u32::MAX));
        assert_eq!(PageNumber::count(0, 50).get(), 1);
        assert_eq!(PageNumber::count(101, 50).get(), 3);
        assert_eq!(PageNumber::count(u64::MAX, 1).get(), PageNumber::MAX);
    }

    #[test]
    fn dates_are_four_digit_years_from_1970() {
        assert_eq!(parse_date("2026-12-02"), Ok(NaiveDate::from_ymd_opt(2026, 12, 2).unwrap()));
        assert_eq!(parse_date("9999-12-31"), Ok(NaiveDate::from_ymd_opt(9999, 12, 31).unwrap()));
        for bad in [
            "1969-12-31",
            "0000-01-01",
            "+10000-01-01",
            "-001-01-01",
            "2026-02-30",
            "2026-1-1",
            "26-12-02",
            "2026/12/02",
            "",
        ] {
            assert_eq!(parse_date(bad), Err(InvalidDate), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_text_parses_or_is_refused_without_panicking(s in "\\PC{0,30}") {
            let _ = PageNumber::parse(&s);
            let _ = parse_date(&s);
        }
    }
}
