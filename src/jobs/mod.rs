//! Background jobs, every loop of the portal, started by [`spawn_all`]: each is a `run_once`
//! (one pass, which tests and the command line call directly) plus a `run_loop` that stops on
//! shutdown. Running a pass twice, or on two replicas at once, changes nothing; mail leaves
//! through the outbox, never from a job.
//!
//! Jobs use mail, the store and the domain only. A pass over an auth or oauth object (the shared
//! throttle counts, recorded secret uses, the signing keys, password-reset requests) is handed
//! in by `startup` as a value ([`Pass`], [`password_resets::Handler`]), so no job names them.

pub mod keys;
pub mod outbox;
pub mod password_resets;
pub mod reminders;
pub mod sessions;
pub mod throttle_counts;
pub mod usage;
pub mod webhooks;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::domain::{BaseUrl, Clock};
use crate::store::Store;
use crate::store::sessions::PortalSessionStore;

/// A boxed future that may move between threads.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// One pass over something a job does not name, called with the clock's now (UTC); an error
/// text is logged by the job and the loop goes on.
pub type Pass = Arc<dyn Fn(DateTime<Utc>) -> BoxFuture<Result<(), String>> + Send + Sync>;

/// A [`Pass`] from an async closure.
pub fn pass<F, Fut>(f: F) -> Pass
where
    F: Fn(DateTime<Utc>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(move |now| Box::pin(f(now)))
}

/// Runs `pass` until `stop` is cancelled: again after `every`, or at once when `wake` is
/// notified. A pass's error is logged with `what` and the loop goes on. The loop of the
/// deliverers (the outbox sender, the webhook deliverer), which others wake after queueing.
pub async fn poll_until_stopped<T, E, Fut>(
    what: &'static str,
    wake: &tokio::sync::Notify,
    every: StdDuration,
    stop: CancellationToken,
    mut pass: impl FnMut() -> Fut,
) where
    E: std::fmt::Display,
    Fut: Future<Output = Result<T, E>>,
{
    loop {
        if let Err(e) = pass().await {
            tracing::warn!(error = %e, "{what}");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = wake.notified() => {},
            () = tokio::time::sleep(every) => {},
        }
    }
}

/// What the jobs need, built by `startup` from the configuration and the services.
pub struct Jobs {
    /// The database.
    pub store: Store,
    /// The clock (movable in tests).
    pub clock: Arc<dyn Clock>,
    /// The outbox sender; its loop is one of the jobs, and the others wake it.
    pub mailer: outbox::Sender,
    /// For the links in reminder emails.
    pub base_url: BaseUrl,
    /// Between reminder passes (`PORTAL_REMINDER_INTERVAL`).
    pub reminder_interval: StdDuration,
    /// The password-reset queue's receiving end and its handler (`None`: already taken).
    pub password_resets: Option<(tokio::sync::mpsc::Receiver<password_resets::ResetRequest>, password_resets::Handler)>,
    /// The session store, for the cleanup of expired records.
    pub sessions: PortalSessionStore,
    /// Writes the pending shared throttle counts.
    pub throttle_flush: Pass,
    /// Writes the recorded secret uses.
    pub usage_flush: Pass,
    /// Reloads the token signing keys (a rotation by another process).
    pub key_reload: Pass,
    /// Between key reloads (the hidden `PORTAL_KEY_RELOAD_INTERVAL`, 30 s).
    pub key_reload_every: StdDuration,
    /// The webhook deliverer (issue 17); `None` when its HTTP client could not start.
    pub webhooks: Option<webhooks::Deliverer>,
}

/// The running jobs; [`Running::join`] waits for all of them after the stop.
#[derive(Debug)]
pub struct Running(Vec<JoinHandle<()>>);

impl Running {
    /// Waits until every job has finished (each ends soon after the stop, some after a last
    /// flush).
    pub async fn join(self) {
        for task in self.0 {
            let _ = task.await;
        }
    }
}

/// Starts every job on the current runtime (each in the caller's tracing span); they run until
/// `stop` is cancelled.
pub fn spawn_all(jobs: Jobs, stop: CancellationToken) -> Running {
    let Jobs {
        store,
        clock,
        mailer,
        base_url,
        reminder_interval,
        password_resets,
        sessions,
        throttle_flush,
        usage_flush,
        key_reload,
        key_reload_every,
        webhooks,
    } = jobs;
    let mut tasks = vec![
        spawn(mailer.clone().run_loop(stop.clone())),
        spawn(reminders::run_loop(
            store.clone(),
            base_url,
            clock.clone(),
            reminder_interval,
            mailer.clone(),
            stop.clone(),
        )),
        spawn(usage::run_loop(usage_flush, clock.clone(), stop.clone())),
        spawn(throttle_counts::run_loop(throttle_flush, store, clock.clone(), stop.clone())),
        spawn(keys::run_loop(key_reload, key_reload_every, clock, stop.clone())),
        spawn(sessions::run_loop(sessions, sessions::CLEANUP_EVERY, stop.clone())),
    ];
    if let Some(deliverer) = webhooks {
        tasks.push(spawn(deliverer.run_loop(stop.clone())));
    }
    if let Some((rx, handle)) = password_resets {
        tasks.push(spawn(password_resets::run_loop(rx, handle, mailer, stop)));
    }
    Running(tasks)
}

fn spawn(job: impl Future<Output = ()> + Send + 'static) -> JoinHandle<()> {
    tokio::spawn(job.in_current_span())
}
