//! Creating and deleting client secrets: one call each, for the credential manager's pages (and
//! the coming JSON API). Creation checks the name and the expiration date (one year at most),
//! generates the value (shown once; afterwards only its 3-character hint), and stores its hash
//! within the secret limit under the application's lock, with the audit event `secret.created`;
//! deletion tombstones it (refused by the token endpoint from the next request on) with
//! `secret.deleted`. Authorisation is the store's: only an application the user manages is
//! found (DESIGN.md section 3).

use chrono::{DateTime, Utc};
use uuid::Uuid;

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
    let new = NewSecret { name, expires, hash: value.hash(), hint: value.hint(), form_id };
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
