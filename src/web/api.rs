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
use serde_json::json;

use super::AppState;
use super::extract::ClientIp;
use super::problem::{problem, problem_with};
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
        "invalid-client",
        "Client authentication failed",
        "Authenticate with HTTP Basic: the client ID and one of its application's current client secrets.",
    );
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"secret-portal\""));
    response
}

fn unavailable() -> Response {
    problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Try again later", "The portal cannot answer now.")
}

fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, "not-found", "Not found", "No such secret among the ones this caller may delete.")
}

/// Any other path under `/api/v1`: 404 `not-found`, a problem like every answer of the API.
pub async fn no_such_route() -> Response {
    problem(StatusCode::NOT_FOUND, "not-found", "Not found", "There is no such route under /api/v1.")
}

/// A method the route does not take: 405 `method-not-allowed`, a problem like every answer of the API.
pub async fn method_not_allowed() -> Response {
    problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "This route does not take that method: see GET /api/v1/self, POST /api/v1/self/secrets and DELETE /api/v1/self/secrets/{id}.",
    )
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
                    "rate-limited",
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
pub async fn get_self(State(state): State<AppState>, ClientIp(ip): ClientIp, headers: HeaderMap) -> Response {
    let caller = match caller(&state, &headers, ip).await {
        Ok(c) => c,
        Err(response) => return response,
    };
    let Ok(mut apps) = state.store.all_applications(Some(caller.application_id), None).await else {
        return unavailable();
    };
    let Some(m) = apps.pop() else { return invalid_client() };
    let secrets: Vec<serde_json::Value> = m
        .secrets
        .iter()
        .map(|s| {
            // A person by display name only: a creator without one is shown without a name, never
            // by email address.
            let created_by = match (&s.created_by_name, s.secret.created_by_secret_id) {
                (Some(_), _) => match &s.creator_display_name {
                    Some(name) => json!({ "kind": "person", "name": name }),
                    None => json!({ "kind": "person" }),
                },
                (None, Some(_)) => json!({ "kind": "application" }),
                (None, None) => json!({ "kind": "wmda" }),
            };
            json!({
                "id": s.secret.id,
                "name": s.secret.name,
                "hint": s.secret.hint,
                "created_at": s.secret.created_at,
                "created_by": created_by,
                "expires_on": s.secret.expires_on,
                "expires_at": s.secret.expires_at,
                "last_used_at": s.secret.last_used_at,
                "exposed_at": s.secret.exposure.as_ref().map(|e| e.at),
                "is_caller": s.secret.id == caller.secret_id,
            })
        })
        .collect();
    let resources: Vec<serde_json::Value> =
        m.resources.iter().map(|r| json!({ "id": r.id.as_str(), "audience": r.audience })).collect();
    no_store(
        Json(json!({
            "name": m.application.name,
            "client_id": m.application.client_id.to_string(),
            "api": m.application.api.as_str(),
            "resources": resources,
            "secret_limit": state.settings.secret_limit,
            "self_rotation": m.application.self_rotation,
            "secrets": secrets,
        }))
        .into_response(),
    )
}

/// `POST /api/v1/self/secrets`: the caller creates its successor (body optional: `name`,
/// `expires_on`). 201 with the value, shown this once; 409 `pending-successor` (naming it),
/// `at-limit` or `self-rotation-off`; 429 `rate-limited`; 422 `validation` with the field;
/// 415 for a non-empty body that is not `application/json`; 413 over 16 KiB.
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
    let Ok(body) = body else {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Body too large",
            "The body has at most 16 KiB.",
        );
    };
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        ApiSecretRequest::default()
    } else {
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if !super::syntax::media_type_is(content_type, "application/json") {
            return problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "Send the body as application/json, or send no body.",
            );
        }
        match serde_json::from_slice::<ApiSecretRequest>(&body) {
            Ok(r) => r,
            Err(e) => {
                // serde's message names the field and never holds a value of ours.
                let detail = format!("The body must be a JSON object with optional \"name\" and \"expires_on\": {e}.");
                return problem_with(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation",
                    "Invalid body",
                    &detail,
                    json!({ "field": null }),
                );
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
                Json(json!({
                    "id": s.id,
                    "value": created.value.expose(),
                    "hint": s.hint,
                    "name": s.name,
                    "expires_on": s.expires_on,
                    "expires_at": s.expires_at,
                })),
            )
                .into_response();
            response.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            no_store(response)
        }
        Err(refusal) => {
            let conflict =
                |reason: &str, title: &str, detail: &str| problem(StatusCode::CONFLICT, reason, title, detail);
            match refusal {
                ApiRefusal::Validation(field, message) => problem_with(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation",
                    "Invalid field",
                    &message,
                    json!({ "field": field }),
                ),
                ApiRefusal::PendingSuccessor(id, hint) => problem_with(
                    StatusCode::CONFLICT,
                    "pending-successor",
                    "A successor exists",
                    &format!(
                        "This secret already created its successor (id {id}, hint {hint}): use it, then delete this one."
                    ),
                    json!({ "successor": { "id": id, "hint": hint } }),
                ),
                ApiRefusal::AtLimit => conflict(
                    "at-limit",
                    "At the secret limit",
                    &format!("The application has {limit} unexpired secrets, the most allowed: delete one first."),
                ),
                ApiRefusal::SelfRotationOff => conflict(
                    "self-rotation-off",
                    "Self-rotation is off",
                    "A credential manager can turn self-rotation on for this application on the Manage API Credentials page.",
                ),
                ApiRefusal::RateLimited => {
                    let mut response = problem(
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate-limited",
                        "Too many secrets created",
                        "An application can create at most 2 secrets through the API within 24 hours.",
                    );
                    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("3600"));
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
pub async fn delete_secret(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let caller = match caller(&state, &headers, ip).await {
        Ok(c) => c,
        Err(response) => return response,
    };
    let Ok(target) = uuid::Uuid::parse_str(&id) else { return not_found() };
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
