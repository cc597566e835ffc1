//! Webhooks' pure rules (issue 17; DESIGN.md section 9): which URLs an endpoint may have, which
//! addresses a delivery may connect to (the SSRF guard's classifier), and the Standard Webhooks
//! signature of a `standard` delivery.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use ipnet::{Ipv4Net, Ipv6Net};
use sha2::Sha256;

/// Most characters in an endpoint's URL (DESIGN.md section 9).
pub const MAX_URL_CHARS: usize = 2_000;

/// IPv4 ranges that are not globally reachable unicast (IANA IPv4 Special-Purpose Address
/// Registry, RFC 6890 and its updates; multicast and reserved), each with its name.
const REFUSED_V4: [(&str, &str); 16] = [
    ("0.0.0.0/8", "\"this network\""),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
];

/// IPv6 ranges inside global unicast (2000::/3) that are not globally reachable, or that carry
/// an IPv4 address a delivery must not reach through a translator (IANA IPv6 Special-Purpose
/// Address Registry). Everything outside 2000::/3 (loopback, unspecified, IPv4-mapped and
/// -compatible, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, discard 100::/64, unique-local fc00::/7,
/// link-local fe80::/10, site-local fec0::/10, multicast ff00::/8, SRv6 SIDs 5f00::/16) is refused
/// as not global unicast.
const REFUSED_V6: [(&str, &str); 8] = [
    ("2001::/32", "Teredo"),
    ("2001:2::/48", "benchmarking"),
    ("2001:10::/28", "ORCHID"),
    ("2001:20::/28", "ORCHIDv2"),
    // The rest of the IETF protocol assignments, refused whole: its few globally reachable
    // parts (anycast, AMT, AS112, drone remote ID) are never a webhook receiver.
    ("2001::/23", "IETF protocol assignments"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("3fff::/20", "documentation"),
];

/// Why an address is refused, or `None` when it is globally reachable unicast. The SSRF guard's
/// one classifier: literal hosts at creation and delivery, and every address a name resolves to.
pub fn refused_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    REFUSED_V4.iter().find(|(net, _)| net.parse::<Ipv4Net>().is_ok_and(|n| n.contains(&ip))).map(|(_, why)| *why)
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let global_unicast: Ipv6Net = "2000::/3".parse().unwrap_or_default();
    if !global_unicast.contains(&ip) {
        return Some(if ip.is_loopback() {
            "loopback"
        } else if ip.to_ipv4_mapped().is_some() {
            "IPv4-mapped"
        } else {
            "not global unicast"
        });
    }
    REFUSED_V6.iter().find(|(net, _)| net.parse::<Ipv6Net>().is_ok_and(|n| n.contains(&ip))).map(|(_, why)| *why)
}

/// A webhook endpoint's URL, checked (DESIGN.md section 9): at most [`MAX_URL_CHARS`]
/// characters; `https://` on port 443; a host, no user name or password, no fragment; a literal
/// address must be globally reachable unicast. With `allow_private` (`PORTAL_WEBHOOK_ALLOW_PRIVATE=on`)
/// `http://`, any port and any address are accepted. A name is not resolved here: delivery
/// resolves it and checks every address.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

/// Why a URL cannot be a webhook endpoint; the message is for the form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookUrlError {
    /// Empty.
    #[error("Enter the endpoint's URL.")]
    Empty,
    /// Over [`MAX_URL_CHARS`].
    #[error("The URL is too long: at most 2,000 characters.")]
    TooLong,
    /// Not a URL.
    #[error("This is not a URL: enter one like https://hooks.example.org/wmda.")]
    Unparsable,
    /// Not `https://`.
    #[error("The URL must start with https://.")]
    NotHttps,
    /// A port other than 443.
    #[error("Webhooks are delivered on port 443 only: remove the port from the URL.")]
    Port,
    /// A user name or password in the URL.
    #[error("The URL must not hold a user name or password.")]
    Credentials,
    /// A `#fragment`, which is never sent.
    #[error("The URL must not have a #fragment.")]
    Fragment,
    /// A literal address that is not globally reachable.
    #[error("The URL's address is a {0} address, which the portal does not deliver to.")]
    RefusedAddress(&'static str),
}

impl WebhookUrl {
    /// Checks `text` (surrounding spaces ignored).
    ///
    /// # Errors
    /// [`WebhookUrlError`].
    pub fn parse(text: &str, allow_private: bool) -> Result<Self, WebhookUrlError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(WebhookUrlError::Empty);
        }
        if text.chars().count() > MAX_URL_CHARS {
            return Err(WebhookUrlError::TooLong);
        }
        let url = url::Url::parse(text).map_err(|_| WebhookUrlError::Unparsable)?;
        match url.scheme() {
            "https" => {}
            "http" if allow_private => {}
            _ => return Err(WebhookUrlError::NotHttps),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(WebhookUrlError::Credentials);
        }
        if url.fragment().is_some() {
            return Err(WebhookUrlError::Fragment);
        }
        if url.port().is_some_and(|p| p != 443) && !allow_private {
            return Err(WebhookUrlError::Port);
        }
        // The limit holds for the URL as stored and sent, after percent-encoding.
        if url.as_str().chars().count() > MAX_URL_CHARS {
            return Err(WebhookUrlError::TooLong);
        }
        let literal = match url.host() {
            None => return Err(WebhookUrlError::Unparsable),
            // RFC 6761: `localhost` and its subdomains are loopback, whatever a resolver says.
            Some(url::Host::Domain(name))
                if !allow_private && {
                    let name = name.trim_end_matches('.').to_ascii_lowercase();
                    name == "localhost" || name.ends_with(".localhost")
                } =>
            {
                return Err(WebhookUrlError::RefusedAddress("loopback"));
            }
            Some(url::Host::Domain(_)) => None,
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        };
        if let Some(why) = literal.and_then(refused_address)
            && !allow_private
        {
            return Err(WebhookUrlError::RefusedAddress(why));
        }
        Ok(Self(url))
    }

    /// The URL.
    pub fn as_url(&self) -> &url::Url {
        &self.0
    }

    /// Only the host, for audit details and pages (a Slack or Teams URL is a credential:
    /// DESIGN.md section 9).
    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }

    /// The scheme, host (and a port other than the scheme's) and "…": how the pages show every
    /// endpoint's URL (DESIGN.md section 9). A Slack or Teams URL is a credential, and so may be
    /// any URL's path (a Slack URL added as `standard`, a token in a receiver's path).
    pub fn shown(&self) -> String {
        match self.0.port() {
            Some(port) => format!("{}://{}:{port}/…", self.0.scheme(), self.host()),
            None => format!("{}://{}/…", self.0.scheme(), self.host()),
        }
    }
}

impl std::fmt::Debug for WebhookUrl {
    /// Only the host: the path of a Slack or Teams URL is a credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookUrl({})", self.shown())
    }
}

/// A `standard` endpoint's signing secret: `whsec_` and the base64 of 32 random bytes
/// (Standard Webhooks); shown once, stored encrypted. `Debug` is redacted.
pub struct SigningSecret(secrecy::SecretString);

impl SigningSecret {
    /// A new random signing secret.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::fill(&mut key);
        let text = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(key));
        Self(text.into())
    }

    /// A stored one, as text (`whsec_` and the base64 of 24 to 64 bytes, as Standard Webhooks
    /// allows); `None` when it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let key = text.strip_prefix("whsec_")?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(key).ok()?;
        (24..=64).contains(&bytes.len()).then(|| Self(text.to_owned().into()))
    }

    /// The text, to show once and to encrypt for storage.
    pub fn expose(&self) -> &str {
        use secrecy::ExposeSecret as _;
        self.0.expose_secret()
    }

    /// The `webhook-signature` header of one attempt (Standard Webhooks): `v1,` and the base64 of
    /// HMAC-SHA256 under the secret's 32 bytes over `{msg_id}.{timestamp}.{body}`; `timestamp` is
    /// the attempt's time in seconds since the Unix epoch (UTC), so each retry is signed anew.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = self
            .expose()
            .strip_prefix("whsec_")
            .and_then(|k| base64::engine::general_purpose::STANDARD.decode(k).ok())
            .unwrap_or_default();
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else { unreachable!("HMAC takes a key of any length") };
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret([REDACTED])")
    }
}

/// How an endpoint wants its events (DESIGN.md section 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// Standard Webhooks: JSON `{type, timestamp, data}`, signed.
    Standard,
    /// A Slack incoming webhook: `{"text": …}`.
    Slack,
    /// A Microsoft Teams Workflows webhook: an Adaptive Card.
    Teams,
}

impl WebhookFormat {
    /// Every format.
    pub const ALL: [WebhookFormat; 3] = [WebhookFormat::Standard, WebhookFormat::Slack, WebhookFormat::Teams];

    /// `standard`, `slack` or `teams`: the stored and the form's value.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Standard => "standard",
            WebhookFormat::Slack => "slack",
            WebhookFormat::Teams => "teams",
        }
    }

    /// The format named `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == text)
    }

    /// Its name for people: "Standard Webhooks (signed JSON)", "Slack", "Microsoft Teams".
    pub fn label(self) -> &'static str {
        match self {
            WebhookFormat::Standard => "Standard Webhooks (signed JSON)",
            WebhookFormat::Slack => "Slack",
            WebhookFormat::Teams => "Microsoft Teams",
        }
    }
}

/// What an endpoint is told about (DESIGN.md section 9). No event carries a secret value or hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WebhookEvent {
    /// A secret expires soon (the reminder schedule's notices).
    Expiring,
    /// A secret was created.
    Created,
    /// A secret was deleted.
    Deleted,
    /// A leak report found a live secret in public.
    Exposed,
    /// A rotation completed: the replacement was used and the old secret went.
    Replaced,
    /// A credential manager's "Send test event" (`webhook.test`): sent to that one endpoint,
    /// whatever it subscribed to; never in [`WebhookEvent::ALL`].
    Test,
}

impl WebhookEvent {
    /// Every event an endpoint can subscribe to.
    pub const ALL: [WebhookEvent; 5] = [
        WebhookEvent::Expiring,
        WebhookEvent::Created,
        WebhookEvent::Deleted,
        WebhookEvent::Exposed,
        WebhookEvent::Replaced,
    ];

    /// The event's `type`, e.g. `secret.expiring`.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::Expiring => "secret.expiring",
            WebhookEvent::Created => "secret.created",
            WebhookEvent::Deleted => "secret.deleted",
            WebhookEvent::Exposed => "secret.exposed",
            WebhookEvent::Replaced => "secret.replaced",
            WebhookEvent::Test => "webhook.test",
        }
    }

    /// What the event tells, for the pages: "a secret expires soon".
    pub fn description(self) -> &'static str {
        match self {
            WebhookEvent::Expiring => "a client secret expires soon (6, 3 and 1 weeks before, then daily)",
            WebhookEvent::Created => "a client secret was created",
            WebhookEvent::Deleted => "a client secret was deleted",
            WebhookEvent::Exposed => "a client secret was found in public",
            WebhookEvent::Replaced => "a rotation completed: the old secret was replaced",
            WebhookEvent::Test => "a test event a credential manager sent",
        }
    }

    /// The event named `text`, the test event included, if any (a stored delivery's type).
    pub fn parse(text: &str) -> Option<Self> {
        Self::subscribable(text).or_else(|| (text == Self::Test.as_str()).then_some(Self::Test))
    }

    /// The event named `text` among those an endpoint can subscribe to ([`WebhookEvent::ALL`]).
    pub fn subscribable(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == text)
    }

    /// A stored list (`secret.created,secret.deleted`); unknown names are left out.
    pub fn parse_list(text: &str) -> Vec<Self> {
        let mut events: Vec<Self> = text.split(',').filter_map(|t| Self::subscribable(t.trim())).collect();
        events.sort();
        events.dedup();
        events
    }

    /// `events` as stored: their names joined by commas.
    pub fn join(events: &[Self]) -> String {
        events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(",")
    }
}

/// Most endpoints per application (DESIGN.md section 9).
pub const MAX_ENDPOINTS: i64 = 5;
/// "Send test event": at most once in this long per endpoint (DESIGN.md section 9).
pub const TEST_EVERY: chrono::Duration = chrono::Duration::minutes(1);

/// The data of a test event: the application and its client ID, nothing about any secret.
pub fn test_event_data(application: &str, client_id: &str) -> serde_json::Value {
    serde_json::json!({ "application": application, "client_id": client_id })
}

/// An endpoint as a credential manager asked for it, checked: the form's fields (issue 17,
/// point 6). Every field is checked, so the form can say everything that is wrong at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRequest {
    /// The URL, checked.
    pub url: WebhookUrl,
    /// The format.
    pub format: WebhookFormat,
    /// The events, at least one, sorted, each once.
    pub events: Vec<WebhookEvent>,
}

/// What is wrong with an endpoint form, field by field; each message is for the form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointFormErrors {
    /// The URL's problem.
    pub url: Option<String>,
    /// The format's.
    pub format: Option<String>,
    /// The events'.
    pub events: Option<String>,
}

impl EndpointRequest {
    /// Checks the form's `url`, `format` (`standard`, `slack` or `teams`) and `events` (names
    /// from [`WebhookEvent::ALL`], at least one); `allow_private` as [`WebhookUrl::parse`].
    ///
    /// # Errors
    /// [`EndpointFormErrors`] with a message for each field that is wrong.
    pub fn check(url: &str, format: &str, events: &[String], allow_private: bool) -> Result<Self, EndpointFormErrors> {
        let url = WebhookUrl::parse(url, allow_private);
        let format = WebhookFormat::parse(format.trim()).ok_or_else(|| {
            if format.trim().is_empty() {
                "Choose a format: standard, Slack or Microsoft Teams.".to_owned()
            } else {
                "Unknown format: choose standard, Slack or Microsoft Teams.".to_owned()
            }
        });
        let mut chosen = Vec::with_capacity(events.len());
        let mut events_error = None;
        for name in events {
            match WebhookEvent::subscribable(name.trim()) {
                Some(e) => chosen.push(e),
                None => events_error = Some("Unknown event: choose among the events listed.".to_owned()),
            }
        }
        chosen.sort();
        chosen.dedup();
        if chosen.is_empty() && events_error.is_none() {
            events_error = Some("Choose at least one event.".to_owned());
        }
        match (url, format, events_error) {
            (Ok(url), Ok(format), None) => Ok(Self { url, format, events: chosen }),
            (url, format, events) => {
                Err(EndpointFormErrors { url: url.err().map(|e| e.to_string()), format: format.err(), events })
            }
        }
    }
}
/// A delivery that has not succeeded this long after its event is marked failed, and the
/// endpoint's next event proceeds (DESIGN.md section 9).
pub const FAIL_AFTER: chrono::Duration = chrono::Duration::hours(24);

/// An endpoint with no 2xx answer for this long (and at least [`DISABLE_AFTER_ATTEMPTS`]
/// attempts) is disabled and its credential managers emailed (DESIGN.md section 9).
pub const DISABLE_AFTER: chrono::Duration = chrono::Duration::hours(72);
/// Attempts an endpoint must have had before it is disabled.
pub const DISABLE_AFTER_ATTEMPTS: i64 = 3;

/// Delay before retry number `attempts` (1-based): 10 s, doubling, at most 30 minutes.
pub fn delivery_backoff(attempts: i32) -> chrono::Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(0);
    (chrono::Duration::seconds(10) * 2i32.saturating_pow(exponent)).min(chrono::Duration::minutes(30))
}

/// The `webhook-id` of an event: `msg_` and the event's id, the same on every attempt.
pub fn message_id(event_id: uuid::Uuid) -> String {
    format!("msg_{}", event_id.simple())
}

/// A `standard` body (Standard Webhooks): `{"type", "timestamp" (RFC 3339, UTC), "data"}`.
pub fn standard_body(event: WebhookEvent, at: chrono::DateTime<chrono::Utc>, data: &serde_json::Value) -> String {
    serde_json::json!({
        "type": event.as_str(),
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": data,
    })
    .to_string()
}

/// The data of an event about a client secret (DESIGN.md section 9): the application, its client
/// ID, the secret's id, name, hint (`wmdacs_Ab3`) and expiry; never its value or hash.
pub fn secret_event_data(
    (application, client_id): (&str, &str),
    (secret_id, name, hint): (uuid::Uuid, &str, &str),
    (expires_on, expires_at): (chrono::NaiveDate, chrono::DateTime<chrono::Utc>),
) -> serde_json::Value {
    serde_json::json!({
        "application": application,
        "client_id": client_id,
        "secret": {
            "id": secret_id,
            "name": name,
            "hint": hint,
            "expires_on": expires_on.to_string(),
            "expires_at": expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
    })
}

/// The event in one sentence for people (Slack and Teams), from its data: which secret of which
/// application, what happened, and the Manage page's link.
///
/// `escape` is applied to the text that came from people (the secret's name, the application's
/// name, the hint), never to the link or the dates, which must stay usable as they are.
pub fn summary(
    event: WebhookEvent,
    data: &serde_json::Value,
    manage_url: &str,
    escape: &dyn Fn(&str) -> String,
) -> String {
    let text = |v: &serde_json::Value| escape(v.as_str().unwrap_or_default());
    let secret = &data["secret"];
    let what = format!(
        "Client secret \u{201c}{}\u{201d} ({}\u{2026}) of {}",
        text(&secret["name"]),
        text(&secret["hint"]),
        text(&data["application"])
    );
    let expires = text(&secret["expires_on"]);
    match event {
        WebhookEvent::Test => format!(
            "Test event from the WMDA secret portal for {}: this endpoint receives its events. {manage_url}",
            text(&data["application"])
        ),
        WebhookEvent::Expiring => match data["days_left"].as_i64() {
            Some(d) if d > 1 => {
                format!("{what} expires in {d} days, on {expires} (UTC). Create a replacement: {manage_url}")
            }
            Some(1) => format!("{what} expires tomorrow, {expires} (UTC). Create a replacement: {manage_url}"),
            Some(0) => format!("{what} expires today, {expires} (UTC). Create a replacement now: {manage_url}"),
            _ => format!("{what} has expired ({expires}, UTC). Create a replacement: {manage_url}"),
        },
        WebhookEvent::Created => format!("{what} was created, expiring on {expires} (UTC). {manage_url}"),
        WebhookEvent::Deleted => format!("{what} was deleted: it can no longer obtain tokens. {manage_url}"),
        WebhookEvent::Exposed => format!(
            "{what} was found in public and can no longer obtain tokens. Create a replacement and update your systems now: {manage_url}"
        ),
        WebhookEvent::Replaced => format!("{what} was replaced: a newer secret is in use. {manage_url}"),
    }
}

/// The body of one delivery of `event` (at `at`, with `data`) in `format`, the Manage page's
/// link added (DESIGN.md section 9): `standard` is `{type, timestamp, data}`; `slack` is
/// `{"text"}` with `&`, `<` and `>` escaped; `teams` is an Adaptive Card 1.4 with Markdown
/// specials escaped. The same for every attempt.
pub fn render_body(
    format: WebhookFormat,
    event: WebhookEvent,
    at: chrono::DateTime<chrono::Utc>,
    data: &serde_json::Value,
    manage_url: &str,
) -> String {
    match format {
        WebhookFormat::Standard => {
            let mut data = data.clone();
            if let Some(map) = data.as_object_mut() {
                map.insert("manage_url".to_owned(), serde_json::Value::String(manage_url.to_owned()));
            }
            standard_body(event, at, &data)
        }
        WebhookFormat::Slack => {
            let escape = |t: &str| t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
            serde_json::json!({ "text": summary(event, data, manage_url, &escape) }).to_string()
        }
        WebhookFormat::Teams => {
            let escape = |t: &str| {
                let mut out = String::with_capacity(t.len());
                for c in t.chars() {
                    if "\\`*_{}[]()#+-.!|>~<".contains(c) {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out
            };
            let text = summary(event, data, manage_url, &escape);
            serde_json::json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "content": {
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [{ "type": "TextBlock", "text": text, "wrap": true }],
                    },
                }],
            })
            .to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> Option<&'static str> {
        refused_address(text.parse().unwrap())
    }

    #[test]
    fn every_special_purpose_range_is_refused_at_both_ends() {
        for (net, why) in REFUSED_V4 {
            let net: Ipv4Net = net.parse().unwrap();
            assert_eq!(refused_v4(net.network()), Some(why), "{net}");
            assert!(refused_v4(net.broadcast()).is_some(), "{net}");
        }
        for (net, why) in REFUSED_V6 {
            let net: Ipv6Net = net.parse().unwrap();
            // 2001::/23 starts with Teredo, whose more specific name comes first.
            let first = if why == "IETF protocol assignments" { "Teredo" } else { why };
            assert_eq!(refused_v6(net.network()), Some(first), "{net}");
            assert!(refused_v6(net.broadcast()).is_some(), "{net}");
        }
        for text in [
            "::",
            "::1",
            "::ffff:8.8.8.8",
            "::ffff:127.0.0.1",
            "::8.8.8.8",
            "64:ff9b::8.8.8.8",
            "64:ff9b:1::1",
            "100::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
        ] {
            assert!(refused(text).is_some(), "{text}");
        }
    }

    #[test]
    fn globally_reachable_unicast_is_allowed() {
        for text in [
            "8.8.8.8",
            "1.1.1.1",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450::1",
            "2003::1",
        ] {
            assert_eq!(refused(text), None, "{text}");
        }
    }

    #[test]
    fn urls_are_checked_and_say_why() {
        let ok = WebhookUrl::parse(" https://hooks.example.org/wmda?x=1 ", false).unwrap();
        assert_eq!((ok.host(), ok.shown()), ("hooks.example.org", "https://hooks.example.org/…".to_owned()));
        assert!(!format!("{ok:?}").contains("wmda"));
        assert!(WebhookUrl::parse("https://hooks.example.org:443/x", false).is_ok());
        assert!(WebhookUrl::parse("https://8.8.8.8/x", false).is_ok());
        let long = format!("https://hooks.example.org/{}", "a".repeat(MAX_URL_CHARS));
        for (text, err) in [
            ("", WebhookUrlError::Empty),
            ("   ", WebhookUrlError::Empty),
            (long.as_str(), WebhookUrlError::TooLong),
            ("not a url", WebhookUrlError::Unparsable),
            ("https://", WebhookUrlError::Unparsable),
            ("http://hooks.example.org/x", WebhookUrlError::NotHttps),
            ("ftp://hooks.example.org/x", WebhookUrlError::NotHttps),
            ("javascript:alert(1)", WebhookUrlError::NotHttps),
            ("https://hooks.example.org:8443/x", WebhookUrlError::Port),
            ("https://user:pw@hooks.example.org/x", WebhookUrlError::Credentials),
            ("https://user@hooks.example.org/x", WebhookUrlError::Credentials),
            ("https://hooks.example.org/x#y", WebhookUrlError::Fragment),
            ("https://127.0.0.1/x", WebhookUrlError::RefusedAddress("loopback")),
            ("https://10.1.2.3/x", WebhookUrlError::RefusedAddress("private")),
            ("https://169.254.169.254/latest/meta-data", WebhookUrlError::RefusedAddress("link-local")),
            ("https://[::1]/x", WebhookUrlError::RefusedAddress("loopback")),
            ("https://[::ffff:10.0.0.1]/x", WebhookUrlError::RefusedAddress("IPv4-mapped")),
            ("https://0x7f000001/x", WebhookUrlError::RefusedAddress("loopback")),
            ("https://2130706433/x", WebhookUrlError::RefusedAddress("loopback")),
        ] {
            assert_eq!(WebhookUrl::parse(text, false), Err(err), "{text}");
        }
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/x", true).is_ok());
        assert_eq!(WebhookUrl::parse("https://u:p@127.0.0.1/x", true), Err(WebhookUrlError::Credentials));
    }

    #[test]
    fn signing_secrets_are_whsec_and_32_bytes_and_redacted() {
        let s = SigningSecret::generate();
        assert!(s.expose().starts_with("whsec_"));
        assert!(SigningSecret::parse(s.expose()).is_some());
        assert!(SigningSecret::parse("whsec_c2hvcnQ=").is_none(), "5 bytes");
        assert!(SigningSecret::parse("whsec_!!!").is_none());
        assert!(SigningSecret::parse("nope").is_none());
        assert_eq!(format!("{s:?}"), "SigningSecret([REDACTED])");
        // The reference library's own example (standardwebhooks 1.0.1, `test_sign`).
        let reference = SigningSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        assert_eq!(
            reference.sign("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, body),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn formats_events_and_backoff() {
        for f in WebhookFormat::ALL {
            assert_eq!(WebhookFormat::parse(f.as_str()), Some(f));
        }
        assert_eq!(WebhookFormat::parse("Standard"), None);
        assert_eq!(
            WebhookEvent::parse_list("secret.deleted, secret.created,nope,secret.created"),
            [WebhookEvent::Created, WebhookEvent::Deleted]
        );
        assert_eq!(
            WebhookEvent::join(&[WebhookEvent::Created, WebhookEvent::Exposed]),
            "secret.created,secret.exposed"
        );
        assert_eq!(delivery_backoff(1), chrono::Duration::seconds(10));
        assert_eq!(delivery_backoff(2), chrono::Duration::seconds(20));
        assert_eq!(delivery_backoff(50), chrono::Duration::minutes(30));
        let id = uuid::Uuid::nil();
        assert_eq!(message_id(id), "msg_00000000000000000000000000000000");
    }

    #[test]
    fn bodies_per_format_escape_and_never_lose_the_link() {
        let data = serde_json::json!({
            "application": "Partner-NL-X-DM",
            "client_id": "c1",
            "secret": { "id": "s1", "name": "<b>Build</b> & *prod*", "hint": "wmdacs_Ab3", "expires_on": "2027-01-01" },
            "days_left": 7,
        });
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z").unwrap().with_timezone(&chrono::Utc);
        let link = "https://p.example/manage-api-credentials#app-c1";
        let standard: serde_json::Value =
            serde_json::from_str(&render_body(WebhookFormat::Standard, WebhookEvent::Expiring, at, &data, link))
                .unwrap();
        assert_eq!(standard["type"], "secret.expiring");
        assert_eq!(standard["timestamp"], "2026-12-07T10:00:00Z");
        assert_eq!(standard["data"]["manage_url"], link);
        assert_eq!(standard["data"]["secret"]["name"], "<b>Build</b> & *prod*");
        let slack: serde_json::Value =
            serde_json::from_str(&render_body(WebhookFormat::Slack, WebhookEvent::Expiring, at, &data, link)).unwrap();
        let text = slack["text"].as_str().unwrap();
        assert!(
            text.contains("&lt;b&gt;Build&lt;/b&gt; &amp; *prod*")
                && text.contains("expires in 7 days")
                && text.contains(link)
        );
        let teams: serde_json::Value =
            serde_json::from_str(&render_body(WebhookFormat::Teams, WebhookEvent::Exposed, at, &data, link)).unwrap();
        assert_eq!(teams["attachments"][0]["content"]["version"], "1.4");
        let text = teams["attachments"][0]["content"]["body"][0]["text"].as_str().unwrap();
        assert!(text.contains("\\*prod\\*") && text.contains("found in public"), "{text}");
        assert!(text.contains(link) && text.contains("Partner\\-NL\\-X\\-DM"), "the link stays usable: {text}");
    }

    #[test]
    fn an_endpoint_form_says_what_is_wrong_with_each_field() {
        let all: Vec<String> = WebhookEvent::ALL.iter().map(|e| e.as_str().to_owned()).collect();
        let ok = EndpointRequest::check(" https://hooks.example.org/wmda ", "slack", &all, false).unwrap();
        assert_eq!((ok.format, ok.events.len()), (WebhookFormat::Slack, 5));
        let twice = ["secret.created".to_owned(), " secret.created".to_owned()];
        assert_eq!(EndpointRequest::check("https://h.example/", "teams", &twice, false).unwrap().events.len(), 1);

        let long = format!("https://hooks.example.org/{}", "a".repeat(MAX_URL_CHARS));
        for (url, format, events, wrong) in [
            ("", "standard", &all[..], "url"),
            ("not a url", "standard", &all[..], "url"),
            (long.as_str(), "standard", &all[..], "url"),
            ("https://user:pw@hooks.example.org/", "standard", &all[..], "url"),
            ("https://hooks.example.org/", "", &all[..], "format"),
            ("https://hooks.example.org/", "discord", &all[..], "format"),
            ("https://hooks.example.org/", "standard", &[][..], "events"),
            ("https://hooks.example.org/", "standard", &["secret.stolen".to_owned()][..], "events"),
            // The test event is sent on request, never subscribed to.
            ("https://hooks.example.org/", "standard", &["webhook.test".to_owned()][..], "events"),
        ] {
            let e = EndpointRequest::check(url, format, events, false).unwrap_err();
            let said = [("url", &e.url), ("format", &e.format), ("events", &e.events)];
            for (field, message) in said {
                assert_eq!(message.is_some(), field == wrong, "{url:?} {format:?} {events:?}: {e:?}");
            }
        }
        let everything = EndpointRequest::check("ftp://x", "nope", &[], false).unwrap_err();
        assert!(everything.url.is_some() && everything.format.is_some() && everything.events.is_some());
    }

    #[test]
    fn urls_are_shown_without_what_may_be_a_credential() {
        let slack = WebhookUrl::parse("https://hooks.slack.com/services/T0/B0/XXXX", false).unwrap();
        // Whatever the format: a Slack URL added as `standard` is a credential too.
        assert_eq!(slack.shown(), "https://hooks.slack.com/…");
        let own = WebhookUrl::parse("https://hooks.example.org/wmda/dm?token=abc", false).unwrap();
        assert_eq!(own.shown(), "https://hooks.example.org/…");
        let local = WebhookUrl::parse("http://127.0.0.1:8080/hook", true).unwrap();
        assert_eq!(local.shown(), "http://127.0.0.1:8080/…");
    }

    #[test]
    fn the_length_limit_holds_after_percent_encoding_and_localhost_is_loopback() {
        // 2,000 characters as typed, about 12,000 once each é is percent-encoded.
        let typed = format!("https://example.com/{}", "é".repeat(1_980));
        assert_eq!(typed.chars().count(), 2_000);
        assert_eq!(WebhookUrl::parse(&typed, false), Err(WebhookUrlError::TooLong));
        let ascii = format!("https://example.com/{}", "a".repeat(1_980));
        assert!(WebhookUrl::parse(&ascii, false).is_ok());
        for url in ["https://localhost/", "https://LocalHost./x", "https://foo.localhost/", "https://a.b.localhost./"] {
            assert_eq!(WebhookUrl::parse(url, false), Err(WebhookUrlError::RefusedAddress("loopback")), "{url}");
        }
        assert!(WebhookUrl::parse("http://localhost:8080/", true).is_ok());
        assert!(WebhookUrl::parse("https://notlocalhost.example/", false).is_ok());
        for ip in ["2001:1::4", "2001:4::1", "2001:40::1", "2001:100::1", "2001:1ff:ffff::1"] {
            assert_eq!(refused(ip), Some("IETF protocol assignments"), "{ip}");
        }
        assert_eq!(refused("2001:200::1"), None, "just past 2001::/23");
    }

    #[test]
    fn the_test_event_is_a_delivery_type_but_not_subscribable() {
        assert_eq!(WebhookEvent::parse("webhook.test"), Some(WebhookEvent::Test));
        assert_eq!(WebhookEvent::subscribable("webhook.test"), None);
        assert!(!WebhookEvent::ALL.contains(&WebhookEvent::Test));
        assert_eq!(WebhookEvent::parse_list("webhook.test,secret.created"), [WebhookEvent::Created]);
        let data = test_event_data("Partner-NL-<b>-DM", "0f8fad5b-d9cb-469f-a165-70867728950e");
        let slack =
            render_body(WebhookFormat::Slack, WebhookEvent::Test, chrono::DateTime::UNIX_EPOCH, &data, "https://p/m");
        assert!(slack.contains("Test event") && slack.contains("&lt;b&gt;"), "{slack}");
    }
}
