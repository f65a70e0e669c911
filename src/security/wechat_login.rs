//! The login seam: `code2session` turns a mini-program login code into an openid.
//!
//! [`Code2Session`] is what login calls; [`HttpCode2Session`] is a small client for WeChat's
//! `GET /sns/jscode2session` (or the sandbox, which speaks the same path). The shared WeChat
//! client can replace it by implementing the trait and being put into `SecurityState`.

use std::time::Duration;

use futures_util::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::Settings;

/// WeChat's production API host, used when `WECHAT_API_BASE_URL` is not set.
pub const WECHAT_API_BASE_URL: &str = "https://api.weixin.qq.com";

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

impl LoginError {
    /// Maps WeChat's `errcode`.
    pub fn from_errcode(code: i64, msg: &str) -> LoginError {
        match code {
            40029 => LoginError::CodeInvalid,
            40163 => LoginError::CodeUsed,
            45011 => LoginError::RateLimited,
            40226 => LoginError::HighRisk,
            -1 => LoginError::Busy,
            other => LoginError::Upstream(format!("errcode {other}: {msg}")),
        }
    }
}

pub trait Code2Session: Send + Sync {
    fn code2session<'a>(
        &'a self,
        code: &'a str,
    ) -> BoxFuture<'a, Result<WechatSession, LoginError>>;
}

/// `GET {base}/sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code`.
pub struct HttpCode2Session {
    client: reqwest::Client,
    base_url: String,
    appid: String,
    secret: SecretString,
}

impl HttpCode2Session {
    pub fn from_settings(settings: &Settings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(HttpCode2Session {
            client,
            base_url: settings
                .wechat
                .api_base_url
                .clone()
                .unwrap_or_else(|| WECHAT_API_BASE_URL.to_string())
                .trim_end_matches('/')
                .to_string(),
            appid: settings.wechat.appid.clone().unwrap_or_default(),
            secret: settings
                .wechat
                .app_secret
                .clone()
                .unwrap_or_else(|| SecretString::from(String::new())),
        })
    }

    async fn call(&self, code: &str) -> Result<WechatSession, LoginError> {
        #[derive(Deserialize)]
        struct Answer {
            openid: Option<String>,
            session_key: Option<SecretString>,
            unionid: Option<String>,
            errcode: Option<i64>,
            errmsg: Option<String>,
        }
        let url = format!("{}/sns/jscode2session", self.base_url);
        let url = reqwest::Url::parse_with_params(
            &url,
            &[
                ("appid", self.appid.as_str()),
                ("secret", self.secret.expose_secret()),
                ("js_code", code),
                ("grant_type", "authorization_code"),
            ],
        )
        .map_err(|_| LoginError::Upstream("bad WECHAT_API_BASE_URL".into()))?;
        let res = self
            .client
            .get(url)
            .send()
            .await
            // The error text would carry the URL with the secret: keep only its kind.
            .map_err(|e| LoginError::Upstream(describe(&e)))?;
        if res.status().is_server_error() {
            return Err(LoginError::Busy);
        }
        let answer: Answer = res
            .json()
            .await
            .map_err(|e| LoginError::Upstream(describe(&e)))?;
        match (answer.errcode, answer.openid, answer.session_key) {
            (Some(code), _, _) if code != 0 => Err(LoginError::from_errcode(
                code,
                answer.errmsg.as_deref().unwrap_or(""),
            )),
            (_, Some(openid), Some(session_key)) if !openid.is_empty() => Ok(WechatSession {
                openid,
                unionid: answer.unionid.filter(|u| !u.is_empty()),
                session_key,
            }),
            _ => Err(LoginError::Upstream("answer without openid".into())),
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else if e.is_decode() {
        "undecodable answer".into()
    } else {
        "request failed".into()
    }
}

impl Code2Session for HttpCode2Session {
    fn code2session<'a>(
        &'a self,
        code: &'a str,
    ) -> BoxFuture<'a, Result<WechatSession, LoginError>> {
        Box::pin(self.call(code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errcodes_map_to_kinds() {
        assert_eq!(LoginError::from_errcode(40029, ""), LoginError::CodeInvalid);
        assert_eq!(LoginError::from_errcode(40163, ""), LoginError::CodeUsed);
        assert_eq!(LoginError::from_errcode(45011, ""), LoginError::RateLimited);
        assert_eq!(LoginError::from_errcode(40226, ""), LoginError::HighRisk);
        assert_eq!(LoginError::from_errcode(-1, ""), LoginError::Busy);
        assert!(matches!(
            LoginError::from_errcode(1, "x"),
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
