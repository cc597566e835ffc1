//! Sign-in data: password hashes, TOTP seeds and steps, recovery codes, one-time links.
//! Each method owns its transaction; emails and audit events are written inside it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::AuditAction;
use super::audit::insert_audit_event;
use super::outbox::insert_email;
use super::users::{USER_COLUMNS, UserRow};
use super::{Actor, BeginWrite, Conflict, NewAuditEvent, NewUser, Store, StoreError, User, on_pool};
use crate::domain::LinkPurpose;
use crate::domain::NewEmail;

/// A user with what signing in needs.
#[derive(Clone)]
pub struct Credentials {
    /// The user.
    pub user: User,
    /// argon2id PHC string; `None` until an invitation is accepted.
    pub password_hash: Option<String>,
    /// The active TOTP seed, encrypted; `None` until enrolment completes.
    pub totp_secret_enc: Option<Vec<u8>>,
    /// A seed offered at enrolment, encrypted.
    pub totp_pending_enc: Option<Vec<u8>>,
    /// Sessions authenticated before this are ended.
    pub sessions_valid_after: Option<DateTime<Utc>>,
    /// The second factor is locked until this instant (after 20 failures, issue 12).
    pub mfa_locked_until: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).finish_non_exhaustive()
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct CredentialsRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: Option<String>,
    totp_secret_enc: Option<Vec<u8>>,
    totp_pending_enc: Option<Vec<u8>>,
    sessions_valid_after: Option<DateTime<Utc>>,
    mfa_locked_until: Option<DateTime<Utc>>,
}

impl TryFrom<CredentialsRow> for Credentials {
    type Error = StoreError;
    fn try_from(r: CredentialsRow) -> Result<Self, StoreError> {
        Ok(Credentials {
            user: r.user.try_into()?,
            password_hash: r.password_hash,
            totp_secret_enc: r.totp_secret_enc,
            totp_pending_enc: r.totp_pending_enc,
            sessions_valid_after: r.sessions_valid_after,
            mfa_locked_until: r.mfa_locked_until,
        })
    }
}

pub(super) fn credentials_sql(filter: &str) -> String {
    format!(
        "select {USER_COLUMNS}, password_hash, totp_secret_enc, totp_pending_enc, sessions_valid_after,
                mfa_locked_until
         from portal_user where {filter}"
    )
}

/// A one-time link as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRecord {
    /// Row id.
    pub id: Uuid,
    /// The user it is for.
    pub user_id: Uuid,
    /// What it is for.
    pub purpose: LinkPurpose,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was used (or replaced by a newer link).
    pub used_at: Option<DateTime<Utc>>,
}

impl LinkRecord {
    /// Unused and unexpired at `now`.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.used_at.is_none() && self.expires_at > now
    }
}

/// A new one-time link to store with its email.
#[derive(Debug, Clone)]
pub struct NewLink {
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// What it is for.
    pub purpose: LinkPurpose,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

const INSERT_LINK: &str = "insert into one_time_token (id, user_id, purpose, token_hash, created_at, expires_at) values ($1, $2, $3, $4, $5, $6)";
const RETIRE_LINKS: &str =
    "update one_time_token set used_at = $3 where user_id = $1 and purpose = $2 and used_at is null";
/// Inserts a [`NewLink`] for a user through an open transaction.
macro_rules! insert_link {
    ($tx:expr, $user_id:expr, $link:expr, $now:expr) => {{
        let link: &NewLink = $link;
        sqlx::query(INSERT_LINK)
            .bind(Uuid::new_v4())
            .bind($user_id)
            .bind(link.purpose.as_str())
            .bind(link.token_hash.as_slice())
            .bind($now)
            .bind(link.expires_at)
            .execute($tx)
            .await
    }};
}

/// The audit action of a link stored for an existing user, by its purpose.
fn link_action(purpose: LinkPurpose) -> AuditAction {
    match purpose {
        LinkPurpose::Invitation => AuditAction::InvitationSent,
        LinkPurpose::PasswordReset => AuditAction::PasswordResetRequested,
        LinkPurpose::MfaReenrolment => AuditAction::UserMfaReset,
        LinkPurpose::PasskeyEnrolment => AuditAction::PasskeyLinkSent,
    }
}

/// What else storing a link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkRule {
    /// Nothing else.
    Plain,
    /// First removes the authenticator and recovery codes and ends every session.
    ResetMfa,
    /// Only if the user has fewer than `most` links of the purpose made after `since`.
    Within { most: i64, since: DateTime<Utc> },
}

/// Links of a purpose made for a user after an instant (the per-account email limits).
const RECENT_LINKS: &str =
    "select count(*) from one_time_token where user_id = $1 and purpose = $2 and created_at > $3";
/// Invitation emails per account within an hour, past which `invite_user` refuses (issue 12).
pub const INVITATIONS_PER_HOUR: i64 = 5;

const CONSUME_LINK: &str =
    "update one_time_token set used_at = $2 where id = $1 and used_at is null and expires_at > $2";

/// Replaces every recovery code of a user (used or not) by new hashes, inside the caller's
/// transaction: `set_recovery_codes!(&mut *tx, user_id, hashes, now)`; `?` on each statement.
macro_rules! set_recovery_codes {
    ($executor:expr, $user_id:expr, $hashes:expr, $now:expr) => {{
        sqlx::query("delete from recovery_code where user_id = $1").bind($user_id).execute($executor).await?;
        for hash in $hashes {
            sqlx::query("insert into recovery_code (user_id, code_hash, created_at) values ($1, $2, $3)")
                .bind($user_id)
                .bind(hash.as_slice())
                .bind($now)
                .execute($executor)
                .await?;
        }
    }};
}
pub(crate) use set_recovery_codes;

impl Store {
    /// Invites a user: creates them, or for an existing email whose account is not yet active
    /// retires the earlier invitation links; then stores the new link, queues its email and
    /// records the audit event, in one transaction. Returns the user and whether it is new.
    ///
    /// # Errors
    /// [`Conflict::AlreadyActive`] for an account that has a password and an authenticator
    /// (use password reset or an MFA reset instead); [`Conflict::HasPassword`] for one that has a
    /// password but no authenticator (its MFA re-enrolment link, or a new MFA reset, go on); [`Conflict::RoleDiffers`] when the email
    /// belongs to a user of another organisation or role; [`StoreError::NotFound`] for an
    /// unknown organisation.
    pub async fn invite_user(
        &self,
        new: &NewUser,
        link: &NewLink,
        email: &NewEmail,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(User, bool), StoreError> {
        let sql_find = credentials_sql("email = $1");
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let existing: Option<CredentialsRow> =
                sqlx::query_as(&sql_find).bind(new.email.as_str()).fetch_optional(&mut *tx).await?;
            let (user, created) = match existing {
                Some(row) => {
                    let c: Credentials = row.try_into()?;
                    if c.user.role != new.role {
                        return Err(Conflict::RoleDiffers.into());
                    }
                    if c.password_hash.is_some() && c.totp_secret_enc.is_some() {
                        return Err(Conflict::AlreadyActive.into());
                    }
                    if c.password_hash.is_some() {
                        // An invitation sets a password: once one is chosen, only the password
                        // reset (which needs the authenticator) or an MFA reset (which asks for
                        // it) go on from there (issue 12, point 2).
                        return Err(Conflict::HasPassword.into());
                    }
                    let made: i64 = sqlx::query_scalar(RECENT_LINKS)
                        .bind(c.user.id)
                        .bind(LinkPurpose::Invitation.as_str())
                        .bind(now - chrono::Duration::hours(1))
                        .fetch_one(&mut *tx)
                        .await?;
                    if made >= INVITATIONS_PER_HOUR {
                        return Err(Conflict::TooManyInvitations.into());
                    }
                    sqlx::query(RETIRE_LINKS)
                        .bind(c.user.id)
                        .bind(LinkPurpose::Invitation.as_str())
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    (c.user, false)
                }
                None => {
                    let user = super::users::new_user(new, now);
                    super::users::insert_user!(&mut *tx, &user)?;
                    (user, true)
                }
            };
            insert_link!(&mut *tx, user.id, link, now)?;
            insert_email!(&mut *tx, email, now)?;
            let event = actor
                .event(AuditAction::InvitationSent, now)
                .on_user(&user)
                .with_details(serde_json::json!({ "email": user.email.as_str(), "new_user": created }));
            insert_audit_event!(&mut *tx, &event)?;
            tx.commit().await?;
            Ok::<_, StoreError>((user, created))
        }
        .await)
    }

    /// Stores a new link of `link.purpose` for an existing user (password reset, MFA
    /// re-enrolment), retiring earlier unused links of that purpose, queues its email and records
    /// `action` in the audit log, in one transaction.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn issue_link(
        &self,
        user: &User,
        link: &NewLink,
        email: &NewEmail,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let event = actor.event(link_action(link.purpose), now).on_user(user);
        self.store_link(user, link, email, &event, now, LinkRule::Plain).await.map(|_| ())
    }

    /// [`Store::issue_link`] unless the user already has `limit.0` links of this purpose made
    /// after `limit.1` (counted in the same transaction, so replicas share the limit); returns
    /// whether the link was stored and its email queued.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn issue_link_within(
        &self,
        user: &User,
        link: &NewLink,
        email: &NewEmail,
        actor: &Actor,
        now: DateTime<Utc>,
        limit: Option<(i64, DateTime<Utc>)>,
    ) -> Result<bool, StoreError> {
        let rule = limit.map_or(LinkRule::Plain, |(most, since)| LinkRule::Within { most, since });
        let event = actor.event(link_action(link.purpose), now).on_user(user);
        self.store_link(user, link, email, &event, now, rule).await
    }

    /// Ends a user's MFA: removes the authenticator and recovery codes, ends every session, and
    /// issues a re-enrolment link with its email, in one transaction.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn reset_mfa(
        &self,
        user: &User,
        link: &NewLink,
        email: &NewEmail,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let event = actor.event(AuditAction::UserMfaReset, now).on_user(user);
        self.store_link(user, link, email, &event, now, LinkRule::ResetMfa).await.map(|_| ())
    }

    /// Retires the user's unused links of `link.purpose`, stores `link`, queues `email` and
    /// records `event`, in one transaction, after what `rule` says ([`LinkRule`]); `Ok(false)`
    /// when the rule's limit held it back.
    async fn store_link(
        &self,
        user: &User,
        link: &NewLink,
        email: &NewEmail,
        event: &NewAuditEvent,
        now: DateTime<Utc>,
        rule: LinkRule,
    ) -> Result<bool, StoreError> {
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            if let LinkRule::Within { most, since } = rule {
                let made: i64 = sqlx::query_scalar(RECENT_LINKS)
                    .bind(user.id)
                    .bind(link.purpose.as_str())
                    .bind(since)
                    .fetch_one(&mut *tx)
                    .await?;
                if made >= most {
                    return Ok(false);
                }
            }
            if rule == LinkRule::ResetMfa {
                sqlx::query(
                    "update portal_user set totp_secret_enc = null, totp_pending_enc = null, totp_last_step = null,
                     mfa_enrolled_at = null, sessions_valid_after = $2, mfa_failures = 0, mfa_locked_until = null
                     where id = $1",
                )
                .bind(user.id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query("delete from recovery_code where user_id = $1").bind(user.id).execute(&mut *tx).await?;
                // Every second factor goes: passkeys too (issue 19), so the new enrolment starts clean.
                sqlx::query("delete from passkey where user_id = $1").bind(user.id).execute(&mut *tx).await?;
                // A password-reset link from before stays dead after re-enrolment too.
                sqlx::query(RETIRE_LINKS)
                    .bind(user.id)
                    .bind(LinkPurpose::PasswordReset.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(RETIRE_LINKS).bind(user.id).bind(link.purpose.as_str()).bind(now).execute(&mut *tx).await?;
            insert_link!(&mut *tx, user.id, link, now)?;
            insert_email!(&mut *tx, email, now)?;
            insert_audit_event!(&mut *tx, event)?;
            tx.commit().await?;
            Ok::<_, StoreError>(true)
        }
        .await)
    }

    /// A link by the hash of its token, used or not.
    ///
    /// # Errors
    /// [`StoreError`]; `Ok(None)` for an unknown token.
    pub async fn find_link(&self, token_hash: &[u8]) -> Result<Option<LinkRecord>, StoreError> {
        type LinkRow = (Uuid, Uuid, String, DateTime<Utc>, Option<DateTime<Utc>>);
        let row: Option<LinkRow> = on_pool!(self, |pool| {
            sqlx::query_as("select id, user_id, purpose, expires_at, used_at from one_time_token where token_hash = $1")
                .bind(token_hash)
                .fetch_optional(pool)
                .await
        })?;
        row.map(|(id, user_id, purpose, expires_at, used_at)| {
            Ok(LinkRecord {
                id,
                user_id,
                purpose: LinkPurpose::parse(&purpose).ok_or(StoreError::Corrupt("one_time_token.purpose"))?,
                expires_at,
                used_at,
            })
        })
        .transpose()
    }

    /// Uses an invitation link: marks it used (only if still usable) and sets the password, in
    /// one transaction. `Ok(false)` when the link was used or expired meanwhile.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn accept_invitation(
        &self,
        link: &LinkRecord,
        password_hash: &str,
        (user, actor): (&User, &Actor),
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let event = actor.event(AuditAction::InvitationAccepted, now).on_user(user);
        self.use_link(link, Some(password_hash), &event, now).await
    }

    /// Uses an MFA re-enrolment link (after the caller verified the current password).
    /// `Ok(false)` when the link was used or expired meanwhile.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn accept_reenrolment(
        &self,
        link: &LinkRecord,
        (user, actor): (&User, &Actor),
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let event = actor.event(AuditAction::MfaReenrolmentStarted, now).on_user(user);
        self.use_link(link, None, &event, now).await
    }

    /// Uses a passkey enrolment link (issue 19), with the audit event
    /// `passkey.enrolment_started`; `Ok(false)` when it was used or expired meanwhile.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn accept_passkey_link(
        &self,
        link: &LinkRecord,
        (user, actor): (&User, &Actor),
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let event = actor.event(AuditAction::PasskeyEnrolmentStarted, now).on_user(user);
        self.use_link(link, None, &event, now).await
    }

    /// The enabled WMDA admins with a password and an authenticator but no passkey, and no
    /// unused, unexpired passkey enrolment link at `now`: whom turning `PORTAL_ADMIN_MFA=passkey`
    /// on sends one (issue 19).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn admins_needing_passkey_link(&self, now: DateTime<Utc>) -> Result<Vec<User>, StoreError> {
        let sql = format!(
            "select {USER_COLUMNS} from portal_user u
             where u.is_wmda_admin and u.disabled_at is null and u.password_hash is not null
               and u.totp_secret_enc is not null
               and not exists (select 1 from passkey p where p.user_id = u.id)
               and not exists (select 1 from one_time_token t where t.user_id = u.id
                               and t.purpose = 'passkey_enrolment' and t.used_at is null and t.expires_at > $1)
             order by u.email"
        );
        let rows: Vec<UserRow> = on_pool!(self, |pool| sqlx::query_as(&sql).bind(now).fetch_all(pool).await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Uses a password-reset link: sets the new password and ends every session of the user.
    /// `Ok(false)` when the link was used or expired meanwhile.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn reset_password(
        &self,
        link: &LinkRecord,
        password_hash: &str,
        (user, actor): (&User, &Actor),
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let event = actor.event(AuditAction::PasswordReset, now).on_user(user);
        self.use_link(link, Some(password_hash), &event, now).await
    }

    async fn use_link(
        &self,
        link: &LinkRecord,
        password_hash: Option<&str>,
        event: &NewAuditEvent,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let used = sqlx::query(CONSUME_LINK).bind(link.id).bind(now).execute(&mut *tx).await?.rows_affected();
            if used != 1 {
                return Ok(false);
            }
            if let Some(hash) = password_hash {
                // A new password ends every session (ASVS 5.0 7.4.3).
                sqlx::query("update portal_user set password_hash = $2, sessions_valid_after = $3 where id = $1")
                    .bind(link.user_id)
                    .bind(hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            insert_audit_event!(&mut *tx, event)?;
            tx.commit().await?;
            Ok::<_, StoreError>(true)
        }
        .await)
    }

    /// Keeps a seed offered at enrolment (encrypted) until a code confirms it.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn set_pending_totp(&self, user_id: Uuid, seed_enc: &[u8]) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "update portal_user set totp_pending_enc = $2 where id = $1 and totp_secret_enc is null"
        )
        .bind(user_id)
        .bind(seed_enc)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Completes enrolment: the pending seed becomes the active one, the confirming code's step
    /// is stored as used, the recovery codes are replaced and every other session of the account
    /// ends (`sessions_valid_after = now`; the caller's new session begins at `now`), in one
    /// transaction. `Ok(false)` when there was no pending seed or an authenticator is already
    /// active (enrolment never replaces one, issue 12 point 2).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn complete_totp_enrolment(
        &self,
        (user, actor): (&User, &Actor),
        step: i64,
        recovery_code_hashes: &[Vec<u8>],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let user_id = user.id;
        let event = &actor.event(AuditAction::MfaEnrolled, now).on_user(user);
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let done = sqlx::query(
                "update portal_user set totp_secret_enc = totp_pending_enc, totp_pending_enc = null,
                 totp_last_step = $2, mfa_enrolled_at = $3, sessions_valid_after = $3, mfa_failures = 0
                 where id = $1 and totp_pending_enc is not null and totp_secret_enc is null",
            )
            .bind(user_id)
            .bind(step)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done != 1 {
                return Ok(false);
            }
            set_recovery_codes!(&mut *tx, user_id, recovery_code_hashes, now);
            insert_audit_event!(&mut *tx, event)?;
            tx.commit().await?;
            Ok::<_, StoreError>(true)
        }
        .await)
    }

    /// Accepts a TOTP time step if it is later than the last accepted one, atomically: a code is
    /// accepted once, across restarts and between concurrent requests (RFC 6238 5.2).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn accept_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool, StoreError> {
        let n = on_pool!(self, |pool| sqlx::query(
            "update portal_user set totp_last_step = $2, mfa_failures = 0
             where id = $1 and totp_secret_enc is not null and (totp_last_step is null or totp_last_step < $2)"
        )
        .bind(user_id)
        .bind(step)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Uses a recovery code if it is the user's and unused, atomically.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn use_recovery_code(
        &self,
        user_id: Uuid,
        code_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query(
                "update recovery_code set used_at = $3 where user_id = $1 and code_hash = $2 and used_at is null",
            )
            .bind(user_id)
            .bind(code_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                sqlx::query("update portal_user set mfa_failures = 0 where id = $1 and mfa_failures <> 0")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            Ok::<_, sqlx::Error>(n)
        }
        .await)?;
        Ok(n == 1)
    }

    /// Counts a second-factor failure of the account (a wrong or replayed TOTP code, a wrong
    /// recovery code, at sign-in or enrolment), from any address, atomically. The `limit`th in a row
    /// (20, `auth::stage::SECOND_FACTOR_FAILURES_BEFORE_LOCK`) locks the second factor until
    /// `lock_until`, sets the count back to 0, and queues `lock_email` and records `lock_event` in
    /// the same transaction, so the email goes out once per lock. Returns the count after this
    /// failure and the lock's end when it locked now.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user.
    pub async fn record_second_factor_failure(
        &self,
        (user, actor): (&User, &Actor),
        limit: u32,
        lock_until: DateTime<Utc>,
        lock_email: &NewEmail,
        now: DateTime<Utc>,
    ) -> Result<(u32, Option<DateTime<Utc>>), StoreError> {
        let user_id = user.id;
        let lock_event = &actor
            .event(AuditAction::MfaLocked, now)
            .on_user(user)
            .with_details(serde_json::json!({ "locked_until": lock_until.to_rfc3339() }));
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            // `integer`: int4 on Postgres.
            let row: Option<(i32, Option<DateTime<Utc>>)> = sqlx::query_as(
                "update portal_user set
                   mfa_failures = case when mfa_failures + 1 >= $2 then 0 else mfa_failures + 1 end,
                   mfa_locked_until = case when mfa_failures + 1 >= $2 then $3 else mfa_locked_until end
                 where id = $1
                 returning mfa_failures, mfa_locked_until",
            )
            .bind(user_id)
            .bind(limit)
            .bind(lock_until)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((count, locked_until)) = row else { return Err(StoreError::NotFound) };
            // Every other failure leaves a count of at least 1 (and the stored instant may be
            // rounded to microseconds, so it is not compared).
            let locked_now = count == 0 && locked_until.is_some();
            if locked_now {
                insert_email!(&mut *tx, lock_email, now)?;
                insert_audit_event!(&mut *tx, lock_event)?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>((u32::try_from(count).unwrap_or(0), locked_now.then_some(lock_until)))
        }
        .await)
    }

    /// How many unused recovery codes a user has left.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn unused_recovery_codes(&self, user_id: Uuid) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "select count(*) from recovery_code where user_id = $1 and used_at is null"
        )
        .bind(user_id)
        .fetch_one(pool)
        .await)?)
    }
}
