//! The only module that knows HTTP: the router, middleware and handlers.

mod account;
mod admin;
pub mod api;
mod assets;
pub mod audit_words;
mod auth;
pub mod confirm;
pub mod csv;
pub mod error;
pub mod extract;
mod health;
mod home;
pub mod leaks;
pub(crate) mod manage;
pub mod notice;
mod oauth;
mod observability;
pub mod openapi;
mod pages;
pub mod problem;
mod security;
pub mod session;
pub mod syntax;
mod webhook_views;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::{SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::auth::{PasswordHasher, RecoveryCodeKey, Throttle, TotpVault};
use crate::domain::{BaseUrl, Clock};
use crate::store::Store;

/// Long-lived services the handlers share.
#[derive(Debug)]
pub struct Services {
    /// argon2id with a bound on concurrent hashes.
    pub hasher: PasswordHasher,
    /// Failed-attempt throttling.
    pub throttle: Throttle,
    /// Key for recovery-code hashes.
    pub recovery_key: RecoveryCodeKey,
    /// Seals and opens the stored TOTP seeds (the master key stays inside).
    pub totp_vault: TotpVault,
    /// The outbox sender, to wake after queueing mail.
    pub mailer: crate::jobs::outbox::Sender,
    /// The token endpoint: issuance with the signing keys, failures per (client ID, address)
    /// (10 a minute answer 429, shared by replicas, behind a per-address pre-limit in memory),
    /// secret uses recorded off the request path.
    pub tokens: crate::oauth::TokenEndpoint,
    /// Password-reset requests, handled off the request path.
    pub password_resets: crate::jobs::password_resets::ResetRequests,
    /// Password-reset requests per address (IPv6: per /64): 10 an hour, then 429 for known and
    /// unknown emails alike.
    /// Shared by replicas.
    pub reset_requests: std::sync::Arc<crate::store::SharedWindow>,
    /// Leak reports (`POST /api/v1/leaks`): the signing keys, the action, and the window of
    /// unsigned reports per address (10 a minute, shared by replicas).
    pub leaks: LeakSettings,
    /// Passkeys (issue 19): the WebAuthn relying party of `PORTAL_BASE_URL`, off on an IP address.
    pub passkeys: crate::auth::passkey::Passkeys,
    /// Webhook endpoints (issue 17): adding, showing, testing, enabling; the master key stays inside.
    pub webhooks: crate::oauth::webhook_endpoints::WebhookEndpoints,
}

/// How `POST /api/v1/leaks` takes reports (issue 15, DESIGN.md section 7).
#[derive(Debug)]
pub struct LeakSettings {
    /// The keys reports must be signed with, when `PORTAL_LEAK_REPORT_KEYS` is set.
    pub keys: crate::oauth::leaks::LeakReportKeys,
    /// `PORTAL_LEAK_ACTION=delete`: signed reports delete a live secret as well.
    pub delete: bool,
    /// Unsigned reports (and bad signatures) per address: 10 a minute, then 429.
    pub unsigned: std::sync::Arc<crate::store::SharedWindow>,
}

impl Services {
    /// The throttle windows shared by replicas, for the job that writes their counts.
    pub fn shared_windows(&self) -> Vec<std::sync::Arc<crate::store::SharedWindow>> {
        let mut windows =
            vec![self.tokens.throttle.clients.clone(), self.reset_requests.clone(), self.leaks.unsigned.clone()];
        windows.extend(self.throttle.shared_windows());
        windows
    }
}

/// The settings the web layer reads, taken from the configuration at start (issue 13: the web
/// layer does not see the whole configuration, nor the master key).
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// The public URL (`PORTAL_BASE_URL`): the CSRF origin, the token issuer, links in pages.
    pub base_url: BaseUrl,
    /// Shown to users without a grant and on the error pages (`PORTAL_SUPPORT_EMAIL`).
    pub support_email: String,
    /// Proxies whose `X-Forwarded-For` is believed (`PORTAL_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The issuer label in the TOTP enrolment URI and QR code (`PORTAL_TOTP_ISSUER`).
    pub totp_issuer: String,
    /// Most unexpired secrets per application (`PORTAL_SECRET_LIMIT`).
    pub secret_limit: i64,
    /// Access token lifetime in seconds (`PORTAL_TOKEN_LIFETIME`), shown on the pages.
    pub token_lifetime_seconds: i64,
    /// `PORTAL_ADMIN_MFA=passkey`: WMDA admins sign in with a passkey only.
    pub admin_passkey_only: bool,
}

impl WebSettings {
    /// Whether `user` must sign in with a passkey: a WMDA admin under `PORTAL_ADMIN_MFA=passkey`
    /// (DESIGN.md section 11).
    pub fn passkey_required(&self, user: &crate::store::User) -> bool {
        self.admin_passkey_only && user.role == crate::store::UserRole::WmdaAdmin
    }
}

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The clock (movable in tests).
    pub clock: Arc<dyn Clock>,
    /// The settings the pages and the token endpoint read.
    pub settings: Arc<WebSettings>,
    /// The Prometheus recorder's handle.
    pub metrics: PrometheusHandle,
    /// Shared services.
    pub services: Arc<Services>,
}

/// How many argon2 hashes may run at once: one per core. A hash keeps a core busy for its whole
/// run, so more at once only adds 12 MiB each without more throughput (BENCHMARKS.md: under
/// 64 MB resident under sign-in load, issue 8).
pub fn password_hash_bound() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// The largest body of the token endpoint, the sign-in, invitation and password forms and the
/// credential manager's forms: a few KiB (a 128-character password and its confirmation,
/// percent-encoded, are under 1.6 KiB each).
pub const SMALL_BODY_LIMIT: usize = 8 * 1024;
/// The largest body of an admin form: the application form with one `resource` per allowed
/// resource.
pub const ADMIN_BODY_LIMIT: usize = 64 * 1024;

/// Renders the error page (500, with an operation id) for a handler that panicked, instead of
/// a reset connection (tower-http `CatchPanicLayer`). The panic's text is logged, never shown.
pub fn catch_panic_layer()
-> tower_http::catch_panic::CatchPanicLayer<fn(Box<dyn std::any::Any + Send>) -> axum::response::Response> {
    fn render(panic: Box<dyn std::any::Any + Send>) -> axum::response::Response {
        let text = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        error::internal(&format!("a handler panicked: {text}"))
    }
    tower_http::catch_panic::CatchPanicLayer::custom(render as fn(_) -> _)
}

/// How long a request may take before it is answered 503.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The portal's router. `/metrics` is on it unless it has its own address.
///
/// # Errors
/// When the base URL cannot be a trusted CSRF origin.
pub fn router(
    state: AppState,
    session_store: crate::store::sessions::PortalSessionStore,
    with_metrics: bool,
) -> anyhow::Result<Router> {
    // One-time-link routes: unknown tokens have a window of their own (and sign-in's below).
    let links = Router::new()
        .route("/invite/{token}", get(auth::invite::show).post(auth::invite::submit))
        .route("/password/reset/{token}", get(auth::password::reset_show).post(auth::password::reset_submit))
        .route("/passkey/enrol/{token}", get(auth::passkey_setup::link_show).post(auth::passkey_setup::link_submit))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), security::per_ip_link_limit));
    // Sign-in, invitation and password routes: the per-IP failure limit answers 429 here.
    let sign_in = Router::new()
        .route("/login", get(auth::login::show).post(auth::login::submit))
        .route("/login/mfa", get(auth::mfa::show).post(auth::mfa::submit))
        .route("/login/mfa/passkey/options", post(auth::passkey::second_step_options))
        .route("/login/mfa/passkey", post(auth::passkey::second_step_finish))
        .route("/login/passkey/options", post(auth::passkey::passwordless_options))
        .route("/login/passkey", post(auth::passkey::passwordless_finish))
        .route("/passkey/setup", get(auth::passkey_setup::setup_show))
        .route("/passkey/setup/options", post(auth::passkey_setup::setup_options))
        .route("/passkey/setup", post(auth::passkey_setup::setup_finish))
        .route("/mfa/setup", get(auth::enrol::show).post(auth::enrol::submit))
        .route("/password/forgot", get(auth::password::forgot_show).post(auth::password::forgot_submit))
        .merge(links)
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), security::per_ip_failure_limit));
    // Pages: sessions, and the CSRF check on every state-changing request (DESIGN.md section 4).
    let pages = Router::new()
        .route("/", get(home::root))
        .route("/logout", post(auth::login::logout))
        .route("/manage-clients", get(home::manage_clients))
        .route("/api/docs", get(openapi::docs_page))
        .route("/api/docs/rotate.sh", get(openapi::rotate_script))
        .merge(account::routes())
        .merge(manage::routes())
        .merge(admin::routes().layer(DefaultBodyLimit::max(ADMIN_BODY_LIMIT)))
        .merge(sign_in)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), pages::signed_in_not_found))
        .layer(session::layer(session_store))
        .layer(security::csrf_layer(&state.settings.base_url)?);
    // Machines' routes: no session, no cookie, no CSRF check.
    let machines = Router::new()
        .route("/oauth2/token", post(oauth::token))
        // The machine API: every answer under /api/v1, an unknown path or method included, is a
        // problem (DESIGN.md section 8).
        .nest(
            "/api/v1",
            Router::new()
                .route(
                    "/leaks",
                    post(leaks::report).layer(DefaultBodyLimit::max(crate::domain::leak::MAX_REPORT_BYTES)),
                )
                .route("/openapi.json", get(openapi::openapi_json))
                .route("/self", get(api::get_self))
                .route("/self/secrets", post(api::create_secret).layer(DefaultBodyLimit::max(api::API_BODY_LIMIT)))
                .route("/self/secrets/{id}", axum::routing::delete(api::delete_secret))
                .fallback(api::no_such_route)
                .method_not_allowed_fallback(api::method_not_allowed),
        )
        .route("/.well-known/oauth-authorization-server", get(oauth::metadata))
        .route("/.well-known/openid-configuration", get(oauth::metadata))
        .route("/.well-known/jwks.json", get(oauth::jwks));
    let mut app = Router::new()
        .merge(machines)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/static/{*path}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon));
    if with_metrics {
        app = app.route("/metrics", get(observability::metrics));
    }
    Ok(app
        .merge(pages)
        .with_state(state.clone())
        // A handler's panic becomes the error page, with the security headers below.
        .layer(catch_panic_layer())
        // No route reads a NUL character from its path or query.
        .layer(axum::middleware::from_fn(security::refuse_nul))
        // Every route reads at most a few KiB unless it says more (the admin forms).
        .layer(DefaultBodyLimit::max(SMALL_BODY_LIMIT))
        // Layers run bottom-up on the way in: request id first, then tracing and metrics.
        .layer(axum::middleware::from_fn_with_state(state, security::headers))
        .layer(axum::middleware::from_fn(observability::track_http))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(observability::make_span)
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
        )
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, REQUEST_TIMEOUT))
        // Under /api/v1 every error is a problem, the timeout's and the NUL refusal's included.
        .layer(axum::middleware::from_fn(problem::errors_as_problems))
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID.clone()))
        // Credentials in headers (Basic client secrets, session cookies) are marked sensitive, so
        // any layer that prints headers shows them as "Sensitive" (DESIGN.md section 6).
        .layer(SetSensitiveResponseHeadersLayer::new([header::SET_COOKIE]))
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
        .layer(SetRequestIdLayer::new(X_REQUEST_ID.clone(), MakeRequestUuid))
        .layer(axum::middleware::from_fn(observability::drop_unusable_request_id)))
}

/// The router of the separate metrics address (`PORTAL_METRICS_BIND`).
pub fn metrics_router(state: AppState) -> Router {
    Router::new().route("/metrics", get(observability::metrics)).with_state(state)
}

async fn not_found() -> impl IntoResponse {
    error::not_found()
}
