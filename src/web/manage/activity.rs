//! `GET /manage-api-credentials/activity` (issue 18, points 1 and 5; DESIGN.md section 10): what
//! happened to the applications a credential manager manages now, filtered (application, action,
//! dates) and paged; `?format=csv` exports the filtered set with the admin export's CSV writer.
//! Bad input never fails the page: a message says what was wrong, and the result is what the
//! rest of the filter matches (nothing, for an action or application that is not theirs).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::domain::ClientId;
use crate::store::{ActivityEvent, ActivityFilter, AuditAction, TargetName};
use crate::web::AppState;
use crate::web::audit_words as words;
use crate::web::error::AppError;
use crate::web::extract::{OrganisationMember, Query};
use crate::web::pages::Nav;

/// Events per page.
const PAGE_SIZE: u32 = 50;
/// Most rows in one CSV export.
const EXPORT_LIMIT: i64 = 100_000;
/// The page's path.
const PATH: &str = "/manage-api-credentials/activity";

/// Query parameters; empty means any.
#[derive(Deserialize, Default)]
pub struct ActivityQuery {
    #[serde(default)]
    application: String,
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

/// An event's line, in words.
pub struct ActivityRow {
    time: String,
    actor: String,
    action: String,
    action_words: String,
    application: String,
    secret: String,
    details: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "manage/activity.html")]
struct ActivityPage {
    nav: Option<Nav>,
    rows: Vec<ActivityRow>,
    /// (client ID, name) of the applications the user manages.
    applications: Vec<(String, String)>,
    /// (stored name, words) of the actions shown here.
    actions: Vec<(String, String)>,
    q_application: String,
    q_action: String,
    q_from: String,
    q_to: String,
    pager: crate::web::pages::Pager,
    errors: Vec<String>,
    notice: Option<String>,
    /// Token usage per secret per day, the last 14 days (issue 18, point 2).
    usage: Vec<UsageRow>,
    /// Refused requests per application per day, the last 14 days.
    refusals: Vec<UsageRow>,
}

/// Days of usage the page shows.
const USAGE_DAYS: i64 = 14;

/// A day's usage of a secret, or refusals of an application's client ID.
pub struct UsageRow {
    day: String,
    application: String,
    /// The secret's name (empty for refusals).
    secret: String,
    count: i64,
    last: String,
    last_ip: String,
}

/// The query's filter and a message for each part that is wrong. A date that is none is left
/// out; an application or action that is not one of the user's matches nothing.
fn filter_of(q: &ActivityQuery, managed: &[(String, String)]) -> (ActivityFilter, Vec<String>) {
    let mut errors = Vec::new();
    let mut date = |s: &str, label: &str| {
        crate::web::pages::filter_date(s, label).unwrap_or_else(|e| {
            errors.push(e);
            None
        })
    };
    let (from, to) = (date(&q.from, "from"), date(&q.to, "to"));
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        errors.push(format!("The from date ({f}) is after the to date ({t}): no event can match."));
    }
    let client_id = if q.application.trim().is_empty() {
        None
    } else {
        let parsed = ClientId::parse(q.application.trim()).ok();
        if parsed.is_none_or(|c| !managed.iter().any(|(id, _)| *id == c.to_string())) {
            errors.push("You are not a credential manager of that application: no events are shown.".to_owned());
        }
        // An unknown one matches nothing (the nil id is no application's).
        Some(parsed.map_or_else(uuid::Uuid::nil, |c| c.as_uuid()))
    };
    let action = Some(q.action.trim().to_owned()).filter(|a| !a.is_empty());
    if let Some(a) = &action
        && !AuditAction::parse(a).is_some_and(AuditAction::shown_to_managers)
    {
        errors.push("There is no such action on this page: no events are shown.".to_owned());
    }
    (ActivityFilter { client_id, action, from, to }, errors)
}

/// Who acted, as the partner sees it: a person by name (WMDA's admins as "WMDA"), the
/// application itself with its address, a leak report, or the portal.
fn actor(e: &ActivityEvent) -> String {
    let label = e.event.actor_label.as_str();
    match (e.event.actor_user_id, e.actor_is_admin) {
        (Some(_), Some(true)) => "WMDA".to_owned(),
        (Some(_), _) => {
            e.actor_name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| "a credential manager".to_owned())
        }
        (None, _) if label.starts_with("application ") => match &e.event.ip {
            Some(ip) => format!("the application itself, from {ip}"),
            None => "the application itself".to_owned(),
        },
        (None, _) if label.starts_with("leak report") => "a leak report".to_owned(),
        (None, _) if label == "system" => "the portal".to_owned(),
        _ => "WMDA".to_owned(),
    }
}

/// The details a partner sees: the application has its own column; no email address is shown.
fn details(e: &ActivityEvent, names: &Names) -> String {
    let mut map = match serde_json::from_str::<serde_json::Value>(&e.event.details) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    for key in ["application", "email", "display_name", "name", "hint"] {
        map.remove(key);
    }
    let mut text = words::details(&serde_json::Value::Object(map).to_string());
    if let (Some("user"), Some(id)) = (e.event.target_type.as_deref(), &e.event.target_id)
        && let Some(TargetName::User { name, email }) = names.get(&("user".to_owned(), id.clone()))
    {
        let who = if name == email { "a user of your organisation" } else { name.as_str() };
        text = if text.is_empty() {
            format!("Credential manager: {who}")
        } else {
            format!("Credential manager: {who}; {text}")
        };
    }
    text
}

/// The secret an event is about, as “name” (hint…).
fn secret(e: &ActivityEvent, names: &Names) -> String {
    match (e.event.target_type.as_deref(), &e.event.target_id) {
        (Some("client_secret"), Some(id)) => match names.get(&("client_secret".to_owned(), id.clone())) {
            Some(TargetName::Secret { name, hint, .. }) => format!("“{name}” ({})", hint.shown()),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

type Names = std::collections::HashMap<(String, String), TargetName>;

impl ActivityRow {
    fn of(e: &ActivityEvent, names: &Names) -> Self {
        ActivityRow {
            time: e.event.occurred_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            actor: actor(e),
            action: e.event.action.clone(),
            action_words: words::action(&e.event.action),
            application: e.application.clone(),
            secret: secret(e, names),
            details: details(e, names),
        }
    }
}

async fn names_of(state: &AppState, events: &[ActivityEvent]) -> Result<Names, AppError> {
    let events: Vec<crate::store::AuditEvent> = events.iter().map(|e| e.event.clone()).collect();
    Ok(state.store.audit_target_names(&events).await?)
}

/// `GET /manage-api-credentials/activity`: the page, or (`format=csv`) its export.
///
/// # Errors
/// The store's; bad input is a message on the page, never an error.
pub async fn page(
    State(state): State<AppState>,
    member: OrganisationMember,
    Query(q): Query<ActivityQuery>,
) -> Result<Response, AppError> {
    let user = &member.current.user;
    let applications: Vec<(String, String)> = state
        .store
        .managed_applications(user.id)
        .await?
        .into_iter()
        .map(|m| (m.application.client_id.to_string(), m.application.name))
        .collect();
    let (filter, errors) = filter_of(&q, &applications);
    if q.format == "csv" {
        if !errors.is_empty() {
            return Ok(crate::web::pages::export_refused(&errors, PATH));
        }
        let (events, _) = state.store.manager_activity(user.id, &filter, EXPORT_LIMIT, 0).await?;
        let names = names_of(&state, &events).await?;
        let mut body = crate::web::csv::line(&[
            "time",
            "actor",
            "action",
            "action_words",
            "application",
            "client_id",
            "secret",
            "details",
        ]);
        for e in &events {
            let row = ActivityRow::of(e, &names);
            let client_id = e.client_id.to_string();
            body.push_str(&crate::web::csv::line(&[
                &row.time,
                &row.actor,
                &row.action,
                &row.action_words,
                &row.application,
                &client_id,
                &row.secret,
                &row.details,
            ]));
        }
        return Ok(crate::web::csv::download(body, "activity.csv"));
    }
    // A bounded page number before any arithmetic; past the end, the last page, said so.
    let fields = [("application", q.application.as_str()), ("action", &q.action), ("from", &q.from), ("to", &q.to)];
    let listed = crate::web::pages::paged(&q.page, PAGE_SIZE, (PATH, &fields), |limit, offset| {
        state.store.manager_activity(user.id, &filter, limit, offset)
    })
    .await?;
    let events = &listed.rows;
    let names = names_of(&state, events).await?;
    let mut actions: Vec<(String, String)> = AuditAction::ALL
        .iter()
        .filter(|a| a.shown_to_managers())
        .map(|a| (a.as_str().to_owned(), a.words().to_owned()))
        .collect();
    actions.sort_by(|a, b| a.1.cmp(&b.1));
    let since = state.clock.today() - chrono::Duration::days(USAGE_DAYS - 1);
    let (usage, refusals) = state.store.manager_usage(user.id, since).await?;
    let usage = usage
        .into_iter()
        .map(|u| UsageRow {
            day: u.day.to_string(),
            application: u.application,
            secret: format!("“{}” ({})", u.name, u.hint.shown()),
            count: u.issued,
            last: u.last_used_at.format("%H:%M UTC").to_string(),
            last_ip: u.last_ip,
        })
        .collect();
    let refusals = refusals
        .into_iter()
        .map(|r| UsageRow {
            day: r.day.to_string(),
            application: r.application,
            secret: String::new(),
            count: r.refused,
            last: String::new(),
            last_ip: r.last_ip,
        })
        .collect();
    Ok(ActivityPage {
        nav: Nav::of(&member.current),
        rows: events.iter().map(|e| ActivityRow::of(e, &names)).collect(),
        applications,
        actions,
        q_application: q.application.clone(),
        q_action: q.action.clone(),
        q_from: q.from.clone(),
        q_to: q.to.clone(),
        pager: listed.pager,
        errors,
        notice: listed.notice,
        usage,
        refusals,
    }
    .into_response())
}
