//! The commands behind `main.rs`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use crate::config::{Cli, Command, Config, ServeArgs, StartupNotice};
use crate::demo::{self, DemoOutcome};
use crate::domain::{Clock, SystemClock};
use crate::startup::{self, Application};

/// The folder of the embedded default (`./data`, relative to the working directory).
pub const DATA_DIR: &str = "data";

/// Runs the command the user gave (`serve` when none).
///
/// # Errors
/// Any operator-facing failure; `main` prints it on one line and exits non-zero.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let (config, notices) = cli.settings.resolve(Path::new(DATA_DIR))?;
    crate::telemetry::init_logging(config.log_format);
    for notice in notices {
        match notice {
            StartupNotice::GeneratedMasterKey(path) => tracing::warn!(
                path = %path.display(),
                "generated a new master key: keep this file with the database and back it up; without it the encrypted TOTP seeds and signing keys cannot be read"
            ),
        }
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => serve(config, clock, args).await,
        Command::Migrate => {
            startup::connect_and_migrate(&config).await?.close().await;
            tracing::info!(database = %config.database_url, "migrations applied");
            Ok(())
        }
    }
}

async fn serve(config: Config, clock: Arc<dyn Clock>, args: ServeArgs) -> anyhow::Result<()> {
    let shutdown = startup::shutdown_signal().context("cannot install the signal handlers")?;
    let base_url = config.base_url.as_str().to_owned();
    let database = config.database_url.to_string();
    let app = Application::build(config, clock.clone()).await?;
    if args.demo {
        match demo::load(app.store(), clock.now())
            .await
            .context("cannot load the demo data")?
        {
            DemoOutcome::Loaded { applications } => {
                tracing::info!(applications = ?applications, "demo data loaded");
            }
            DemoOutcome::AlreadyPresent => tracing::debug!("demo data already present"),
        }
    }
    let addr = app.local_addr()?;
    tracing::info!(database = %database, backend = app.store().backend_name(), "database ready");
    if let Some(metrics) = app.metrics_addr() {
        tracing::info!("metrics on http://{metrics}/metrics");
    }
    tracing::info!(base_url = %base_url, "secret-portal listening on http://{addr}");
    app.run_until(shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}
