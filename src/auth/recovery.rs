//! Recovery codes: ten single-use codes shown once after TOTP enrolment.

use hmac::{Hmac, Mac};
use rand::{RngCore as _, TryRngCore as _};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::domain::MasterKey;

/// How many codes a user gets.
pub const RECOVERY_CODES: usize = 10;
/// What a typed code may hold: lower-case letters and digits (DESIGN.md section 4), so codes
/// issued before [`GENERATED`] keep working.
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// What new codes are made of: [`ALPHABET`] without `l 1 0 o`, which people misread for one
/// another (issue 14, point 11). 32 symbols, 5 bits each: a code carries 50 bits.
const GENERATED: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// A recovery code, `abcde-fghij`: ten characters from lower-case letters and digits, new ones
/// without `l 1 0 o` (50 bits). Secret: shown once, then stored only as an HMAC; `Debug` is
/// redacted.
pub struct RecoveryCode(Zeroizing<String>);

/// Why a text is not a recovery code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("A recovery code looks like abcde-fghij.")]
pub struct NotARecoveryCode;

impl RecoveryCode {
    /// A new random code.
    pub fn generate() -> Self {
        // `unwrap_err` panics if the OS has no entropy: no code rather than a predictable one.
        let mut rng = rand::rngs::OsRng.unwrap_err();
        let mut text = String::with_capacity(11);
        for i in 0..10 {
            if i == 5 {
                text.push('-');
            }
            // 32 symbols: five random bits pick one, each equally likely.
            let index = usize::try_from(rng.next_u32() % 32).unwrap_or_default();
            text.push(char::from(GENERATED[index]));
        }
        Self(Zeroizing::new(text))
    }

    /// Parses a typed code: case and surrounding spaces ignored, the dash optional.
    ///
    /// # Errors
    /// [`NotARecoveryCode`].
    pub fn parse(input: &str) -> Result<Self, NotARecoveryCode> {
        let compact: String = input.trim().chars().filter(|c| *c != '-').collect::<String>().to_ascii_lowercase();
        if compact.len() != 10 || !compact.bytes().all(|b| ALPHABET.contains(&b)) {
            return Err(NotARecoveryCode);
        }
        Ok(Self(Zeroizing::new(format!("{}-{}", &compact[..5], &compact[5..]))))
    }

    /// The code, for the one page that shows it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode([REDACTED])")
    }
}

/// The key recovery codes are hashed with: HMAC-SHA-256 under a key derived from the master key.
/// Fast to check, yet a copy of the database alone does not allow guessing the ~52-bit codes
/// offline (ASVS 5.0 6.5.2 asks a slow hash or a secret key for low-entropy codes).
#[derive(Clone)]
pub struct RecoveryCodeKey(Zeroizing<Vec<u8>>);

impl RecoveryCodeKey {
    /// Derives the key from the master key.
    pub fn derive(master: &MasterKey) -> Self {
        Self(Zeroizing::new(master.subkey(b"secret-portal recovery codes v1").to_vec()))
    }

    /// The stored form of a code (32 bytes).
    pub fn hash(&self, code: &RecoveryCode) -> Vec<u8> {
        // HMAC takes keys of any length (RFC 2104), so `new_from_slice` cannot fail.
        match <Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(mut mac) => {
                mac.update(code.0.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }
}

impl std::fmt::Debug for RecoveryCodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCodeKey([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn codes_look_like_abcde_fghij_and_differ() {
        let codes: Vec<_> = (0..RECOVERY_CODES).map(|_| RecoveryCode::generate()).collect();
        for c in &codes {
            let s = c.expose();
            assert_eq!(s.len(), 11);
            assert_eq!(&s[5..6], "-");
            assert!(s.chars().all(|ch| ch == '-' || ch.is_ascii_lowercase() || ch.is_ascii_digit()));
        }
        let distinct: std::collections::HashSet<_> = codes.iter().map(|c| c.expose().to_owned()).collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
    }

    #[test]
    fn typed_codes_are_normalised_before_hashing() {
        let key = RecoveryCodeKey::derive(&MasterKey::generate());
        let code = RecoveryCode::generate();
        let typed = format!("  {}  ", code.expose().replace('-', "").to_uppercase());
        assert_eq!(key.hash(&RecoveryCode::parse(&typed).unwrap()), key.hash(&code));
        assert!(RecoveryCode::parse("abcd-efgh").is_err());
        assert!(RecoveryCode::parse("abcde-fghi!").is_err());
        let other = RecoveryCodeKey::derive(&MasterKey::generate());
        assert_ne!(other.hash(&code), key.hash(&code));
    }

    #[test]
    fn new_codes_leave_out_look_alikes_and_older_codes_still_parse() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let code = RecoveryCode::generate();
            for c in code.expose().chars().filter(|c| *c != '-') {
                assert!(!"l10o".contains(c), "{c} in a new code");
                seen.insert(c);
            }
        }
        assert_eq!(seen.len(), 32, "every symbol of the alphabet turns up");
        // A code issued before, with the letters and digits since left out, still parses.
        assert_eq!(RecoveryCode::parse("l10o5-abcde").unwrap().expose(), "l10o5-abcde");
    }

    proptest! {
        #[test]
        fn parsing_a_generated_code_gives_it_back(_i in 0..50u8) {
            let code = RecoveryCode::generate();
            let parsed = RecoveryCode::parse(code.expose()).unwrap();
            prop_assert_eq!(parsed.expose(), code.expose());
        }
    }
}
