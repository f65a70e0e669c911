//! Field key rotation that finishes: `points-app rotate-field-keys`.
//!
//! Reading a value stored under a retired key re-encrypts it (see `users`, `merchants`), but
//! a row nobody reads stays under the old key for ever, so the old key could never be
//! dropped. This job walks every encrypted column in primary-key order, a batch at a time,
//! and re-encrypts each value whose key id is not the current one:
//!
//! - each row is rewritten only while it still holds the ciphertext and key id the job read
//!   (a compare-and-set), so a phone the user changed meanwhile, or the server's own lazy
//!   re-encryption, is never overwritten: the row is counted as skipped, and its new value
//!   is under the current key already;
//! - it only ever looks for rows not under the current key, so it is resumable: stopped at
//!   any point (`limit`, a kill), a second run simply finds fewer rows; a run after a
//!   complete one rotates nothing;
//! - it runs beside serving instances (one short transaction per batch);
//! - before changing anything it checks that every key id in the data is in the configured
//!   key ring, and refuses to start otherwise, naming them.
//!
//! The blind index (`users.phone_blind_index`) is keyed by `APP_FIELD_KEY` apart from the
//! key versions, so it does not change with a rotation and is left as it is.

use std::fmt;

use crate::security::crypto::{FieldCipher, FieldCryptoError};
use crate::storage::field_keys::{self as store, Rekey};
use crate::storage::{Db, StorageError};

pub use crate::storage::field_keys::EncryptedColumn;

/// The batch size when none is given.
pub const DEFAULT_BATCH_SIZE: usize = 500;

/// The associated data a column's values are encrypted with: binds a ciphertext to its row.
pub fn aad(column: EncryptedColumn, id: &str) -> String {
    match column {
        EncryptedColumn::UserPhone => super::users::phone_aad(id),
        EncryptedColumn::MerchantContactPhone => super::merchants::contact_aad(id),
    }
}

/// What to rotate, and how much at a time.
#[derive(Debug, Clone)]
pub struct RotationOptions {
    /// Rows read and rewritten per transaction.
    pub batch_size: usize,
    /// Start after this primary key (in every column walked); `None`: from the start.
    pub from_id: Option<String>,
    /// Stop after this many rows found under a retired key (the batch that reaches it is
    /// cut to fit); `None`: run to the end.
    pub limit: Option<u64>,
    /// The columns to walk, in order.
    pub columns: Vec<EncryptedColumn>,
}

impl Default for RotationOptions {
    fn default() -> Self {
        RotationOptions {
            batch_size: DEFAULT_BATCH_SIZE,
            from_id: None,
            limit: None,
            columns: EncryptedColumn::ALL.to_vec(),
        }
    }
}

/// How far the job got in one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnProgress {
    pub column: EncryptedColumn,
    /// Rows found under a retired key.
    pub scanned: u64,
    /// Rows re-encrypted under the current key.
    pub rotated: u64,
    /// Rows changed by someone else between read and write, left alone.
    pub skipped: u64,
    /// The last primary key handled (`--from-id` to continue after it).
    pub last_id: Option<String>,
}

impl ColumnProgress {
    fn new(column: EncryptedColumn) -> Self {
        ColumnProgress {
            column,
            scanned: 0,
            rotated: 0,
            skipped: 0,
            last_id: None,
        }
    }
}

impl fmt::Display for ColumnProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "table={} column={} scanned={} rotated={} skipped={} last_id={}",
            self.column.table(),
            self.column.column(),
            self.scanned,
            self.rotated,
            self.skipped,
            self.last_id.as_deref().unwrap_or("-")
        )
    }
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct RotationSummary {
    /// The key every rotated value is now under.
    pub current_key: String,
    /// One entry per column walked (or started).
    pub columns: Vec<ColumnProgress>,
    /// True when `limit` ended the run: rows under retired keys may remain.
    pub stopped_at_limit: bool,
}

impl RotationSummary {
    pub fn rotated(&self) -> u64 {
        self.columns.iter().map(|c| c.rotated).sum()
    }

    pub fn skipped(&self) -> u64 {
        self.columns.iter().map(|c| c.skipped).sum()
    }
}

impl fmt::Display for RotationSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "current key {}: rotated {} value(s), skipped {} changed meanwhile",
            self.current_key,
            self.rotated(),
            self.skipped()
        )?;
        for c in &self.columns {
            write!(f, "; {c}")?;
        }
        if self.stopped_at_limit {
            write!(
                f,
                "; stopped at the limit: run again to continue (it finds only what is left)"
            )?;
        }
        Ok(())
    }
}

/// Values stored under a key id the key ring does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    pub column: EncryptedColumn,
    /// `None`: values without a key id.
    pub key_id: Option<String>,
    pub rows: i64,
}

impl fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = match &self.key_id {
            Some(k) => format!("key id {k:?}"),
            None => "no key id".to_string(),
        };
        write!(
            f,
            "{} row(s) of {}.{} under {key}",
            self.rows,
            self.column.table(),
            self.column.column()
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error(
        "{} not in the configured key ring (key ids: {}); nothing was changed: add the missing \
         key to APP_FIELD_KEYS (\"id:secret\") and run again",
        list(.unknown), .known.join(", ")
    )]
    UnknownKeys {
        unknown: Vec<UnknownKey>,
        known: Vec<String>,
    },
    #[error(
        "{}.{} row {id}: the value under key {key_id:?} does not decrypt ({source}): is the \
         secret of {key_id:?} in APP_FIELD_KEYS (or APP_FIELD_KEY for v1) the one it was \
         written with?",
        .column.table(), .column.column()
    )]
    Undecryptable {
        column: EncryptedColumn,
        id: String,
        key_id: String,
        source: FieldCryptoError,
    },
    #[error("{0}")]
    Options(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn list(unknown: &[UnknownKey]) -> String {
    unknown
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every value of `columns` stored under a key id `fields` does not hold.
pub async fn unknown_keys(
    db: &Db,
    fields: &FieldCipher,
    columns: &[EncryptedColumn],
) -> Result<Vec<UnknownKey>, StorageError> {
    let mut unknown = Vec::new();
    for &column in columns {
        for (key_id, rows) in store::key_ids_in_use(db, column).await? {
            if !key_id.as_deref().is_some_and(|k| fields.knows(k)) {
                unknown.push(UnknownKey {
                    column,
                    key_id,
                    rows,
                });
            }
        }
    }
    Ok(unknown)
}

/// Re-encrypts every value of `options.columns` not under the current key of `fields`.
/// `progress` is called after each batch with the column's running totals.
pub async fn rotate_field_keys(
    db: &Db,
    fields: &FieldCipher,
    options: &RotationOptions,
    mut progress: impl FnMut(&ColumnProgress),
) -> Result<RotationSummary, RotationError> {
    if options.batch_size == 0 {
        return Err(RotationError::Options(
            "the batch size must be at least 1".into(),
        ));
    }
    let known = || fields.key_ids().into_iter().map(String::from).collect();
    let unknown = unknown_keys(db, fields, &options.columns).await?;
    if !unknown.is_empty() {
        return Err(RotationError::UnknownKeys {
            unknown,
            known: known(),
        });
    }
    let current = fields.current_key_id().to_string();
    let mut summary = RotationSummary {
        current_key: current.clone(),
        columns: Vec::new(),
        stopped_at_limit: false,
    };
    let mut budget = options.limit;
    let batch = u64::try_from(options.batch_size).unwrap_or(u64::MAX);
    'columns: for &column in &options.columns {
        let mut done = ColumnProgress::new(column);
        let mut after = options.from_id.clone();
        loop {
            let take = match budget {
                Some(0) => {
                    summary.stopped_at_limit = true;
                    summary.columns.push(done);
                    break 'columns;
                }
                Some(left) => left.min(batch),
                None => batch,
            };
            let rows = store::not_under_key(
                db,
                column,
                &current,
                after.as_deref(),
                i64::try_from(take).unwrap_or(i64::MAX),
            )
            .await?;
            let found = rows.len() as u64;
            let mut changes = Vec::with_capacity(rows.len());
            for old in rows {
                if !fields.knows(&old.key_id) {
                    // Written after the check by an instance with another key ring.
                    return Err(RotationError::UnknownKeys {
                        unknown: vec![UnknownKey {
                            column,
                            key_id: Some(old.key_id),
                            rows: 1,
                        }],
                        known: known(),
                    });
                }
                let aad = aad(column, &old.id);
                let undecryptable = |source| RotationError::Undecryptable {
                    column,
                    id: old.id.clone(),
                    key_id: old.key_id.clone(),
                    source,
                };
                let plain = fields
                    .decrypt(&old.key_id, &old.cipher, &aad)
                    .map_err(undecryptable)?;
                let (key_id, cipher) = fields.encrypt(&plain, &aad).map_err(undecryptable)?;
                changes.push(Rekey {
                    old,
                    key_id,
                    cipher,
                });
            }
            let stored = store::rekey(db, column, &changes).await?;
            let rotated = stored.iter().filter(|s| **s).count() as u64;
            done.scanned += found;
            done.rotated += rotated;
            done.skipped += found - rotated;
            if let Some(last) = changes.last() {
                done.last_id = Some(last.old.id.clone());
                after = done.last_id.clone();
            }
            if let Some(left) = budget.as_mut() {
                *left = left.saturating_sub(found);
            }
            if found > 0 {
                progress(&done);
            }
            if found < take {
                break;
            }
        }
        summary.columns.push(done);
    }
    Ok(summary)
}
