//! Prepared statements kept for writes of a fixed shape.
//!
//! diesel never keeps the prepared statement of an `UPDATE` or of an `INSERT` with optional
//! columns: a changeset with optional fields, or a `DEFAULT` in place of a missing value,
//! changes the SQL. On MySQL every such write is then three commands (prepare, execute,
//! close) where one would do, and the database parses it each time. [`Reuse`] marks a
//! statement as safe to keep: diesel's statement cache then keys it by its SQL text and bind
//! types, so a write of another shape gets its own entry and never a wrong one. Use it only
//! where the number of shapes is small (not for multi-row inserts, whose SQL grows with the
//! row count): each shape is one statement kept per connection.
//!
//! The mark holds where the statement is passed by value, as diesel-async does (MySQL and
//! the SQLite wrapper, which is all the server uses); diesel's synchronous API passes it by
//! reference, and the reference's default answer ignores the mark.

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::result::QueryResult;

/// A statement whose prepared form is kept per connection (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Reuse<Q>(pub Q);

impl<Q> QueryId for Reuse<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: QueryFragment<DB>, DB: Backend> QueryFragment<DB> for Reuse<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use diesel::connection::InstrumentationEvent;
    use diesel::prelude::*;
    use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};

    use super::Reuse;
    use crate::storage::SqliteConn;

    diesel::table! {
        counters (id) {
            id -> Integer,
            n -> Integer,
        }
    }

    /// The server's SQLite connection (diesel-async's wrapper, as the writers use it), with
    /// the SQL of every statement its cache keeps recorded.
    async fn connection() -> (SqliteConn, Arc<Mutex<Vec<String>>>) {
        let mut c = SqliteConn::establish(":memory:").await.unwrap();
        c.batch_execute(
            "CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
             INSERT INTO counters (id, n) VALUES (1, 0);",
        )
        .await
        .unwrap();
        let kept = Arc::new(Mutex::new(Vec::new()));
        let seen = kept.clone();
        c.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { sql, .. } = event {
                seen.lock().unwrap().push(sql.to_string());
            }
        });
        (c, kept)
    }

    fn kept_updates(kept: &Mutex<Vec<String>>) -> Vec<String> {
        let kept = kept.lock().unwrap();
        kept.iter()
            .filter(|sql| sql.starts_with("UPDATE"))
            .cloned()
            .collect()
    }

    fn run(test: impl std::future::Future<Output = ()>) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(test);
    }

    #[test]
    fn a_reused_write_is_prepared_once_and_still_writes_each_time() {
        run(async {
            let (mut c, kept) = connection().await;
            for n in 1..=3 {
                let write = Reuse(diesel::update(counters::table.find(1)).set(counters::n.eq(n)));
                assert_eq!(write.execute(&mut c).await.unwrap(), 1);
                let stored: i32 = counters::table
                    .select(counters::n)
                    .first(&mut c)
                    .await
                    .unwrap();
                assert_eq!(stored, n, "each execution binds its own values");
            }
            let updates = kept_updates(&kept);
            assert_eq!(updates.len(), 1, "kept once, reused after: {updates:?}");
        });
    }

    #[test]
    fn a_plain_update_is_never_kept() {
        run(async {
            let (mut c, kept) = connection().await;
            for n in 1..=2 {
                diesel::update(counters::table.find(1))
                    .set(counters::n.eq(n))
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
            assert!(
                kept_updates(&kept).is_empty(),
                "diesel keeps no UPDATE by itself (what Reuse is for)"
            );
        });
    }
}
