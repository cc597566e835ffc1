//! The machine API (issue 16; DESIGN.md section 8): `GET /api/v1/self`,
//! `POST /api/v1/self/secrets`, `DELETE /api/v1/self/secrets/{id}`. HTTP Basic with the client ID
//! and a live, unexposed secret (the caller), through the token endpoint's client authentication
//! and throttle; JSON answers with `Cache-Control: no-store`; RFC 9457 problems for every error.
//! No session, cookie or CSRF check.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::extract::ClientIp;
use super::problem::{Problem, ProblemType, Successor, pending_successor, problem, validation};
use crate::domain::Hint;
use crate::oauth::OAuthError;
use crate::oauth::client_secrets::{ApiRefusal, ApiSecretRequest, api_create_secret, api_delete_secret};
use crate::oauth::endpoint::{Caller, Refusal};
use crate::store::StoreError;

/// Most bytes in a `POST /api/v1/self/secrets` body.
pub const API_BODY_LIMIT: usize = 16 * 1024;

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// 401 `invalid-client` with `WWW-Authenticate: Basic`: the same for a wrong, expired, deleted or
/// exposed caller.
fn invalid_client() -> Response {
    let mut response = problem(
        StatusCode::UNAUTHORIZED,
        ProblemType::InvalidClient,
        "Client authentication failed",
        "Authenticate with HTTP Basic: the client ID and one of its application's current client secrets.",
    );
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"secret-portal\""));
    response
}

fn unavailable() -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        ProblemType::Unavailable,
        "Try again later",
        "The portal cannot answer now.",
    )
}

fn not_found() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        ProblemType::NotFound,
        "Not found",
        "No such secret among the ones this caller may delete.",
    )
}

/// Any other path under `/api/v1`: 404 `not-found`, a problem like every answer of the API.
pub async fn no_such_route() -> Response {
    problem(StatusCode::NOT_FOUND, ProblemType::NotFound, "Not found", "There is no such route under /api/v1.")
}

/// A method the route does not take: 405 `method-not-allowed`, a problem like every answer of the API.
pub async fn method_not_allowed() -> Response {
    problem(
        StatusCode::METHOD_NOT_ALLOWED,
        ProblemType::MethodNotAllowed,
        "Method not allowed",
        "This route does not take that method: see GET /api/v1/self, POST /api/v1/self/secrets and DELETE /api/v1/self/secrets/{id}.",
    )
}

/// `GET /api/v1/self`: the caller's application and its undeleted secrets, newest first.
#[derive(Serialize, ToSchema)]
pub struct SelfOut {
    /// The application's name, e.g. `Partner-NL-DemoRegistry-DM`.
    pub name: String,
    /// Its permanent client ID.
    pub client_id: String,
    /// `DM` (Data Manager) or `SMC` (Search, Match & Connect).
    pub api: String,
    /// The resources it may ask tokens for, with their audiences.
    pub resources: Vec<ResourceOut>,
    /// Most unexpired secrets it may have at once.
    pub secret_limit: i64,
    /// Whether it may create its own secrets through this API (a credential manager decides).
    pub self_rotation: bool,
    /// WMDA forbade self-rotation for it: no credential manager can turn it on.
    pub self_rotation_forbidden: bool,
    /// Its undeleted secrets, newest first. Never a value or a hash.
    pub secrets: Vec<SecretOut>,
}

/// A resource of the application.
#[derive(Serialize, ToSchema)]
pub struct ResourceOut {
    /// The resource id to send as `resource` at the token endpoint, e.g. `data-manager-production`.
    pub id: String,
    /// The `aud` of its tokens.
    pub audience: String,
}

/// A client secret, without its value.
#[derive(Serialize, ToSchema)]
pub struct SecretOut {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// `wmdacs_` and the first three characters after it (older secrets: three characters).
    #[schema(value_type = String, example = "wmdacs_Ab3")]
    pub hint: Hint,
    /// When it was created (UTC).
    pub created_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: CreatedBy,
    /// Its expiration date (UTC); it works until the end of this day.
    pub expires_on: NaiveDate,
    /// The instant it expires: the end of `expires_on`, UTC.
    pub expires_at: DateTime<Utc>,
    /// When it last obtained a token (UTC), to the minute or so; null when never.
    #[schema(required = true)]
    pub last_used_at: Option<DateTime<Utc>>,
    /// When a leak report found it in public (UTC); null when none did. An exposed secret cannot call this API; replace it.
    #[schema(required = true)]
    pub exposed_at: Option<DateTime<Utc>>,
    /// It is the secret this request authenticated with.
    pub is_caller: bool,
}

/// Who created a secret: a person (by display name, when they have one), the application itself
/// through this API, or WMDA.
#[derive(Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum CreatedBy {
    /// A credential manager, on the Manage API Credentials page.
    Person {
        /// Their display name; absent when they have none (never an email address).
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// The application, through `POST /api/v1/self/secrets`.
    Application,
    /// WMDA (seeded or migrated secrets).
    Wmda,
}

/// `POST /api/v1/self/secrets`, 201: the new secret and its value, shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedOut {
    /// Its id.
    pub id: Uuid,
    /// The client secret itself. Shown this once: store it now; the portal keeps only a hash.
    pub value: String,
    /// `wmdacs_` and the first three characters after it.
    #[schema(value_type = String, example = "wmdacs_Ab3")]
    pub hint: Hint,
    /// Its name.
    pub name: String,
    /// Its expiration date (UTC).
    pub expires_on: NaiveDate,
    /// The instant it expires: the end of `expires_on`, UTC.
    pub expires_at: DateTime<Utc>,
}

/// The caller, or the answer that refuses it.
async fn caller(state: &AppState, headers: &HeaderMap, ip: std::net::IpAddr) -> Result<Caller, Response> {
    let authorization = super::oauth::authorization(headers);
    let now = state.clock.now();
    state.services.tokens.authenticate(authorization, ip, now).await.map_err(|Refusal { error, client_id, quiet }| {
        if !quiet {
            tracing::info!(client_id = client_id.as_deref().unwrap_or(""), %ip, error = error.code(), "API request refused");
        }
        match error {
            OAuthError::TooManyRequests { retry_after } => {
                let mut response = problem(
                    StatusCode::TOO_MANY_REQUESTS,
                    ProblemType::RateLimited,
                    "Too many failed attempts",
                    "Too many failed attempts from this address; retry later.",
                );
                if let Ok(v) = HeaderValue::from_str(&retry_after.max(1).to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
                response
            }
            OAuthError::TemporarilyUnavailable => unavailable(),
            _ => invalid_client(),
        }
    })
}

/// `GET /api/v1/self`: the caller's application (name, client ID, API, resources with audiences,
/// secret limit, self-rotation) and its undeleted secrets, newest first, each with `is_caller`.
/// Never a value or a hash.
#[utoipa::path(
    get,
    path = "/api/v1/self",
    tag = "self",
    summary = "The caller's application and its secrets",
    security(("client" = [])),
    responses(
        (status = 200, description = "The application and its undeleted secrets, newest first; `Cache-Control: no-store`.", body = SelfOut),
        (status = 401, description = "`invalid-client`: wrong, expired, deleted or exposed caller (`WWW-Authenticate: Basic`).", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate-limited`: too many failed attempts from this address (`Retry-After`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`unavailable`: retry later.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_self(State(state): State<AppState>, ClientIp(ip): ClientIp, headers: HeaderMap) -> Response {
    let caller = match caller(&state, &headers, ip).await {
        Ok(c) => c,
        Err(response) => return response,
    };
    let Ok(mut apps) = state.store.all_applications(Some(caller.application_id), None).await else {
        return unavailable();
    };
    let Some(m) = apps.pop() else { return invalid_client() };
    let secrets = m
        .secrets
        .iter()
        .map(|s| SecretOut {
            id: s.secret.id,
            name: s.secret.name.clone(),
            hint: s.secret.hint.clone(),
            created_at: s.secret.created_at,
            // A person by display name only: a creator without one is shown without a name, never
            // by email address.
            created_by: match (&s.created_by_name, s.secret.created_by_secret_id) {
                (Some(_), _) => CreatedBy::Person { name: s.creator_display_name.clone() },
                (None, Some(_)) => CreatedBy::Application,
                (None, None) => CreatedBy::Wmda,
            },
            expires_on: s.secret.expires_on,
            expires_at: s.secret.expires_at,
            last_used_at: s.secret.last_used_at,
            exposed_at: s.secret.exposure.as_ref().map(|e| e.at),
            is_caller: s.secret.id == caller.secret_id,
        })
        .collect();
    let resources = m
        .resources
        .iter()
        .map(|r| ResourceOut { id: r.id.as_str().to_owned(), audience: r.audience.clone() })
        .collect();
    no_store(
        Json(SelfOut {
            name: m.application.name,
            client_id: m.application.client_id.to_string(),
            api: m.application.api.as_str().to_owned(),
            resources,
            secret_limit: state.settings.secret_limit,
            self_rotation: m.application.self_rotation,
            self_rotation_forbidden: m.application.self_rotation_forbidden,
            secrets,
        })
        .into_response(),
    )
}

/// `POST /api/v1/self/secrets`: the caller creates its successor (body optional: `name`,
/// `expires_on`). 201 with the value, shown this once; 409 `pending-successor` (naming it),
/// `at-limit` or `self-rotation-off`; 429 `rate-limited`; 422 `validation` with the field;
/// 415 for a non-empty body that is not `application/json`; 413 over 16 KiB.
#[utoipa::path(
    post,
    path = "/api/v1/self/secrets",
    tag = "self",
    summary = "Create the caller's successor",
    description = "Creates a new client secret of the caller's application, made by the caller (its successor). Self-rotation must be on for the application. At most one pending successor per caller; at most 2 secrets per application per 24 hours through the API. A successor created over an hour ago and never used at the token endpoint is abandoned: this request replaces it. The body is optional; without one, the name is `Rotated automatically on <UTC date>` and the expiration date the latest allowed (one year ahead).",
    security(("client" = [])),
    request_body(content = ApiSecretRequest, content_type = "application/json", description = "Optional (an empty body needs no `Content-Type`): `name` and `expires_on`. Unknown fields are refused."),
    responses(
        (status = 201, description = "Created: the value is shown this once; `Cache-Control: no-store`.", body = CreatedOut),
        (status = 401, description = "`invalid-client`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`pending-successor` (naming it), `at-limit` or `self-rotation-off`, checked in that order.", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "`validation`: the body could not be read.", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body-too-large`: over 16 KiB.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported-media-type`: a non-empty body that is not `application/json`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation`: the body, a name or a date the Manage page would refuse; `field` names it.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate-limited`: 2 secrets created through the API within 24 hours, or too many failed attempts (`Retry-After`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`unavailable`: retry later.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_secret(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let caller = match caller(&state, &headers, ip).await {
        Ok(c) => c,
        Err(response) => return response,
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                ProblemType::BodyTooLarge,
                "Body too large",
                "The body has at most 16 KiB.",
            );
        }
        Err(_) => {
            return validation(
                StatusCode::BAD_REQUEST,
                "Unreadable body",
                "The request's body could not be read.",
                None,
            );
        }
    };
    let request = if body.is_empty() {
        ApiSecretRequest::default()
    } else {
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if !super::syntax::media_type_is(content_type, "application/json") {
            return problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ProblemType::UnsupportedMediaType,
                "Unsupported media type",
                "Send the body as application/json, or send no body.",
            );
        }
        let shape = "The body must be a JSON object with optional \"name\" and \"expires_on\"";
        // An object first: serde would also read a struct from an array (["x", "2027-01-01"]).
        let object = match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            Ok(_) => return validation(StatusCode::UNPROCESSABLE_ENTITY, "Invalid body", &format!("{shape}."), None),
            Err(e) => {
                // serde_json's message says where (line, column), never what the body held.
                let detail = format!("{shape}; this is not JSON ({e}).");
                return validation(StatusCode::UNPROCESSABLE_ENTITY, "Invalid body", &detail, None);
            }
        };
        match serde_json::from_value::<ApiSecretRequest>(object) {
            Ok(r) => r,
            Err(e) => {
                // serde's message names the field ("unknown field `colour`", "invalid type: integer
                // `5`, expected a string") and never a value of ours.
                let detail = format!("{shape}: {e}.");
                return validation(StatusCode::UNPROCESSABLE_ENTITY, "Invalid body", &detail, None);
            }
        }
    };
    let limit = state.settings.secret_limit;
    let now = state.clock.now();
    match api_create_secret(&state.store, caller, &request, (limit, &state.settings.base_url, ip), now).await {
        Ok(created) => {
            state.services.mailer.wake();
            let s = &created.secret;
            let mut response = (
                StatusCode::CREATED,
                Json(CreatedOut {
                    id: s.id,
                    value: created.value.expose().to_owned(),
                    hint: s.hint.clone(),
                    name: s.name.clone(),
                    expires_on: s.expires_on,
                    expires_at: s.expires_at,
                }),
            )
                .into_response();
            response.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            no_store(response)
        }
        Err(refusal) => {
            let conflict =
                |reason: ProblemType, title: &str, detail: &str| problem(StatusCode::CONFLICT, reason, title, detail);
            match refusal {
                ApiRefusal::Validation(field, message) => {
                    validation(StatusCode::UNPROCESSABLE_ENTITY, "Invalid field", &message, Some(field))
                }
                ApiRefusal::PendingSuccessor(id, hint) => pending_successor(
                    &format!(
                        "This secret already created its successor (id {id}, hint {hint}): use it, then delete this one."
                    ),
                    Successor { id, hint: hint.to_string() },
                ),
                ApiRefusal::AtLimit => conflict(
                    ProblemType::AtLimit,
                    "At the secret limit",
                    &format!("The application has {limit} unexpired secrets, the most allowed: delete one first."),
                ),
                ApiRefusal::SelfRotationOff(forbidden) => conflict(
                    ProblemType::SelfRotationOff,
                    "Self-rotation is off",
                    if forbidden {
                        "WMDA does not allow self-rotation for this application: create secrets on the Manage API Credentials page, and ask WMDA support if you need it."
                    } else {
                        "A credential manager can turn self-rotation on for this application on the Manage API Credentials page."
                    },
                ),
                ApiRefusal::RateLimited(retry_after) => {
                    let mut response = problem(
                        StatusCode::TOO_MANY_REQUESTS,
                        ProblemType::RateLimited,
                        "Too many secrets created",
                        "An application can create at most 2 secrets through the API within 24 hours: Retry-After says when the next may be created.",
                    );
                    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                        response.headers_mut().insert(header::RETRY_AFTER, v);
                    }
                    response
                }
                ApiRefusal::Store(StoreError::NotFound) => invalid_client(),
                ApiRefusal::Store(e) => {
                    tracing::error!(error = %e, "cannot create a secret through the API");
                    unavailable()
                }
            }
        }
    }
}

/// `DELETE /api/v1/self/secrets/{id}`: 204 when `{id}` is an ancestor of the caller (deleted now
/// or before); 404 `not-found` for anything else, a malformed id included.
#[utoipa::path(
    delete,
    path = "/api/v1/self/secrets/{id}",
    tag = "self",
    summary = "Delete an ancestor of the caller",
    description = "Deletes the secret `id` when it is an ancestor of the caller: the secret that created the caller through this API, or that secret's ancestor, recursively. Anything else (the caller itself, a newer secret, one made on the Manage page, another application's) is 404, never saying which.",
    security(("client" = [])),
    params(("id" = String, Path, description = "The secret's id (a UUID).")),
    responses(
        (status = 204, description = "Deleted, now or before."),
        (status = 401, description = "`invalid-client`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not-found`: not an ancestor of the caller, or not a UUID.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate-limited`: too many failed attempts from this address (`Retry-After`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`unavailable`: retry later.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_secret(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Response {
    let caller = match caller(&state, &headers, ip).await {
        Ok(c) => c,
        Err(response) => return response,
    };
    // A path segment that is not even text (`%FF`) is no secret's id either.
    // Only the id as GET /self gives it (hyphenated, either case): not {braced}, urn:uuid: or bare hex.
    let canonical =
        |id: &str| uuid::Uuid::parse_str(id).ok().filter(|u| u.hyphenated().to_string().eq_ignore_ascii_case(id));
    let Some(target) = id.ok().and_then(|Path(id)| canonical(&id)) else {
        return not_found();
    };
    match api_delete_secret(&state.store, caller, target, (&state.settings.base_url, ip), state.clock.now()).await {
        Ok(true) => {
            state.services.mailer.wake();
            no_store(StatusCode::NO_CONTENT.into_response())
        }
        Ok(false) => not_found(),
        Err(StoreError::NotFound) => invalid_client(),
        Err(e) => {
            tracing::error!(error = %e, "cannot delete a secret through the API");
            unavailable()
        }
    }
}
