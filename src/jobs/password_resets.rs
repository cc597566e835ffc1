//! Password-reset requests, handled off the request path (issue 12, point 3): `POST
//! /password/forgot` answers at once, the same way and in the same time whether or not the
//! address has an account, and this job hands each request to the use case startup gives it
//! (`auth::link::request_password_reset`: the account lookup, the per-account limit, the link
//! email through the outbox).

use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::BoxFuture;
use crate::domain::EmailAddress;

/// Requests waiting for the job at most; past it a request is dropped (and counted in the
/// metric `password_reset_requests_dropped_total`): memory stays bounded under a flood.
pub const QUEUE: usize = 1024;

/// One request: the normalised email, the client's address, when it came.
#[derive(Debug)]
pub struct ResetRequest {
    /// The normalised email asked for.
    pub email: EmailAddress,
    /// The client's address.
    pub ip: IpAddr,
    /// When it came (UTC).
    pub at: DateTime<Utc>,
}

/// What handles one request: `Ok(true)` when an email was queued (the sender is then woken);
/// an error text is logged.
pub type Handler = Arc<dyn Fn(ResetRequest) -> BoxFuture<Result<bool, String>> + Send + Sync>;

/// The queue's sending end (for the handler) and, until the job takes it, its receiving end.
#[derive(Debug)]
pub struct ResetRequests {
    tx: mpsc::Sender<ResetRequest>,
    rx: Mutex<Option<mpsc::Receiver<ResetRequest>>>,
}

impl Default for ResetRequests {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Self { tx, rx: Mutex::new(Some(rx)) }
    }
}

impl ResetRequests {
    /// Queues a request; never waits. A full queue drops it (counted).
    pub fn submit(&self, email: EmailAddress, ip: IpAddr, at: DateTime<Utc>) {
        if self.tx.try_send(ResetRequest { email, ip, at }).is_err() {
            metrics::counter!("password_reset_requests_dropped_total").increment(1);
        }
    }

    /// The receiving end, once (the job's).
    pub fn take_receiver(&self) -> Option<mpsc::Receiver<ResetRequest>> {
        self.rx.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// Handles requests as they come until `stop`, then those already queued; wakes the mail
/// sender after each queued email.
pub async fn run_loop(
    mut rx: mpsc::Receiver<ResetRequest>,
    handle: Handler,
    mailer: super::outbox::Sender,
    stop: CancellationToken,
) {
    loop {
        let request = tokio::select! {
            () = stop.cancelled() => break,
            r = rx.recv() => match r { Some(r) => r, None => return },
        };
        run_once(&handle, &mailer, request).await;
    }
    rx.close();
    while let Ok(request) = rx.try_recv() {
        run_once(&handle, &mailer, request).await;
    }
}

/// Handles one request, waking the sender when it queued an email.
pub async fn run_once(handle: &Handler, mailer: &super::outbox::Sender, request: ResetRequest) {
    match handle(request).await {
        Ok(true) => mailer.wake(),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "cannot handle a password-reset request"),
    }
}
