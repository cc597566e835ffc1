//! The portal's public URL (`PORTAL_BASE_URL`): the origin the CSRF check trusts, the token
//! issuer (`iss`), and the prefix of every link in an email.

use std::net::IpAddr;

use url::Url;

/// Why a text is no usable base URL: the text given, then why (e.g. `http://10.0.0.1: plain
/// http:// is allowed only on a loopback host ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BaseUrlError(String);

/// The portal's public URL (`PORTAL_BASE_URL`), without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(Url);

impl BaseUrl {
    /// Parses an `http://` or `https://` URL with no query or fragment. Plain `http://` is refused
    /// unless the host is loopback (127.0.0.0/8, ::1, localhost): cookies are always `Secure`, and
    /// browsers accept that on plain http only for loopback (DESIGN.md section 4).
    ///
    /// # Errors
    /// [`BaseUrlError`] with the reason (the text given, then why).
    pub fn parse(text: &str) -> Result<Self, BaseUrlError> {
        let url = Url::parse(text.trim()).map_err(|e| BaseUrlError(format!("{text}: {e}")))?;
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(BaseUrlError(format!("{text}: no user, query or fragment allowed")));
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(BaseUrlError(format!(
                    "{text}: plain http:// is allowed only on a loopback host (127.0.0.1, ::1, localhost); use https://"
                )));
            }
            _ => {
                return Err(BaseUrlError(format!("{text}: must start with https:// or http://")));
            }
        }
        Ok(Self(url))
    }

    /// The URL as text without a trailing slash, e.g. `https://portal.wmda.info` (the token `iss`).
    pub fn as_str(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }

    /// The origin (`scheme://host[:port]`), the one trusted by the CSRF check.
    pub fn origin(&self) -> String {
        self.0.origin().ascii_serialization()
    }

    /// Whether it is https (then HSTS is sent).
    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }

    /// The host when it is a name, not an IP address: the WebAuthn relying-party id (DESIGN.md
    /// section 11; WebAuthn refuses an IP address as one). `None` for `http://127.0.0.1:8080`.
    pub fn host_name(&self) -> Option<&str> {
        self.0.domain()
    }

    /// The origin as a URL (`scheme://host[:port]`), what a WebAuthn ceremony's client data
    /// must name.
    pub fn origin_url(&self) -> Url {
        Url::parse(&self.origin()).unwrap_or_else(|_| self.0.clone())
    }

    /// The absolute URL of a path such as `/manage-api-credentials`.
    pub fn join(&self, path: &str) -> String {
        format!("{}{}", self.as_str(), path)
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_must_be_https_unless_loopback() {
        for ok in ["http://127.0.0.1:8080", "http://localhost:3000/", "http://[::1]:8080", "https://portal.wmda.info/"]
        {
            assert!(BaseUrl::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(BaseUrl::parse("https://portal.wmda.info/").unwrap().as_str(), "https://portal.wmda.info");
        for bad in
            ["http://portal.wmda.info", "http://10.0.0.1", "ftp://x", "https://x/?a=1", "not a url", "https://u:p@x"]
        {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
