//! The Redis pool's connection manager. bb8-redis checks every connection with a `PING`
//! each time it is taken from the pool: one more round trip for every Redis command on the
//! request path (half of the Redis round trips of a paid order, measured with `MONITOR`).
//!
//! Here a connection is instead marked broken when a command on it fails the way a dead
//! connection fails (I/O error, connection dropped, unrecoverable), and the check at
//! check-out is local: a connection is refused when it is marked, or when it was made
//! before the last such failure of any connection of the pool. After Redis restarts, the
//! first command that fails retires every connection made before it, so one failure (which
//! the callers tolerate: the cache reads the database, rate limits and nonces fall back to
//! this instance) stands for all of them, and no round trip is spent on checking.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bb8_redis::RedisConnectionManager;
use bb8_redis::redis::aio::{ConnectionLike, MultiplexedConnection};
use bb8_redis::redis::{
    Cmd, ErrorKind, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, RedisResult, Value,
};

/// Connections made, and the newest one made before the last failure.
#[derive(Debug, Default)]
struct Generations {
    made: AtomicU64,
    failed_upto: AtomicU64,
}

/// bb8's manager for [`RedisConn`]s.
#[derive(Debug, Clone)]
pub struct RedisManager {
    inner: RedisConnectionManager,
    generations: Arc<Generations>,
}

impl RedisManager {
    pub fn new<T: IntoConnectionInfo>(info: T) -> Result<Self, RedisError> {
        Ok(RedisManager {
            inner: RedisConnectionManager::new(info)?,
            generations: Arc::default(),
        })
    }
}

/// A pooled multiplexed connection that remembers whether it failed.
pub struct RedisConn {
    conn: MultiplexedConnection,
    made: u64,
    broken: bool,
    generations: Arc<Generations>,
}

impl RedisConn {
    fn retired(&self) -> bool {
        self.broken || self.made <= self.generations.failed_upto.load(Ordering::Acquire)
    }

    fn note<T>(&mut self, result: &RedisResult<T>) {
        if let Err(e) = result
            && (e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error())
        {
            self.broken = true;
            let newest = self.generations.made.load(Ordering::Acquire);
            self.generations
                .failed_upto
                .fetch_max(newest, Ordering::AcqRel);
        }
    }
}

impl bb8::ManageConnection for RedisManager {
    type Connection = RedisConn;
    type Error = RedisError;

    async fn connect(&self) -> Result<RedisConn, RedisError> {
        let made = self.generations.made.fetch_add(1, Ordering::AcqRel) + 1;
        let conn = self.inner.connect().await?;
        Ok(RedisConn {
            conn,
            made,
            broken: false,
            generations: self.generations.clone(),
        })
    }

    async fn is_valid(&self, conn: &mut RedisConn) -> Result<(), RedisError> {
        if conn.retired() {
            return Err((ErrorKind::Io, "connection failed, or made before a failure").into());
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut RedisConn) -> bool {
        conn.retired()
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let result = self.conn.req_packed_command(cmd).await;
            self.note(&result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self.conn.req_packed_commands(pipeline, offset, count).await;
            self.note(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

#[cfg(test)]
mod tests {
    use bb8_redis::redis;

    use super::*;

    fn redis_url() -> Option<String> {
        std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty())
    }

    async fn client_id(pool: &bb8::Pool<RedisManager>) -> RedisResult<i64> {
        let mut conn = pool.get().await.map_err(|e| match e {
            bb8::RunError::User(e) => e,
            bb8::RunError::TimedOut => (ErrorKind::Io, "pool timed out").into(),
        })?;
        redis::cmd("CLIENT").arg("ID").query_async(&mut *conn).await
    }

    async fn kill(url: &str, id: i64) {
        let client = redis::Client::open(url).unwrap();
        let mut other = client.get_multiplexed_async_connection().await.unwrap();
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query_async(&mut other)
            .await
            .unwrap();
        assert_eq!(killed, 1);
    }

    /// No `PING` at check-out: the first command after the server dropped the connection
    /// is the one that fails (with bb8-redis's `PING` it would have succeeded on a new
    /// connection), and the next one runs on a new connection.
    #[tokio::test]
    async fn a_dropped_connection_fails_once_and_is_replaced() {
        let Some(url) = redis_url() else {
            eprintln!("REDIS_URL not set: skipped (runs in the MariaDB + Redis pass)");
            return;
        };
        let pool = bb8::Pool::builder()
            .max_size(1)
            .build(RedisManager::new(url.as_str()).unwrap())
            .await
            .unwrap();
        let first = client_id(&pool).await.unwrap();
        assert_eq!(client_id(&pool).await.unwrap(), first, "kept and reused");
        kill(&url, first).await;
        assert!(
            client_id(&pool).await.is_err(),
            "the dead connection is used once"
        );
        let second = client_id(&pool).await.unwrap();
        assert_ne!(second, first, "replaced");
        assert_eq!(client_id(&pool).await.unwrap(), second);
    }

    /// After Redis restarts every pooled connection is dead: the first failure retires all
    /// the connections made before it, so only one command fails.
    #[tokio::test]
    async fn one_failure_retires_every_older_connection() {
        let Some(url) = redis_url() else {
            eprintln!("REDIS_URL not set: skipped (runs in the MariaDB + Redis pass)");
            return;
        };
        let pool = bb8::Pool::builder()
            .max_size(2)
            .build(RedisManager::new(url.as_str()).unwrap())
            .await
            .unwrap();
        let (a, b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
        drop((a, b));
        let mut ids = Vec::new();
        {
            let mut one = pool.get().await.unwrap();
            let mut two = pool.get().await.unwrap();
            for conn in [&mut one, &mut two] {
                let id: i64 = redis::cmd("CLIENT")
                    .arg("ID")
                    .query_async(&mut **conn)
                    .await
                    .unwrap();
                ids.push(id);
            }
        }
        for id in &ids {
            kill(&url, *id).await;
        }
        let results = [
            client_id(&pool).await,
            client_id(&pool).await,
            client_id(&pool).await,
        ];
        let failed = results.iter().filter(|r| r.is_err()).count();
        assert_eq!(failed, 1, "{results:?}");
        for id in results.iter().flatten() {
            assert!(!ids.contains(id), "a new connection: {id} not in {ids:?}");
        }
    }
}
