//! WeChat Pay API v3 and the mini-program APIs, spoken exactly as WeChat does (formats in
//! `shared/design/WECHATPAY.md`): signed requests, verified answers and notifications,
//! AES-256-GCM resources, `wx.requestPayment` parameters, login and subscribe messages.

pub mod aead;
pub mod bill;
pub mod client;
pub mod config;
pub mod error;
pub mod keys;
pub mod metrics;
pub mod mini;
pub mod notify;
pub mod sign;
mod token;
pub mod types;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use secrecy::SecretString;

pub use client::WechatClient;
pub use config::{NetworkPolicy, WechatConfig, WechatConfigError};
pub use error::{MpErrorCode, PayErrorCode, WechatError};
pub use notify::{NotificationResource, NotificationVerifier, NotifyError, VerifiedNotification};
pub use types::{
    LoginSession, PayParams, PrepayRequest, Refund, RefundRequest, RefundResource, RefundTarget,
    SubscribeMessage, Transaction, WxaCodeRequest,
};

use crate::config::Settings;
use crate::sandbox::{self, SandboxConfig, SandboxHandle, SandboxKeys};
use sign::{PlatformVerifier, SystemClock};

/// What the server's handlers need from WeChat (one field in `AppState`).
#[derive(Clone, Debug)]
pub struct WechatServices {
    pub client: WechatClient,
    pub notifications: NotificationVerifier,
}

/// Builds the client and the notification verifier. With no `WECHAT_*` settings it starts the
/// sandbox in-process on `127.0.0.1:settings.sandbox_port()` with keys kept under
/// `data_dir/sandbox`, and returns its handle; otherwise it uses the settings as they are.
/// Notifications are addressed to `http://{host}:{port}` unless `WECHAT_NOTIFY_BASE_URL` is set.
/// The caller owns the returned [`SandboxHandle`]: the sandbox ignores process signals, so stop
/// it (`handle.stop().await`) when the server stops, as `Application::run_until_stopped` does.
pub async fn setup(
    settings: &Settings,
) -> anyhow::Result<(WechatClient, NotificationVerifier, Option<SandboxHandle>)> {
    let notify_base = format!("http://{}:{}", settings.host, settings.port);
    setup_with_notify_base(settings, &notify_base).await
}

/// [`setup`] with the notify base URL given (e.g. once the server's port 0 became a real port).
pub async fn setup_with_notify_base(
    settings: &Settings,
    notify_base: &str,
) -> anyhow::Result<(WechatClient, NotificationVerifier, Option<SandboxHandle>)> {
    if !settings.wechat.is_sandbox() {
        let config = WechatConfig::from_settings_with(
            &settings.wechat,
            Some(notify_base),
            Arc::new(SystemClock),
        )?;
        let client = WechatClient::new(config)?;
        let verifier = verifier_for(client.config()).with_metrics(client.metrics().clone());
        return Ok((client, verifier, None));
    }
    let mut sandbox_config =
        SandboxConfig::new(settings.sandbox_keys_dir(), settings.sandbox_port());
    sandbox_config.time_scale = settings.sandbox_time_scale;
    sandbox_config.host = "127.0.0.1".into();
    let handle = sandbox::start(&sandbox_config).await?;
    let notify = settings
        .wechat
        .notify_base_url
        .as_deref()
        .unwrap_or(notify_base);
    let config = sandbox_client_config(handle.keys(), &handle.base_url(), notify);
    let client = WechatClient::new(config)?;
    let verifier = verifier_for(client.config()).with_metrics(client.metrics().clone());
    Ok((client, verifier, Some(handle)))
}

/// A client configuration that talks to a sandbox with these keys at `base_url`.
pub fn sandbox_client_config(
    keys: &SandboxKeys,
    base_url: &str,
    notify_base: &str,
) -> WechatConfig {
    WechatConfig {
        appid: keys.appid.clone(),
        app_secret: SecretString::from(keys.app_secret.clone()),
        mchid: keys.mchid.clone(),
        merchant: keys.merchant(),
        apiv3_key: keys.apiv3_key.clone(),
        platform: PlatformVerifier::new(keys.platform_keys.clone()),
        pay_base_url: base_url.trim_end_matches('/').to_string(),
        api_base_url: base_url.trim_end_matches('/').to_string(),
        notify_base_url: notify_base.trim_end_matches('/').to_string(),
        network: NetworkPolicy::default(),
    }
}

/// The notification verifier matching a configuration.
pub fn verifier_for(config: &WechatConfig) -> NotificationVerifier {
    NotificationVerifier::new(
        config.platform.clone(),
        config.apiv3_key.clone(),
        &config.mchid,
        &config.appid,
    )
}
