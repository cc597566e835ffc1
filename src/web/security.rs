//! Security headers, the CSRF check and the per-IP failure limit.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::csrf::CsrfLayer;

use super::AppState;
use super::error::AppError;
use super::extract::ClientIp;
use crate::domain::BaseUrl;
use crate::domain::failure_window::ThrottleVerdict;
use crate::store::AuditAction;

/// The Content Security Policy: scripts and styles from the portal itself only (no inline
/// script), images also as `data:` (the enrolment QR code), no framing (ASVS 5.0 3.4.3).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to every response: CSP, `nosniff`, `Referrer-Policy: same-origin`
/// (one-time links never leave in a Referer), no framing, HSTS when the base URL is https, and
/// `Cache-Control: no-store` unless the handler set a cache policy (static assets do).
pub async fn headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if state.settings.base_url.is_https() {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Refuses, with a 400 page, a request whose path or query string holds a NUL character
/// (`%00`), before any route reads it: path segments and query values reach lookups and the
/// audit filters, and no store keeps U+0000 (issue 12). Forms check their bodies the same way
/// ([`super::extract::parse_fields`]); the token endpoint its parameters.
pub async fn refuse_nul(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let in_path = super::syntax::encodes_nul(uri.path().as_bytes());
    if in_path || uri.query().is_some_and(|q| super::syntax::encodes_nul(q.as_bytes())) {
        if uri.path().starts_with("/oauth2/") {
            // Machines get the token endpoint's JSON error (RFC 6749 5.2), not a page.
            return (
                axum::http::StatusCode::BAD_REQUEST,
                axum::Json(
                    serde_json::json!({ "error": "invalid_request", "error_description": super::syntax::NUL_REFUSED }),
                ),
            )
                .into_response();
        }
        return AppError::BadRequest(super::syntax::NUL_REFUSED).into_response();
    }
    next.run(request).await
}

/// tower-http's CSRF check (Origin / `Sec-Fetch-Site`), trusting the base URL's origin.
///
/// # Errors
/// When the base URL's origin is not a valid origin.
pub fn csrf_layer(base_url: &BaseUrl) -> anyhow::Result<CsrfLayer> {
    CsrfLayer::new()
        .add_trusted_origin(base_url.origin())
        .map_err(|e| anyhow::anyhow!("PORTAL_BASE_URL cannot be the trusted origin: {e:?}"))
}

/// Answers 429 with `Retry-After` on the sign-in, invitation and password routes while the
/// client's address (IPv6: its /64) has 30 failures in the last 10 minutes. A refused request
/// counts in the address's own window; the block's first refusal writes one audit event
/// (`auth.throttled`, scope `ip`), the others none.
pub async fn per_ip_failure_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    refuse_while_blocked(state, request, next, "ip").await
}

/// Answers 429 on the one-time-link routes (`/invite/{token}`, `/password/reset/{token}`) while
/// the client's address has 30 unknown or unusable link tokens in the last 10 minutes: their own
/// window, apart from sign-in failures.
pub async fn per_ip_link_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    refuse_while_blocked(state, request, next, "link").await
}

async fn refuse_while_blocked(state: AppState, request: Request, next: Next, scope: &'static str) -> Response {
    let (mut parts, body) = request.into_parts();
    let Ok(ClientIp(ip)) = ClientIp::from_request_parts(&mut parts, &state).await;
    let now = state.clock.now();
    let throttle = &state.services.throttle;
    // Shared by replicas: this replica's memory, then the database's block (issue 12).
    let verdict = if scope == "link" {
        throttle.check_link_shared(&state.store, ip, now).await
    } else {
        throttle.check_ip_shared(&state.store, ip, now).await
    };
    if let ThrottleVerdict::Blocked { retry_after } = verdict {
        metrics::counter!("sign_in_throttled_total", "scope" => scope).increment(1);
        let first = if scope == "link" { throttle.link_refused(ip, now) } else { throttle.refused(None, ip, now) };
        if first {
            let actor = crate::store::Actor { user_id: None, label: ip.to_string(), ip: Some(ip.to_string()) };
            let event = actor
                .event(AuditAction::Throttled, now)
                .with_details(serde_json::json!({ "scope": scope, "retry_after_seconds": retry_after.num_seconds() }));
            if let Err(e) = state.store.record_audit_event(&event).await {
                tracing::warn!(error = %e, "cannot record a throttling audit event");
            }
        }
        return AppError::TooManyRequests { retry_after_seconds: ThrottleVerdict::retry_after_seconds(retry_after) }
            .into_response();
    }
    // A link request, or a POST on the sign-in routes, in progress counts as a failure of the
    // address until it is answered, so a burst of simultaneous requests meets the limit as
    // sequential ones do.
    let attempt = if scope == "link" {
        Some(throttle.begin_link(ip, now))
    } else if parts.method == axum::http::Method::POST {
        Some(throttle.begin_ip(ip, now))
    } else {
        None
    };
    let _attempt = match attempt {
        Some(Err(ThrottleVerdict::Blocked { retry_after })) => {
            metrics::counter!("sign_in_throttled_total", "scope" => scope).increment(1);
            return AppError::TooManyRequests {
                retry_after_seconds: ThrottleVerdict::retry_after_seconds(retry_after),
            }
            .into_response();
        }
        other => other,
    };
    next.run(Request::from_parts(parts, body)).await
}
