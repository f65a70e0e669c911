//! Every answer WeChat can give that is not success, as a typed error.

use super::keys::SignError;
use super::sign::VerifyError;

/// The `code` of a WeChat Pay v3 error answer (`{"code": "...", "message": "..."}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayErrorCode {
    OrderPaid,
    OrderClosed,
    NotEnough,
    SignError,
    ParamError,
    InvalidRequest,
    OrderNotExist,
    ResourceNotExists,
    OutTradeNoUsed,
    SystemError,
    FrequencyLimited,
    NoAuth,
    AppidMchidNotMatch,
    MchNotExists,
    AccountError,
    BankError,
    RuleLimit,
    UserAccountAbnormal,
    InvalidTransactionId,
    /// A code this client does not know yet, kept verbatim.
    Other(String),
}

impl PayErrorCode {
    pub fn parse(code: &str) -> Self {
        match code {
            "ORDERPAID" => Self::OrderPaid,
            "ORDER_CLOSED" | "ORDERCLOSED" => Self::OrderClosed,
            "NOT_ENOUGH" => Self::NotEnough,
            "SIGN_ERROR" => Self::SignError,
            "PARAM_ERROR" => Self::ParamError,
            "INVALID_REQUEST" => Self::InvalidRequest,
            "ORDERNOTEXIST" | "ORDER_NOT_EXIST" => Self::OrderNotExist,
            "RESOURCE_NOT_EXISTS" => Self::ResourceNotExists,
            "OUT_TRADE_NO_USED" => Self::OutTradeNoUsed,
            "SYSTEM_ERROR" | "SYSTEMERROR" => Self::SystemError,
            "FREQUENCY_LIMITED" => Self::FrequencyLimited,
            "NO_AUTH" => Self::NoAuth,
            "APPID_MCHID_NOT_MATCH" => Self::AppidMchidNotMatch,
            "MCH_NOT_EXISTS" => Self::MchNotExists,
            "ACCOUNT_ERROR" => Self::AccountError,
            "BANK_ERROR" => Self::BankError,
            "RULE_LIMIT" => Self::RuleLimit,
            "USER_ACCOUNT_ABNORMAL" => Self::UserAccountAbnormal,
            "INVALID_TRANSACTIONID" => Self::InvalidTransactionId,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::OrderPaid => "ORDERPAID",
            Self::OrderClosed => "ORDER_CLOSED",
            Self::NotEnough => "NOT_ENOUGH",
            Self::SignError => "SIGN_ERROR",
            Self::ParamError => "PARAM_ERROR",
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::OrderNotExist => "ORDER_NOT_EXIST",
            Self::ResourceNotExists => "RESOURCE_NOT_EXISTS",
            Self::OutTradeNoUsed => "OUT_TRADE_NO_USED",
            Self::SystemError => "SYSTEM_ERROR",
            Self::FrequencyLimited => "FREQUENCY_LIMITED",
            Self::NoAuth => "NO_AUTH",
            Self::AppidMchidNotMatch => "APPID_MCHID_NOT_MATCH",
            Self::MchNotExists => "MCH_NOT_EXISTS",
            Self::AccountError => "ACCOUNT_ERROR",
            Self::BankError => "BANK_ERROR",
            Self::RuleLimit => "RULE_LIMIT",
            Self::UserAccountAbnormal => "USER_ACCOUNT_ABNORMAL",
            Self::InvalidTransactionId => "INVALID_TRANSACTIONID",
            Self::Other(code) => code,
        }
    }

    /// WeChat's own advice: these clear up when the same call is made again later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::SystemError | Self::FrequencyLimited | Self::BankError
        )
    }
}

/// The `errcode` of a mini-program API answer (`{"errcode": …, "errmsg": "…"}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MpErrorCode {
    /// -1: system busy.
    Busy,
    /// 40001: invalid credential (access token wrong or replaced).
    InvalidCredential,
    /// 40013: invalid appid.
    InvalidAppid,
    /// 40029: invalid `js_code`.
    InvalidCode,
    /// 40125: invalid app secret.
    InvalidAppSecret,
    /// 40163: `js_code` already used.
    CodeUsed,
    /// 40226: high-risk user, login refused.
    HighRiskUser,
    /// 42001: access token expired.
    AccessTokenExpired,
    /// 43101: the user has not accepted this subscribe template.
    NotSubscribed,
    /// 45011: rate limited.
    RateLimited,
    /// 47003: template data do not match.
    BadTemplateData,
    Other(i64),
}

impl MpErrorCode {
    pub fn from_code(code: i64) -> Self {
        match code {
            -1 => Self::Busy,
            40001 => Self::InvalidCredential,
            40013 => Self::InvalidAppid,
            40029 => Self::InvalidCode,
            40125 => Self::InvalidAppSecret,
            40163 => Self::CodeUsed,
            40226 => Self::HighRiskUser,
            42001 => Self::AccessTokenExpired,
            43101 => Self::NotSubscribed,
            45011 => Self::RateLimited,
            47003 => Self::BadTemplateData,
            other => Self::Other(other),
        }
    }

    pub fn code(self) -> i64 {
        match self {
            Self::Busy => -1,
            Self::InvalidCredential => 40001,
            Self::InvalidAppid => 40013,
            Self::InvalidCode => 40029,
            Self::InvalidAppSecret => 40125,
            Self::CodeUsed => 40163,
            Self::HighRiskUser => 40226,
            Self::AccessTokenExpired => 42001,
            Self::NotSubscribed => 43101,
            Self::RateLimited => 45011,
            Self::BadTemplateData => 47003,
            Self::Other(code) => code,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WechatError {
    /// WeChat Pay answered 4xx/5xx with a code.
    #[error("wechat pay refused ({status} {}): {message}", code.as_str())]
    Pay {
        status: u16,
        code: PayErrorCode,
        message: String,
    },
    /// A mini-program API answered a non-zero `errcode`.
    #[error("wechat api error {}: {message}", code.code())]
    MiniProgram { code: MpErrorCode, message: String },
    /// The answer's signature did not verify: it did not come from WeChat.
    #[error("wechat answer refused: {0}")]
    Verify(#[from] VerifyError),
    #[error("wechat call timed out")]
    Timeout,
    #[error("wechat unreachable: {0}")]
    Transport(String),
    /// An answer we cannot read (wrong JSON shape, unexpected status).
    #[error("unexpected wechat answer: {0}")]
    Protocol(String),
    /// The request was refused before sending (e.g. a bad amount).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Our own signature (request or pay parameters) could not be made.
    #[error("cannot sign: {0}")]
    Sign(#[from] SignError),
}

impl WechatError {
    /// Worth trying again (for a call that is safe to repeat).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Pay { status, code, .. } => *status >= 500 || code.is_transient(),
            Self::MiniProgram { code, .. } => matches!(code, MpErrorCode::Busy),
            Self::Timeout | Self::Transport(_) => true,
            Self::Verify(_) | Self::Protocol(_) | Self::InvalidRequest(_) | Self::Sign(_) => false,
        }
    }

    pub fn pay_code(&self) -> Option<&PayErrorCode> {
        match self {
            Self::Pay { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn mp_code(&self) -> Option<MpErrorCode> {
        match self {
            Self::MiniProgram { code, .. } => Some(*code),
            _ => None,
        }
    }
}
