//! The security layer: tokens, request signatures, rate limits, field encryption, the login
//! seam, admin passwords, masking, and the short-lived caches that authorization reads.
//!
//! HTTP-facing pieces (extractors, error mapping) live in `crate::http::extract`.

pub mod crypto;
pub mod mask;
pub mod passwords;
pub mod proxies;
pub mod ratelimit;
pub mod signing;
pub mod tokens;
pub mod wechat_login;

use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, Opts};

use crate::cache::{Cache, Kind, RedisPool};
use crate::config::Settings;
use crate::telemetry::Metrics;

pub use mask::{Phone, mask_pii};
pub use ratelimit::{Limits, RateLimited, RateLimiter};
pub use wechat_login::{Code2Session, LoginError, WechatSession};

/// How long authorization trusts a status it read (another instance's change shows within
/// this; this instance's own changes invalidate at once).
pub const STATUS_CACHE_TTL: Duration = Duration::from_secs(2);

/// A short-lived in-process cache of statuses read on every request: an L1 cache of
/// `crate::cache` (moka), invalidated across instances on writes.
pub type TtlCache<V> = crate::cache::L1<V>;

/// The `event` label values of `security_events_total`.
pub const SECURITY_EVENTS: &[&str] = &[
    "bad_signature",
    "expired_signature",
    "replayed_nonce",
    "bad_token",
    "expired_token",
    "forbidden",
    "disabled_user_refused",
    "disabled_user_login_refused",
    "disabled_admin_login_refused",
    "login_refused",
    "admin_login_failed",
    "admin_locked",
    "admin_login_locked",
    "refresh_token_reused",
    "rate_limited",
    "bad_invite_code",
];

/// What authorization needs to know about a merchant.
#[derive(Debug, Clone)]
pub struct MerchantAccess {
    pub owner_user_id: String,
    pub status: String,
}

pub struct SecurityMetrics {
    pub security_events_total: IntCounterVec,
    pub rate_limited_total: IntCounterVec,
    pub user_registrations_total: IntCounter,
}

/// Everything the security layer holds; one per application instance.
pub struct SecurityState {
    pub tokens: tokens::TokenKeys,
    pub fields: crypto::FieldCipher,
    pub nonces: signing::NonceStore,
    pub limits: Limits,
    /// The login seam: replace with the shared WeChat client when it lands.
    pub code2session: Arc<dyn Code2Session>,
    pub user_status: TtlCache<String>,
    pub admin_status: TtlCache<String>,
    pub merchant_access: TtlCache<MerchantAccess>,
    /// Sessions (refresh families) known to be revoked or not, so a revoked session's access
    /// tokens stop working too.
    pub session_revoked: TtlCache<bool>,
    /// Whose `X-Forwarded-For` names the client (`APP_TRUSTED_PROXIES`).
    pub trusted_proxies: proxies::TrustedProxies,
    pub metrics: SecurityMetrics,
}

impl SecurityState {
    pub fn new(
        settings: &Settings,
        redis: Option<RedisPool>,
        cache: &Cache,
        metrics: &Metrics,
        code2session: Arc<dyn Code2Session>,
    ) -> anyhow::Result<Self> {
        let security_events_total = IntCounterVec::new(
            Opts::new("security_events_total", "Security events by kind"),
            &["event"],
        )?;
        let rate_limited_total = IntCounterVec::new(
            Opts::new("rate_limited_total", "Requests refused by a rate limit"),
            &["limit"],
        )?;
        let user_registrations_total =
            IntCounter::new("user_registrations_total", "Users created at first login")?;
        // Every label value exists from the start (at 0), so dashboards and alerts see the
        // series before the first event.
        for event in SECURITY_EVENTS {
            security_events_total.with_label_values(&[event]);
        }
        for limit in ["payments", "points_queries", "login_ip", "staff_redeem"] {
            rate_limited_total.with_label_values(&[limit]);
        }
        metrics.register(Box::new(security_events_total.clone()));
        metrics.register(Box::new(rate_limited_total.clone()));
        metrics.register(Box::new(user_registrations_total.clone()));
        Ok(SecurityState {
            tokens: tokens::TokenKeys::new(&settings.jwt_secret),
            fields: crypto::FieldCipher::new(settings.field_keys.as_ref(), &settings.field_key)?,
            nonces: signing::NonceStore::new(redis.clone(), &settings.redis_prefix),
            limits: Limits::new(settings, redis, rate_limited_total.clone()),
            code2session,
            user_status: cache.l1(Kind::Session),
            admin_status: cache.l1(Kind::Session),
            merchant_access: cache.l1(Kind::Merchant),
            session_revoked: cache.l1(Kind::Session),
            trusted_proxies: proxies::TrustedProxies::parse(&settings.trusted_proxies)
                .map_err(|e| anyhow::anyhow!("APP_TRUSTED_PROXIES: {e}"))?,
            metrics: SecurityMetrics {
                security_events_total,
                rate_limited_total,
                user_registrations_total,
            },
        })
    }

    /// Logs a security event in the security category and counts it. `detail` must not carry
    /// secrets; personal numbers in it are masked by the log writer anyway.
    pub fn event(&self, event: &'static str, detail: &str) {
        self.metrics
            .security_events_total
            .with_label_values(&[event])
            .inc();
        tracing::warn!(category = "security", event, detail = %mask_pii(detail), "security event");
    }
}
