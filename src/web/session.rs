//! Sessions: tower-sessions with its sqlx store on the portal's own database, and what the portal
//! keeps in a session.
//!
//! The cookie is `__Host-portal-session`: `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`, no
//! `Domain` (DESIGN.md section 4). Browsers accept `Secure` cookies on `http://127.0.0.1` and
//! `http://localhost`, so the embedded default needs no switch. The session id changes after the
//! password step and again after the TOTP step (ASVS 5.0 7.2.4).

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tower_sessions::cookie::SameSite;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};
use uuid::Uuid;

use crate::store::{Backend, Store};

/// The session cookie's name; `__Host-` makes browsers insist on `Secure`, `Path=/` and no
/// `Domain`.
pub const SESSION_COOKIE: &str = "__Host-portal-session";
/// A signed-in session ends after this long without a request (ASVS 5.0 7.3.1).
pub const IDLE_TIMEOUT: Duration = Duration::minutes(30);
/// A signed-in session ends this long after sign-in, whatever happens (ASVS 5.0 7.3.2).
pub const ABSOLUTE_TIMEOUT: Duration = Duration::hours(12);
/// The TOTP step, or enrolment, must follow the password step within this time.
pub const STEP_TIMEOUT: Duration = Duration::minutes(10);
/// `last_seen` is written at most this often (tower-sessions only extends a session on writes).
pub const LAST_SEEN_GRANULARITY: Duration = Duration::minutes(1);
/// The session key holding [`SessionAuth`].
pub const AUTH_KEY: &str = "auth";

/// Where a session stands in signing in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum SessionAuth {
    /// The password was right; the TOTP step is next. Reaches only `/login/mfa`.
    PasswordVerified {
        /// The user.
        user_id: Uuid,
        /// When the password was verified.
        at: DateTime<Utc>,
        /// Where to go after the TOTP step (checked again then).
        next: Option<String>,
    },
    /// An invitation or re-enrolment link was just used. Reaches only `/mfa/setup`.
    Enrolling {
        /// The user.
        user_id: Uuid,
        /// When the link was used.
        at: DateTime<Utc>,
    },
    /// Password and TOTP done.
    SignedIn {
        /// The user.
        user_id: Uuid,
        /// When the TOTP step (or enrolment) completed.
        authenticated_at: DateTime<Utc>,
        /// The latest request, to within [`LAST_SEEN_GRANULARITY`].
        last_seen: DateTime<Utc>,
    },
}

/// The session store over whichever pool the portal uses: tower-sessions-sqlx-store has one type
/// per backend, and the session layer needs one type.
#[derive(Debug, Clone)]
pub enum PortalSessionStore {
    /// Table `tower_sessions.session`.
    Postgres(PostgresStore),
    /// Table `tower_sessions`.
    Sqlite(SqliteStore),
}

impl PortalSessionStore {
    /// The session store on the store's database.
    pub fn new(store: &Store) -> Self {
        match store.backend() {
            Backend::Postgres(pool) => Self::Postgres(PostgresStore::new(pool.clone())),
            Backend::Sqlite(pool) => Self::Sqlite(SqliteStore::new(pool.clone())),
        }
    }

    /// Creates the session table when missing (the library's own schema).
    ///
    /// # Errors
    /// When the database refuses.
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Postgres(s) => s.migrate().await,
            Self::Sqlite(s) => s.migrate().await,
        }
    }

    /// The session layer with the portal's cookie rules.
    pub fn layer(self) -> SessionManagerLayer<Self> {
        SessionManagerLayer::new(self)
            .with_name(SESSION_COOKIE)
            .with_secure(true)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_path("/")
            // The record expires after the idle timeout unless written; the portal writes
            // `last_seen` once a minute while in use.
            .with_expiry(Expiry::OnInactivity(tower_sessions::cookie::time::Duration::minutes(
                IDLE_TIMEOUT.num_minutes(),
            )))
    }
}

#[async_trait]
impl SessionStore for PortalSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Self::Postgres(s) => s.create(record).await,
            Self::Sqlite(s) => s.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            Self::Postgres(s) => s.save(record).await,
            Self::Sqlite(s) => s.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Self::Postgres(s) => s.load(id).await,
            Self::Sqlite(s) => s.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Self::Postgres(s) => s.delete(id).await,
            Self::Sqlite(s) => s.delete(id).await,
        }
    }
}

#[async_trait]
impl ExpiredDeletion for PortalSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match self {
            Self::Postgres(s) => s.delete_expired().await,
            Self::Sqlite(s) => s.delete_expired().await,
        }
    }
}
