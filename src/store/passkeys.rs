//! Every read and write of `passkey` (issue 19; DESIGN.md section 11), and the account changes
//! made on `/account`: a new password, new recovery codes. Each change is one transaction with
//! its audit event and the email that tells the user.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::insert_audit_event;
use super::outbox::insert_email;
use super::pool::{BeginWrite as _, on_pool};
use super::{Conflict, NewAuditEvent, Store, StoreError, unique_violation};
use crate::domain::NewEmail;

/// A stored passkey. `credential` is webauthn-rs's `Passkey` as JSON (public key, counter,
/// flags; never a private key); `sign_count` is its counter as last stored.
#[derive(Clone, sqlx::FromRow)]
pub struct StoredPasskey {
    /// The portal's id for it (in URLs).
    pub id: Uuid,
    /// Whose it is.
    pub user_id: Uuid,
    /// The name its owner gave it, 1 to 60 characters.
    pub name: String,
    /// The WebAuthn credential ID (raw bytes), unique across users.
    pub credential_id: Vec<u8>,
    /// webauthn-rs's `Passkey`, JSON.
    pub credential: String,
    /// The signature counter as stored (WebAuthn section 6.1.1); 0 for authenticators without one.
    pub sign_count: i64,
    /// Whether the authenticator said it made a discoverable credential (credProps `rk`), so
    /// it can sign in without a password.
    pub discoverable: bool,
    /// When it was registered (UTC).
    pub created_at: DateTime<Utc>,
    /// When it last signed in or confirmed a change (UTC).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for StoredPasskey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPasskey")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A passkey to store.
#[derive(Clone)]
pub struct NewPasskey<'a> {
    /// The portal's id for it.
    pub id: Uuid,
    /// Its name.
    pub name: &'a str,
    /// The credential ID.
    pub credential_id: &'a [u8],
    /// webauthn-rs's `Passkey`, JSON.
    pub credential: &'a str,
    /// Whether it is discoverable.
    pub discoverable: bool,
    /// Only as the user's first passkey (the enrolment of `PORTAL_ADMIN_MFA=passkey`).
    pub only_first: bool,
}

/// What storing a passkey found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyAdded {
    /// Stored.
    Added,
    /// Its credential ID is registered already.
    CredentialTaken,
    /// It was to be the first, and the user has one now.
    NotFirst,
}

/// What removing a passkey found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyRemoval {
    /// Removed.
    Removed,
    /// No such passkey of this user.
    NotFound,
    /// It is the user's last passkey, and the rule in force needs one.
    LastOne,
}

/// One change to an account, with its audit event and the email to its owner.
#[derive(Clone, Copy)]
pub struct AccountChange<'a> {
    /// The audit event.
    pub event: &'a NewAuditEvent,
    /// The email telling the user (DESIGN.md section 11: every change is emailed).
    pub email: &'a NewEmail,
}

/// Seconds after making recovery codes before new ones may be made.
pub const RECOVERY_CODES_AGAIN_AFTER_SECONDS: i64 = 10;

/// Takes the user's row lock for the rest of the transaction (Postgres: a row lock until commit;
/// SQLite: the write transaction holds the database anyway), so changes of one account's
/// factors that check and then write run one after the other.
const LOCK_USER: &str = "update portal_user set mfa_failures = mfa_failures where id = $1";

const RECORD_USE: &str = "update passkey set credential = $2, sign_count = $3, last_used_at = $4
     where id = $1 and (sign_count < $3 or (sign_count = 0 and $3 = 0))";

const INSERT_PASSKEY: &str =
    "insert into passkey (id, user_id, name, credential_id, credential, sign_count, discoverable, created_at)
     values ($1, $2, $3, $4, $5, 0, $6, $7) on conflict do nothing";

const PASSKEY_COLUMNS: &str =
    "id, user_id, name, credential_id, credential, sign_count, discoverable, created_at, last_used_at";

impl Store {
    /// The passkeys of a user, oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn list_passkeys(&self, user_id: Uuid) -> Result<Vec<StoredPasskey>, StoreError> {
        let sql = format!("select {PASSKEY_COLUMNS} from passkey where user_id = $1 order by created_at, id");
        Ok(on_pool!(self, |pool| sqlx::query_as(&sql).bind(user_id).fetch_all(pool).await)?)
    }

    /// The passkey of a WebAuthn credential ID, whoever's it is.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn find_passkey_by_credential(&self, credential_id: &[u8]) -> Result<Option<StoredPasskey>, StoreError> {
        let sql = format!("select {PASSKEY_COLUMNS} from passkey where credential_id = $1");
        Ok(on_pool!(self, |pool| sqlx::query_as(&sql).bind(credential_id).fetch_optional(pool).await)?)
    }

    /// Stores a new passkey of `user_id` with the change's audit event and email; not when its
    /// credential ID is registered already (to anyone: WebAuthn section 7.1, step 22), nor,
    /// with `only_first`, when the user has a passkey.
    ///
    /// # Errors
    /// [`Conflict::PasskeyNameTaken`] when the user has a passkey of this name (two registrations
    /// at once); [`StoreError`].
    pub async fn add_passkey(
        &self,
        user_id: Uuid,
        new: &NewPasskey<'_>,
        change: AccountChange<'_>,
        now: DateTime<Utc>,
    ) -> Result<PasskeyAdded, StoreError> {
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            if new.only_first {
                // The user's row first (see `remove_passkey`): of two first registrations at
                // once, the second sees the first's passkey.
                sqlx::query(LOCK_USER).bind(user_id).execute(&mut *tx).await?;
                let has: i64 = sqlx::query_scalar("select count(*) from passkey where user_id = $1")
                    .bind(user_id)
                    .fetch_one(&mut *tx)
                    .await?;
                if has > 0 {
                    return Ok(PasskeyAdded::NotFirst);
                }
            }
            let inserted = sqlx::query(INSERT_PASSKEY)
                .bind(new.id)
                .bind(user_id)
                .bind(new.name)
                .bind(new.credential_id)
                .bind(new.credential)
                .bind(new.discoverable)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if inserted != 1 {
                // Which unique key held it back: the credential ID, or else the name.
                let taken: i64 = sqlx::query_scalar("select count(*) from passkey where credential_id = $1")
                    .bind(new.credential_id)
                    .fetch_one(&mut *tx)
                    .await?;
                return if taken > 0 {
                    Ok(PasskeyAdded::CredentialTaken)
                } else {
                    Err(Conflict::PasskeyNameTaken.into())
                };
            }
            insert_audit_event!(&mut *tx, change.event)?;
            insert_email!(&mut *tx, change.email, now)?;
            tx.commit().await?;
            Ok::<_, StoreError>(PasskeyAdded::Added)
        }
        .await)
    }

    /// Marks the passkey ceremony `id` as answered at `now` (UTC), once: `Ok(false)` when it was
    /// already (a second copy of an answer, at once or later, here or at another replica).
    /// Marks older than `forget_before` are deleted on the way.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn claim_passkey_ceremony(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self, |pool| async {
            sqlx::query("delete from passkey_ceremony_used where used_at < $1")
                .bind(forget_before)
                .execute(pool)
                .await?;
            sqlx::query("insert into passkey_ceremony_used (id, used_at) values ($1, $2) on conflict do nothing")
                .bind(id)
                .bind(now)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        }
        .await)?;
        Ok(n == 1)
    }

    /// Records a use of a passkey: its new `credential` JSON, its counter `sign_count` and
    /// `last_used_at`, only if the counter moved forward from the one stored now, or both are 0
    /// (an authenticator without a counter), checked in the update itself (WebAuthn section
    /// 6.1.1: a counter not above the stored one may mean a cloned authenticator). So of two
    /// assertions with one counter value, or one checked against a counter read before another
    /// use, only one counts. `Ok(false)` when refused, or the passkey was removed.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn record_passkey_use(
        &self,
        id: Uuid,
        credential: &str,
        sign_count: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self, |pool| sqlx::query(RECORD_USE)
            .bind(id)
            .bind(credential)
            .bind(sign_count)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Renames a passkey of `user_id`; `Ok(false)` when the user has no such passkey.
    ///
    /// # Errors
    /// [`Conflict::PasskeyNameTaken`] when another of their passkeys has the name; [`StoreError`].
    pub async fn rename_passkey(
        &self,
        user_id: Uuid,
        id: Uuid,
        name: &str,
        change: AccountChange<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let n = match sqlx::query("update passkey set name = $3 where id = $1 and user_id = $2")
                .bind(id)
                .bind(user_id)
                .bind(name)
                .execute(&mut *tx)
                .await
            {
                Ok(done) => done.rows_affected(),
                Err(e) if unique_violation(&e).is_some() => return Err(Conflict::PasskeyNameTaken.into()),
                Err(e) => return Err(e.into()),
            };
            if n != 1 {
                return Ok(false);
            }
            insert_audit_event!(&mut *tx, change.event)?;
            insert_email!(&mut *tx, change.email, now)?;
            tx.commit().await?;
            Ok::<_, StoreError>(true)
        }
        .await)
    }

    /// Removes a passkey of `user_id`; with `keep_one`, only while the user has another (an
    /// admin's last passkey under `PORTAL_ADMIN_MFA=passkey`), checked in the same statement.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn remove_passkey(
        &self,
        user_id: Uuid,
        id: Uuid,
        keep_one: bool,
        change: AccountChange<'_>,
        now: DateTime<Utc>,
    ) -> Result<PasskeyRemoval, StoreError> {
        let least: i64 = if keep_one { 2 } else { 1 };
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            // The user's row is locked first (Postgres: a row lock until commit; SQLite's write
            // transaction holds the database), so two removals at once are one after the other:
            // the second counts what the first left, and a user's last passkey stays.
            sqlx::query(LOCK_USER).bind(user_id).execute(&mut *tx).await?;
            let n = sqlx::query(
                "delete from passkey where id = $1 and user_id = $2
                 and (select count(*) from passkey where user_id = $2) >= $3",
            )
            .bind(id)
            .bind(user_id)
            .bind(least)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                // `count(*)`: a bigint on Postgres, an integer on SQLite, an i64 on both.
                let exists: i64 = sqlx::query_scalar("select count(*) from passkey where id = $1 and user_id = $2")
                    .bind(id)
                    .bind(user_id)
                    .fetch_one(&mut *tx)
                    .await?;
                return Ok(if exists > 0 { PasskeyRemoval::LastOne } else { PasskeyRemoval::NotFound });
            }
            insert_audit_event!(&mut *tx, change.event)?;
            insert_email!(&mut *tx, change.email, now)?;
            tx.commit().await?;
            Ok::<_, StoreError>(PasskeyRemoval::Removed)
        }
        .await)
    }

    /// Sets a new password for `user_id` and ends every session of the account that began
    /// before `now` (ASVS 5.0 7.4.3: the caller binds its own session anew at `now`), with the
    /// change's audit event and email. Only while the stored hash is still `old_hash`, the one
    /// the current password was checked against: `Ok(false)` when it changed meanwhile.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn change_password(
        &self,
        user_id: Uuid,
        old_hash: &str,
        new_hash: &str,
        change: AccountChange<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query(
                "update portal_user set password_hash = $3, sessions_valid_after = $4
                 where id = $1 and password_hash = $2",
            )
            .bind(user_id)
            .bind(old_hash)
            .bind(new_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Ok(false);
            }
            insert_audit_event!(&mut *tx, change.event)?;
            insert_email!(&mut *tx, change.email, now)?;
            tx.commit().await?;
            Ok::<_, StoreError>(true)
        }
        .await)
    }

    /// Replaces every recovery code of `user_id` (used or not) by the new hashes, with the
    /// change's audit event and email: the old codes stop working at once.
    ///
    /// # Errors
    /// [`Conflict::RecoveryCodesJustMade`] within [`RECOVERY_CODES_AGAIN_AFTER_SECONDS`] of the
    /// last codes (a double submit would show codes that never worked); [`StoreError`].
    pub async fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        hashes: &[Vec<u8>],
        change: AccountChange<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let recent = now - chrono::Duration::seconds(RECOVERY_CODES_AGAIN_AFTER_SECONDS);
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            // The user's row first: two requests at once (a double submit) are one after the
            // other, and the second finds the first's codes just made.
            sqlx::query(LOCK_USER).bind(user_id).execute(&mut *tx).await?;
            let just_made: i64 =
                sqlx::query_scalar("select count(*) from recovery_code where user_id = $1 and created_at > $2")
                    .bind(user_id)
                    .bind(recent)
                    .fetch_one(&mut *tx)
                    .await?;
            if just_made > 0 {
                return Err(Conflict::RecoveryCodesJustMade.into());
            }
            super::auth::set_recovery_codes!(&mut *tx, user_id, hashes, now);
            insert_audit_event!(&mut *tx, change.event)?;
            insert_email!(&mut *tx, change.email, now)?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        }
        .await)
    }
}
