//! Where to go after signing in.

use std::fmt;

/// A same-origin path to return to after sign-in: starts with a single `/`, not `//` or `/\`
/// (browsers treat both as another host), no scheme, no control characters or back slashes, at
/// most 512 characters (ASVS 5.0 V3.7 "open redirect"; DESIGN.md: "`next` is followed only when
/// it is a same-origin path").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextPath(String);

/// Why a text is not a [`NextPath`]; the caller goes home instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a same-origin path")]
pub struct NotSameOrigin;

impl NextPath {
    /// Checks `input`.
    ///
    /// # Errors
    /// [`NotSameOrigin`] for anything but a plain absolute path on this site.
    pub fn parse(input: &str) -> Result<Self, NotSameOrigin> {
        let ok = input.len() <= 512
            && input.starts_with('/')
            && !input.starts_with("//")
            && !input.contains('\\')
            && !input.chars().any(|c| c.is_control() || c.is_whitespace());
        if ok { Ok(Self(input.to_owned())) } else { Err(NotSameOrigin) }
    }

    /// Parses `input` when given, else `None`; invalid values become `None` too.
    pub fn parse_optional(input: Option<&str>) -> Option<Self> {
        input.filter(|s| !s.is_empty()).and_then(|s| Self::parse(s).ok())
    }

    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NextPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_same_origin_paths_are_followed() {
        for ok in ["/", "/manage-api-credentials", "/admin/audit?format=csv", "/a/b#c"] {
            assert!(NextPath::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "evil.example",
            "",
            "/\t/evil.example",
            "/ /x",
            "\\\\evil.example",
            "/a\\b",
        ] {
            assert!(NextPath::parse(bad).is_err(), "{bad:?}");
        }
        assert!(NextPath::parse(&format!("/{}", "a".repeat(512))).is_err());
    }

    proptest! {
        #[test]
        fn accepted_paths_never_leave_the_origin(s in "\\PC{0,40}") {
            if let Ok(p) = NextPath::parse(&s) {
                let base = url::Url::parse("https://portal.wmda.info/").unwrap();
                let joined = base.join(p.as_str()).unwrap();
                prop_assert_eq!(joined.origin(), base.origin());
            }
        }
    }
}
