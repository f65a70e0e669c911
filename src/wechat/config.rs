//! The resolved WeChat configuration: `WECHAT_*` settings with their files read and keys parsed.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use super::aead::{AeadError, ApiV3Key};
use super::keys::{self, KeyError, PlatformKeys, RsaSigner};
use super::sign::{Clock, MerchantSigner, PlatformVerifier, SystemClock};
use crate::config::WechatSettings;

pub const DEFAULT_PAY_BASE_URL: &str = "https://api.mch.weixin.qq.com";
pub const DEFAULT_API_BASE_URL: &str = "https://api.weixin.qq.com";

#[derive(Debug, thiserror::Error)]
pub enum WechatConfigError {
    #[error("WECHAT_{0} is required when WeChat is configured")]
    Missing(&'static str),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("WECHAT_APIV3_KEY: {0}")]
    ApiV3Key(AeadError),
    #[error("WECHAT_{0}: {1}")]
    Invalid(&'static str, String),
}

/// How the client behaves on the network.
#[derive(Debug, Clone)]
pub struct NetworkPolicy {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Attempts in all for a call that is safe to repeat (1 = no retry).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles each time.
    pub initial_backoff: Duration,
}

impl Default for NetworkPolicy {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
        }
    }
}

/// Everything the client and the notification verifier need, resolved and checked.
#[derive(Clone, Debug)]
pub struct WechatConfig {
    pub appid: String,
    pub app_secret: SecretString,
    pub mchid: String,
    pub merchant: MerchantSigner,
    pub apiv3_key: ApiV3Key,
    pub platform: PlatformVerifier,
    pub pay_base_url: String,
    pub api_base_url: String,
    /// Where WeChat reaches us, e.g. `https://pay.example.com`; notify paths are appended.
    pub notify_base_url: String,
    pub network: NetworkPolicy,
}

impl WechatConfig {
    /// Reads key files and checks every setting; `notify_base_url` falls back to
    /// `default_notify_base` when `WECHAT_NOTIFY_BASE_URL` is unset.
    pub fn from_settings(s: &WechatSettings) -> Result<Self, WechatConfigError> {
        Self::from_settings_with(s, None, Arc::new(SystemClock))
    }

    pub fn from_settings_with(
        s: &WechatSettings,
        default_notify_base: Option<&str>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, WechatConfigError> {
        let appid = s.appid.clone().ok_or(WechatConfigError::Missing("APPID"))?;
        let app_secret = s
            .app_secret
            .clone()
            .ok_or(WechatConfigError::Missing("APP_SECRET"))?;
        let mchid = s.mchid.clone().ok_or(WechatConfigError::Missing("MCHID"))?;
        let serial = s
            .merchant_serial_no
            .clone()
            .ok_or(WechatConfigError::Missing("MERCHANT_SERIAL_NO"))?;
        let key_file = s
            .merchant_private_key_file
            .as_ref()
            .ok_or(WechatConfigError::Missing("MERCHANT_PRIVATE_KEY_FILE"))?;
        let key = keys::private_key_from_pem(&keys::read_pem(key_file)?)?;
        let apiv3_key = ApiV3Key::parse(
            s.apiv3_key
                .clone()
                .ok_or(WechatConfigError::Missing("APIV3_KEY"))?,
        )
        .map_err(WechatConfigError::ApiV3Key)?;

        let mut platform = PlatformKeys::new();
        match (&s.platform_public_key_file, &s.platform_public_key_id) {
            (Some(file), Some(id)) => {
                if !id.starts_with("PUB_KEY_ID_") {
                    return Err(WechatConfigError::Invalid(
                        "PLATFORM_PUBLIC_KEY_ID",
                        "must start with PUB_KEY_ID_".into(),
                    ));
                }
                platform.insert(
                    id.clone(),
                    keys::public_key_from_pem(&keys::read_pem(file)?)?,
                );
            }
            (Some(_), None) => return Err(WechatConfigError::Missing("PLATFORM_PUBLIC_KEY_ID")),
            (None, Some(_)) => return Err(WechatConfigError::Missing("PLATFORM_PUBLIC_KEY_FILE")),
            (None, None) => {}
        }
        if let Some(cert) = &s.platform_certificate_file {
            platform.insert_certificate_pem(&keys::read_pem(cert)?)?;
        }
        if platform.is_empty() {
            return Err(WechatConfigError::Missing(
                "PLATFORM_PUBLIC_KEY_FILE (or WECHAT_PLATFORM_CERTIFICATE_FILE)",
            ));
        }
        let notify_base_url = s
            .notify_base_url
            .clone()
            .or_else(|| default_notify_base.map(str::to_string))
            .ok_or(WechatConfigError::Missing("NOTIFY_BASE_URL"))?;
        Ok(Self {
            appid,
            app_secret,
            merchant: MerchantSigner::new(mchid.clone(), serial, RsaSigner::new(key)),
            mchid,
            apiv3_key,
            platform: PlatformVerifier::with_clock(platform, clock),
            pay_base_url: trim_base(s.pay_base_url.as_deref().unwrap_or(DEFAULT_PAY_BASE_URL)),
            api_base_url: trim_base(s.api_base_url.as_deref().unwrap_or(DEFAULT_API_BASE_URL)),
            notify_base_url: trim_base(&notify_base_url),
            network: NetworkPolicy::default(),
        })
    }

    /// The full notify URL for a path such as `/api/v1/payments/wechat/notify`.
    pub fn notify_url(&self, path: &str) -> String {
        format!("{}{}", self.notify_base_url, path)
    }
}

fn trim_base(url: &str) -> String {
    url.trim_end_matches('/').to_string()
}
