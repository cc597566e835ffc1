//! `POST /api/v1/leaks` (issue 15, point 4; DESIGN.md section 7): leak reports in GitHub's
//! secret-scanning partner format. A machine route: no session, no cookie, no CSRF check. Errors
//! are RFC 9457 problem details.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::extract::ClientIp;
use super::problem::{Problem, ProblemType, problem};
use crate::domain::failure_window::ThrottleVerdict;
use crate::domain::leak::{ReportError, parse_report};
use crate::domain::throttle::{Counting, ThrottleRule};
use crate::oauth::leaks::SignatureError;
use crate::store::Actor;

/// Unsigned reports (and reports whose signature fails) per address (IPv6: per /64): 10 a
/// minute, then 429 until the window ends; shared by replicas. Signed reports are not counted.
pub const UNSIGNED_RULE: ThrottleRule =
    ThrottleRule { scope: "leak", limit: 10, period: chrono::Duration::minutes(1), counting: Counting::Window };

// The body is read by `parse_report`, which cuts each field to its limit; this type only
// describes it, and its doc comment is the OpenAPI schema's description.
/// One item of a leak report, as GitHub's secret-scanning partner program sends it; only `token`
/// is required.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct LeakReportItem {
    /// The value found. Never stored or logged; the answer names it by its SHA-256.
    token: String,
    /// The kind of token, as the scanner calls it; echoed in the answer.
    #[schema(rename = "type")]
    token_type: Option<String>,
    /// Where it was found.
    url: Option<String>,
    /// What found it, e.g. `content`, `commit`.
    source: Option<String>,
}

/// The signature headers of GitHub's secret-scanning partner program.
const KEY_ID: &str = "github-public-key-identifier";
const SIGNATURE: &str = "github-public-key-signature";

fn too_many(retry_after: i64) -> Response {
    let mut response = problem(
        StatusCode::TOO_MANY_REQUESTS,
        ProblemType::RateLimited,
        "Too many unsigned reports",
        "This address sent 10 unsigned or badly signed leak reports within a minute; retry later.",
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// `POST /api/v1/leaks`: at most 64 KiB and 100 items. With `PORTAL_LEAK_REPORT_KEYS` set, the
/// signature headers must verify against the exact body (checked before parsing) or the answer
/// is 401; without it, unsigned reports are accepted. Unsigned reports and refused signatures
/// count towards 10 a minute per address (429 with `Retry-After`); verified ones never do. The answer is 200 with one
/// `{"token_hash", "token_type", "label"}` per item, and never says more than the label.
#[utoipa::path(
    post,
    path = "/api/v1/leaks",
    tag = "leaks",
    summary = "Report client secrets found in public",
    description = "GitHub's secret-scanning partner format: a JSON array of at most 100 items, at most 64 KiB. When the portal is configured with GitHub's public keys, the signature headers must verify against the exact body. A live secret reported here is marked exposed at once and its credential managers are emailed; it can no longer call this API, and, when the portal is set to delete reported secrets, no longer obtain tokens either.",
    params(
        ("Github-Public-Key-Identifier" = Option<String>, Header, description = "The id of the key that signed the body (GitHub's key file)."),
        ("Github-Public-Key-Signature" = Option<String>, Header, description = "Base64 ECDSA P-256 SHA-256 signature of the exact body."),
    ),
    request_body(content = Vec<LeakReportItem>, content_type = "application/json"),
    responses(
        (status = 200, description = "One answer per item, in order.", body = Vec<crate::domain::leak::ReportAnswer>),
        (status = 400, description = "`validation`: not JSON, or the body could not be read.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`invalid-signature`: missing or refused signature.", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body-too-large`: over 64 KiB.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation`: not an array of reports, or over 100 items.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate-limited`: over 10 unsigned or badly signed reports a minute from this address (`Retry-After`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`keys-unreadable` or `unavailable`: send the report again later.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn report(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let now = state.clock.now();
    let leaks = &state.services.leaks;
    let key = crate::auth::throttle::address_key(ip);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (key_id, signature) = (header(KEY_ID), header(SIGNATURE));
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                ProblemType::BodyTooLarge,
                "Report too large",
                "A leak report has at most 64 KiB.",
            );
        }
        Err(_) => {
            let detail = "The request's body could not be read.";
            return problem(StatusCode::BAD_REQUEST, ProblemType::Validation, "Unreadable report", detail);
        }
    };
    // A report whose signature verifies is never limited (DESIGN.md section 7: signed ones are
    // exempt); it is checked first, on the raw body, before anything is parsed.
    let verified = match (leaks.keys.is_set(), &key_id, &signature) {
        (false, ..) => None,
        (true, Some(id), Some(sig)) => Some(leaks.keys.verify(id, sig, &body).map(|()| id.trim().to_owned())),
        (true, ..) => Some(Err(SignatureError::Missing)),
    };
    if let Some(Err(SignatureError::Unreadable)) = verified {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            ProblemType::KeysUnreadable,
            "Leak reports cannot be checked now",
            &SignatureError::Unreadable.to_string(),
        );
    }
    let signed_by = match verified {
        Some(Ok(id)) => Some(id),
        unsigned_or_refused => {
            // Unsigned reports and refused signatures: 10 a minute per address, checked and
            // counted at once, so simultaneous ones cannot all pass the check first.
            if let ThrottleVerdict::Blocked { retry_after } = leaks.unsigned.check_shared(&state.store, &key, now).await
            {
                leaks.unsigned.refused(key, now);
                return too_many(ThrottleVerdict::retry_after_seconds(retry_after));
            }
            let Ok(_attempt) = leaks.unsigned.begin(key, now) else {
                return too_many(1);
            };
            leaks.unsigned.record(key, now);
            if let Some(Err(e)) = unsigned_or_refused {
                return problem(
                    StatusCode::UNAUTHORIZED,
                    ProblemType::InvalidSignature,
                    "Signature refused",
                    &e.to_string(),
                );
            }
            None
        }
    };
    let items = match parse_report(&body) {
        Ok(items) => items,
        Err(e) => {
            let status =
                if e == ReportError::NotJson { StatusCode::BAD_REQUEST } else { StatusCode::UNPROCESSABLE_ENTITY };
            return problem(status, ProblemType::Validation, "The report cannot be read", &e.to_string());
        }
    };
    let label = match &signed_by {
        Some(id) => format!("leak report (signed with {id})"),
        None => "leak report (unsigned)".to_owned(),
    };
    let actor = Actor { user_id: None, label, ip: Some(ip.to_string()) };
    let delete = leaks.delete && signed_by.is_some();
    let base_url = &state.settings.base_url;
    match crate::oauth::client_secrets::report_leaks(
        &state.store,
        &items,
        (&actor, signed_by.as_deref(), delete),
        base_url,
        now,
    )
    .await
    {
        Ok((answers, emails)) => {
            if emails > 0 {
                state.services.mailer.wake();
            }
            let mut response = Json(answers).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot record a leak report");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                ProblemType::Unavailable,
                "Try again later",
                "The report could not be recorded; send it again.",
            )
        }
    }
}
