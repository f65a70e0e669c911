//! Mini-program APIs: login (`jscode2session`), subscribe messages and mini-program codes
//! (`wxacode.getUnlimited`) with a cached access token.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::client::{WechatClient, transport_error};
use super::error::{MpErrorCode, WechatError};
use super::metrics::call_label;
use super::token::{CachedToken, SharedToken};
use super::types::{LoginSession, SubscribeMessage, WxaCodeRequest};

/// Refresh the access token this long before WeChat says it expires.
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Every mini-program answer: `errcode`/`errmsg` on failure, the payload fields on success.
#[derive(Deserialize)]
struct MpAnswer {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    openid: Option<String>,
    unionid: Option<String>,
    session_key: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

impl std::fmt::Debug for MpAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MpAnswer(..)")
    }
}

impl WechatClient {
    /// `GET /sns/jscode2session`. Never repeated: a code works once, so a second try could
    /// only fail with 40163 and hide the real answer.
    pub async fn code2session(&self, js_code: &str) -> Result<LoginSession, WechatError> {
        if js_code.is_empty() || js_code.len() > 128 {
            return Err(WechatError::InvalidRequest("js_code length".into()));
        }
        let c = self.config();
        let answer = self
            .mp_get(
                "/sns/jscode2session",
                &[
                    ("appid", c.appid.as_str()),
                    ("secret", c.app_secret.expose_secret()),
                    ("js_code", js_code),
                    ("grant_type", "authorization_code"),
                ],
            )
            .await?;
        match (answer.openid, answer.session_key) {
            (Some(openid), Some(session_key)) => Ok(LoginSession {
                openid,
                unionid: answer.unionid,
                session_key: SecretString::from(session_key),
            }),
            _ => Err(WechatError::Protocol(
                "jscode2session without openid".into(),
            )),
        }
    }

    /// Shares the access token with the other instances through Redis under `key`: WeChat
    /// keeps one token per app current, so instances that each fetched their own would keep
    /// invalidating each other's.
    pub fn share_token_through(&self, pool: crate::cache::RedisPool, key: String) {
        let _ = self.inner().token.shared.set(SharedToken { pool, key });
    }

    /// `POST /cgi-bin/message/subscribe/send`, refreshing the token once on 40001/42001.
    /// Not repeated otherwise: a repeat could show the shopper the message twice.
    pub async fn send_subscribe_message(
        &self,
        message: &SubscribeMessage,
    ) -> Result<(), WechatError> {
        self.with_access_token("subscribe_send", |token| async move {
            self.subscribe_send_once(&token, message).await
        })
        .await
    }

    /// Runs `call` with the access token, counted under `label`; when WeChat says the token
    /// is invalid or expired (40001/42001), once more with a fresh one.
    async fn with_access_token<T, F, Fut>(&self, label: &str, call: F) -> Result<T, WechatError>
    where
        F: Fn(SecretString) -> Fut,
        Fut: std::future::Future<Output = Result<T, WechatError>>,
    {
        let mut failed: Option<SecretString> = None;
        loop {
            let token = self.access_token(failed.as_ref()).await?;
            let started = Instant::now();
            let result = call(token.clone()).await;
            self.metrics().observe(label, started.elapsed(), &result);
            match result {
                Err(WechatError::MiniProgram {
                    code: MpErrorCode::InvalidCredential | MpErrorCode::AccessTokenExpired,
                    ..
                }) if failed.is_none() => {
                    self.forget_token().await;
                    failed = Some(token);
                }
                other => return other,
            }
        }
    }

    async fn subscribe_send_once(
        &self,
        token: &SecretString,
        message: &SubscribeMessage,
    ) -> Result<(), WechatError> {
        let url = format!(
            "{}/cgi-bin/message/subscribe/send",
            self.config().api_base_url
        );
        let response = self
            .inner()
            .http
            .post(url)
            .query(&[("access_token", token.expose_secret())])
            .json(message)
            .send()
            .await
            .map_err(transport_error)?;
        let bytes = response.bytes().await.map_err(transport_error)?;
        check_mp(parse_mp(&bytes)?).map(|_| ())
    }

    /// `POST /wxa/getwxacodeunlimit`: the image of a mini-program code (PNG when
    /// `is_hyaline`), refreshing the token once on 40001/42001. WeChat answers the image
    /// itself, or `{errcode, errmsg}` as JSON.
    pub async fn wxacode_unlimited(&self, req: &WxaCodeRequest) -> Result<Vec<u8>, WechatError> {
        let scene_ok = !req.scene.is_empty()
            && req.scene.len() <= 32
            && req
                .scene
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&'()*+,/:;=?@-._~".contains(&b));
        if !scene_ok {
            return Err(WechatError::InvalidRequest(
                "scene: 1 to 32 letters, digits or !#$&'()*+,/:;=?@-._~".into(),
            ));
        }
        if req.page.starts_with('/') || !(280..=1280).contains(&req.width) {
            return Err(WechatError::InvalidRequest(
                "page without a leading /, width 280..=1280".into(),
            ));
        }
        self.with_access_token("wxacode", |token| async move {
            self.wxacode_once(&token, req).await
        })
        .await
    }

    async fn wxacode_once(
        &self,
        token: &SecretString,
        req: &WxaCodeRequest,
    ) -> Result<Vec<u8>, WechatError> {
        let url = format!("{}/wxa/getwxacodeunlimit", self.config().api_base_url);
        let response = self
            .inner()
            .http
            .post(url)
            .query(&[("access_token", token.expose_secret())])
            .json(req)
            .send()
            .await
            .map_err(transport_error)?;
        let bytes = response.bytes().await.map_err(transport_error)?;
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.starts_with(b"\xff\xd8\xff") {
            return Ok(bytes.to_vec());
        }
        check_mp(parse_mp(&bytes)?)?;
        Err(WechatError::Protocol(
            "getwxacodeunlimit answered neither an image nor an error".into(),
        ))
    }

    /// The access token: this instance's copy while fresh, else the one the instances share
    /// (unless it is the one that just `failed`), else a new one from WeChat (then shared).
    async fn access_token(
        &self,
        failed: Option<&SecretString>,
    ) -> Result<SecretString, WechatError> {
        let mut current = self.inner().token.current.lock().await;
        if failed.is_none()
            && let Some(cached) = current.as_ref()
            && Instant::now() < cached.refresh_at
        {
            return Ok(cached.token.clone());
        }
        let shared = self.inner().token.shared.get();
        if let Some(shared) = shared
            && let Some((token, ttl)) = shared.get().await
            && failed.is_none_or(|f| f.expose_secret() != token)
        {
            let token = SecretString::from(token);
            *current = Some(CachedToken {
                token: token.clone(),
                refresh_at: Instant::now() + ttl,
            });
            return Ok(token);
        }
        let c = self.config();
        let answer = self
            .mp_get(
                "/cgi-bin/token",
                &[
                    ("grant_type", "client_credential"),
                    ("appid", c.appid.as_str()),
                    ("secret", c.app_secret.expose_secret()),
                ],
            )
            .await?;
        let token = answer
            .access_token
            .ok_or_else(|| WechatError::Protocol("token answer without access_token".into()))?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(7200));
        let refresh_in = lifetime
            .checked_sub(TOKEN_REFRESH_MARGIN)
            .unwrap_or(lifetime / 2);
        if let Some(shared) = shared {
            shared.put(&token, refresh_in).await;
        }
        let token = SecretString::from(token);
        *current = Some(CachedToken {
            token: token.clone(),
            refresh_at: Instant::now() + refresh_in,
        });
        Ok(token)
    }

    async fn forget_token(&self) {
        *self.inner().token.current.lock().await = None;
    }

    async fn mp_get(&self, path: &str, query: &[(&str, &str)]) -> Result<MpAnswer, WechatError> {
        let started = std::time::Instant::now();
        let result = self.mp_get_once(path, query).await;
        self.metrics()
            .observe(call_label("GET", path), started.elapsed(), &result);
        result
    }

    async fn mp_get_once(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<MpAnswer, WechatError> {
        let url = format!("{}{}", self.config().api_base_url, path);
        let response = self
            .inner()
            .http
            .get(url)
            .query(query)
            .send()
            .await
            .map_err(transport_error)?;
        let bytes = response.bytes().await.map_err(transport_error)?;
        check_mp(parse_mp(&bytes)?)
    }
}

fn parse_mp(bytes: &[u8]) -> Result<MpAnswer, WechatError> {
    serde_json::from_slice(bytes)
        .map_err(|_| WechatError::Protocol("mini-program answer is not JSON".into()))
}

fn check_mp(answer: MpAnswer) -> Result<MpAnswer, WechatError> {
    if answer.errcode == 0 {
        Ok(answer)
    } else {
        Err(WechatError::MiniProgram {
            code: MpErrorCode::from_code(answer.errcode),
            message: answer.errmsg,
        })
    }
}
