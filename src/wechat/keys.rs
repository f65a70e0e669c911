//! Key material: PEM loading (PKCS#8 and PKCS#1 private keys, SPKI and PKCS#1 public keys,
//! X.509 certificates) and the two roles keys play — the merchant's signer and the platform's
//! verifier set chosen by `Wechatpay-Serial`. The RSA itself is aws-lc-rs (the library rustls
//! already links): keys are parsed once, when loaded, and signing and verifying reuse them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    KeyPair as _, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::zeroize::Zeroizing;
use x509_cert::Certificate;
use x509_cert::der::pem::{self, LineEnding};
use x509_cert::der::{DecodePem, Encode};

/// The longest signature accepted or produced: an 8192-bit modulus (aws-lc-rs's limit).
const MAX_SIGNATURE_LEN: usize = 8192 / 8;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("not a PKCS#8 or PKCS#1 RSA private key (2048 to 8192 bits) in PEM form")]
    PrivateKey,
    #[error("not an SPKI or PKCS#1 RSA public key (2048 to 8192 bits) in PEM form")]
    PublicKey,
    #[error("not an X.509 certificate with an RSA key in PEM form")]
    Certificate,
    #[error("key generation or encoding failed: {0}")]
    Generate(String),
}

/// The RSA primitive refused to sign (never expected with a key that loaded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("RSA signing failed")]
pub struct SignError;

/// An RSA private key, parsed once; clones share it.
#[derive(Clone)]
pub struct PrivateKey(Arc<RsaKeyPair>);

impl PrivateKey {
    /// The public half, ready to verify.
    pub fn to_public_key(&self) -> Result<PublicKey, KeyError> {
        ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, self.0.public_key().as_ref())
            .map(PublicKey)
            .map_err(|_| KeyError::PublicKey)
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(..)")
    }
}

/// An RSA public key for SHA256withRSA (PKCS#1 v1.5) verification, parsed once.
#[derive(Clone)]
pub struct PublicKey(ParsedPublicKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PublicKey(..)")
    }
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
    let (label, der) = pem::decode_vec(pem.as_bytes()).map_err(|_| KeyError::PrivateKey)?;
    let der = Zeroizing::new(der);
    let pair = match label {
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
        _ => return Err(KeyError::PrivateKey),
    }
    .map_err(|_| KeyError::PrivateKey)?;
    Ok(PrivateKey(Arc::new(pair)))
}

/// `-----BEGIN PUBLIC KEY-----` (SPKI, what WeChat's public-key mode hands out) or
/// `-----BEGIN RSA PUBLIC KEY-----` (PKCS#1).
pub fn public_key_from_pem(pem: &str) -> Result<PublicKey, KeyError> {
    let (label, der) = pem::decode_vec(pem.as_bytes()).map_err(|_| KeyError::PublicKey)?;
    if label != "PUBLIC KEY" && label != "RSA PUBLIC KEY" {
        return Err(KeyError::PublicKey);
    }
    // aws-lc-rs reads either encoding of an RSA public key.
    ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der)
        .map(PublicKey)
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
    let key = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, spki)
        .map_err(|_| KeyError::Certificate)?;
    Ok((serial, PublicKey(key)))
}

/// A fresh 2048-bit RSA key pair (the sandbox's keys, test keys).
pub fn generate_private_key() -> Result<PrivateKey, KeyError> {
    RsaKeyPair::generate(KeySize::Rsa2048)
        .map(|pair| PrivateKey(Arc::new(pair)))
        .map_err(|e| KeyError::Generate(e.to_string()))
}

/// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
pub fn private_key_to_pem(key: &PrivateKey) -> Result<String, KeyError> {
    let der = key
        .0
        .as_der()
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    pem::encode_string("PRIVATE KEY", LineEnding::LF, der.as_ref())
        .map_err(|e| KeyError::Generate(e.to_string()))
}

/// SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
pub fn public_key_to_pem(key: &PublicKey) -> Result<String, KeyError> {
    let der = key
        .0
        .as_der()
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    pem::encode_string("PUBLIC KEY", LineEnding::LF, der.as_ref())
        .map_err(|e| KeyError::Generate(e.to_string()))
}

/// SHA256withRSA (PKCS#1 v1.5) with a private key, base64: the one signature scheme of
/// WeChat Pay v3 (requests, responses, notifications, pay parameters). Deterministic, so
/// a key and a message always give the same bytes.
#[derive(Clone)]
pub struct RsaSigner {
    key: PrivateKey,
}

impl RsaSigner {
    pub fn new(key: PrivateKey) -> Self {
        Self { key }
    }

    pub fn sign_base64(&self, message: &[u8]) -> Result<String, SignError> {
        let pair = &self.key.0;
        let mut buf = [0u8; MAX_SIGNATURE_LEN];
        let signature = buf.get_mut(..pair.public_modulus_len()).ok_or(SignError)?;
        // aws-lc-rs ignores the RNG for PKCS#1 v1.5 (it is deterministic).
        pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, signature)
            .map_err(|_| SignError)?;
        Ok(B64.encode(signature))
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
    key: PublicKey,
}

impl RsaVerifier {
    pub fn new(key: PublicKey) -> Self {
        Self { key }
    }

    /// True when `signature_b64` is a valid signature of `message`.
    pub fn verify_base64(&self, message: &[u8], signature_b64: &str) -> bool {
        let mut buf = [0u8; MAX_SIGNATURE_LEN];
        let Ok(len) = B64.decode_slice(signature_b64.trim(), &mut buf) else {
            return false;
        };
        let Some(signature) = buf.get(..len) else {
            return false;
        };
        self.key.0.verify_sig(message, signature).is_ok()
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
