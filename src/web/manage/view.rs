//! The page and the view models its templates read.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::domain::{ClientId, DaysLeft, ExpiryDate};
use crate::store::{ManagedApplication, SecretView};
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::OrganisationMember;
use crate::web::extract::Query;
use crate::web::pages::Nav;

/// A resource line of the API authentication panel.
pub struct ResourceView {
    /// e.g. `data-manager-production`.
    pub id: String,
    /// e.g. "Data Manager production".
    pub title: String,
    /// "production" or "sandbox".
    pub environment: String,
    /// The token audience.
    pub audience: String,
}

/// A secret's row.
pub struct SecretRow {
    /// Secret id (for its page).
    pub id: Uuid,
    /// Name as given (escaped by the template).
    pub name: String,
    /// `abc…`
    pub hint: String,
    /// Creation date, UTC.
    pub created_on: String,
    /// Creator's name or "WMDA".
    pub created_by: String,
    /// Expiration date, UTC, `YYYY-MM-DD`.
    pub expires_on: String,
    /// The last instant it works, with its zone: `2027-11-30 23:59:59 UTC`, the end of the
    /// expiration date (issue 18, point 4; the stored instant is the next midnight, UTC).
    pub works_until: String,
    /// "12 days left", "expires today", "expired".
    pub days_left: String,
    /// Fewer than 30 days left.
    pub soon: bool,
    /// Past its expiration date.
    pub expired: bool,
    /// "2026-11-29 10:15 UTC" or "Never used".
    pub last_used: String,
    /// When and where a leak report found it, if one did (issue 15).
    pub exposed: Option<ExposureView>,
    /// Made through the API by a secret since found in public (DESIGN.md section 8).
    pub creator_exposed: bool,
    /// Why it was deleted, in words ("by the application, through the API"), when it was.
    pub deleted_why: Option<&'static str>,
    /// Its replacement ("Create replacement") has obtained a token: “name” (hint) and since when
    /// (issue 18, point 3); the page offers to delete this one.
    pub replacement_in_use: Option<String>,
}

/// A tombstone's `deleted_reason` in words (DESIGN.md section 8).
pub fn deletion_words(reason: &str) -> &'static str {
    match reason {
        "person" => "by a credential manager",
        "admin" => "by a WMDA admin, as compromised",
        "api" => "by the application, through the API",
        "leak_report" => "by the portal, after a leak report found it in public",
        "abandoned" => "by the portal: the application created it through the API and never used it within an hour",
        _ => "",
    }
}

/// A secret found in public, as the pages show it: "Exposed", when, and where.
pub struct ExposureView {
    /// When the first report came in, `YYYY-MM-DD HH:MM UTC`.
    pub on: String,
    /// Where it was found, as reported (escaped by the template); may be empty.
    pub url: String,
    /// The URL is `https://` or `http://`, so it may be a link (never `javascript:` and the like).
    pub link: bool,
}

impl ExposureView {
    /// The view of `e`.
    pub fn of(e: &crate::store::Exposure) -> Self {
        let lower = e.url.to_ascii_lowercase();
        Self {
            on: utc_minute(e.at),
            url: e.url.clone(),
            link: lower.starts_with("https://") || lower.starts_with("http://"),
        }
    }
}

/// The create form's state: values as typed and messages next to the fields.
pub struct CreateForm {
    /// One-time id of this form.
    pub form_id: String,
    /// Name as typed.
    pub name: String,
    /// Date as typed.
    pub expires_on: String,
    /// Earliest date (today, UTC).
    pub min: String,
    /// Latest date (a year from today, UTC).
    pub max: String,
    /// Message for the name.
    pub name_error: Option<String>,
    /// Message for the date.
    pub date_error: Option<String>,
    /// Message for the whole form (limit reached).
    pub form_error: Option<String>,
    /// The id of the secret this one replaces ("Create replacement"), or empty.
    pub replaces: String,
}

impl CreateForm {
    /// An empty form: a new form id, the date defaulting to the maximum (the guide recommends it).
    pub fn fresh(today: NaiveDate) -> Self {
        let max = ExpiryDate::max_for(today).to_string();
        CreateForm {
            form_id: Uuid::new_v4().to_string(),
            name: String::new(),
            expires_on: max.clone(),
            min: today.to_string(),
            max,
            name_error: None,
            date_error: None,
            form_error: None,
            replaces: String::new(),
        }
    }
}

/// An application's section.
pub struct AppView {
    /// Derived name.
    pub name: String,
    /// Client ID.
    pub client_id: String,
    /// "Data Manager" or "Search, Match & Connect".
    pub api: String,
    /// Resources with audiences.
    pub resources: Vec<ResourceView>,
    /// Credential managers' names.
    pub managers: Vec<String>,
    /// Fewer than two managers (the guide recommends two).
    pub few_managers: bool,
    /// Undeleted secrets.
    pub secrets: Vec<SecretRow>,
    /// As many unexpired secrets as allowed.
    pub at_limit: bool,
    /// The dialog's create form.
    pub form: CreateForm,
    /// A ready-to-paste token request.
    pub curl: String,
    /// Partner systems may create their own secrets through the machine API (issue 16, point 3).
    pub self_rotation: bool,
    /// A WMDA admin forbade self-rotation: no switch is shown.
    pub self_rotation_forbidden: bool,
    /// Its webhook endpoints, oldest first, with their latest deliveries (issue 17).
    pub webhooks: Vec<crate::web::webhook_views::EndpointView>,
    /// As many endpoints as allowed: no "Add" link.
    pub webhooks_at_limit: bool,
    /// `invalid_client` answers for its client ID yesterday and today (UTC), when there were
    /// any (issue 18, point 2).
    pub refused_recently: Option<i64>,
}

/// Formats an instant as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_minute(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A secret's row as shown on `today` (UTC).
pub fn secret_row(s: &SecretView, today: NaiveDate) -> SecretRow {
    let left = DaysLeft::between(today, s.secret.expires_on);
    SecretRow {
        id: s.secret.id,
        name: s.secret.name.clone(),
        hint: s.secret.hint.shown(),
        created_on: s.secret.created_at.format("%Y-%m-%d").to_string(),
        // DESIGN.md section 8: a secret a partner system made through the API is "created by the
        // application".
        created_by: match (&s.created_by_name, s.secret.created_by_secret_id) {
            (Some(name), _) => name.clone(),
            (None, Some(_)) => "the application".to_owned(),
            (None, None) => "WMDA".to_owned(),
        },
        expires_on: s.secret.expires_on.to_string(),
        works_until: (s.secret.expires_at - chrono::Duration::seconds(1)).format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        days_left: left.to_string(),
        soon: left.expires_soon(),
        expired: left.is_expired(),
        last_used: s.secret.last_used_at.map_or_else(|| "Never used".to_owned(), utc_minute),
        exposed: s.secret.exposure.as_ref().map(ExposureView::of),
        creator_exposed: s.creator_exposed,
        deleted_why: s.deleted_reason.as_deref().map(deletion_words).filter(|w| !w.is_empty()),
        replacement_in_use: None,
    }
}

/// The partner-style token request (form fields and `resource=`, the Azure AD v1 shape that
/// partner systems send today), ready to paste into bash or zsh: `read -rs` asks for the secret
/// without echoing it, so the value never lands in the shell's history or the command line
/// (issue 14, point 11).
pub fn curl_example(token_endpoint: &str, client_id: &ClientId, resource: Option<&str>) -> String {
    format!(
        "read -rs CLIENT_SECRET  # paste the client secret, then press Enter\n\
         curl -X POST '{token_endpoint}' \\\n  -d 'grant_type=client_credentials' \\\n  -d 'client_id={client_id}' \\\n  --data-urlencode \"client_secret=$CLIENT_SECRET\" \\\n  -d 'resource={}'",
        resource.unwrap_or("<resource id>")
    )
}

/// An application's section as shown on `today`, with its webhook endpoints `webhooks` and the
/// `invalid_client` refusals of yesterday and today by application id, `refused` (issue 18).
pub fn app_view(
    state: &AppState,
    m: &ManagedApplication,
    (webhooks, refused): (Vec<crate::web::webhook_views::EndpointView>, &std::collections::HashMap<Uuid, i64>),
    today: NaiveDate,
) -> AppView {
    let now = state.clock.now();
    let live = m.secrets.iter().filter(|s| s.secret.expires_at > now).count();
    let token_endpoint = state.settings.base_url.join("/oauth2/token");
    AppView {
        name: m.application.name.clone(),
        client_id: m.application.client_id.to_string(),
        api: m.application.api.title().to_owned(),
        resources: m
            .resources
            .iter()
            .map(|r| ResourceView {
                id: r.id.to_string(),
                title: r.id.title().to_owned(),
                environment: r.id.environment().to_string(),
                audience: r.audience.clone(),
            })
            .collect(),
        managers: m.managers.clone(),
        few_managers: m.managers.len() < 2,
        secrets: m
            .secrets
            .iter()
            .map(|s| {
                let mut row = secret_row(s, today);
                // A replacement that obtained a token: offer to delete this one (issue 18, point 3).
                row.replacement_in_use =
                    m.secrets.iter().filter(|r| r.replaces_secret_id == Some(s.secret.id)).find_map(|r| {
                        r.secret.first_used_at.map(|first| {
                            format!("“{}” ({}), since {}", r.secret.name, r.secret.hint.shown(), utc_minute(first))
                        })
                    });
                // "2026-12-01 09:14 UTC from 198.51.100.7" (DESIGN.md section 10).
                if let (Some(_), Some(ip)) = (s.secret.last_used_at, &s.last_ip) {
                    row.last_used = format!("{} from {ip}", row.last_used);
                }
                row
            })
            .collect(),
        at_limit: crate::domain::secret::secret_limit_reached(
            i64::try_from(live).unwrap_or(i64::MAX),
            state.settings.secret_limit,
        ),
        form: CreateForm::fresh(today),
        curl: curl_example(&token_endpoint, &m.application.client_id, m.resources.first().map(|r| r.id.as_str())),
        self_rotation: m.application.self_rotation,
        self_rotation_forbidden: m.application.self_rotation_forbidden,
        webhooks_at_limit: i64::try_from(webhooks.len()).unwrap_or(i64::MAX) >= crate::domain::webhook::MAX_ENDPOINTS,
        refused_recently: refused.get(&m.application.id).copied().filter(|n| *n > 0),
        webhooks,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "manage/page.html")]
struct ManagePage {
    nav: Option<Nav>,
    apps: Vec<AppView>,
    support_email: String,
    token_endpoint: String,
    token_lifetime_minutes: i64,
    limit: i64,
    notice: Option<String>,
    /// The secrets' order: `created`, `expiry` or `last_used`.
    sort: &'static str,
}

/// `?deleted=<secret id>` after a deletion; `?sort=expiry` or `?sort=last_used` orders each
/// application's secrets (issue 18, point 4); anything else, newest first.
#[derive(Deserialize)]
pub struct PageQuery {
    deleted: Option<String>,
    #[serde(default)]
    sort: String,
}

/// How the secrets of each application are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretOrder {
    /// Newest first (the default).
    Created,
    /// Soonest expiry first.
    Expiry,
    /// Most recently used first; never used last.
    LastUsed,
}

impl SecretOrder {
    /// The order `?sort=` asks for; anything else is the default.
    pub fn parse(text: &str) -> Self {
        match text {
            "expiry" => SecretOrder::Expiry,
            "last_used" => SecretOrder::LastUsed,
            _ => SecretOrder::Created,
        }
    }

    /// Sorts `secrets` (as the store returns them, newest first) in this order; ties keep it.
    pub fn sort(self, secrets: &mut [SecretView]) {
        match self {
            SecretOrder::Created => {}
            SecretOrder::Expiry => secrets.sort_by_key(|s| s.secret.expires_at),
            SecretOrder::LastUsed => secrets.sort_by_key(|s| std::cmp::Reverse(s.secret.last_used_at)),
        }
    }
}

/// `GET /manage-api-credentials`: exactly the applications the user holds the credential-manager
/// role for; a user with no grant is told who grants it.
pub async fn page(
    State(state): State<AppState>,
    member: OrganisationMember,
    Query(q): Query<PageQuery>,
) -> Result<Response, AppError> {
    let user = &member.current.user;
    let today = state.clock.today();
    let mut managed = state.store.managed_applications(user.id).await?;
    let order = SecretOrder::parse(&q.sort);
    for m in &mut managed {
        order.sort(&mut m.secrets);
    }
    // The endpoints only when an application has one (most have none: no extra query).
    let mut webhooks = if managed.iter().any(|m| m.webhook_endpoints > 0) {
        state.store.managed_webhooks(user.id, crate::web::webhook_views::DELIVERIES_SHOWN).await?
    } else {
        Vec::new()
    };
    // Refusals are counted only for applications that had some yesterday or today (most have none:
    // no extra query, issue 20).
    let since = today - chrono::Duration::days(1);
    let refused = if managed.iter().any(|m| m.last_refusal_day.is_some_and(|d| d >= since)) {
        state.store.managed_refusals(user.id, since).await?
    } else {
        std::collections::HashMap::new()
    };
    let notice = match q.deleted.as_deref().and_then(|s| Uuid::parse_str(s).ok()) {
        Some(secret_id) => {
            let mut found = None;
            for m in &managed {
                // One query per application until the secret is found (a user manages a few).
                if let Ok(s) = state.store.managed_secret(user.id, m.application.client_id, secret_id).await {
                    if s.secret.deleted_at.is_some() {
                        found = Some(format!(
                            "Deleted the client secret \"{}\" ({}) of {}.",
                            s.secret.name,
                            s.secret.hint.shown(),
                            m.application.name
                        ));
                    }
                    break;
                }
            }
            found
        }
        None => None,
    };
    Ok(ManagePage {
        nav: Nav::of(&member.current),
        apps: managed
            .iter()
            .map(|m| {
                let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut webhooks)
                    .into_iter()
                    .partition(|e| e.endpoint.endpoint.application_id == m.application.id);
                webhooks = rest;
                let views = mine
                    .iter()
                    .map(|e| {
                        crate::web::webhook_views::EndpointView::of(e, &m.application.name, &state.services.webhooks)
                    })
                    .collect();
                app_view(&state, m, (views, &refused), today)
            })
            .collect(),
        support_email: state.settings.support_email.clone(),
        token_endpoint: state.settings.base_url.join("/oauth2/token"),
        token_lifetime_minutes: state.settings.token_lifetime_seconds / 60,
        limit: state.settings.secret_limit,
        notice,
        sort: match order {
            SecretOrder::Created => "created",
            SecretOrder::Expiry => "expiry",
            SecretOrder::LastUsed => "last_used",
        },
    }
    .into_response())
}
