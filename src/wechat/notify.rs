//! Notifications from WeChat Pay: verify the signature over the raw body, decrypt the
//! resource, check it is ours, and hand back a typed event. Every refusal is logged once at
//! warn in the `security` category with the serial and nonce only.

use super::aead::{AeadError, ApiV3Key};
use super::metrics::WechatMetrics;
use super::sign::{HeaderSource, PlatformVerifier, SignedHeaders, VerifyError};
use super::types::{NotificationBody, RefundResource, Transaction};

pub const EVENT_TRANSACTION_SUCCESS: &str = "TRANSACTION.SUCCESS";
pub const EVENT_REFUND_SUCCESS: &str = "REFUND.SUCCESS";
pub const EVENT_REFUND_ABNORMAL: &str = "REFUND.ABNORMAL";
pub const EVENT_REFUND_CLOSED: &str = "REFUND.CLOSED";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("malformed header {0}")]
    BadHeader(&'static str),
    #[error("unsupported signature type")]
    UnsupportedSignatureType,
    #[error("unknown platform serial")]
    UnknownSerial,
    #[error("stale timestamp")]
    StaleTimestamp,
    #[error("bad signature")]
    BadSignature,
    #[error("signature test probe")]
    SignTestProbe,
    #[error("body is not a notification")]
    NotJson,
    #[error("unsupported resource algorithm or type")]
    UnsupportedResource,
    #[error("resource does not decrypt: {0}")]
    Decrypt(AeadError),
    #[error("decrypted resource is not the expected JSON")]
    BadResource,
    #[error("notification for another merchant")]
    WrongMerchant,
    #[error("notification for another app")]
    WrongApp,
}

impl From<VerifyError> for NotifyError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::MissingHeader(h) => Self::MissingHeader(h),
            VerifyError::BadHeader(h) => Self::BadHeader(h),
            VerifyError::UnsupportedSignatureType => Self::UnsupportedSignatureType,
            VerifyError::UnknownSerial => Self::UnknownSerial,
            VerifyError::StaleTimestamp => Self::StaleTimestamp,
            VerifyError::SignTestProbe => Self::SignTestProbe,
            VerifyError::BadSignature => Self::BadSignature,
        }
    }
}

/// Every [`NotifyError::reason`], for series that exist from the first scrape.
pub const REFUSAL_REASONS: [&str; 13] = [
    "missing_header",
    "bad_header",
    "unsupported_signature_type",
    "unknown_serial",
    "stale_timestamp",
    "bad_signature",
    "signtest_probe",
    "not_json",
    "unsupported_resource",
    "decrypt",
    "bad_resource",
    "wrong_merchant",
    "wrong_app",
];

impl NotifyError {
    /// A short stable name for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_header",
            Self::BadHeader(_) => "bad_header",
            Self::UnsupportedSignatureType => "unsupported_signature_type",
            Self::UnknownSerial => "unknown_serial",
            Self::StaleTimestamp => "stale_timestamp",
            Self::BadSignature => "bad_signature",
            Self::SignTestProbe => "signtest_probe",
            Self::NotJson => "not_json",
            Self::UnsupportedResource => "unsupported_resource",
            Self::Decrypt(_) => "decrypt",
            Self::BadResource => "bad_resource",
            Self::WrongMerchant => "wrong_merchant",
            Self::WrongApp => "wrong_app",
        }
    }

    /// The body to answer WeChat with: `{"code":"FAIL","message":…}` (no internals).
    pub fn answer_body(&self) -> serde_json::Value {
        serde_json::json!({ "code": "FAIL", "message": self.to_string() })
    }

    /// The status to answer WeChat with: 401 when the message is not authentic, 400 when it
    /// is authentic but unusable (WeChat will retry either way).
    pub fn http_status(&self) -> u16 {
        match self {
            Self::MissingHeader(_)
            | Self::BadHeader(_)
            | Self::UnsupportedSignatureType
            | Self::UnknownSerial
            | Self::StaleTimestamp
            | Self::BadSignature
            | Self::SignTestProbe => 401,
            Self::NotJson
            | Self::UnsupportedResource
            | Self::Decrypt(_)
            | Self::BadResource
            | Self::WrongMerchant
            | Self::WrongApp => 400,
        }
    }
}

/// The decrypted content of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationResource {
    Transaction(Transaction),
    Refund(RefundResource),
}

/// An authentic notification meant for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedNotification {
    /// WeChat's notification id: the same across redeliveries, so a dedupe key.
    pub id: String,
    pub event_type: String,
    pub create_time: String,
    pub resource: NotificationResource,
}

#[derive(Clone, Debug)]
pub struct NotificationVerifier {
    platform: PlatformVerifier,
    apiv3_key: ApiV3Key,
    mchid: String,
    appid: String,
    metrics: Option<WechatMetrics>,
}

impl NotificationVerifier {
    pub fn new(
        platform: PlatformVerifier,
        apiv3_key: ApiV3Key,
        mchid: impl Into<String>,
        appid: impl Into<String>,
    ) -> Self {
        Self {
            platform,
            apiv3_key,
            mchid: mchid.into(),
            appid: appid.into(),
            metrics: None,
        }
    }

    /// The same checks as of `unix` (see [`PlatformVerifier::as_of`]).
    pub fn as_of(&self, unix: i64) -> NotificationVerifier {
        NotificationVerifier {
            platform: self.platform.as_of(unix),
            ..self.clone()
        }
    }

    /// Counts refusals in `wechat_notifications_refused_total`.
    pub fn with_metrics(mut self, metrics: WechatMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Verifies, decrypts and checks a notification; logs a refusal once.
    pub fn verify_and_decrypt<H: HeaderSource + ?Sized>(
        &self,
        headers: &H,
        raw_body: &[u8],
    ) -> Result<VerifiedNotification, NotifyError> {
        let result = self.check(headers, raw_body);
        if let Err(e) = &result {
            if let Some(m) = &self.metrics {
                m.notifications_refused_total
                    .with_label_values(&[e.reason()])
                    .inc();
            }
            tracing::warn!(
                category = "security",
                serial = headers.header(super::sign::HEADER_SERIAL).unwrap_or(""),
                nonce = headers.header(super::sign::HEADER_NONCE).unwrap_or(""),
                error = %e,
                "wechat notification refused"
            );
        }
        result
    }

    /// Refuses a resource for another merchant or another app.
    pub fn check_merchant(&self, mchid: &str, appid: Option<&str>) -> Result<(), NotifyError> {
        if mchid != self.mchid {
            return Err(NotifyError::WrongMerchant);
        }
        match appid {
            Some(appid) if appid != self.appid => Err(NotifyError::WrongApp),
            _ => Ok(()),
        }
    }

    fn check<H: HeaderSource + ?Sized>(
        &self,
        headers: &H,
        raw_body: &[u8],
    ) -> Result<VerifiedNotification, NotifyError> {
        let signed = SignedHeaders::read(headers)?;
        self.platform.verify(&signed, raw_body)?;
        let body: NotificationBody =
            serde_json::from_slice(raw_body).map_err(|_| NotifyError::NotJson)?;
        if body.resource_type != "encrypt-resource" || body.resource.algorithm != "AEAD_AES_256_GCM"
        {
            return Err(NotifyError::UnsupportedResource);
        }
        let r = &body.resource;
        let plaintext = self
            .apiv3_key
            .decrypt(&r.nonce, &r.associated_data, &r.ciphertext)
            .map_err(NotifyError::Decrypt)?;
        let resource = if body.event_type.starts_with("REFUND.") {
            let refund: RefundResource =
                serde_json::from_slice(&plaintext).map_err(|_| NotifyError::BadResource)?;
            self.check_merchant(&refund.mchid, None)?;
            NotificationResource::Refund(refund)
        } else if body.event_type.starts_with("TRANSACTION.") {
            let tx: Transaction =
                serde_json::from_slice(&plaintext).map_err(|_| NotifyError::BadResource)?;
            self.check_merchant(&tx.mchid, Some(&tx.appid))?;
            NotificationResource::Transaction(tx)
        } else {
            return Err(NotifyError::UnsupportedResource);
        };
        Ok(VerifiedNotification {
            id: body.id,
            event_type: body.event_type,
            create_time: body.create_time,
            resource,
        })
    }
}
