//! Password-reset requests, handled off the request path (issue 12, point 3): `POST
//! /password/forgot` answers at once, the same way and in the same time whether or not the
//! address has an account, and this job looks the account up, applies the per-account limit and
//! queues the link email (through the outbox, like every email).

use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::auth::link_applies;
use crate::domain::BaseUrl;
use crate::domain::EmailAddress;
use crate::domain::{LinkPurpose, LinkToken};
use crate::mail::views::link_email;
use crate::store::{Actor, NewLink, Store, StoreError};

/// Requests waiting for the job at most; past it a request is dropped (and counted in the
/// metric `password_reset_requests_dropped_total`): memory stays bounded under a flood.
pub const QUEUE: usize = 1024;
/// Reset emails per account within [`PER_ACCOUNT_WINDOW`]; past it the email is silently not
/// queued (counted in `link_emails_suppressed_total`), the answer unchanged.
pub const PER_ACCOUNT: i64 = 3;
/// The per-account window.
pub const PER_ACCOUNT_WINDOW: Duration = Duration::hours(1);

/// One request: the normalised email, the client's address, when it came.
#[derive(Debug)]
pub struct ResetRequest {
    email: EmailAddress,
    ip: IpAddr,
    at: DateTime<Utc>,
}

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

/// Handles one request: for an enabled account with a password and an active authenticator
/// (`auth::link_applies`), stores a reset link (valid 1 hour) and queues its email with the
/// audit event, unless the account had [`PER_ACCOUNT`] reset emails in the last hour. Returns
/// whether an email was queued.
///
/// # Errors
/// [`StoreError`].
pub async fn handle(store: &Store, base_url: &BaseUrl, request: &ResetRequest) -> Result<bool, StoreError> {
    let Some(creds) = store.find_credentials_by_email(&request.email).await? else { return Ok(false) };
    if creds.user.disabled_at.is_some() || !link_applies(LinkPurpose::PasswordReset, &creds) {
        return Ok(false);
    }
    let now = request.at;
    let token = LinkToken::generate();
    let purpose = LinkPurpose::PasswordReset;
    let link = NewLink { token_hash: token.hash(), purpose, expires_at: now + purpose.lifetime() };
    let url = base_url.join(&purpose.path(&token));
    let mail = link_email(purpose, request.email.as_str(), &creds.user.display_name, &url);
    let actor = Actor { user_id: None, label: request.email.to_string(), ip: Some(request.ip.to_string()) };
    let event = actor.event("auth.password_reset_requested", now).on_user(&creds.user);
    let queued = store
        .issue_link_within(&creds.user, &link, &mail, &event, now, Some((PER_ACCOUNT, now - PER_ACCOUNT_WINDOW)))
        .await?;
    if !queued {
        metrics::counter!("link_emails_suppressed_total", "email" => "password_reset").increment(1);
    }
    Ok(queued)
}

/// Handles requests as they come until `stop`, then those already queued; wakes the mail
/// sender after each queued email.
pub async fn run(
    mut rx: mpsc::Receiver<ResetRequest>,
    store: Store,
    base_url: BaseUrl,
    mailer: super::outbox::Sender,
    stop: CancellationToken,
) {
    loop {
        let request = tokio::select! {
            () = stop.cancelled() => break,
            r = rx.recv() => match r { Some(r) => r, None => return },
        };
        process(&mailer, &store, &base_url, &request).await;
    }
    rx.close();
    while let Ok(request) = rx.try_recv() {
        process(&mailer, &store, &base_url, &request).await;
    }
}

async fn process(mailer: &super::outbox::Sender, store: &Store, base_url: &BaseUrl, request: &ResetRequest) {
    match handle(store, base_url, request).await {
        Ok(true) => mailer.wake(),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "cannot handle a password-reset request"),
    }
}
