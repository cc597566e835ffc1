//! Issuing an access token: client authentication by the secret's SHA-256 (one indexed query),
//! the target resource, and an ES256 JWT as RFC 9068 describes.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;
use uuid::Uuid;

use super::OAuthError;
use super::keys::SigningKeys;
use super::request::TokenRequest;
use crate::domain::throttle::ThrottleKey;
use crate::domain::{ClientId, PlainSecret, ResourceId};
use crate::store::{Store, StoreError, TokenClient};

/// The JSON answer (RFC 6749 5.1 plus the fields Azure AD v1 clients read): numbers are JSON
/// numbers; no refresh token.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TokenResponse {
    /// The JWT.
    pub access_token: String,
    /// "Bearer".
    pub token_type: &'static str,
    /// Seconds: `exp - iat`.
    pub expires_in: i64,
    /// Unix seconds: `exp`.
    pub expires_on: i64,
    /// Unix seconds: `nbf`.
    pub not_before: i64,
    /// As requested, or the resolved resource id when none was sent.
    pub resource: String,
    /// `<audience>/.default`.
    pub scope: String,
}

/// RFC 9068 2.2 claims.
#[derive(Debug, Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: String,
    client_id: String,
    aud: &'a str,
    scope: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
}

/// What a successful issuance tells the caller besides the answer.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The answer.
    pub response: TokenResponse,
    /// The secret used (for the usage record).
    pub secret_id: Uuid,
}

/// Issues tokens.
#[derive(Debug, Clone)]
pub struct TokenIssuer {
    /// `iss`: `PORTAL_BASE_URL` without a trailing slash.
    pub issuer: String,
    /// Default lifetime.
    pub lifetime: Duration,
    /// The signing keys.
    pub keys: SigningKeys,
}

/// The resource a request names among those the application holds.
///
/// `resource=` and `scope=` take an id or an audience; `scope` may end in `/.default`; several
/// scope values are `invalid_scope`; both parameters must name the same resource; with none the
/// application's only resource is used (`invalid_request` when it holds several).
///
/// # Errors
/// `invalid_scope` or `invalid_request`.
pub fn resolve_resource<'a>(
    held: &'a [(ResourceId, String)],
    resource: Option<&str>,
    scope: Option<&str>,
) -> Result<(&'a (ResourceId, String), String), OAuthError> {
    let find = |name: &str| held.iter().find(|(id, audience)| id.as_str() == name || audience == name);
    let scope_name = match scope {
        Some(s) => {
            let values: Vec<&str> = s.split_whitespace().collect();
            if values.len() != 1 {
                return Err(OAuthError::InvalidScope("Request one scope."));
            }
            Some(values[0].strip_suffix("/.default").unwrap_or(values[0]).to_owned())
        }
        None => None,
    };
    match (resource, scope_name) {
        (Some(r), Some(s)) => {
            let a = find(r).ok_or(OAuthError::InvalidScope("The application does not hold this resource."))?;
            let b = find(&s).ok_or(OAuthError::InvalidScope("The application does not hold this resource."))?;
            if a.0 != b.0 {
                return Err(OAuthError::InvalidRequest("resource and scope name different resources."));
            }
            Ok((a, r.to_owned()))
        }
        (Some(r), None) => {
            Ok((find(r).ok_or(OAuthError::InvalidScope("The application does not hold this resource."))?, r.to_owned()))
        }
        (None, Some(s)) => {
            Ok((find(&s).ok_or(OAuthError::InvalidScope("The application does not hold this resource."))?, s))
        }
        (None, None) => match held {
            [only] => Ok((only, only.0.to_string())),
            _ => Err(OAuthError::InvalidRequest("Name the resource: resource=<id> or scope=<id>/.default.")),
        },
    }
}

impl TokenIssuer {
    /// Authenticates the client and issues a token at `now`.
    ///
    /// The secret is looked up by its SHA-256 (one indexed query) and must belong to the client ID
    /// presented, be undeleted, and not past its expiry instant. An unknown client ID and a wrong
    /// secret take the same path and get the same answer. The same query reads the shared
    /// throttle's block of `throttle_key` (the client ID and address, see
    /// [`super::throttle::TokenThrottle::key`]): a blocked key is refused whatever the secret.
    ///
    /// # Errors
    /// [`OAuthError`]; [`OAuthError::TooManyRequests`] with the whole seconds (rounded up) until
    /// the block ends.
    pub async fn issue(
        &self,
        store: &Store,
        request: &TokenRequest,
        throttle_key: &ThrottleKey,
        now: DateTime<Utc>,
    ) -> Result<Issued, OAuthError> {
        let client = Self::client(store, &request.auth, throttle_key, now).await?;
        self.sign(client, request, now)
    }

    /// Authenticates the client of `auth` at `now`: the secret is looked up by its SHA-256 (one
    /// indexed query that also reads the shared throttle's block of `throttle_key`) and must
    /// belong to the client ID presented, be undeleted and not past its expiry instant. The token
    /// endpoint and the machine API (DESIGN.md section 8) authenticate through this.
    ///
    /// # Errors
    /// [`OAuthError::InvalidClient`] for an unknown client ID or a wrong secret alike;
    /// [`OAuthError::TooManyRequests`] while the key is blocked; [`OAuthError::TemporarilyUnavailable`]
    /// when the database fails.
    pub async fn client(
        store: &Store,
        auth: &super::request::ClientAuth,
        throttle_key: &ThrottleKey,
        now: DateTime<Utc>,
    ) -> Result<TokenClient, OAuthError> {
        use secrecy::ExposeSecret as _;
        let invalid_client = OAuthError::InvalidClient { basic: auth.basic };
        let hash = PlainSecret::presented(auth.client_secret.expose_secret()).hash();
        // Any database failure is the portal's, not the client's: 503, retry later.
        let lookup = store
            .token_client(&hash, throttle_key, now)
            .await
            .map_err(|_: StoreError| OAuthError::TemporarilyUnavailable)?;
        if let Some(until) = lookup.blocked_until {
            let retry_after = crate::domain::failure_window::ThrottleVerdict::retry_after_seconds(until - now);
            return Err(OAuthError::TooManyRequests { retry_after });
        }
        let presented = ClientId::parse(&auth.client_id).ok();
        match lookup.client {
            Some(c) if Some(c.client_id) == presented && c.expires_at > now => Ok(c),
            _ => Err(invalid_client),
        }
    }

    /// Signs the token for an authenticated `client` at `now`.
    fn sign(&self, client: TokenClient, request: &TokenRequest, now: DateTime<Utc>) -> Result<Issued, OAuthError> {
        let (resource, as_requested) =
            resolve_resource(&client.resources, request.resource.as_deref(), request.scope.as_deref())?;
        let iat = now.timestamp();
        // exp never passes the secret's expiry instant.
        let exp = (now + self.lifetime).min(client.expires_at).timestamp();
        let audience = resource.1.as_str();
        let scope = format!("{audience}/.default");
        let key = self.keys.active(now).ok_or(OAuthError::TemporarilyUnavailable)?;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        // RFC 9068 2.1: typ "at+jwt".
        header.typ = Some("at+jwt".to_owned());
        let claims = Claims {
            iss: &self.issuer,
            sub: client.client_id.to_string(),
            client_id: client.client_id.to_string(),
            aud: audience,
            scope: scope.clone(),
            iat,
            nbf: iat,
            exp,
            jti: Uuid::new_v4().to_string(),
        };
        let access_token =
            jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(|_| OAuthError::TemporarilyUnavailable)?;
        Ok(Issued {
            response: TokenResponse {
                access_token,
                token_type: "Bearer",
                expires_in: exp - iat,
                expires_on: exp,
                not_before: iat,
                resource: as_requested,
                scope,
            },
            secret_id: client.secret_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held() -> Vec<(ResourceId, String)> {
        vec![
            (ResourceId::SearchMatchProduction, "api://wmda/search-match-production".into()),
            (ResourceId::SearchMatchSandbox, "api://wmda/search-match-sandbox".into()),
        ]
    }

    #[test]
    fn resources_resolve_by_id_or_audience_from_resource_or_scope() {
        let h = held();
        let ok = |r: Option<&str>, s: Option<&str>| resolve_resource(&h, r, s).map(|(res, req)| (res.0, req));
        assert_eq!(
            ok(Some("search-match-sandbox"), None),
            Ok((ResourceId::SearchMatchSandbox, "search-match-sandbox".into()))
        );
        assert_eq!(
            ok(None, Some("api://wmda/search-match-sandbox/.default")).unwrap().0,
            ResourceId::SearchMatchSandbox
        );
        assert_eq!(ok(None, Some("search-match-production")).unwrap().0, ResourceId::SearchMatchProduction);
        assert_eq!(
            ok(Some("search-match-sandbox"), Some("api://wmda/search-match-sandbox/.default")).unwrap().0,
            ResourceId::SearchMatchSandbox
        );
        assert_eq!(
            ok(Some("search-match-sandbox"), Some("search-match-production")).unwrap_err().code(),
            "invalid_request"
        );
        assert_eq!(ok(None, Some("a/.default b/.default")).unwrap_err().code(), "invalid_scope");
        assert_eq!(ok(Some("data-manager-production"), None).unwrap_err().code(), "invalid_scope");
        assert_eq!(ok(None, None).unwrap_err().code(), "invalid_request");
        let one = vec![(ResourceId::MatchConnectSandbox, "api://wmda/match-connect-sandbox".to_owned())];
        assert_eq!(resolve_resource(&one, None, None).unwrap().1, "match-connect-sandbox");
    }
}
