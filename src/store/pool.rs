//! The store's handle and its pools: [`Store`] over a Postgres or SQLite pool ([`Backend`]),
//! [`on_pool!`] to run one body on either, [`BeginWrite`], connecting, migrating, and the master
//! key's check value.

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use super::{DatabaseUrl, StoreError};
use crate::domain::MasterKey;

/// Runs the same code against whichever pool the store holds: `$pool` is a `&PgPool` in one arm
/// and a `&SqlitePool` in the other, so one SQL text and one body serve both backends.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Postgres($pool) => $body,
            $crate::store::Backend::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Begins a transaction meant to read and then write.
///
/// sqlx's `begin()` is a deferred transaction on SQLite, which fails with `SQLITE_BUSY` when two
/// such transactions upgrade to writing at once; `BEGIN IMMEDIATE` takes the write lock first
/// (STACK.md, SQLite traps). On Postgres the plain `BEGIN` is right; row locks do the rest.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(&self) -> impl Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send;
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

/// The database the store talks to.
#[derive(Clone, Debug)]
pub enum Backend {
    /// Production.
    Postgres(PgPool),
    /// The embedded default.
    Sqlite(SqlitePool),
}

/// Handle to the portal's database; cheap to clone (it holds a pool).
#[derive(Clone, Debug)]
pub struct Store {
    pub(super) backend: Backend,
}

/// Why the master key cannot be used with this database.
#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    /// The database was set up with another master key.
    #[error(
        "the master key does not match this database's key-check value: this database was set up with another PORTAL_MASTER_KEY"
    )]
    Mismatch,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

const KEY_CHECK: &str = "master_key_check";

static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// Opens and closes one connection within the acquire timeout.
async fn first_connection<C: sqlx::Connection>(options: &C::Options, settings: PoolSettings) -> Result<(), StoreError> {
    use sqlx::ConnectOptions as _;
    match tokio::time::timeout(settings.acquire_timeout, options.connect()).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(StoreError::Unavailable(e)),
        Err(_) => Err(StoreError::Unavailable(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {} s", settings.acquire_timeout.as_secs()),
        )))),
    }
}

/// Pool settings.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Most connections held.
    pub max_connections: u32,
    /// How long a request waits for a connection (and the first connection is tried) before the
    /// database counts as unavailable.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        // Three connections per core: measured on 2 cores, 6 gave the token endpoint 11 % more
        // throughput on Postgres than 16 (fewer backends competing for the same cores).
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let max_connections = u32::try_from(cores * 3).unwrap_or(32).clamp(4, 32);
        Self { max_connections, acquire_timeout: Duration::from_secs(3) }
    }
}

/// A pooled connection idle at least this long is pinged before use.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(30);

/// The pool options both backends share. sqlx pings every connection when it is released (in
/// the background), and by default again on every acquire, which puts a second round trip on
/// every request's path (BENCHMARKS.md: the token endpoint on Postgres). Here only a connection
/// that sat idle for [`PING_IF_IDLE_FOR`] is pinged first (the server or a firewall may have
/// dropped it); a connection that broke since its release fails its query, is discarded, and
/// that one request answers 503 ([`StoreError::Unavailable`]).
fn pool_options<DB: sqlx::Database>(settings: PoolSettings) -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IF_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

impl Store {
    /// Connects to the database: Postgres for `postgres://` and `postgresql://` URLs, SQLite for
    /// `sqlite:` URLs (created when missing, WAL, busy timeout 5 s, foreign keys on). The first
    /// connection is made here, so an unreachable database fails within `acquire_timeout`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be reached, [`StoreError::Database`]
    /// for a URL sqlx cannot use.
    pub async fn connect(url: &DatabaseUrl, settings: PoolSettings) -> Result<Self, StoreError> {
        // One direct connection first: it reports the real cause (refused, authentication,
        // unknown database) where a pool would only report its own timeout.
        let backend = if url.is_postgres() {
            let options: PgConnectOptions = url.expose().parse()?;
            let options = options.application_name("secret-portal");
            first_connection::<sqlx::PgConnection>(&options, settings).await?;
            Backend::Postgres(pool_options::<sqlx::Postgres>(settings).connect_lazy_with(options))
        } else {
            let options: SqliteConnectOptions = url.expose().parse()?;
            let options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            first_connection::<sqlx::SqliteConnection>(&options, settings).await?;
            Backend::Sqlite(
                pool_options::<sqlx::Sqlite>(settings)
                    .max_connections(settings.max_connections.min(8))
                    .connect_lazy_with(options),
            )
        };
        Ok(Self { backend })
    }

    /// Wraps an existing pool (tests, benchmarks).
    pub fn from_backend(backend: Backend) -> Self {
        Self { backend }
    }

    /// The pool, for libraries that keep their own tables in the same database (sessions).
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// `"postgres"` or `"sqlite"`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Postgres(_) => "postgres",
            Backend::Sqlite(_) => "sqlite",
        }
    }

    /// Applies the migrations not yet applied (`migrations/postgres` or `migrations/sqlite`).
    /// Safe to run from several processes at once on Postgres (sqlx takes an advisory lock).
    ///
    /// # Errors
    /// [`StoreError::Database`] when a migration fails or the database holds a migration this
    /// binary does not know.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let result = match &self.backend {
            Backend::Postgres(pool) => PG_MIGRATOR.run(pool).await,
            Backend::Sqlite(pool) => SQLITE_MIGRATOR.run(pool).await,
        };
        result.map_err(|e| StoreError::Database(e.into()))
    }

    /// Whether the database answers and holds the portal's schema (it reads the key-check row).
    ///
    /// # Errors
    /// [`StoreError`] when it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query("select count(*) from setting where key = $1")
            .bind(KEY_CHECK)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Checks `key` against the database's key-check value, writing one (insert-if-absent, so
    /// replicas starting together agree) when the database has none yet.
    ///
    /// # Errors
    /// [`KeyCheckError::Mismatch`] when the database was set up with another key.
    pub async fn verify_master_key(&self, key: &MasterKey) -> Result<(), KeyCheckError> {
        let fresh = key.key_check_value();
        let stored: Vec<u8> = on_pool!(self, |pool| {
            sqlx::query("insert into setting (key, value) values ($1, $2) on conflict (key) do nothing")
                .bind(KEY_CHECK)
                .bind(&fresh)
                .execute(pool)
                .await
                .map_err(StoreError::from)?;
            sqlx::query_scalar("select value from setting where key = $1").bind(KEY_CHECK).fetch_one(pool).await
        })
        .map_err(StoreError::from)?;
        if key.matches_key_check(&stored) { Ok(()) } else { Err(KeyCheckError::Mismatch) }
    }

    /// Whether the database holds no organisation and no user (a fresh database).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn is_empty(&self) -> Result<bool, StoreError> {
        let n: i64 = on_pool!(self, |pool| sqlx::query_scalar(
            "select (select count(*) from organisation) + (select count(*) from portal_user)"
        )
        .fetch_one(pool)
        .await)?;
        Ok(n == 0)
    }

    /// Number of connections open and idle, for the pool gauge.
    pub fn pool_state(&self) -> (u32, usize) {
        on_pool!(self, |pool| (pool.size(), pool.num_idle()))
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await);
    }
}
