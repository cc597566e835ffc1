//! Creating and deleting client secrets: one call each, for the credential manager's pages (and
//! the coming JSON API). Creation checks the name and the expiration date (one year at most),
//! generates the value (shown once; afterwards only its 3-character hint), and stores its hash
//! within the secret limit under the application's lock, with the audit event `secret.created`;
//! deletion tombstones it (refused by the token endpoint from the next request on) with
//! `secret.deleted`. Authorisation is the store's: only an application the user manages is
//! found (DESIGN.md section 3). Leak reports ([`report_leaks`], DESIGN.md section 7) mark a
//! reported live secret exposed and tell its people.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret as _;
use uuid::Uuid;

use crate::domain::leak::{Label, ReportAnswer, ReportItem, token_hash};
use crate::domain::{BaseUrl, Shape};
use crate::mail::views::{ExposureFacts, secret_exposed_email};
use crate::store::{LeakOutcome, LeakSighting, SelfRotationChange, SelfRotationFacts};

use crate::domain::secret::secret_limit_message;
use crate::domain::{ClientId, ExpiryDate, PlainSecret, SecretName};
use crate::mail::views::{DeletedSecretFacts, secret_deleted_email};
use crate::store::{Actor, ClientSecret, Conflict, Deletion, NewSecret, Store, StoreError};

/// A new secret as the credential manager typed it.
#[derive(Debug, Clone, Copy)]
pub struct SecretForm<'a> {
    /// The name (1 to 100 characters, `SecretName`).
    pub name: &'a str,
    /// The expiration date, `YYYY-MM-DD` (UTC), today to one year ahead (`ExpiryDate`).
    pub expires_on: &'a str,
    /// The form's one-time id (a UUID), so a second submission creates nothing.
    pub form_id: &'a str,
    /// The id of the secret this one replaces ("Create replacement", issue 18 point 3); empty
    /// or anything but a live secret of the same application: none.
    pub replaces: &'a str,
}

/// A created secret and its value, to show once. The value's `Debug` is redacted.
#[derive(Debug)]
pub struct Created {
    /// Its metadata as stored.
    pub secret: ClientSecret,
    /// The value; never stored, logged or emailed.
    pub value: PlainSecret,
}

/// Why no secret was created; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The input breaks a rule: a message per field (`None`: that field is fine); `form` when
    /// the one-time id is missing or malformed while the fields are fine.
    #[error("the secret's fields are invalid")]
    Invalid {
        /// What is wrong with the name.
        name: Option<String>,
        /// What is wrong with the expiration date.
        expires_on: Option<String>,
        /// What is wrong with the form itself.
        form: Option<String>,
    },
    /// The application holds the most unexpired secrets allowed; the message says so
    /// ([`secret_limit_message`]).
    #[error("{0}")]
    LimitReached(String),
    /// This form was submitted before: the secret it created is not shown again.
    #[error("the form was already submitted")]
    AlreadySubmitted,
    /// The store failed, or the user does not manage the application ([`StoreError::NotFound`]).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a secret named and dated as `form` for `client_id`, an application named
/// `application` (for the limit's message) that `actor` (the user `user_id`) manages, at `now` (UTC; the expiration date is
/// checked against its date), within `limit` unexpired secrets.
///
/// # Errors
/// [`CreateError`].
#[allow(clippy::too_many_arguments)]
pub async fn create(
    store: &Store,
    actor: &Actor,
    user_id: Uuid,
    client_id: ClientId,
    application: &str,
    form: SecretForm<'_>,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Created, CreateError> {
    let name = SecretName::parse(form.name);
    let expires = ExpiryDate::parse(form.expires_on, now.date_naive());
    let form_id = Uuid::parse_str(form.form_id.trim()).ok();
    let (name, expires, form_id) = match (name, expires, form_id) {
        (Ok(n), Ok(d), Some(f)) => (n, d, f),
        (n, d, f) => {
            let (name, expires_on) = (n.err().map(|e| e.to_string()), d.err().map(|e| e.to_string()));
            let form = (f.is_none() && name.is_none() && expires_on.is_none())
                .then(|| "This form is incomplete. Check the fields and select Create again.".to_owned());
            return Err(CreateError::Invalid { name, expires_on, form });
        }
    };
    let value = PlainSecret::generate();
    let replaces = Uuid::parse_str(form.replaces.trim()).ok();
    let new = NewSecret { name, expires, hash: value.hash(), hint: value.hint(), form_id, replaces };
    match store.create_client_secret((user_id, actor), client_id, &new, limit, now).await {
        Ok(secret) => Ok(Created { secret, value }),
        Err(StoreError::Conflict(Conflict::SecretLimitReached)) => {
            Err(CreateError::LimitReached(secret_limit_message(application, limit)))
        }
        Err(StoreError::Conflict(Conflict::FormAlreadySubmitted)) => Err(CreateError::AlreadySubmitted),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the secret `secret_id` of `client_id`, an application `actor` (the user `user_id`)
/// manages, at `now` (UTC); the audit event carries its name and hint. A second deletion finds
/// it deleted already and changes nothing.
///
/// # Errors
/// [`StoreError::NotFound`] when the secret is not of that application or the user does not
/// manage it; other [`StoreError`]s.
pub async fn delete(
    store: &Store,
    actor: &Actor,
    user_id: Uuid,
    client_id: ClientId,
    secret_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Deletion, StoreError> {
    store.delete_client_secret((user_id, actor), client_id, secret_id, now).await
}

/// A WMDA admin's deletion of a compromised secret `secret_id` of the application
/// `application_id`, by `actor` with `reason` (checked by the caller: one line, 1 to 500
/// characters), at `now` (UTC): the secret is tombstoned, `secret.deleted` records the reason,
/// and each credential manager of the application is emailed at once, in the same transaction,
/// which secret, why, and what to do next (issue 14, point 3). Returns the deleted secret and how
/// many emails were queued (wake the sender).
///
/// # Errors
/// [`StoreError::NotFound`] when the secret is not of that application or already deleted.
pub async fn admin_delete(
    store: &Store,
    base_url: &crate::domain::BaseUrl,
    actor: &Actor,
    (application_id, secret_id): (Uuid, Uuid),
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(crate::store::DeletedSecret, usize), StoreError> {
    let manage_url = base_url.join("/manage-api-credentials");
    let render = |deleted: &crate::store::DeletedSecret, managers: &[(String, String)]| {
        let client_id = deleted.client_id.to_string();
        let facts = DeletedSecretFacts {
            secret_name: &deleted.name,
            hint: &deleted.hint,
            application: &deleted.application,
            client_id: &client_id,
            reason,
            manage_url: &manage_url,
        };
        managers.iter().map(|(email, name)| secret_deleted_email(&facts, email, name)).collect()
    };
    store.admin_delete_secret((application_id, secret_id), reason, actor, &render, now).await
}

/// The Manage page's self-rotation switch (issue 16, point 3; DESIGN.md section 8): the
/// credential manager `user_id`, named `by` (acting as `actor`), turns self-rotation of
/// `client_id` on or off at `now`; audited, and the application's other credential managers are
/// emailed, with a link to its section of the Manage page under `base_url`. Returns the
/// application's name and what happened.
///
/// # Errors
/// [`StoreError::NotFound`] when the user does not manage the application; other
/// [`StoreError`]s.
pub async fn set_self_rotation(
    store: &Store,
    base_url: &BaseUrl,
    (actor, user_id, by): (&Actor, Uuid, &str),
    client_id: ClientId,
    on: bool,
    now: DateTime<Utc>,
) -> Result<(String, SelfRotationChange), StoreError> {
    let render = self_rotation_emails(base_url, Some(by));
    store.set_self_rotation_as_manager((user_id, actor), client_id, on, &render, now).await
}

/// A WMDA admin forbids (`forbidden`) or allows again self-rotation of `application_id` at
/// `now` (issue 16, point 3). Forbidding turns it off; when it was on, every credential manager
/// is emailed that WMDA turned it off.
///
/// # Errors
/// [`StoreError::NotFound`] for an unknown application; other [`StoreError`]s.
pub async fn forbid_self_rotation(
    store: &Store,
    base_url: &BaseUrl,
    actor: &Actor,
    application_id: Uuid,
    forbidden: bool,
    now: DateTime<Utc>,
) -> Result<SelfRotationChange, StoreError> {
    let render = self_rotation_emails(base_url, None);
    store.forbid_self_rotation(application_id, forbidden, actor, &render, now).await
}

/// The emails about a change of self-rotation made `by` a credential manager (`None`: WMDA).
fn self_rotation_emails<'a>(
    base_url: &'a BaseUrl,
    by: Option<&'a str>,
) -> impl Fn(&SelfRotationFacts, &[(String, String)]) -> Vec<crate::domain::NewEmail> + Sync + 'a {
    move |f, people| {
        let link = base_url.join(&crate::domain::application::manage_section_path(&f.client_id));
        let facts = crate::mail::views::SelfRotationMailFacts {
            application: &f.application,
            client_id: &f.client_id,
            on: f.on,
            by: if f.by_wmda { None } else { by },
            manage_url: &link,
        };
        people.iter().map(|(email, name)| crate::mail::views::self_rotation_email(&facts, email, name)).collect()
    }
}

/// Reports each item of a leak report at `now`: a value that is not a well-formed v2 secret is
/// `false_positive` without a lookup; a well-formed one goes to [`Store::report_leak`]
/// (`delete`: `PORTAL_LEAK_ACTION=delete` and a signed report), and is `true_positive` when a
/// live secret has it. The urgent emails link to the Manage page under `base_url`. Counts
/// `leak_reports_total{label}`.
///
/// # Errors
/// [`StoreError`] when the database fails (the items before it are reported).
pub async fn report_leaks(
    store: &Store,
    items: &[ReportItem],
    (actor, signed_by, delete): (&Actor, Option<&str>, bool),
    base_url: &BaseUrl,
    now: DateTime<Utc>,
) -> Result<(Vec<ReportAnswer>, usize), StoreError> {
    let manage_url = base_url.join("/manage-api-credentials");
    let render =
        |secret: &crate::store::ExposedSecret, sighting: &LeakSighting, recipients: &crate::store::Recipients| {
            let client_id = secret.client_id.to_string();
            let facts = ExposureFacts {
                secret_name: &secret.name,
                hint: &secret.hint,
                application: &secret.application,
                client_id: &client_id,
                url: &sighting.url,
                deleted: secret.deleted,
                to_admins: recipients.to_admins,
                manage_url: &manage_url,
            };
            recipients.people.iter().map(|(email, name)| secret_exposed_email(&facts, email, name)).collect()
        };
    let mut answers = Vec::with_capacity(items.len());
    let mut emails = 0;
    // A value repeated in one report is looked up once: its first item decides its label.
    let mut seen: HashMap<String, Label> = HashMap::new();
    for item in items {
        let token = item.token.expose_secret();
        let token_hash = token_hash(token);
        let label = if let Some(label) = seen.get(&token_hash) {
            *label
        } else if Shape::of(token) == Shape::WellFormedV2 {
            let sighting = LeakSighting {
                url: item.url.clone(),
                source: item.source.clone(),
                signed_by: signed_by.map(str::to_owned),
            };
            let hash = PlainSecret::presented(token).hash();
            match store.report_leak(&hash, &sighting, (actor, delete), &render, now).await? {
                LeakOutcome::NotLive => Label::FalsePositive,
                LeakOutcome::FirstReport(_, queued) | LeakOutcome::AlreadyExposed(queued) => {
                    emails += queued;
                    Label::TruePositive
                }
            }
        } else {
            Label::FalsePositive
        };
        metrics::counter!("leak_reports_total", "label" => label.as_str()).increment(1);
        seen.insert(token_hash.clone(), label);
        answers.push(ReportAnswer { token_hash, token_type: item.token_type.clone(), label });
    }
    Ok((answers, emails))
}

// DESIGN.md section 8. The doc comment below is the OpenAPI schema's description: for partners.
/// The optional body of `POST /api/v1/self/secrets`; unknown fields are refused.
#[derive(Debug, Default, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiSecretRequest {
    /// The name, 1 to 100 characters; default `Rotated automatically on <UTC date>`.
    #[schema(example = "Build server (rotated automatically)")]
    pub name: Option<String>,
    /// The expiration date, `YYYY-MM-DD` (UTC), today to one year ahead; default the latest allowed.
    #[schema(example = "2027-12-07", format = Date)]
    pub expires_on: Option<String>,
}

/// Why a machine API write is refused (each a problem `type`, DESIGN.md section 8).
#[derive(Debug)]
pub enum ApiRefusal {
    /// A field the page would refuse too: the field and the page's message (422).
    Validation(&'static str, String),
    /// The caller has a successor it made itself: its id and hint (409).
    PendingSuccessor(Uuid, crate::domain::Hint),
    /// The application is at its secret limit (409).
    AtLimit,
    /// Self-rotation is off for the application (409); `true` when a WMDA admin forbade it.
    SelfRotationOff(bool),
    /// Two secrets through the API within 24 hours (429); retry after this many seconds.
    RateLimited(i64),
    /// The caller is no longer a live secret (401), or the database failed (503).
    Store(StoreError),
}

/// A secret the API created, with its value to show this once.
#[derive(Debug)]
pub struct ApiCreated {
    /// The stored secret.
    pub secret: ClientSecret,
    /// The value (redacted in `Debug`).
    pub value: PlainSecret,
}

fn api_emails<'a>(
    ip: &'a str,
    base_url: &'a BaseUrl,
) -> impl Fn(&crate::store::ApiWrite, &crate::store::Recipients) -> Vec<crate::domain::NewEmail> + Sync + 'a {
    move |w, recipients| {
        // The managers' link is their section of the Manage page; WMDA admins (told when the
        // application has no eligible manager) get the application's admin page.
        let link = if recipients.to_admins {
            base_url.join(&format!("/admin/applications/{}", w.application_id))
        } else {
            base_url.join(&crate::domain::application::manage_section_path(&w.client_id))
        };
        let facts = crate::mail::views::ApiWriteFacts {
            what: w.what,
            application: &w.application,
            client_id: &w.client_id,
            secret_name: &w.secret_name,
            hint: &w.hint,
            ip,
            manage_url: &link,
            to_admins: recipients.to_admins,
        };
        recipients.people.iter().map(|(email, name)| crate::mail::views::api_write_email(&facts, email, name)).collect()
    }
}

/// `POST /api/v1/self/secrets`: the caller creates its successor at `now` (DESIGN.md section
/// 8). The name and date follow the page's rules; the value is v2; the store applies the pending
/// successor, limit, self-rotation and 2-per-24-hours rules under the application's lock. The
/// application is the audit actor (client ID, `ip`); its credential managers are emailed.
///
/// # Errors
/// [`ApiRefusal`].
pub async fn api_create_secret(
    store: &Store,
    caller: super::endpoint::Caller,
    request: &ApiSecretRequest,
    (limit, base_url, ip): (i64, &BaseUrl, std::net::IpAddr),
    now: DateTime<Utc>,
) -> Result<ApiCreated, ApiRefusal> {
    let today = now.date_naive();
    let name = request.name.clone().unwrap_or_else(|| format!("Rotated automatically on {today}"));
    let name = SecretName::parse(&name).map_err(|e| ApiRefusal::Validation("name", e.to_string()))?;
    let expires = match &request.expires_on {
        Some(date) => ExpiryDate::parse(date, today),
        None => ExpiryDate::check(ExpiryDate::max_for(today), today),
    }
    .map_err(|e| ApiRefusal::Validation("expires_on", e.to_string()))?;
    let value = PlainSecret::generate();
    let new = crate::store::ApiNewSecret { name, expires, hash: value.hash(), hint: value.hint() };
    let actor = Actor { user_id: None, label: format!("application {}", caller.client_id), ip: Some(ip.to_string()) };
    let ip_text = ip.to_string();
    let render = api_emails(&ip_text, base_url);
    match store.api_create_secret((caller.application_id, caller.secret_id), &new, (&actor, limit), &render, now).await
    {
        Ok(crate::store::ApiCreate::Created(secret)) => Ok(ApiCreated { secret: *secret, value }),
        Ok(crate::store::ApiCreate::PendingSuccessor(id, hint)) => Err(ApiRefusal::PendingSuccessor(id, hint)),
        Ok(crate::store::ApiCreate::AtLimit) => Err(ApiRefusal::AtLimit),
        Ok(crate::store::ApiCreate::SelfRotationOff(forbidden)) => Err(ApiRefusal::SelfRotationOff(forbidden)),
        Ok(crate::store::ApiCreate::RateLimited(frees)) => Err(ApiRefusal::RateLimited(frees.num_seconds().max(1))),
        Err(e) => Err(ApiRefusal::Store(e)),
    }
}

/// `DELETE /api/v1/self/secrets/{id}`: deletes `target` when it is an ancestor of the caller
/// (DESIGN.md section 8); `Ok(false)` for anything else, so the answer (404) never says which.
///
/// # Errors
/// [`StoreError`].
pub async fn api_delete_secret(
    store: &Store,
    caller: super::endpoint::Caller,
    target: Uuid,
    (base_url, ip): (&BaseUrl, std::net::IpAddr),
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let actor = Actor { user_id: None, label: format!("application {}", caller.client_id), ip: Some(ip.to_string()) };
    let ip_text = ip.to_string();
    let render = api_emails(&ip_text, base_url);
    store.api_delete_ancestor((caller.application_id, caller.secret_id), target, &actor, &render, now).await
}
