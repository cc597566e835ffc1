//! Test support: a fresh database per test (SQLite by default, Postgres when
//! `TEST_DATABASE_URL` is set), a real SMTP server, and the real application on port 0.

pub mod flows;
pub mod smtp;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use secret_portal::config::{Config, LogFormat, MailTransportConfig};
use secret_portal::domain::{BaseUrl, Clock, ManualClock, MasterKey};
use secret_portal::startup::Application;
use secret_portal::store::{DatabaseUrl, PoolSettings, Store};
use sqlx::Connection as _;

/// Names the Postgres server tests create their databases on, e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`. Unset: every test uses its own SQLite file.
pub const TEST_DATABASE_URL: &str = "TEST_DATABASE_URL";

/// The Postgres server of a Postgres-only test (those are `#[ignore = "needs TEST_DATABASE_URL
/// (Postgres)"]`, run by `.ci/run` with `-- --include-ignored`). Such a test run without it
/// fails here rather than passing having asserted nothing (issue 14, point 9).
pub fn require_postgres() -> String {
    std::env::var(TEST_DATABASE_URL).unwrap_or_else(|_| {
        panic!("this test needs TEST_DATABASE_URL (Postgres): TEST_DATABASE_URL=postgres://... cargo test -- --include-ignored")
    })
}

/// A database of its own for one test; dropped (Postgres) or deleted (SQLite) afterwards.
pub struct TestDb {
    pub url: DatabaseUrl,
    admin_url: Option<String>,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new() -> Self {
        match std::env::var(TEST_DATABASE_URL).ok().filter(|u| !u.is_empty()) {
            Some(admin_url) => {
                let name = format!("sp_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin_url).await.expect("connect to TEST_DATABASE_URL");
                sqlx::query(&format!("create database {name}")).execute(&mut conn).await.expect("create database");
                let _ = conn.close().await;
                let url = replace_database(&admin_url, &name);
                TestDb { url: DatabaseUrl::parse(&url).unwrap(), admin_url: Some(admin_url), name, _dir: None }
            }
            None => {
                let dir = tempfile::tempdir().unwrap();
                let url = DatabaseUrl::sqlite_file(&dir.path().join("portal.db"));
                TestDb { url, admin_url: None, name: String::new(), _dir: Some(dir) }
            }
        }
    }

    /// The same database for a second portal (a replica): nothing is dropped when it goes.
    pub fn same(&self) -> TestDb {
        TestDb { url: self.url.clone(), admin_url: None, name: String::new(), _dir: None }
    }

    /// The SQLite database file, when on SQLite.
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        self._dir.as_ref().map(|d| d.path().join("portal.db"))
    }

    /// Every byte the database holds: the SQLite files (with the write-ahead log), or a pg_dump.
    pub fn dump(&self) -> Vec<u8> {
        match self.sqlite_path() {
            Some(path) => {
                let mut bytes = std::fs::read(&path).unwrap_or_default();
                for suffix in ["-wal", "-shm"] {
                    bytes.extend(std::fs::read(format!("{}{suffix}", path.display())).unwrap_or_default());
                }
                bytes
            }
            None => {
                let out = std::process::Command::new("pg_dump").arg(self.url.expose()).output().expect("pg_dump");
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                out.stdout
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.admin_url.is_some()
    }

    /// Drops the Postgres database while clients are connected (`WITH (FORCE)`).
    pub async fn drop_now(&self) {
        if let Some(admin) = &self.admin_url {
            let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
            sqlx::query(&format!("drop database if exists {} with (force)", self.name))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

impl TestDb {
    /// A value to leave behind when the real one moves on (nothing to drop).
    pub fn placeholder() -> Self {
        TestDb { url: DatabaseUrl::parse("sqlite::memory:").unwrap(), admin_url: None, name: String::new(), _dir: None }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(admin) = self.admin_url.clone() {
            let name = self.name.clone();
            // Drop runs outside any runtime guarantee: use a thread with its own runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                        let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
                            .execute(&mut conn)
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

/// Replaces the database name (the path) of a Postgres URL.
pub fn replace_database(url: &str, db: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("TEST_DATABASE_URL is a URL");
    parsed.set_path(&format!("/{db}"));
    parsed.to_string()
}

/// 2026-11-29 12:00 UTC: the tests' "now" unless they move the clock.
pub fn test_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap()
}

/// A connected, migrated store on a fresh database.
pub async fn test_store() -> (Store, TestDb) {
    let db = TestDb::new().await;
    let store = Store::connect(&db.url, PoolSettings::default()).await.expect("connect");
    store.migrate().await.expect("migrate");
    (store, db)
}

pub fn test_config(db: &TestDb) -> Config {
    Config {
        database_url: db.url.clone(),
        pool: PoolSettings { max_connections: 8, acquire_timeout: std::time::Duration::from_secs(2) },
        bind: "127.0.0.1:0".parse().unwrap(),
        base_url: BaseUrl::parse("http://127.0.0.1:8080").unwrap(),
        master_key: MasterKey::generate(),
        metrics_bind: None,
        log_format: LogFormat::Text,
        data_dir: std::env::temp_dir(),
        mail_transport: MailTransportConfig::Memory(Default::default()),
        mail_from: "WMDA secret portal <no-reply@wmda.example>".parse().unwrap(),
        admin_email: None,
        support_email: "support@wmda.example".into(),
        trusted_proxies: vec![],
        totp_issuer: "WMDA".into(),
        rate_limits: true,
        webhook_allow_private: false,
        // No background deliverer: tests run its passes themselves, with their own receivers (a
        // background one's first pass could come at any await point and take their deliveries).
        webhook_poll: None,
        secret_limit: 3,
        token_lifetime_seconds: 3600,
        // Tests run passes themselves, with the clock where they want it.
        reminder_interval: std::time::Duration::from_secs(86400),
        key_schedule: secret_portal::oauth::keys::KeySchedule {
            reload: chrono::Duration::seconds(30),
            max_age: chrono::Duration::seconds(60),
        },
        leak_report_keys: None,
        leak_action: secret_portal::config::LeakAction::Mark,
        admin_mfa: secret_portal::config::AdminMfa::Any,
    }
}

/// The application, serving on a free port until the test ends.
pub struct TestApp {
    /// Tags every log line this instance writes (the `test_app` span around its tasks).
    pub id: u64,
    pub address: String,
    pub store: Store,
    pub clock: ManualClock,
    pub client: reqwest::Client,
    pub db: TestDb,
    pub smtp: smtp::SmtpSink,
    pub state: secret_portal::web::AppState,
    /// The configuration it was built with (the master key, the base URL).
    pub config: Arc<Config>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        let db = TestDb::new().await;
        Self::spawn_with(db, |_| {}).await
    }

    pub async fn spawn_with(db: TestDb, adjust: impl FnOnce(&mut Config)) -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self::spawn_tagged(NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed), db, adjust).await
    }

    /// As [`TestApp::spawn_with`], its log lines tagged with `id` (a restart keeps its id).
    async fn spawn_tagged(id: u64, db: TestDb, adjust: impl FnOnce(&mut Config)) -> Self {
        use tracing::Instrument as _;
        capture_logs();
        let smtp = smtp::SmtpSink::start();
        let mut config = test_config(&db);
        config.mail_transport = MailTransportConfig::Smtp(smtp.url().into());
        adjust(&mut config);
        let clock = ManualClock::new(test_now());
        let span = tracing::info_span!("test_app", test_app = id);
        let app = Application::build(config, Arc::new(clock.clone()) as Arc<dyn Clock>)
            .instrument(span.clone())
            .await
            .expect("build");
        let address = format!("http://{}", app.local_addr().unwrap());
        let store = app.store().clone();
        let state = app.state().clone();
        let config = app.config().clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(
            app.run_until(async move {
                let _ = rx.await;
            })
            .instrument(span),
        );
        let client = new_client();
        TestApp { id, address, store, clock, client, db, smtp, state, config, shutdown: Some(tx), server: Some(server) }
    }

    /// Stops this instance and starts another on the same database and SMTP sink: a restart.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await.unwrap();
        let smtp = self.smtp.clone();
        let clock = self.clock.clone();
        let db = std::mem::replace(&mut self.db, TestDb::placeholder());
        let key = self.config.master_key.clone();
        let mut app = TestApp::spawn_tagged(self.id, db, |c| {
            c.mail_transport = MailTransportConfig::Smtp(smtp.url().into());
            c.master_key = key;
        })
        .await;
        app.smtp = smtp;
        app.clock.set(clock.now());
        // The new instance has its own clock: keep moving the same one.
        app
    }

    /// A second portal on the same database (a replica): same master key and settings that
    /// matter here, its own process state, its clock set to this one's now.
    pub async fn replica(&self) -> TestApp {
        let db = self.db.same();
        let key = self.config.master_key.clone();
        let proxies = self.config.trusted_proxies.clone();
        let app = TestApp::spawn_with(db, |c| {
            c.master_key = key;
            c.trusted_proxies = proxies;
        })
        .await;
        app.clock.set(self.clock.now());
        app
    }

    /// Writes this portal's pending throttle failures now, as its job does every second.
    pub async fn flush_throttles(&self) {
        secret_portal::store::flush_all(&self.state.services.shared_windows(), &self.store, self.clock.now()).await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    /// The log lines this instance (and its restarts) wrote, as JSON lines: those whose span
    /// list holds this instance's `test_app` span. Other tests' lines are left out.
    pub fn logs(&self) -> String {
        let mut own = String::new();
        for line in all_logs().lines() {
            let parsed: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            let tagged = parsed["spans"]
                .as_array()
                .is_some_and(|spans| spans.iter().any(|s| s["test_app"].as_u64() == Some(self.id)));
            if tagged {
                own.push_str(line);
                own.push('\n');
            }
        }
        own
    }

    /// The value of one Prometheus series on `/metrics` (its name with labels exactly as
    /// rendered, e.g. `tokens_issued_total` or `emails_sent_total{email="reminder"}`); 0 when it
    /// is absent. Counters are process-wide, shared with the tests running beside this one:
    /// compare a value before and after, never an absolute count.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.get("/metrics").await.text().await.expect("metrics");
        metric_in(&text, series)
    }

    /// Signals shutdown and waits for the server to stop.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(handle) => handle.await.expect("server task"),
            None => Ok(()),
        }
    }
}

/// Runs one SQL statement with binds on whichever backend the store holds, for tests that probe
/// the schema's own constraints. Yields `Result<u64 rows, sqlx::Error>`.
#[macro_export]
macro_rules! raw_sql {
    ($store:expr, $sql:expr $(, $bind:expr)* $(,)?) => {
        match $store.backend() {
            secret_portal::store::Backend::Postgres(pool) => {
                sqlx::query($sql)$(.bind($bind))*.execute(pool).await.map(|r| r.rows_affected())
            }
            secret_portal::store::Backend::Sqlite(pool) => {
                sqlx::query($sql)$(.bind($bind))*.execute(pool).await.map(|r| r.rows_affected())
            }
        }
    };
}

/// A client that keeps cookies and does not follow redirects.
pub fn new_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build().unwrap()
}

/// Every log line of this test process, kept in memory (tests search it for secrets).
static LOGS: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();

#[derive(Clone)]
struct LogWriter(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the process's tracing subscriber: the portal's own JSON lines (as with
/// `PORTAL_LOG_FORMAT=json`), everything at debug level (trace for the portal), into memory, so
/// no test's output is lost and tests can search it.
pub fn capture_logs() {
    let buffer = LOGS.get_or_init(|| Arc::new(std::sync::Mutex::new(Vec::new()))).clone();
    let writer = LogWriter(buffer);
    let subscriber = secret_portal::telemetry::log_subscriber(
        LogFormat::Json,
        tracing_subscriber::EnvFilter::new("debug,secret_portal=trace"),
        move || writer.clone(),
        false,
    );
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// One series' value in a Prometheus text rendering (see [`TestApp::metric`]); 0 when absent.
pub fn metric_in(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().expect("a metric value"))
}

/// Everything every test of this process logged so far; tests read their own with
/// [`TestApp::logs`].
fn all_logs() -> String {
    LOGS.get().map(|b| String::from_utf8_lossy(&b.lock().unwrap()).into_owned()).unwrap_or_default()
}
