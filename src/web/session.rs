//! Sessions over HTTP: the tower-sessions layer with the portal's cookie rules, on the session
//! store of `store::sessions`. What a session holds and when it stands is `auth::session`.
//!
//! The cookie is `__Host-portal-session`: `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`, no
//! `Domain` (DESIGN.md section 4). Browsers accept `Secure` cookies on `http://127.0.0.1` and
//! `http://localhost`, so the embedded default needs no switch. The session id changes after the
//! password step and again after the TOTP step (ASVS 5.0 7.2.4).

use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::auth::session::IDLE_TIMEOUT;
use crate::store::sessions::PortalSessionStore;

/// The session cookie's name; `__Host-` makes browsers insist on `Secure`, `Path=/` and no
/// `Domain`.
pub const SESSION_COOKIE: &str = "__Host-portal-session";
/// The session key holding [`crate::auth::session::SessionAuth`].
pub const AUTH_KEY: &str = "auth";

/// The session layer with the portal's cookie rules.
pub fn layer(sessions: PortalSessionStore) -> SessionManagerLayer<PortalSessionStore> {
    SessionManagerLayer::new(sessions)
        .with_name(SESSION_COOKIE)
        .with_secure(true)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        // The record expires after the idle timeout unless written; the portal writes
        // `last_seen` once a minute while in use.
        .with_expiry(Expiry::OnInactivity(tower_sessions::cookie::time::Duration::minutes(IDLE_TIMEOUT.num_minutes())))
}
