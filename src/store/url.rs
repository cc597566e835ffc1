//! The database URL, kept out of logs and errors except with its password redacted.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// A `DATABASE_URL`: `postgres://user:password@host:port/db` or `sqlite:path` / `sqlite://path`.
///
/// `Display` and `Debug` show it with the password (and any `password=` query parameter)
/// replaced by `***`, so it can be named in errors and logs (DESIGN.md section 6).
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

/// Why a text is not a database URL this portal can use: the URL (password redacted) and why,
/// e.g. `DATABASE_URL postgres://portal:***@db:5432 names no database: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DATABASE_URL {url} {reason}")]
pub struct UnsupportedDatabaseUrl {
    url: String,
    reason: &'static str,
}

/// What a URL of another kind is told.
const NOT_SUPPORTED: &str = "is not a postgres:// or sqlite: URL";
/// What a URL without a database is told (a driver would pick one of its own: Postgres the
/// user's name, SQLite none).
const NO_DATABASE: &str =
    "names no database: add its name (postgres://user:password@host:5432/portal) or file (sqlite://data/portal.db)";

impl DatabaseUrl {
    /// Checks the scheme (`postgres://`, `postgresql://` or `sqlite:`) and that the URL names a
    /// database: a Postgres database name in the path (or a `dbname=` parameter), a SQLite file
    /// (or `:memory:`).
    ///
    /// # Errors
    /// [`UnsupportedDatabaseUrl`], naming the URL with its password redacted.
    pub fn parse(text: &str) -> Result<Self, UnsupportedDatabaseUrl> {
        let url = Self(SecretString::from(text.trim()));
        let refuse = |reason| Err(UnsupportedDatabaseUrl { url: url.redacted(), reason });
        if !(url.is_postgres() || url.is_sqlite()) {
            return refuse(NOT_SUPPORTED);
        }
        if !url.names_a_database() {
            return refuse(NO_DATABASE);
        }
        Ok(url)
    }

    /// Whether the URL names a database (see [`DatabaseUrl::parse`]).
    fn names_a_database(&self) -> bool {
        let s = self.expose();
        if let Some(rest) = s.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            return !path.split('?').next().unwrap_or_default().is_empty();
        }
        let Some((_, rest)) = s.split_once("://") else { return false };
        // The user information ends at the last '@' (a password may hold '/' or '?').
        let host_and_path = rest.rfind('@').map_or(rest, |at| &rest[at + 1..]);
        let (before_query, query) = host_and_path.split_once('?').unwrap_or((host_and_path, ""));
        let database = before_query.split_once('/').map_or("", |(_, db)| db);
        !database.trim_matches('/').is_empty()
            || query.split('&').any(|kv| kv.split_once('=').is_some_and(|(k, v)| k == "dbname" && !v.is_empty()))
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
    fn a_url_must_name_its_database() {
        for ok in [
            "postgres://u:p@db:5432/portal",
            "postgresql://db/portal?sslmode=require",
            "postgres://u:pa/ss@db/portal",
            "postgres://db?dbname=portal",
            "sqlite://data/portal.db",
            "sqlite:portal.db",
            "sqlite::memory:",
        ] {
            assert!(DatabaseUrl::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "postgres://u:hunter2@db:5432",
            "postgres://u:hunter2@db:5432/",
            "postgres://u:hunter2@db:5432/?sslmode=require",
            "postgres://u:hunter2/x@db",
            "postgresql://",
            "sqlite:",
            "sqlite://",
            "sqlite://?mode=rwc",
        ] {
            let err = DatabaseUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains("names no database") && !err.contains("hunter2"), "{bad}: {err}");
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
