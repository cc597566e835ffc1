//! `serve --demo`: the demo organisation, applications and secrets of DESIGN.md section 5.

use chrono::{DateTime, Duration, Utc};

use crate::auth::invitation::invite_user;
use crate::domain::BaseUrl;
use crate::domain::EmailAddress;
use crate::domain::organisation::OrganisationDisplayName;
use crate::domain::{Api, ApplicationKind, ClientId, OrganisationRef, PlainSecret, ResourceId, SecretName};
use crate::store::AuditAction;
use crate::store::{
    Actor, Application, NewApplication, NewAuditEvent, NewUser, SeedSecret, Store, StoreError, UserRole,
};

/// The demo organisation, `NL-DemoRegistry`.
pub const DEMO_ORGANISATION: &str = "NL-DemoRegistry";

/// What `--demo` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DemoOutcome {
    /// The database was empty; the demo data is in it now.
    Loaded {
        /// The applications created, by name.
        applications: Vec<String>,
        /// One line per user: `<role> <email> <invitation link>`.
        users: Vec<String>,
    },
    /// The demo organisation is already there; nothing changed.
    AlreadyPresent,
}

/// Why the demo data was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The database holds data that is not the demo's.
    #[error("--demo loads demo data into an empty database only, and this one holds other data: start without --demo")]
    NotEmpty,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One seeded secret: name, days from today to its expiration date, days ago it was created.
struct DemoSecret {
    name: &'static str,
    expires_in_days: i64,
    created_days_ago: i64,
}

/// Loads the demo data into an empty database; on a database holding the demo organisation it
/// changes nothing. Secrets are seeded with random values that nobody sees (only hints), some
/// with past dates, through [`Store::seed_client_secret`].
///
/// # Errors
/// [`DemoError::NotEmpty`] for a database holding other data.
pub async fn load(store: &Store, base_url: &BaseUrl, now: DateTime<Utc>) -> Result<DemoOutcome, DemoError> {
    let reference = OrganisationRef::parse(DEMO_ORGANISATION).map_err(|_| StoreError::Corrupt("demo reference"))?;
    match store.find_organisation(&reference).await {
        Ok(_) => return Ok(DemoOutcome::AlreadyPresent),
        Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    if !store.is_empty().await? {
        return Err(DemoError::NotEmpty);
    }
    let name = OrganisationDisplayName::parse("Demo Registry").map_err(|_| StoreError::Corrupt("demo name"))?;
    let org = store.create_organisation(&name, &reference.country, &reference.code, &Actor::cli(), now).await?;
    use ResourceId::*;
    let plan: [(ApplicationKind, Api, Vec<ResourceId>, Vec<DemoSecret>); 3] = [
        (ApplicationKind::Partner, Api::Dm, vec![DataManagerProduction, DataManagerSandbox], vec![]),
        (
            ApplicationKind::Partner,
            Api::Smc,
            vec![SearchMatchProduction, SearchMatchSandbox, MatchConnectProduction, MatchConnectSandbox],
            vec![
                DemoSecret { name: "Production server (Jane Doe)", expires_in_days: 300, created_days_ago: 65 },
                DemoSecret { name: "Integration tests (Piet Jansen)", expires_in_days: 20, created_days_ago: 345 },
                DemoSecret { name: "Old production server", expires_in_days: -12, created_days_ago: 377 },
            ],
        ),
        (
            ApplicationKind::PartnerAlternative,
            Api::Smc,
            vec![MatchConnectSandbox],
            vec![DemoSecret { name: "Sandbox connectivity test", expires_in_days: 120, created_days_ago: 30 }],
        ),
    ];
    let today = now.date_naive();
    let mut applications = Vec::new();
    let mut application_ids = Vec::new();
    for (kind, api, resources, secrets) in plan {
        let new = NewApplication { organisation_id: org.id, kind, api, client_id: ClientId::generate(), resources };
        let app: Application = store.create_application(&new, &Actor::cli(), now).await?;
        for s in secrets {
            let value = PlainSecret::generate();
            let name = SecretName::parse(s.name).map_err(|_| StoreError::Corrupt("demo secret name"))?;
            store
                .seed_client_secret(&SeedSecret {
                    application_id: app.id,
                    name: name.as_str().to_owned(),
                    hint: value.hint(),
                    hash: value.hash(),
                    expires_on: today + Duration::days(s.expires_in_days),
                    created_by: None,
                    created_at: now - Duration::days(s.created_days_ago),
                })
                .await?;
        }
        applications.push(app.name);
        application_ids.push(app.id);
    }
    // A WMDA admin and two credential managers, each granted all three applications.
    let people = [
        ("wmda-admin", "admin@wmda.example", "Wendy Admin", UserRole::WmdaAdmin),
        ("credential-manager", "jane.doe@demoregistry.example", "Jane Doe", UserRole::Member(org.id)),
        ("credential-manager", "piet.jansen@demoregistry.example", "Piet Jansen", UserRole::Member(org.id)),
    ];
    let mut users = Vec::new();
    for (label, email, name, role) in people {
        let email = EmailAddress::parse(email).map_err(|_| StoreError::Corrupt("demo email"))?;
        let new = NewUser { email, display_name: name.to_owned(), role };
        let invited = invite_user(store, base_url, &new, &Actor::cli(), now).await?;
        if let UserRole::Member(_) = role {
            for app in &application_ids {
                store.grant_credential_manager(invited.user.id, *app, &Actor::cli(), now).await?;
            }
        }
        users.push(format!("{label} {} {}", invited.user.email, invited.link));
    }
    store
        .record_audit_event(&NewAuditEvent {
            organisation_id: Some(org.id),
            target_type: Some("organisation"),
            target_id: Some(reference.to_string()),
            ..Actor::cli()
                .event(AuditAction::DemoLoaded, now)
                .with_details(serde_json::json!({ "applications": applications }))
        })
        .await?;
    Ok(DemoOutcome::Loaded { applications, users })
}
