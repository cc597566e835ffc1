//! Leak reports in GitHub's secret-scanning partner format (issue 15, point 4; DESIGN.md
//! section 7): the request is a JSON array of `{"token", "type", "url", "source"}`, the answer
//! one `{"token_hash", "token_type", "label"}` per item.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Most items in one report.
pub const MAX_REPORT_ITEMS: usize = 100;
/// Most bytes in one report's body (64 KiB).
pub const MAX_REPORT_BYTES: usize = 64 * 1024;
/// Most characters of a reported URL kept (longer ones are cut).
pub const MAX_URL_CHARS: usize = 2048;
/// Most characters of a reported `type` or `source` kept (longer ones are cut).
pub const MAX_LABEL_CHARS: usize = 200;

/// One reported value, with the fields of GitHub's format cut to their limits.
pub struct ReportItem {
    /// The value found (`token`). A secret, maybe live: never logged, never stored.
    pub token: secrecy::SecretString,
    /// Its `type`, as reported (any text; echoed in the answer).
    pub token_type: String,
    /// Where it was found (`url`); empty when not given.
    pub url: String,
    /// What found it (`source`); empty when not given.
    pub source: String,
}

impl std::fmt::Debug for ReportItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportItem")
            .field("token", &"[REDACTED]")
            .field("token_type", &self.token_type)
            .field("url", &self.url)
            .field("source", &self.source)
            .finish()
    }
}

/// Why a report body cannot be read. Each case is a client error with its own message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// Not JSON at all (400).
    #[error("The body is not valid JSON.")]
    NotJson,
    /// JSON, but not an array (422).
    #[error("The body must be a JSON array of objects with a string \"token\".")]
    NotAnArray,
    /// More than [`MAX_REPORT_ITEMS`] items (422).
    #[error("A report holds at most 100 items; this one holds {0}.")]
    TooManyItems(usize),
    /// Item `n` (from 0) is not an object with a string `token` (422).
    #[error("Item {0} is not an object with a string \"token\".")]
    BadItem(usize),
}

/// `s` without control characters (a line break would start a new line of an email or a log),
/// cut to `most` characters.
fn cut(s: &str, most: usize) -> String {
    s.chars().map(|c| if super::text::breaks_one_line(c) { ' ' } else { c }).take(most).collect()
}

/// `text` with every `wmdacs_` value (and `token`, the item's own value, whatever its shape)
/// replaced by `[removed]`: a URL or source that carries a secret must not carry it into the
/// database, the pages or an email.
fn without_values(text: &str, token: &str) -> String {
    let mut text = if token.len() >= 8 { text.replace(token, "[removed]") } else { text.to_owned() };
    let mut from = 0;
    while let Some(at) = text[from..].find(crate::domain::secret_value::V2_PREFIX).map(|i| from + i) {
        let end = text[at..]
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map_or(text.len(), |(i, _)| at + i);
        text.replace_range(at..end, "[removed]");
        from = at + "[removed]".len();
    }
    text
}

/// The reported URL as the portal keeps it: an absolute `http(s)` URL in its ASCII serialisation
/// (so no space, invisible or direction-changing character survives: they are percent-encoded),
/// without secret values, at most [`MAX_URL_CHARS`]; anything else is dropped (empty).
fn clean_url(s: &str, token: &str) -> String {
    let Ok(url) = url::Url::parse(s.trim()) else { return String::new() };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return String::new();
    }
    let text = without_values(url.as_str(), token);
    if text.len() > MAX_URL_CHARS { String::new() } else { text }
}

/// The reported source (GitHub's are words such as `content`, `commit`, `pull_request_title`):
/// letters, digits and `_ . : -` only, without secret values, at most [`MAX_LABEL_CHARS`].
fn clean_source(s: &str, token: &str) -> String {
    let kept: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-' | ' '))
        .take(MAX_LABEL_CHARS)
        .collect();
    without_values(kept.trim(), token)
}

/// Parses a report body: an array of at most 100 objects, each with a string `token`; `type`,
/// `url` and `source` are optional strings (anything else there counts as absent), cut to
/// [`MAX_LABEL_CHARS`] / [`MAX_URL_CHARS`]. An empty array is a report of nothing.
///
/// # Errors
/// [`ReportError`].
pub fn parse_report(body: &[u8]) -> Result<Vec<ReportItem>, ReportError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| ReportError::NotJson)?;
    let serde_json::Value::Array(items) = value else {
        return Err(ReportError::NotAnArray);
    };
    if items.len() > MAX_REPORT_ITEMS {
        return Err(ReportError::TooManyItems(items.len()));
    }
    items
        .iter()
        .enumerate()
        .map(|(n, item)| {
            let token = item.get("token").and_then(serde_json::Value::as_str).ok_or(ReportError::BadItem(n))?;
            let text = |key: &str| item.get(key).and_then(serde_json::Value::as_str).unwrap_or("");
            Ok(ReportItem {
                token_type: without_values(&cut(text("type"), MAX_LABEL_CHARS), token),
                url: clean_url(text("url"), token),
                source: clean_source(text("source"), token),
                token: secrecy::SecretString::from(token),
            })
        })
        .collect()
}

/// What a report says of one value: live or not, and nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// A live secret of the portal (undeleted, unexpired, well-formed v2).
    TruePositive,
    /// Anything else: unknown, deleted, expired, or not a well-formed v2 value.
    FalsePositive,
}

impl Label {
    /// `true_positive` or `false_positive`, as GitHub's format spells them.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::TruePositive => "true_positive",
            Label::FalsePositive => "false_positive",
        }
    }
}

/// One entry of the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReportAnswer {
    /// SHA-256 of the reported value, lower-case hex.
    pub token_hash: String,
    /// The item's `type`, as reported.
    pub token_type: String,
    /// Live or not.
    pub label: Label,
}

/// SHA-256 of `token`, lower-case hex: how the answer names a value without repeating it.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn reports_are_arrays_of_objects_with_a_string_token() {
        let items = parse_report(br#"[{"token":"abc","type":"wmda_client_secret","url":"https://x.example/a","source":"content"}, {"token":"d"}]"#).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].token.expose_secret(), "abc");
        assert_eq!(
            (items[0].token_type.as_str(), items[0].url.as_str(), items[0].source.as_str()),
            ("wmda_client_secret", "https://x.example/a", "content")
        );
        assert_eq!((items[1].token_type.as_str(), items[1].url.as_str()), ("", ""));
        assert!(!format!("{:?}", items[0]).contains("abc"));
        assert!(parse_report(b"[]").unwrap().is_empty());
        assert_eq!(parse_report(b"[{").unwrap_err(), ReportError::NotJson);
        assert_eq!(parse_report(b"").unwrap_err(), ReportError::NotJson);
        assert_eq!(parse_report(br#"{"token":"a"}"#).unwrap_err(), ReportError::NotAnArray);
        assert_eq!(parse_report(br#"[{"token":"a"}, {"token": 5}]"#).unwrap_err(), ReportError::BadItem(1));
        assert_eq!(parse_report(br#"["a"]"#).unwrap_err(), ReportError::BadItem(0));
        let many = format!("[{}]", vec![r#"{"token":"a"}"#; 101].join(","));
        assert_eq!(parse_report(many.as_bytes()).unwrap_err(), ReportError::TooManyItems(101));
        let hundred = format!("[{}]", vec![r#"{"token":"a"}"#; 100].join(","));
        assert_eq!(parse_report(hundred.as_bytes()).unwrap().len(), 100);
        let long = format!(r#"[{{"token":"a","url":"https://x.example/{}","type":5}}]"#, "u".repeat(5000));
        let item = &parse_report(long.as_bytes()).unwrap()[0];
        assert_eq!((item.url.as_str(), item.token_type.as_str()), ("", ""));
    }

    #[test]
    fn urls_and_sources_keep_no_secret_no_prose_and_no_invisible_character() {
        let value = crate::domain::PlainSecret::generate();
        let v = value.expose();
        let other = crate::domain::PlainSecret::generate();
        let url = |u: &str, token: &str| clean_url(u, token);
        assert_eq!(url("https://github.com/o/r/blob/main/.env#L3", v), "https://github.com/o/r/blob/main/.env#L3");
        assert_eq!(
            url(&format!("https://paste.example/?t={v}&u={}", other.expose()), v),
            "https://paste.example/?t=[removed]&u=[removed]"
        );
        let v1 = crate::domain::PlainSecret::generate_v1();
        assert_eq!(url(&format!("https://x.example/{}", v1.expose()), v1.expose()), "https://x.example/[removed]");
        for dropped in ["javascript:alert(1)", "data:text/html,x", "ftp://x.example/", "not a url", ""] {
            assert_eq!(url(dropped, v), "", "{dropped}");
        }
        // Spaces and a right-to-left override are percent-encoded, never shown as they are.
        let shown = url("https://x.example/a b\u{202E}gpj.exe. Sign in at https://evil.example", v);
        assert!(!shown.contains(' ') && !shown.contains('\u{202E}'), "{shown}");
        assert_eq!(clean_source("content", v), "content");
        assert_eq!(clean_source(&format!("<b>{v}</b>\u{202E}"), v), "b[removed]b");
        assert_eq!(without_values("wmdacs_abc wmdacs_ wmdacs_Z1-x", ""), "[removed] [removed] [removed]-x");
    }

    #[test]
    fn answers_name_a_value_by_its_sha_256() {
        assert_eq!(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let answer =
            ReportAnswer { token_hash: token_hash("abc"), token_type: "t".into(), label: Label::FalsePositive };
        assert_eq!(serde_json::to_value(&answer).unwrap()["label"], "false_positive");
    }
}
