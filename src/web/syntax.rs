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

#[cfg(test)]
mod tests {
    use super::*;

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
