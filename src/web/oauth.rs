//! The token endpoint's HTTP mapping and the discovery documents. These routes serve machines:
//! no session, no cookie, no CSRF check (DESIGN.md section 3, Tokens).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::extract::ClientIp;
use crate::oauth::OAuthError;
use crate::oauth::endpoint::Refusal;
use crate::oauth::request::Authorization;

fn no_store(mut response: Response) -> Response {
    let h = response.headers_mut();
    // RFC 6749 5.1: the answer must not be cached.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn error_response(e: &OAuthError) -> Response {
    let status = match e {
        OAuthError::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
        OAuthError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        OAuthError::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response =
        (status, Json(json!({ "error": e.code(), "error_description": e.description() }))).into_response();
    match e {
        // RFC 6749 5.2: 401 with WWW-Authenticate when the client used the Authorization header.
        OAuthError::InvalidClient { basic: true } => {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"secret-portal\""));
        }
        OAuthError::TooManyRequests { retry_after } => {
            if let Ok(v) = HeaderValue::from_str(&(*retry_after).max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        _ => {}
    }
    no_store(response)
}

/// What the `Authorization` header holds for client authentication (RFC 6749 2.3.1): HTTP
/// Basic credentials, another scheme, or nothing. The token endpoint and the machine API read it
/// the same way.
pub(super) fn authorization(headers: &HeaderMap) -> Authorization<'_> {
    match headers.get(header::AUTHORIZATION) {
        None => Authorization::None,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| super::syntax::credentials_for_scheme(v, "Basic"))
            .map_or(Authorization::Other, Authorization::Basic),
    }
}

/// `POST /oauth2/token`: `grant_type=client_credentials`, client authentication by Basic or by
/// form fields, the resource by `resource=` or `scope=`. Maps HTTP onto
/// [`crate::oauth::TokenEndpoint::token`] and its answer onto the RFC 6749 5.1 JSON (plus the
/// Azure AD v1 fields) or a 5.2 error.
pub async fn token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        // Past the route's body limit (a few KiB), or a body that broke off.
        let e = OAuthError::InvalidRequest("The request body is larger than a token request.");
        let mut response = refuse(None, ip, &e);
        *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        return response;
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let form = super::syntax::media_type_is(content_type, "application/x-www-form-urlencoded");
    let authorization = authorization(&headers);
    match state.services.tokens.token(form, authorization, &body, ip, state.clock.now()).await {
        Ok(response) => {
            metrics::counter!("tokens_issued_total").increment(1);
            no_store(Json(response).into_response())
        }
        Err(Refusal { error, quiet: true, .. }) => {
            metrics::counter!("tokens_refused_total", "error" => error.code()).increment(1);
            error_response(&error)
        }
        Err(Refusal { error, client_id, quiet: false }) => refuse(client_id.as_deref(), ip, &error),
    }
}

/// Counts a refusal (`tokens_refused_total` by error code), logs it with the client ID and the
/// address, never the secret, and gives its answer. Successes are counted, not logged.
fn refuse(client_id: Option<&str>, ip: std::net::IpAddr, e: &OAuthError) -> Response {
    metrics::counter!("tokens_refused_total", "error" => e.code()).increment(1);
    tracing::info!(client_id = client_id.unwrap_or(""), %ip, error = e.code(), "token request refused");
    error_response(e)
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414), also served at
/// `/.well-known/openid-configuration` for resource-server libraries that look there.
pub async fn metadata(State(state): State<AppState>) -> Response {
    let issuer = state.settings.base_url.as_str();
    Json(json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "response_types_supported": ["token"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
        "subject_types_supported": ["public"],
    }))
    .into_response()
}

/// `GET /.well-known/jwks.json`: the public keys tokens may be signed with, a rotated one
/// before it signs and a retired one until its last token (and any cached copy) has expired;
/// cached for the `--jwks-max-age` (60 s). Verifiers should refetch on an unknown `kid`.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let keys = &state.services.tokens.issuer.keys;
    match keys.jwks(state.clock.now()).await {
        Ok(published) => {
            let mut response = Json(json!({ "keys": published })).into_response();
            let max_age = keys.schedule().max_age.num_seconds();
            if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
                response.headers_mut().insert(header::CACHE_CONTROL, v);
            }
            response
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the signing keys");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
