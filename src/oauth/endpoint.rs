//! The token endpoint's use case, one call ([`TokenEndpoint::token`]) for every way in (the
//! HTTP route today): parse the request (RFC 6749 4.4.2, 2.3.1), apply the failure limits
//! ([`TokenThrottle`]: 10 failures a minute per client ID and address, shared by replicas,
//! behind a pre-limit per address), authenticate the client and issue the token
//! ([`TokenIssuer`]) and note the secret's use ([`UsageRecorder`]). A refusal comes back with the
//! client ID as it may be logged (only a parsed one: a value that is none may be a secret sent in
//! the wrong field, DESIGN.md section 6); the caller counts and logs.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use super::request::Authorization;
use super::throttle::TokenThrottle;
use super::usage::UsageRecorder;
use super::{OAuthError, TokenIssuer, TokenRequest, TokenResponse};
use crate::domain::{ClientId, Shape, ThrottleVerdict};
use crate::store::Store;

/// The token endpoint: issuer, throttle and usage recorder over the store; one per process.
#[derive(Debug)]
pub struct TokenEndpoint {
    /// Token issuance with the signing keys.
    pub issuer: TokenIssuer,
    /// Failures per (client ID, address) and per address.
    pub throttle: TokenThrottle,
    /// Secret uses, written off the request path (`jobs::usage`).
    pub usage: UsageRecorder,
    store: Store,
}

impl TokenEndpoint {
    /// The endpoint over `store`.
    pub fn new(issuer: TokenIssuer, throttle: TokenThrottle, store: Store) -> Self {
        Self { issuer, throttle, usage: UsageRecorder::default(), store }
    }

    /// Answers one token request at `now` (UTC) from `ip`: `form` says whether the body was
    /// sent as `application/x-www-form-urlencoded`, `authorization` what the `Authorization`
    /// header held.
    ///
    /// # Errors
    /// A [`Refusal`]: the [`OAuthError`] to answer and the loggable client ID.
    pub async fn token(
        &self,
        form: bool,
        authorization: Authorization<'_>,
        body: &[u8],
        ip: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<TokenResponse, Refusal> {
        let request = TokenRequest::parse(form, authorization, body).map_err(|error| Refusal {
            error,
            client_id: None,
            quiet: false,
        })?;
        // Keyed on the parsed client ID (every spelling ClientId::parse accepts is one key) and
        // the address's bucket (IPv6 per /64): refusing one address never refuses the same client
        // from another.
        let key = TokenThrottle::key(&request.auth.client_id, ip);
        // Logged only as a parsed client ID: a value that is none may be a secret sent in the
        // wrong field.
        let client_id = ClientId::parse(&request.auth.client_id)
            .map_or_else(|_| "(not a client ID)".to_owned(), |id| id.to_string());
        let refuse = |error: OAuthError| Refusal { error, client_id: Some(client_id.clone()), quiet: false };
        // A `wmdacs_` value of the wrong length or alphabet, or whose checksum fails, cannot be a
        // secret of ours: refused with a wrong secret's answer before any query, and before the
        // throttle, so a stream of them costs no database work and blocks no one (DESIGN.md
        // section 7). Counted in `client_secrets_malformed_total` only.
        if Shape::of(request.secret()) == Shape::MalformedV2 {
            metrics::counter!("client_secrets_malformed_total").increment(1);
            return Err(Refusal { quiet: true, ..refuse(OAuthError::InvalidClient { basic: request.auth.basic }) });
        }
        // Held until the answer is decided: a request in progress counts as a failure.
        let _attempt = match self.throttle.begin(key, ip, now) {
            Ok(attempt) => attempt,
            Err(verdict) => {
                self.throttle.refused(key, ip, now);
                let retry_after = match verdict {
                    ThrottleVerdict::Blocked { retry_after } => ThrottleVerdict::retry_after_seconds(retry_after),
                    ThrottleVerdict::Allowed => 1,
                };
                return Err(refuse(OAuthError::TooManyRequests { retry_after }));
            }
        };
        match self.issuer.issue(&self.store, &request, &key, now).await {
            Ok(issued) => {
                self.usage.record(issued.secret_id, now);
                Ok(issued.response)
            }
            Err(e) => {
                match e {
                    OAuthError::InvalidClient { .. } => self.throttle.failed(key, ip, now),
                    OAuthError::TooManyRequests { retry_after } => {
                        // Another replica's failures blocked the key: cached until the block ends.
                        self.throttle.clients.learn(key, now + chrono::Duration::seconds(retry_after), now);
                        self.throttle.refused(key, ip, now);
                    }
                    _ => {}
                }
                Err(refuse(e))
            }
        }
    }
}

/// A refused token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What to answer.
    pub error: OAuthError,
    /// The client ID as logs may carry it: the parsed client ID, `(not a client ID)` for a value
    /// that is none, `None` when the request could not be read.
    pub client_id: Option<String>,
    /// Counted in metrics only, not logged: a malformed `wmdacs_` value (DESIGN.md section 7),
    /// which a flood could otherwise turn into a flood of log lines.
    pub quiet: bool,
}
