//! Webhook endpoints as credential managers and WMDA admins handle them (issue 17, points 1
//! and 6; DESIGN.md section 9): adding one (the form checked field by field, the URL and a
//! `standard` endpoint's signing secret encrypted with the master key, which stays inside this
//! service), showing its URL without what may be a credential, "Send test event" and "Enable"
//! (which wake the deliverer). Removing one is the store's
//! ([`crate::store::Store::remove_webhook_endpoint`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::cipher::MasterKey;
use crate::domain::webhook::{EndpointFormErrors, EndpointRequest, SigningSecret, WebhookFormat, WebhookUrl};
use crate::store::{Actor, Conflict, NewWebhookEndpoint, Store, StoreError, TestEvent, WebhookEndpoint};
use crate::webhooks::{GuardedResolver, Lookup, Refused, SIGNING_SECRET_PURPOSE, URL_PURPOSE};

/// How long the best-effort lookup of a new endpoint's host may take before the endpoint is
/// added anyway (delivery checks every address again, and is authoritative).
const CREATION_LOOKUP: Duration = Duration::from_secs(3);

/// The webhook endpoints service of the pages (in `Services`): the master key, whether private
/// addresses are allowed (`PORTAL_WEBHOOK_ALLOW_PRIVATE`), the resolver for the best-effort
/// check at creation, and the deliverer's wake-up.
pub struct WebhookEndpoints {
    key: MasterKey,
    allow_private: bool,
    lookup: Arc<dyn Lookup>,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for WebhookEndpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoints").field("allow_private", &self.allow_private).finish_non_exhaustive()
    }
}

/// A new endpoint, with a `standard` endpoint's signing secret to show once.
#[derive(Debug)]
pub struct Added {
    /// The endpoint as stored.
    pub endpoint: WebhookEndpoint,
    /// Its URL as the pages show it ([`WebhookUrl::shown`]).
    pub shown_url: String,
    /// A `standard` endpoint's signing secret (`whsec_…`): shown once, never again.
    pub signing_secret: Option<SigningSecret>,
}

/// Why an endpoint was not added; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The form is wrong: a message per field.
    #[error("the form has errors")]
    Invalid(EndpointFormErrors),
    /// The application has [`crate::domain::webhook::MAX_ENDPOINTS`] endpoints already.
    #[error("{0}")]
    Limit(String),
    /// This form (its `form_id`) added an endpoint already, whose signing secret was shown then.
    #[error("this form was already submitted")]
    AlreadySubmitted,
    /// The database.
    #[error(transparent)]
    Store(StoreError),
}

impl WebhookEndpoints {
    /// The service over `key`; `lookup` resolves new endpoints' hosts (the system's resolver in
    /// the portal).
    pub fn new(key: MasterKey, allow_private: bool, lookup: Arc<dyn Lookup>) -> Self {
        Self { key, allow_private, lookup, wake: Arc::new(Notify::new()) }
    }

    /// What wakes the deliverer: given to [`crate::jobs::webhooks::Deliverer::waking_on`].
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Adds an endpoint to application `application_id` from the form's `url`, `format` and
    /// `events` at `now`, by `actor` (`created_by`, the credential manager), once per `form_id`
    /// (the form's one-time id, a UUID; any other text adds without that check): checked as
    /// [`EndpointRequest::check`]; a host that resolves only to refused addresses is refused too
    /// (best effort: a lookup that fails or takes over 3 s does not stop it). A `standard`
    /// endpoint gets a new signing secret. Audited as `webhook.added` (host only).
    ///
    /// # Errors
    /// [`AddError`]; nothing is stored.
    pub async fn add(
        &self,
        store: &Store,
        (actor, created_by): (&Actor, Option<Uuid>),
        application_id: Uuid,
        (url, format, events, form_id): (&str, &str, &[String], &str),
        now: DateTime<Utc>,
    ) -> Result<Added, AddError> {
        let request = EndpointRequest::check(url, format, events, self.allow_private).map_err(AddError::Invalid)?;
        if let Some(why) = self.resolves_only_to_refused(&request.url).await {
            return Err(AddError::Invalid(EndpointFormErrors { url: Some(why), ..EndpointFormErrors::default() }));
        }
        let signing_secret = (request.format == WebhookFormat::Standard).then(SigningSecret::generate);
        let new = NewWebhookEndpoint {
            application_id,
            format: request.format,
            url_enc: self.key.encrypt(request.url.as_url().as_str().as_bytes(), URL_PURPOSE),
            host: request.url.host().to_owned(),
            events: request.events.clone(),
            signing_secret_enc: signing_secret
                .as_ref()
                .map(|s| self.key.encrypt(s.expose().as_bytes(), SIGNING_SECRET_PURPOSE)),
            created_by,
            form_id: Uuid::parse_str(form_id.trim()).ok(),
        };
        match store.add_webhook_endpoint(&new, actor, now).await {
            Ok(endpoint) => Ok(Added { endpoint, shown_url: request.url.shown(), signing_secret }),
            Err(StoreError::Conflict(c @ Conflict::WebhookLimit)) => Err(AddError::Limit(c.to_string())),
            Err(StoreError::Conflict(Conflict::FormAlreadySubmitted)) => Err(AddError::AlreadySubmitted),
            Err(e) => Err(AddError::Store(e)),
        }
    }

    /// Why `url`'s host cannot be delivered to, when a lookup says so: every address it
    /// resolves to is refused. `None` when it has a usable address, is a literal (checked
    /// already), or could not be looked up.
    async fn resolves_only_to_refused(&self, url: &WebhookUrl) -> Option<String> {
        let Some(url::Host::Domain(host)) = url.as_url().host() else { return None };
        let guard = GuardedResolver::new(Arc::clone(&self.lookup), self.allow_private);
        match tokio::time::timeout(CREATION_LOOKUP, guard.addresses(host)).await {
            Ok(Err(e)) => e.downcast_ref::<Refused>().map(|r| {
                format!("{} resolves only to {} addresses, which the portal does not deliver to.", r.host, r.why)
            }),
            _ => None,
        }
    }

    /// The endpoint's URL as the pages show it ([`WebhookUrl::shown`]); the host and "…"
    /// when it cannot be read.
    pub fn shown_url(&self, endpoint: &WebhookEndpoint) -> String {
        let e = &endpoint.endpoint;
        self.key
            .decrypt(&e.url_enc, URL_PURPOSE)
            .ok()
            .and_then(|bytes| std::str::from_utf8(&bytes).ok().and_then(|text| WebhookUrl::parse(text, true).ok()))
            .map_or_else(|| format!("https://{}/…", e.host), |url| url.shown())
    }

    /// "Send test event" on the endpoint `endpoint_id` of the application (`application_id`,
    /// its name and client ID) at `now`: queued at most once a minute, then the deliverer is
    /// woken.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when it is not an endpoint of that application.
    pub async fn send_test(
        &self,
        store: &Store,
        (application_id, application, client_id): (Uuid, &str, &str),
        endpoint_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<TestEvent, StoreError> {
        let data = crate::domain::webhook::test_event_data(application, client_id);
        let outcome = store.queue_test_webhook_event((application_id, endpoint_id), &data, now).await?;
        if matches!(outcome, TestEvent::Queued { .. }) {
            self.wake.notify_one();
        }
        Ok(outcome)
    }

    /// "Enable" on the disabled endpoint `endpoint_id` of `application_id` at `now`: its oldest
    /// pending event goes first, at once. Audited as `webhook.enabled`. Returns whether it was
    /// disabled (`false`: enabled already, nothing changed).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when it is not an endpoint of that application.
    pub async fn enable(
        &self,
        store: &Store,
        actor: &Actor,
        (application_id, endpoint_id): (Uuid, Uuid),
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let enabled = store.enable_webhook_endpoint((application_id, endpoint_id), actor, now).await?;
        if enabled {
            self.wake.notify_one();
        }
        Ok(enabled)
    }
}
