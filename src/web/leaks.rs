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
use super::problem::problem;
use crate::domain::failure_window::ThrottleVerdict;
use crate::domain::leak::{ReportError, parse_report};
use crate::domain::throttle::{Counting, ThrottleRule};
use crate::oauth::leaks::SignatureError;
use crate::store::Actor;

/// Unsigned reports (and reports whose signature fails) per address (IPv6: per /64): 10 a
/// minute, then 429 until the window ends; shared by replicas. Signed reports are not counted.
pub const UNSIGNED_RULE: ThrottleRule =
    ThrottleRule { scope: "leak", limit: 10, period: chrono::Duration::minutes(1), counting: Counting::Window };

/// The signature headers of GitHub's secret-scanning partner program.
const KEY_ID: &str = "github-public-key-identifier";
const SIGNATURE: &str = "github-public-key-signature";

fn too_many(retry_after: i64) -> Response {
    let mut response = problem(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
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
    let Ok(body) = body else {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Report too large",
            "A leak report has at most 64 KiB.",
        );
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
            "keys-unreadable",
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
                return problem(StatusCode::UNAUTHORIZED, "invalid-signature", "Signature refused", &e.to_string());
            }
            None
        }
    };
    let items = match parse_report(&body) {
        Ok(items) => items,
        Err(e) => {
            let status =
                if e == ReportError::NotJson { StatusCode::BAD_REQUEST } else { StatusCode::UNPROCESSABLE_ENTITY };
            return problem(status, "validation", "The report cannot be read", &e.to_string());
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
                "unavailable",
                "Try again later",
                "The report could not be recorded; send it again.",
            )
        }
    }
}
