//! The keys that sign leak reports (issue 15, point 4; DESIGN.md section 7); the use case that
//! marks a reported live secret exposed is [`super::client_secrets::report_leaks`].
//!
//! Signatures follow GitHub's secret-scanning partner program: the header
//! `Github-Public-Key-Identifier` names a key of the keys file (`PORTAL_LEAK_REPORT_KEYS`, in the
//! format of GitHub's `meta/public_keys/secret_scanning`: `{"public_keys": [{"key_identifier",
//! "key" (PEM), "is_current"}]}`), and `Github-Public-Key-Signature` is the base64 DER ECDSA
//! P-256 / SHA-256 signature of the exact raw body.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;

/// Why a signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The keys file is set and the report carries no signature (401).
    #[error("Leak reports must be signed: send Github-Public-Key-Identifier and Github-Public-Key-Signature.")]
    Missing,
    /// No key of that identifier in the keys file (401).
    #[error("The key identifier is not one of the portal's leak-report keys.")]
    UnknownKey,
    /// Not base64 DER, or not a signature of this body by that key (401).
    #[error("The signature does not verify against the body.")]
    Invalid,
    /// The keys file cannot be read or parsed, and no earlier version of it was (503).
    #[error("The leak-report keys cannot be read.")]
    Unreadable,
}

/// Why the keys file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeysFileError {
    /// Not readable.
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// Not the key list's JSON, or a key that is no P-256 public key in PEM.
    #[error(
        "{0} is not a list of secret-scanning public keys ({{\"public_keys\": [{{\"key_identifier\", \"key\"}}]}} with P-256 keys in PEM): {1}"
    )]
    Format(PathBuf, String),
}

#[derive(serde::Deserialize)]
struct KeysFile {
    public_keys: Vec<KeyEntry>,
}

#[derive(serde::Deserialize)]
struct KeyEntry {
    key_identifier: String,
    key: String,
}

#[derive(Debug, Default)]
struct Loaded {
    /// The file's modification time and length when read: either changing means a re-read.
    modified: Option<(SystemTime, u64)>,
    keys: Option<HashMap<String, VerifyingKey>>,
}

/// The leak-report keys: none (unsigned reports accepted, rate-limited), or a file re-read when
/// its modification time changes (a file that turns unreadable keeps the keys last read).
#[derive(Debug)]
pub struct LeakReportKeys {
    path: Option<PathBuf>,
    loaded: Mutex<Loaded>,
}

impl LeakReportKeys {
    /// No keys file: unsigned reports are accepted (development, tests).
    pub fn none() -> Self {
        Self { path: None, loaded: Mutex::new(Loaded::default()) }
    }

    /// The keys of `path`, read now.
    ///
    /// # Errors
    /// [`KeysFileError`] when the file cannot be read or parsed: the portal does not start.
    pub fn from_file(path: PathBuf) -> Result<Self, KeysFileError> {
        let keys = Self { path: Some(path), loaded: Mutex::new(Loaded::default()) };
        keys.reload()?;
        Ok(keys)
    }

    /// Whether a keys file is set: then every report must be signed.
    pub fn is_set(&self) -> bool {
        self.path.is_some()
    }

    fn parse(path: &Path, text: &[u8]) -> Result<HashMap<String, VerifyingKey>, KeysFileError> {
        let file: KeysFile =
            serde_json::from_slice(text).map_err(|e| KeysFileError::Format(path.to_path_buf(), e.to_string()))?;
        file.public_keys
            .into_iter()
            .map(|k| {
                let key = p256::PublicKey::from_public_key_pem(k.key.trim())
                    .map_err(|e| KeysFileError::Format(path.to_path_buf(), format!("key {}: {e}", k.key_identifier)))?;
                Ok((k.key_identifier, VerifyingKey::from(&key)))
            })
            .collect()
    }

    /// Re-reads the file when its modification time changed since the last read.
    fn reload(&self) -> Result<(), KeysFileError> {
        let Some(path) = &self.path else { return Ok(()) };
        let modified = std::fs::metadata(path).and_then(|m| Ok((m.modified()?, m.len()))).ok();
        {
            let loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
            if loaded.keys.is_some() && loaded.modified == modified && modified.is_some() {
                return Ok(());
            }
        }
        let text = std::fs::read(path).map_err(|e| KeysFileError::Read(path.clone(), e))?;
        let keys = Self::parse(path, &text)?;
        *self.loaded.lock().unwrap_or_else(PoisonError::into_inner) = Loaded { modified, keys: Some(keys) };
        Ok(())
    }

    /// Verifies `signature` (base64 DER) of `body` by the key `key_id`.
    ///
    /// # Errors
    /// [`SignatureError`].
    pub fn verify(&self, key_id: &str, signature: &str, body: &[u8]) -> Result<(), SignatureError> {
        if let Err(e) = self.reload() {
            tracing::warn!(error = %e, "cannot re-read the leak-report keys; the keys read before stay in use");
        }
        let loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        let keys = loaded.keys.as_ref().ok_or(SignatureError::Unreadable)?;
        let key = keys.get(key_id.trim()).ok_or(SignatureError::UnknownKey)?;
        let der =
            base64::engine::general_purpose::STANDARD.decode(signature.trim()).map_err(|_| SignatureError::Invalid)?;
        let signature = Signature::from_der(&der).map_err(|_| SignatureError::Invalid)?;
        key.verify(body, &signature).map_err(|_| SignatureError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keys_file_that_is_missing_or_not_a_key_list_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.json");
        assert!(matches!(LeakReportKeys::from_file(missing), Err(KeysFileError::Read(..))));
        for bad in ["{}", "[]", r#"{"public_keys":[{"key_identifier":"k","key":"not a PEM"}]}"#] {
            let path = dir.path().join("bad.json");
            std::fs::write(&path, bad).unwrap();
            let err = LeakReportKeys::from_file(path).unwrap_err();
            assert!(matches!(err, KeysFileError::Format(..)), "{bad}: {err}");
        }
        assert!(!LeakReportKeys::none().is_set());
        assert_eq!(LeakReportKeys::none().verify("k", "sig", b"body"), Err(SignatureError::Unreadable));
    }
}
