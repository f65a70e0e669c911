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

    use diesel::connection::{Connection, Instrumentation, InstrumentationEvent};
    use diesel::prelude::*;

    use super::Reuse;

    diesel::table! {
        counters (id) {
            id -> Integer,
            n -> Integer,
        }
    }

    /// A connection that records the SQL of every statement its cache keeps.
    fn connection() -> (SqliteConnection, Arc<Mutex<Vec<String>>>) {
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        diesel::sql_query("CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
            .execute(&mut c)
            .unwrap();
        diesel::sql_query("INSERT INTO counters (id, n) VALUES (1, 0)")
            .execute(&mut c)
            .unwrap();
        let kept = Arc::new(Mutex::new(Vec::new()));
        let seen = kept.clone();
        let recorder = move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { sql, .. } = event {
                seen.lock().unwrap().push(sql.to_string());
            }
        };
        let boxed: Box<dyn Instrumentation> = Box::new(recorder);
        c.set_instrumentation(boxed);
        (c, kept)
    }

    fn bump(c: &mut SqliteConnection, to: i32) -> usize {
        let write = Reuse(diesel::update(counters::table.find(1)).set(counters::n.eq(to)));
        c.execute_returning_count(&write).unwrap()
    }

    #[test]
    fn a_reused_write_is_prepared_once_and_still_writes_each_time() {
        let (mut c, kept) = connection();
        for n in 1..=3 {
            assert_eq!(bump(&mut c, n), 1);
            let stored: i32 = counters::table.select(counters::n).first(&mut c).unwrap();
            assert_eq!(stored, n, "each execution binds its own values");
        }
        let updates: Vec<String> = kept
            .lock()
            .unwrap()
            .iter()
            .filter(|sql| sql.starts_with("UPDATE"))
            .cloned()
            .collect();
        assert_eq!(updates.len(), 1, "kept once, reused after: {updates:?}");
    }

    #[test]
    fn a_plain_update_is_never_kept() {
        let (mut c, kept) = connection();
        for n in 1..=2 {
            diesel::update(counters::table.find(1))
                .set(counters::n.eq(n))
                .execute(&mut c)
                .unwrap();
        }
        assert!(
            !kept
                .lock()
                .unwrap()
                .iter()
                .any(|sql| sql.starts_with("UPDATE")),
            "diesel keeps no UPDATE by itself (what Reuse is for)"
        );
    }
}
