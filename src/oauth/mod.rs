//! The token endpoint's logic (RFC 6749 client credentials grant, RFC 9068 JWT access tokens,
//! RFC 8414 metadata) as typed results and an [`OAuthError`]; no HTTP types here.

pub mod client_secrets;
pub mod endpoint;
pub mod keys;
pub mod leaks;
pub mod request;
pub mod throttle;
pub mod token;
pub mod usage;
pub mod webhook_endpoints;

pub use endpoint::TokenEndpoint;
pub use keys::{Jwk, SigningKeys};
pub use request::{ClientAuth, TokenRequest};
pub use token::{TokenIssuer, TokenResponse};

/// An error of the token endpoint, as RFC 6749 section 5.2 defines them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// Malformed request: missing or repeated parameter, two client authentication methods,
    /// a body that is not form-encoded, `resource` and `scope` naming different resources.
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// Client authentication failed (unknown client, wrong, expired or deleted secret). Always 401;
    /// `basic` says whether HTTP Basic was used (then `WWW-Authenticate: Basic` is sent).
    #[error("invalid_client")]
    InvalidClient {
        /// Basic authentication was used.
        basic: bool,
    },
    /// Another grant type than `client_credentials`.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// The resource or scope is unknown, not held by the application, or several scopes.
    #[error("invalid_scope: {0}")]
    InvalidScope(&'static str),
    /// Too many failures for this client ID from this address (not an RFC 6749 code; answered 429).
    #[error("too many failed attempts")]
    TooManyRequests {
        /// Seconds to wait.
        retry_after: i64,
    },
    /// The portal failed (database unavailable); answered 503.
    #[error("temporarily_unavailable")]
    TemporarilyUnavailable,
}

impl OAuthError {
    /// The RFC 6749 `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient { .. } => "invalid_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::TooManyRequests { .. } => "slow_down",
            OAuthError::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    /// A human-readable `error_description` (never naming what exactly was wrong with a client's
    /// credentials).
    pub fn description(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(d) | OAuthError::InvalidScope(d) => d,
            OAuthError::InvalidClient { .. } => "Client authentication failed.",
            OAuthError::UnsupportedGrantType => "Only grant_type=client_credentials is supported.",
            OAuthError::TooManyRequests { .. } => {
                "Too many failed attempts from this address (for this client, or in all); retry later."
            }
            OAuthError::TemporarilyUnavailable => "The service is temporarily unavailable; retry later.",
        }
    }
}
