//! Extractors: forms and query strings with bounded parameter counts, the client's IP, and the
//! signed-in user with the per-request session checks.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use tower_sessions::Session;

use super::AppState;
use super::error::AppError;
use super::session::AUTH_KEY;
use crate::auth::session::{SessionAuth, SessionCheck, check_signed_in};
use crate::store::{Actor, User, UserRole};

/// Most parameters a form or query string may carry unless its route says otherwise: the
/// portal's forms have at most five fields.
pub const DEFAULT_MAX_FIELDS: usize = 16;

/// Counts the `name=value` pairs of an `application/x-www-form-urlencoded` text (empty pieces
/// between `&`s do not count), stopping at `max + 1`: linear in the input, whatever it holds.
pub fn field_count(text: &[u8], max: usize) -> usize {
    text.split(|b| *b == b'&').filter(|piece| !piece.is_empty()).take(max.saturating_add(1)).count()
}

/// Parses form-urlencoded `text` into `T` after checking it has at most `max` parameters.
/// serde_html_form reads the pairs once (linear in the input) and takes repeated names as lists
/// (`resource=a&resource=b`).
///
/// # Errors
/// [`AppError::BadRequest`] for a NUL character, too many parameters or a value `T` refuses (never echoed).
pub fn parse_fields<T: DeserializeOwned>(text: &[u8], max: usize) -> Result<T, AppError> {
    if super::syntax::encodes_nul(text) {
        return Err(AppError::BadRequest(super::syntax::NUL_REFUSED));
    }
    if field_count(text, max) > max {
        return Err(AppError::BadRequest("The request has more fields than this page uses."));
    }
    serde_html_form::from_bytes(text).map_err(|_| AppError::BadRequest("The request's fields could not be read."))
}

/// A page form, `application/x-www-form-urlencoded`, of at most `MAX_FIELDS` parameters
/// (issue 12: a form of many distinct parameters costs what reading it costs). The body size is
/// bounded by the route's `DefaultBodyLimit` (413 past it). Refusals are pages, not internals.
#[derive(Debug, Clone)]
pub struct Form<T, const MAX_FIELDS: usize = DEFAULT_MAX_FIELDS>(pub T);

impl<T, S, const MAX_FIELDS: usize> FromRequest<S> for Form<T, MAX_FIELDS>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if !super::syntax::media_type_is(content_type, "application/x-www-form-urlencoded") {
            return Err(AppError::BadRequest("The request must be a form (application/x-www-form-urlencoded)."));
        }
        let body = Bytes::from_request(request, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge
            } else {
                AppError::BadRequest("The request's body could not be read.")
            }
        })?;
        parse_fields(&body, MAX_FIELDS).map(Form)
    }
}

/// A query string of at most `MAX_FIELDS` parameters (its length is bounded by the connection's
/// 64 KiB header buffer); a missing query is an empty one.
#[derive(Debug, Clone)]
pub struct Query<T, const MAX_FIELDS: usize = DEFAULT_MAX_FIELDS>(pub T);

impl<T, S, const MAX_FIELDS: usize> FromRequestParts<S> for Query<T, MAX_FIELDS>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        parse_fields(parts.uri.query().unwrap_or_default().as_bytes(), MAX_FIELDS).map(Query)
    }
}

/// The client's IP: the peer address, or, when the peer is a trusted proxy
/// (`PORTAL_TRUSTED_PROXIES`), the right-most address in `X-Forwarded-For` that is not itself a
/// trusted proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Works out the client IP from the peer and the `X-Forwarded-For` header lines, in the order
/// they came: several lines of one field are one comma-separated list (RFC 9110 5.3), so the
/// right-most untrusted hop is taken across all of them.
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &[ipnet::IpNet]) -> IpAddr {
    if !trusted.iter().any(|net| net.contains(&peer)) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for.iter().rev().flat_map(|line| line.rsplit(',')) {
        match forwarded_hop(hop) {
            Some(ip) => {
                client = ip;
                if !trusted.iter().any(|net| net.contains(&ip)) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

/// One `X-Forwarded-For` entry as proxies write it: an address, with or without a port
/// (`192.0.2.1:5555`, `[2001:db8::1]:443`), in brackets (`[2001:db8::1]`), or with an IPv6 zone
/// (`fe80::1%eth0`, the zone dropped); `None` for anything else.
pub fn forwarded_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = hop.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    let unbracketed = hop.strip_prefix('[').and_then(|h| h.split_once(']')).map_or(hop, |(inner, _)| inner);
    let unzoned = unbracketed.split_once('%').map_or(unbracketed, |(address, _)| address);
    unzoned.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        let forwarded: Vec<&str> =
            parts.headers.get_all("x-forwarded-for").iter().map(|v| v.to_str().unwrap_or("garbage")).collect();
        Ok(ClientIp(client_ip(peer, &forwarded, &state.settings.trusted_proxies)))
    }
}

/// A value a path segment names: a UUID, a client ID, a resource id.
pub trait PathSegment: Sized {
    /// The value, when the segment is one (exactly what the type's own `parse` accepts).
    fn parse_segment(text: &str) -> Option<Self>;
}

impl PathSegment for uuid::Uuid {
    fn parse_segment(text: &str) -> Option<Self> {
        uuid::Uuid::parse_str(text).ok()
    }
}

impl PathSegment for crate::domain::ClientId {
    fn parse_segment(text: &str) -> Option<Self> {
        crate::domain::ClientId::parse(text).ok()
    }
}

impl PathSegment for crate::domain::ResourceId {
    fn parse_segment(text: &str) -> Option<Self> {
        crate::domain::ResourceId::parse(text).ok()
    }
}

/// The one segment of a route's path as a `T`; a segment that is none answers 404, as an
/// unknown id does. Put it after the session extractors in a handler's arguments, so a
/// signed-out user is still sent to sign in first.
#[derive(Debug, Clone, Copy)]
pub struct PathId<T>(pub T);

impl<T: PathSegment, S: Send + Sync> FromRequestParts<S> for PathId<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let axum::extract::Path(text) =
            axum::extract::Path::<String>::from_request_parts(parts, state).await.map_err(|_| AppError::NotFound)?;
        T::parse_segment(&text).map(PathId).ok_or(AppError::NotFound)
    }
}

/// The two segments of a route's path as an `A` and a `B`; as [`PathId`], 404 otherwise.
#[derive(Debug, Clone, Copy)]
pub struct PathIds<A, B>(pub A, pub B);

impl<A: PathSegment, B: PathSegment, S: Send + Sync> FromRequestParts<S> for PathIds<A, B> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let axum::extract::Path((a, b)) = axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::NotFound)?;
        A::parse_segment(&a).zip(B::parse_segment(&b)).map(|(a, b)| PathIds(a, b)).ok_or(AppError::NotFound)
    }
}

/// A signed-in user (password and TOTP), checked on every request: the session is within its
/// idle (30 min) and absolute (12 h) limits, and the account is enabled, enrolled, and has not
/// ended its sessions since (disable, MFA reset, password change).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// The user.
    pub user: User,
    /// The client IP.
    pub ip: IpAddr,
    /// The one-time notice of the change this session made last, taken on a GET
    /// ([`super::notice`]), for the page's header.
    pub notice: Option<String>,
}

impl CurrentUser {
    /// The user as the actor of an audit event.
    pub fn actor(&self) -> Actor {
        Actor::user(&self.user, self.ip)
    }

    /// The name to show: display name, or email when empty.
    pub fn name(&self) -> &str {
        self.user.shown_name()
    }
}

fn request_path(parts: &Parts) -> Option<String> {
    (parts.method == axum::http::Method::GET)
        .then(|| parts.uri.path_and_query().map(|p| p.as_str().to_owned()))
        .flatten()
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let next = request_path(parts);
        let sign_in = move || AppError::SignInRequired { next: next.clone() };
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, msg)| AppError::Internal(anyhow::anyhow!("session layer missing: {msg}")))?;
        let auth = session.get::<SessionAuth>(AUTH_KEY).await?;
        let used_passkey = auth.as_ref().is_some_and(SessionAuth::used_passkey);
        let user = match check_signed_in(&state.store, auth, state.clock.now()).await? {
            SessionCheck::NotSignedIn => return Err(sign_in()),
            SessionCheck::Ended => {
                session.flush().await?;
                return Err(sign_in());
            }
            // Under PORTAL_ADMIN_MFA=passkey an admin's session needs a passkey sign-in (one
            // from before the mode was turned on ends).
            SessionCheck::Valid { user, .. } if !used_passkey && state.settings.passkey_required(&user) => {
                session.flush().await?;
                return Err(sign_in());
            }
            SessionCheck::Valid { user, refreshed } => {
                if let Some(auth) = refreshed {
                    session.insert(AUTH_KEY, auth).await?;
                }
                user
            }
        };
        let ClientIp(ip) =
            ClientIp::from_request_parts(parts, state).await.unwrap_or(ClientIp(IpAddr::from([0, 0, 0, 0])));
        // A page shows the notice; a POST leaves it for the page it redirects to.
        let notice = if parts.method == axum::http::Method::GET { super::notice::take(&session).await? } else { None };
        Ok(CurrentUser { user, ip, notice })
    }
}

/// A signed-in WMDA admin; anyone else gets 404.
#[derive(Debug, Clone)]
pub struct WmdaAdmin(pub CurrentUser);

impl FromRequestParts<AppState> for WmdaAdmin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let current = CurrentUser::from_request_parts(parts, state).await?;
        match current.user.role {
            UserRole::WmdaAdmin => Ok(WmdaAdmin(current)),
            UserRole::Member(_) => Err(AppError::NotFound),
        }
    }
}

/// A signed-in user of a partner organisation (a possible credential manager); WMDA admins get 404.
#[derive(Debug, Clone)]
pub struct OrganisationMember {
    /// The user.
    pub current: CurrentUser,
    /// Their organisation.
    pub organisation_id: uuid::Uuid,
}

impl FromRequestParts<AppState> for OrganisationMember {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let current = CurrentUser::from_request_parts(parts, state).await?;
        match current.user.role {
            UserRole::Member(organisation_id) => Ok(OrganisationMember { current, organisation_id }),
            UserRole::WmdaAdmin => Err(AppError::NotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let client: IpAddr = "198.51.100.7".parse().unwrap();
        // Untrusted peer: the header is ignored.
        assert_eq!(client_ip(client, &["203.0.113.9"], &trusted), client);
        // Trusted peer: the right-most untrusted hop.
        assert_eq!(client_ip(proxy, &["203.0.113.9, 198.51.100.7, 10.0.0.3"], &trusted), client);
        assert_eq!(client_ip(proxy, &[], &trusted), proxy);
        assert_eq!(client_ip(proxy, &["garbage"], &trusted), proxy);
        assert_eq!(client_ip(proxy, &["203.0.113.9"], &[]), proxy);
        // Several header lines are one list (RFC 9110 5.3): the right-most untrusted hop of all
        // of them, not of the first line only.
        assert_eq!(client_ip(proxy, &["203.0.113.9", "198.51.100.7, 10.0.0.3"], &trusted), client);
        assert_eq!(
            client_ip(proxy, &["203.0.113.9, 10.0.0.4", "10.0.0.3"], &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn forwarded_entries_with_ports_brackets_or_zones_name_their_address() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        for (entry, expected) in [
            ("198.51.100.7:5555", "198.51.100.7".parse().unwrap()),
            ("[2001:db8::1]", v6),
            ("[2001:db8::1]:443", v6),
            ("2001:db8::1%eth0", v6),
            ("[2001:db8::1%25eth0]:443", v6),
            (" 198.51.100.7 ", "198.51.100.7".parse().unwrap()),
        ] {
            assert_eq!(forwarded_hop(entry), Some(expected), "{entry}");
            assert_eq!(client_ip(proxy, &[entry], &trusted), expected, "{entry}");
        }
        for garbage in ["garbage", "unknown", "1.2.3", "[1.2.3.4]x", ""] {
            assert_eq!(forwarded_hop(garbage), None, "{garbage}");
        }
    }
}
