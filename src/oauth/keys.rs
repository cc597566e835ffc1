//! ES256 signing keys: created insert-if-absent, stored encrypted with the master key, shared by
//! replicas (each reloads the active key periodically), rotated by `secret-portal keys rotate`;
//! retired public keys stay in the JWKS until their last token has expired.

use std::sync::{Arc, RwLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::EncodingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::MasterKey;
use crate::store::{NewSigningKey, Store, StoreError};

const PURPOSE: &[u8] = b"signing-key";

/// A public key as a JWK (RFC 7517), P-256 for ES256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// "EC".
    pub kty: String,
    /// "P-256".
    pub crv: String,
    /// base64url x coordinate.
    pub x: String,
    /// base64url y coordinate.
    pub y: String,
    /// Key id: the RFC 7638 thumbprint.
    pub kid: String,
    /// "sig".
    #[serde(rename = "use")]
    pub use_: String,
    /// "ES256".
    pub alg: String,
}

/// A new key pair: the PKCS#8 document and its public JWK.
///
/// # Errors
/// Only when the system's random source fails.
pub fn generate() -> Result<(zeroize::Zeroizing<Vec<u8>>, Jwk), String> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(|e| e.to_string())?;
    let der = zeroize::Zeroizing::new(pkcs8.as_ref().to_vec());
    let jwk = public_jwk(&der)?;
    Ok((der, jwk))
}

/// The public JWK of a PKCS#8 P-256 key, with its RFC 7638 thumbprint as `kid`.
fn public_jwk(der: &[u8]) -> Result<Jwk, String> {
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(|e| e.to_string())?;
    let point = pair.public_key().as_ref();
    // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
    if point.len() != 65 || point[0] != 4 {
        return Err("unexpected public key encoding".into());
    }
    let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
    let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
    // RFC 7638 3.2: the required members in lexicographic order, no white space.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    Ok(Jwk { kty: "EC".into(), crv: "P-256".into(), x, y, kid, use_: "sig".into(), alg: "ES256".into() })
}

/// The key tokens are signed with now.
#[derive(Clone)]
pub struct ActiveKey {
    /// Its id (the JWT header's `kid`).
    pub kid: String,
    /// Parsed once, used for every token.
    pub encoding: EncodingKey,
}

/// The signing keys of this replica: the active key, cached and reloaded from the database.
#[derive(Clone)]
pub struct SigningKeys {
    store: Store,
    master: MasterKey,
    active: Arc<RwLock<ActiveKey>>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKeys")
    }
}

/// Why the keys cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored key does not decrypt or parse (another master key?).
    #[error("signing key {0} cannot be read: {1}")]
    Unreadable(String, String),
    /// Key generation failed.
    #[error("cannot generate a signing key: {0}")]
    Generate(String),
}

fn new_signing_key(master: &MasterKey, now: DateTime<Utc>) -> Result<NewSigningKey, KeyError> {
    let (der, jwk) = generate().map_err(KeyError::Generate)?;
    Ok(NewSigningKey {
        kid: jwk.kid.clone(),
        private_key_enc: master.encrypt(&der, PURPOSE),
        public_jwk: serde_json::to_string(&jwk).unwrap_or_default(),
        created_at: now,
    })
}

fn decode(master: &MasterKey, kid: &str, enc: &[u8]) -> Result<ActiveKey, KeyError> {
    let der = master.decrypt(enc, PURPOSE).map_err(|e| KeyError::Unreadable(kid.to_owned(), e.to_string()))?;
    // jsonwebtoken's from_ec_der takes the PKCS#8 document.
    Ok(ActiveKey { kid: kid.to_owned(), encoding: EncodingKey::from_ec_der(&der) })
}

impl SigningKeys {
    /// Loads the active key, creating the first one when the database has none (insert-if-absent:
    /// replicas starting together agree on one).
    ///
    /// # Errors
    /// [`KeyError`].
    pub async fn load_or_create(store: Store, master: MasterKey, now: DateTime<Utc>) -> Result<Self, KeyError> {
        if store.active_signing_key().await?.is_none() {
            store.insert_first_signing_key(&new_signing_key(&master, now)?).await?;
        }
        let (kid, enc) = store.active_signing_key().await?.ok_or_else(|| KeyError::Generate("no active key".into()))?;
        let active = decode(&master, &kid, &enc)?;
        Ok(Self { store, master, active: Arc::new(RwLock::new(active)) })
    }

    /// The key to sign with now.
    pub fn active(&self) -> ActiveKey {
        self.active.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Reloads the active key from the database (after a rotation by another process).
    ///
    /// # Errors
    /// [`KeyError`].
    pub async fn reload(&self) -> Result<(), KeyError> {
        if let Some((kid, enc)) = self.store.active_signing_key().await? {
            if kid != self.active().kid {
                let key = decode(&self.master, &kid, &enc)?;
                *self.active.write().unwrap_or_else(std::sync::PoisonError::into_inner) = key;
                tracing::info!(kid = %kid, "signing key changed");
            }
        }
        Ok(())
    }

    /// The JWKS: the active key and the retired ones whose tokens may still be valid
    /// (retired less than `token_lifetime` ago).
    ///
    /// # Errors
    /// [`KeyError`].
    pub async fn jwks(&self, now: DateTime<Utc>, token_lifetime: Duration) -> Result<Vec<Jwk>, KeyError> {
        let keys = self.store.published_signing_keys(now - token_lifetime).await?;
        Ok(keys.iter().filter_map(|k| serde_json::from_str(k).ok()).collect())
    }
}

/// Rotates: retires the active key and makes a new one active, in one transaction. Replicas pick
/// the new key up within their reload interval; the retired key stays published until tokens
/// signed with it have expired.
///
/// # Errors
/// [`KeyError`].
pub async fn rotate(store: &Store, master: &MasterKey, now: DateTime<Utc>) -> Result<String, KeyError> {
    let key = new_signing_key(master, now)?;
    store.rotate_signing_key(&key, now).await?;
    Ok(key.kid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_p256_jwks_with_rfc_7638_thumbprints() {
        let (der, jwk) = generate().unwrap();
        assert_eq!(
            (jwk.kty.as_str(), jwk.crv.as_str(), jwk.alg.as_str(), jwk.use_.as_str()),
            ("EC", "P-256", "ES256", "sig")
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(&jwk.x).unwrap().len(), 32);
        assert_eq!(public_jwk(&der).unwrap(), jwk);
        let (_, other) = generate().unwrap();
        assert_ne!(jwk.kid, other.kid);
        let json = serde_json::to_value(&jwk).unwrap();
        assert_eq!(json["use"], "sig");
    }
}
