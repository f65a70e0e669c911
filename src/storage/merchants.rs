//! Merchants and their payment codes.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::schema::{merchants, payment_codes};
use super::users::now;
use super::{Db, StorageError};
use crate::with_conn;

pub const MERCHANT_PENDING: &str = "pending";
pub const MERCHANT_APPROVED: &str = "approved";
pub const MERCHANT_DISABLED: &str = "disabled";
pub const CODE_ACTIVE: &str = "active";
pub const CODE_DISABLED: &str = "disabled";

#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = merchants)]
pub struct MerchantRow {
    pub id: String,
    pub owner_user_id: String,
    pub merchant_name: String,
    pub contact_name: String,
    #[serde(skip)]
    pub contact_phone_cipher: String,
    #[serde(skip)]
    pub contact_phone_key_id: String,
    pub contact_phone_masked: String,
    pub business_license: String,
    pub address: String,
    pub status: String,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = payment_codes)]
pub struct PaymentCodeRow {
    pub id: String,
    pub merchant_id: String,
    pub label: String,
    pub amount_fen: Option<i64>,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub async fn insert(db: &Db, row: &MerchantRow) -> Result<(), StorageError> {
    let mut conn = db.write_conn().await?;
    with_conn!(&mut conn, |c| {
        diesel::insert_into(merchants::table)
            .values(row)
            .execute(c)
            .await
    })?;
    Ok(())
}

pub async fn find(db: &Db, id: &str) -> Result<Option<MerchantRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        merchants::table
            .find(id)
            .select(MerchantRow::as_select())
            .first(c)
            .await
            .optional()
    })?)
}

pub async fn list_by_owner(db: &Db, owner: &str) -> Result<Vec<MerchantRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        merchants::table
            .filter(merchants::owner_user_id.eq(owner))
            .order(merchants::id.desc())
            .limit(100)
            .select(MerchantRow::as_select())
            .load(c)
            .await
    })?)
}

pub async fn list_by_status(
    db: &Db,
    status: Option<&str>,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<MerchantRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        let mut q = merchants::table
            .select(MerchantRow::as_select())
            .into_boxed();
        if let Some(s) = status {
            q = q.filter(merchants::status.eq(s.to_string()));
        }
        if let Some(cur) = before_id {
            q = q.filter(merchants::id.lt(cur.to_string()));
        }
        q.order(merchants::id.desc()).limit(limit).load(c).await
    })?)
}

/// Lazy re-encryption of the contact phone, only while the row still holds `old_key` and
/// `old_cipher` (a newer value is never overwritten).
pub async fn rekey_contact_phone(
    db: &Db,
    id: &str,
    (old_key, old_cipher): (&str, &str),
    new_key: &str,
    cipher: &str,
) -> Result<bool, StorageError> {
    let mut conn = db.write_conn().await?;
    let n = with_conn!(&mut conn, |c| {
        diesel::update(
            merchants::table
                .find(id)
                .filter(merchants::contact_phone_key_id.eq(old_key))
                .filter(merchants::contact_phone_cipher.eq(old_cipher)),
        )
        .set((
            merchants::contact_phone_cipher.eq(cipher),
            merchants::contact_phone_key_id.eq(new_key),
        ))
        .execute(c)
        .await
    })?;
    Ok(n == 1)
}

pub async fn insert_code(db: &Db, row: &PaymentCodeRow) -> Result<(), StorageError> {
    let mut conn = db.write_conn().await?;
    with_conn!(&mut conn, |c| {
        diesel::insert_into(payment_codes::table)
            .values(row)
            .execute(c)
            .await
    })?;
    Ok(())
}

pub async fn find_code(db: &Db, id: &str) -> Result<Option<PaymentCodeRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        payment_codes::table
            .find(id)
            .select(PaymentCodeRow::as_select())
            .first(c)
            .await
            .optional()
    })?)
}

/// A payment code with its merchant, in one query (what a scan shows).
pub async fn find_code_with_merchant(
    db: &Db,
    id: &str,
) -> Result<Option<(PaymentCodeRow, MerchantRow)>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        payment_codes::table
            .inner_join(merchants::table.on(merchants::id.eq(payment_codes::merchant_id)))
            .filter(payment_codes::id.eq(id))
            .select((PaymentCodeRow::as_select(), MerchantRow::as_select()))
            .first(c)
            .await
            .optional()
    })?)
}

pub async fn list_codes(
    db: &Db,
    merchant_id: &str,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<PaymentCodeRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        let mut q = payment_codes::table
            .filter(payment_codes::merchant_id.eq(merchant_id.to_string()))
            .select(PaymentCodeRow::as_select())
            .into_boxed();
        if let Some(cur) = before_id {
            q = q.filter(payment_codes::id.lt(cur.to_string()));
        }
        q.order(payment_codes::id.desc()).limit(limit).load(c).await
    })?)
}

/// The ids of every code of a merchant.
pub async fn code_ids(db: &Db, merchant_id: &str) -> Result<Vec<String>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        payment_codes::table
            .filter(payment_codes::merchant_id.eq(merchant_id))
            .select(payment_codes::id)
            .load(c)
            .await
    })?)
}

/// Disables a code of this merchant; false when no such code belongs to it.
pub async fn disable_code(db: &Db, merchant_id: &str, code_id: &str) -> Result<bool, StorageError> {
    let mut conn = db.write_conn().await?;
    let t = now();
    let n = with_conn!(&mut conn, |c| {
        diesel::update(
            payment_codes::table
                .find(code_id)
                .filter(payment_codes::merchant_id.eq(merchant_id)),
        )
        .set((
            payment_codes::status.eq(CODE_DISABLED),
            payment_codes::updated_at.eq(t),
        ))
        .execute(c)
        .await
    })?;
    Ok(n == 1)
}

/// The outcome of [`insert_capped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CappedInsert {
    Inserted,
    /// The owner already has `cap` merchants; nothing was written.
    AtCap,
}

/// Inserts the merchant unless its owner already has `cap`, as one transaction.
///
/// The first statement is a no-op write to the owner's row: on MySQL/MariaDB it takes that
/// row's lock (what `SELECT ... FOR UPDATE` would, in a statement SQLite also accepts), so
/// concurrent registrations of one owner count one after the other; on SQLite a write as
/// the first statement takes the database's write lock at once (a deferred transaction that
/// reads first could fail with `SQLITE_BUSY` against another instance instead of waiting).
pub async fn insert_capped(
    db: &Db,
    row: &MerchantRow,
    cap: i64,
) -> Result<CappedInsert, StorageError> {
    use super::schema::users;
    let mut conn = db.write_conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        c.transaction::<_, diesel::result::Error, _>(async |c| {
            diesel::update(users::table.find(&row.owner_user_id))
                .set(users::updated_at.eq(users::updated_at))
                .execute(c)
                .await?;
            let count: i64 = merchants::table
                .filter(merchants::owner_user_id.eq(&row.owner_user_id))
                .count()
                .get_result(c)
                .await?;
            if count >= cap {
                return Ok(CappedInsert::AtCap);
            }
            diesel::insert_into(merchants::table)
                .values(row)
                .execute(c)
                .await?;
            Ok(CappedInsert::Inserted)
        })
        .await
    })?)
}

/// The outcome of [`transition_audited`].
#[derive(Debug, Clone)]
pub enum Reviewed {
    NotFound,
    /// The merchant is in none of the `from` statuses: its status, unchanged.
    Refused(String),
    /// Changed: the merchant after the change.
    Done(Box<MerchantRow>),
}

/// Moves a merchant from one of `from` to `to` and writes `audit` in the same transaction,
/// so a review is never recorded without its change nor made without its record.
/// `describe` gives the audit row's before and after JSON from the rows.
pub async fn transition_audited(
    db: &Db,
    id: &str,
    from: &[&str],
    to: &str,
    reviewer: &str,
    mut audit: super::admins::AuditRow,
    describe: fn(&MerchantRow) -> String,
) -> Result<Reviewed, StorageError> {
    use super::schema::audit_log;
    let mut conn = db.write_conn().await?;
    let t = now();
    let from: Vec<String> = from.iter().map(|s| s.to_string()).collect();
    Ok(with_conn!(&mut conn, |c| {
        c.transaction::<_, diesel::result::Error, _>(async |c| {
            // Lock first (the row on MySQL, the database on SQLite): see `insert_capped`.
            diesel::update(merchants::table.find(id))
                .set(merchants::updated_at.eq(merchants::updated_at))
                .execute(c)
                .await?;
            let before: Option<MerchantRow> = merchants::table
                .find(id)
                .select(MerchantRow::as_select())
                .first(c)
                .await
                .optional()?;
            let Some(before) = before else {
                return Ok(Reviewed::NotFound);
            };
            if !from.contains(&before.status) {
                return Ok(Reviewed::Refused(before.status));
            }
            diesel::update(merchants::table.find(id))
                .set((
                    merchants::status.eq(to),
                    merchants::reviewed_by.eq(reviewer),
                    merchants::reviewed_at.eq(t),
                    merchants::updated_at.eq(t),
                ))
                .execute(c)
                .await?;
            let after: MerchantRow = merchants::table
                .find(id)
                .select(MerchantRow::as_select())
                .first(c)
                .await?;
            audit.before_json = Some(describe(&before));
            audit.after_json = Some(describe(&after));
            diesel::insert_into(audit_log::table)
                .values(&audit)
                .execute(c)
                .await?;
            Ok(Reviewed::Done(Box::new(after)))
        })
        .await
    })?)
}
