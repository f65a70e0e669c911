//! Key material: PEM loading (PKCS#8 and PKCS#1 private keys, SPKI public keys, X.509
//! certificates) and the two roles keys play — the merchant's signer and the platform's
//! verifier set chosen by `Wechatpay-Serial`.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{PrivateKey, PublicKey};
use x509_cert::Certificate;
use x509_cert::der::{DecodePem, Encode};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("not a PKCS#8 or PKCS#1 RSA private key in PEM form")]
    PrivateKey,
    #[error("not an SPKI or PKCS#1 RSA public key in PEM form")]
    PublicKey,
    #[error("not an X.509 certificate with an RSA key in PEM form")]
    Certificate,
    #[error("key generation or encoding failed: {0}")]
    Generate(String),
}

/// Reads a PEM file, naming the file (never its content) on failure.
pub fn read_pem(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// `-----BEGIN PRIVATE KEY-----` (PKCS#8) or `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1).
pub fn private_key_from_pem(pem: &str) -> Result<PrivateKey, KeyError> {
    PrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| PrivateKey::from_pkcs1_pem(pem))
        .map_err(|_| KeyError::PrivateKey)
}

/// `-----BEGIN PUBLIC KEY-----` (SPKI, what WeChat's public-key mode hands out) or PKCS#1.
pub fn public_key_from_pem(pem: &str) -> Result<PublicKey, KeyError> {
    PublicKey::from_public_key_pem(pem)
        .or_else(|_| PublicKey::from_pkcs1_pem(pem))
        .map_err(|_| KeyError::PublicKey)
}

/// An X.509 certificate: its serial as WeChat writes it (upper-case hex, no leading zero
/// byte) and its RSA public key.
pub fn certificate_from_pem(pem: &str) -> Result<(String, PublicKey), KeyError> {
    let cert = Certificate::from_pem(pem.as_bytes()).map_err(|_| KeyError::Certificate)?;
    let tbs = cert.tbs_certificate();
    let raw = tbs.serial_number().as_bytes();
    let trimmed = match raw.iter().position(|b| *b != 0) {
        Some(first) => raw.get(first..).unwrap_or(raw),
        None => raw,
    };
    let serial = hex::encode_upper(trimmed);
    let spki = tbs
        .subject_public_key_info()
        .to_der()
        .map_err(|_| KeyError::Certificate)?;
    let key = PublicKey::from_public_key_der(&spki).map_err(|_| KeyError::Certificate)?;
    Ok((serial, key))
}

/// A fresh 2048-bit RSA key pair (the sandbox's keys, test keys).
pub fn generate_private_key() -> Result<PrivateKey, KeyError> {
    let mut rng = rand::rng();
    PrivateKey::new(&mut rng, 2048).map_err(|e| KeyError::Generate(e.to_string()))
}

pub fn private_key_to_pem(key: &PrivateKey) -> Result<String, KeyError> {
    key.to_pkcs8_pem(LineEnding::LF)
        .map(|pem| pem.to_string())
        .map_err(|e| KeyError::Generate(e.to_string()))
}

pub fn public_key_to_pem(key: &PublicKey) -> Result<String, KeyError> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError::Generate(e.to_string()))
}

/// SHA256withRSA (PKCS#1 v1.5) with a private key, base64: the one signature scheme of
/// WeChat Pay v3 (requests, responses, notifications, pay parameters).
#[derive(Clone)]
pub struct RsaSigner {
    key: SigningKey<Sha256>,
}

impl RsaSigner {
    pub fn new(key: PrivateKey) -> Self {
        Self {
            key: SigningKey::<Sha256>::new(key),
        }
    }

    pub fn sign_base64(&self, message: &[u8]) -> String {
        let signature: Signature = self.key.sign(message);
        B64.encode(signature.to_bytes())
    }
}

impl std::fmt::Debug for RsaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RsaSigner(..)")
    }
}

/// Checks SHA256withRSA signatures with one public key.
#[derive(Clone, Debug)]
pub struct RsaVerifier {
    key: VerifyingKey<Sha256>,
}

impl RsaVerifier {
    pub fn new(key: PublicKey) -> Self {
        Self {
            key: VerifyingKey::<Sha256>::new(key),
        }
    }

    /// True when `signature_b64` is a valid signature of `message`.
    pub fn verify_base64(&self, message: &[u8], signature_b64: &str) -> bool {
        let Ok(raw) = B64.decode(signature_b64.trim()) else {
            return false;
        };
        let Ok(signature) = Signature::try_from(raw.as_slice()) else {
            return false;
        };
        self.key.verify(message, &signature).is_ok()
    }
}

/// The platform keys we trust, by `Wechatpay-Serial`: certificate serials and public-key ids
/// (`PUB_KEY_ID_…`) side by side, so a migration from certificates to public keys needs no
/// flag day.
#[derive(Clone, Debug, Default)]
pub struct PlatformKeys {
    keys: HashMap<String, RsaVerifier>,
}

impl PlatformKeys {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key under its serial or public-key id.
    pub fn insert(&mut self, serial: impl Into<String>, key: PublicKey) {
        self.keys.insert(serial.into(), RsaVerifier::new(key));
    }

    /// Adds a platform certificate under the serial read from it; returns the serial.
    pub fn insert_certificate_pem(&mut self, pem: &str) -> Result<String, KeyError> {
        let (serial, key) = certificate_from_pem(pem)?;
        self.insert(serial.clone(), key);
        Ok(serial)
    }

    pub fn get(&self, serial: &str) -> Option<&RsaVerifier> {
        self.keys.get(serial)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn serials(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}
