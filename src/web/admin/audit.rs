//! `GET /admin/audit`: the audit log, filtered and paginated; `?format=csv` exports the filtered
//! set (RFC 4180, formula injection neutralised).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;

use crate::store::{AuditEvent, AuditFilter};
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::extract::Query;
use crate::web::extract::WmdaAdmin;
use crate::web::pages::Nav;

/// Events per page.
const PAGE_SIZE: i64 = 50;
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

/// An event's line.
pub struct EventRow {
    time: String,
    actor: String,
    ip: String,
    action: String,
    target: String,
    details: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    nav: Option<Nav>,
    events: Vec<EventRow>,
    organisations: Vec<(String, String)>,
    actions: Vec<String>,
    q_actor: String,
    q_organisation: String,
    q_action: String,
    q_from: String,
    q_to: String,
    total: i64,
    page: i64,
    pages: i64,
    prev: Option<String>,
    next: Option<String>,
    csv: String,
    error: Option<String>,
}

fn time(e: &AuditEvent) -> String {
    e.occurred_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn target(e: &AuditEvent) -> String {
    match (&e.target_type, &e.target_id) {
        (Some(t), Some(i)) => format!("{t} {i}"),
        (Some(t), None) => t.clone(),
        _ => String::new(),
    }
}

/// A CSV cell (RFC 4180): quoted when it holds a comma, quote, CR or LF; quotes doubled. A cell
/// that a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, tab or carriage
/// return) is prefixed with `'` (OWASP "CSV injection").
pub fn csv_cell(value: &str) -> String {
    let neutral =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_owned() };
    if neutral.contains([',', '"', '\r', '\n']) { format!("\"{}\"", neutral.replace('"', "\"\"")) } else { neutral }
}

fn query_string(q: &AuditQuery, page: i64, format: Option<&str>) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("actor", &q.actor),
        ("organisation", &q.organisation),
        ("action", &q.action),
        ("from", &q.from),
        ("to", &q.to),
    ] {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    if page > 1 {
        s.append_pair("page", &page.to_string());
    }
    if let Some(f) = format {
        s.append_pair("format", f);
    }
    format!("/admin/audit?{}", s.finish())
}

/// `GET /admin/audit`.
pub async fn page(
    State(state): State<AppState>,
    WmdaAdmin(admin): WmdaAdmin,
    Query(q): Query<AuditQuery>,
) -> Result<Response, AppError> {
    let mut error = None;
    let mut date = |s: &str, label: &str| {
        if s.trim().is_empty() {
            return None;
        }
        match NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                error = Some(format!("The {label} date must be YYYY-MM-DD."));
                None
            }
        }
    };
    let filter = AuditFilter {
        actor: Some(q.actor.clone()).filter(|a| !a.trim().is_empty()),
        organisation_id: uuid::Uuid::parse_str(&q.organisation).ok(),
        action: Some(q.action.clone()).filter(|a| !a.is_empty()),
        from: date(&q.from, "from"),
        to: date(&q.to, "to"),
    };
    if q.format == "csv" {
        let (events, _) = state.store.audit_log(&filter, EXPORT_LIMIT, 0).await?;
        let mut body = String::from("time,actor,ip,action,organisation_id,target,details\r\n");
        for e in &events {
            let cells = [
                time(e),
                e.actor_label.clone(),
                e.ip.clone().unwrap_or_default(),
                e.action.clone(),
                e.organisation_id.map(|o| o.to_string()).unwrap_or_default(),
                target(e),
                e.details.clone(),
            ];
            body.push_str(&cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","));
            body.push_str("\r\n");
        }
        let mut response = body.into_response();
        let h = response.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8; header=present"));
        h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"audit-log.csv\""));
        return Ok(response);
    }
    let page: i64 = q.page.parse().unwrap_or(1).max(1);
    let (events, total) = state.store.audit_log(&filter, PAGE_SIZE, (page - 1) * PAGE_SIZE).await?;
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let organisations = state
        .store
        .list_organisations()
        .await?
        .into_iter()
        .map(|o| (o.id.to_string(), o.reference().to_string()))
        .collect();
    Ok(AuditPage {
        nav: Nav::of(&admin),
        events: events
            .iter()
            .map(|e| EventRow {
                time: time(e),
                actor: e.actor_label.clone(),
                ip: e.ip.clone().unwrap_or_default(),
                action: e.action.clone(),
                target: target(e),
                details: e.details.clone(),
            })
            .collect(),
        organisations,
        actions: state.store.audit_actions().await?,
        q_actor: q.actor.clone(),
        q_organisation: q.organisation.clone(),
        q_action: q.action.clone(),
        q_from: q.from.clone(),
        q_to: q.to.clone(),
        total,
        page,
        pages,
        prev: (page > 1).then(|| query_string(&q, page - 1, None)),
        next: (page < pages).then(|| query_string(&q, page + 1, None)),
        csv: query_string(&q, 1, Some("csv")),
        error,
    }
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn csv_cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("line\nbreak"), "\"line\nbreak\"");
        for formula in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(csv_cell(formula).trim_start_matches('"').starts_with('\''), "{formula:?}");
        }
        assert_eq!(csv_cell("=HYPERLINK(\"x\",\"y\")"), "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\"");
    }
}
