//! All SQL lives here: one [`Store`] over a Postgres or SQLite pool, with methods sized to one use
//! case, each owning its transaction.
//!
//! The SQL text is shared by both backends wherever the portable subset allows (`$1` placeholders,
//! instants through sqlx's chrono support, UUIDs bound the same way everywhere). The sqlx `Any`
//! driver cannot carry chrono or uuid values, so the store keeps the native pools and runs the same
//! text on whichever it holds through [`on_pool!`]. Dialect-specific code stays in this module.

mod admin;
mod applications;
pub(crate) mod audit;
mod auth;
mod manage;
mod organisations;
pub(crate) mod outbox;
pub(crate) mod reminders;
mod secrets;
pub mod sessions;
pub mod shared_window;
mod throttle;
mod tokens;
pub mod url;
pub(crate) mod users;

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use admin::{ApplicationAttention, AuditFilter, ExpiringSecret, UserFilter, UserStatus, UserSummary};
pub use applications::{Application, NewApplication, Resource};
pub use audit::{Actor, AuditAction, AuditEvent, NewAuditEvent};
pub use auth::{Credentials, LinkRecord, NewLink};
pub use manage::{Deletion, ManagedApplication, NewSecret, SecretView};
pub use organisations::Organisation;
pub use outbox::{OutboxDepth, QueuedEmail};
pub use reminders::{OutboxRow, Recipients, ReminderSecret, SentReminder};
pub use secrets::{ClientSecret, SeedSecret};
pub use shared_window::{SharedWindow, flush_all};
pub use tokens::{NewSigningKey, ScheduledKeyRow, TokenClient, TokenLookup};
pub use url::DatabaseUrl;
pub use users::{NewUser, User, UserRole};

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
    backend: Backend,
}

/// A conflict with data already stored, worded for the person who caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// Same country and code (ignoring case).
    #[error("An organisation with this country and code already exists.")]
    OrganisationExists,
    /// Same organisation, kind and API (hence the same name).
    #[error("This organisation already has an application of this kind for this API.")]
    ApplicationExists,
    /// The client ID belongs to another application.
    #[error("This client ID already belongs to another application.")]
    ClientIdTaken,
    /// The email belongs to another user.
    #[error("A user with this email address already exists.")]
    EmailTaken,
    /// An invitation for an account that is already active.
    #[error(
        "This user has already accepted an invitation and set up an authenticator: use password reset or an MFA reset instead."
    )]
    AlreadyActive,
    /// An invitation for an account that has chosen a password but has no authenticator (after
    /// an MFA reset, or before enrolment finished).
    #[error(
        "This user has already chosen a password, so an invitation cannot be resent: reset their MFA to send a re-enrolment link instead."
    )]
    HasPassword,
    /// Five invitations to the address within the last hour (issue 12: emails limited per
    /// account).
    #[error("Five invitations were sent to this address in the last hour: wait before sending another.")]
    TooManyInvitations,
    /// An invitation for an email that belongs to a user of another organisation or role.
    #[error("This email address belongs to a user of another organisation or role.")]
    RoleDiffers,
    /// An audience that is empty, too long, or a resource id.
    #[error("An audience is 1 to 200 characters and never a resource id.")]
    AudienceInvalid,
    /// An audience another resource has.
    #[error("Another resource already has this audience.")]
    AudienceTaken,
    /// The application has as many unexpired secrets as allowed.
    #[error("This application already has the most unexpired secrets allowed. Delete one it no longer needs first.")]
    SecretLimitReached,
    /// The create form was submitted before; the secret it created is not shown again.
    #[error("This form was already submitted. The secret it created cannot be shown again.")]
    FormAlreadySubmitted,
    /// The user is not of the application's organisation.
    #[error("The credential manager role can only go to users of the application's organisation.")]
    GrantOutsideOrganisation,
}

/// Errors of store methods.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The change conflicts with stored data; nothing was changed.
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// The input breaks an application rule (kind, API, resources); nothing was changed.
    #[error(transparent)]
    Rule(#[from] crate::domain::application::ApplicationRuleError),
    /// The row does not exist (or the actor may not see it).
    #[error("not found")]
    NotFound,
    /// A stored value breaks a domain rule (it cannot, given the schema's checks).
    #[error("stored value of {0} is invalid")]
    Corrupt(&'static str),
    /// The database did not answer (pool timed out, connection refused or lost).
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Any other database error.
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if server_went_away(&e) { StoreError::Unavailable(e) } else { StoreError::Database(e) }
    }
}

/// Whether an error says the database is not there (answered 503, retried later) rather than
/// that a statement was wrong: the pool timed out or closed, the socket failed, the connection
/// task died, or Postgres ended the session: SQLSTATE class 08 (connection exception), 57P01
/// `admin_shutdown` (`pg_ctl stop -m fast`, `pg_terminate_backend`), 57P02 `crash_shutdown`,
/// 57P03 `cannot_connect_now` (starting up, recovering) — PostgreSQL manual, appendix A.
fn server_went_away(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|code| code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03"))
        }
        _ => false,
    }
}

/// The text identifying a violated unique constraint: the constraint's name on Postgres
/// (`application_client_id_key`), the message on SQLite (`UNIQUE constraint failed:
/// application.client_id`). `None` for any other error.
pub(crate) fn unique_violation(e: &sqlx::Error) -> Option<String> {
    let db = e.as_database_error()?;
    if !db.is_unique_violation() {
        return None;
    }
    Some(db.constraint().map_or_else(|| db.message().to_owned(), str::to_owned))
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
