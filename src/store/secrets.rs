//! Client secrets: metadata, hash, tombstone.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{Store, StoreError, on_pool};
use crate::domain::SecretHash;
use crate::domain::secret::expiry_instant;

/// A client secret's metadata as stored; the value itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSecret {
    /// Internal id.
    pub id: Uuid,
    /// The application it authenticates.
    pub application_id: Uuid,
    /// The name its creator gave it.
    pub name: String,
    /// The value's first three characters.
    pub hint: String,
    /// Expiration date D (UTC); the secret works up to and including D.
    pub expires_on: NaiveDate,
    /// D+1 00:00:00Z, when it stops working.
    pub expires_at: DateTime<Utc>,
    /// Who created it; `None` for seeded secrets (shown as "WMDA").
    pub created_by: Option<Uuid>,
    /// When it was created (UTC).
    pub created_at: DateTime<Utc>,
    /// First successful use at the token endpoint.
    pub first_used_at: Option<DateTime<Utc>>,
    /// Latest successful use at the token endpoint.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was deleted (a tombstone), if it was.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A secret to store as it is, past dates included: the demo loader and imports use this; the
/// credential manager's create path checks the rules and the limit instead.
#[derive(Debug, Clone)]
pub struct SeedSecret {
    /// The application.
    pub application_id: Uuid,
    /// The name (a checked [`crate::domain::SecretName`] as text).
    pub name: String,
    /// The value's first three characters.
    pub hint: String,
    /// SHA-256 of the value.
    pub hash: SecretHash,
    /// Expiration date D, in the past or the future.
    pub expires_on: NaiveDate,
    /// Creator; `None` shows as "WMDA".
    pub created_by: Option<Uuid>,
    /// Creation instant, in the past or now.
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(super) struct SecretRow {
    id: Uuid,
    application_id: Uuid,
    name: String,
    hint: String,
    expires_on: NaiveDate,
    expires_at: DateTime<Utc>,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
    first_used_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
}

impl From<SecretRow> for ClientSecret {
    fn from(r: SecretRow) -> Self {
        ClientSecret {
            id: r.id,
            application_id: r.application_id,
            name: r.name,
            hint: r.hint,
            expires_on: r.expires_on,
            expires_at: r.expires_at,
            created_by: r.created_by,
            created_at: r.created_at,
            first_used_at: r.first_used_at,
            last_used_at: r.last_used_at,
            deleted_at: r.deleted_at,
        }
    }
}

impl Store {
    /// Stores a secret without the create path's checks (limit, date window), for seeding.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown application; [`StoreError::Database`] when the
    /// schema refuses it (a hash already stored, a name or hint of the wrong shape).
    pub async fn seed_client_secret(&self, seed: &SeedSecret) -> Result<Uuid, StoreError> {
        let id = Uuid::new_v4();
        let inserted = on_pool!(self, |pool| {
            sqlx::query(
            "insert into client_secret (id, application_id, name, hint, secret_hash, expires_on, expires_at, created_by, created_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )
        .bind(id)
        .bind(seed.application_id)
        .bind(&seed.name)
        .bind(&seed.hint)
        .bind(seed.hash.as_bytes().as_slice())
        .bind(seed.expires_on)
        .bind(expiry_instant(seed.expires_on))
        .bind(seed.created_by)
        .bind(seed.created_at)
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
        });
        match inserted {
            Ok(_) => Ok(id),
            Err(e) if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) => Err(StoreError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// The secrets of an application, deleted ones included, newest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn list_client_secrets(&self, application_id: Uuid) -> Result<Vec<ClientSecret>, StoreError> {
        let rows: Vec<SecretRow> = on_pool!(self, |pool| {
            sqlx::query_as(
                "select id, application_id, name, hint, expires_on, expires_at, created_by, created_at,
                    first_used_at, last_used_at, deleted_at
             from client_secret where application_id = $1 order by created_at desc, id",
            )
            .bind(application_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Records a successful use of a secret at `at`: sets `first_used_at` once and moves
    /// `last_used_at` forward (never back, so late or reordered writes do no harm).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn record_secret_use(&self, secret_id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "update client_secret set
                first_used_at = case when first_used_at is null or first_used_at > $2 then $2 else first_used_at end,
                last_used_at = case when last_used_at is null or last_used_at < $2 then $2 else last_used_at end
             where id = $1"
        )
        .bind(secret_id)
        .bind(at)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }
}
