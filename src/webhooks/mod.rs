//! Webhook delivery's HTTP transport (issue 17; DESIGN.md section 9): a `reqwest` client that can
//! only reach globally reachable unicast addresses. Its own resolver
//! ([`GuardedResolver`], a `reqwest::dns::Resolve`) resolves each name once, drops every address
//! [`crate::domain::webhook::refused_address`] refuses and fails when none is left; the connection
//! uses exactly the addresses it kept, so a second lookup (DNS rebinding) cannot change them.
//! Literal addresses never reach a resolver: [`WebhookUrl`] checks them when it is parsed, which
//! every delivery does. No proxy (the environment's included), no redirects, `https://` only, and
//! at most [`MAX_ANSWER_BYTES`] of an answer are read. `PORTAL_WEBHOOK_ALLOW_PRIVATE=on` lifts the
//! address ranges and the scheme, for tests on loopback and internal networks.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::domain::webhook::{WebhookUrl, refused_address};

/// The master key's purpose label for endpoint URLs.
pub const URL_PURPOSE: &[u8] = b"webhook-url";
/// The master key's purpose label for signing secrets.
pub const SIGNING_SECRET_PURPOSE: &[u8] = b"webhook-signing-secret";

/// How long a delivery may take, connection included (DESIGN.md section 9: a 2xx within 10 s).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of an answer read (only its status is kept).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Looks a host name up: the system's resolver in the portal, an injected one in tests.
#[async_trait::async_trait]
pub trait Lookup: Send + Sync {
    /// The addresses of `host`.
    ///
    /// # Errors
    /// When the name cannot be resolved.
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver (`getaddrinfo`, through tokio).
pub struct SystemLookup;

#[async_trait::async_trait]
impl Lookup for SystemLookup {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 0)).await?.map(|a| a.ip()).collect())
    }
}

/// Every address of a name was refused: nothing to connect to.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves only to addresses the portal does not deliver to ({why})")]
pub struct Refused {
    /// The name.
    pub host: String,
    /// Why the first address was refused, e.g. `private`.
    pub why: &'static str,
}

/// The client's resolver: resolves once, keeps only globally reachable unicast addresses.
pub struct GuardedResolver {
    lookup: Arc<dyn Lookup>,
    allow_private: bool,
}

impl GuardedResolver {
    /// A resolver over `lookup`; `allow_private` keeps every address.
    pub fn new(lookup: Arc<dyn Lookup>, allow_private: bool) -> Self {
        Self { lookup, allow_private }
    }

    /// The addresses of `host` a delivery may connect to.
    ///
    /// # Errors
    /// The lookup's error, or [`Refused`] when no address is left.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let all = self.lookup.lookup(host).await?;
        if self.allow_private {
            return Ok(all);
        }
        let first_refusal = all.iter().find_map(|ip| refused_address(*ip)).unwrap_or("no address");
        let kept: Vec<IpAddr> = all.into_iter().filter(|ip| refused_address(*ip).is_none()).collect();
        if kept.is_empty() {
            return Err(Box::new(Refused { host: host.to_owned(), why: first_refusal }));
        }
        Ok(kept)
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (lookup, allow_private) = (Arc::clone(&self.lookup), self.allow_private);
        Box::pin(async move {
            let guard = GuardedResolver { lookup, allow_private };
            let kept = guard.addresses(name.as_str()).await?;
            // The port is the URL's: the connector sets it on each address.
            let addrs: reqwest::dns::Addrs = Box::new(kept.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// The delivery client: the guarded resolver over `lookup`, no proxy, no redirects, `https://`
/// only (unless `allow_private`), [`DELIVERY_TIMEOUT`].
///
/// # Errors
/// When the TLS back end cannot start.
pub fn client(lookup: Arc<dyn Lookup>, allow_private: bool) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver::new(lookup, allow_private)))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .https_only(!allow_private)
        .timeout(DELIVERY_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("secret-portal-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Why a delivery got no answer. Its text names no URL path (a Slack or Teams URL is a
/// credential).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Every address was refused, or the URL is not one the portal delivers to.
    #[error("refused: {0}")]
    Refused(String),
    /// No answer within [`DELIVERY_TIMEOUT`], or the connection failed.
    #[error("no answer: {0}")]
    NoAnswer(String),
}

/// POSTs `body` (JSON) with `headers` to `url` through `client`, reading at most
/// [`MAX_ANSWER_BYTES`] of the answer. Returns the answer's status; a redirect is returned as
/// it is (3xx), never followed.
///
/// # Errors
/// [`DeliveryError`].
pub async fn post(
    client: &reqwest::Client,
    url: &WebhookUrl,
    headers: &[(&'static str, String)],
    body: Vec<u8>,
) -> Result<u16, DeliveryError> {
    let mut request = client.post(url.as_url().clone()).header(reqwest::header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let mut response = request.body(body).send().await.map_err(|e| describe(&e, url))?;
    let status = response.status().as_u16();
    let mut read = 0;
    while read < MAX_ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            _ => break,
        }
    }
    Ok(status)
}

/// `e` in words, without the URL (reqwest's errors carry it whole).
fn describe(e: &reqwest::Error, url: &WebhookUrl) -> DeliveryError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<Refused>() {
            return DeliveryError::Refused(refused.to_string());
        }
        source = s.source();
    }
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    DeliveryError::NoAnswer(format!("{what} ({})", url.host()))
}
