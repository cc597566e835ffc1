//! The session store: tower-sessions-sqlx-store on the portal's own database, with the
//! library's own tables (`tower_sessions.session` on Postgres, `tower_sessions` on SQLite), so
//! nobody is signed out by an upgrade. Expired records are deleted by `jobs::sessions`.

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use super::{Backend, Store};

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
