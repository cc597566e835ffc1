//! TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps) through totp-rs.
//!
//! totp-rs checks a code against the steps -1, 0 and +1 and returns the matched step; accepting
//! each step once is the caller's job (the store keeps the last accepted step per user).

use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::{RngCore as _, TryRngCore as _};
use totp_rs::{Algorithm, Builder, Totp};
use zeroize::Zeroizing;

use crate::domain::MasterKey;
use crate::domain::cipher::CipherError;

/// Bytes of a TOTP seed (RFC 4226 4: 160 bits recommended).
pub const SEED_LEN: usize = 20;
const STEP_SECONDS: u64 = 30;
const SEED_PURPOSE: &[u8] = b"totp-seed";

/// A TOTP seed. Secret (DESIGN.md section 6): stored only encrypted with the master key, shown
/// once at enrolment; `Debug` is redacted and the bytes are wiped on drop.
pub struct TotpSeed(Zeroizing<Vec<u8>>);

/// A code as typed: exactly 6 ASCII digits, surrounding spaces ignored.
pub struct TotpCode(Zeroizing<String>);

/// Why a text is not a [`TotpCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Enter the 6-digit code from your authenticator app.")]
pub struct NotACode;

impl TotpCode {
    /// Trims and checks `input`.
    ///
    /// # Errors
    /// [`NotACode`] unless it is exactly 6 digits.
    pub fn parse(input: &str) -> Result<Self, NotACode> {
        let code = input.trim();
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(Zeroizing::new(code.to_owned())))
        } else {
            Err(NotACode)
        }
    }
}

impl std::fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpCode([REDACTED])")
    }
}

/// The issuer as authenticator apps show it. otpauth URIs use `:` between issuer and account, so
/// a colon in `PORTAL_TOTP_ISSUER` becomes a dash; spaces stay (they are percent-encoded).
pub fn issuer_label(issuer: &str) -> String {
    let label: String = issuer.trim().chars().map(|c| if c == ':' { '-' } else { c }).collect();
    if label.is_empty() { "WMDA".to_owned() } else { label }
}

/// The stored TOTP seeds' encryption (XChaCha20-Poly1305 under the master key, the purpose
/// `totp-seed` bound in): handlers seal and open seeds through this service and never hold the
/// master key. `Debug` is redacted.
#[derive(Clone)]
pub struct TotpVault {
    key: MasterKey,
}

impl TotpVault {
    /// A vault over the master key.
    pub fn new(key: MasterKey) -> Self {
        Self { key }
    }

    /// The seed encrypted for storage.
    pub fn seal(&self, seed: &TotpSeed) -> Vec<u8> {
        seed.encrypt(&self.key)
    }

    /// A stored seed, decrypted.
    ///
    /// # Errors
    /// [`CipherError::Decrypt`] when it was encrypted under another key or altered.
    pub fn open(&self, stored: &[u8]) -> Result<TotpSeed, CipherError> {
        TotpSeed::decrypt(stored, &self.key)
    }
}

impl std::fmt::Debug for TotpVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpVault([REDACTED])")
    }
}

impl TotpSeed {
    /// 20 random bytes from the OS CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; SEED_LEN]);
        // `unwrap_err` panics if the OS has no entropy: no seed rather than a predictable one.
        rand::rngs::OsRng.unwrap_err().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The seed encrypted for storage.
    pub fn encrypt(&self, key: &MasterKey) -> Vec<u8> {
        key.encrypt(&self.0, SEED_PURPOSE)
    }

    /// A stored seed, decrypted.
    ///
    /// # Errors
    /// [`CipherError::Decrypt`] when it was encrypted under another key.
    pub fn decrypt(stored: &[u8], key: &MasterKey) -> Result<Self, CipherError> {
        Ok(Self(Zeroizing::new(key.decrypt(stored, SEED_PURPOSE)?.to_vec())))
    }

    /// The seed in base32 (RFC 4648, no padding), in groups of four for typing into an app.
    pub fn base32_grouped(&self) -> String {
        let plain = totp_rs::Secret::from(self.0.to_vec()).to_base32();
        let chars: Vec<char> = plain.chars().collect();
        chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join(" ")
    }

    fn totp(&self, issuer: &str, account: &str) -> Totp {
        let account: String = account.chars().map(|c| if c == ':' { '-' } else { c }).collect();
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_skew(1)
            .with_step_duration(STEP_SECONDS)
            .with_secret(self.0.to_vec())
            .with_issuer(Some(issuer_label(issuer)))
            .with_account_name(account)
            // The parameters above are RFC-compliant by construction and colons are replaced.
            .build_noncompliant()
    }

    /// The `otpauth://totp/…` URI an authenticator app reads from the QR code.
    ///
    /// # Errors
    /// Only for an empty account name.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Result<String, totp_rs::TotpError> {
        self.totp(issuer, account).to_url()
    }

    /// The QR code of [`TotpSeed::otpauth_uri`] as a `data:image/png;base64,…` URI, drawn here
    /// (no external request).
    ///
    /// # Errors
    /// When the QR code cannot be drawn.
    pub fn qr_data_uri(&self, issuer: &str, account: &str) -> Result<String, totp_rs::TotpError> {
        let png = self.totp(issuer, account).to_qr_png()?;
        Ok(format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png)))
    }

    /// The time step a code matches at `now`, trying steps -1, 0 and +1; `None` otherwise.
    pub fn matching_step(&self, code: &TotpCode, now: DateTime<Utc>) -> Option<u64> {
        let seconds = u64::try_from(now.timestamp()).ok()?;
        self.totp("WMDA", "user").check(&code.0, seconds)
    }

    /// The code for `at` (tests and the demo use this, as an authenticator app would).
    pub fn code_at(&self, at: DateTime<Utc>) -> String {
        self.totp("WMDA", "user").generate(u64::try_from(at.timestamp()).unwrap_or(0)).to_string()
    }

    /// Parses a base32 seed as shown at enrolment (spaces ignored); tests read it off the page.
    pub fn from_base32(text: &str) -> Option<Self> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        totp_rs::Secret::try_from_base32(compact).ok().map(|s| Self(Zeroizing::new(s.as_bytes().to_vec())))
    }
}

impl std::fmt::Debug for TotpSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSeed([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn rfc_6238_test_vector() {
        // RFC 6238 appendix B, SHA-1 seed "12345678901234567890", T = 59 s: 94287082 (8 digits),
        // so the 6-digit code is 287082.
        let seed = TotpSeed(Zeroizing::new(b"12345678901234567890".to_vec()));
        assert_eq!(seed.code_at(at("1970-01-01T00:00:59Z")), "287082");
    }

    #[test]
    fn steps_minus_one_to_plus_one_are_accepted() {
        let seed = TotpSeed::generate();
        let now = at("2026-11-29T12:00:15Z");
        for (offset, accepted) in [(-60, false), (-30, true), (0, true), (30, true), (60, false)] {
            let code = TotpCode::parse(&seed.code_at(now + Duration::seconds(offset))).unwrap();
            assert_eq!(seed.matching_step(&code, now).is_some(), accepted, "offset {offset}");
        }
        let code = TotpCode::parse(&seed.code_at(now)).unwrap();
        assert_eq!(seed.matching_step(&code, now), Some(now.timestamp() as u64 / 30));
    }

    #[test]
    fn codes_are_exactly_six_digits() {
        assert!(TotpCode::parse(" 123456 ").is_ok());
        for bad in ["12345", "1234567", "12 3456", "abcdef", "", "１２３４５６"] {
            assert!(TotpCode::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(format!("{:?}", TotpCode::parse("123456").unwrap()), "TotpCode([REDACTED])");
    }

    #[test]
    fn colons_and_spaces_in_the_issuer_do_not_break_enrolment() {
        let seed = TotpSeed::generate();
        let uri = seed.otpauth_uri("WMDA: Secret Portal", "jane@example.org").unwrap();
        assert!(uri.starts_with("otpauth://totp/WMDA-%20Secret%20Portal:jane%40example.org?secret="), "{uri}");
        assert!(
            seed.qr_data_uri("WMDA: Secret Portal", "jane@example.org").unwrap().starts_with("data:image/png;base64,")
        );
    }

    #[test]
    fn seeds_round_trip_through_encryption_and_base32() {
        let key = MasterKey::generate();
        let seed = TotpSeed::generate();
        let again = TotpSeed::decrypt(&seed.encrypt(&key), &key).unwrap();
        assert_eq!(again.0.as_slice(), seed.0.as_slice());
        assert!(TotpSeed::decrypt(&seed.encrypt(&key), &MasterKey::generate()).is_err());
        let typed = TotpSeed::from_base32(&seed.base32_grouped()).unwrap();
        assert_eq!(typed.0.as_slice(), seed.0.as_slice());
        assert_eq!(format!("{seed:?}"), "TotpSeed([REDACTED])");
    }
}
