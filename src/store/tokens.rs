//! The token endpoint's one query, and the signing keys.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{BeginWrite, Store, StoreError, on_pool, unique_violation};
use crate::domain::throttle::ThrottleKey;
use crate::domain::{ClientId, ResourceId, SecretHash};

/// What the token endpoint needs of a secret found by its hash.
#[derive(Debug, Clone)]
pub struct TokenClient {
    /// The secret.
    pub secret_id: Uuid,
    /// Its application.
    pub application_id: Uuid,
    /// Its application's client ID.
    pub client_id: ClientId,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// The application's resources with their audiences.
    pub resources: Vec<(ResourceId, String)>,
    /// A leak report found it in public (the token endpoint still accepts it; the machine API
    /// does not, DESIGN.md section 8).
    pub exposed: bool,
}

/// What the token endpoint's one query finds: the secret's client, if the secret is known, and
/// the end of the (client ID, address) block, if there is one.
#[derive(Debug, Clone)]
pub struct TokenLookup {
    /// The secret's client.
    pub client: Option<TokenClient>,
    /// The shared throttle's block, after the instant asked about.
    pub blocked_until: Option<DateTime<Utc>>,
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
    /// application's resources, and the end of the block of `block_key` in the `token` throttle
    /// scope if it is blocked at `now`: one query (one row per resource), the block riding on it
    /// as a join on its primary key (issue 12: the success path gains no query).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn token_client(
        &self,
        hash: &SecretHash,
        block_key: &ThrottleKey,
        now: DateTime<Utc>,
    ) -> Result<TokenLookup, StoreError> {
        type Row = (
            Option<DateTime<Utc>>,
            Option<Uuid>,
            Option<Uuid>,
            Option<DateTime<Utc>>,
            Option<String>,
            Option<String>,
            Option<DateTime<Utc>>,
            Option<Uuid>,
        );
        let rows: Vec<Row> = on_pool!(self, |pool| {
            sqlx::query_as(
            "select b.blocked_until, x.secret_id, x.client_id, x.expires_at, x.resource_id, x.audience, x.exposed_at, x.application_id
             from (select 1 as one) o
             left join throttle_window b
               on b.scope = 'token' and b.throttle_key = $2 and b.blocked_until > $3
             left join (
               select s.id as secret_id, a.client_id, s.expires_at, r.id as resource_id, r.audience, s.exposed_at, a.id as application_id
               from client_secret s
               join application a on a.id = s.application_id
               join application_resource ar on ar.application_id = a.id
               join resource r on r.id = ar.resource_id
               where s.secret_hash = $1 and s.deleted_at is null
             ) x on 1 = 1"
        )
        .bind(hash.as_bytes().as_slice())
        .bind(block_key.as_bytes().as_slice())
        .bind(now)
        .fetch_all(pool)
        .await
        })?;
        let blocked_until = rows.first().and_then(|r| r.0);
        let first = rows.first().and_then(|(_, secret_id, client_id, expires_at, _, _, exposed_at, application_id)| {
            Some(((*secret_id)?, (*client_id)?, (*expires_at)?, exposed_at.is_some(), (*application_id)?))
        });
        let client = first.map(|(secret_id, client_id, expires_at, exposed, application_id)| {
            let mut resources: Vec<(ResourceId, String)> = rows
                .into_iter()
                .filter_map(|(_, _, _, _, id, audience, _, _)| ResourceId::parse(&id?).ok().zip(audience))
                .collect();
            resources.sort();
            TokenClient {
                secret_id,
                application_id,
                client_id: ClientId::from_uuid(client_id),
                expires_at,
                resources,
                exposed,
            }
        });
        Ok(TokenLookup { client, blocked_until })
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
