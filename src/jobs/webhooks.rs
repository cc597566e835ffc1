//! The webhook deliverer (issue 17; DESIGN.md section 9): claims each endpoint's oldest due
//! delivery, sends it through the guarded client ([`crate::webhooks`]), and marks it delivered
//! (a 2xx), to retry (capped backoff, the same `webhook-id` every time), or failed once
//! [`FAIL_AFTER`] has passed since its first refusal, so the endpoint's next event proceeds; an endpoint
//! without a 2xx answer for 72 hours is disabled and its managers emailed. At least once; exactly
//! once when the receiver answers 2xx within the timeout. `standard` deliveries are
//! signed per attempt (Standard Webhooks).

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::BaseUrl;
use crate::domain::Clock;
use crate::domain::cipher::MasterKey;
use crate::domain::webhook::{
    FAIL_AFTER, SigningSecret, WebhookEvent, WebhookFormat, WebhookUrl, delivery_backoff, message_id, render_body,
};
use crate::store::{ClaimedDelivery, Store, StoreError};
use crate::webhooks::{DeliveryError, SIGNING_SECRET_PURPOSE, URL_PURPOSE, post};

/// How long a claimed batch is held before another deliverer may take it over: longer than the
/// whole batch may take (each delivery at most [`crate::webhooks::DELIVERY_TIMEOUT`]), so no event
/// is sent twice at once or out of order. A mark after the lease ran out changes nothing.
pub const LEASE: Duration = Duration::minutes(5);
/// Deliveries claimed per pass: 20 x 10 s stays within [`LEASE`].
const BATCH: i64 = 20;
/// How often the deliverer looks for due deliveries when nobody wakes it (the configuration's
/// `webhook_poll`).
pub const POLL: StdDuration = StdDuration::from_secs(2);

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookReport {
    /// Answered 2xx.
    pub delivered: usize,
    /// Not delivered yet; due again later.
    pub retrying: usize,
    /// Given up after [`FAIL_AFTER`].
    pub failed: usize,
    /// Endpoints disabled after 72 hours without a 2xx answer.
    pub disabled: usize,
}

/// Delivers webhook events: [`Deliverer::run_once`] sends what is due, [`Deliverer::run_loop`]
/// does it every 2 seconds (or when woken) until shutdown.
#[derive(Clone)]
pub struct Deliverer {
    store: Store,
    client: reqwest::Client,
    master_key: Arc<MasterKey>,
    clock: Arc<dyn Clock>,
    base_url: BaseUrl,
    allow_private: bool,
    poll: StdDuration,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer").field("allow_private", &self.allow_private).finish_non_exhaustive()
    }
}

impl Deliverer {
    /// A deliverer sending through `client` ([`crate::webhooks::client`], built with the same
    /// `allow_private`), decrypting URLs and signing secrets with `master_key`; the events link
    /// to the Manage page under `base_url`.
    pub fn new(
        store: Store,
        client: reqwest::Client,
        (master_key, base_url): (Arc<MasterKey>, BaseUrl),
        clock: Arc<dyn Clock>,
        allow_private: bool,
    ) -> Self {
        Self { store, client, master_key, clock, base_url, allow_private, poll: POLL, wake: Arc::new(Notify::new()) }
    }

    /// This deliverer, looking for due deliveries every `poll` instead of [`POLL`].
    #[must_use]
    pub fn polling_every(self, poll: StdDuration) -> Self {
        Self { poll, ..self }
    }

    /// This deliverer, woken by `wake` (the pages' [`crate::oauth::webhook_endpoints::WebhookEndpoints::waker`])
    /// after they queue a test event or enable an endpoint.
    #[must_use]
    pub fn waking_on(self, wake: Arc<Notify>) -> Self {
        Self { wake, ..self }
    }

    /// Sends what is due, pass after pass, until nothing due is left.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails; delivery failures are recorded on the rows.
    pub async fn run_once(&self) -> Result<WebhookReport, StoreError> {
        let mut report = WebhookReport::default();
        loop {
            let now = self.clock.now();
            let batch = self.store.claim_due_webhook_deliveries(now, now + LEASE, BATCH).await?;
            if batch.is_empty() {
                return Ok(report);
            }
            for d in batch {
                let outcome = self.send(&d).await;
                let now = self.clock.now();
                match outcome {
                    Ok(status) if (200..300).contains(&status) => {
                        self.store.mark_webhook_delivered(&d, status, now).await?;
                        metrics::counter!("webhook_deliveries_total", "outcome" => "delivered").increment(1);
                        report.delivered += 1;
                        continue;
                    }
                    answered => {
                        let (status, error) = match answered {
                            Ok(status) => (Some(status), format!("answered {status}")),
                            Err(e) => (None, e.to_string()),
                        };
                        // Failing for a day: since its first refusal (an outage's backlog gets its day too).
                        let give_up = now - d.first_failed_at.unwrap_or(now) >= FAIL_AFTER;
                        let failed_at = give_up.then_some(now);
                        let next = now + delivery_backoff(d.attempts);
                        self.store.mark_webhook_undelivered(&d, (now, next, failed_at), status, &error).await?;
                        let outcome = if give_up { "failed" } else { "retrying" };
                        tracing::warn!(delivery = d.id, endpoint = %d.endpoint_id, attempts = d.attempts, %error, outcome, "webhook not delivered");
                        metrics::counter!("webhook_deliveries_total", "outcome" => outcome).increment(1);
                        if give_up {
                            report.failed += 1;
                        } else {
                            report.retrying += 1;
                        }
                        // No 2xx for 72 hours (and 3 attempts or more): disabled, its managers told.
                        let manage_url = self.base_url.join("/manage-api-credentials");
                        let render = |application: &str, host: &str, to: &crate::store::Recipients| {
                            to.people
                                .iter()
                                .map(|(email, name)| {
                                    crate::mail::views::webhook_disabled_email(
                                        application,
                                        host,
                                        &manage_url,
                                        email,
                                        name,
                                    )
                                })
                                .collect()
                        };
                        let actor = crate::store::Actor::system();
                        if self
                            .store
                            .disable_dead_webhook_endpoint(d.endpoint_id, &actor, &render, now)
                            .await?
                            .is_some()
                        {
                            tracing::warn!(endpoint = %d.endpoint_id, "webhook endpoint disabled: no 2xx answer for 72 hours");
                            report.disabled += 1;
                        }
                    }
                }
            }
        }
    }

    /// One attempt: the URL decrypted and checked again, the `standard` headers signed for this
    /// attempt's time.
    async fn send(&self, d: &ClaimedDelivery) -> Result<u16, DeliveryError> {
        let unusable = |what: &str| DeliveryError::Refused(format!("the endpoint's {what} cannot be read"));
        let url = self.master_key.decrypt(&d.url_enc, URL_PURPOSE).map_err(|_| unusable("URL"))?;
        let url = std::str::from_utf8(&url).map_err(|_| unusable("URL"))?;
        let url = WebhookUrl::parse(url, self.allow_private).map_err(|e| DeliveryError::Refused(e.to_string()))?;
        let (Some(format), Some(event), Ok(data)) = (
            WebhookFormat::parse(&d.format),
            WebhookEvent::parse(&d.event_type),
            serde_json::from_str::<serde_json::Value>(&d.data),
        ) else {
            return Err(unusable("event"));
        };
        let client_id = data["client_id"].as_str().unwrap_or_default().to_owned();
        let client_id = client_id.as_str();
        let mut link = self.base_url.join(&crate::domain::application::manage_section_path(client_id));
        let mut data = data;
        // An expiring secret's event links to its "Create replacement" (issue 18, point 3).
        // An expired one cannot be replaced (the form would open empty): the Manage page it is.
        if event == WebhookEvent::Expiring
            && data["days_left"].as_i64().is_some_and(|d| d >= 0)
            && let Some(id) = data["secret"]["id"].as_str().and_then(|i| uuid::Uuid::parse_str(i).ok())
        {
            let replace_url = self.base_url.join(&crate::domain::application::replace_path(client_id, id));
            data["replace_url"] = serde_json::Value::String(replace_url.clone());
            link = replace_url;
        }
        let body = render_body(format, event, d.created_at, &data, &link);
        let mut headers = Vec::new();
        if format == WebhookFormat::Standard {
            let secret = d.signing_secret_enc.as_deref().ok_or_else(|| unusable("signing secret"))?;
            let secret =
                self.master_key.decrypt(secret, SIGNING_SECRET_PURPOSE).map_err(|_| unusable("signing secret"))?;
            let secret = std::str::from_utf8(&secret)
                .ok()
                .and_then(SigningSecret::parse)
                .ok_or_else(|| unusable("signing secret"))?;
            let id = message_id(d.event_id);
            let at = self.clock.now().timestamp();
            let signature = secret.sign(&id, at, body.as_bytes());
            headers.push(("webhook-id", id));
            headers.push(("webhook-timestamp", at.to_string()));
            headers.push(("webhook-signature", signature));
        }
        post(&self.client, &url, &headers, body.into_bytes()).await
    }

    /// Delivers until `stop` is cancelled. Database errors are logged and the loop goes on.
    pub async fn run_loop(self, stop: CancellationToken) {
        let what = "the webhook deliverer cannot read its deliveries";
        super::poll_until_stopped(what, &self.wake, self.poll, stop, || self.run_once()).await;
    }
}
