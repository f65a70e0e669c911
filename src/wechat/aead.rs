//! AEAD_AES_256_GCM as WeChat uses it for notification resources: key = the 32 ASCII bytes of
//! the APIv3 key, nonce = 12 ASCII bytes, AAD = `associated_data`, ciphertext = base64 of
//! ciphertext with the 16-byte tag at its end.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Nonce, Payload};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AeadError {
    #[error("the APIv3 key must be 32 bytes")]
    KeyLength,
    #[error("the nonce must be 12 bytes")]
    NonceLength,
    #[error("ciphertext is not base64")]
    Base64,
    #[error("ciphertext is shorter than its tag")]
    Truncated,
    #[error("authentication failed (wrong key, nonce, data or tag)")]
    Authentication,
}

/// The APIv3 key, checked for length once.
#[derive(Clone)]
pub struct ApiV3Key(SecretString);

impl std::fmt::Debug for ApiV3Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiV3Key(***)")
    }
}

impl ApiV3Key {
    pub fn parse(key: SecretString) -> Result<Self, AeadError> {
        if key.expose_secret().len() == 32 {
            Ok(Self(key))
        } else {
            Err(AeadError::KeyLength)
        }
    }

    fn cipher(&self) -> Result<Aes256Gcm, AeadError> {
        Aes256Gcm::new_from_slice(self.0.expose_secret().as_bytes())
            .map_err(|_| AeadError::KeyLength)
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Decrypts a `resource` to its plaintext bytes.
    pub fn decrypt(
        &self,
        nonce: &str,
        associated_data: &str,
        ciphertext_b64: &str,
    ) -> Result<Vec<u8>, AeadError> {
        let nonce =
            Nonce::<Aes256Gcm>::try_from(nonce.as_bytes()).map_err(|_| AeadError::NonceLength)?;
        let raw = B64.decode(ciphertext_b64).map_err(|_| AeadError::Base64)?;
        if raw.len() < 16 {
            return Err(AeadError::Truncated);
        }
        self.cipher()?
            .decrypt(
                &nonce,
                Payload {
                    msg: &raw,
                    aad: associated_data.as_bytes(),
                },
            )
            .map_err(|_| AeadError::Authentication)
    }

    /// Encrypts as WeChat does (the sandbox's side); returns base64(ciphertext || tag).
    pub fn encrypt(
        &self,
        nonce: &str,
        associated_data: &str,
        plaintext: &[u8],
    ) -> Result<String, AeadError> {
        let nonce =
            Nonce::<Aes256Gcm>::try_from(nonce.as_bytes()).map_err(|_| AeadError::NonceLength)?;
        let raw = self
            .cipher()?
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: associated_data.as_bytes(),
                },
            )
            .map_err(|_| AeadError::Authentication)?;
        Ok(B64.encode(raw))
    }
}
