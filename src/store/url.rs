//! The database URL, kept out of logs and errors except with its password redacted.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// A `DATABASE_URL`: `postgres://user:password@host:port/db` or `sqlite:path` / `sqlite://path`.
///
/// `Display` and `Debug` show it with the password (and any `password=` query parameter)
/// replaced by `***`, so it can be named in errors and logs (DESIGN.md section 6).
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

/// Why a text is not a database URL this portal can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DATABASE_URL {0} is not a postgres:// or sqlite: URL")]
pub struct UnsupportedDatabaseUrl(String);

impl DatabaseUrl {
    /// Checks the scheme: `postgres://`, `postgresql://` or `sqlite:`.
    ///
    /// # Errors
    /// [`UnsupportedDatabaseUrl`], naming the URL with its password redacted.
    pub fn parse(text: &str) -> Result<Self, UnsupportedDatabaseUrl> {
        let url = Self(SecretString::from(text.trim()));
        if url.is_postgres() || url.is_sqlite() { Ok(url) } else { Err(UnsupportedDatabaseUrl(url.redacted())) }
    }

    /// A SQLite database file at `path`.
    pub fn sqlite_file(path: &std::path::Path) -> Self {
        Self(SecretString::from(format!("sqlite://{}", path.display())))
    }

    /// Whether this is a Postgres URL.
    pub fn is_postgres(&self) -> bool {
        let s = self.expose();
        s.starts_with("postgres://") || s.starts_with("postgresql://")
    }

    /// Whether this is a SQLite URL.
    pub fn is_sqlite(&self) -> bool {
        self.expose().starts_with("sqlite:")
    }

    /// The URL with its password, for the driver only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The URL with any password replaced by `***`. Works on malformed URLs too: everything
    /// between `://` and the last `@` of the authority is treated as user information.
    pub fn redacted(&self) -> String {
        redact(self.expose())
    }
}

fn redact(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return s.to_owned();
    };
    // The user information ends at the last '@': a password that was not percent-encoded may
    // itself contain '@', '/' or '?'.
    let rest = match rest.rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _password)) => format!("{user}:***{}", &rest[at..]),
            None => rest.to_owned(),
        },
        None => rest.to_owned(),
    };
    format!("{scheme}://{}", redact_query_password(&rest))
}

fn redact_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_owned(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn passwords_are_redacted() {
        let cases = [
            ("postgres://portal:hunter2@db:5432/portal", "postgres://portal:***@db:5432/portal"),
            ("postgres://portal@db/portal", "postgres://portal@db/portal"),
            ("postgres://db/portal?user=p&password=hunter2", "postgres://db/portal?user=p&password=***"),
            ("postgresql://u:p/w?d@db/portal", "postgresql://u:***@db/portal"),
            ("postgres://u:pa@ss@db/x", "postgres://u:***@db/x"),
            ("sqlite://data/portal.db", "sqlite://data/portal.db"),
            ("sqlite:portal.db", "sqlite:portal.db"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact(input), expected, "{input}");
        }
    }

    #[test]
    fn only_postgres_and_sqlite_are_accepted() {
        assert!(DatabaseUrl::parse("postgres://x/y").is_ok());
        assert!(DatabaseUrl::parse("sqlite::memory:").is_ok());
        let err = DatabaseUrl::parse("mysql://root:hunter2@db/x").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    proptest! {
        #[test]
        fn a_password_never_survives_redaction(
            user in "[a-z]{1,8}",
            password in "[A-Za-z0-9!#$%&()*+,;=:/?@\\[\\]~.-]{6,20}",
            host in "[a-z]{1,8}",
        ) {
            let password = format!("!{password}");
            let url = DatabaseUrl::parse(&format!("postgres://{user}:{password}@{host}:5432/portal")).unwrap();
            prop_assert!(!url.to_string().contains(&password), "{}", url);
            let debug = format!("{url:?}");
            prop_assert!(!debug.contains(&password));
        }
    }
}
