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
