//! The master key and the cipher that encrypts values at rest (TOTP seeds, signing keys).
//!
//! XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`): a random 192-bit nonce per message is safe
//! without a counter, so replicas sharing the key need no coordination.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

/// Bytes of a master key.
pub const MASTER_KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// The plaintext of the key-check value: a database remembers which key it was written with.
const KEY_CHECK_PLAINTEXT: &[u8] = b"secret-portal master key check v1";
const KEY_CHECK_AAD: &[u8] = b"key-check";

/// The master key: 32 random bytes, written as standard base64 (DESIGN.md section 5).
///
/// `Debug` is redacted; the bytes are wiped on drop.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; MASTER_KEY_LEN]>);

/// Why a text is not a master key, or a ciphertext does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// Not base64 of exactly 32 bytes.
    #[error("the master key must be 32 bytes written as base64 (for example the output of `openssl rand -base64 32`)")]
    BadKey,
    /// The ciphertext was not made with this key and purpose, or was altered.
    #[error("the data cannot be decrypted with this master key")]
    Decrypt,
}

impl MasterKey {
    /// A new random key from the OS CSPRNG.
    pub fn generate() -> Self {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        bytes.copy_from_slice(&key);
        Self(bytes)
    }

    /// Parses standard base64 of 32 bytes (surrounding white space ignored).
    ///
    /// # Errors
    /// [`CipherError::BadKey`].
    pub fn parse(text: &str) -> Result<Self, CipherError> {
        let decoded = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| CipherError::BadKey)?);
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        if decoded.len() != MASTER_KEY_LEN {
            return Err(CipherError::BadKey);
        }
        bytes.copy_from_slice(&decoded);
        Ok(Self(bytes))
    }

    /// The key as base64, for writing the generated key file only.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(*self.0))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(&*self.0))
    }

    /// Encrypts `plaintext`, bound to `purpose` (associated data: a ciphertext made for one
    /// purpose does not open as another). Output: 24-byte nonce, then ciphertext and tag.
    pub fn encrypt(&self, plaintext: &[u8], purpose: &[u8]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        // Encryption with a fresh nonce and an in-memory buffer cannot fail; an empty ciphertext
        // would simply not decrypt later.
        out.extend(self.cipher().encrypt(&nonce, Payload { msg: plaintext, aad: purpose }).unwrap_or_default());
        out
    }

    /// Decrypts what [`MasterKey::encrypt`] produced for the same `purpose`.
    ///
    /// # Errors
    /// [`CipherError::Decrypt`] for another key, another purpose, or altered bytes.
    pub fn decrypt(&self, data: &[u8], purpose: &[u8]) -> Result<Zeroizing<Vec<u8>>, CipherError> {
        if data.len() < NONCE_LEN {
            return Err(CipherError::Decrypt);
        }
        let (nonce, ciphertext) = data.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: purpose })
            .map(Zeroizing::new)
            .map_err(|_| CipherError::Decrypt)
    }

    /// A 32-byte key for another purpose, derived from the master key:
    /// HMAC-SHA-256(master key, `label`) (RFC 2104), so one master key serves several uses
    /// without one use's key revealing another's.
    pub fn subkey(&self, label: &[u8]) -> Zeroizing<[u8; 32]> {
        use hmac::{Hmac, Mac};
        let mut out = Zeroizing::new([0u8; 32]);
        // HMAC takes keys of any length, so this cannot fail.
        if let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&*self.0) {
            mac.update(label);
            out.copy_from_slice(&mac.finalize().into_bytes());
        }
        out
    }

    /// A fresh key-check value to store in a new database.
    pub fn key_check_value(&self) -> Vec<u8> {
        self.encrypt(KEY_CHECK_PLAINTEXT, KEY_CHECK_AAD)
    }

    /// Whether a stored key-check value was made with this key.
    pub fn matches_key_check(&self, stored: &[u8]) -> bool {
        self.decrypt(stored, KEY_CHECK_AAD).is_ok_and(|p| p.as_slice() == KEY_CHECK_PLAINTEXT)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn key_check_tells_keys_apart() {
        let a = MasterKey::generate();
        let b = MasterKey::generate();
        let check = a.key_check_value();
        assert!(a.matches_key_check(&check));
        assert!(!b.matches_key_check(&check));
        assert!(!a.matches_key_check(b"short"));
    }

    #[test]
    fn keys_parse_from_base64_of_32_bytes_only() {
        let a = MasterKey::generate();
        let again = MasterKey::parse(&format!(" {} \n", a.to_base64().as_str())).unwrap();
        assert!(again.matches_key_check(&a.key_check_value()));
        assert_eq!(MasterKey::parse("c2hvcnQ=").unwrap_err(), CipherError::BadKey);
        assert_eq!(MasterKey::parse("not base64!").unwrap_err(), CipherError::BadKey);
        assert_eq!(format!("{a:?}"), "MasterKey([REDACTED])");
    }

    proptest! {
        #[test]
        fn encryption_round_trips_and_binds_the_purpose(msg in proptest::collection::vec(any::<u8>(), 0..200)) {
            let k = MasterKey::generate();
            let c = k.encrypt(&msg, b"totp");
            let opened = k.decrypt(&c, b"totp").unwrap();
            prop_assert_eq!(opened.as_slice(), msg.as_slice());
            prop_assert_eq!(k.decrypt(&c, b"jwk").unwrap_err(), CipherError::Decrypt);
            let mut tampered = c.clone();
            let last = tampered.len() - 1;
            tampered[last] ^= 1;
            prop_assert!(k.decrypt(&tampered, b"totp").is_err());
        }
    }
}
