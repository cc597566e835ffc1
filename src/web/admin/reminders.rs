//! `GET /admin/reminders`: reminders sent, those due in the next 14 days, the outbox, and the
//! latest webhook deliveries (issue 17, point 4).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Duration;

use crate::domain::DaysLeft;
use crate::domain::reminder::due_notices;
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::WmdaAdmin;
use crate::web::pages::Nav;

/// A line of the sent or upcoming lists.
pub struct ReminderRow {
    date: String,
    application: String,
    secret: String,
    notice: String,
    recipients: String,
}

/// An outbox line.
pub struct OutboxLine {
    created: String,
    kind: String,
    recipient: String,
    subject: String,
    state: String,
    attempts: i32,
    error: String,
}

/// A webhook delivery line (issue 17, point 4).
pub struct DeliveryLine {
    application: String,
    endpoint: String,
    row: crate::web::webhook_views::DeliveryRow,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/reminders.html")]
struct RemindersPage {
    nav: Option<Nav>,
    sent: Vec<ReminderRow>,
    upcoming: Vec<ReminderRow>,
    outbox: Vec<OutboxLine>,
    queued: i64,
    retrying: i64,
    failed: i64,
    deliveries: Vec<DeliveryLine>,
    deliveries_pending: i64,
    deliveries_failed: i64,
}

impl OutboxLine {
    fn of(o: crate::store::OutboxRow) -> Self {
        OutboxLine {
            created: o.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            kind: o.kind,
            recipient: o.recipient,
            subject: o.subject,
            state: match (o.sent_at, o.failed_at, &o.last_error) {
                (Some(_), _, _) => "sent".into(),
                (None, Some(_), _) => "failed".into(),
                (None, None, Some(_)) => format!("retrying at {}", o.next_attempt_at.format("%H:%M:%S UTC")),
                (None, None, None) => "queued".into(),
            },
            attempts: o.attempts,
            error: o.last_error.unwrap_or_default(),
        }
    }
}

/// `GET /admin/reminders`.
pub async fn page(State(state): State<AppState>, WmdaAdmin(admin): WmdaAdmin) -> Result<Response, AppError> {
    let now = state.clock.now();
    let sent = state
        .store
        .recent_reminders(100)
        .await?
        .into_iter()
        .map(|r| ReminderRow {
            date: r.queued_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            application: r.application,
            secret: r.secret,
            notice: r.notice.wording(DaysLeft::between(r.queued_at.date_naive(), r.expires_on)),
            recipients: format!("{}{}", r.recipients, if r.to_admins { " (WMDA admins)" } else { "" }),
        })
        .collect();
    // The next 14 days, as the schedule would run them on today's data (usage may still change).
    let (secrets, mut already) = state.store.reminder_candidates(now.date_naive()).await?;
    let usages: Vec<_> = secrets.iter().map(|s| s.usage.clone()).collect();
    let mut upcoming = Vec::new();
    for day in 0..14 {
        let date = now.date_naive() + Duration::days(day);
        for (id, notice) in due_notices(&usages, &already, date) {
            already.insert((id, notice));
            if let Some(s) = secrets.iter().find(|s| s.usage.id == id) {
                upcoming.push(ReminderRow {
                    date: date.to_string(),
                    application: s.application.clone(),
                    secret: s.name.clone(),
                    notice: notice.wording(DaysLeft::between(date, s.usage.expires_on)),
                    recipients: String::new(),
                });
            }
        }
    }
    let outbox = state.store.recent_outbox(100).await?.into_iter().map(OutboxLine::of).collect();
    let depth = state.store.outbox_depth().await?;
    let (lines, counts) = state.store.recent_webhook_deliveries(100).await?;
    let deliveries = lines
        .iter()
        .map(|l| DeliveryLine {
            application: l.application.clone(),
            endpoint: format!("{} ({})", l.host, l.format),
            row: crate::web::webhook_views::DeliveryRow::of(
                &l.delivery,
                l.removed.then_some("Dropped: the endpoint was removed"),
            ),
        })
        .collect();
    Ok(RemindersPage {
        nav: Nav::of(&admin),
        sent,
        upcoming,
        outbox,
        queued: depth.queued,
        retrying: depth.retrying,
        failed: depth.failed,
        deliveries,
        deliveries_pending: counts.pending,
        deliveries_failed: counts.failed,
    }
    .into_response())
}
