//! Parsing a token request: RFC 6749 4.4.2 (client credentials grant) with client
//! authentication by HTTP Basic (2.3.1) or by form fields, and the target resource as Azure AD v1
//! (`resource=`) or OAuth 2.0 (`scope=<…>/.default`, `scope=<…>`) clients send it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};

use super::OAuthError;

/// How the client authenticated.
#[derive(Clone)]
pub struct ClientAuth {
    /// The client ID as presented (not yet checked).
    pub client_id: String,
    /// The secret as presented; never logged.
    pub client_secret: SecretString,
    /// HTTP Basic was used.
    pub basic: bool,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("client_id", &self.client_id)
            .field("basic", &self.basic)
            .finish_non_exhaustive()
    }
}

/// A well-formed token request.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The client's credentials.
    pub auth: ClientAuth,
    /// `resource=` as sent.
    pub resource: Option<String>,
    /// `scope=` as sent.
    pub scope: Option<String>,
}

/// Most parameters a token request may carry: `grant_type`, `client_id`, `client_secret`,
/// `resource`, `scope` and room for a library's extras.
pub const MAX_PARAMETERS: usize = 16;

/// Decodes a form-urlencoded component (`+` is a space, then percent-decoding), as RFC 6749
/// 2.3.1 asks for the id and secret inside HTTP Basic.
fn form_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8().ok().map(|c| c.into_owned())
}

/// What the `Authorization` header of a token request holds, read by the web layer (which
/// compares the scheme as RFC 9110 11.1 says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authorization<'a> {
    /// No header.
    None,
    /// `Basic <credentials>`: the base64 credentials.
    Basic(&'a str),
    /// Another scheme, or no credentials.
    Other,
}

/// Reads the client credentials out of the base64 credentials of HTTP Basic.
pub(crate) fn basic(encoded: &str) -> Result<(String, String), OAuthError> {
    let invalid = OAuthError::InvalidClient { basic: true };
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| invalid.clone())?;
    let text = String::from_utf8(decoded).map_err(|_| invalid.clone())?;
    let (id, secret) = text.split_once(':').ok_or(invalid.clone())?;
    // RFC 6749 2.3.1: the id and secret are form-urlencoded before Base64.
    let (id, secret) = (form_decode(id).ok_or(invalid.clone())?, form_decode(secret).ok_or(invalid)?);
    if id.contains('\0') || secret.contains('\0') {
        return Err(OAuthError::InvalidRequest(NUL_REFUSED));
    }
    Ok((id, secret))
}

/// The answer to a request holding U+0000 anywhere (issue 12): no store keeps it (Postgres
/// refuses it in text), so it is refused before any lookup, as `invalid_request`.
pub const NUL_REFUSED: &str = "The request holds a NUL character (%00), which no parameter accepts.";

impl TokenRequest {
    /// Parses a request from whether its body is `application/x-www-form-urlencoded` (the web
    /// layer compares the media type as RFC 9110 says), its `Authorization` header and its body.
    ///
    /// # Errors
    /// `invalid_request` for a body that is not `application/x-www-form-urlencoded`, a repeated
    /// parameter, a NUL character anywhere, more than [`MAX_PARAMETERS`], a missing `grant_type`, or two client authentication methods;
    /// `unsupported_grant_type`; `invalid_client` for missing or undecodable credentials.
    pub fn parse(form: bool, authorization: Authorization<'_>, body: &[u8]) -> Result<Self, OAuthError> {
        if !form {
            return Err(OAuthError::InvalidRequest("The body must be application/x-www-form-urlencoded."));
        }
        // Linear in the body whatever it holds: at most MAX_PARAMETERS pairs are read, and
        // repeats are found with a map (issue 12).
        let mut params: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        for (k, v) in url::form_urlencoded::parse(body) {
            if params.len() == MAX_PARAMETERS {
                return Err(OAuthError::InvalidRequest("The request has more parameters than a token request uses."));
            }
            if k.contains('\0') || v.contains('\0') {
                return Err(OAuthError::InvalidRequest(NUL_REFUSED));
            }
            if params.insert(k.into_owned(), v.into_owned()).is_some() {
                // RFC 6749 3.2: parameters must not be included more than once.
                return Err(OAuthError::InvalidRequest("A parameter is repeated."));
            }
        }
        let get = |name: &str| params.get(name).cloned();
        match get("grant_type").as_deref() {
            None | Some("") => return Err(OAuthError::InvalidRequest("grant_type is missing.")),
            Some("client_credentials") => {}
            Some(_) => return Err(OAuthError::UnsupportedGrantType),
        }
        let form_id = get("client_id");
        let form_secret = get("client_secret");
        let auth = match authorization {
            Authorization::Other => {
                return Err(OAuthError::InvalidRequest(
                    "Only HTTP Basic client authentication is supported in the Authorization header.",
                ));
            }
            Authorization::Basic(encoded) => {
                if form_id.is_some() || form_secret.is_some() {
                    return Err(OAuthError::InvalidRequest("Use one client authentication method, not both."));
                }
                let (client_id, secret) = basic(encoded)?;
                ClientAuth { client_id, client_secret: SecretString::from(secret), basic: true }
            }
            Authorization::None => match (form_id, form_secret) {
                (Some(id), Some(secret)) => {
                    ClientAuth { client_id: id, client_secret: SecretString::from(secret), basic: false }
                }
                _ => return Err(OAuthError::InvalidClient { basic: false }),
            },
        };
        Ok(TokenRequest {
            auth,
            resource: get("resource").filter(|r| !r.is_empty()),
            scope: get("scope").filter(|s| !s.is_empty()),
        })
    }

    /// The presented secret.
    pub fn secret(&self) -> &str {
        self.auth.client_secret.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: bool = true;
    const NONE: Authorization<'static> = Authorization::None;

    #[test]
    fn form_fields_and_basic_both_work_but_not_together() {
        let r = TokenRequest::parse(
            FORM,
            NONE,
            b"grant_type=client_credentials&client_id=abc&client_secret=s3cr%2Bt&resource=x",
        )
        .unwrap();
        assert_eq!((r.auth.client_id.as_str(), r.secret(), r.auth.basic), ("abc", "s3cr+t", false));
        assert_eq!(r.resource.as_deref(), Some("x"));
        // RFC 6749 2.3.1: "a%3Ab" and "p+w%26" are form-urlencoded before Base64.
        let encoded = STANDARD.encode("a%3Ab:p+w%26");
        let header = Authorization::Basic(&encoded);
        let r = TokenRequest::parse(FORM, header, b"grant_type=client_credentials&scope=x%2F.default").unwrap();
        assert_eq!((r.auth.client_id.as_str(), r.secret(), r.auth.basic), ("a:b", "p w&", true));
        assert_eq!(r.scope.as_deref(), Some("x/.default"));
        let both = TokenRequest::parse(FORM, header, b"grant_type=client_credentials&client_secret=x").unwrap_err();
        assert_eq!(both.code(), "invalid_request");
    }

    #[test]
    fn malformed_requests_are_refused_with_the_right_code() {
        let cases: [(bool, &[u8], &str); 5] = [
            (false, b"grant_type=client_credentials", "invalid_request"),
            (
                FORM,
                b"grant_type=client_credentials&grant_type=client_credentials&client_id=a&client_secret=b",
                "invalid_request",
            ),
            (FORM, b"client_id=a&client_secret=b", "invalid_request"),
            (FORM, b"grant_type=password&client_id=a&client_secret=b", "unsupported_grant_type"),
            (FORM, b"grant_type=client_credentials&client_id=a", "invalid_client"),
        ];
        for (ct, body, code) in cases {
            assert_eq!(
                TokenRequest::parse(ct, NONE, body).unwrap_err().code(),
                code,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let many: String = (0..17).map(|i| format!("p{i}=x&")).collect();
        assert_eq!(
            TokenRequest::parse(FORM, NONE, format!("{many}grant_type=client_credentials").as_bytes())
                .unwrap_err()
                .code(),
            "invalid_request"
        );
        assert_eq!(
            TokenRequest::parse(FORM, Authorization::Other, b"grant_type=client_credentials").unwrap_err().code(),
            "invalid_request"
        );
        assert_eq!(
            TokenRequest::parse(FORM, Authorization::Basic("!!!"), b"grant_type=client_credentials")
                .unwrap_err()
                .code(),
            "invalid_client"
        );
        assert!(
            !format!(
                "{:?}",
                TokenRequest::parse(FORM, NONE, b"grant_type=client_credentials&client_id=a&client_secret=topsecret")
                    .unwrap()
            )
            .contains("topsecret")
        );
    }
}
