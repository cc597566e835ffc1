//! Settings: command-line flags with environment variables (clap `env`), resolved into a
//! [`Config`] the rest of the portal receives as plain values. The commands themselves are in
//! `cli.rs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use crate::domain::{BaseUrl, BaseUrlError, MasterKey};
use crate::store::{DatabaseUrl, PoolSettings};

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Settings as given by flags or environment variables (README, "Configuration").
///
/// Secret-bearing values (`DATABASE_URL`, `PORTAL_MASTER_KEY`) are never echoed: `--help` hides
/// their environment values and there is no `Debug`.
#[derive(Args, Clone)]
#[command(next_help_heading = "Settings of every command (each flag also reads the environment variable shown)")]
pub struct Settings {
    /// Database URL: postgres://user:password@host:5432/db, or sqlite:path. Default: SQLite at
    /// ./data/portal.db.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Address and port to listen on.
    #[arg(long, env = "PORTAL_BIND", default_value = "127.0.0.1:8080", global = true)]
    pub bind: SocketAddr,

    /// The URL users and partner systems reach the portal at; the token issuer and the trusted
    /// origin. A plain http:// URL is allowed only for a loopback host.
    #[arg(long, env = "PORTAL_BASE_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub base_url: String,

    /// Master key (32 random bytes, base64) encrypting TOTP seeds and signing keys at rest.
    /// Required with DATABASE_URL; on the SQLite default it is generated into ./data/master.key.
    #[arg(long, env = "PORTAL_MASTER_KEY", global = true, hide_env_values = true)]
    pub master_key: Option<String>,

    /// Serve /metrics on this separate address only (default: on the main address).
    #[arg(long, env = "PORTAL_METRICS_BIND", global = true)]
    pub metrics_bind: Option<SocketAddr>,

    /// Log format.
    #[arg(long, env = "PORTAL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// SMTP server for outgoing mail: smtps://user:password@host:465 (TLS),
    /// smtp://user:password@host:587?tls=required (STARTTLS), or smtp://host:25 (plain, for a
    /// relay on the same host). Default: .eml files in ./data/mail.
    #[arg(long, env = "PORTAL_SMTP_URL", global = true, hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Sender of outgoing mail.
    #[arg(long, env = "PORTAL_MAIL_FROM", default_value = "WMDA secret portal <no-reply@localhost>", global = true)]
    pub mail_from: String,

    /// On an empty database, `serve` invites this address as the first WMDA admin.
    #[arg(long, env = "PORTAL_ADMIN_EMAIL", global = true)]
    pub admin_email: Option<String>,

    /// Support address shown to users without a credential-manager grant.
    #[arg(long, env = "PORTAL_SUPPORT_EMAIL", default_value = "support@wmda.info", global = true)]
    pub support_email: String,

    /// Reverse proxies whose X-Forwarded-For is believed: comma-separated IPs and CIDRs.
    #[arg(long, env = "PORTAL_TRUSTED_PROXIES", value_delimiter = ',', global = true)]
    pub trusted_proxies: Vec<String>,

    /// Issuer shown in authenticator apps.
    #[arg(long, env = "PORTAL_TOTP_ISSUER", default_value = "WMDA", global = true)]
    pub totp_issuer: String,

    /// Most unexpired secrets per application.
    #[arg(long, env = "PORTAL_SECRET_LIMIT", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=100), global = true)]
    pub secret_limit: u16,

    /// Lifetime of issued access tokens, in seconds.
    #[arg(long, env = "PORTAL_TOKEN_LIFETIME", default_value_t = 3600, value_parser = clap::value_parser!(u32).range(60..=86400), global = true)]
    pub token_lifetime: u32,

    /// Seconds between two reloads of the signing keys by each replica (tests shorten it).
    #[arg(long, env = "PORTAL_KEY_RELOAD_INTERVAL", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3600), global = true, hide = true)]
    pub key_reload_interval: u32,

    /// The JWKS response's Cache-Control max-age, in seconds (tests shorten it).
    #[arg(long, env = "PORTAL_JWKS_MAX_AGE", default_value_t = 60, value_parser = clap::value_parser!(u32).range(0..=3600), global = true, hide = true)]
    pub jwks_max_age: u32,

    /// Seconds between two reminder passes.
    #[arg(long, env = "PORTAL_REMINDER_INTERVAL", default_value_t = 900, value_parser = clap::value_parser!(u32).range(1..=86400), global = true)]
    pub reminder_interval: u32,

    /// Most database connections this process holds (default: three per core, 4 to 32; at most
    /// 8 on SQLite). With several replicas on one Postgres, replicas x this must stay under the
    /// server's max_connections.
    #[arg(long, env = "PORTAL_DB_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..=256), global = true)]
    pub db_max_connections: Option<u32>,

    /// Throttling of failed sign-ins and token requests: on, or off for benchmarks only.
    #[arg(long, env = "PORTAL_RATE_LIMITS", value_enum, default_value_t = Switch::On, global = true)]
    pub rate_limits: Switch,

    /// Webhook deliveries to private and special-purpose addresses, plain http:// and any port:
    /// off (the SSRF guard, DESIGN.md section 9), or on for tests and internal networks.
    #[arg(long, env = "PORTAL_WEBHOOK_ALLOW_PRIVATE", value_enum, default_value_t = Switch::Off, global = true)]
    pub webhook_allow_private: Switch,

    /// A file of leak-report public keys in the format of GitHub's secret-scanning key list; when
    /// set, POST /api/v1/leaks accepts only reports signed with one of them. Re-read when it
    /// changes.
    #[arg(long, env = "PORTAL_LEAK_REPORT_KEYS", global = true)]
    pub leak_report_keys: Option<PathBuf>,

    /// What a leak report of a live secret does: mark it exposed, or delete it as well (signed
    /// reports only).
    #[arg(long, env = "PORTAL_LEAK_ACTION", value_enum, default_value_t = LeakAction::Mark, global = true)]
    pub leak_action: LeakAction,

    /// How WMDA admins sign in: `any` second factor (TOTP, a recovery code or a passkey), or
    /// `passkey` only (then PORTAL_BASE_URL must have a host name, not an IP address).
    #[arg(long, env = "PORTAL_ADMIN_MFA", value_enum, default_value_t = AdminMfa::Any, global = true)]
    pub admin_mfa: AdminMfa,
}

/// How WMDA admins sign in (`PORTAL_ADMIN_MFA`, DESIGN.md section 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum AdminMfa {
    /// Any second factor, as every user.
    #[default]
    Any,
    /// A passkey only; TOTP then only enrols a first passkey, from a link in the mailbox.
    Passkey,
}

/// What a leak report of a live secret does (`PORTAL_LEAK_ACTION`, DESIGN.md section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LeakAction {
    /// Mark it exposed and email its people; it keeps working.
    #[default]
    Mark,
    /// Mark it and delete it too, when the report is signed.
    Delete,
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// Where outgoing mail goes.
#[derive(Clone)]
pub enum MailTransportConfig {
    /// An SMTP URL (secret: it may carry credentials).
    Smtp(secrecy::SecretString),
    /// `.eml` files in this folder.
    Files(PathBuf),
    /// Memory (tests).
    Memory(std::sync::Arc<std::sync::Mutex<Vec<crate::mail::SentEmail>>>),
}

impl std::fmt::Debug for MailTransportConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MailTransportConfig::Smtp(_) => f.write_str("Smtp([REDACTED])"),
            MailTransportConfig::Files(p) => write!(f, "Files({})", p.display()),
            MailTransportConfig::Memory(_) => f.write_str("Memory"),
        }
    }
}

/// The portal's resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the data is.
    pub database_url: DatabaseUrl,
    /// Pool size and timeouts.
    pub pool: PoolSettings,
    /// Listening address (port 0 picks a free one).
    pub bind: SocketAddr,
    /// The public URL.
    pub base_url: BaseUrl,
    /// The master key.
    pub master_key: MasterKey,
    /// Separate address for /metrics.
    pub metrics_bind: Option<SocketAddr>,
    /// Log format.
    pub log_format: LogFormat,
    /// The folder of the embedded default's files (`./data`).
    pub data_dir: PathBuf,
    /// Where mail goes.
    pub mail_transport: MailTransportConfig,
    /// Sender of outgoing mail.
    pub mail_from: lettre::message::Mailbox,
    /// First admin to invite on an empty database.
    pub admin_email: Option<crate::domain::EmailAddress>,
    /// Shown to users without a grant.
    pub support_email: String,
    /// Proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// TOTP issuer label.
    pub totp_issuer: String,
    /// Throttling on or off.
    pub rate_limits: bool,
    /// Webhooks may reach private addresses, http:// and any port (`PORTAL_WEBHOOK_ALLOW_PRIVATE`).
    pub webhook_allow_private: bool,
    /// Between the webhook deliverer's passes (2 s); `None` starts no deliverer (tests run its
    /// passes themselves, with their own receivers).
    pub webhook_poll: Option<std::time::Duration>,
    /// Most unexpired secrets per application (`PORTAL_SECRET_LIMIT`).
    pub secret_limit: i64,
    /// Access token lifetime, seconds (`PORTAL_TOKEN_LIFETIME`).
    pub token_lifetime_seconds: i64,
    /// Between reminder passes (`PORTAL_REMINDER_INTERVAL`).
    pub reminder_interval: std::time::Duration,
    /// When rotated signing keys sign and how long retired ones stay published (the hidden
    /// `PORTAL_KEY_RELOAD_INTERVAL`, 30 s, and `PORTAL_JWKS_MAX_AGE`, 60 s).
    pub key_schedule: crate::oauth::keys::KeySchedule,
    /// The leak-report keys file (`PORTAL_LEAK_REPORT_KEYS`).
    pub leak_report_keys: Option<PathBuf>,
    /// What a leak report of a live secret does (`PORTAL_LEAK_ACTION`).
    pub leak_action: LeakAction,
    /// How WMDA admins sign in (`PORTAL_ADMIN_MFA`).
    pub admin_mfa: AdminMfa,
}

/// Something the operator should hear about once logging is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupNotice {
    /// A master key was generated into this file.
    GeneratedMasterKey(PathBuf),
}

/// Why the settings cannot be used. Messages name the setting to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// DATABASE_URL without PORTAL_MASTER_KEY.
    #[error(
        "PORTAL_MASTER_KEY is required when DATABASE_URL is set: give the key this database was set up with (a new database: `openssl rand -base64 32`)"
    )]
    MasterKeyRequired,
    /// A master key that is not base64 of 32 bytes.
    #[error("PORTAL_MASTER_KEY: {0}")]
    BadMasterKey(crate::domain::cipher::CipherError),
    /// The key file in ./data is unreadable or malformed.
    #[error("master key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// DATABASE_URL of another kind.
    #[error(transparent)]
    DatabaseUrl(#[from] crate::store::url::UnsupportedDatabaseUrl),
    /// PORTAL_BASE_URL unusable.
    #[error("PORTAL_BASE_URL {0}")]
    BaseUrl(#[from] BaseUrlError),
    /// Another setting is unusable; the text names it.
    #[error("{0}")]
    Invalid(String),
    /// ./data cannot be created.
    #[error("cannot create the data folder {path}: {source}")]
    DataDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl Settings {
    /// Resolves the settings: with `DATABASE_URL`, the master key is required; without it, the
    /// portal runs on SQLite at `<data_dir>/portal.db` and takes the key from `PORTAL_MASTER_KEY`
    /// or `<data_dir>/master.key`, generating that file (mode 0600) when missing.
    ///
    /// # Errors
    /// [`ConfigError`], naming the setting to fix.
    pub fn resolve(&self, data_dir: &Path) -> Result<(Config, Vec<StartupNotice>), ConfigError> {
        let base_url = BaseUrl::parse(&self.base_url)?;
        let mut notices = Vec::new();
        let given_key = self.master_key.as_deref().filter(|k| !k.trim().is_empty());
        let (database_url, master_key) = match self.database_url.as_deref().filter(|u| !u.trim().is_empty()) {
            Some(url) => {
                let url = DatabaseUrl::parse(url)?;
                let key = given_key.ok_or(ConfigError::MasterKeyRequired)?;
                (url, MasterKey::parse(key).map_err(ConfigError::BadMasterKey)?)
            }
            None => {
                std::fs::create_dir_all(data_dir)
                    .map_err(|source| ConfigError::DataDir { path: data_dir.to_owned(), source })?;
                let key = match given_key {
                    Some(key) => MasterKey::parse(key).map_err(ConfigError::BadMasterKey)?,
                    None => {
                        let (key, generated) = load_or_generate_key(&data_dir.join("master.key"))?;
                        if let Some(path) = generated {
                            notices.push(StartupNotice::GeneratedMasterKey(path));
                        }
                        key
                    }
                };
                (DatabaseUrl::sqlite_file(&data_dir.join("portal.db")), key)
            }
        };
        let mail_transport = match self.smtp_url.as_deref().filter(|u| !u.trim().is_empty()) {
            Some(url) => MailTransportConfig::Smtp(secrecy::SecretString::from(url.trim())),
            None => MailTransportConfig::Files(data_dir.join("mail")),
        };
        let admin_email = match self.admin_email.as_deref().filter(|e| !e.trim().is_empty()) {
            Some(e) => Some(
                crate::domain::EmailAddress::parse(e)
                    .map_err(|err| ConfigError::Invalid(format!("PORTAL_ADMIN_EMAIL: {err}")))?,
            ),
            None => None,
        };
        let config = Config {
            database_url,
            pool: match self.db_max_connections {
                Some(max_connections) => PoolSettings { max_connections, ..PoolSettings::default() },
                None => PoolSettings::default(),
            },
            bind: self.bind,
            base_url,
            master_key,
            metrics_bind: self.metrics_bind,
            log_format: self.log_format,
            data_dir: data_dir.to_owned(),
            mail_transport,
            mail_from: crate::mail::parse_from(&self.mail_from).map_err(ConfigError::Invalid)?,
            admin_email,
            support_email: self.support_email.trim().to_owned(),
            trusted_proxies: parse_proxies(&self.trusted_proxies)?,
            totp_issuer: self.totp_issuer.clone(),
            rate_limits: self.rate_limits == Switch::On,
            webhook_allow_private: self.webhook_allow_private == Switch::On,
            webhook_poll: Some(crate::jobs::webhooks::POLL),
            secret_limit: i64::from(self.secret_limit),
            token_lifetime_seconds: i64::from(self.token_lifetime),
            reminder_interval: std::time::Duration::from_secs(u64::from(self.reminder_interval)),
            key_schedule: crate::oauth::keys::KeySchedule {
                reload: chrono::Duration::seconds(i64::from(self.key_reload_interval)),
                max_age: chrono::Duration::seconds(i64::from(self.jwks_max_age)),
            },
            leak_report_keys: self.leak_report_keys.clone(),
            leak_action: self.leak_action,
            admin_mfa: self.admin_mfa,
        };
        if config.admin_mfa == AdminMfa::Passkey && config.base_url.host_name().is_none() {
            return Err(ConfigError::Invalid(format!(
                "PORTAL_ADMIN_MFA=passkey needs PORTAL_BASE_URL at a host name (passkeys refuse an IP address), not {}; e.g. http://localhost:8080",
                config.base_url.as_str()
            )));
        }
        Ok((config, notices))
    }
}

/// Parses `PORTAL_TRUSTED_PROXIES`: IPs (`10.0.0.5`) and CIDRs (`10.0.0.0/8`).
fn parse_proxies(items: &[String]) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>().or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from)).map_err(|_| {
                ConfigError::Invalid(format!("PORTAL_TRUSTED_PROXIES: {s:?} is not an IP address or CIDR"))
            })
        })
        .collect()
}

/// Reads the key file, or creates it with a new key (owner read/write only).
fn load_or_generate_key(path: &Path) -> Result<(MasterKey, Option<PathBuf>), ConfigError> {
    let key_file_error = |reason: String| ConfigError::KeyFile { path: path.to_owned(), reason };
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((MasterKey::parse(&text).map_err(|e| key_file_error(e.to_string()))?, None)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = MasterKey::generate();
            write_private(path, key.to_base64().as_bytes()).map_err(|e| key_file_error(e.to_string()))?;
            Ok((key, Some(path.to_owned())))
        }
        Err(e) => Err(key_file_error(e.to_string())),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            database_url: None,
            bind: "127.0.0.1:0".parse().unwrap(),
            base_url: "http://127.0.0.1:8080".into(),
            master_key: None,
            metrics_bind: None,
            log_format: LogFormat::Text,
            smtp_url: None,
            mail_from: "WMDA secret portal <no-reply@localhost>".into(),
            admin_email: None,
            support_email: "support@wmda.info".into(),
            trusted_proxies: vec![],
            totp_issuer: "WMDA".into(),
            rate_limits: Switch::On,
            webhook_allow_private: Switch::Off,
            secret_limit: 3,
            token_lifetime: 3600,
            reminder_interval: 900,
            key_reload_interval: 30,
            jwks_max_age: 60,
            db_max_connections: None,
            leak_report_keys: None,
            leak_action: LeakAction::Mark,
            admin_mfa: AdminMfa::Any,
        }
    }

    #[test]
    fn trusted_proxies_are_ips_and_cidrs() {
        let parsed = parse_proxies(&["10.0.0.0/8".into(), " 192.0.2.7 ".into(), "::1".into()]).unwrap();
        assert_eq!(parsed.len(), 3);
        assert!(parse_proxies(&["not-an-ip".into()]).is_err());
    }

    #[test]
    fn embedded_default_generates_a_key_once() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (c1, n1) = settings().resolve(&data).unwrap();
        assert_eq!(n1, vec![StartupNotice::GeneratedMasterKey(data.join("master.key"))]);
        assert!(c1.database_url.is_sqlite());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(data.join("master.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (c2, n2) = settings().resolve(&data).unwrap();
        assert!(n2.is_empty());
        assert!(c2.master_key.matches_key_check(&c1.master_key.key_check_value()));
    }

    #[test]
    fn admin_passkey_mode_needs_a_host_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings();
        s.admin_mfa = AdminMfa::Passkey;
        let err = s.resolve(dir.path()).unwrap_err().to_string();
        assert!(err.contains("PORTAL_ADMIN_MFA=passkey needs PORTAL_BASE_URL at a host name"), "{err}");
        s.base_url = "http://localhost:8080".into();
        assert_eq!(s.resolve(dir.path()).unwrap().0.admin_mfa, AdminMfa::Passkey);
    }

    #[test]
    fn a_database_url_needs_a_master_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings();
        s.database_url = Some("postgres://portal:hunter2@127.0.0.1/portal".into());
        assert!(matches!(s.resolve(dir.path()), Err(ConfigError::MasterKeyRequired)));
        s.master_key = Some("short".into());
        assert!(matches!(s.resolve(dir.path()), Err(ConfigError::BadMasterKey(_))));
        s.master_key = Some(MasterKey::generate().to_base64().to_string());
        assert!(s.resolve(dir.path()).is_ok());
        // Nothing was written for a database the portal does not own.
        assert!(!dir.path().join("master.key").exists());
    }
}
