//! The signed messages of WeChat Pay v3: the merchant's `Authorization` header, the
//! platform's `Wechatpay-*` headers on responses and notifications, and the freshness window.

use std::sync::Arc;

use rand::RngExt as _;

use super::keys::{PlatformKeys, RsaSigner, SignError};

/// Every signature WeChat Pay v3 uses.
pub const SCHEMA: &str = "WECHATPAY2-SHA256-RSA2048";
/// A timestamp this far (or further) from now is refused.
pub const FRESHNESS_SECS: i64 = 300;
/// WeChat's probes carry a signature with this prefix; they must never verify.
pub const SIGNTEST_PREFIX: &str = "WECHATPAY/SIGNTEST/";

pub const HEADER_TIMESTAMP: &str = "Wechatpay-Timestamp";
pub const HEADER_NONCE: &str = "Wechatpay-Nonce";
pub const HEADER_SIGNATURE: &str = "Wechatpay-Signature";
pub const HEADER_SERIAL: &str = "Wechatpay-Serial";
pub const HEADER_SIGNATURE_TYPE: &str = "Wechatpay-Signature-Type";

/// True when `timestamp` is less than [`FRESHNESS_SECS`] away from `now` (either way).
/// Saturating, so an absurd timestamp cannot overflow.
pub fn is_fresh(now: i64, timestamp: i64) -> bool {
    now.saturating_sub(timestamp).unsigned_abs() < FRESHNESS_SECS.unsigned_abs()
}

/// Unix seconds, injectable so verification can be tested against fixed vectors.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_unix(&self) -> i64;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }
}

/// A clock stopped at one instant (tests, vectors).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now_unix(&self) -> i64 {
        self.0
    }
}

/// 32 random alphanumerics: the nonce of a request, a response or a notification.
pub fn new_nonce() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| {
            let i = rng.random_range(0..ALPHABET.len());
            char::from(ALPHABET.get(i).copied().unwrap_or(b'A'))
        })
        .collect()
}

/// `METHOD\nCANONICAL_URL\nTIMESTAMP\nNONCE\nBODY\n` (body empty for GET).
pub fn request_message(
    method: &str,
    canonical_url: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut m = format!("{method}\n{canonical_url}\n{timestamp}\n{nonce}\n").into_bytes();
    m.extend_from_slice(body);
    m.push(b'\n');
    m
}

/// `TIMESTAMP\nNONCE\nRAW_BODY\n`: what responses and notifications sign.
pub fn response_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut m = format!("{timestamp}\n{nonce}\n").into_bytes();
    m.extend_from_slice(body);
    m.push(b'\n');
    m
}

/// The merchant's identity and key: signs requests and `wx.requestPayment` parameters.
#[derive(Clone, Debug)]
pub struct MerchantSigner {
    pub mchid: String,
    pub serial_no: String,
    signer: RsaSigner,
}

impl MerchantSigner {
    pub fn new(mchid: impl Into<String>, serial_no: impl Into<String>, signer: RsaSigner) -> Self {
        Self {
            mchid: mchid.into(),
            serial_no: serial_no.into(),
            signer,
        }
    }

    pub fn sign(&self, message: &[u8]) -> Result<String, SignError> {
        self.signer.sign_base64(message)
    }

    /// `WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",timestamp="…",serial_no="…",signature="…"`.
    pub fn authorization(
        &self,
        method: &str,
        canonical_url: &str,
        timestamp: i64,
        nonce: &str,
        body: &[u8],
    ) -> Result<String, SignError> {
        let signature = self.sign(&request_message(
            method,
            canonical_url,
            timestamp,
            nonce,
            body,
        ))?;
        Ok(format!(
            "{SCHEMA} mchid=\"{}\",nonce_str=\"{nonce}\",timestamp=\"{timestamp}\",serial_no=\"{}\",signature=\"{signature}\"",
            self.mchid, self.serial_no
        ))
    }
}

/// The parts of a merchant's `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationHeader {
    pub mchid: String,
    pub nonce_str: String,
    pub timestamp: String,
    pub serial_no: String,
    pub signature: String,
}

impl AuthorizationHeader {
    /// Parses `WECHATPAY2-SHA256-RSA2048 k="v",…`; `None` when any part is missing.
    pub fn parse(raw: &str) -> Option<Self> {
        let rest = raw.strip_prefix(SCHEMA)?.strip_prefix(' ')?;
        let mut fields = std::collections::HashMap::new();
        for part in rest.split(',') {
            let (k, v) = part.trim().split_once('=')?;
            let v = v.strip_prefix('"')?.strip_suffix('"')?;
            fields.insert(k, v.to_string());
        }
        Some(Self {
            mchid: fields.remove("mchid")?,
            nonce_str: fields.remove("nonce_str")?,
            timestamp: fields.remove("timestamp")?,
            serial_no: fields.remove("serial_no")?,
            signature: fields.remove("signature")?,
        })
    }
}

/// Header lookup over the header maps of actix-web, reqwest and plain maps (case-insensitive).
pub trait HeaderSource {
    fn header(&self, name: &str) -> Option<&str>;
}

impl HeaderSource for actix_web::http::header::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

impl HeaderSource for reqwest::header::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

impl HeaderSource for std::collections::HashMap<String, String> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl HeaderSource for [(&str, &str)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Why a signed response or notification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("malformed header {0}")]
    BadHeader(&'static str),
    #[error("unsupported signature type")]
    UnsupportedSignatureType,
    #[error("unknown platform serial")]
    UnknownSerial,
    #[error("timestamp outside the {FRESHNESS_SECS} s window")]
    StaleTimestamp,
    #[error("signature test probe")]
    SignTestProbe,
    #[error("signature does not verify")]
    BadSignature,
}

/// The signature headers of one message, as received.
#[derive(Debug, Clone)]
pub struct SignedHeaders<'a> {
    pub timestamp: &'a str,
    pub nonce: &'a str,
    pub signature: &'a str,
    pub serial: &'a str,
}

impl<'a> SignedHeaders<'a> {
    pub fn read<H: HeaderSource + ?Sized>(headers: &'a H) -> Result<Self, VerifyError> {
        let get = |name: &'static str| {
            headers
                .header(name)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .ok_or(VerifyError::MissingHeader(name))
        };
        if let Some(kind) = headers.header(HEADER_SIGNATURE_TYPE)
            && kind.trim() != SCHEMA
        {
            return Err(VerifyError::UnsupportedSignatureType);
        }
        Ok(Self {
            timestamp: get(HEADER_TIMESTAMP)?,
            nonce: get(HEADER_NONCE)?,
            signature: get(HEADER_SIGNATURE)?,
            serial: get(HEADER_SERIAL)?,
        })
    }
}

/// Verifies platform signatures (responses and notifications) against the trusted keys and
/// the freshness window.
#[derive(Clone, Debug)]
pub struct PlatformVerifier {
    keys: Arc<PlatformKeys>,
    clock: Arc<dyn Clock>,
}

impl PlatformVerifier {
    pub fn new(keys: PlatformKeys) -> Self {
        Self::with_clock(keys, Arc::new(SystemClock))
    }

    pub fn with_clock(keys: PlatformKeys, clock: Arc<dyn Clock>) -> Self {
        Self {
            keys: Arc::new(keys),
            clock,
        }
    }

    pub fn keys(&self) -> &PlatformKeys {
        &self.keys
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The same keys with the clock stopped at `unix`: verifies a stored notification as it
    /// would have been verified when it arrived (a replay).
    pub fn as_of(&self, unix: i64) -> PlatformVerifier {
        PlatformVerifier {
            keys: self.keys.clone(),
            clock: Arc::new(FixedClock(unix)),
        }
    }

    /// Checks the signature headers over the raw body bytes (never re-serialized JSON).
    pub fn verify(&self, signed: &SignedHeaders<'_>, body: &[u8]) -> Result<(), VerifyError> {
        if signed.signature.starts_with(SIGNTEST_PREFIX) {
            return Err(VerifyError::SignTestProbe);
        }
        let timestamp: i64 = signed
            .timestamp
            .parse()
            .map_err(|_| VerifyError::BadHeader(HEADER_TIMESTAMP))?;
        if !is_fresh(self.clock.now_unix(), timestamp) {
            return Err(VerifyError::StaleTimestamp);
        }
        let key = self
            .keys
            .get(signed.serial)
            .ok_or(VerifyError::UnknownSerial)?;
        let message = response_message(signed.timestamp, signed.nonce, body);
        if key.verify_base64(&message, signed.signature) {
            Ok(())
        } else {
            Err(VerifyError::BadSignature)
        }
    }

    /// Reads the headers and verifies in one step.
    pub fn verify_headers<H: HeaderSource + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
    ) -> Result<(), VerifyError> {
        let signed = SignedHeaders::read(headers)?;
        self.verify(&signed, body)
    }
}

/// Signs responses and notifications as the platform does (the sandbox's side).
#[derive(Clone, Debug)]
pub struct PlatformSigner {
    pub serial: String,
    signer: RsaSigner,
}

impl PlatformSigner {
    pub fn new(serial: impl Into<String>, signer: RsaSigner) -> Self {
        Self {
            serial: serial.into(),
            signer,
        }
    }

    /// The `Wechatpay-*` headers for `body` at `timestamp`.
    pub fn headers(
        &self,
        timestamp: i64,
        body: &[u8],
    ) -> Result<Vec<(&'static str, String)>, SignError> {
        let nonce = new_nonce();
        let ts = timestamp.to_string();
        let signature = self
            .signer
            .sign_base64(&response_message(&ts, &nonce, body))?;
        Ok(vec![
            (HEADER_TIMESTAMP, ts),
            (HEADER_NONCE, nonce),
            (HEADER_SIGNATURE, signature),
            (HEADER_SERIAL, self.serial.clone()),
            (HEADER_SIGNATURE_TYPE, SCHEMA.to_string()),
        ])
    }
}
