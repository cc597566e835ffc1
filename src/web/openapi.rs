//! The machine API's contract (issue 16, point 5; DESIGN.md section 8): an OpenAPI 3.1 document
//! generated from the handlers' types and annotations by utoipa, served at
//! `GET /api/v1/openapi.json`, and `/api/docs`, a page rendered on the server from the same
//! document (askama; no script, no CDN), with the ready rotation script at
//! `/api/docs/rotate.sh`.

use askama::Template;
use askama_web::WebTemplate;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

use super::AppState;
use super::api::{CreatedBy, CreatedOut, ResourceOut, SecretOut, SelfOut};
use super::leaks::LeakReportItem;
use super::pages::Nav;
use super::problem::{Problem, ProblemType, Successor};
use crate::domain::BaseUrl;
use crate::domain::leak::{Label, ReportAnswer};
use crate::oauth::client_secrets::ApiSecretRequest;

/// The rotation script of DESIGN.md section 8, served as it is in the repository.
pub const ROTATE_SH: &str = include_str!("../../docs/examples/rotate.sh");

/// The security scheme's name in the document: HTTP Basic with the client ID and a client secret.
pub const SECURITY_SCHEME: &str = "client";

struct BasicAuth;

impl utoipa::Modify for BasicAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description = Some(
            "The client ID as user name and one of its application's current client secrets (unexpired, undeleted, \
             not exposed) as password: the same client authentication and throttle as the token endpoint. The \
             secret presented is the caller."
                .to_owned(),
        );
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(SECURITY_SCHEME, SecurityScheme::Http(basic));
    }
}

/// The document's generator: every route under `/api/v1` but `openapi.json` itself.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "secret-portal machine API",
        description = "For partner systems, so that rotating a client secret needs no person: read the application and its secrets, create the caller's successor, delete its ancestors; and report secrets found in public. JSON in and out; every error is an RFC 9457 problem (`application/problem+json`) whose `type` names the reason; every answer carries `Cache-Control: no-store`. No session, cookie or CSRF token.",
        license(name = "Proprietary"),
    ),
    paths(super::api::get_self, super::api::create_secret, super::api::delete_secret, super::leaks::report),
    components(schemas(
        SelfOut, ResourceOut, SecretOut, CreatedBy, CreatedOut, ApiSecretRequest,
        Problem, ProblemType, Successor, LeakReportItem, ReportAnswer, Label
    )),
    modifiers(&BasicAuth),
    tags(
        (name = "self", description = "The caller's application and its client secrets (HTTP Basic)."),
        (name = "leaks", description = "Leak reports from secret scanners (GitHub's partner format)."),
    )
)]
struct ApiDoc;

/// The OpenAPI 3.1 document, with the portal's base URL as its server.
pub fn document(base_url: &BaseUrl) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.servers = Some(vec![utoipa::openapi::Server::new(base_url.as_str())]);
    // The body of POST /self/secrets is optional (DESIGN.md section 8); utoipa marks a body of a
    // type that is not an `Option` required, and an `Option` would allow a JSON null, which is refused.
    if let Some(body) = doc
        .paths
        .paths
        .get_mut("/api/v1/self/secrets")
        .and_then(|item| item.post.as_mut())
        .and_then(|op| op.request_body.as_mut())
    {
        body.required = Some(utoipa::openapi::Required::False);
    }
    doc
}

/// `GET /api/v1/openapi.json`: the document, `Cache-Control: no-store` like every answer of the API.
pub async fn openapi_json(State(state): State<AppState>) -> Response {
    let mut response = Json(document(&state.settings.base_url)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /api/docs/rotate.sh`: the rotation script, as plain text to download.
pub async fn rotate_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"rotate.sh\""),
        ],
        ROTATE_SH,
    )
        .into_response()
}

/// Text of the document with its `code` spans (Markdown backticks) apart, for the template to
/// escape and mark up: (is code, text).
pub type Prose = Vec<(bool, String)>;

/// `text` cut at its backticks: odd pieces are code.
fn prose(text: &str) -> Prose {
    text.split('`').enumerate().filter(|(_, t)| !t.is_empty()).map(|(i, t)| (i % 2 == 1, t.to_owned())).collect()
}

/// An operation of the docs page.
pub struct OperationView {
    /// `GET`, `POST`, `DELETE`.
    pub method: String,
    /// e.g. `/api/v1/self/secrets/{id}`.
    pub path: String,
    /// An anchor id, e.g. `post-api-v1-self-secrets`.
    pub anchor: String,
    /// One line.
    pub summary: String,
    /// Paragraph, may be empty.
    pub description: Prose,
    /// Needs HTTP Basic.
    pub authenticated: bool,
    /// (name, where, required, description).
    pub parameters: Vec<(String, String, bool, Prose)>,
    /// The body: (schema in words, required, description, the schema's name), if it takes one.
    pub body: Option<(String, bool, Prose, String)>,
    /// (status, description, schema or empty).
    pub responses: Vec<(String, Prose, String)>,
    /// A ready curl command: credentials on curl's standard input, never in its arguments.
    pub curl: String,
}

/// A schema of the docs page.
pub struct SchemaView {
    /// Its name (an anchor too).
    pub name: String,
    /// What it is.
    pub description: Prose,
    /// (field, type, required, description).
    pub fields: Vec<(String, String, bool, Prose)>,
    /// An enumeration's values, if it is one: (value, what it means).
    pub values: Vec<(String, Prose)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "api_docs.html")]
struct DocsPage {
    nav: Option<Nav>,
    title: String,
    description: Prose,
    server: String,
    basic: Prose,
    operations: Vec<OperationView>,
    schemas: Vec<SchemaView>,
    /// (type URI, status, meaning).
    problems: Vec<(String, String, Prose)>,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// A schema reference or inline schema in words: `SecretOut`, `array of ReportAnswer`, `string (date)`.
fn type_words(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().unwrap_or(r).to_owned();
    }
    if let Some(all) = schema.get("oneOf").or_else(|| schema.get("allOf")).and_then(Value::as_array) {
        let parts: Vec<String> = all.iter().map(type_words).filter(|t| t != "null").collect();
        let nullable = all.iter().any(|s| s.get("type").and_then(Value::as_str) == Some("null"));
        return format!("{}{}", parts.join(" or "), if nullable { " or null" } else { "" });
    }
    let kind = match schema.get("type") {
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" or "),
        Some(Value::String(k)) => k.clone(),
        _ => String::new(),
    };
    if kind.starts_with("array") {
        return format!("array of {}", schema.get("items").map(type_words).unwrap_or_default());
    }
    match schema.get("format").and_then(Value::as_str) {
        Some(format) => format!("{kind} ({format})"),
        None => kind,
    }
}

/// The curl command of an operation: the client ID and secret reach curl on its standard input
/// (`-K -`), so they never appear in the process list or the shell's history.
fn curl_for(method: &str, path: &str, authenticated: bool, server: &str) -> String {
    let url = format!("{server}{}", path.replace("{id}", "$SECRET_ID"));
    let mut lines = Vec::new();
    if authenticated {
        lines.push(r#"printf 'user = "%s:%s"\n' "$CLIENT_ID" "$(cat "$SECRET_FILE")" |"#.to_owned());
    }
    let stdin = if authenticated { " -K -" } else { "" };
    let tail = match (method, path) {
        ("POST", "/api/v1/self/secrets") => {
            " \\\n  -H 'Content-Type: application/json' -d '{\"name\": \"Build server (rotated automatically)\"}'"
        }
        ("POST", _) => " \\\n  -H 'Content-Type: application/json' --data-binary @report.json",
        _ => "",
    };
    let method = if method == "GET" { String::new() } else { format!(" -X {method}") };
    lines.push(format!("  curl -sS --fail-with-body{stdin}{method} \"{url}\"{tail}"));
    lines.join("\n").trim_start().to_owned()
}

/// The docs page's view of `doc`.
fn docs_view(doc: &Value) -> DocsPage {
    let server = doc["servers"][0]["url"].as_str().unwrap_or_default().to_owned();
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(op) = item.get(method) else { continue };
            let authenticated = op.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
            let parameters = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let required = p["required"].as_bool().unwrap_or(false);
                    (text(p, "name"), text(p, "in"), required, prose(&text(p, "description")))
                })
                .collect();
            let body = op.get("requestBody").map(|b| {
                let schema = b["content"].as_object().and_then(|c| c.values().next()).map(|m| type_words(&m["schema"]));
                let schema = schema.unwrap_or_default();
                let name = schema
                    .split(' ')
                    .find(|w| w.chars().next().is_some_and(char::is_uppercase))
                    .unwrap_or("")
                    .to_owned();
                (schema, b["required"].as_bool().unwrap_or(false), prose(&text(b, "description")), name)
            });
            let responses = op["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(status, r)| {
                    let schema =
                        r["content"].as_object().and_then(|c| c.values().next()).map(|m| type_words(&m["schema"]));
                    (status.clone(), prose(&text(r, "description")), schema.unwrap_or_default())
                })
                .collect();
            let upper = method.to_ascii_uppercase();
            let anchor = format!("{method}{}", path.replace(['/', '{', '}', '.'], "-")).replace("--", "-");
            operations.push(OperationView {
                curl: curl_for(&upper, path, authenticated, &server),
                method: upper,
                path: path.clone(),
                anchor: anchor.trim_end_matches('-').to_owned(),
                summary: text(op, "summary"),
                description: prose(&text(op, "description")),
                authenticated,
                parameters,
                body,
                responses,
            });
        }
    }
    let mut schemas = Vec::new();
    for (name, schema) in doc["components"]["schemas"].as_object().into_iter().flatten() {
        let required: Vec<&str> =
            schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let fields = schema["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(field, s)| {
                (field.clone(), type_words(s), required.contains(&field.as_str()), prose(&text(s, "description")))
            })
            .collect();
        let mut values: Vec<(String, Prose)> = schema["enum"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|v| (v.to_owned(), Vec::new()))
            .collect();
        // A tagged enumeration (`CreatedBy`): its variants by their tag.
        for variant in schema["oneOf"].as_array().into_iter().flatten() {
            if let Some(kind) = variant["properties"]["kind"]["enum"][0].as_str() {
                let extra: Vec<&String> = variant["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k)
                    .filter(|k| *k != "kind")
                    .collect();
                let with = if extra.is_empty() {
                    String::new()
                } else {
                    format!(" (with {})", extra.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "))
                };
                values.push((format!("{kind}{with}"), prose(&text(variant, "description"))));
            }
        }
        schemas.push(SchemaView {
            name: name.clone(),
            description: prose(&text(schema, "description")),
            fields,
            values,
        });
    }
    let problems = doc["components"]["schemas"]["ProblemType"]["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|uri| {
            let (status, meaning) = ProblemType::ALL.iter().find(|t| t.uri() == uri).map_or(("", ""), |t| t.meaning());
            (uri.to_owned(), status.to_owned(), prose(meaning))
        })
        .collect();
    DocsPage {
        nav: None,
        title: text(&doc["info"], "title"),
        description: prose(&text(&doc["info"], "description")),
        server,
        basic: prose(&text(&doc["components"]["securitySchemes"][SECURITY_SCHEME], "description")),
        operations,
        schemas,
        problems,
    }
}

/// `GET /api/docs`: the API's documentation for people, rendered from the OpenAPI document
/// (operations, parameters, bodies, answers, schemas, problem types, curl examples). Public, like
/// the document itself: it holds nothing about any application.
///
/// # Errors
/// [`super::error::AppError::Internal`] when the document cannot be turned into JSON (a bug).
pub async fn docs_page(State(state): State<AppState>) -> Result<Response, super::error::AppError> {
    let doc = serde_json::to_value(document(&state.settings.base_url))
        .map_err(|e| super::error::AppError::Internal(e.into()))?;
    Ok(docs_view(&doc).into_response())
}
