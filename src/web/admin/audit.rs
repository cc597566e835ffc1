//! `GET /admin/audit`: the audit log, filtered and paginated; `?format=csv` exports the filtered
//! set (RFC 4180, every cell quoted, formula injection neutralised by `web::csv`).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::store::{AuditEvent, AuditFilter};
use crate::web::AppState;
use crate::web::audit_words as words;
use crate::web::error::AppError;
use crate::web::extract::Query;
use crate::web::extract::WmdaAdmin;
use crate::web::pages::Nav;

/// Events per page.
const PAGE_SIZE: u32 = 50;
/// Most rows in one CSV export.
const EXPORT_LIMIT: i64 = 100_000;

/// Query parameters; empty means any.
#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    organisation: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    page: String,
    #[serde(default)]
    format: String,
}

/// An event's line, in words (issue 14, point 5).
pub struct EventRow {
    time: String,
    actor: String,
    ip: String,
    /// The stored action name (a tooltip) and the action in words.
    action: String,
    action_words: String,
    /// The target's type and id (a tooltip) and its name.
    target: String,
    target_name: String,
    details: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    nav: Option<Nav>,
    events: Vec<EventRow>,
    organisations: Vec<(String, String)>,
    /// (stored name, words) of the actions the log holds.
    actions: Vec<(String, String)>,
    q_actor: String,
    q_organisation: String,
    q_action: String,
    q_from: String,
    q_to: String,
    pager: crate::web::pages::Pager,
    error: Option<String>,
    notice: Option<String>,
}

fn time(e: &AuditEvent) -> String {
    e.occurred_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The query's filter, and a message for a date that is none (that bound is then left out).
fn filter_of(q: &AuditQuery) -> (AuditFilter, Option<String>) {
    let mut error = None;
    let mut date = |s: &str, label: &str| {
        crate::web::pages::filter_date(s, label).unwrap_or_else(|e| {
            error = Some(e);
            None
        })
    };
    let filter = AuditFilter {
        actor: Some(q.actor.clone()).filter(|a| !a.trim().is_empty()),
        organisation_id: uuid::Uuid::parse_str(&q.organisation).ok(),
        action: Some(q.action.clone()).filter(|a| !a.is_empty()),
        from: date(&q.from, "from"),
        to: date(&q.to, "to"),
    };
    (filter, error)
}

impl EventRow {
    fn of(e: &AuditEvent, names: &TargetNames) -> Self {
        EventRow {
            time: time(e),
            actor: e.actor_label.clone(),
            ip: e.ip.clone().unwrap_or_default(),
            action: e.action.clone(),
            action_words: words::action(&e.action),
            target: words::target_id(e),
            target_name: words::target_name(e, names),
            details: words::details(&e.details),
        }
    }
}

/// Names of the events' targets, by (type, id).
type TargetNames = std::collections::HashMap<(String, String), crate::store::TargetName>;

/// The filtered log as CSV (at most [`EXPORT_LIMIT`] events), no cell read as a formula: the
/// stored action, target and details for programs, and beside them the same in words.
async fn csv_export(state: &AppState, filter: &AuditFilter) -> Result<Response, AppError> {
    let (events, _) = state.store.audit_log(filter, EXPORT_LIMIT, 0).await?;
    let names = state.store.audit_target_names(&events).await?;
    let mut body = crate::web::csv::line(&[
        "time",
        "actor",
        "ip",
        "action",
        "action_words",
        "organisation_id",
        "target",
        "target_name",
        "details",
        "details_json",
    ]);
    for e in &events {
        let cells = [
            time(e),
            e.actor_label.clone(),
            e.ip.clone().unwrap_or_default(),
            e.action.clone(),
            words::action(&e.action),
            e.organisation_id.map(|o| o.to_string()).unwrap_or_default(),
            words::target_id(e),
            words::target_name(e, &names),
            words::details(&e.details),
            e.details.clone(),
        ];
        body.push_str(&crate::web::csv::line(&cells));
    }
    Ok(crate::web::csv::download(body, "audit-log.csv"))
}

/// `GET /admin/audit`: the log, filtered and paged, or (`format=csv`) its export.
pub async fn page(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    Query(q): Query<AuditQuery>,
) -> Result<Response, AppError> {
    let (filter, error) = filter_of(&q);
    if q.format == "csv" {
        if let Some(e) = &error {
            return Ok(crate::web::pages::export_refused(std::slice::from_ref(e), "/admin/audit"));
        }
        return csv_export(&state, &filter).await;
    }
    // A bounded page number before any arithmetic; past the end, the last page, said so.
    let fields = [
        ("actor", q.actor.as_str()),
        ("organisation", &q.organisation),
        ("action", &q.action),
        ("from", &q.from),
        ("to", &q.to),
    ];
    let listed = crate::web::pages::paged(&q.page, PAGE_SIZE, ("/admin/audit", &fields), |limit, offset| {
        state.store.audit_log(&filter, limit, offset)
    })
    .await?;
    let events = &listed.rows;
    let organisations = state.store.list_organisations().await?;
    let organisations = organisations.into_iter().map(|o| (o.id.to_string(), o.reference().to_string())).collect();
    let names = state.store.audit_target_names(events).await?;
    let mut actions: Vec<(String, String)> = state
        .store
        .audit_actions()
        .await?
        .into_iter()
        .map(|a| {
            let w = words::action(&a);
            (a, w)
        })
        .collect();
    actions.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(AuditPage {
        nav: Nav::of(&admin),
        events: events.iter().map(|e| EventRow::of(e, &names)).collect(),
        organisations,
        actions,
        q_actor: q.actor.clone(),
        q_organisation: q.organisation.clone(),
        q_action: q.action.clone(),
        q_from: q.from.clone(),
        q_to: q.to.clone(),
        pager: listed.pager,
        error,
        notice: listed.notice,
    }
    .into_response())
}
