//! The only module that knows HTTP: the router, middleware and handlers.

mod health;
mod observability;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, StatusCode};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::Config;
use crate::domain::Clock;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The clock (movable in tests).
    pub clock: Arc<dyn Clock>,
    /// The resolved configuration.
    pub config: Arc<Config>,
    /// The Prometheus recorder's handle.
    pub metrics: PrometheusHandle,
}

impl AppState {
    /// Bundles the parts.
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: Arc<Config>) -> Self {
        Self {
            store,
            clock,
            config,
            metrics: crate::telemetry::metrics_handle(),
        }
    }
}

/// How long a request may take before it is answered 503.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The portal's router. `/metrics` is on it unless it has its own address.
pub fn router(state: AppState, with_metrics: bool) -> Router {
    let mut app = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    if with_metrics {
        app = app.route("/metrics", get(observability::metrics));
    }
    app.fallback(not_found)
        .with_state(state)
        // Layers run bottom-up on the way in: request id first, then tracing and metrics.
        .layer(axum::middleware::from_fn(observability::track_http))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(observability::make_span)
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(
            X_REQUEST_ID.clone(),
            MakeRequestUuid,
        ))
}

/// The router of the separate metrics address (`PORTAL_METRICS_BIND`).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(observability::metrics))
        .with_state(state)
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "Not found\n")
}
