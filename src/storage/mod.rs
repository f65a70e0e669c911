//! Storage: one async data-access path for MySQL (diesel-async `AsyncMysqlConnection`) and
//! SQLite (diesel's `SqliteConnection` behind `SyncConnectionWrapper`), both pooled by bb8.
//!
//! Each query is written once and run on either backend through [`with_conn!`].

pub mod admins;
pub mod bill_fees;
pub mod field_keys;
pub mod group_commit;
pub mod leases;
pub mod merchants;
pub mod migrate;
pub mod orders;
pub mod outbox;
pub mod reconciliation;
pub mod refunds;
pub mod reuse;
pub mod schema;
pub mod settlement;
pub mod shop;
pub mod staff;
pub mod stats;
pub mod subscribe;
pub mod users;

use std::time::Duration;

use diesel::SqliteConnection;
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::FutureExt;
use secrecy::ExposeSecret;

use crate::config::{DatabaseKind, Settings};

pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;
pub type MysqlPool = Pool<AsyncMysqlConnection>;
pub type SqlitePool = Pool<SqliteConn>;
type Pooled<C> = bb8::PooledConnection<'static, AsyncDieselConnectionManager<C>>;

/// A pooled connection to whichever backend is configured.
pub enum Conn {
    Mysql(Pooled<AsyncMysqlConnection>),
    Sqlite(Pooled<SqliteConn>),
}

/// Runs the same diesel-async code on either backend: `with_conn!(conn, |c| expr)`, where
/// `c` is `&mut AsyncMysqlConnection` or `&mut SqliteConn` and `expr` is usually an `.await`.
#[macro_export]
macro_rules! with_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::storage::Conn::Mysql(pooled) => {
                let $c: &mut diesel_async::AsyncMysqlConnection = &mut *pooled;
                $body
            }
            $crate::storage::Conn::Sqlite(pooled) => {
                let $c: &mut $crate::storage::SqliteConn = &mut *pooled;
                $body
            }
        }
    };
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database pool: {0}")]
    Pool(String),
    #[error("database: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database connection: {0}")]
    Connection(#[from] diesel::ConnectionError),
    #[error("migration: {0}")]
    Migration(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A stored value this code never writes (say an unknown status): refused, never guessed.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl StorageError {
    /// True when the error is a unique-key violation: the idempotency signal.
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            StorageError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

impl<E: std::fmt::Display + std::fmt::Debug> From<bb8::RunError<E>> for StorageError {
    fn from(e: bb8::RunError<E>) -> Self {
        StorageError::Pool(match e {
            bb8::RunError::User(e) => e.to_string(),
            bb8::RunError::TimedOut => "timed out waiting for a connection".into(),
        })
    }
}

impl From<diesel_async::pooled_connection::PoolError> for StorageError {
    fn from(e: diesel_async::pooled_connection::PoolError) -> Self {
        StorageError::Pool(e.to_string())
    }
}

/// The database: a MySQL pool, or SQLite with a pool for reads and a single writer
/// connection (SQLite allows one writer; queuing in the pool beats `SQLITE_BUSY`).
#[derive(Clone)]
pub enum Db {
    Mysql(MysqlPool),
    Sqlite { read: SqlitePool, write: SqlitePool },
}

/// Applies the pending migrations to the configured database (under the migration lock)
/// without connecting a pool: `points-app migrate`. Returns the versions applied.
pub async fn migrate(settings: &Settings) -> Result<Vec<String>, StorageError> {
    match settings.database_kind() {
        DatabaseKind::Mysql => {
            let url = settings
                .database_url
                .as_ref()
                .map(|u| u.expose_secret().to_string())
                .unwrap_or_default();
            migrate::run_mysql(&url).await
        }
        DatabaseKind::Sqlite => {
            let path = settings.sqlite_path();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            migrate::run_sqlite(&path.to_string_lossy()).await
        }
    }
}

impl Db {
    /// Connects to the configured database and applies pending migrations (under a lock).
    pub async fn connect(settings: &Settings) -> Result<Db, StorageError> {
        let db = match settings.database_kind() {
            DatabaseKind::Mysql => {
                let url = settings
                    .database_url
                    .as_ref()
                    .map(|u| u.expose_secret().to_string())
                    .unwrap_or_default();
                migrate::run_mysql(&url).await?;
                let mut config = ManagerConfig::<AsyncMysqlConnection>::default();
                config.recycling_method = RecyclingMethod::Fast;
                let manager = AsyncDieselConnectionManager::new_with_config(url, config);
                let pool = Pool::builder()
                    .max_size(settings.db_pool_size)
                    .connection_timeout(Duration::from_secs(10))
                    .build(manager)
                    .await?;
                Db::Mysql(pool)
            }
            DatabaseKind::Sqlite => {
                let path = settings.sqlite_path();
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                let url = path.to_string_lossy().to_string();
                migrate::run_sqlite(&url).await?;
                let read = sqlite_pool(&url, settings.db_pool_size.clamp(1, 8)).await?;
                let write = sqlite_pool(&url, 1).await?;
                Db::Sqlite { read, write }
            }
        };
        Ok(db)
    }

    pub fn kind(&self) -> DatabaseKind {
        match self {
            Db::Mysql(_) => DatabaseKind::Mysql,
            Db::Sqlite { .. } => DatabaseKind::Sqlite,
        }
    }

    /// A connection for reads (and, on MySQL, writes).
    pub async fn conn(&self) -> Result<Conn, StorageError> {
        Ok(match self {
            Db::Mysql(pool) => Conn::Mysql(pool.get_owned().await?),
            Db::Sqlite { read, .. } => Conn::Sqlite(read.get_owned().await?),
        })
    }

    /// A connection for writes: on SQLite the single writer.
    pub async fn write_conn(&self) -> Result<Conn, StorageError> {
        Ok(match self {
            Db::Mysql(pool) => Conn::Mysql(pool.get_owned().await?),
            Db::Sqlite { write, .. } => Conn::Sqlite(write.get_owned().await?),
        })
    }

    /// Readiness: a round trip to the database.
    pub async fn ping(&self) -> Result<(), StorageError> {
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, |c| {
            diesel::sql_query("SELECT 1").execute(c).await
        })?;
        Ok(())
    }

    /// Pool usage for metrics: (connections, idle connections).
    pub fn pool_state(&self) -> (u32, u32) {
        match self {
            Db::Mysql(pool) => {
                let s = pool.state();
                (s.connections, s.idle_connections)
            }
            Db::Sqlite { read, write } => {
                let (r, w) = (read.state(), write.state());
                (
                    r.connections + w.connections,
                    r.idle_connections + w.idle_connections,
                )
            }
        }
    }
}

/// Connection set-up for SQLite: WAL so readers never block the writer, a busy timeout,
/// and foreign keys on.
pub(crate) async fn establish_sqlite(url: &str) -> diesel::ConnectionResult<SqliteConn> {
    let mut conn = SqliteConn::establish(url).await?;
    conn.batch_execute(
        // busy_timeout first: switching to WAL needs a lock that another connection
        // (a closing pool checkpointing its WAL) may hold for a moment.
        "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )
    .await
    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

async fn sqlite_pool(url: &str, size: u32) -> Result<SqlitePool, StorageError> {
    let mut config = ManagerConfig::<SqliteConn>::default();
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(|url| establish_sqlite(url).boxed());
    let manager = AsyncDieselConnectionManager::new_with_config(url, config);
    Ok(Pool::builder()
        .max_size(size)
        .connection_timeout(Duration::from_secs(10))
        .build(manager)
        .await?)
}
