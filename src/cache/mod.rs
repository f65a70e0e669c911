//! The two-level cache of the source design, and the Redis pool other modules share.
//!
//! - **L1**, in process ([moka]): sessions and account statuses, merchant information,
//!   the points rule. Short TTLs; a write invalidates this instance's entry at once and
//!   publishes the key on the Redis channel `{prefix}:cache:invalidate`, so every other
//!   instance drops it too.
//! - **L2**, Redis through bb8-redis: balances (`{prefix}:user:points:{userId}`) and merchant
//!   statistics (`{prefix}:merchant:stats:{merchantId}:{from}:{to}`). Cache-aside: a miss
//!   reads the database and fills the key with the kind's TTL; a write deletes the key before
//!   and after its database commit and no fill is stored in between (`begin_write`; the
//!   points ledger writer does it before anyone is answered).
//!
//! Without Redis only L1 exists. A Redis error never fails a request: the read goes to the
//! database, `cache_errors_total` counts it, `dependency_up{dependency="redis"}` drops to 0
//! and Redis is left alone for a few seconds. Deletes that fail are kept and retried before
//! L2 is read again, so a balance cached before an outage cannot come back stale after it.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bb8_redis::redis;
use parking_lot::{Mutex, RwLock};
use prometheus::{IntCounterVec, IntGaugeVec, Opts};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::Settings;
use crate::telemetry::Metrics;

mod redis_conn;
pub use redis_conn::{RedisConn, RedisManager};

pub type RedisPool = bb8::Pool<RedisManager>;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis pool: {0}")]
    Pool(String),
    #[error("redis skipped: failed recently")]
    Skipped,
}

impl From<bb8::RunError<redis::RedisError>> for CacheError {
    fn from(e: bb8::RunError<redis::RedisError>) -> Self {
        CacheError::Pool(e.to_string())
    }
}

/// How long one Redis command may take before the cache gives up on it.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);
/// After a Redis failure, L2 is skipped for this long (requests go to the database).
const REDIS_BACKOFF: Duration = Duration::from_secs(3);

/// Most failed deletes remembered for a retry (see `invalidate_l2`).
const MAX_PENDING_DELETES: usize = 100_000;
/// The longest TTL of an L2 kind.
const MAX_L2_TTL: Duration = Duration::from_secs(300);

/// Connects the Redis pool when configured. The pool is built lazily-tolerant: a Redis that
/// is down at start-up shows in `/readyz` rather than stopping the server.
pub async fn connect_redis(settings: &Settings) -> Result<Option<RedisPool>, CacheError> {
    let Some(url) = &settings.redis_url else {
        return Ok(None);
    };
    let manager = RedisManager::new(url.expose_secret())?;
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

/// Skips Redis for a few seconds after it failed, so an outage costs one timeout per
/// few seconds instead of one per request (rate limits and nonces fall back to this
/// instance meanwhile).
#[derive(Default)]
pub struct Breaker {
    open_until: Mutex<Option<Instant>>,
}

impl Breaker {
    /// True when Redis may be tried now.
    pub fn allow(&self) -> bool {
        let mut open = self.open_until.lock();
        match *open {
            Some(until) if Instant::now() < until => false,
            Some(_) => {
                *open = None;
                true
            }
            None => true,
        }
    }

    /// Records a failure: Redis is skipped for a while. True when it was closed before.
    pub fn trip(&self) -> bool {
        let mut open = self.open_until.lock();
        let first = open.is_none();
        *open = Some(Instant::now() + REDIS_BACKOFF);
        first
    }
}

/// What is cached. The kind decides the layer, the TTL and the key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Sessions and account statuses read by authorization (L1).
    Session,
    /// Merchant information: owner and status, scanned payment codes (L1).
    Merchant,
    /// The points rule in force (L1; warmed at start-up).
    Rules,
    /// A user's points balance (L2).
    Balance,
    /// A merchant's daily takings (L2).
    MerchantStats,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Session,
        Kind::Merchant,
        Kind::Rules,
        Kind::Balance,
        Kind::MerchantStats,
    ];

    /// The `kind` label of `cache_requests_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Session => "session",
            Kind::Merchant => "merchant",
            Kind::Rules => "rules",
            Kind::Balance => "balance",
            Kind::MerchantStats => "merchant_stats",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn layer(self) -> &'static str {
        match self {
            Kind::Session | Kind::Merchant | Kind::Rules => "l1",
            Kind::Balance | Kind::MerchantStats => "l2",
        }
    }

    /// How long an entry is trusted without a write invalidating it.
    pub fn ttl(self) -> Duration {
        match self {
            // Another instance's change shows within this even if its invalidation is lost.
            Kind::Session => Duration::from_secs(2),
            Kind::Merchant => Duration::from_secs(5),
            Kind::Rules => Duration::from_secs(5),
            Kind::Balance => Duration::from_secs(300),
            Kind::MerchantStats => Duration::from_secs(30),
        }
    }

    /// The source design's key space (`user:points:{userId}`, `merchant:stats:{...}`).
    fn key_space(self) -> &'static str {
        match self {
            Kind::Session => "user:session",
            Kind::Merchant => "merchant:info",
            Kind::Rules => "points:rules",
            Kind::Balance => "user:points",
            Kind::MerchantStats => "merchant:stats",
        }
    }
}

#[derive(Clone)]
struct CacheMetrics {
    requests: IntCounterVec,
    errors: IntCounterVec,
    dependency_up: IntGaugeVec,
}

type Invalidator = Box<dyn Fn(Option<&str>) + Send + Sync>;

struct Inner {
    prefix: String,
    redis: Option<RedisPool>,
    client: Option<redis::Client>,
    /// Identifies this instance's own invalidation messages.
    origin: String,
    metrics: CacheMetrics,
    /// Skips Redis for a while after a failure.
    breaker: Breaker,
    /// L2 keys whose delete failed: retried before L2 is read again.
    pending_deletes: Mutex<HashSet<String>>,
    /// When more deletes failed than are kept, L2 is not read until every key written
    /// before then has expired.
    blind_until: Mutex<Option<Instant>>,
    /// Bumped on every invalidation of a key hashing to the stripe: a load that saw a bump
    /// while it read the database does not store its (maybe older) value.
    generations: Vec<AtomicU64>,
    /// Writes in progress on keys hashing to the stripe: no fill is stored meanwhile.
    writing: Vec<AtomicU64>,
    l1: RwLock<Vec<(Kind, Invalidator)>>,
}

/// The application's cache (cheap to clone).
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

const STRIPES: usize = 1024;

impl Cache {
    /// A cache with Redis as L2 when `redis` is given, its metrics registered on `metrics`.
    /// Call `start_invalidation_listener` inside the runtime to receive other instances'
    /// invalidations.
    pub fn new(
        settings: &Settings,
        redis: Option<RedisPool>,
        metrics: &Metrics,
    ) -> Result<Cache, prometheus::Error> {
        let client = settings
            .redis_url
            .as_ref()
            .filter(|_| redis.is_some())
            .and_then(|url| redis::Client::open(url.expose_secret()).ok());
        let cache = Cache::build(
            &settings.redis_prefix,
            redis,
            client,
            metrics.dependency_up.clone(),
        )?;
        metrics.register(Box::new(cache.inner.metrics.requests.clone()));
        metrics.register(Box::new(cache.inner.metrics.errors.clone()));
        Ok(cache)
    }

    /// An L1-only cache whose counters are not exported (tools, engine tests).
    pub fn unregistered() -> Result<Cache, prometheus::Error> {
        let up = IntGaugeVec::new(Opts::new("dependency_up", "unused"), &["dependency"])?;
        Cache::build("points", None, None, up)
    }

    fn build(
        prefix: &str,
        redis: Option<RedisPool>,
        client: Option<redis::Client>,
        dependency_up: IntGaugeVec,
    ) -> Result<Cache, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "cache_requests_total",
                "Cache look-ups by layer, kind and result (hit, miss)",
            ),
            &["layer", "kind", "result"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "cache_errors_total",
                "Redis cache operations that failed (the request was served from the database)",
            ),
            &["op"],
        )?;
        // Every series exists from start-up at 0.
        for kind in Kind::ALL {
            for result in ["hit", "miss"] {
                requests.with_label_values(&[kind.layer(), kind.as_str(), result]);
            }
        }
        for op in ["get", "set", "del", "publish", "subscribe"] {
            errors.with_label_values(&[op]);
        }
        Ok(Cache {
            inner: Arc::new(Inner {
                prefix: prefix.to_string(),
                redis,
                client,
                origin: uuid::Uuid::now_v7().simple().to_string(),
                metrics: CacheMetrics {
                    requests,
                    errors,
                    dependency_up,
                },
                breaker: Breaker::default(),
                pending_deletes: Mutex::new(HashSet::new()),
                blind_until: Mutex::new(None),
                generations: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
                writing: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
                l1: RwLock::new(Vec::new()),
            }),
        })
    }

    pub fn redis_configured(&self) -> bool {
        self.inner.redis.is_some()
    }

    /// The full Redis key of an L2 entry (`{prefix}:user:points:{userId}`).
    pub fn key(&self, kind: Kind, id: &str) -> String {
        format!("{}:{}:{id}", self.inner.prefix, kind.key_space())
    }

    fn count(&self, kind: Kind, hit: bool) {
        self.inner
            .metrics
            .requests
            .with_label_values(&[
                kind.layer(),
                kind.as_str(),
                if hit { "hit" } else { "miss" },
            ])
            .inc();
    }

    fn stripe_index(kind: Kind, id: &str) -> usize {
        let mut h = DefaultHasher::new();
        kind.hash(&mut h);
        id.hash(&mut h);
        (h.finish() as usize) % STRIPES
    }

    fn stripe(&self, kind: Kind, id: &str) -> &AtomicU64 {
        &self.inner.generations[Self::stripe_index(kind, id)]
    }

    fn writing(&self, kind: Kind, id: &str) -> &AtomicU64 {
        &self.inner.writing[Self::stripe_index(kind, id)]
    }

    /// Before a database write of these L2 entries: deletes them and stores no fill of them
    /// until `WriteGuard::end` (which deletes them again). A reader that sees the write's
    /// effect anywhere (another table, another request) then never reads the old entry.
    pub async fn begin_write(&self, kind: Kind, ids: &[Arc<str>]) -> WriteGuard {
        for id in ids {
            self.writing(kind, id).fetch_add(1, Ordering::AcqRel);
        }
        self.invalidate_l2(kind, ids).await;
        WriteGuard {
            cache: self.clone(),
            kind,
            ids: ids.to_vec(),
            ended: false,
        }
    }

    /// An L1 cache of `kind`, registered so that invalidations from other instances reach it.
    pub fn l1<V: Clone + Send + Sync + 'static>(&self, kind: Kind) -> L1<V> {
        let cache: moka::sync::Cache<String, V> = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(kind.ttl())
            .build();
        let for_listener = cache.clone();
        self.inner.l1.write().push((
            kind,
            Box::new(move |key| match key {
                Some(k) => for_listener.invalidate(k),
                None => for_listener.invalidate_all(),
            }),
        ));
        L1 {
            kind,
            cache,
            owner: self.clone(),
        }
    }

    // ---- Redis plumbing ------------------------------------------------------------------

    fn redis_usable(&self) -> Option<&RedisPool> {
        let pool = self.inner.redis.as_ref()?;
        self.inner.breaker.allow().then_some(pool)
    }

    fn redis_failed(&self, op: &str, error: &CacheError) {
        self.inner.metrics.errors.with_label_values(&[op]).inc();
        self.inner
            .metrics
            .dependency_up
            .with_label_values(&["redis"])
            .set(0);
        if self.inner.breaker.trip() {
            tracing::warn!(category = "system", op, error = %error, "redis cache unavailable; serving from the database");
        }
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, CacheError> {
        let pool = self.redis_usable().ok_or(CacheError::Skipped)?;
        let work = async {
            let mut conn = pool.get().await?;
            let v: T = cmd.query_async(&mut *conn).await?;
            Ok::<T, CacheError>(v)
        };
        match tokio::time::timeout(REDIS_TIMEOUT, work).await {
            Ok(Ok(v)) => {
                self.inner
                    .metrics
                    .dependency_up
                    .with_label_values(&["redis"])
                    .set(1);
                Ok(v)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(CacheError::Pool("timed out".into())),
        }
    }

    /// Retries deletes that failed earlier; true when none is left (L2 may be read).
    async fn flush_pending_deletes(&self) -> bool {
        {
            let mut blind = self.inner.blind_until.lock();
            match *blind {
                Some(until) if Instant::now() < until => return false,
                Some(_) => *blind = None,
                None => {}
            }
        }
        let keys: Vec<String> = {
            let pending = self.inner.pending_deletes.lock();
            if pending.is_empty() {
                return true;
            }
            pending.iter().cloned().collect()
        };
        let mut cmd = redis::cmd("DEL");
        for k in &keys {
            cmd.arg(k);
        }
        match self.run::<i64>(cmd).await {
            Ok(_) => {
                let mut pending = self.inner.pending_deletes.lock();
                for k in &keys {
                    pending.remove(k);
                }
                pending.is_empty()
            }
            Err(CacheError::Skipped) => false,
            Err(e) => {
                self.redis_failed("del", &e);
                false
            }
        }
    }

    // ---- L2: cache-aside -----------------------------------------------------------------

    /// Cache-aside read of an L2 kind: Redis first, else `load` from the database and fill
    /// the key. Redis trouble only costs the cache: the database answers.
    pub async fn get_or_load<T, E, F, Fut>(&self, kind: Kind, id: &str, load: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        if self.inner.redis.is_none() {
            return load().await;
        }
        let key = self.key(kind, id);
        let readable = self.flush_pending_deletes().await;
        if readable {
            match self
                .run::<Option<String>>(redis::cmd("GET").arg(&key).clone())
                .await
            {
                Ok(Some(raw)) => {
                    if let Ok(v) = serde_json::from_str::<T>(&raw) {
                        self.count(kind, true);
                        return Ok(v);
                    }
                }
                Ok(None) => {}
                Err(CacheError::Skipped) => {}
                Err(e) => self.redis_failed("get", &e),
            }
        }
        self.count(kind, false);
        let generation = self.stripe(kind, id).load(Ordering::Acquire);
        let quiet = self.writing(kind, id).load(Ordering::Acquire) == 0;
        let value = load().await?;
        // Store only when no write of this key (on this instance) was running or happened
        // during the load, so an older read cannot overwrite a newer invalidation.
        if readable
            && quiet
            && self.writing(kind, id).load(Ordering::Acquire) == 0
            && self.stripe(kind, id).load(Ordering::Acquire) == generation
            && let Ok(raw) = serde_json::to_string(&value)
        {
            let cmd = redis::cmd("SET")
                .arg(&key)
                .arg(raw)
                .arg("EX")
                .arg(kind.ttl().as_secs().max(1))
                .clone();
            match self.run::<()>(cmd).await {
                Ok(()) | Err(CacheError::Skipped) => {}
                Err(e) => self.redis_failed("set", &e),
            }
        }
        Ok(value)
    }

    /// Deletes L2 entries after their database write committed. A failed delete is kept and
    /// retried before L2 is read again.
    pub async fn invalidate_l2<I: AsRef<str>>(&self, kind: Kind, ids: &[I]) {
        if ids.is_empty() {
            return;
        }
        for id in ids {
            self.stripe(kind, id.as_ref())
                .fetch_add(1, Ordering::AcqRel);
        }
        if self.inner.redis.is_none() {
            return;
        }
        let keys: Vec<String> = ids.iter().map(|id| self.key(kind, id.as_ref())).collect();
        let mut cmd = redis::cmd("DEL");
        for k in &keys {
            cmd.arg(k);
        }
        match self.run::<i64>(cmd).await {
            Ok(_) => {}
            Err(e) => {
                if !matches!(e, CacheError::Skipped) {
                    self.redis_failed("del", &e);
                }
                let mut pending = self.inner.pending_deletes.lock();
                pending.extend(keys);
                if pending.len() > MAX_PENDING_DELETES {
                    // Too many to remember: forget them, and read no L2 entry until every
                    // entry that may be stale has expired.
                    pending.clear();
                    *self.inner.blind_until.lock() = Some(Instant::now() + MAX_L2_TTL);
                }
            }
        }
    }

    // ---- L1 invalidation across instances ------------------------------------------------

    fn invalidate_local(&self, kind: Kind, key: Option<&str>) {
        for (k, f) in self.inner.l1.read().iter() {
            if *k == kind {
                f(key);
            }
        }
    }

    fn channel(&self) -> String {
        format!("{}:cache:invalidate", self.inner.prefix)
    }

    /// Drops an L1 entry here and tells the other instances to drop theirs.
    pub async fn invalidate_l1(&self, kind: Kind, key: &str) {
        self.invalidate_local(kind, Some(key));
        if self.inner.redis.is_none() {
            return;
        }
        let message = format!("{}\n{}\n{key}", self.inner.origin, kind.as_str());
        let cmd = redis::cmd("PUBLISH")
            .arg(self.channel())
            .arg(message)
            .clone();
        match self.run::<i64>(cmd).await {
            Ok(_) | Err(CacheError::Skipped) => {}
            Err(e) => self.redis_failed("publish", &e),
        }
    }

    /// Subscribes to other instances' invalidations (and re-subscribes after Redis comes
    /// back, clearing L1 first: messages may have been missed meanwhile).
    pub fn start_invalidation_listener(&self) {
        let Some(client) = self.inner.client.clone() else {
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            use futures_util::StreamExt;
            let mut first = true;
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let cache = Cache { inner };
                let channel = cache.channel();
                let subscribed = async {
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.subscribe(&channel).await?;
                    Ok::<_, redis::RedisError>(pubsub)
                };
                match tokio::time::timeout(Duration::from_secs(2), subscribed).await {
                    Ok(Ok(pubsub)) => {
                        if !first {
                            for kind in Kind::ALL {
                                cache.invalidate_local(kind, None);
                            }
                            tracing::info!(
                                category = "system",
                                "cache invalidation channel back; L1 cleared"
                            );
                        }
                        let origin = cache.inner.origin.clone();
                        let weak_inner = Arc::downgrade(&cache.inner);
                        drop(cache);
                        let mut stream = pubsub.into_on_message();
                        while let Some(msg) = stream.next().await {
                            let Some(inner) = weak_inner.upgrade() else {
                                return;
                            };
                            let cache = Cache { inner };
                            let Ok(payload) = msg.get_payload::<String>() else {
                                continue;
                            };
                            let mut parts = payload.splitn(3, '\n');
                            let (Some(from), Some(kind), Some(key)) =
                                (parts.next(), parts.next(), parts.next())
                            else {
                                continue;
                            };
                            if from == origin {
                                continue;
                            }
                            if let Some(kind) = Kind::parse(kind) {
                                cache.invalidate_local(kind, Some(key));
                            }
                        }
                    }
                    Ok(Err(e)) => {
                        cache.redis_failed("subscribe", &CacheError::Redis(e));
                        drop(cache);
                    }
                    Err(_) => {
                        cache.redis_failed("subscribe", &CacheError::Pool("timed out".into()));
                        drop(cache);
                    }
                }
                // The connection ended or failed: try again shortly.
                first = false;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

/// A write in progress on L2 entries (see `Cache::begin_write`). `end` must be awaited;
/// dropped without it, it still lets fills resume (and the entries expire by their TTL).
pub struct WriteGuard {
    cache: Cache,
    kind: Kind,
    ids: Vec<Arc<str>>,
    ended: bool,
}

impl WriteGuard {
    /// After the write committed (or failed): deletes the entries again, then allows fills.
    pub async fn end(mut self) {
        self.cache.invalidate_l2(self.kind, &self.ids).await;
        self.release();
    }

    fn release(&mut self) {
        if !self.ended {
            self.ended = true;
            for id in &self.ids {
                self.cache
                    .writing(self.kind, id)
                    .fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        self.release();
    }
}

/// An in-process cache of one kind (moka, TTL by kind), counted in `cache_requests_total`.
pub struct L1<V: Clone + Send + Sync + 'static> {
    kind: Kind,
    cache: moka::sync::Cache<String, V>,
    owner: Cache,
}

impl<V: Clone + Send + Sync + 'static> L1<V> {
    pub fn get(&self, key: &str) -> Option<V> {
        let v = self.cache.get(key);
        self.owner.count(self.kind, v.is_some());
        v
    }

    pub fn put(&self, key: &str, value: V) {
        self.cache.insert(key.to_string(), value);
    }

    /// Drops the entry here only (a value this instance knows better, e.g. just revoked).
    pub fn invalidate_here(&self, key: &str) {
        self.cache.invalidate(key);
    }

    /// Drops the entry here and on every other instance.
    pub async fn invalidate(&self, key: &str) {
        self.owner.invalidate_l1(self.kind, key).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_source_design() {
        let cache = Cache::unregistered().unwrap();
        assert_eq!(cache.key(Kind::Balance, "u-1"), "points:user:points:u-1");
        assert_eq!(
            cache.key(Kind::MerchantStats, "m-1:2026-11-01:2026-11-02"),
            "points:merchant:stats:m-1:2026-11-01:2026-11-02"
        );
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
            if kind.layer() == "l2" {
                assert!(kind.ttl() <= MAX_L2_TTL, "{kind:?}");
            }
        }
    }

    #[test]
    fn l1_entries_are_dropped_by_kind() {
        let cache = Cache::unregistered().unwrap();
        let merchants: L1<String> = cache.l1(Kind::Merchant);
        let sessions: L1<String> = cache.l1(Kind::Session);
        merchants.put("k", "m".into());
        sessions.put("k", "s".into());
        cache.invalidate_local(Kind::Merchant, Some("k"));
        assert_eq!(merchants.get("k"), None);
        assert_eq!(sessions.get("k").as_deref(), Some("s"));
        cache.invalidate_local(Kind::Session, None);
        assert_eq!(sessions.get("k"), None);
    }

    #[test]
    fn the_breaker_skips_redis_for_a_while_after_a_failure() {
        let b = Breaker::default();
        assert!(b.allow());
        assert!(b.trip());
        assert!(!b.trip(), "already open");
        assert!(!b.allow());
    }
}
