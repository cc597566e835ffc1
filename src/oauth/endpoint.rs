//! The token endpoint's use case, one call ([`TokenEndpoint::token`]) for every way in (the
//! HTTP route today): parse the request (RFC 6749 4.4.2, 2.3.1), apply the failure limits
//! ([`TokenThrottle`]: 10 failures a minute per client ID and address, shared by replicas,
//! behind a pre-limit per address), authenticate the client and issue the token
//! ([`TokenIssuer`]) and note the secret's use ([`UsageRecorder`]). A refusal comes back with the
//! client ID as it may be logged (only a parsed one: a value that is none may be a secret sent in
//! the wrong field, DESIGN.md section 6); the caller counts and logs.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use super::request::{Authorization, ClientAuth};
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
        let request = &request;
        let issued =
            self.guarded(&request.auth, ip, now, |key| async move {
                self.issuer.issue(&self.store, request, &key, now).await
            })
            .await
            .inspect_err(|refusal| {
                // Refusals per client ID per day (issue 18, point 2): in memory, written off the
                // request path; a value that is no client ID is not one to count.
                if matches!(refusal.error, OAuthError::InvalidClient { .. })
                    && let Ok(client_id) = ClientId::parse(&request.auth.client_id)
                {
                    self.usage.refused(client_id.as_uuid(), now, ip);
                }
            })?;
        self.usage.record(issued.secret_id, now, ip);
        Ok(issued.response)
    }

    /// Authenticates a machine API caller (DESIGN.md section 8) at `now` from `ip`: HTTP Basic
    /// with the client ID and a live secret that no leak report found, through the same client
    /// authentication, fast refusal and throttle as [`TokenEndpoint::token`]. The caller's use is
    /// not recorded (only token use moves `last_used_at`).
    ///
    /// # Errors
    /// A [`Refusal`]: `invalid_client` (401 with `WWW-Authenticate: Basic`) for anything but a
    /// live, unexposed secret of that client ID; 429 while blocked.
    pub async fn authenticate(
        &self,
        authorization: Authorization<'_>,
        ip: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<Caller, Refusal> {
        let invalid = OAuthError::InvalidClient { basic: true };
        let Authorization::Basic(encoded) = authorization else {
            return Err(Refusal { error: invalid, client_id: None, quiet: false });
        };
        let (client_id, secret) =
            super::request::basic(encoded).map_err(|error| Refusal { error, client_id: None, quiet: false })?;
        let auth = &ClientAuth { client_id, client_secret: secrecy::SecretString::from(secret), basic: true };
        self.guarded(auth, ip, now, |key| async move {
            match TokenIssuer::client(&self.store, auth, &key, now).await? {
                c if c.exposed => Err(invalid),
                c => Ok(Caller { secret_id: c.secret_id, application_id: c.application_id, client_id: c.client_id }),
            }
        })
        .await
    }

    /// Runs `check` (the client's authentication) behind the refusals every client
    /// authentication shares: a malformed `wmdacs_` value is refused before any query or
    /// throttle (DESIGN.md section 7), then the failure limits ([`TokenThrottle`]) apply, and an
    /// `invalid_client` counts as a failure.
    async fn guarded<T, F, Fut>(
        &self,
        auth: &ClientAuth,
        ip: IpAddr,
        now: DateTime<Utc>,
        check: F,
    ) -> Result<T, Refusal>
    where
        F: FnOnce(crate::domain::throttle::ThrottleKey) -> Fut,
        Fut: std::future::Future<Output = Result<T, OAuthError>>,
    {
        use secrecy::ExposeSecret as _;
        // Keyed on the parsed client ID (every spelling ClientId::parse accepts is one key) and
        // the address's bucket (IPv6 per /64): refusing one address never refuses the same client
        // from another.
        let key = TokenThrottle::key(&auth.client_id, ip);
        // Logged only as a parsed client ID: a value that is none may be a secret sent in the
        // wrong field.
        let client_id =
            ClientId::parse(&auth.client_id).map_or_else(|_| "(not a client ID)".to_owned(), |id| id.to_string());
        let refuse = |error: OAuthError| Refusal { error, client_id: Some(client_id.clone()), quiet: false };
        // A `wmdacs_` value of the wrong length or alphabet, or whose checksum fails, cannot be a
        // secret of ours: refused with a wrong secret's answer before any query, and before the
        // throttle, so a stream of them costs no database work and blocks no one (DESIGN.md
        // section 7). Counted in `client_secrets_malformed_total` only.
        if Shape::of(auth.client_secret.expose_secret()) == Shape::MalformedV2 {
            metrics::counter!("client_secrets_malformed_total").increment(1);
            return Err(Refusal { quiet: true, ..refuse(OAuthError::InvalidClient { basic: auth.basic }) });
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
        check(key).await.map_err(|e| {
            match e {
                OAuthError::InvalidClient { .. } => self.throttle.failed(key, ip, now),
                OAuthError::TooManyRequests { retry_after } => {
                    // Another replica's failures blocked the key: cached until the block ends.
                    self.throttle.clients.learn(key, now + chrono::Duration::seconds(retry_after), now);
                    self.throttle.refused(key, ip, now);
                }
                _ => {}
            }
            refuse(e)
        })
    }
}

/// A machine API caller: the secret presented (DESIGN.md section 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The secret's id.
    pub secret_id: uuid::Uuid,
    /// Its application.
    pub application_id: uuid::Uuid,
    /// Its application's client ID.
    pub client_id: ClientId,
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
