//! Organisations.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::AuditAction;
use super::audit::insert_audit_event;
use super::{Actor, BeginWrite, Conflict, Store, StoreError, on_pool, unique_violation};
use crate::domain::organisation::OrganisationDisplayName;
use crate::domain::{CountryCode, OrganisationCode, OrganisationRef};

/// A partner organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    /// Internal id.
    pub id: Uuid,
    /// Free text, can be renamed.
    pub display_name: String,
    /// ISO 3166-1 alpha-2.
    pub country: CountryCode,
    /// Immutable code used in application names.
    pub code: OrganisationCode,
    /// When it was created (UTC).
    pub created_at: DateTime<Utc>,
}

impl Organisation {
    /// `<CC>-<code>`, e.g. `NL-DemoRegistry`.
    pub fn reference(&self) -> OrganisationRef {
        OrganisationRef { country: self.country.clone(), code: self.code.clone() }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct OrganisationRow {
    id: Uuid,
    display_name: String,
    country_code: String,
    code: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<OrganisationRow> for Organisation {
    type Error = StoreError;
    fn try_from(r: OrganisationRow) -> Result<Self, StoreError> {
        Ok(Organisation {
            id: r.id,
            display_name: r.display_name,
            country: CountryCode::parse(&r.country_code)
                .map_err(|_| StoreError::Corrupt("organisation.country_code"))?,
            code: OrganisationCode::parse(&r.code).map_err(|_| StoreError::Corrupt("organisation.code"))?,
            created_at: r.created_at,
        })
    }
}

pub(super) const ORGANISATION_COLUMNS: &str = "id, display_name, country_code, code, created_at";

impl Store {
    /// Creates an organisation.
    ///
    /// # Errors
    /// [`Conflict::OrganisationExists`] when the country already has this code (ignoring case).
    pub async fn create_organisation(
        &self,
        display_name: &OrganisationDisplayName,
        country: &CountryCode,
        code: &OrganisationCode,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Organisation, StoreError> {
        let org = Organisation {
            id: Uuid::new_v4(),
            display_name: display_name.as_str().to_owned(),
            country: country.clone(),
            code: code.clone(),
            created_at: now,
        };
        let event = actor
            .event(AuditAction::OrganisationCreated, now)
            .with_details(serde_json::json!({
                "organisation": org.reference().to_string(),
                "display_name": org.display_name,
            }))
            .on(org.id, "organisation", org.id);
        on_pool!(self, |pool| {
            async {
            let mut tx = pool.begin_write().await?;
            let inserted = sqlx::query(
                "insert into organisation (id, display_name, country_code, code, created_at) values ($1, $2, $3, $4, $5)",
            )
            .bind(org.id)
            .bind(&org.display_name)
            .bind(org.country.as_str())
            .bind(org.code.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                Err(e) if unique_violation(&e).is_some() => return Err(Conflict::OrganisationExists.into()),
                Err(e) => return Err(e.into()),
            }
            insert_audit_event!(&mut *tx, &event)?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        }
        .await
        })?;
        Ok(org)
    }

    /// Renames an organisation (its code, and so its applications' names, never change).
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    pub async fn rename_organisation(
        &self,
        id: Uuid,
        display_name: &OrganisationDisplayName,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let event = actor
            .event(AuditAction::OrganisationRenamed, now)
            .with_details(serde_json::json!({ "display_name": display_name.as_str() }))
            .on(id, "organisation", id);
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query("update organisation set display_name = $2 where id = $1")
                .bind(id)
                .bind(display_name.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n != 1 {
                return Err(StoreError::NotFound);
            }
            insert_audit_event!(&mut *tx, &event)?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        }
        .await)
    }

    /// An organisation by id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    pub async fn find_organisation_by_id(&self, id: Uuid) -> Result<Organisation, StoreError> {
        let sql = format!("select {ORGANISATION_COLUMNS} from organisation where id = $1");
        let row: Option<OrganisationRow> =
            on_pool!(self, |pool| sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Finds an organisation by `<CC>-<code>`, the code compared ignoring case.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    pub async fn find_organisation(&self, reference: &OrganisationRef) -> Result<Organisation, StoreError> {
        let sql = format!(
            "select {ORGANISATION_COLUMNS} from organisation where country_code = $1 and lower(code) = lower($2)"
        );
        let row: Option<OrganisationRow> = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(reference.country.as_str())
            .bind(reference.code.as_str())
            .fetch_optional(pool)
            .await)?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Every organisation, ordered by country and code.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn list_organisations(&self) -> Result<Vec<Organisation>, StoreError> {
        let sql = format!("select {ORGANISATION_COLUMNS} from organisation order by country_code, lower(code)");
        let rows: Vec<OrganisationRow> = on_pool!(self, |pool| sqlx::query_as(&sql).fetch_all(pool).await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}
