//! Passkeys (issue 19; DESIGN.md section 11): WebAuthn credentials registered on `/account` and
//! used at the second sign-in step, or alone ("Sign in with a passkey", a discoverable
//! credential with user verification, which counts as both factors).
//!
//! Every cryptographic check is `webauthn-rs`'s (attestation, assertion signature, origin,
//! relying-party id hash, challenge, user verification, the signature counter). The portal
//! adds what the library leaves to it (WebAuthn Level 3, section 7):
//! - the relying-party id is `PORTAL_BASE_URL`'s host, and the only origin its origin, never
//!   the request's `Host`; with an IP address there, passkeys are off;
//! - a ceremony's state lives in the server-side session with the instant it was issued, one
//!   at a time, refused after [`CEREMONY_TIMEOUT`] by the portal's clock, and taken out on every
//!   finish, whatever its outcome (so an assertion is never accepted twice);
//! - credential IDs are unique across users (section 7.1, step 22);
//! - the credential must be the account's, and the user handle, when the authenticator sends
//!   one, must name the same account (section 7.2, step 6);
//! - a counter that did not move forward is refused by the library (a cloned authenticator,
//!   section 6.1.1), and the new counter is stored only if it is above the one stored at that
//!   moment (checked in the update), so of two assertions with one counter value only one
//!   counts; each ceremony is also marked answered in the database, once, so two copies of one
//!   answer sent at once are never both accepted, even from an authenticator without a counter.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Webauthn, WebauthnBuilder,
    WebauthnError,
};

use crate::domain::BaseUrl;
use crate::store::{Store, StoreError, StoredPasskey, User};

/// A ceremony must finish within this time of its challenge (DESIGN.md section 11), by the
/// portal's clock; the browser is told the same.
pub const CEREMONY_TIMEOUT: Duration = Duration::minutes(5);

/// The longest passkey name, in characters.
pub const NAME_MAX: usize = 60;

/// What `/account` says when `PORTAL_BASE_URL`'s host is an IP address.
pub const PASSKEYS_OFF: &str = "Passkeys need the portal at a host name, e.g. http://localhost:8080";

/// The relying party: the WebAuthn checks for `PORTAL_BASE_URL`, or nothing when its host is
/// an IP address (WebAuthn refuses one as relying-party id).
pub struct Passkeys {
    webauthn: Option<Webauthn>,
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkeys").field("enabled", &self.enabled()).finish()
    }
}

/// Why a passkey ceremony was refused. Each has a message for the user; none changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyRefusal {
    /// Passkeys are off (an IP-address base URL).
    Off,
    /// No ceremony of this kind waits in this session (none started, another session's, or
    /// finished already).
    NoCeremony,
    /// The challenge is older than [`CEREMONY_TIMEOUT`].
    Expired,
    /// The browser's answer is not a WebAuthn credential.
    Malformed,
    /// The answer was made for another site (origin or relying-party id).
    WrongOrigin,
    /// The credential is not registered here, or not to this account.
    Unknown,
    /// The account has no passkey to ask for.
    NoPasskey,
    /// The user handle names another account than the credential's.
    WrongUser,
    /// The signature counter did not move forward: the authenticator may be cloned.
    Cloned,
    /// The credential is registered already.
    Taken,
    /// The answer does not verify (altered, replayed, wrong challenge, no user verification).
    Invalid,
}

impl PasskeyRefusal {
    /// What the user is told.
    pub fn message(self) -> &'static str {
        match self {
            PasskeyRefusal::Off => PASSKEYS_OFF,
            PasskeyRefusal::NoCeremony => {
                "This passkey request is not waiting in this browser session (it was used, or started elsewhere). Try again."
            }
            PasskeyRefusal::Expired => "The passkey request expired after 5 minutes. Try again.",
            PasskeyRefusal::Malformed => "The browser's passkey answer could not be read. Try again.",
            PasskeyRefusal::WrongOrigin => {
                "The passkey answer was made for another web address than this portal's, so it is refused."
            }
            PasskeyRefusal::Unknown => "This passkey is not registered for this account.",
            PasskeyRefusal::NoPasskey => "Your account has no passkey yet.",
            PasskeyRefusal::WrongUser => {
                "This passkey answer names another account than the passkey's, so it is refused."
            }
            PasskeyRefusal::Cloned => {
                "This passkey's signature counter went backwards, a sign that it was copied, so it is refused. \
                 Sign in another way, remove it on your account page, and tell WMDA."
            }
            PasskeyRefusal::Taken => "This passkey is registered already.",
            PasskeyRefusal::Invalid => "The passkey answer could not be verified. Try again.",
        }
    }

    /// The reason recorded in the audit event (`auth.sign_in_failed`, step `passkey`).
    pub fn reason(self) -> &'static str {
        match self {
            PasskeyRefusal::Off => "passkeys_off",
            PasskeyRefusal::NoCeremony => "no_ceremony",
            PasskeyRefusal::Expired => "expired",
            PasskeyRefusal::Malformed => "malformed",
            PasskeyRefusal::WrongOrigin => "wrong_origin",
            PasskeyRefusal::Unknown => "unknown_passkey",
            PasskeyRefusal::NoPasskey => "no_passkey",
            PasskeyRefusal::WrongUser => "wrong_user_handle",
            PasskeyRefusal::Cloned => "counter_went_backwards",
            PasskeyRefusal::Taken => "already_registered",
            PasskeyRefusal::Invalid => "invalid_assertion",
        }
    }

    fn of(error: &WebauthnError) -> Self {
        match error {
            WebauthnError::CredentialPossibleCompromise => PasskeyRefusal::Cloned,
            WebauthnError::InvalidRPOrigin | WebauthnError::InvalidRPIDHash | WebauthnError::CredentialCrossOrigin => {
                PasskeyRefusal::WrongOrigin
            }
            WebauthnError::CredentialAlreadyExists | WebauthnError::CredentialExcludedFromRequest => {
                PasskeyRefusal::Taken
            }
            WebauthnError::ParseCBORFailure(_)
            | WebauthnError::ParseJSONFailure(_)
            | WebauthnError::ParseNOMFailure
            | WebauthnError::ParseInsufficientBytesAvailable => PasskeyRefusal::Malformed,
            _ => PasskeyRefusal::Invalid,
        }
    }
}

/// A ceremony waiting in a session (DESIGN.md section 6: its state appears in no response, log
/// or URL). Kept under [`CEREMONY_KEY`].
#[derive(Clone, Serialize, Deserialize)]
pub struct Ceremony {
    /// Marks it answered in the database, once ([`Store::claim_passkey_ceremony`]): two copies
    /// of one answer sent at once (each request holds its own copy of the session) cannot both
    /// be checked.
    id: Uuid,
    /// When its challenge was made (UTC).
    issued_at: DateTime<Utc>,
    step: CeremonyStep,
}

/// The session key of the waiting [`Ceremony`].
pub const CEREMONY_KEY: &str = "passkey_ceremony";

#[derive(Clone, Serialize, Deserialize)]
enum CeremonyStep {
    Register { user_id: Uuid, name: String, state: PasskeyRegistration },
    Authenticate { user_id: Uuid, state: PasskeyAuthentication },
    Passwordless { state: DiscoverableAuthentication },
}

impl Ceremony {
    fn new(now: DateTime<Utc>, step: CeremonyStep) -> Self {
        Ceremony { id: Uuid::new_v4(), issued_at: now, step }
    }
}

impl std::fmt::Debug for Ceremony {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ceremony").field("issued_at", &self.issued_at).finish_non_exhaustive()
    }
}

/// A passkey that registration made, ready to store.
pub struct Registered {
    /// The name asked for at the start.
    pub name: String,
    /// Its credential ID.
    pub credential_id: Vec<u8>,
    /// webauthn-rs's `Passkey`, JSON.
    pub credential: String,
    /// Whether the browser said it is discoverable (credProps `rk`).
    pub discoverable: bool,
}

/// A passkey assertion that verified and was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The account.
    pub user_id: Uuid,
    /// The passkey used.
    pub passkey_id: Uuid,
}

/// Why finishing failed: refused (a message for the user), or the database.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    /// Refused.
    #[error("refused: {}", .0.reason())]
    Refused(PasskeyRefusal),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PasskeyRefusal> for FinishError {
    fn from(r: PasskeyRefusal) -> Self {
        FinishError::Refused(r)
    }
}

/// A passkey name: trimmed and normalised to NFC, 1 to [`NAME_MAX`] characters, on one line,
/// no bidirectional controls and no invisible characters but the space (the rules of secret
/// names in `domain::text`, and stricter: a user tells passkeys apart by name).
///
/// # Errors
/// The message to show.
pub fn parse_name(text: &str) -> Result<String, &'static str> {
    use unicode_normalization::UnicodeNormalization as _;
    let name: String = text.trim().nfc().collect();
    if name.is_empty() || name.chars().all(crate::domain::text::is_invisible) {
        return Err("Give the passkey a name, e.g. “Work laptop”.");
    }
    if name.chars().count() > NAME_MAX {
        return Err("A passkey name has at most 60 characters.");
    }
    if name.chars().any(crate::domain::text::breaks_one_line) {
        return Err("A passkey name is one line, without control characters.");
    }
    if name.chars().any(crate::domain::text::is_bidi_control) {
        return Err("A passkey name cannot contain characters that change the text direction.");
    }
    // Two names must not look alike: no invisible character inside a name either.
    if name.chars().any(|c| crate::domain::text::is_invisible(c) && c != ' ') {
        return Err("A passkey name cannot contain invisible characters; use letters, digits, spaces and punctuation.");
    }
    Ok(name)
}

impl Passkeys {
    /// The relying party of `base_url`: its host as relying-party id, its origin the only
    /// origin; off when the host is an IP address.
    ///
    /// # Errors
    /// When webauthn-rs refuses the pair (it should not, for a parsed base URL).
    pub fn new(base_url: &BaseUrl) -> anyhow::Result<Self> {
        let Some(host) = base_url.host_name() else { return Ok(Passkeys { webauthn: None }) };
        let origin = base_url.origin_url();
        let timeout = CEREMONY_TIMEOUT.to_std().unwrap_or(std::time::Duration::from_secs(300));
        let webauthn = WebauthnBuilder::new(host, &origin)
            .map_err(|e| anyhow::anyhow!("PORTAL_BASE_URL cannot be a WebAuthn relying party: {e}"))?
            .rp_name("WMDA secret portal")
            .timeout(timeout)
            .build()
            .map_err(|e| anyhow::anyhow!("PORTAL_BASE_URL cannot be a WebAuthn relying party: {e}"))?;
        Ok(Passkeys { webauthn: Some(webauthn) })
    }

    /// Whether passkeys are on (the base URL's host is a name).
    pub fn enabled(&self) -> bool {
        self.webauthn.is_some()
    }

    fn webauthn(&self) -> Result<&Webauthn, PasskeyRefusal> {
        self.webauthn.as_ref().ok_or(PasskeyRefusal::Off)
    }

    /// Starts registering a passkey named `name` for `user`, excluding the ones they have; the
    /// options go to the browser (its script asks for a discoverable credential), the ceremony
    /// into the session.
    ///
    /// # Errors
    /// [`PasskeyRefusal::Off`], or [`PasskeyRefusal::Invalid`] when the library cannot start.
    pub fn start_registration(
        &self,
        user: &User,
        name: String,
        existing: &[StoredPasskey],
        now: DateTime<Utc>,
    ) -> Result<(CreationChallengeResponse, Ceremony), PasskeyRefusal> {
        let exclude = existing.iter().map(|p| p.credential_id.clone()).collect();
        let (options, state) = self
            .webauthn()?
            .start_passkey_registration(user.id, user.email.as_str(), user.shown_name(), Some(exclude))
            .map_err(|e| PasskeyRefusal::of(&e))?;
        Ok((options, Ceremony::new(now, CeremonyStep::Register { user_id: user.id, name, state })))
    }

    /// Finishes a registration of `user_id` with the browser's `answer` (JSON); the ceremony is
    /// used up, whatever the outcome.
    ///
    /// # Errors
    /// [`FinishError`].
    pub async fn finish_registration(
        &self,
        store: &Store,
        ceremony: Option<Ceremony>,
        user_id: Uuid,
        answer: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Registered, FinishError> {
        let webauthn = self.webauthn()?;
        let (name, state) = match claim(store, ceremony, now).await? {
            CeremonyStep::Register { user_id: owner, name, state } if owner == user_id => (name, state),
            _ => return Err(PasskeyRefusal::NoCeremony.into()),
        };
        let answer: RegisterPublicKeyCredential =
            serde_json::from_slice(answer).map_err(|_| PasskeyRefusal::Malformed)?;
        let discoverable = answer.extensions.cred_props.as_ref().and_then(|p| p.rk).unwrap_or(false);
        let passkey = webauthn.finish_passkey_registration(&answer, &state).map_err(|e| PasskeyRefusal::of(&e))?;
        let credential = serde_json::to_string(&passkey).map_err(|_| PasskeyRefusal::Invalid)?;
        Ok(Registered { name, credential_id: passkey.cred_id().to_vec(), credential, discoverable })
    }

    /// Starts an assertion by one of the account's `passkeys` (the second sign-in step).
    ///
    /// # Errors
    /// [`PasskeyRefusal`].
    pub fn start_authentication(
        &self,
        user_id: Uuid,
        passkeys: &[StoredPasskey],
        now: DateTime<Utc>,
    ) -> Result<(RequestChallengeResponse, Ceremony), PasskeyRefusal> {
        let webauthn = self.webauthn()?;
        let keys: Vec<Passkey> = passkeys.iter().filter_map(|p| serde_json::from_str(&p.credential).ok()).collect();
        if keys.is_empty() {
            return Err(PasskeyRefusal::NoPasskey);
        }
        let (options, state) = webauthn.start_passkey_authentication(&keys).map_err(|e| PasskeyRefusal::of(&e))?;
        Ok((options, Ceremony::new(now, CeremonyStep::Authenticate { user_id, state })))
    }

    /// Starts a passwordless sign-in: a modal request for any discoverable credential of this
    /// site, user verification required.
    ///
    /// # Errors
    /// [`PasskeyRefusal`].
    pub fn start_passwordless(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(RequestChallengeResponse, Ceremony), PasskeyRefusal> {
        let (mut options, state) =
            self.webauthn()?.start_discoverable_authentication().map_err(|e| PasskeyRefusal::of(&e))?;
        // A button press asks at once (a modal request), not in the autofill list.
        options.mediation = None;
        Ok((options, Ceremony::new(now, CeremonyStep::Passwordless { state })))
    }

    /// Finishes an assertion with the browser's `answer` (JSON): of the account `expected`
    /// when given, else passwordless (the account the user handle names). The passkey's use is
    /// recorded.
    ///
    /// # Errors
    /// [`FinishError`].
    pub async fn finish_authentication(
        &self,
        store: &Store,
        ceremony: Option<Ceremony>,
        expected: Option<Uuid>,
        answer: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Verified, FinishError> {
        let webauthn = self.webauthn()?;
        let step = claim(store, ceremony, now).await?;
        let answer: PublicKeyCredential = serde_json::from_slice(answer).map_err(|_| PasskeyRefusal::Malformed)?;
        let stored = store.find_passkey_by_credential(answer.get_credential_id()).await?;
        let Some(stored) = stored else { return Err(PasskeyRefusal::Unknown.into()) };
        // The user handle, when sent, must name the credential's account (section 7.2, step 6).
        if let Some(handle) = answer.get_user_unique_id() {
            if Uuid::from_slice(handle).ok() != Some(stored.user_id) {
                return Err(PasskeyRefusal::WrongUser.into());
            }
        }
        let mut passkey: Passkey = serde_json::from_str(&stored.credential).map_err(|_| PasskeyRefusal::Invalid)?;
        let result = match (step, expected) {
            (CeremonyStep::Authenticate { user_id, state }, Some(expected)) if user_id == expected => {
                if stored.user_id != user_id {
                    return Err(PasskeyRefusal::Unknown.into());
                }
                webauthn.finish_passkey_authentication(&answer, &state)
            }
            (CeremonyStep::Passwordless { state }, None) => {
                // Discoverable sign-in needs the user handle.
                if answer.get_user_unique_id().is_none() {
                    return Err(PasskeyRefusal::WrongUser.into());
                }
                webauthn.finish_discoverable_authentication_v2(&answer, state, &passkey)
            }
            _ => return Err(PasskeyRefusal::NoCeremony.into()),
        };
        let result = result.map_err(|e| PasskeyRefusal::of(&e))?;
        passkey.update_credential(&result);
        let credential = serde_json::to_string(&passkey).map_err(|_| PasskeyRefusal::Invalid)?;
        let count = i64::from(result.counter());
        // The library checked the counter against the credential as the challenge had it (the
        // second step's state holds the passkeys of that moment); the store checks it against
        // the one stored now, in the update.
        if !store.record_passkey_use(stored.id, &credential, count, now).await? {
            return Err(PasskeyRefusal::Cloned.into());
        }
        Ok(Verified { user_id: stored.user_id, passkey_id: stored.id })
    }
}

/// The step of a ceremony still within its time, marked answered in the database, once.
async fn claim(store: &Store, ceremony: Option<Ceremony>, now: DateTime<Utc>) -> Result<CeremonyStep, FinishError> {
    let ceremony = ceremony.ok_or(PasskeyRefusal::NoCeremony)?;
    let id = ceremony.id;
    let step = live(Some(ceremony), now)?;
    if !store.claim_passkey_ceremony(id, now, now - CEREMONY_TIMEOUT * 2).await? {
        return Err(PasskeyRefusal::NoCeremony.into());
    }
    Ok(step)
}

/// The step of a ceremony still within its time.
fn live(ceremony: Option<Ceremony>, now: DateTime<Utc>) -> Result<CeremonyStep, PasskeyRefusal> {
    let ceremony = ceremony.ok_or(PasskeyRefusal::NoCeremony)?;
    if now - ceremony.issued_at > CEREMONY_TIMEOUT || now < ceremony.issued_at {
        return Err(PasskeyRefusal::Expired);
    }
    Ok(ceremony.step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passkeys_are_off_on_an_ip_address_and_on_for_a_host_name() {
        assert!(!Passkeys::new(&BaseUrl::parse("http://127.0.0.1:8080").unwrap()).unwrap().enabled());
        assert!(!Passkeys::new(&BaseUrl::parse("https://[2001:db8::1]").unwrap()).unwrap().enabled());
        assert!(Passkeys::new(&BaseUrl::parse("http://localhost:8080").unwrap()).unwrap().enabled());
        assert!(Passkeys::new(&BaseUrl::parse("https://portal.wmda.info/x").unwrap()).unwrap().enabled());
    }

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(parse_name("  Work laptop ").unwrap(), "Work laptop");
        assert!(parse_name("   ").is_err());
        assert!(parse_name(&"é".repeat(60)).is_ok());
        assert!(parse_name(&"é".repeat(61)).is_err());
        assert!(parse_name("a\u{7}b").is_err());
        for bad in [
            "\u{200B}",
            " \u{200B}\u{FEFF} ",
            "\u{202E}YubiKey",
            "a\u{2028}b",
            "a\u{2066}b",
            "\u{061C}",
            "\u{3164}",
            "\u{115F}\u{1160}",
            "\u{034F}",
            "\u{FE0F}",
            "\u{E0041}\u{E0042}",
            "\u{2800}",
            "\u{2061}\u{2062}",
            "K1\u{200B}",
            "\u{0301}\u{0302}",
        ] {
            assert!(parse_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_name("Cafe\u{301}").unwrap(), "Café");
    }

    #[test]
    fn a_missing_or_old_ceremony_is_refused() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-07T12:00:00Z").unwrap().with_timezone(&Utc);
        let passkeys = Passkeys::new(&BaseUrl::parse("http://localhost:8080").unwrap()).unwrap();
        let (_, old) = passkeys.start_passwordless(now - CEREMONY_TIMEOUT - Duration::seconds(1)).unwrap();
        assert_eq!(live(Some(old), now).err(), Some(PasskeyRefusal::Expired));
        let (_, fresh) = passkeys.start_passwordless(now - CEREMONY_TIMEOUT).unwrap();
        assert!(live(Some(fresh), now).is_ok());
        assert_eq!(live(None, now).err(), Some(PasskeyRefusal::NoCeremony));
    }
}
