//! Portal users and credential-manager grants: every user lookup (by id, by email, with the
//! sign-in data, the admin list) is here.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::AuditAction;
use super::auth::{CredentialsRow, credentials_sql};
use super::{Conflict, Credentials, Store, StoreError, on_pool};
use crate::domain::EmailAddress;

/// What a user is: WMDA staff (a WMDA admin, no organisation) or a member of one partner
/// organisation, who may hold the credential-manager role per application (DESIGN.md section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserRole {
    /// WMDA staff.
    WmdaAdmin,
    /// A member of this organisation.
    Member(Uuid),
}

/// A portal user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Internal id.
    pub id: Uuid,
    /// Normalised email, unique.
    pub email: EmailAddress,
    /// Name shown to others.
    pub display_name: String,
    /// WMDA admin or organisation member.
    pub role: UserRole,
    /// When an admin disabled the account, if they did.
    pub disabled_at: Option<DateTime<Utc>>,
    /// When the user was created (UTC).
    pub created_at: DateTime<Utc>,
}

impl User {
    /// The name to show: the display name, or the email when the user has none
    /// ([`shown_name`]).
    pub fn shown_name(&self) -> &str {
        shown_name(&self.display_name, self.email.as_str())
    }
}

/// The name to show for a user with `display_name` and `email`: the display name, or the email
/// when it is blank (an admin may invite without a name; issue 14, point 4: never a blank).
pub fn shown_name<'a>(display_name: &'a str, email: &'a str) -> &'a str {
    if display_name.trim().is_empty() { email } else { display_name }
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Normalised email.
    pub email: EmailAddress,
    /// Name shown to others (may be empty; the email is shown then).
    pub display_name: String,
    /// WMDA admin or organisation member.
    pub role: UserRole,
}

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: Uuid,
    email: String,
    display_name: String,
    organisation_id: Option<Uuid>,
    disabled_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

pub(super) const USER_COLUMNS: &str = "id, email, display_name, organisation_id, disabled_at, created_at";

/// The insert statement of a user.
pub(super) const INSERT_USER: &str =
    "insert into portal_user (id, email, display_name, organisation_id, is_wmda_admin, created_at)
     values ($1, $2, $3, $4, $5, $6)";

/// The user a [`NewUser`] becomes, with a fresh id.
pub(super) fn new_user(new: &NewUser, now: DateTime<Utc>) -> User {
    User {
        id: Uuid::new_v4(),
        email: new.email.clone(),
        display_name: new.display_name.trim().to_owned(),
        role: new.role,
        disabled_at: None,
        created_at: now,
    }
}

/// The store's answer to a failed user insert.
pub(super) fn insert_user_error(e: sqlx::Error) -> StoreError {
    if super::unique_violation(&e).is_some() {
        Conflict::EmailTaken.into()
    } else if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) {
        StoreError::NotFound
    } else {
        e.into()
    }
}

/// Inserts a [`User`] through an executor (a pool or an open transaction). A macro rather than a
/// generic function: the same text must compile against both backends' executors, and a generic
/// one's future cannot be shown to be `Send` to axum.
macro_rules! insert_user {
    ($executor:expr, $user:expr) => {{
        let user: &$crate::store::User = $user;
        let organisation_id = match user.role {
            $crate::store::UserRole::WmdaAdmin => None,
            $crate::store::UserRole::Member(org) => Some(org),
        };
        sqlx::query($crate::store::users::INSERT_USER)
            .bind(user.id)
            .bind(user.email.as_str())
            .bind(user.display_name.as_str())
            .bind(organisation_id)
            .bind(organisation_id.is_none())
            .bind(user.created_at)
            .execute($executor)
            .await
            .map(|_| ())
            .map_err($crate::store::users::insert_user_error)
    }};
}
pub(super) use insert_user;

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: r.id,
            email: EmailAddress::parse(&r.email).map_err(|_| StoreError::Corrupt("portal_user.email"))?,
            display_name: r.display_name,
            role: r.organisation_id.map_or(UserRole::WmdaAdmin, UserRole::Member),
            disabled_at: r.disabled_at,
            created_at: r.created_at,
        })
    }
}

/// Where a user stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    /// Invited; no password and authenticator yet (or after an MFA reset).
    Invited,
    /// Signs in with password and TOTP.
    Active,
    /// Disabled by an admin.
    Disabled,
}

impl UserStatus {
    /// `invited`, `active` or `disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Invited => "invited",
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
        }
    }

    /// Parses [`UserStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invited" => Some(UserStatus::Invited),
            "active" => Some(UserStatus::Active),
            "disabled" => Some(UserStatus::Disabled),
            _ => None,
        }
    }
}

/// A user as the admin list shows them.
#[derive(Debug, Clone)]
pub struct UserSummary {
    /// The user.
    pub user: User,
    /// Their status.
    pub status: UserStatus,
    /// `<CC>-<code>` of their organisation; `None` for WMDA admins.
    pub organisation: Option<String>,
    /// How many applications they manage.
    pub grants: i64,
    /// They have chosen a password (an invitation can then not be resent).
    pub has_password: bool,
    /// Their second factors (issue 19, point 4: the admin users page shows them).
    pub factors: Factors,
}

/// A user's second factors, as the admin users page shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Factors {
    /// An authenticator app (TOTP) is set up.
    pub totp: bool,
    /// How many passkeys.
    pub passkeys: i64,
    /// How many unused recovery codes.
    pub recovery_codes: i64,
}

/// Filters of the user list; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Only this organisation.
    pub organisation_id: Option<Uuid>,
    /// `Some(true)`: WMDA admins only; `Some(false)`: organisation members only.
    pub wmda_admin: Option<bool>,
    /// Only this status.
    pub status: Option<UserStatus>,
}

#[derive(sqlx::FromRow)]
struct UserSummaryRow {
    #[sqlx(flatten)]
    user: UserRow,
    has_password: bool,
    enrolled: bool,
    country_code: Option<String>,
    code: Option<String>,
    grants: i64,
    passkeys: i64,
    recovery_codes: i64,
}

/// The credential managers of application `$1` who can receive mail about it, as (email,
/// display name) by email: enabled and enrolled. Reminders and the admin's deletion notice use it.
pub(super) const ELIGIBLE_MANAGERS: &str =
    "select u.email, u.display_name from credential_manager_grant g join portal_user u on u.id = g.user_id
     where g.application_id = $1 and u.disabled_at is null and u.totp_secret_enc is not null order by u.email";

/// [`ELIGIBLE_MANAGERS`] but the user `$2` (who made the change the email is about).
pub(super) const OTHER_ELIGIBLE_MANAGERS: &str =
    "select u.email, u.display_name from credential_manager_grant g join portal_user u on u.id = g.user_id
     where g.application_id = $1 and u.id <> $2 and u.disabled_at is null and u.totp_secret_enc is not null order by u.email";

impl Store {
    /// Creates a user.
    ///
    /// # Errors
    /// [`Conflict::EmailTaken`]; [`StoreError::NotFound`] for an unknown organisation.
    pub async fn create_user(&self, new: &NewUser, now: DateTime<Utc>) -> Result<User, StoreError> {
        let user = new_user(new, now);
        on_pool!(self, |pool| insert_user!(pool, &user))?;
        Ok(user)
    }

    /// Finds a user by normalised email.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    pub async fn find_user_by_email(&self, email: &EmailAddress) -> Result<User, StoreError> {
        let row: Option<UserRow> = on_pool!(self, |pool| {
            sqlx::query_as(
            "select id, email, display_name, organisation_id, disabled_at, created_at from portal_user where email = $1"
        )
        .bind(email.as_str())
        .fetch_optional(pool)
        .await
        })?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Grants the credential-manager role on an application to a user of the application's
    /// organisation. Granting a role the user already holds changes nothing.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user or application;
    /// [`Conflict::GrantOutsideOrganisation`] for a WMDA admin or a user of another organisation.
    pub async fn grant_credential_manager(
        &self,
        user_id: Uuid,
        application_id: Uuid,
        actor: &super::Actor,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        use super::BeginWrite as _;
        let mut event = actor.event(AuditAction::GrantAdded, now);
        event.target_type = Some("user");
        event.target_id = Some(user_id.to_string());
        let affected = on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            // Insert only when both exist and share the organisation; the composite foreign keys
            // hold the same rule as a backstop.
            let done = sqlx::query(
                "insert into credential_manager_grant (user_id, application_id, organisation_id, granted_at, granted_by)
                 select u.id, a.id, a.organisation_id, $3, $4
                 from portal_user u join application a on a.organisation_id = u.organisation_id
                 where u.id = $1 and a.id = $2
                 on conflict (user_id, application_id) do nothing",
            )
            .bind(user_id)
            .bind(application_id)
            .bind(now)
            .bind(actor.user_id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                let (organisation_id, name): (Uuid, String) =
                    sqlx::query_as("select organisation_id, name from application where id = $1")
                        .bind(application_id)
                        .fetch_one(&mut *tx)
                        .await?;
                event.organisation_id = Some(organisation_id);
                event.application_id = Some(application_id);
                event.details = serde_json::json!({ "application": name });
                super::audit::insert_audit_event!(&mut *tx, &event)?;
                tx.commit().await?;
                return Ok::<_, sqlx::Error>(1);
            }
            // Tell "already granted" from "not allowed" from "no such row".
            let (users, apps, grants): (i64, i64, i64) = sqlx::query_as(
                "select (select count(*) from portal_user where id = $1),
                        (select count(*) from application where id = $2),
                        (select count(*) from credential_manager_grant where user_id = $1 and application_id = $2)",
            )
            .bind(user_id)
            .bind(application_id)
            .fetch_one(&mut *tx)
            .await?;
            Ok(if grants == 1 {
                1
            } else if users == 1 && apps == 1 {
                -1
            } else {
                0
            })
        }
        .await)?;
        match affected {
            1 => Ok(()),
            -1 => Err(Conflict::GrantOutsideOrganisation.into()),
            _ => Err(StoreError::NotFound),
        }
    }

    /// Revokes the credential-manager role; takes effect on the user's next request (every read
    /// goes through the grant).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the user holds no such grant.
    pub async fn revoke_credential_manager(
        &self,
        user_id: Uuid,
        application_id: Uuid,
        actor: &super::Actor,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        use super::BeginWrite as _;
        let mut event = actor.event(AuditAction::GrantRevoked, now);
        event.target_type = Some("user");
        event.target_id = Some(user_id.to_string());
        let n = on_pool!(self, |pool| {
            async {
            let mut tx = pool.begin_write().await?;
            let found: Option<(Uuid, String)> = sqlx::query_as(
                "select a.organisation_id, a.name from credential_manager_grant g join application a on a.id = g.application_id
                 where g.user_id = $1 and g.application_id = $2",
            )
            .bind(user_id)
            .bind(application_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((organisation_id, name)) = found else { return Ok::<_, sqlx::Error>(0) };
            sqlx::query("delete from credential_manager_grant where user_id = $1 and application_id = $2")
                .bind(user_id)
                .bind(application_id)
                .execute(&mut *tx)
                .await?;
            event.organisation_id = Some(organisation_id);
            event.application_id = Some(application_id);
            event.details = serde_json::json!({ "application": name });
            super::audit::insert_audit_event!(&mut *tx, &event)?;
            tx.commit().await?;
            Ok(1)
        }
        .await
        })?;
        if n == 1 { Ok(()) } else { Err(StoreError::NotFound) }
    }

    /// Names of the credential managers of an application, by name.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn list_credential_managers(&self, application_id: Uuid) -> Result<Vec<User>, StoreError> {
        let rows: Vec<UserRow> = on_pool!(self, |pool| {
            sqlx::query_as(
                "select u.id, u.email, u.display_name, u.organisation_id, u.disabled_at, u.created_at
             from credential_manager_grant g join portal_user u on u.id = g.user_id
             where g.application_id = $1 order by u.display_name, u.email",
            )
            .bind(application_id)
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Disables or enables a user. Disabling ends every session of the user at once.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user.
    pub async fn set_user_disabled(
        &self,
        (user, actor): (&User, &super::Actor),
        disabled: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let user_id = user.id;
        let action = if disabled { AuditAction::UserDisabled } else { AuditAction::UserEnabled };
        let event = &actor.event(action, now).on_user(user);
        use super::BeginWrite as _;
        let done = on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let sql = if disabled {
                "update portal_user set disabled_at = $2, sessions_valid_after = $2 where id = $1"
            } else {
                "update portal_user set disabled_at = null where id = $1 and $2 = $2"
            };
            let n = sqlx::query(sql).bind(user_id).bind(now).execute(&mut *tx).await?.rows_affected();
            if n == 1 {
                super::audit::insert_audit_event!(&mut *tx, event)?;
                tx.commit().await?;
            }
            Ok::<_, sqlx::Error>(n)
        }
        .await)?;
        if done == 1 { Ok(()) } else { Err(StoreError::NotFound) }
    }

    /// A user with their sign-in data, by normalised email.
    ///
    /// # Errors
    /// [`StoreError`]; `Ok(None)` for an unknown email.
    pub async fn find_credentials_by_email(&self, email: &EmailAddress) -> Result<Option<Credentials>, StoreError> {
        let sql = credentials_sql("email = $1");
        let row: Option<CredentialsRow> =
            on_pool!(self, |pool| sqlx::query_as(&sql).bind(email.as_str()).fetch_optional(pool).await)?;
        row.map(TryInto::try_into).transpose()
    }

    /// A user with their sign-in data, by id. One indexed query: the per-request session check.
    ///
    /// # Errors
    /// [`StoreError`]; `Ok(None)` for an unknown id.
    pub async fn find_credentials(&self, user_id: Uuid) -> Result<Option<Credentials>, StoreError> {
        let sql = credentials_sql("id = $1");
        let row: Option<CredentialsRow> =
            on_pool!(self, |pool| sqlx::query_as(&sql).bind(user_id).fetch_optional(pool).await)?;
        row.map(TryInto::try_into).transpose()
    }

    /// Users, by email, with status, organisation and number of grants.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn list_users(&self, filter: &UserFilter) -> Result<Vec<UserSummary>, StoreError> {
        let columns = USER_COLUMNS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "select {columns}, u.password_hash is not null as has_password, u.totp_secret_enc is not null as enrolled,
                    o.country_code, o.code,
                    (select count(*) from credential_manager_grant g where g.user_id = u.id) as grants,
                    (select count(*) from passkey p where p.user_id = u.id) as passkeys,
                    (select count(*) from recovery_code r where r.user_id = u.id and r.used_at is null) as recovery_codes
             from portal_user u left join organisation o on o.id = u.organisation_id
             where ($1 is null or u.organisation_id = $1) and ($2 is null or u.is_wmda_admin = $2)
             order by u.email"
        );
        let rows: Vec<UserSummaryRow> = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(filter.organisation_id)
            .bind(filter.wmda_admin)
            .fetch_all(pool)
            .await)?;
        let mut out = Vec::new();
        for r in rows {
            let user: User = r.user.try_into()?;
            let status = if user.disabled_at.is_some() {
                UserStatus::Disabled
            } else if r.has_password && r.enrolled {
                UserStatus::Active
            } else {
                UserStatus::Invited
            };
            if filter.status.is_some_and(|s| s != status) {
                continue;
            }
            let organisation = r.country_code.zip(r.code).map(|(cc, code)| format!("{cc}-{code}"));
            let factors = Factors { totp: r.enrolled, passkeys: r.passkeys, recovery_codes: r.recovery_codes };
            out.push(UserSummary {
                user,
                status,
                organisation,
                grants: r.grants,
                has_password: r.has_password,
                factors,
            });
        }
        Ok(out)
    }

    /// A user by id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    pub async fn find_user(&self, id: Uuid) -> Result<User, StoreError> {
        let sql = format!("select {USER_COLUMNS} from portal_user where id = $1");
        let row: Option<UserRow> = on_pool!(self, |pool| sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Whether the database has any user at all (the first admin's invitation is due otherwise).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn has_users(&self) -> Result<bool, StoreError> {
        let n: i64 =
            on_pool!(self, |pool| sqlx::query_scalar("select count(*) from portal_user").fetch_one(pool).await)?;
        Ok(n > 0)
    }
}
