//! Cache and shared state: Redis through bb8-redis when `REDIS_URL` is set, in-process
//! otherwise. Every key carries the configured prefix.

use std::time::Duration;

use bb8_redis::RedisConnectionManager;
use bb8_redis::redis;
use secrecy::ExposeSecret;

use crate::config::Settings;

pub type RedisPool = bb8::Pool<RedisConnectionManager>;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis pool: {0}")]
    Pool(String),
}

impl From<bb8::RunError<redis::RedisError>> for CacheError {
    fn from(e: bb8::RunError<redis::RedisError>) -> Self {
        CacheError::Pool(e.to_string())
    }
}

/// Connects the Redis pool when configured. The pool is built lazily-tolerant: a Redis that
/// is down at start-up shows in `/readyz` rather than stopping the server.
pub async fn connect_redis(settings: &Settings) -> Result<Option<RedisPool>, CacheError> {
    let Some(url) = &settings.redis_url else {
        return Ok(None);
    };
    let manager = RedisConnectionManager::new(url.expose_secret())?;
    let pool = bb8::Pool::builder()
        .max_size(32)
        .connection_timeout(Duration::from_secs(2))
        .build_unchecked(manager);
    Ok(Some(pool))
}

pub async fn ping(pool: &RedisPool) -> Result<(), CacheError> {
    let mut conn = pool.get().await?;
    let _: String = redis::cmd("PING").query_async(&mut *conn).await?;
    Ok(())
}
