//! HTTP header values compared as their RFCs say (issue 12, point 4). Every comparison of an
//! authentication scheme or a media type in the portal goes through these two functions.

/// Whether a `Content-Type` value names `expected` (`type/subtype`): compared case-insensitively
/// and with its parameters ignored (RFC 9110 8.3.1: "The type and subtype tokens are
/// case-insensitive"; `application/x-www-form-urlencoded` defines no parameter a reader must
/// honour, so `; charset=UTF-8` changes nothing). Surrounding whitespace is allowed.
pub fn media_type_is(content_type: Option<&str>, expected: &str) -> bool {
    content_type.is_some_and(|value| value.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case(expected))
}

/// The credentials of an `Authorization` value when its scheme is `scheme`: the scheme compared
/// case-insensitively (RFC 9110 11.1: "It uses a case-insensitive token to identify the
/// authentication scheme"), followed by one or more spaces, then the credentials with
/// surrounding whitespace trimmed (empty for the scheme alone). `None` for another scheme.
pub fn credentials_for_scheme<'a>(authorization: &'a str, scheme: &str) -> Option<&'a str> {
    let value = authorization.trim();
    let (name, rest) = value.split_once(' ').unwrap_or((value, ""));
    name.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// Whether form-urlencoded or URI text (`text`) holds U+0000, raw or percent-encoded (`%00`):
/// linear, and exact for this encoding (a typed `%00` arrives as `%2500`). Postgres refuses
/// NUL in text and SQLite's C strings end there, so the web layer refuses it at the edge
/// (issue 12: bad input gets a clear message and changes nothing).
pub fn encodes_nul(text: &[u8]) -> bool {
    text.contains(&0) || text.windows(3).any(|w| w == b"%00")
}

/// What a page says to a request holding a NUL character.
pub const NUL_REFUSED: &str = "The request holds a NUL character (%00), which no field accepts.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_is_found_raw_or_percent_encoded_and_a_typed_percent_zero_zero_is_not_one() {
        assert!(encodes_nul(b"a=%00"));
        assert!(encodes_nul(b"a=x\0y"));
        assert!(encodes_nul(b"/admin/users/%00/resend"));
        assert!(!encodes_nul(b"a=%2500&b=%0A&c=%10"));
        assert!(!encodes_nul(b""));
    }

    #[test]
    fn media_types_ignore_case_parameters_and_spaces() {
        let form = "application/x-www-form-urlencoded";
        for value in [
            "application/x-www-form-urlencoded",
            "Application/X-WWW-Form-URLEncoded",
            "application/x-www-form-urlencoded; charset=UTF-8",
            "application/x-www-form-urlencoded;charset=utf-8",
            " application/x-www-form-urlencoded ; foo=bar",
        ] {
            assert!(media_type_is(Some(value), form), "{value}");
        }
        for value in [
            "application/json",
            "application/x-www-form-urlencodedx",
            "text/plain; application/x-www-form-urlencoded",
            "",
        ] {
            assert!(!media_type_is(Some(value), form), "{value}");
        }
        assert!(!media_type_is(None, form));
    }

    #[test]
    fn schemes_ignore_case_and_take_one_or_more_spaces() {
        for value in ["Basic YWJj", "basic YWJj", "BASIC YWJj", "bAsIc   YWJj  ", "  Basic YWJj"] {
            assert_eq!(credentials_for_scheme(value, "Basic"), Some("YWJj"), "{value}");
        }
        for value in ["Bearer YWJj", "BasicYWJj", "Basics YWJj", ""] {
            assert_eq!(credentials_for_scheme(value, "Basic"), None, "{value}");
        }
        // The scheme alone: no credentials (the token endpoint answers invalid_client).
        assert_eq!(credentials_for_scheme("Basic", "Basic"), Some(""));
        assert_eq!(credentials_for_scheme("basic  ", "Basic"), Some(""));
    }
}
