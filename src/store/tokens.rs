//! The token endpoint's one query, and the signing keys.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{BeginWrite, Store, StoreError, on_pool, unique_violation};
use crate::domain::{ClientId, ResourceId, SecretHash};

/// What the token endpoint needs of a secret found by its hash.
#[derive(Debug, Clone)]
pub struct TokenClient {
    /// The secret.
    pub secret_id: Uuid,
    /// Its application's client ID.
    pub client_id: ClientId,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// The application's resources with their audiences.
    pub resources: Vec<(ResourceId, String)>,
}

/// A stored key's schedule: kid, encrypted PKCS#8, signs from, retires at.
pub type ScheduledKeyRow = (String, Vec<u8>, DateTime<Utc>, Option<DateTime<Utc>>);

/// A signing key to store.
#[derive(Debug, Clone)]
pub struct NewSigningKey {
    /// Key id.
    pub kid: String,
    /// PKCS#8, encrypted with the master key.
    pub private_key_enc: Vec<u8>,
    /// The public JWK as JSON.
    pub public_jwk: String,
    /// Creation.
    pub created_at: DateTime<Utc>,
}

const INSERT_KEY: &str =
    "insert into signing_key (kid, private_key_enc, public_jwk, created_at) values ($1, $2, $3, $4)";

impl Store {
    /// The undeleted secret with this SHA-256, its client ID, expiry instant and the
    /// application's resources: one indexed query (one row per resource).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn token_client(&self, hash: &SecretHash) -> Result<Option<TokenClient>, StoreError> {
        let rows: Vec<(Uuid, Uuid, DateTime<Utc>, String, String)> = on_pool!(self, |pool| sqlx::query_as(
            "select s.id, a.client_id, s.expires_at, r.id, r.audience
             from client_secret s
             join application a on a.id = s.application_id
             join application_resource ar on ar.application_id = a.id
             join resource r on r.id = ar.resource_id
             where s.secret_hash = $1 and s.deleted_at is null"
        )
        .bind(hash.as_bytes().as_slice())
        .fetch_all(pool)
        .await)?;
        let Some((secret_id, client_id, expires_at, _, _)) = rows.first().cloned() else { return Ok(None) };
        let mut resources: Vec<(ResourceId, String)> = rows
            .into_iter()
            .filter_map(|(_, _, _, id, audience)| ResourceId::parse(&id).ok().map(|r| (r, audience)))
            .collect();
        resources.sort();
        Ok(Some(TokenClient { secret_id, client_id: ClientId::from_uuid(client_id), expires_at, resources }))
    }

    /// The active signing key: (kid, encrypted PKCS#8).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn active_signing_key(&self) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "select kid, private_key_enc from signing_key where retired_at is null"
        )
        .fetch_optional(pool)
        .await)?)
    }

    /// Stores the first signing key unless another process stored one first (the unique index
    /// on the active key decides).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn insert_first_signing_key(&self, key: &NewSigningKey) -> Result<(), StoreError> {
        let inserted = on_pool!(self, |pool| sqlx::query(INSERT_KEY)
            .bind(&key.kid)
            .bind(key.private_key_enc.as_slice())
            .bind(&key.public_jwk)
            .bind(key.created_at)
            .execute(pool)
            .await
            .map(|_| ()));
        match inserted {
            Ok(()) => Ok(()),
            Err(e) if unique_violation(&e).is_some() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Schedules a rotation, in one transaction: the key that is not yet retired retires at
    /// `active_from`, and `key` signs from `active_from` on (stored now, so it is published at
    /// once). Returns the kid of the key it retires.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn rotate_signing_key(
        &self,
        key: &NewSigningKey,
        active_from: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let retired: Option<String> =
                sqlx::query_scalar("update signing_key set retired_at = $1 where retired_at is null returning kid")
                    .bind(active_from)
                    .fetch_optional(&mut *tx)
                    .await?;
            sqlx::query(
                "insert into signing_key (kid, private_key_enc, public_jwk, created_at, active_from)
                 values ($1, $2, $3, $4, $5)",
            )
            .bind(&key.kid)
            .bind(key.private_key_enc.as_slice())
            .bind(&key.public_jwk)
            .bind(key.created_at)
            .bind(active_from)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(retired)
        }
        .await)
    }

    /// The keys a replica may sign with at `now` or later: those not retired by `now`, each with
    /// (kid, encrypted PKCS#8, signs from, retires at).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn signing_key_schedule(&self, now: DateTime<Utc>) -> Result<Vec<ScheduledKeyRow>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "select kid, private_key_enc, coalesce(active_from, created_at), retired_at from signing_key
             where retired_at is null or retired_at > $1 order by coalesce(active_from, created_at)"
        )
        .bind(now)
        .fetch_all(pool)
        .await)?)
    }

    /// The public JWKs to publish: every key stored (a scheduled one before it signs), except
    /// those retired before `retired_since`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn published_signing_keys(&self, retired_since: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "select public_jwk from signing_key where retired_at is null or retired_at > $1 order by created_at desc"
        )
        .bind(retired_since)
        .fetch_all(pool)
        .await)?)
    }
}
