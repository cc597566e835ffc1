//! RFC 9457 problem details for the machine routes (`/api/v1`): `application/problem+json`,
//! `Cache-Control: no-store`, and a `type` per reason, `urn:wmda:secret-portal:problem:<reason>`
//! (DESIGN.md section 8).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An RFC 9457 problem: `type` is `urn:wmda:secret-portal:problem:<reason>` (DESIGN.md section 8).
pub fn problem(status: StatusCode, reason: &str, title: &str, detail: &str) -> Response {
    problem_with(status, reason, title, detail, serde_json::Value::Null)
}

/// [`problem`] with extension members (`extra`, a JSON object) beside the standard ones.
pub fn problem_with(status: StatusCode, reason: &str, title: &str, detail: &str, extra: serde_json::Value) -> Response {
    let mut body = serde_json::json!({
        "type": format!("urn:wmda:secret-portal:problem:{reason}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    if let (Some(body), serde_json::Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let mut response = (status, Json(body)).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
