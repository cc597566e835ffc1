//! Request tracing and HTTP metrics. Both use the route template (`MatchedPath`), never the raw
//! path, which may carry one-time tokens (DESIGN.md section 4).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Span;

use super::AppState;

fn route_of(req: &Request) -> String {
    req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned())
}

/// Counts requests by method, route template and status (`http_requests_total`) and records
/// their latency (`http_request_duration_seconds`, a histogram).
pub async fn track_http(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route_of(&req);
    let method = req.method().as_str().to_owned();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Removes an incoming `x-request-id` that is not 1 to 64 letters, digits, `-`, `_`, `.` or
/// `:` (a load balancer's id or a UUID), so a new UUID is made instead: a client cannot write
/// what it likes, or at any length, into every log line of its request.
pub async fn drop_unusable_request_id(mut req: Request, next: Next) -> Response {
    let usable = |v: &axum::http::HeaderValue| {
        let b = v.as_bytes();
        (1..=64).contains(&b.len()) && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
    };
    let headers = req.headers_mut();
    let values: Vec<_> = headers.get_all("x-request-id").iter().cloned().collect();
    if values.len() > 1 || values.first().is_some_and(|v| !usable(v)) {
        headers.remove("x-request-id");
    }
    next.run(req).await
}

/// A span per request with method, route template and request id; no query string, no headers.
pub fn make_span(req: &Request) -> Span {
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    tracing::info_span!("request", method = %req.method(), route = %route_of(req), request_id = %request_id)
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let (size, idle) = state.store.pool_state();
    metrics::gauge!("db_pool_connections", "state" => "idle").set(idle as f64);
    metrics::gauge!("db_pool_connections", "state" => "in_use").set(size.saturating_sub(idle as u32) as f64);
    if let Ok(depth) = state.store.outbox_depth().await {
        metrics::gauge!("outbox_emails", "state" => "queued").set(depth.queued as f64);
        metrics::gauge!("outbox_emails", "state" => "retrying").set(depth.retrying as f64);
        metrics::gauge!("outbox_emails", "state" => "failed").set(depth.failed as f64);
    }
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}
