//! Order leases: which instance closes or re-queries an open order, and until when.
//!
//! Every instance watches the orders it created, and rescans the database for open orders
//! that are due (past their expiry, or paying without an answer) so that an order whose
//! instance died is still closed or re-queried. Before it acts on one, an instance claims the
//! order's lease: a compare-and-set that succeeds only when nobody holds it, the claimant
//! already holds it, or the holder's lease has run out (the holder died or hung). So exactly
//! one live instance acts on each due order, and a dead one's orders pass to another once its
//! leases expire. The status compare-and-set stays the guard of correctness; the lease only
//! keeps two instances from calling WeChat about the same order at once.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::order_leases;
use super::{Db, StorageError};
use crate::with_conn;

/// Claims (or renews) the lease on `order_no` for `owner` until `until`. True when `owner`
/// now holds it; false when another owner holds a lease that has not run out at `now`.
pub async fn claim(
    db: &Db,
    order_no: &str,
    owner: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> Result<bool, StorageError> {
    let mut conn = db.write_conn().await?;
    let taken = with_conn!(&mut conn, |c| {
        // `claims` always changes, so the row counts as changed even when the rest is equal
        // (MySQL counts changed rows, not matched ones).
        diesel::update(
            order_leases::table
                .filter(order_leases::order_no.eq(order_no))
                .filter(
                    order_leases::owner
                        .eq(owner)
                        .or(order_leases::lease_until.lt(now)),
                ),
        )
        .set((
            order_leases::owner.eq(owner),
            order_leases::lease_until.eq(until),
            order_leases::claims.eq(order_leases::claims + 1),
        ))
        .execute(c)
        .await
    })?;
    if taken == 1 {
        return Ok(true);
    }
    let inserted = with_conn!(&mut conn, |c| {
        diesel::insert_into(order_leases::table)
            .values((
                order_leases::order_no.eq(order_no),
                order_leases::owner.eq(owner),
                order_leases::lease_until.eq(until),
                order_leases::claims.eq(1_i64),
            ))
            .execute(c)
            .await
    });
    match inserted.map_err(StorageError::from) {
        Ok(_) => Ok(true),
        // The row exists and its holder's lease is live (or another claimant inserted first).
        Err(e) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Gives the lease up (the order reached a final state): deletes it if `owner` holds it.
pub async fn release(db: &Db, order_no: &str, owner: &str) -> Result<(), StorageError> {
    let mut conn = db.write_conn().await?;
    with_conn!(&mut conn, |c| {
        diesel::delete(
            order_leases::table
                .filter(order_leases::order_no.eq(order_no))
                .filter(order_leases::owner.eq(owner)),
        )
        .execute(c)
        .await
    })?;
    Ok(())
}

/// Of `order_nos`, those whose lease another owner holds at `now`.
pub async fn held_elsewhere(
    db: &Db,
    order_nos: &[&str],
    owner: &str,
    now: NaiveDateTime,
) -> Result<HashSet<String>, StorageError> {
    if order_nos.is_empty() {
        return Ok(HashSet::new());
    }
    let mut conn = db.conn().await?;
    let held: Vec<String> = with_conn!(&mut conn, |c| {
        order_leases::table
            .filter(order_leases::order_no.eq_any(order_nos))
            .filter(order_leases::owner.ne(owner))
            .filter(order_leases::lease_until.ge(now))
            .select(order_leases::order_no)
            .load(c)
            .await
    })?;
    Ok(held.into_iter().collect())
}

/// Deletes leases that ran out before `before` (their orders are final, or will be claimed
/// again when due). Returns how many.
pub async fn prune(db: &Db, before: NaiveDateTime) -> Result<usize, StorageError> {
    let mut conn = db.write_conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        diesel::delete(order_leases::table.filter(order_leases::lease_until.lt(before)))
            .execute(c)
            .await
    })?)
}
