//! Merchant staff (managers and cashiers) and their one-time invite codes. Every change
//! writes its audit row in the same transaction.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::admins::AuditRow;
use super::schema::{audit_log, merchant_staff, merchant_staff_invites, merchants, users};
use super::{Db, StorageError};
use crate::with_conn;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = merchant_staff)]
pub struct StaffRow {
    pub merchant_id: String,
    pub user_id: String,
    pub role: String,
    pub invited_by: String,
    pub invite_id: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = merchant_staff_invites)]
pub struct InviteRow {
    pub id: String,
    pub code_hash: String,
    pub merchant_id: String,
    pub role: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub redeemed_by: Option<String>,
    pub redeemed_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

/// An audit row's before or after: whose role (a staff member's or an invite's) it was.
fn role_json(who: (&str, &str), role: &str) -> Option<String> {
    Some(serde_json::json!({ who.0: who.1, "role": role }).to_string())
}

/// The staff role of `user_id` at `merchant_id` (`None`: not staff there). One primary-key
/// lookup: what a change re-checks before acting.
pub async fn role_of(
    db: &Db,
    merchant_id: &str,
    user_id: &str,
) -> Result<Option<String>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        merchant_staff::table
            .find((merchant_id, user_id))
            .select(merchant_staff::role)
            .first::<String>(c)
            .await
            .optional()
    })?)
}

/// The merchants `user_id` works at, as (merchant id, role), oldest first, at most `limit`.
pub async fn memberships(
    db: &Db,
    user_id: &str,
    limit: i64,
) -> Result<Vec<(String, String)>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        merchant_staff::table
            .filter(merchant_staff::user_id.eq(user_id))
            .order((
                merchant_staff::created_at.asc(),
                merchant_staff::merchant_id.asc(),
            ))
            .limit(limit)
            .select((merchant_staff::merchant_id, merchant_staff::role))
            .load(c)
            .await
    })?)
}

/// The merchants `user_id` works at, with their rows (at most 100, newest first).
pub async fn merchants_of_member(
    db: &Db,
    user_id: &str,
) -> Result<Vec<(super::merchants::MerchantRow, String)>, StorageError> {
    use super::merchants::MerchantRow;
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        merchant_staff::table
            .inner_join(merchants::table.on(merchants::id.eq(merchant_staff::merchant_id)))
            .filter(merchant_staff::user_id.eq(user_id))
            .order(merchant_staff::created_at.desc())
            .limit(100)
            .select((MerchantRow::as_select(), merchant_staff::role))
            .load(c)
            .await
    })?)
}

/// A merchant's staff with each one's nickname, oldest first (at most 500).
pub async fn list(
    db: &Db,
    merchant_id: &str,
) -> Result<Vec<(StaffRow, Option<String>)>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        merchant_staff::table
            .inner_join(users::table.on(users::id.eq(merchant_staff::user_id)))
            .filter(merchant_staff::merchant_id.eq(merchant_id))
            .order((
                merchant_staff::created_at.asc(),
                merchant_staff::user_id.asc(),
            ))
            .limit(500)
            .select((StaffRow::as_select(), users::nickname))
            .load(c)
            .await
    })?)
}

/// The outcome of [`insert_invite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteInsert {
    Inserted,
    /// The merchant already has `cap` pending invites; nothing was written.
    AtCap,
}

/// Inserts an invite with its audit row, unless the merchant already has `cap` pending ones
/// (counted under the merchant row's lock, so concurrent invites cannot pass the cap).
pub async fn insert_invite(
    db: &Db,
    row: &InviteRow,
    cap: i64,
    now: NaiveDateTime,
    mut audit: AuditRow,
) -> Result<InviteInsert, StorageError> {
    let mut conn = db.write_conn().await?;
    audit.after_json = role_json(("invite_id", &row.id), &row.role);
    Ok(with_conn!(&mut conn, |c| {
        c.transaction::<_, diesel::result::Error, _>(async |c| {
            // Lock first (the row on MySQL, the database on SQLite): see merchants::insert_capped.
            diesel::update(merchants::table.find(&row.merchant_id))
                .set(merchants::updated_at.eq(merchants::updated_at))
                .execute(c)
                .await?;
            let pending: i64 = merchant_staff_invites::table
                .filter(merchant_staff_invites::merchant_id.eq(&row.merchant_id))
                .filter(merchant_staff_invites::redeemed_at.is_null())
                .filter(merchant_staff_invites::revoked_at.is_null())
                .filter(merchant_staff_invites::expires_at.gt(now))
                .count()
                .get_result(c)
                .await?;
            if pending >= cap {
                return Ok(InviteInsert::AtCap);
            }
            diesel::insert_into(merchant_staff_invites::table)
                .values(row)
                .execute(c)
                .await?;
            diesel::insert_into(audit_log::table)
                .values(&audit)
                .execute(c)
                .await?;
            Ok(InviteInsert::Inserted)
        })
        .await
    })?)
}

/// A merchant's invites not yet redeemed, revoked or expired, newest first.
pub async fn pending_invites(
    db: &Db,
    merchant_id: &str,
    now: NaiveDateTime,
) -> Result<Vec<InviteRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        merchant_staff_invites::table
            .filter(merchant_staff_invites::merchant_id.eq(merchant_id))
            .filter(merchant_staff_invites::redeemed_at.is_null())
            .filter(merchant_staff_invites::revoked_at.is_null())
            .filter(merchant_staff_invites::expires_at.gt(now))
            .order(merchant_staff_invites::created_at.desc())
            .limit(100)
            .select(InviteRow::as_select())
            .load(c)
            .await
    })?)
}

/// Revokes a pending invite of the merchant (compare-and-set: a redeemed, revoked or
/// expired one is left alone) with its audit row; false when there was none to revoke.
pub async fn revoke_invite(
    db: &Db,
    merchant_id: &str,
    invite_id: &str,
    now: NaiveDateTime,
    mut audit: AuditRow,
) -> Result<bool, StorageError> {
    let mut conn = db.write_conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        c.transaction::<_, diesel::result::Error, _>(async |c| {
            let n = diesel::update(
                merchant_staff_invites::table
                    .find(invite_id)
                    .filter(merchant_staff_invites::merchant_id.eq(merchant_id))
                    .filter(merchant_staff_invites::redeemed_at.is_null())
                    .filter(merchant_staff_invites::revoked_at.is_null())
                    .filter(merchant_staff_invites::expires_at.gt(now)),
            )
            .set(merchant_staff_invites::revoked_at.eq(now))
            .execute(c)
            .await?;
            if n != 1 {
                return Ok(false);
            }
            let role: String = merchant_staff_invites::table
                .find(invite_id)
                .select(merchant_staff_invites::role)
                .first(c)
                .await?;
            audit.before_json = role_json(("invite_id", invite_id), &role);
            diesel::insert_into(audit_log::table)
                .values(&audit)
                .execute(c)
                .await?;
            Ok(true)
        })
        .await
    })?)
}

/// The outcome of [`redeem`].
#[derive(Debug, Clone)]
pub enum Redeemed {
    /// No pending invite has this code (unknown, used, revoked or expired): nothing changed.
    Invalid,
    /// The redeemer owns the invite's merchant: nothing changed, the invite stays pending.
    Owner(InviteRow),
    /// The redeemer already works there (with this role): nothing changed.
    AlreadyStaff(InviteRow, String),
    /// The redeemer joined the merchant with the invite's role.
    Joined(InviteRow),
    /// The redeemer had already joined through this very invite (its `role` is their role
    /// now): nothing changed.
    Again(InviteRow),
}

/// Redeems the invite with `code_hash` for `user_id`, as one transaction: the invite is
/// taken by compare-and-set (`redeemed_at IS NULL AND revoked_at IS NULL AND expires_at >
/// now`), so of two concurrent redeems exactly one wins; the staff row and the audit row
/// (its `target_id`, the merchant, is set here) commit with it. A unique-key violation
/// (the user joined through another invite meanwhile) rolls everything back.
pub async fn redeem(
    db: &Db,
    code_hash: &str,
    user_id: &str,
    now: NaiveDateTime,
    mut audit: AuditRow,
) -> Result<Redeemed, StorageError> {
    let mut conn = db.write_conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        c.transaction::<_, diesel::result::Error, _>(async |c| {
            // Lock first: the invite row on MySQL (concurrent redeemers queue here), the
            // database on SQLite.
            diesel::update(
                merchant_staff_invites::table
                    .filter(merchant_staff_invites::code_hash.eq(code_hash)),
            )
            .set(merchant_staff_invites::code_hash.eq(merchant_staff_invites::code_hash))
            .execute(c)
            .await?;
            let invite: Option<InviteRow> = merchant_staff_invites::table
                .filter(merchant_staff_invites::code_hash.eq(code_hash))
                .select(InviteRow::as_select())
                .first(c)
                .await
                .optional()?;
            // The same user redeeming the same code again (a retry after a lost answer)
            // while still staff through it: the same answer, nothing written.
            if let Some(i) = invite
                .as_ref()
                .filter(|i| i.redeemed_by.as_deref() == Some(user_id))
            {
                let through: Option<(String, String)> = merchant_staff::table
                    .find((&i.merchant_id, user_id))
                    .select((merchant_staff::invite_id, merchant_staff::role))
                    .first(c)
                    .await
                    .optional()?;
                if let Some((_, role)) = through.filter(|(id, _)| *id == i.id) {
                    let mut again = i.clone();
                    again.role = role;
                    return Ok(Redeemed::Again(again));
                }
            }
            let Some(invite) = invite.filter(|i| {
                i.redeemed_at.is_none() && i.revoked_at.is_none() && i.expires_at > now
            }) else {
                return Ok(Redeemed::Invalid);
            };
            let owner: Option<String> = merchants::table
                .find(&invite.merchant_id)
                .select(merchants::owner_user_id)
                .first(c)
                .await
                .optional()?;
            if owner.as_deref() == Some(user_id) {
                return Ok(Redeemed::Owner(invite));
            }
            let current: Option<String> = merchant_staff::table
                .find((&invite.merchant_id, user_id))
                .select(merchant_staff::role)
                .first(c)
                .await
                .optional()?;
            if let Some(role) = current {
                return Ok(Redeemed::AlreadyStaff(invite, role));
            }
            let n = diesel::update(
                merchant_staff_invites::table
                    .find(&invite.id)
                    .filter(merchant_staff_invites::redeemed_at.is_null())
                    .filter(merchant_staff_invites::revoked_at.is_null())
                    .filter(merchant_staff_invites::expires_at.gt(now)),
            )
            .set((
                merchant_staff_invites::redeemed_by.eq(user_id),
                merchant_staff_invites::redeemed_at.eq(now),
            ))
            .execute(c)
            .await?;
            if n != 1 {
                return Ok(Redeemed::Invalid);
            }
            diesel::insert_into(merchant_staff::table)
                .values(&StaffRow {
                    merchant_id: invite.merchant_id.clone(),
                    user_id: user_id.to_string(),
                    role: invite.role.clone(),
                    invited_by: invite.created_by.clone(),
                    invite_id: invite.id.clone(),
                    created_at: now,
                    updated_at: now,
                })
                .execute(c)
                .await?;
            audit.target_id = invite.merchant_id.clone();
            audit.after_json = Some(
                serde_json::json!({"user_id": user_id, "role": invite.role, "invite_id": invite.id})
                    .to_string(),
            );
            diesel::insert_into(audit_log::table)
                .values(&audit)
                .execute(c)
                .await?;
            Ok(Redeemed::Joined(invite))
        })
        .await
    })?)
}

/// Changes a staff member's role with its audit row; the role before, or `None` when
/// `user_id` is not staff of the merchant (nothing written).
pub async fn change_role(
    db: &Db,
    merchant_id: &str,
    user_id: &str,
    role: &str,
    now: NaiveDateTime,
    mut audit: AuditRow,
) -> Result<Option<String>, StorageError> {
    let mut conn = db.write_conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        c.transaction::<_, diesel::result::Error, _>(async |c| {
            // Lock first: see insert_invite.
            diesel::update(merchant_staff::table.find((merchant_id, user_id)))
                .set(merchant_staff::updated_at.eq(merchant_staff::updated_at))
                .execute(c)
                .await?;
            let before: Option<String> = merchant_staff::table
                .find((merchant_id, user_id))
                .select(merchant_staff::role)
                .first(c)
                .await
                .optional()?;
            let Some(before) = before else {
                return Ok(None);
            };
            diesel::update(merchant_staff::table.find((merchant_id, user_id)))
                .set((
                    merchant_staff::role.eq(role),
                    merchant_staff::updated_at.eq(now),
                ))
                .execute(c)
                .await?;
            audit.before_json = role_json(("user_id", user_id), &before);
            audit.after_json = role_json(("user_id", user_id), role);
            diesel::insert_into(audit_log::table)
                .values(&audit)
                .execute(c)
                .await?;
            Ok(Some(before))
        })
        .await
    })?)
}

/// Removes a staff member with its audit row; the role they had, or `None` when they were
/// not staff of the merchant (nothing written).
pub async fn remove(
    db: &Db,
    merchant_id: &str,
    user_id: &str,
    mut audit: AuditRow,
) -> Result<Option<String>, StorageError> {
    let mut conn = db.write_conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        c.transaction::<_, diesel::result::Error, _>(async |c| {
            diesel::update(merchant_staff::table.find((merchant_id, user_id)))
                .set(merchant_staff::updated_at.eq(merchant_staff::updated_at))
                .execute(c)
                .await?;
            let before: Option<String> = merchant_staff::table
                .find((merchant_id, user_id))
                .select(merchant_staff::role)
                .first(c)
                .await
                .optional()?;
            let Some(before) = before else {
                return Ok(None);
            };
            diesel::delete(merchant_staff::table.find((merchant_id, user_id)))
                .execute(c)
                .await?;
            audit.before_json = role_json(("user_id", user_id), &before);
            diesel::insert_into(audit_log::table)
                .values(&audit)
                .execute(c)
                .await?;
            Ok(Some(before))
        })
        .await
    })?)
}
