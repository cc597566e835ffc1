//! Webhook endpoints and their deliveries as the Manage page, the admin application page and the
//! admin reminders page show them (issue 17, points 1 and 4).

use super::confirm::Question;
use super::manage::view::utc_minute;
use crate::domain::webhook::WebhookEvent;
use crate::oauth::webhook_endpoints::WebhookEndpoints;
use crate::store::{DeliveryView, EndpointWithDeliveries};

/// Latest deliveries shown per endpoint.
pub const DELIVERIES_SHOWN: i64 = 5;

/// An endpoint's row.
pub struct EndpointView {
    /// Its id (the forms' paths).
    pub id: String,
    /// Its URL as shown ([`crate::domain::webhook::WebhookUrl::shown`]).
    pub url: String,
    /// Its host (the buttons' labels).
    pub host: String,
    /// "Slack", "Microsoft Teams", "Standard Webhooks (signed JSON)".
    pub format: &'static str,
    /// The event types it gets, e.g. `secret.expiring`.
    pub events: Vec<&'static str>,
    /// When it was added, `YYYY-MM-DD HH:MM UTC`.
    pub added: String,
    /// How it is doing, in a sentence.
    pub status: String,
    /// Disabled after 72 hours without a 2xx answer: "Enable" is offered, not "Send test event".
    pub disabled: bool,
    /// Refused lately (a warning style).
    pub failing: bool,
    /// Its latest deliveries, newest first.
    pub deliveries: Vec<DeliveryRow>,
    /// What removing it asks first.
    pub remove: Question,
}

/// A delivery's row.
pub struct DeliveryRow {
    /// When the event happened, `YYYY-MM-DD HH:MM UTC`.
    pub at: String,
    /// The event's type, e.g. `secret.expiring`.
    pub event: String,
    /// Its state in words: "Delivered (200)", "Retrying at 10:15 UTC", "Failed", "Queued".
    pub state: String,
    /// Not delivered (a warning style).
    pub trouble: bool,
    /// Attempts so far.
    pub attempts: i32,
    /// The last refusal in words ("answered 500", "no answer: …"), when there was one.
    pub error: String,
}

impl DeliveryRow {
    /// The row of `d`, an endpoint's delivery; `waiting` says why an undelivered one does not
    /// go ("the endpoint is disabled", "dropped: the endpoint was removed").
    pub fn of(d: &DeliveryView, waiting: Option<&str>) -> Self {
        let status = d.last_status.map(|s| format!(" ({s})")).unwrap_or_default();
        let (state, trouble) = match (d.delivered_at, d.failed_at) {
            (Some(at), _) => (format!("Delivered{status}, {}", utc_minute(at)), false),
            (None, Some(at)) => (format!("Failed: given up {}", utc_minute(at)), true),
            (None, None) if waiting.is_some() => (waiting.unwrap_or_default().to_owned(), true),
            (None, None) if d.attempts == 0 || d.last_error.is_none() => ("Queued".to_owned(), false),
            (None, None) => (format!("Retrying at {}", utc_minute(d.next_attempt_at)), true),
        };
        DeliveryRow {
            at: utc_minute(d.created_at),
            event: d.event_type.clone(),
            state,
            trouble,
            attempts: d.attempts,
            error: if d.delivered_at.is_some() { String::new() } else { d.last_error.clone().unwrap_or_default() },
        }
    }
}

impl EndpointView {
    /// The row of `e`, an endpoint of the application named `application`.
    pub fn of(e: &EndpointWithDeliveries, application: &str, service: &WebhookEndpoints) -> Self {
        let w = &e.endpoint;
        let disabled = w.disabled_at.is_some();
        let last = w.last_success_at.map(utc_minute);
        let status = match (w.disabled_at, w.failing_since, &last) {
            (Some(at), _, _) => format!(
                "Disabled {}: no successful delivery for 72 hours. Fix the receiver, then enable it: its pending \
                 events follow, oldest first.",
                utc_minute(at)
            ),
            (None, Some(since), _) => format!(
                "Failing since {} ({} failed attempt{}){}. It is disabled after 72 hours without a successful delivery.",
                utc_minute(since),
                w.failed_attempts,
                if w.failed_attempts == 1 { "" } else { "s" },
                last.as_ref().map(|l| format!("; last delivered {l}")).unwrap_or_default()
            ),
            (None, None, Some(l)) => format!("Working: last delivered {l}."),
            (None, None, None) => "No event delivered yet.".to_owned(),
        };
        EndpointView {
            id: w.id.to_string(),
            url: service.shown_url(w),
            host: w.endpoint.host.clone(),
            format: w.endpoint.format.label(),
            events: w.endpoint.events.iter().map(|ev: &WebhookEvent| ev.as_str()).collect(),
            added: utc_minute(w.created_at),
            status,
            disabled,
            failing: w.failing_since.is_some() || disabled,
            deliveries: e
                .deliveries
                .iter()
                .map(|d| DeliveryRow::of(d, disabled.then_some("Waiting: the endpoint is disabled")))
                .collect(),
            remove: Question {
                title: format!("Remove the webhook endpoint on {} of {application}?", w.endpoint.host),
                detail: "It gets no more events, and its pending deliveries are dropped. Add it again to resume (a \
                         standard endpoint then gets a new signing secret)."
                    .to_owned(),
                button: "Remove".to_owned(),
                danger: true,
            },
        }
    }
}
