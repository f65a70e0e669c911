//! The app layer's error: a stable [`ErrorCode`] (which fixes the HTTP status), a message the
//! client may read, and the cause for the log only.

use crate::storage::StorageError;

/// Every error code the API answers with, each with the one HTTP status it is sent with.
///
/// The code is the contract clients branch on; the status follows from it so one code can
/// never mean two things. Where routes used to disagree, one status was chosen:
/// - `WECHAT_UNAVAILABLE` is 503 (login used 503, payments 502): both mean "WeChat did not
///   take the request; retry", which is what 503 with a retry says.
/// - `VALIDATION_FAILED` is 422 (the points engine's invalid input, e.g. a bad earning rule,
///   used 400): a well-formed request whose values are refused is 422 everywhere else.
/// - A bad page `limit` is `INVALID_QUERY` 400 on every listing (the merchant, payment-code,
///   user and audit listings answered `VALIDATION_FAILED` 422).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    // Generic
    Internal,
    ValidationFailed,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    UnsupportedMediaType,
    PayloadTooLarge,
    RequestTimeout,
    MalformedJson,
    BadBody,
    InvalidQuery,
    InvalidPath,
    InvalidCursor,
    DatabaseUnavailable,
    NotReady,
    AdminNotBuilt,
    RateLimited,
    ServiceUnavailable,
    // Sessions and request signing
    TokenExpired,
    TokenInvalid,
    SessionRevoked,
    SignatureExpired,
    SignatureInvalid,
    ReplayedRequest,
    NonceStoreUnavailable,
    // Sign-in
    WechatCodeInvalid,
    WechatCodeUsed,
    WechatRateLimited,
    WechatHighRisk,
    WechatBusy,
    WechatUnavailable,
    UserDisabled,
    UserNotFound,
    InvalidCredentials,
    AccountLocked,
    RefreshTokenInvalid,
    RefreshTokenReused,
    RefreshTokenExpired,
    // Merchants
    MerchantNotFound,
    MerchantNotApproved,
    InvalidMerchantStatus,
    TooManyMerchants,
    PaymentCodeNotFound,
    // Merchant staff
    InviteInvalid,
    InviteNotFound,
    TooManyInvites,
    StaffNotFound,
    AlreadyStaff,
    // Payments and refunds
    AmountInvalid,
    PaymentCodeDisabled,
    MerchantNotActive,
    IdempotencyKeyRequired,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
    OrderNotFound,
    OrderNotPayable,
    /// The order kept changing while the request was served (a race lost several times).
    OrderChanged,
    OrderAlreadyPaid,
    OrderNotRefundable,
    RefundExceedsPaid,
    RiskBlocked,
    RiskVerificationRequired,
    AwardPending,
    PaymentsUnavailable,
    // Points
    PointsInsufficient,
    IdempotencyConflict,
    PointsBusy,
}

impl ErrorCode {
    /// The code as clients see it in `{"code": ...}`.
    pub fn as_str(self) -> &'static str {
        use ErrorCode as E;
        match self {
            E::Internal => "INTERNAL",
            E::ValidationFailed => "VALIDATION_FAILED",
            E::Unauthorized => "UNAUTHORIZED",
            E::Forbidden => "FORBIDDEN",
            E::NotFound => "NOT_FOUND",
            E::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            E::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            E::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            E::RequestTimeout => "REQUEST_TIMEOUT",
            E::MalformedJson => "MALFORMED_JSON",
            E::BadBody => "BAD_BODY",
            E::InvalidQuery => "INVALID_QUERY",
            E::InvalidPath => "INVALID_PATH",
            E::InvalidCursor => "INVALID_CURSOR",
            E::DatabaseUnavailable => "DATABASE_UNAVAILABLE",
            E::NotReady => "NOT_READY",
            E::AdminNotBuilt => "ADMIN_NOT_BUILT",
            E::RateLimited => "RATE_LIMITED",
            E::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            E::TokenExpired => "TOKEN_EXPIRED",
            E::TokenInvalid => "TOKEN_INVALID",
            E::SessionRevoked => "SESSION_REVOKED",
            E::SignatureExpired => "SIGNATURE_EXPIRED",
            E::SignatureInvalid => "SIGNATURE_INVALID",
            E::ReplayedRequest => "REPLAYED_REQUEST",
            E::NonceStoreUnavailable => "NONCE_STORE_UNAVAILABLE",
            E::WechatCodeInvalid => "WECHAT_CODE_INVALID",
            E::WechatCodeUsed => "WECHAT_CODE_USED",
            E::WechatRateLimited => "WECHAT_RATE_LIMITED",
            E::WechatHighRisk => "WECHAT_HIGH_RISK",
            E::WechatBusy => "WECHAT_BUSY",
            E::WechatUnavailable => "WECHAT_UNAVAILABLE",
            E::UserDisabled => "USER_DISABLED",
            E::UserNotFound => "USER_NOT_FOUND",
            E::InvalidCredentials => "INVALID_CREDENTIALS",
            E::AccountLocked => "ACCOUNT_LOCKED",
            E::RefreshTokenInvalid => "REFRESH_TOKEN_INVALID",
            E::RefreshTokenReused => "REFRESH_TOKEN_REUSED",
            E::RefreshTokenExpired => "REFRESH_TOKEN_EXPIRED",
            E::MerchantNotFound => "MERCHANT_NOT_FOUND",
            E::MerchantNotApproved => "MERCHANT_NOT_APPROVED",
            E::InvalidMerchantStatus => "INVALID_MERCHANT_STATUS",
            E::TooManyMerchants => "TOO_MANY_MERCHANTS",
            E::PaymentCodeNotFound => "PAYMENT_CODE_NOT_FOUND",
            E::InviteInvalid => "INVITE_INVALID",
            E::InviteNotFound => "INVITE_NOT_FOUND",
            E::TooManyInvites => "TOO_MANY_INVITES",
            E::StaffNotFound => "STAFF_NOT_FOUND",
            E::AlreadyStaff => "ALREADY_STAFF",
            E::AmountInvalid => "AMOUNT_INVALID",
            E::PaymentCodeDisabled => "PAYMENT_CODE_DISABLED",
            E::MerchantNotActive => "MERCHANT_NOT_ACTIVE",
            E::IdempotencyKeyRequired => "IDEMPOTENCY_KEY_REQUIRED",
            E::IdempotencyKeyInvalid => "IDEMPOTENCY_KEY_INVALID",
            E::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            E::OrderNotFound => "ORDER_NOT_FOUND",
            E::OrderNotPayable => "ORDER_NOT_PAYABLE",
            E::OrderChanged => "ORDER_CHANGED",
            E::OrderAlreadyPaid => "ORDER_ALREADY_PAID",
            E::OrderNotRefundable => "ORDER_NOT_REFUNDABLE",
            E::RefundExceedsPaid => "REFUND_EXCEEDS_PAID",
            E::RiskBlocked => "RISK_BLOCKED",
            E::RiskVerificationRequired => "RISK_VERIFICATION_REQUIRED",
            E::AwardPending => "AWARD_PENDING",
            E::PaymentsUnavailable => "PAYMENTS_UNAVAILABLE",
            E::PointsInsufficient => "POINTS_INSUFFICIENT",
            E::IdempotencyConflict => "IDEMPOTENCY_CONFLICT",
            E::PointsBusy => "POINTS_BUSY",
        }
    }

    /// The HTTP status this code is always sent with.
    pub fn status(self) -> u16 {
        use ErrorCode as E;
        match self {
            E::MalformedJson
            | E::BadBody
            | E::InvalidQuery
            | E::InvalidPath
            | E::InvalidCursor
            | E::WechatCodeInvalid
            | E::WechatCodeUsed
            | E::IdempotencyKeyRequired
            | E::IdempotencyKeyInvalid => 400,
            E::Unauthorized
            | E::TokenExpired
            | E::TokenInvalid
            | E::SessionRevoked
            | E::SignatureExpired
            | E::SignatureInvalid
            | E::InvalidCredentials
            | E::RefreshTokenInvalid
            | E::RefreshTokenReused
            | E::RefreshTokenExpired => 401,
            E::Forbidden
            | E::WechatHighRisk
            | E::UserDisabled
            | E::MerchantNotApproved
            | E::RiskBlocked
            | E::RiskVerificationRequired => 403,
            E::NotFound
            | E::UserNotFound
            | E::MerchantNotFound
            | E::PaymentCodeNotFound
            | E::InviteInvalid
            | E::InviteNotFound
            | E::StaffNotFound
            | E::OrderNotFound => 404,
            E::MethodNotAllowed => 405,
            E::ReplayedRequest
            | E::InvalidMerchantStatus
            | E::TooManyMerchants
            | E::TooManyInvites
            | E::AlreadyStaff
            | E::PaymentCodeDisabled
            | E::MerchantNotActive
            | E::OrderNotPayable
            | E::OrderChanged
            | E::OrderAlreadyPaid
            | E::OrderNotRefundable
            | E::PointsInsufficient
            | E::IdempotencyConflict => 409,
            E::RequestTimeout => 408,
            E::PayloadTooLarge => 413,
            E::UnsupportedMediaType => 415,
            E::ValidationFailed
            | E::AmountInvalid
            | E::IdempotencyKeyReused
            | E::RefundExceedsPaid => 422,
            E::RateLimited | E::WechatRateLimited | E::AccountLocked => 429,
            E::Internal => 500,
            E::DatabaseUnavailable
            | E::NotReady
            | E::AdminNotBuilt
            | E::ServiceUnavailable
            | E::NonceStoreUnavailable
            | E::WechatBusy
            | E::WechatUnavailable
            | E::AwardPending
            | E::PaymentsUnavailable
            | E::PointsBusy => 503,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal or failure of a use case: what the client is told, and why (for the log).
#[derive(Debug)]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    pub cause: Option<anyhow::Error>,
    /// Seconds after which a retry makes sense (429, 503).
    pub retry_after: Option<u64>,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError {
            code,
            message: message.into(),
            cause: None,
            retry_after: None,
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationFailed, message)
    }

    /// An internal failure: the client gets a generic message, the log the cause.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        AppError {
            code: ErrorCode::Internal,
            message: "internal error; quote the trace id when reporting it".into(),
            cause: Some(cause.into()),
            retry_after: None,
        }
    }

    pub fn with_cause(mut self, cause: impl Into<anyhow::Error>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_ref()
            .map(|c| c.as_ref() as &(dyn std::error::Error + 'static))
    }
}

impl From<StorageError> for AppError {
    /// A busy pool is "retry" (503); anything else is an internal failure.
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Pool(_) => AppError::new(
                ErrorCode::DatabaseUnavailable,
                "the database is busy; retry",
            )
            .with_cause(e),
            other => AppError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_http_error_statuses() {
        for code in [
            ErrorCode::Internal,
            ErrorCode::WechatUnavailable,
            ErrorCode::ValidationFailed,
            ErrorCode::InvalidQuery,
        ] {
            assert!((400..600).contains(&code.status()), "{code}");
        }
        assert_eq!(ErrorCode::WechatUnavailable.status(), 503);
        assert_eq!(ErrorCode::ValidationFailed.status(), 422);
        assert_eq!(ErrorCode::InvalidQuery.as_str(), "INVALID_QUERY");
    }
}
