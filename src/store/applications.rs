//! Applications, the resources they hold, and the resources' audiences.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::AuditAction;
use super::audit::insert_audit_event;
use super::organisations::{ORGANISATION_COLUMNS, OrganisationRow};
use super::{Actor, BeginWrite, Conflict, Store, StoreError, on_pool, unique_violation};
use crate::domain::organisation::OrganisationRef;
use crate::domain::{Api, ApplicationKind, ApplicationName, ClientId, ResourceId};

/// An OAuth 2.0 application registered by WMDA for one partner organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// Internal id.
    pub id: Uuid,
    /// The organisation it belongs to.
    pub organisation_id: Uuid,
    /// Partner or PartnerAlternative.
    pub kind: ApplicationKind,
    /// DM or SMC.
    pub api: Api,
    /// Derived name, e.g. `Partner-NL-DemoRegistry-DM`; never changes.
    pub name: String,
    /// Permanent client ID.
    pub client_id: ClientId,
    /// When it was registered (UTC).
    pub created_at: DateTime<Utc>,
    /// The resources it holds, in [`ResourceId::ALL`] order.
    pub resources: Vec<ResourceId>,
    /// Partner systems may create their own secrets through the machine API (issue 16; off by
    /// default, turned on by a credential manager). Always off while
    /// [`self_rotation_forbidden`](Self::self_rotation_forbidden).
    pub self_rotation: bool,
    /// A WMDA admin forbade self-rotation (issue 16, point 3): no credential manager can turn it on.
    pub self_rotation_forbidden: bool,
}

/// What an admin (or the demo loader) gives to register an application.
#[derive(Debug, Clone)]
pub struct NewApplication {
    /// The organisation.
    pub organisation_id: Uuid,
    /// Partner or PartnerAlternative.
    pub kind: ApplicationKind,
    /// DM or SMC.
    pub api: Api,
    /// Entered (a partner's existing one) or generated.
    pub client_id: ClientId,
    /// Chosen resources; checked against kind and API.
    pub resources: Vec<ResourceId>,
}

/// A resource and its audience (one value per resource, shared by every application holding it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The resource.
    pub id: ResourceId,
    /// The audience put into tokens for it, e.g. `api://wmda/data-manager-production`.
    pub audience: String,
}

#[derive(sqlx::FromRow)]
pub(super) struct ApplicationRow {
    pub(super) id: Uuid,
    organisation_id: Uuid,
    kind: String,
    api: String,
    name: String,
    client_id: Uuid,
    created_at: DateTime<Utc>,
    self_rotation: bool,
    self_rotation_forbidden: bool,
}

#[derive(sqlx::FromRow)]
struct HeldResourceRow {
    application_id: Uuid,
    resource_id: String,
}

const APPLICATION_COLUMNS: &str =
    "id, organisation_id, kind, api, name, client_id, created_at, self_rotation, self_rotation_forbidden";

pub(super) fn application(r: ApplicationRow, resources: Vec<ResourceId>) -> Result<Application, StoreError> {
    Ok(Application {
        id: r.id,
        organisation_id: r.organisation_id,
        kind: ApplicationKind::parse(&r.kind).map_err(|_| StoreError::Corrupt("application.kind"))?,
        api: Api::parse(&r.api).map_err(|_| StoreError::Corrupt("application.api"))?,
        name: r.name,
        client_id: ClientId::from_uuid(r.client_id),
        created_at: r.created_at,
        resources,
        // Forbidding turns it off in the same statement; read both, so a row changed by hand
        // never shows self-rotation on while forbidden.
        self_rotation: r.self_rotation && !r.self_rotation_forbidden,
        self_rotation_forbidden: r.self_rotation_forbidden,
    })
}

impl Store {
    /// Registers an application: derives its name from the organisation, kind and API, checks
    /// the resources against kind and API, and stores both in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Rule`] when kind, API and resources break the rules (nothing is stored);
    /// [`StoreError::NotFound`] for an unknown organisation; [`Conflict::ApplicationExists`] or
    /// [`Conflict::ClientIdTaken`].
    pub async fn create_application(
        &self,
        new: &NewApplication,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Application, StoreError> {
        ResourceId::check_all(new.kind, new.api, &new.resources)?;
        let id = Uuid::new_v4();
        let mut resources = new.resources.clone();
        resources.sort();
        resources.dedup();
        let sql_org = format!("select {ORGANISATION_COLUMNS} from organisation where id = $1");
        let name = on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let org: Option<OrganisationRow> =
                sqlx::query_as(&sql_org).bind(new.organisation_id).fetch_optional(&mut *tx).await?;
            let org: crate::store::Organisation = org.ok_or(StoreError::NotFound)?.try_into()?;
            let OrganisationRef { country, code } = org.reference();
            let name = ApplicationName::derive(new.kind, &country, &code, new.api)?;
            let inserted = sqlx::query(
                "insert into application (id, organisation_id, kind, api, name, client_id, created_at)
                 values ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(new.organisation_id)
            .bind(new.kind.as_str())
            .bind(new.api.as_str())
            .bind(name.as_str())
            .bind(new.client_id.as_uuid())
            .bind(now)
            .execute(&mut *tx)
            .await;
            if let Err(e) = inserted {
                return Err(match unique_violation(&e) {
                    Some(c) if c.contains("client_id") => Conflict::ClientIdTaken.into(),
                    Some(_) => Conflict::ApplicationExists.into(),
                    None => e.into(),
                });
            }
            for r in &resources {
                sqlx::query(
                    "insert into application_resource (application_id, kind, api, resource_id) values ($1, $2, $3, $4)",
                )
                .bind(id)
                .bind(new.kind.as_str())
                .bind(new.api.as_str())
                .bind(r.as_str())
                .execute(&mut *tx)
                .await?;
            }
            let event = actor
                .event(AuditAction::ApplicationCreated, now)
                .with_details(serde_json::json!({
                    "name": name.as_str(),
                    "client_id": new.client_id.to_string(),
                    "resources": resources.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                }))
                .on(new.organisation_id, "application", id);
            insert_audit_event!(&mut *tx, &event)?;
            tx.commit().await?;
            Ok::<_, StoreError>(name)
        })?;
        Ok(Application {
            id,
            organisation_id: new.organisation_id,
            kind: new.kind,
            api: new.api,
            name: name.as_str().to_owned(),
            client_id: new.client_id,
            created_at: now,
            resources,
            self_rotation: false,
            self_rotation_forbidden: false,
        })
    }

    /// The applications of one organisation, by name, each with its resources.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn list_applications_of_organisation(
        &self,
        organisation_id: Uuid,
    ) -> Result<Vec<Application>, StoreError> {
        let sql = format!("select {APPLICATION_COLUMNS} from application where organisation_id = $1 order by name");
        let (rows, held): (Vec<ApplicationRow>, Vec<HeldResourceRow>) = on_pool!(self, |pool| {
            let rows = sqlx::query_as(&sql).bind(organisation_id).fetch_all(pool).await?;
            let held = sqlx::query_as(
                "select ar.application_id, ar.resource_id from application_resource ar
                 join application a on a.id = ar.application_id where a.organisation_id = $1",
            )
            .bind(organisation_id)
            .fetch_all(pool)
            .await?;
            Ok::<_, sqlx::Error>((rows, held))
        })?;
        let mut by_app: HashMap<Uuid, Vec<ResourceId>> = HashMap::new();
        for h in held {
            let r = ResourceId::parse(&h.resource_id)
                .map_err(|_| StoreError::Corrupt("application_resource.resource_id"))?;
            by_app.entry(h.application_id).or_default().push(r);
        }
        rows.into_iter()
            .map(|row| {
                let mut resources = by_app.remove(&row.id).unwrap_or_default();
                resources.sort();
                application(row, resources)
            })
            .collect()
    }

    /// Every resource with its audience, in [`ResourceId::ALL`] order.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn list_resources(&self) -> Result<Vec<Resource>, StoreError> {
        let rows: Vec<(String, String)> =
            on_pool!(self, |pool| sqlx::query_as("select id, audience from resource").fetch_all(pool).await)?;
        let mut resources = rows
            .into_iter()
            .map(|(id, audience)| {
                Ok(Resource { id: ResourceId::parse(&id).map_err(|_| StoreError::Corrupt("resource.id"))?, audience })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        resources.sort_by_key(|r| r.id);
        Ok(resources)
    }
}
