//! The login seam: `code2session` turns a mini-program login code into an openid.
//!
//! Login calls the [`Code2Session`] held in `SecurityState`; the shared
//! [`WechatClient`](crate::wechat::WechatClient) implements it (against WeChat, or the sandbox
//! in the embedded default), and its errors map to the [`LoginError`]s the API answers with.

use futures_util::future::BoxFuture;
use secrecy::SecretString;

use crate::wechat::{MpErrorCode, WechatClient, WechatError};

/// What code2session yields. The session key is a secret: it never reaches a log line.
pub struct WechatSession {
    pub openid: String,
    pub unionid: Option<String>,
    pub session_key: SecretString,
}

impl std::fmt::Debug for WechatSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatSession")
            .field("openid", &self.openid)
            .field("unionid", &self.unionid)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LoginError {
    #[error("invalid login code")]
    CodeInvalid,
    #[error("login code already used")]
    CodeUsed,
    #[error("WeChat rate limited the login")]
    RateLimited,
    #[error("WeChat flags this user as high risk")]
    HighRisk,
    #[error("WeChat is busy")]
    Busy,
    #[error("WeChat login failed: {0}")]
    Upstream(String),
}

impl From<WechatError> for LoginError {
    fn from(e: WechatError) -> Self {
        match e {
            WechatError::MiniProgram { code, message } => match code {
                MpErrorCode::InvalidCode => LoginError::CodeInvalid,
                MpErrorCode::CodeUsed => LoginError::CodeUsed,
                MpErrorCode::RateLimited => LoginError::RateLimited,
                MpErrorCode::HighRiskUser => LoginError::HighRisk,
                MpErrorCode::Busy => LoginError::Busy,
                other => LoginError::Upstream(format!("errcode {}: {message}", other.code())),
            },
            WechatError::InvalidRequest(_) => LoginError::CodeInvalid,
            other @ (WechatError::Pay { .. }
            | WechatError::Verify(_)
            | WechatError::Timeout
            | WechatError::Transport(_)
            | WechatError::Protocol(_)
            | WechatError::Sign(_)) => LoginError::Upstream(other.to_string()),
        }
    }
}

pub trait Code2Session: Send + Sync {
    fn code2session<'a>(
        &'a self,
        code: &'a str,
    ) -> BoxFuture<'a, Result<WechatSession, LoginError>>;
}

impl Code2Session for WechatClient {
    fn code2session<'a>(
        &'a self,
        code: &'a str,
    ) -> BoxFuture<'a, Result<WechatSession, LoginError>> {
        Box::pin(async move {
            let session = WechatClient::code2session(self, code).await?;
            Ok(WechatSession {
                openid: session.openid,
                unionid: session.unionid.filter(|u| !u.is_empty()),
                session_key: session.session_key,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp(code: i64) -> LoginError {
        LoginError::from(WechatError::MiniProgram {
            code: MpErrorCode::from_code(code),
            message: "m".into(),
        })
    }

    #[test]
    fn wechat_errors_map_to_login_errors() {
        assert_eq!(mp(40029), LoginError::CodeInvalid);
        assert_eq!(mp(40163), LoginError::CodeUsed);
        assert_eq!(mp(45011), LoginError::RateLimited);
        assert_eq!(mp(40226), LoginError::HighRisk);
        assert_eq!(mp(-1), LoginError::Busy);
        assert!(matches!(mp(40013), LoginError::Upstream(_)));
        assert!(matches!(
            LoginError::from(WechatError::Timeout),
            LoginError::Upstream(_)
        ));
        assert!(matches!(
            LoginError::from(WechatError::Transport("x".into())),
            LoginError::Upstream(_)
        ));
    }

    #[test]
    fn the_session_key_never_prints() {
        let s = WechatSession {
            openid: "o1".into(),
            unionid: None,
            session_key: "sk-secret".to_string().into(),
        };
        assert!(!format!("{s:?}").contains("sk-secret"));
    }
}
