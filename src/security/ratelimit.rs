//! Rate limits: a per-key governor (GCRA) in process, and, when Redis is configured, a
//! fixed-window counter in Redis (`INCR` + `EXPIRE`) so the limit holds across instances.
//!
//! Use: `state.security.limits.payments.check(&user_id).await?` in a handler (the error maps
//! to 429 `RATE_LIMITED` with `Retry-After`).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use bb8_redis::redis;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use prometheus::IntCounterVec;

use crate::cache::RedisPool;

/// A refusal: how long until a request would be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    pub limit: &'static str,
    pub retry_after_secs: u64,
}

/// One named limit: `per_min` requests per minute per key.
pub struct RateLimiter {
    name: &'static str,
    per_min: u32,
    local: DefaultKeyedRateLimiter<String>,
    redis: Option<(RedisPool, String)>,
    breaker: crate::cache::Breaker,
    checks: AtomicU64,
    refused: IntCounterVec,
}

impl RateLimiter {
    /// `refused` is the `rate_limited_total{limit}` counter.
    pub fn new(
        name: &'static str,
        per_min: u32,
        redis: Option<(RedisPool, String)>,
        refused: IntCounterVec,
    ) -> Self {
        let n = NonZeroU32::new(per_min.max(1)).unwrap_or(NonZeroU32::MIN);
        RateLimiter {
            name,
            per_min: per_min.max(1),
            local: governor::RateLimiter::keyed(Quota::per_minute(n)),
            redis,
            breaker: crate::cache::Breaker::default(),
            checks: AtomicU64::new(0),
            refused,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Counts one request for `key`; `Err` when over the limit. A Redis failure lets the
    /// request through (the local limit still holds) and is logged.
    pub async fn check(&self, key: &str) -> Result<(), RateLimited> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.local.retain_recent();
        }
        if let Err(not_until) = self.local.check_key(&key.to_string()) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(self.refuse(wait.as_secs().max(1)));
        }
        if let Some((pool, prefix)) = self.redis.as_ref().filter(|_| self.breaker.allow()) {
            // A Redis that does not answer quickly must not slow every request down.
            let shared = tokio::time::timeout(
                std::time::Duration::from_millis(500),
                self.check_redis(pool, prefix, key),
            )
            .await
            .unwrap_or_else(|_| Err(crate::cache::CacheError::Pool("timed out".into())));
            match shared {
                Ok(None) => {}
                Ok(Some(retry)) => return Err(self.refuse(retry)),
                Err(e) => {
                    if self.breaker.trip() {
                        tracing::warn!(
                            category = "security",
                            limit = self.name,
                            error = %e,
                            "shared rate limit unavailable; local limit only"
                        )
                    }
                }
            }
        }
        Ok(())
    }

    fn refuse(&self, retry_after_secs: u64) -> RateLimited {
        self.refused.with_label_values(&[self.name]).inc();
        RateLimited {
            limit: self.name,
            retry_after_secs,
        }
    }

    async fn check_redis(
        &self,
        pool: &RedisPool,
        prefix: &str,
        key: &str,
    ) -> Result<Option<u64>, crate::cache::CacheError> {
        let now = chrono::Utc::now().timestamp();
        let window = now.div_euclid(60);
        let redis_key = format!("{prefix}:rl:{}:{key}:{window}", self.name);
        let mut conn = pool.get().await?;
        let (count,): (u64,) = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(&redis_key)
            .cmd("EXPIRE")
            .arg(&redis_key)
            .arg(120)
            .ignore()
            .query_async(&mut *conn)
            .await?;
        if count > u64::from(self.per_min) {
            let left = 60 - now.rem_euclid(60);
            Ok(Some(u64::try_from(left).unwrap_or(60).max(1)))
        } else {
            Ok(None)
        }
    }
}

/// The limits of the system, built from settings.
pub struct Limits {
    pub payments: RateLimiter,
    pub points_queries: RateLimiter,
    pub login_per_ip: RateLimiter,
    /// Invite codes tried per user: with 60 bits per code, guessing is hopeless at this rate.
    pub staff_redeem: RateLimiter,
}

impl Limits {
    pub fn new(
        settings: &crate::config::Settings,
        redis: Option<RedisPool>,
        refused: IntCounterVec,
    ) -> Self {
        let shared = || redis.clone().map(|p| (p, settings.redis_prefix.clone()));
        Limits {
            payments: RateLimiter::new(
                "payments",
                settings.rate_limit_payments_per_min,
                shared(),
                refused.clone(),
            ),
            points_queries: RateLimiter::new(
                "points_queries",
                settings.rate_limit_points_queries_per_min,
                shared(),
                refused.clone(),
            ),
            login_per_ip: RateLimiter::new(
                "login_ip",
                settings.rate_limit_login_per_min_per_ip,
                shared(),
                refused.clone(),
            ),
            staff_redeem: RateLimiter::new(
                "staff_redeem",
                settings.rate_limit_staff_redeem_per_min,
                shared(),
                refused,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> IntCounterVec {
        IntCounterVec::new(prometheus::Opts::new("rl", "rl"), &["limit"]).unwrap()
    }

    #[tokio::test]
    async fn refuses_over_the_limit_per_key() {
        let refused = counter();
        let rl = RateLimiter::new("payments", 3, None, refused.clone());
        for _ in 0..3 {
            assert!(rl.check("u1").await.is_ok());
        }
        let err = rl.check("u1").await.unwrap_err();
        assert_eq!(err.limit, "payments");
        assert!(err.retry_after_secs >= 1 && err.retry_after_secs <= 60);
        assert!(rl.check("u2").await.is_ok());
        assert_eq!(refused.with_label_values(&["payments"]).get(), 1);
    }
}
