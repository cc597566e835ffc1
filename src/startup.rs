//! Building and serving the application: [`Application::build`] connects, migrates, checks the
//! master key and binds; [`Application::run_until`] serves until a shutdown signal.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::auth::{PasswordHasher, RecoveryCodeKey, Throttle, TotpVault};
use crate::config::{Config, MailTransportConfig};
use crate::domain::Clock;
use crate::mail::Transport;
use crate::store::sessions::PortalSessionStore;
use crate::store::{KeyCheckError, Store};
use crate::web::{self, AppState, Services, WebSettings};

/// A built portal: database ready, listeners bound, not yet serving.
pub struct Application {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: AppState,
    config: Arc<Config>,
    sessions: PortalSessionStore,
}

/// The mail transport the configuration asks for.
///
/// # Errors
/// When `PORTAL_SMTP_URL` is unusable.
pub fn mail_transport(config: &Config) -> anyhow::Result<Transport> {
    Ok(match &config.mail_transport {
        MailTransportConfig::Smtp(url) => Transport::smtp(url).map_err(anyhow::Error::msg)?,
        MailTransportConfig::Files(dir) => Transport::Files(dir.clone()),
        MailTransportConfig::Memory(sent) => Transport::Memory(sent.clone()),
    })
}

/// The outbox sender the configuration asks for.
///
/// # Errors
/// When the mail transport cannot be built.
pub fn mail_sender(
    config: &Config,
    store: &Store,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<crate::jobs::outbox::Sender> {
    Ok(crate::jobs::outbox::Sender::new(store.clone(), mail_transport(config)?, config.mail_from.clone(), clock))
}

/// The services the handlers share, built once: loads (or creates) the signing key.
///
/// # Errors
/// When the mail transport cannot be built or the signing keys cannot be read.
pub async fn services(config: &Config, store: &Store, clock: Arc<dyn Clock>) -> anyhow::Result<Services> {
    let keys = crate::oauth::SigningKeys::load_or_create(
        store.clone(),
        config.master_key.clone(),
        config.key_schedule,
        clock.now(),
    )
    .await
    .context("cannot load the token signing key")?;
    Ok(Services {
        hasher: PasswordHasher::new(web::password_hash_bound()),
        throttle: Throttle::new(config.rate_limits),
        recovery_key: RecoveryCodeKey::derive(&config.master_key),
        totp_vault: TotpVault::new(config.master_key.clone()),
        mailer: mail_sender(config, store, clock)?,
        tokens: crate::oauth::TokenEndpoint::new(
            crate::oauth::TokenIssuer {
                issuer: config.base_url.as_str().to_owned(),
                lifetime: chrono::Duration::seconds(config.token_lifetime_seconds),
                keys,
            },
            crate::oauth::throttle::TokenThrottle::new(config.rate_limits),
            store.clone(),
        ),
        password_resets: crate::jobs::password_resets::ResetRequests::default(),
        reset_requests: Arc::new(crate::store::SharedWindow::new(
            config.rate_limits,
            crate::auth::throttle::RESET_RULE,
        )),
        leaks: leak_settings(config)?,
        passkeys: crate::auth::passkey::Passkeys::new(&config.base_url)?,
        webhooks: crate::oauth::webhook_endpoints::WebhookEndpoints::new(
            config.master_key.clone(),
            config.webhook_allow_private,
            Arc::new(crate::webhooks::SystemLookup),
        ),
    })
}

/// How `POST /api/v1/leaks` takes reports, said once in the log at start (DESIGN.md section 7).
///
/// # Errors
/// When `PORTAL_LEAK_REPORT_KEYS` names a file that cannot be read or parsed.
fn leak_settings(config: &Config) -> anyhow::Result<crate::web::LeakSettings> {
    use crate::config::LeakAction;
    use crate::oauth::leaks::LeakReportKeys;
    let keys = match &config.leak_report_keys {
        Some(path) => LeakReportKeys::from_file(path.clone()).context("PORTAL_LEAK_REPORT_KEYS cannot be used")?,
        None if config.leak_action == LeakAction::Delete => {
            tracing::warn!(
                "PORTAL_LEAK_ACTION=delete needs PORTAL_LEAK_REPORT_KEYS: unsigned leak reports only mark secrets exposed"
            );
            LeakReportKeys::none()
        }
        None => {
            tracing::info!(
                "PORTAL_LEAK_REPORT_KEYS is not set: unsigned leak reports are accepted (10 a minute per address); set it in production"
            );
            LeakReportKeys::none()
        }
    };
    Ok(crate::web::LeakSettings {
        keys,
        delete: config.leak_action == LeakAction::Delete,
        unsigned: Arc::new(crate::store::SharedWindow::new(config.rate_limits, crate::web::leaks::UNSIGNED_RULE)),
    })
}

/// The background jobs over this configuration and these services: the passes over auth and
/// oauth objects are handed to `jobs` as values.
/// The webhook deliverer over the system's resolver behind the SSRF guard; `None` when the
/// configuration starts none, or (logged) when its HTTP client cannot start.
fn webhook_deliverer(config: &Config, state: &AppState) -> Option<crate::jobs::webhooks::Deliverer> {
    let (allow, poll) = (config.webhook_allow_private, config.webhook_poll?);
    match crate::webhooks::client(Arc::new(crate::webhooks::SystemLookup), allow) {
        Ok(client) => Some(
            crate::jobs::webhooks::Deliverer::new(
                state.store.clone(),
                client,
                (Arc::new(config.master_key.clone()), config.base_url.clone()),
                state.clock.clone(),
                allow,
            )
            .polling_every(poll)
            .waking_on(state.services.webhooks.waker()),
        ),
        Err(e) => {
            tracing::error!(error = %e, "the webhook client cannot start: webhooks are not delivered");
            None
        }
    }
}

fn jobs(config: &Config, state: &AppState, sessions: PortalSessionStore) -> crate::jobs::Jobs {
    use crate::jobs::pass;
    let services = &state.services;
    let store = state.store.clone();
    let windows = services.shared_windows();
    let throttle_flush = pass({
        let store = store.clone();
        move |now| {
            let (windows, store) = (windows.clone(), store.clone());
            async move {
                crate::store::flush_all(&windows, &store, now).await;
                Ok(())
            }
        }
    });
    let usage_flush = pass({
        let (usage, store) = (services.tokens.usage.clone(), store.clone());
        move |now| {
            let (usage, store) = (usage.clone(), store.clone());
            async move {
                usage.flush(&store, now).await;
                Ok(())
            }
        }
    });
    let key_reload = pass({
        let keys = services.tokens.issuer.keys.clone();
        move |now| {
            let keys = keys.clone();
            async move { keys.reload(now).await.map_err(|e| e.to_string()) }
        }
    });
    let reset_handler: crate::jobs::password_resets::Handler = {
        let (store, base_url) = (store.clone(), config.base_url.clone());
        std::sync::Arc::new(move |request: crate::jobs::password_resets::ResetRequest| {
            let (store, base_url) = (store.clone(), base_url.clone());
            Box::pin(async move {
                let actor = crate::store::Actor {
                    user_id: None,
                    label: request.email.to_string(),
                    ip: Some(request.ip.to_string()),
                };
                crate::auth::link::request_password_reset(&store, &base_url, &request.email, &actor, request.at)
                    .await
                    .map_err(|e| e.to_string())
            })
        })
    };
    crate::jobs::Jobs {
        store,
        clock: state.clock.clone(),
        mailer: services.mailer.clone(),
        base_url: config.base_url.clone(),
        reminder_interval: config.reminder_interval,
        password_resets: services.password_resets.take_receiver().map(|rx| (rx, reset_handler)),
        sessions,
        throttle_flush,
        usage_flush,
        key_reload,
        key_reload_every: config.key_schedule.reload.to_std().unwrap_or(std::time::Duration::from_secs(30)),
        webhooks: webhook_deliverer(config, state),
    }
}

/// The settings of [`AppState`]: what the web layer reads from the configuration.
pub fn web_settings(config: &Config) -> WebSettings {
    WebSettings {
        base_url: config.base_url.clone(),
        support_email: config.support_email.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
        totp_issuer: config.totp_issuer.clone(),
        secret_limit: config.secret_limit,
        token_lifetime_seconds: config.token_lifetime_seconds,
        admin_passkey_only: config.admin_mfa == crate::config::AdminMfa::Passkey,
    }
}

impl Application {
    /// Connects to the database, applies the migrations, checks the master key against the
    /// database's key-check value and binds the listeners.
    ///
    /// # Errors
    /// A one-line, operator-facing error naming what failed: the database (its URL with the
    /// password redacted), the migrations, the master key, or the address.
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let store = connect_and_migrate(&config).await?;
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("cannot listen on {} (PORTAL_BIND)", config.bind))?;
        let metrics_listener = match config.metrics_bind {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (PORTAL_METRICS_BIND)"))?,
            ),
            None => None,
        };
        let sessions = PortalSessionStore::new(&store);
        sessions
            .migrate()
            .await
            .with_context(|| format!("cannot create the session table in {}", config.database_url))?;
        let services = Arc::new(services(&config, &store, clock.clone()).await?);
        let state = AppState {
            store,
            clock,
            settings: Arc::new(web_settings(&config)),
            metrics: crate::telemetry::metrics_handle(),
            services,
        };
        Ok(Self { listener, metrics_listener, state, config: Arc::new(config), sessions })
    }

    /// The address the portal listens on (the real port when bound to port 0).
    ///
    /// # Errors
    /// Only if the OS cannot tell.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address of the separate metrics listener, if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The store the application uses.
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// The shared state (tests and the command line use its services).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish,
    /// stops background tasks and closes the pool.
    ///
    /// # Errors
    /// When the server fails to run.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Self { listener, metrics_listener, state, config, sessions } = self;
        let stop = CancellationToken::new();
        let store = state.store.clone();
        let running = crate::jobs::spawn_all(jobs(&config, &state, sessions.clone()), stop.clone());
        let metrics_task = metrics_listener.map(|l| {
            let app = web::metrics_router(state.clone());
            let stop = stop.clone();
            tokio::spawn(async move { serve(l, app, stop.cancelled_owned()).await }.in_current_span())
        });
        let app = web::router(state.clone(), sessions, metrics_task.is_none())?;
        let served = {
            let stop = stop.clone();
            serve(listener, app, async move {
                shutdown.await;
                stop.cancel();
            })
            .await
        };
        stop.cancel();
        if let Some(task) = metrics_task {
            let _ = task.await;
        }
        running.join().await;
        store.close().await;
        served.context("the HTTP server failed")
    }
}

/// Most connections served at once; further ones wait in the listen backlog until one ends
/// (issue 12: bounded memory for anyone, signed in or not).
pub const MAX_CONNECTIONS: usize = 1024;
/// How long a client may take to send a request's headers, and how long a kept-alive connection
/// may wait for its next request (hyper 1 applies the one timer to both).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The most a connection buffers while reading a request's headers: 64 KiB (a longer request
/// line or header block is refused with 431).
pub const MAX_BUF_SIZE: usize = 64 * 1024;

/// Serves `app` on `listener` until `shutdown` completes: an accept loop of its own (axum's
/// `serve` has neither a header-read timeout nor a connection cap) with hyper's HTTP/1.1
/// builder ([`HEADER_READ_TIMEOUT`]; [`MAX_BUF_SIZE`] as the read buffer and the request head's
/// limit, 431 past it), at most
/// [`MAX_CONNECTIONS`] at once, the peer address as axum's `ConnectInfo<SocketAddr>`, and
/// hyper-util's graceful shutdown: on `shutdown` the listener closes, idle connections close,
/// and requests in flight finish (each is bounded by the request timeout) before this returns.
///
/// HTTP/2 is not offered: in hyper 1 it has no header-read timeout, so an idle HTTP/2
/// connection could be held open for ever; a TLS proxy in front may speak HTTP/2 to clients.
///
/// # Errors
/// None today; accept errors are logged and retried (a full file-descriptor table waits a
/// second, as hyper 0.14 did).
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // hyper's own HTTP/1.1 builder: hyper-util's auto::Builder answers an HTTP/2 preface when it
    // serves upgrades (http1_only is ignored there), and without upgrades it did not bound the
    // request head by max_buf_size; HTTP/2 connections have no header-read timeout.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_BUF_SIZE)
        .max_header_size(MAX_BUF_SIZE);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    if !matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionRefused
                            | std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::ConnectionReset
                    ) {
                        tracing::error!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = app.clone().map_request(move |mut request: axum::http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            request
        });
        let connection =
            builder.serve_connection(TokioIo::new(stream), hyper_util::service::TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(
            async move {
                if let Err(e) = connection.await {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
                drop(permit);
            }
            .in_current_span(),
        );
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Connects to the configured database, applies migrations and checks the master key.
///
/// # Errors
/// Operator-facing errors naming the database URL with its password redacted.
pub async fn connect_and_migrate(config: &Config) -> anyhow::Result<Store> {
    let url = &config.database_url;
    let store = Store::connect(url, config.pool)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to the database at {url}: {}", cause_text(&e)))?;
    store.migrate().await.map_err(|e| anyhow::anyhow!("cannot apply the migrations to {url}: {}", cause_text(&e)))?;
    match store.verify_master_key(&config.master_key).await {
        Ok(()) => Ok(store),
        Err(KeyCheckError::Mismatch) => anyhow::bail!("{} ({url})", KeyCheckError::Mismatch),
        Err(KeyCheckError::Store(e)) => anyhow::bail!("cannot read the key-check value from {url}: {}", cause_text(&e)),
    }
}

/// The innermost cause of an error, on one line. sqlx's messages name hosts and files, never
/// the password.
fn cause_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    text.replace('\n', " ")
}

/// Registers for Ctrl-C (SIGINT) and SIGTERM now, and returns a future that completes when
/// either arrives. Registering before the "listening" line means a signal sent right after it is
/// never lost to the default action (killing the process).
///
/// # Errors
/// When the signal handlers cannot be installed.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
            tracing::info!("shutting down: finishing requests in flight");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down: finishing requests in flight");
        })
    }
}
