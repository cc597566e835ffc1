//! Liveness and readiness.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;

/// `GET /healthz`: 200 while the process runs.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// How long readiness waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /readyz`: 200 when the database answers within 2 s, 503 when it does not.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({ "status": "ready", "database": "ok" }))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: the database did not answer");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "database": "error" })))
        }
        Err(_) => {
            tracing::warn!("readiness check: the database did not answer in time");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "database": "timeout" })))
        }
    }
}
