//! The reminder pass: works out the due notices (a pure function, `domain::reminder`), records
//! each and queues its emails in one transaction. The mail sender delivers them.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::BaseUrl;
use crate::domain::NewEmail;
use crate::domain::reminder::{Notice, due_notices};
use crate::domain::{Clock, DaysLeft};
use crate::mail::views::{ReminderFacts, reminder_email};
use crate::store::{Recipients, ReminderSecret, Store, StoreError};

/// A notice the pass found due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueNotice {
    /// The secret.
    pub secret_id: Uuid,
    /// Its name.
    pub secret: String,
    /// Its application.
    pub application: String,
    /// Its hint.
    pub hint: crate::domain::Hint,
    /// The notice.
    pub notice: Notice,
    /// Who it goes to (a dry run: who it would go to now); `None` when another process recorded
    /// it first.
    pub recipients: Option<Recipients>,
    /// What the pass did with it.
    pub outcome: Outcome,
}

/// What a pass did with a due notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Dry run: nothing.
    Due,
    /// Recorded, with this many emails queued.
    Queued(usize),
    /// Another process recorded it first.
    AlreadyRecorded,
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The notices due at `now`.
    pub due: Vec<DueNotice>,
    /// Notices recorded (and their emails queued) by this pass.
    pub recorded: usize,
    /// Emails queued.
    pub emails: usize,
    /// Notices another process recorded first.
    pub already_recorded: usize,
}

fn facts(s: &ReminderSecret, notice: Notice, now: DateTime<Utc>, base_url: &BaseUrl, to_admins: bool) -> ReminderFacts {
    ReminderFacts {
        notice,
        secret_name: s.name.clone(),
        hint: s.hint.clone(),
        application: s.application.clone(),
        client_id: s.client_id.to_string(),
        expires_on: s.usage.expires_on,
        days_left: DaysLeft::between(now.date_naive(), s.usage.expires_on),
        last_used_at: s.usage.last_used_at,
        manage_url: base_url.join("/manage-api-credentials"),
        // WMDA admins have no Manage page: they get the application's admin page.
        replace_url: if to_admins {
            base_url.join(&format!("/admin/applications/{}", s.usage.application_id))
        } else {
            base_url.join(&crate::domain::application::replace_path(&s.client_id.to_string(), s.usage.id))
        },
        to_admins,
    }
}

/// One pass at `now`: with `dry_run`, only reports what is due and to whom (one read of the
/// recipients per due notice) and changes nothing.
///
/// # Errors
/// [`StoreError`] when the database fails; the notices recorded before the failure stay
/// recorded (each in its own transaction) and the next pass carries on.
pub async fn run_once(
    store: &Store,
    base_url: &BaseUrl,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<Report, StoreError> {
    let today = now.date_naive();
    let (secrets, sent) = store.reminder_candidates(today).await?;
    let usages: Vec<_> = secrets.iter().map(|s| s.usage.clone()).collect();
    let due = due_notices(&usages, &sent, today);
    let mut report = Report::default();
    for (secret_id, notice) in due {
        let Some(secret) = secrets.iter().find(|s| s.usage.id == secret_id) else { continue };
        let mut due = DueNotice {
            secret_id,
            secret: secret.name.clone(),
            application: secret.application.clone(),
            hint: secret.hint.clone(),
            notice,
            recipients: None,
            outcome: Outcome::Due,
        };
        if dry_run {
            due.recipients = Some(store.reminder_recipients(secret.usage.application_id).await?);
            report.due.push(due);
            continue;
        }
        let render = |r: &Recipients| -> Vec<NewEmail> {
            let f = facts(secret, notice, now, base_url, r.to_admins);
            r.people.iter().map(|(email, name)| reminder_email(&f, email, name)).collect()
        };
        match store.queue_reminder(secret_id, secret.usage.application_id, notice, now, &render).await? {
            Some((n, recipients)) => {
                report.recorded += 1;
                report.emails += n;
                due.outcome = Outcome::Queued(n);
                due.recipients = Some(recipients);
                metrics::counter!("reminders_queued_total", "notice" => notice.key()).increment(1);
            }
            None => {
                report.already_recorded += 1;
                due.outcome = Outcome::AlreadyRecorded;
            }
        }
        report.due.push(due);
    }
    Ok(report)
}

/// Runs a pass every `interval` (the first one `interval` after start) until `stop` is cancelled,
/// waking the mail sender after each pass that queued mail. Failures are logged and the loop goes
/// on. Notices stay due for days, so waiting one interval after start loses nothing.
pub async fn run_loop(
    store: Store,
    base_url: BaseUrl,
    clock: Arc<dyn Clock>,
    interval: StdDuration,
    mailer: super::outbox::Sender,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {},
        }
        match run_once(&store, &base_url, clock.now(), false).await {
            Ok(report) if report.emails > 0 => {
                tracing::info!(notices = report.recorded, emails = report.emails, "reminders queued");
                mailer.wake();
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "the reminder pass failed; it runs again at the next interval"),
        }
    }
}
