//! What a credential manager sees: their applications and secrets (creating and deleting them is
//! in `secrets.rs`, with every other write to `client_secret`). Every method takes the acting user and reads only through their grants, so a
//! forgotten check yields "not found", not a leak (authorisation where data is read).

use std::collections::HashMap;

use uuid::Uuid;

use super::applications::{ApplicationRow, application};
use super::secrets::SecretRow;
use super::{Application, ClientSecret, Resource, Store, StoreError, on_pool};
use crate::domain::{ClientId, ExpiryDate, ResourceId, SecretHash, SecretName};

/// An application as one of its credential managers sees it.
#[derive(Debug, Clone)]
pub struct ManagedApplication {
    /// The application.
    pub application: Application,
    /// Its resources with their audiences, in [`ResourceId::ALL`] order.
    pub resources: Vec<Resource>,
    /// Names of its enabled credential managers (display name, or email when empty).
    pub managers: Vec<String>,
    /// Its secrets that are not deleted, newest first.
    pub secrets: Vec<SecretView>,
    /// Its webhook endpoints (not removed): the Manage page reads them only when there are any.
    pub webhook_endpoints: i64,
    /// The latest UTC day with `invalid_client` refusals for its client ID, if any (90 days
    /// kept): the Manage page counts them only when it is recent.
    pub last_refusal_day: Option<chrono::NaiveDate>,
}

/// A secret with the name of whoever created it.
#[derive(Debug, Clone)]
pub struct SecretView {
    /// The secret.
    pub secret: ClientSecret,
    /// The creator's name; `None` for seeded secrets (shown as "WMDA").
    pub created_by_name: Option<String>,
    /// The creator's display name alone, when they have one: what the machine API shows of a
    /// person (never an email address).
    pub creator_display_name: Option<String>,
    /// Why it was deleted, when it was: `person`, `admin`, `api`, `leak_report` or `abandoned`
    /// (DESIGN.md section 8).
    pub deleted_reason: Option<String>,
    /// It was made through the API by a secret that a leak report has since found in public: the
    /// pages flag it "created by an exposed secret" (DESIGN.md section 8).
    pub creator_exposed: bool,
    /// The secret it replaces, when it was made with "Create replacement" (issue 18, point 3).
    pub replaces_secret_id: Option<Uuid>,
    /// The client address of its latest token request (its latest usage day's), if any.
    pub last_ip: Option<String>,
}

/// A new secret to store, its value already hashed.
#[derive(Debug, Clone)]
pub struct NewSecret {
    /// Checked name.
    pub name: SecretName,
    /// Checked expiration date.
    pub expires: ExpiryDate,
    /// SHA-256 of the value.
    pub hash: SecretHash,
    /// The value's hint ([`crate::domain::PlainSecret::hint`]).
    pub hint: crate::domain::Hint,
    /// The create form's one-time id.
    pub form_id: Uuid,
    /// The secret it replaces ("Create replacement"): kept only when it is a secret of the same
    /// application, not deleted.
    pub replaces: Option<Uuid>,
}

/// What a deletion found.
#[derive(Debug, Clone)]
pub enum Deletion {
    /// Deleted now.
    Deleted(ClientSecret),
    /// It was deleted before (by someone else, or a repeated click).
    AlreadyDeleted(ClientSecret),
}

#[derive(sqlx::FromRow)]
pub(super) struct SecretViewRow {
    #[sqlx(flatten)]
    secret: SecretRow,
    creator_name: Option<String>,
    creator_email: Option<String>,
    deleted_reason: Option<String>,
    creator_exposed_at: Option<chrono::DateTime<chrono::Utc>>,
    replaces_secret_id: Option<Uuid>,
    last_ip: Option<String>,
}

impl From<SecretViewRow> for SecretView {
    fn from(r: SecretViewRow) -> Self {
        let creator_display_name = r.creator_name.filter(|n| !n.is_empty());
        let created_by_name = creator_display_name.clone().or(r.creator_email);
        SecretView {
            secret: r.secret.into(),
            created_by_name,
            creator_display_name,
            deleted_reason: r.deleted_reason,
            creator_exposed: r.creator_exposed_at.is_some(),
            replaces_secret_id: r.replaces_secret_id,
            last_ip: r.last_ip,
        }
    }
}

/// An application row with one of its resources and one of its credential managers (either may
/// be missing).
#[derive(sqlx::FromRow)]
struct AppDetailRow {
    #[sqlx(flatten)]
    app: ApplicationRow,
    resource_id: Option<String>,
    audience: Option<String>,
    manager_id: Option<Uuid>,
    manager_name: Option<String>,
    manager_email: Option<String>,
    webhook_endpoints: i64,
    last_refusal_day: Option<chrono::NaiveDate>,
}

pub(super) const SECRET_VIEW_COLUMNS: &str = "s.id, s.application_id, s.name, s.hint, s.value_format, s.expires_on, s.expires_at, s.created_by,
    s.created_at, s.first_used_at, s.last_used_at, s.deleted_at, s.exposed_at, s.exposed_url, s.exposed_source, s.created_by_secret_id, c.display_name as creator_name, c.email as creator_email,
    s.deleted_reason, creator_secret.exposed_at as creator_exposed_at, s.replaces_secret_id,
    (select u.last_ip from secret_usage_day u where u.secret_id = s.id order by u.day desc limit 1) as last_ip";

/// The applications `user_id` manages (enabled users only), optionally just the one with
/// `client_id`. `$1` is the user, `$2` the client ID or null.
pub(super) const GRANTED: &str = "application a
    join credential_manager_grant g on g.application_id = a.id
    join portal_user me on me.id = g.user_id and me.disabled_at is null
    where g.user_id = $1 and ($2 is null or a.client_id = $2)";

/// Every application, or the one `$1`, or those of organisation `$2`.
pub(super) const ALL_APPLICATIONS: &str =
    "application a where ($1 is null or a.id = $1) and ($2 is null or a.organisation_id = $2)";

/// The join from an application to its secrets and their creators.
pub(super) const SECRET_JOIN: &str =
    "join client_secret s on s.application_id = a.id left join portal_user c on c.id = s.created_by
     left join client_secret creator_secret on creator_secret.id = s.created_by_secret_id";

/// `scope` with `join` added right after `application a`.
pub(super) fn joined(scope: &str, join: &str) -> String {
    scope.replacen("application a", &format!("application a {join}"), 1)
}

impl Store {
    /// The applications a user holds the credential-manager role for, by name, with resources,
    /// managers and undeleted secrets. Two indexed queries, whatever the number of applications.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn managed_applications(&self, user_id: Uuid) -> Result<Vec<ManagedApplication>, StoreError> {
        self.managed(user_id, None).await
    }

    /// One application the user manages, by client ID.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] unless the user holds the role for it.
    pub async fn managed_application(
        &self,
        user_id: Uuid,
        client_id: ClientId,
    ) -> Result<ManagedApplication, StoreError> {
        self.managed(user_id, Some(client_id.as_uuid())).await?.pop().ok_or(StoreError::NotFound)
    }

    /// Every application (WMDA admins), or one, or those of one organisation, each with its
    /// resources, managers and undeleted secrets.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn all_applications(
        &self,
        application_id: Option<Uuid>,
        organisation_id: Option<Uuid>,
    ) -> Result<Vec<ManagedApplication>, StoreError> {
        self.applications_in(ALL_APPLICATIONS, application_id, organisation_id).await
    }

    async fn managed(&self, user_id: Uuid, client_id: Option<Uuid>) -> Result<Vec<ManagedApplication>, StoreError> {
        self.applications_in(GRANTED, Some(user_id), client_id).await
    }

    /// The applications `scope` selects (a `from` clause over `application a` ending in a `where`
    /// with `$1` and `$2`), with everything the pages show, in two queries.
    async fn applications_in(
        &self,
        scope: &str,
        p1: Option<Uuid>,
        p2: Option<Uuid>,
    ) -> Result<Vec<ManagedApplication>, StoreError> {
        // Each application with its resources and enabled credential managers, one row per
        // (application, resource, manager): two queries per page instead of four (BENCHMARKS.md,
        // the Manage API Credentials page on Postgres).
        let apps_sql = format!(
            "select a.id, a.organisation_id, a.kind, a.api, a.name, a.client_id, a.created_at, a.self_rotation, a.self_rotation_forbidden,
                    r.id as resource_id, r.audience, u.id as manager_id, u.display_name as manager_name,
                    u.email as manager_email,
                    (select count(*) from webhook_endpoint w where w.application_id = a.id and w.removed_at is null) as webhook_endpoints,
                    (select max(d.day) from client_refusal_day d where d.application_id = a.id) as last_refusal_day
             from {} order by a.name, a.id",
            joined(
                scope,
                "left join application_resource ar on ar.application_id = a.id
                 left join resource r on r.id = ar.resource_id
                 left join credential_manager_grant g2 on g2.application_id = a.id
                 left join portal_user u on u.id = g2.user_id and u.disabled_at is null"
            )
        );
        let secrets_sql = format!(
            "select {SECRET_VIEW_COLUMNS} from {} and s.deleted_at is null order by s.created_at desc, s.id",
            joined(scope, SECRET_JOIN)
        );
        // One connection for both: one acquire and one release.
        let (rows, secrets): (Vec<AppDetailRow>, Vec<SecretViewRow>) = on_pool!(self, |pool| async {
            let mut conn = pool.acquire().await?;
            let rows = sqlx::query_as(&apps_sql).bind(p1).bind(p2).fetch_all(&mut *conn).await?;
            let secrets = sqlx::query_as(&secrets_sql).bind(p1).bind(p2).fetch_all(&mut *conn).await?;
            Ok::<_, sqlx::Error>((rows, secrets))
        }
        .await)?;

        let mut apps: Vec<ApplicationRow> = Vec::new();
        let mut resources_by_app: HashMap<Uuid, Vec<Resource>> = HashMap::new();
        let mut managers_by_app: HashMap<Uuid, Vec<(Uuid, String)>> = HashMap::new();
        let mut facts_by_app: HashMap<Uuid, (i64, Option<chrono::NaiveDate>)> = HashMap::new();
        for row in rows {
            let app = row.app.id;
            facts_by_app.insert(app, (row.webhook_endpoints, row.last_refusal_day));
            if let (Some(id), Some(audience)) = (row.resource_id, row.audience) {
                let id = ResourceId::parse(&id).map_err(|_| StoreError::Corrupt("resource.id"))?;
                let held = resources_by_app.entry(app).or_default();
                if !held.iter().any(|r| r.id == id) {
                    held.push(Resource { id, audience });
                }
            }
            if let (Some(user), Some(name), Some(email)) = (row.manager_id, row.manager_name, row.manager_email) {
                let managers = managers_by_app.entry(app).or_default();
                if !managers.iter().any(|(u, _)| *u == user) {
                    managers.push((user, super::users::shown_name(&name, &email).to_owned()));
                }
            }
            if apps.last().is_none_or(|last| last.id != app) {
                apps.push(row.app);
            }
        }
        let mut secrets_by_app: HashMap<Uuid, Vec<SecretView>> = HashMap::new();
        for row in secrets {
            let view: SecretView = row.into();
            secrets_by_app.entry(view.secret.application_id).or_default().push(view);
        }
        apps.into_iter()
            .map(|row| {
                let id = row.id;
                let mut resources = resources_by_app.remove(&id).unwrap_or_default();
                resources.sort_by_key(|r| r.id);
                let mut managers: Vec<String> =
                    managers_by_app.remove(&id).unwrap_or_default().into_iter().map(|(_, name)| name).collect();
                managers.sort();
                let (webhook_endpoints, last_refusal_day) = facts_by_app.remove(&id).unwrap_or_default();
                let held = resources.iter().map(|r| r.id).collect();
                Ok(ManagedApplication {
                    application: application(row, held)?,
                    resources,
                    managers,
                    secrets: secrets_by_app.remove(&id).unwrap_or_default(),
                    webhook_endpoints,
                    last_refusal_day,
                })
            })
            .collect()
    }

    /// One secret of an application the user manages, deleted or not (the confirmation page
    /// says "already deleted").
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the secret is not of that application, or the user does
    /// not manage it.
    pub async fn managed_secret(
        &self,
        user_id: Uuid,
        client_id: ClientId,
        secret_id: Uuid,
    ) -> Result<SecretView, StoreError> {
        let sql = format!("select {SECRET_VIEW_COLUMNS} from {} and s.id = $3", joined(GRANTED, SECRET_JOIN));
        let row: Option<SecretViewRow> = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(user_id)
            .bind(Some(client_id.as_uuid()))
            .bind(secret_id)
            .fetch_optional(pool)
            .await)?;
        Ok(row.ok_or(StoreError::NotFound)?.into())
    }
}
