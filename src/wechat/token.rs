//! The mini-program access token: cached in this process and, with Redis, shared by the
//! instances (one token per app is current at WeChat). Its own module, so the client that
//! holds it and the mini-program calls that use it do not depend on each other.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use tokio::sync::Mutex;

#[derive(Default)]
pub(super) struct TokenCache {
    pub(super) current: Mutex<Option<CachedToken>>,
    /// Where instances share the token (Redis), so one instance's refresh does not
    /// invalidate the token the others hold.
    pub(super) shared: std::sync::OnceLock<SharedToken>,
}

pub(super) struct SharedToken {
    pub(super) pool: crate::cache::RedisPool,
    pub(super) key: String,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCache(..)")
    }
}

pub(super) struct CachedToken {
    pub(super) token: SecretString,
    pub(super) refresh_at: Instant,
}

impl SharedToken {
    /// The shared token and how long it stays fresh; `None` when absent or Redis is down
    /// (this instance then fetches its own: a degraded, not a failed, send).
    pub(super) async fn get(&self) -> Option<(String, Duration)> {
        let mut conn = self.pool.get().await.ok()?;
        let (token, ttl): (Option<String>, i64) = bb8_redis::redis::pipe()
            .get(&self.key)
            .pttl(&self.key)
            .query_async(&mut *conn)
            .await
            .ok()?;
        let ttl = u64::try_from(ttl).ok().filter(|ms| *ms > 0)?;
        Some((token?, Duration::from_millis(ttl)))
    }

    pub(super) async fn put(&self, token: &str, fresh_for: Duration) {
        use bb8_redis::redis::AsyncCommands;
        let Ok(mut conn) = self.pool.get().await else {
            return;
        };
        let ms = u64::try_from(fresh_for.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let stored: Result<(), _> = conn.pset_ex(&self.key, token, ms).await;
        if let Err(e) = stored {
            tracing::warn!(category = "system", error = %e, "access token not shared through redis");
        }
    }
}
