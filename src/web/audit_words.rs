//! Audit events in words, for people (issue 14, point 5): the action as a phrase, the target by
//! name (its type and id stay in a tooltip and in the CSV), the details as "Label: value" pairs
//! rather than JSON. The stored event is unchanged; this is only how pages and exports show it.

use std::collections::HashMap;

use crate::domain::ResourceId;
use crate::store::{AuditAction, AuditEvent, TargetName};

/// The action in words ("Client secret deleted"); an action this portal does not know keeps its
/// stored name.
pub fn action(stored: &str) -> String {
    AuditAction::parse(stored).map_or_else(|| stored.to_owned(), |a| a.words().to_owned())
}

/// The event's target as (type and id, e.g. `client_secret 5f0c…`; empty when there is none).
pub fn target_id(e: &AuditEvent) -> String {
    match (&e.target_type, &e.target_id) {
        (Some(t), Some(i)) => format!("{t} {i}"),
        (Some(t), None) => t.clone(),
        _ => String::new(),
    }
}

/// The event's target by name: an application by its name, a client secret as “name” (hint…) of
/// its application, a user by name, an organisation as `NL-Code (Name)`, a resource by its title;
/// [`target_id`] when no name is known.
pub fn target_name(e: &AuditEvent, names: &HashMap<(String, String), TargetName>) -> String {
    let (Some(kind), Some(id)) = (&e.target_type, &e.target_id) else { return target_id(e) };
    if kind == "resource" {
        return ResourceId::parse(id).map_or_else(|_| target_id(e), |r| r.title().to_owned());
    }
    match names.get(&(kind.clone(), id.clone())) {
        Some(TargetName::Organisation { reference, display_name }) => format!("{reference} ({display_name})"),
        Some(TargetName::Application(name)) => name.clone(),
        Some(TargetName::Secret { name, hint, application }) => format!("“{name}” ({}) of {application}", hint.shown()),
        Some(TargetName::User { name, email }) if name == email => email.clone(),
        Some(TargetName::User { name, email }) => format!("{name} <{email}>"),
        None => target_id(e),
    }
}

/// Labels of the detail keys the portal records, in the order they are shown; other keys follow
/// in alphabetical order, labelled by their name.
const LABELS: [(&str, &str); 32] = [
    ("organisation", "Organisation"),
    ("application", "Application"),
    ("name", "Name"),
    ("display_name", "Name"),
    ("hint", "Hint"),
    ("client_id", "Client ID"),
    ("resources", "Resources"),
    ("resource", "Resource"),
    ("audience", "Audience"),
    ("previous", "Previous audience"),
    ("expires_on", "Expires (UTC)"),
    ("email", "Email"),
    ("new_user", "New user"),
    ("step", "Step"),
    ("method", "With"),
    ("reason", "Reason"),
    ("url", "Found at"),
    ("source", "Source"),
    ("signed_by", "Report signed with key"),
    ("by", "By"),
    ("codes_left", "Recovery codes left"),
    ("scope", "Throttled"),
    ("retry_after_seconds", "Blocked for (seconds)"),
    ("locked_until", "Locked until"),
    ("applications", "Applications"),
    ("host", "Endpoint host"),
    ("format", "Format"),
    ("events", "Events"),
    ("event", "Event"),
    ("error", "Last error"),
    ("notice", "Notice"),
    ("recipients", "Sent to"),
];

/// A detail value in words: a code (`code`: a value the portal chose, like `wrong_password` or
/// `wmda-admin`, never text a person typed) as words, a list joined by commas, a time as
/// `YYYY-MM-DD HH:MM UTC`, true and false as yes and no.
fn value(key: &str, v: &serde_json::Value, code: bool) -> String {
    match v {
        serde_json::Value::String(s) if key == "hint" => format!("{s}…"),
        serde_json::Value::String(s) if code && s == "wmda-admin" => "a WMDA admin".to_owned(),
        serde_json::Value::String(s) if code && s == "mfa" => "second factor".to_owned(),
        serde_json::Value::String(s) if code => s.replace('_', " "),
        serde_json::Value::String(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M UTC").to_string(),
            Err(_) => s.clone(),
        },
        serde_json::Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        serde_json::Value::Array(items) => items.iter().map(|i| value(key, i, code)).collect::<Vec<_>>().join(", "),
        serde_json::Value::Null => "none".to_owned(),
        other => other.to_string(),
    }
}

/// The details as "Label: value" pairs joined by "; " (known keys first, see [`LABELS`]); an
/// empty object is empty, and text that is not a JSON object is shown as it is.
pub fn details(stored: &str) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(stored) else {
        return stored.to_owned();
    };
    // Codes the portal writes; a reason is one only beside a sign-in step (an admin's reason for
    // deleting a secret is their own text).
    let code =
        |key: &str| matches!(key, "step" | "method" | "scope" | "by") || (key == "reason" && map.contains_key("step"));
    let mut parts: Vec<String> = LABELS
        .iter()
        .filter_map(|(key, label)| map.get(*key).map(|v| format!("{label}: {}", value(key, v, code(key)))))
        .collect();
    let mut others: Vec<(&String, &serde_json::Value)> =
        map.iter().filter(|(k, _)| !LABELS.iter().any(|(known, _)| known == k)).collect();
    others.sort_by(|a, b| a.0.cmp(b.0));
    for (key, v) in others {
        let label = key.replace('_', " ");
        let mut chars = label.chars();
        let label = chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect());
        parts.push(format!("{label}: {}", value(key, v, false)));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_are_words_not_json() {
        let created = r#"{"application":"Partner-NL-X-DM","name":"Prod","hint":"aB3","expires_on":"2027-11-30"}"#;
        assert_eq!(details(created), "Application: Partner-NL-X-DM; Name: Prod; Hint: aB3…; Expires (UTC): 2027-11-30");
        assert_eq!(
            details(r#"{"reason":"leaked_here","by":"wmda-admin","name":"my_app","hint":"abc"}"#),
            "Name: my_app; Hint: abc…; Reason: leaked_here; By: a WMDA admin"
        );
        assert_eq!(details(r#"{"step":"mfa","reason":"wrong_code"}"#), "Step: second factor; Reason: wrong code");
        assert_eq!(details(r#"{"email":"a@b.example","new_user":true}"#), "Email: a@b.example; New user: yes");
        assert_eq!(details(r#"{"locked_until":"2026-12-08T06:42:10+00:00"}"#), "Locked until: 2026-12-08 06:42 UTC");
        assert_eq!(
            details(r#"{"resources":["data-manager-sandbox","data-manager-production"]}"#),
            "Resources: data-manager-sandbox, data-manager-production"
        );
        assert_eq!(details(r#"{"some_other":1}"#), "Some other: 1");
        assert_eq!(details("{}"), "");
        assert_eq!(details("not json"), "not json");
        assert!(!details(created).contains('{'));
    }

    #[test]
    fn every_action_has_words_and_unknown_ones_keep_their_name() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
            assert!(!action(a.as_str()).contains('.'), "{}", a.as_str());
        }
        assert_eq!(action("future.thing"), "future.thing");
    }
}
