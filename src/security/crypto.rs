//! Keys and primitives: HMAC/SHA-256 helpers, random tokens, and field encryption of phone
//! numbers with AES-256-GCM under versioned keys plus an HMAC blind index for lookups.
//!
//! Keys: `APP_FIELD_KEYS` is `"v2:secret2,v1:secret1"`; the first entry encrypts new values,
//! every entry decrypts. `APP_FIELD_KEY` is always available as `v1` (unless the list names
//! `v1` itself) and keys the blind index, which therefore survives rotation.

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut mac = match <HmacSha256 as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable_hmac(),
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cold]
fn unreachable_hmac() -> ! {
    // `Hmac::new_from_slice` never fails: any key length is valid.
    panic!("HMAC rejected a key")
}

pub fn hmac_hex(key: &[u8], data: &[u8]) -> String {
    hex::encode(hmac_sha256(key, data))
}

/// Compares a received hex MAC with the expected bytes in constant time.
pub fn verify_hmac_hex(key: &[u8], data: &[u8], received_hex: &str) -> bool {
    let Ok(received) = hex::decode(received_hex.trim()) else {
        return false;
    };
    let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(key) else {
        return false;
    };
    mac.update(data);
    mac.verify_slice(&received).is_ok()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A random token of `bytes` bytes, URL-safe base64.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

#[derive(Debug, thiserror::Error)]
pub enum FieldCryptoError {
    #[error("no field key with id {0}")]
    UnknownKey(String),
    #[error("ciphertext is malformed")]
    Malformed,
    #[error("ciphertext does not decrypt (wrong key or tampered)")]
    Decrypt,
    #[error("APP_FIELD_KEYS is malformed: {0}")]
    Config(String),
}

/// Versioned field encryption plus the blind index.
pub struct FieldCipher {
    /// (key id, AES-256 key); the first is current.
    keys: Vec<(String, [u8; 32])>,
    index_key: [u8; 32],
}

impl FieldCipher {
    /// `list` is the `APP_FIELD_KEYS` value (may be empty); `base` is `APP_FIELD_KEY`.
    pub fn new(list: Option<&SecretString>, base: &SecretString) -> Result<Self, FieldCryptoError> {
        let mut keys = Vec::new();
        if let Some(list) = list {
            for entry in list
                .expose_secret()
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
            {
                let (id, secret) = entry
                    .split_once(':')
                    .ok_or_else(|| FieldCryptoError::Config("expected id:secret".into()))?;
                let id = id.trim();
                if id.is_empty() || id.len() > 16 || secret.len() < 16 {
                    return Err(FieldCryptoError::Config(format!(
                        "key {id:?}: id 1-16 characters, secret at least 16"
                    )));
                }
                if keys.iter().any(|(k, _)| k == id) {
                    return Err(FieldCryptoError::Config(format!("key {id:?} twice")));
                }
                keys.push((id.to_string(), derive_field_key(id, secret.as_bytes())));
            }
        }
        if !keys.iter().any(|(k, _)| k == "v1") {
            keys.push((
                "v1".into(),
                derive_field_key("v1", base.expose_secret().as_bytes()),
            ));
        }
        let index_key = hmac_sha256(
            base.expose_secret().as_bytes(),
            b"points-app/blind-index/v1",
        );
        Ok(FieldCipher { keys, index_key })
    }

    pub fn current_key_id(&self) -> &str {
        self.keys.first().map(|(id, _)| id.as_str()).unwrap_or("v1")
    }

    /// True when `id` is in the key ring (a value stored under it can be decrypted).
    pub fn knows(&self, id: &str) -> bool {
        self.keys.iter().any(|(k, _)| k == id)
    }

    /// Every key id of the ring, the current one first.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|(id, _)| id.as_str()).collect()
    }

    fn key(&self, id: &str) -> Result<&[u8; 32], FieldCryptoError> {
        self.keys
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, key)| key)
            .ok_or_else(|| FieldCryptoError::UnknownKey(id.to_string()))
    }

    /// Encrypts under the current key. `aad` binds the ciphertext to its row and column, so
    /// it cannot be moved to another row. Returns (key id, base64(nonce || ciphertext)).
    pub fn encrypt(&self, plain: &str, aad: &str) -> Result<(String, String), FieldCryptoError> {
        let id = self.current_key_id().to_string();
        let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*self.key(&id)?));
        let nonce = aes_gcm::Nonce::generate();
        let ct = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| FieldCryptoError::Decrypt)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok((id, STANDARD.encode(out)))
    }

    pub fn decrypt(
        &self,
        key_id: &str,
        stored: &str,
        aad: &str,
    ) -> Result<String, FieldCryptoError> {
        let raw = STANDARD
            .decode(stored)
            .map_err(|_| FieldCryptoError::Malformed)?;
        if raw.len() < 12 + 16 {
            return Err(FieldCryptoError::Malformed);
        }
        let (nonce, ct) = raw.split_at(12);
        let nonce = aes_gcm::Nonce::try_from(nonce).map_err(|_| FieldCryptoError::Malformed)?;
        let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*self.key(key_id)?));
        let plain = cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| FieldCryptoError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| FieldCryptoError::Malformed)
    }

    /// True when a value stored under `key_id` should be re-encrypted under the current key.
    pub fn needs_rotation(&self, key_id: &str) -> bool {
        key_id != self.current_key_id()
    }

    /// Hex HMAC-SHA256 of the normalized value: equal inputs give equal indexes.
    pub fn blind_index(&self, normalized: &str) -> String {
        hmac_hex(&self.index_key, normalized.as_bytes())
    }
}

fn derive_field_key(id: &str, secret: &[u8]) -> [u8; 32] {
    hmac_sha256(secret, format!("points-app/field-enc/{id}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        s.to_string().into()
    }

    #[test]
    fn encrypts_and_decrypts_with_aad() {
        let c = FieldCipher::new(None, &secret("base-key-0123456789")).unwrap();
        let (id, ct) = c.encrypt("13812345678", "users.phone:u1").unwrap();
        assert_eq!(id, "v1");
        assert!(!ct.contains("1381234"));
        assert_eq!(
            c.decrypt(&id, &ct, "users.phone:u1").unwrap(),
            "13812345678"
        );
        assert!(c.decrypt(&id, &ct, "users.phone:u2").is_err());
    }

    #[test]
    fn rotation_keeps_old_rows_readable_and_the_index_stable() {
        let base = secret("base-key-0123456789");
        let old = FieldCipher::new(None, &base).unwrap();
        let (id, ct) = old.encrypt("13812345678", "a").unwrap();
        let new = FieldCipher::new(Some(&secret("v2:second-key-0123456789")), &base).unwrap();
        assert_eq!(new.current_key_id(), "v2");
        assert_eq!(new.key_ids(), ["v2", "v1"]);
        assert!(new.knows("v1") && !new.knows("v3"));
        assert!(new.needs_rotation(&id));
        assert_eq!(new.decrypt(&id, &ct, "a").unwrap(), "13812345678");
        let (id2, ct2) = new.encrypt("13812345678", "a").unwrap();
        assert_eq!(id2, "v2");
        assert!(old.decrypt(&id2, &ct2, "a").is_err());
        assert_eq!(
            old.blind_index("13812345678"),
            new.blind_index("13812345678")
        );
    }

    #[test]
    fn malformed_key_lists_are_refused() {
        let base = secret("base-key-0123456789");
        assert!(FieldCipher::new(Some(&secret("nocolon")), &base).is_err());
        assert!(FieldCipher::new(Some(&secret("v2:short")), &base).is_err());
        assert!(
            FieldCipher::new(
                Some(&secret("v2:0123456789abcdef,v2:0123456789abcdef")),
                &base
            )
            .is_err()
        );
    }

    #[test]
    fn hmac_verification_is_exact() {
        let mac = hmac_hex(b"k", b"data");
        assert!(verify_hmac_hex(b"k", b"data", &mac));
        assert!(!verify_hmac_hex(b"k", b"datb", &mac));
        assert!(!verify_hmac_hex(b"k", b"data", "zz"));
    }
}
