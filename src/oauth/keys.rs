//! ES256 signing keys: created insert-if-absent, stored encrypted with the master key, shared by
//! replicas (each reloads the schedule periodically), rotated by `secret-portal keys rotate`
//! without a gap for verifiers that refresh the JWKS on an unknown `kid` ([`KeySchedule`]).

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

/// The longest access-token lifetime (`PORTAL_TOKEN_LIFETIME` is at most this): a retired key
/// stays published at least this long after its last token.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::seconds(86_400);

/// When a rotated key starts signing and how long a retired one stays published (issue 12,
/// point 5), from the replicas' reload interval and the JWKS `max-age`:
/// - the new key is published when `keys rotate` stores it and signs from
///   `now + 2 x reload + max-age`: by then every replica has loaded it, and every cached JWKS
///   that lacked it has expired;
/// - the retired key stays published until `retired_at + reload + 86,400 s + max-age`: a replica
///   may sign with it for one reload interval after `retired_at`, its tokens live at most a day,
///   and a verifier may hold a JWKS for `max-age`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySchedule {
    /// How often each replica reloads the keys (`--key-reload-interval`, 30 s).
    pub reload: Duration,
    /// The JWKS response's `Cache-Control: max-age` (`--jwks-max-age`, 60 s).
    pub max_age: Duration,
}

impl KeySchedule {
    /// When a key stored at `now` starts signing.
    pub fn active_from(self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + self.reload * 2 + self.max_age
    }

    /// Until when a key retired at `retired_at` stays published.
    pub fn published_until(self, retired_at: DateTime<Utc>) -> DateTime<Utc> {
        retired_at + self.reload + MAX_TOKEN_LIFETIME + self.max_age
    }

    /// Keys retired before this instant are no longer published at `now`.
    fn retired_cutoff(self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - (self.reload + MAX_TOKEN_LIFETIME + self.max_age)
    }
}

/// A key with the span it signs in.
#[derive(Clone)]
struct Scheduled {
    from: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    key: ActiveKey,
}

/// The signing keys of this replica: the schedule of keys, cached and reloaded from the
/// database; the one to sign with is picked by time.
#[derive(Clone)]
pub struct SigningKeys {
    store: Store,
    master: MasterKey,
    schedule: KeySchedule,
    keys: Arc<RwLock<Vec<Scheduled>>>,
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
    /// Loads the schedule, creating the first key when the database has none (insert-if-absent:
    /// replicas starting together agree on one).
    ///
    /// # Errors
    /// [`KeyError`].
    pub async fn load_or_create(
        store: Store,
        master: MasterKey,
        schedule: KeySchedule,
        now: DateTime<Utc>,
    ) -> Result<Self, KeyError> {
        if store.active_signing_key().await?.is_none() {
            store.insert_first_signing_key(&new_signing_key(&master, now)?).await?;
        }
        let keys = Self { store, master, schedule, keys: Arc::new(RwLock::new(Vec::new())) };
        keys.reload(now).await?;
        if keys.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty() {
            return Err(KeyError::Generate("no signing key".into()));
        }
        Ok(keys)
    }

    /// The key to sign with at `now`: the latest whose span has begun and not ended (the
    /// earliest loaded one if a clock runs behind). `None` only if no key was ever loaded, which
    /// [`SigningKeys::load_or_create`] rules out.
    pub fn active(&self, now: DateTime<Utc>) -> Option<ActiveKey> {
        let keys = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.iter()
            .rev()
            .find(|k| k.from <= now && k.until.is_none_or(|u| u > now))
            .or_else(|| keys.first())
            .map(|k| k.key.clone())
    }

    /// Reloads the schedule from the database (after a rotation by another process).
    ///
    /// # Errors
    /// [`KeyError`].
    pub async fn reload(&self, now: DateTime<Utc>) -> Result<(), KeyError> {
        let rows = self.store.signing_key_schedule(now).await?;
        let known: Vec<String> = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|k| k.key.kid.clone())
            .collect();
        let mut loaded = Vec::with_capacity(rows.len());
        for (kid, enc, from, until) in rows {
            let key = decode(&self.master, &kid, &enc)?;
            if !known.contains(&kid) {
                tracing::info!(kid = %kid, signs_from = %from, "signing key loaded");
            }
            loaded.push(Scheduled { from, until, key });
        }
        if !loaded.is_empty() {
            *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) = loaded;
        }
        Ok(())
    }

    /// The schedule's settings.
    pub fn schedule(&self) -> KeySchedule {
        self.schedule
    }

    /// The JWKS at `now`: every stored key (a rotated one before it signs) but those retired
    /// longer ago than [`KeySchedule::published_until`] allows.
    ///
    /// # Errors
    /// [`KeyError`].
    pub async fn jwks(&self, now: DateTime<Utc>) -> Result<Vec<Jwk>, KeyError> {
        let keys = self.store.published_signing_keys(self.schedule.retired_cutoff(now)).await?;
        Ok(keys.iter().filter_map(|k| serde_json::from_str(k).ok()).collect())
    }
}

/// A scheduled rotation: the new key and when it signs; the key it retires and until when that
/// stays published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The new key's id.
    pub kid: String,
    /// It signs from this instant.
    pub active_from: DateTime<Utc>,
    /// The retired key's id, if there was one.
    pub retired_kid: Option<String>,
    /// The retired key stays published until this instant.
    pub retired_published_until: DateTime<Utc>,
}

/// Rotates: stores a new key, published at once, that signs from
/// [`KeySchedule::active_from`]; the current key retires then, in one transaction.
///
/// # Errors
/// [`KeyError`].
pub async fn rotate(
    store: &Store,
    master: &MasterKey,
    schedule: KeySchedule,
    now: DateTime<Utc>,
) -> Result<Rotation, KeyError> {
    let key = new_signing_key(master, now)?;
    let active_from = schedule.active_from(now);
    let retired_kid = store.rotate_signing_key(&key, active_from).await?;
    Ok(Rotation {
        kid: key.kid,
        active_from,
        retired_kid,
        retired_published_until: schedule.published_until(active_from),
    })
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

    #[test]
    fn the_schedule_publishes_before_signing_and_keeps_retired_keys_past_their_last_token() {
        let s = KeySchedule { reload: Duration::seconds(30), max_age: Duration::seconds(60) };
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(s.active_from(now), now + Duration::seconds(120));
        assert_eq!(s.published_until(now), now + Duration::seconds(30 + 86_400 + 60));
        assert_eq!(s.retired_cutoff(s.published_until(now)), now);
    }
}
