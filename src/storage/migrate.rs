//! Embedded migrations, applied at start-up under a lock so several instances can start
//! at once: MySQL's `GET_LOCK`, and an exclusive file lock beside an SQLite database.
//!
//! diesel-async's migration harness blocks in place, which a current-thread runtime (actix's)
//! forbids, so migrations run on a small runtime of their own on a blocking thread.

use std::future::Future;

use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncMigrationHarness, AsyncMysqlConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{StorageError, establish_sqlite};

pub const MYSQL_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

const MYSQL_LOCK: &str = "points_app_migrations";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Apply what is pending.
    Up,
    /// Revert everything, then apply everything again (used by the migration tests).
    DownUp,
}

#[derive(QueryableByName)]
struct LockResult {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
    locked: Option<i32>,
}

/// Applies what is pending; returns the versions applied (empty: the schema was current).
pub async fn run_mysql(url: &str) -> Result<Vec<String>, StorageError> {
    mysql_versions(url, Direction::Up).await
}

/// Applies what is pending; returns the versions applied (empty: the schema was current).
pub async fn run_sqlite(path: &str) -> Result<Vec<String>, StorageError> {
    sqlite_versions(path, Direction::Up).await
}

pub async fn migrate_mysql(url: &str, direction: Direction) -> Result<(), StorageError> {
    mysql_versions(url, direction).await.map(drop)
}

pub async fn migrate_sqlite(path: &str, direction: Direction) -> Result<(), StorageError> {
    sqlite_versions(path, direction).await.map(drop)
}

async fn mysql_versions(url: &str, direction: Direction) -> Result<Vec<String>, StorageError> {
    let url = url.to_string();
    on_own_runtime(move || async move {
        let mut conn = AsyncMysqlConnection::establish(&url).await?;
        let lock: LockResult =
            diesel::sql_query(format!("SELECT GET_LOCK('{MYSQL_LOCK}', 300) AS locked"))
                .get_result(&mut conn)
                .await?;
        if lock.locked != Some(1) {
            return Err(StorageError::Migration(
                "timed out waiting for the migration lock".into(),
            ));
        }
        let mut harness = AsyncMigrationHarness::new(conn);
        let result = apply(&mut harness, || MYSQL_MIGRATIONS, direction);
        let mut conn = harness.into_inner();
        diesel::sql_query(format!("SELECT RELEASE_LOCK('{MYSQL_LOCK}')"))
            .execute(&mut conn)
            .await?;
        result
    })
    .await
}

async fn sqlite_versions(path: &str, direction: Direction) -> Result<Vec<String>, StorageError> {
    let path = path.to_string();
    on_own_runtime(move || async move {
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(format!("{path}.migrate.lock"))?;
        lock_file.lock()?;
        let conn = establish_sqlite(&path).await?;
        let mut harness = AsyncMigrationHarness::new(conn);
        let result = apply(&mut harness, || SQLITE_MIGRATIONS, direction);
        drop(harness);
        lock_file.unlock()?;
        result
    })
    .await
}

fn apply<H, B>(
    harness: &mut H,
    migrations: impl Fn() -> EmbeddedMigrations,
    direction: Direction,
) -> Result<Vec<String>, StorageError>
where
    H: MigrationHarness<B>,
    B: diesel::backend::Backend,
    EmbeddedMigrations: diesel::migration::MigrationSource<B>,
{
    let err = |e: Box<dyn std::error::Error + Send + Sync>| StorageError::Migration(e.to_string());
    if direction == Direction::DownUp {
        harness.revert_all_migrations(migrations()).map_err(err)?;
    }
    let applied = harness.run_pending_migrations(migrations()).map_err(err)?;
    let mut versions = Vec::with_capacity(applied.len());
    for version in applied {
        tracing::info!(category = "system", %version, "migration applied");
        versions.push(version.to_string());
    }
    Ok(versions)
}

async fn on_own_runtime<F, Fut, T>(make: F) -> Result<T, StorageError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, StorageError>>,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        runtime.block_on(make())
    })
    .await
    .map_err(|e| StorageError::Migration(format!("migration thread failed: {e}")))?
}
