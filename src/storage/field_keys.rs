//! The encrypted columns, read and rewritten in bulk by the key rotation job
//! (`points-app rotate-field-keys`, `app::keys`).
//!
//! Every rewrite is a compare-and-set on the row's old key id *and* old ciphertext, so a
//! value the server changed meanwhile (a user's new phone, or the server's own lazy
//! re-encryption) is never overwritten.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::schema::{merchants, users};
use super::{Db, StorageError};
use crate::with_conn;

/// A column holding a value encrypted by `FieldCipher`, with its key id beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncryptedColumn {
    /// `users.phone_cipher` / `phone_key_id` (the blind index `phone_blind_index` is keyed
    /// apart from the key versions, so rotation leaves it as it is).
    UserPhone,
    /// `merchants.contact_phone_cipher` / `contact_phone_key_id`.
    MerchantContactPhone,
}

impl EncryptedColumn {
    /// Every encrypted column, in the order the rotation job walks them.
    pub const ALL: [EncryptedColumn; 2] = [
        EncryptedColumn::UserPhone,
        EncryptedColumn::MerchantContactPhone,
    ];

    pub fn table(self) -> &'static str {
        match self {
            EncryptedColumn::UserPhone => "users",
            EncryptedColumn::MerchantContactPhone => "merchants",
        }
    }

    pub fn column(self) -> &'static str {
        match self {
            EncryptedColumn::UserPhone => "phone_cipher",
            EncryptedColumn::MerchantContactPhone => "contact_phone_cipher",
        }
    }
}

/// One stored encrypted value: the row's primary key, the key id and the ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedField {
    pub id: String,
    pub key_id: String,
    pub cipher: String,
}

/// A re-encrypted value to store in place of `old`.
#[derive(Debug, Clone)]
pub struct Rekey {
    pub old: SealedField,
    pub key_id: String,
    pub cipher: String,
}

/// The key ids the column's values are stored under, with how many rows use each
/// (`None`: a value without a key id, which nothing can decrypt).
pub async fn key_ids_in_use(
    db: &Db,
    column: EncryptedColumn,
) -> Result<Vec<(Option<String>, i64)>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        match column {
            EncryptedColumn::UserPhone => {
                users::table
                    .filter(users::phone_cipher.is_not_null())
                    .group_by(users::phone_key_id)
                    .select((users::phone_key_id, diesel::dsl::count_star()))
                    .load::<(Option<String>, i64)>(c)
                    .await
            }
            EncryptedColumn::MerchantContactPhone => merchants::table
                .group_by(merchants::contact_phone_key_id)
                .select((merchants::contact_phone_key_id, diesel::dsl::count_star()))
                .load::<(String, i64)>(c)
                .await
                .map(|rows| rows.into_iter().map(|(k, n)| (Some(k), n)).collect()),
        }
    })?)
}

/// Up to `limit` values not under `current`, in primary-key order, after `after_id`.
pub async fn not_under_key(
    db: &Db,
    column: EncryptedColumn,
    current: &str,
    after_id: Option<&str>,
    limit: i64,
) -> Result<Vec<SealedField>, StorageError> {
    let mut conn = db.conn().await?;
    let after = after_id.unwrap_or("").to_string();
    let rows: Vec<(String, String, String)> = with_conn!(&mut conn, |c| {
        match column {
            EncryptedColumn::UserPhone => {
                users::table
                    .filter(users::id.gt(&after))
                    .filter(users::phone_cipher.is_not_null())
                    .filter(users::phone_key_id.is_not_null())
                    .filter(users::phone_key_id.ne(current))
                    .order(users::id.asc())
                    .limit(limit)
                    .select((
                        users::id,
                        users::phone_key_id.assume_not_null(),
                        users::phone_cipher.assume_not_null(),
                    ))
                    .load(c)
                    .await
            }
            EncryptedColumn::MerchantContactPhone => {
                merchants::table
                    .filter(merchants::id.gt(&after))
                    .filter(merchants::contact_phone_key_id.ne(current))
                    .order(merchants::id.asc())
                    .limit(limit)
                    .select((
                        merchants::id,
                        merchants::contact_phone_key_id,
                        merchants::contact_phone_cipher,
                    ))
                    .load(c)
                    .await
            }
        }
    })?;
    Ok(rows
        .into_iter()
        .map(|(id, key_id, cipher)| SealedField { id, key_id, cipher })
        .collect())
}

/// Stores each re-encrypted value in one transaction, each row only while it still holds
/// exactly the old key id and ciphertext. Returns, per change, whether it was stored
/// (false: the row changed meanwhile and was left alone).
pub async fn rekey(
    db: &Db,
    column: EncryptedColumn,
    changes: &[Rekey],
) -> Result<Vec<bool>, StorageError> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = db.write_conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        c.transaction::<_, diesel::result::Error, _>(async |c| {
            let mut stored = Vec::with_capacity(changes.len());
            for change in changes {
                let old = &change.old;
                let n = match column {
                    EncryptedColumn::UserPhone => {
                        diesel::update(
                            users::table
                                .find(&old.id)
                                .filter(users::phone_key_id.eq(&old.key_id))
                                .filter(users::phone_cipher.eq(&old.cipher)),
                        )
                        .set((
                            users::phone_cipher.eq(&change.cipher),
                            users::phone_key_id.eq(&change.key_id),
                        ))
                        .execute(c)
                        .await?
                    }
                    EncryptedColumn::MerchantContactPhone => {
                        diesel::update(
                            merchants::table
                                .find(&old.id)
                                .filter(merchants::contact_phone_key_id.eq(&old.key_id))
                                .filter(merchants::contact_phone_cipher.eq(&old.cipher)),
                        )
                        .set((
                            merchants::contact_phone_cipher.eq(&change.cipher),
                            merchants::contact_phone_key_id.eq(&change.key_id),
                        ))
                        .execute(c)
                        .await?
                    }
                };
                stored.push(n == 1);
            }
            Ok(stored)
        })
        .await
    })?)
}
