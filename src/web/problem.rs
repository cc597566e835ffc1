//! RFC 9457 problem details for the machine routes (`/api/v1`): `application/problem+json`,
//! `Cache-Control: no-store`, and a `type` per reason, `urn:wmda:secret-portal:problem:<reason>`
//! (DESIGN.md section 8). Every reason is a [`ProblemType`], so the OpenAPI document and
//! `/api/docs` list exactly the ones the portal sends.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

// DESIGN.md section 8. The doc comment below is the OpenAPI schema's description: for partners.
/// Why a request was refused: the problem's `type`, a URN `urn:wmda:secret-portal:problem:<reason>`.
/// The API documentation (`/api/docs`) says what each means and what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum ProblemType {
    /// 401: wrong client ID or secret, or the secret is expired, deleted or exposed.
    #[serde(rename = "urn:wmda:secret-portal:problem:invalid-client")]
    InvalidClient,
    /// 409: the application has as many unexpired secrets as allowed.
    #[serde(rename = "urn:wmda:secret-portal:problem:at-limit")]
    AtLimit,
    /// 409: the caller already created a successor that is not yet abandoned.
    #[serde(rename = "urn:wmda:secret-portal:problem:pending-successor")]
    PendingSuccessor,
    /// 409: self-rotation is off for the application.
    #[serde(rename = "urn:wmda:secret-portal:problem:self-rotation-off")]
    SelfRotationOff,
    /// 404: no such secret among those the caller may delete, or no such route.
    #[serde(rename = "urn:wmda:secret-portal:problem:not-found")]
    NotFound,
    /// 400 or 422: the body breaks a rule; `field` names the field when one is to blame.
    #[serde(rename = "urn:wmda:secret-portal:problem:validation")]
    Validation,
    /// 415: a non-empty body that is not `application/json`.
    #[serde(rename = "urn:wmda:secret-portal:problem:unsupported-media-type")]
    UnsupportedMediaType,
    /// 413: the body is larger than the route accepts.
    #[serde(rename = "urn:wmda:secret-portal:problem:body-too-large")]
    BodyTooLarge,
    /// 429: too many attempts or creations; `Retry-After` says when to retry.
    #[serde(rename = "urn:wmda:secret-portal:problem:rate-limited")]
    RateLimited,
    /// 405: the route does not take this method.
    #[serde(rename = "urn:wmda:secret-portal:problem:method-not-allowed")]
    MethodNotAllowed,
    /// 503: the portal cannot answer now (its database); retry later.
    #[serde(rename = "urn:wmda:secret-portal:problem:unavailable")]
    Unavailable,
    /// 401: a leak report's signature is missing or does not verify.
    #[serde(rename = "urn:wmda:secret-portal:problem:invalid-signature")]
    InvalidSignature,
    /// 503: the leak-report keys file cannot be read now; send the report again later.
    #[serde(rename = "urn:wmda:secret-portal:problem:keys-unreadable")]
    KeysUnreadable,
}

impl ProblemType {
    /// Every problem type, in the order above.
    pub const ALL: [ProblemType; 13] = [
        ProblemType::InvalidClient,
        ProblemType::AtLimit,
        ProblemType::PendingSuccessor,
        ProblemType::SelfRotationOff,
        ProblemType::NotFound,
        ProblemType::Validation,
        ProblemType::UnsupportedMediaType,
        ProblemType::BodyTooLarge,
        ProblemType::RateLimited,
        ProblemType::MethodNotAllowed,
        ProblemType::Unavailable,
        ProblemType::InvalidSignature,
        ProblemType::KeysUnreadable,
    ];

    /// The reason, e.g. `at-limit`.
    pub fn reason(self) -> &'static str {
        match self {
            ProblemType::InvalidClient => "invalid-client",
            ProblemType::AtLimit => "at-limit",
            ProblemType::PendingSuccessor => "pending-successor",
            ProblemType::SelfRotationOff => "self-rotation-off",
            ProblemType::NotFound => "not-found",
            ProblemType::Validation => "validation",
            ProblemType::UnsupportedMediaType => "unsupported-media-type",
            ProblemType::BodyTooLarge => "body-too-large",
            ProblemType::RateLimited => "rate-limited",
            ProblemType::MethodNotAllowed => "method-not-allowed",
            ProblemType::Unavailable => "unavailable",
            ProblemType::InvalidSignature => "invalid-signature",
            ProblemType::KeysUnreadable => "keys-unreadable",
        }
    }

    /// The `type` URI, `urn:wmda:secret-portal:problem:<reason>`.
    pub fn uri(self) -> String {
        format!("urn:wmda:secret-portal:problem:{}", self.reason())
    }

    /// The HTTP status(es) it comes with, and what it means, for people.
    pub fn meaning(self) -> (&'static str, &'static str) {
        match self {
            ProblemType::InvalidClient => (
                "401",
                "Client authentication failed: a wrong client ID or secret, or a secret that is expired, deleted or \
                 found in public. The answer is the same for each, with WWW-Authenticate: Basic.",
            ),
            ProblemType::AtLimit => {
                ("409", "The application has as many unexpired secrets as allowed: delete one it no longer needs.")
            }
            ProblemType::PendingSuccessor => (
                "409",
                "This secret already created its successor (the answer names its id and hint): switch to it, then \
                 delete this one. A successor unused for an hour is replaced by the next request.",
            ),
            ProblemType::SelfRotationOff => (
                "409",
                "Self-rotation is off for the application: a credential manager turns it on on the Manage API \
                 Credentials page.",
            ),
            ProblemType::NotFound => (
                "404",
                "No such secret among those this caller may delete (only the secrets that created it), or no such \
                 route.",
            ),
            ProblemType::Validation => (
                "400, 422",
                "The body breaks a rule: the detail says which, and field names the field when one is to blame.",
            ),
            ProblemType::UnsupportedMediaType => ("415", "A non-empty body must be application/json."),
            ProblemType::BodyTooLarge => ("413", "The body is larger than the route accepts."),
            ProblemType::RateLimited => (
                "429",
                "Too many failed attempts from this address, too many secrets created through the API (2 per \
                 application per 24 hours), or too many unsigned leak reports: retry after Retry-After seconds.",
            ),
            ProblemType::MethodNotAllowed => ("405", "The route does not take this method."),
            ProblemType::Unavailable => ("503", "The portal cannot answer now: retry later."),
            ProblemType::InvalidSignature => ("401", "A leak report's signature is missing or does not verify."),
            ProblemType::KeysUnreadable => {
                ("503", "The leak-report keys cannot be read now: send the report again later.")
            }
        }
    }
}

/// An RFC 9457 problem details object (`application/problem+json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Why: one URN per reason.
    #[serde(rename = "type")]
    pub problem_type: ProblemType,
    /// A short summary, the same for every occurrence of the type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What happened and what to do, in words.
    pub detail: String,
    /// `validation` only: the field to blame (`name`, `expires_on`), or null for the body as a whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = true)]
    pub field: Option<Option<String>>,
    /// `pending-successor` only: the successor this caller already created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub successor: Option<Successor>,
}

/// The successor named by a `pending-successor` problem.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Successor {
    /// Its id.
    pub id: uuid::Uuid,
    /// Its hint: `wmdacs_` and the first three characters after it.
    pub hint: String,
}

/// An RFC 9457 problem of `problem_type` with `status`, `title` and `detail`.
pub fn problem(status: StatusCode, problem_type: ProblemType, title: &str, detail: &str) -> Response {
    respond(
        status,
        Problem {
            problem_type,
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.to_owned(),
            field: None,
            successor: None,
        },
    )
}

/// A `validation` problem (422, or `status`) blaming `field` (`None`: the body as a whole).
pub fn validation(status: StatusCode, title: &str, detail: &str, field: Option<&str>) -> Response {
    respond(
        status,
        Problem {
            problem_type: ProblemType::Validation,
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.to_owned(),
            field: Some(field.map(str::to_owned)),
            successor: None,
        },
    )
}

/// A `pending-successor` problem (409) naming `successor`.
pub fn pending_successor(detail: &str, successor: Successor) -> Response {
    respond(
        StatusCode::CONFLICT,
        Problem {
            problem_type: ProblemType::PendingSuccessor,
            title: "A successor exists".to_owned(),
            status: StatusCode::CONFLICT.as_u16(),
            detail: detail.to_owned(),
            field: None,
            successor: Some(successor),
        },
    )
}

/// Under `/api/v1`, every error answer is a problem (DESIGN.md section 8), also those made by
/// the layers around the routes (a NUL in the path, the request timeout, a body limit): an error
/// that is not `application/problem+json` already becomes the problem of its status, keeping its
/// `Retry-After`, `Allow` and `WWW-Authenticate`. Other paths pass through unchanged.
pub async fn errors_as_problems(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let path = request.uri().path();
    let api = path == "/api/v1" || path.starts_with("/api/v1/");
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !api || is_problem || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (problem_type, title, detail) = match status {
        StatusCode::NOT_FOUND => (ProblemType::NotFound, "Not found", "There is no such route under /api/v1."),
        StatusCode::METHOD_NOT_ALLOWED => {
            (ProblemType::MethodNotAllowed, "Method not allowed", "This route does not take that method.")
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            (ProblemType::BodyTooLarge, "Body too large", "The body is larger than this route accepts.")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            (ProblemType::UnsupportedMediaType, "Unsupported media type", "Send the body as application/json.")
        }
        StatusCode::TOO_MANY_REQUESTS => (ProblemType::RateLimited, "Too many requests", "Retry later."),
        StatusCode::UNAUTHORIZED => {
            (ProblemType::InvalidClient, "Client authentication failed", "Authenticate with HTTP Basic.")
        }
        s if s.is_server_error() => {
            (ProblemType::Unavailable, "Try again later", "The portal could not answer in time.")
        }
        _ => (
            ProblemType::Validation,
            "The request could not be read",
            "The request's path, query or headers could not be read.",
        ),
    };
    let mut answer = problem(status, problem_type, title, detail);
    for name in [header::RETRY_AFTER, header::ALLOW, header::WWW_AUTHENTICATE] {
        if let Some(v) = response.headers().get(&name) {
            answer.headers_mut().insert(name, v.clone());
        }
    }
    answer.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    answer
}

fn respond(status: StatusCode, body: Problem) -> Response {
    let mut response = (status, Json(body)).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_type_serialises_as_its_uri() {
        for t in ProblemType::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), serde_json::Value::String(t.uri()));
        }
    }
}
