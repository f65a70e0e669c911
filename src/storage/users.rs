//! Users, their login IPs and refresh tokens.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::schema::{refresh_tokens, user_login_ips, users};
use super::{Db, StorageError};
use crate::with_conn;

pub const USER_ACTIVE: &str = "active";
pub const USER_DISABLED: &str = "disabled";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub openid: String,
    pub unionid: Option<String>,
    pub nickname: Option<String>,
    pub avatar: Option<String>,
    pub phone_cipher: Option<String>,
    pub phone_key_id: Option<String>,
    pub phone_blind_index: Option<String>,
    pub phone_masked: Option<String>,
    pub status: String,
    pub last_login_ip: Option<String>,
    pub last_login_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// An encrypted phone as stored: ciphertext, key id, blind index, mask.
pub struct StoredPhone {
    pub cipher: String,
    pub key_id: String,
    pub blind_index: String,
    pub masked: String,
}

pub fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

pub async fn find(db: &Db, id: &str) -> Result<Option<UserRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        users::table
            .find(id)
            .select(UserRow::as_select())
            .first(c)
            .await
            .optional()
    })?)
}

pub async fn find_by_openid(db: &Db, openid: &str) -> Result<Option<UserRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        users::table
            .filter(users::openid.eq(openid))
            .select(UserRow::as_select())
            .first(c)
            .await
            .optional()
    })?)
}

/// Inserts a new user; a concurrent login that created the same openid wins and is returned.
/// The flag is true when this call created the user.
pub async fn create_or_get(db: &Db, row: UserRow) -> Result<(UserRow, bool), StorageError> {
    let mut conn = db.write_conn().await?;
    let inserted = with_conn!(&mut conn, |c| {
        diesel::insert_into(users::table)
            .values(&row)
            .execute(c)
            .await
    });
    drop(conn);
    match inserted.map_err(StorageError::from) {
        Ok(_) => Ok((row, true)),
        Err(e) if e.is_unique_violation() => match find_by_openid(db, &row.openid).await? {
            Some(existing) => Ok((existing, false)),
            None => Err(e),
        },
        Err(e) => Err(e),
    }
}

pub async fn update_profile(
    db: &Db,
    id: &str,
    nickname: Option<&str>,
    avatar: Option<&str>,
) -> Result<(), StorageError> {
    let mut conn = db.write_conn().await?;
    let t = now();
    with_conn!(&mut conn, |c| {
        match (nickname, avatar) {
            (Some(n), Some(a)) => {
                diesel::update(users::table.find(id))
                    .set((
                        users::nickname.eq(n),
                        users::avatar.eq(a),
                        users::updated_at.eq(t),
                    ))
                    .execute(c)
                    .await
            }
            (Some(n), None) => {
                diesel::update(users::table.find(id))
                    .set((users::nickname.eq(n), users::updated_at.eq(t)))
                    .execute(c)
                    .await
            }
            (None, Some(a)) => {
                diesel::update(users::table.find(id))
                    .set((users::avatar.eq(a), users::updated_at.eq(t)))
                    .execute(c)
                    .await
            }
            (None, None) => Ok(0),
        }
    })?;
    Ok(())
}

/// Stores the phone. With `only_if` (key id, ciphertext), only a row still holding exactly
/// that value is changed (lazy re-encryption must not overwrite a newer value, even one an
/// instance with an older key ring wrote under the same key id).
pub async fn set_phone(
    db: &Db,
    id: &str,
    phone: &StoredPhone,
    only_if: Option<(&str, &str)>,
) -> Result<bool, StorageError> {
    let mut conn = db.write_conn().await?;
    let t = now();
    let values = (
        users::phone_cipher.eq(&phone.cipher),
        users::phone_key_id.eq(&phone.key_id),
        users::phone_blind_index.eq(&phone.blind_index),
        users::phone_masked.eq(&phone.masked),
        users::updated_at.eq(t),
    );
    let n = with_conn!(&mut conn, |c| {
        match only_if {
            Some((key, cipher)) => {
                diesel::update(
                    users::table
                        .find(id)
                        .filter(users::phone_key_id.eq(key))
                        .filter(users::phone_cipher.eq(cipher)),
                )
                .set(values)
                .execute(c)
                .await
            }
            None => {
                diesel::update(users::table.find(id))
                    .set(values)
                    .execute(c)
                    .await
            }
        }
    })?;
    Ok(n == 1)
}

/// Sets a user's status and writes `audit` in the same transaction (before/after JSON from
/// `describe`), so the change and its record commit together. `None`: no such user.
/// A user's status change, and the sessions it ended.
pub struct StatusChanged {
    pub user: UserRow,
    /// Refresh families revoked because the user was disabled.
    pub ended_sessions: Vec<String>,
}

/// Sets a user's status with its audit row in one transaction. With `end_sessions`, every
/// live session of the user (refresh family) is revoked in the same transaction, so enabling
/// the user again does not bring old tokens back.
pub async fn set_status_audited(
    db: &Db,
    id: &str,
    status: &str,
    end_sessions: bool,
    mut audit: super::admins::AuditRow,
    describe: fn(&UserRow) -> String,
) -> Result<Option<StatusChanged>, StorageError> {
    use super::schema::audit_log;
    let mut conn = db.write_conn().await?;
    let t = now();
    Ok(with_conn!(&mut conn, |c| {
        c.transaction::<_, diesel::result::Error, _>(async |c| {
            // Lock first (the row on MySQL, the database on SQLite), as in
            // `merchants::insert_capped`.
            diesel::update(users::table.find(id))
                .set(users::updated_at.eq(users::updated_at))
                .execute(c)
                .await?;
            let before: Option<UserRow> = users::table
                .find(id)
                .select(UserRow::as_select())
                .first(c)
                .await
                .optional()?;
            let Some(before) = before else {
                return Ok(None);
            };
            diesel::update(users::table.find(id))
                .set((users::status.eq(status), users::updated_at.eq(t)))
                .execute(c)
                .await?;
            let after: UserRow = users::table
                .find(id)
                .select(UserRow::as_select())
                .first(c)
                .await?;
            let mut ended_sessions = Vec::new();
            if end_sessions {
                let live = refresh_tokens::table
                    .filter(refresh_tokens::subject_type.eq(SUBJECT_USER))
                    .filter(refresh_tokens::subject_id.eq(id))
                    .filter(refresh_tokens::status.ne(TOKEN_REVOKED))
                    .filter(refresh_tokens::expires_at.gt(t));
                ended_sessions = live
                    .select(refresh_tokens::family_id)
                    .distinct()
                    .load::<String>(c)
                    .await?;
                diesel::update(live)
                    .set(refresh_tokens::status.eq(TOKEN_REVOKED))
                    .execute(c)
                    .await?;
            }
            audit.before_json = Some(describe(&before));
            audit.after_json = Some(describe(&after));
            diesel::insert_into(audit_log::table)
                .values(&audit)
                .execute(c)
                .await?;
            Ok(Some(StatusChanged {
                user: after,
                ended_sessions,
            }))
        })
        .await
    })?)
}

/// Notes the login time and IP, and the IP in `user_login_ips` (risk rules read it).
pub async fn record_login(db: &Db, id: &str, ip: &str) -> Result<(), StorageError> {
    let t = now();
    let mut conn = db.write_conn().await?;
    with_conn!(&mut conn, |c| {
        diesel::update(users::table.find(id))
            .set((users::last_login_ip.eq(ip), users::last_login_at.eq(t)))
            .execute(c)
            .await
    })?;
    let updated = with_conn!(&mut conn, |c| {
        diesel::update(user_login_ips::table.find((id, ip)))
            .set(user_login_ips::last_seen.eq(t))
            .execute(c)
            .await
    })?;
    if updated == 0 {
        let inserted = with_conn!(&mut conn, |c| {
            diesel::insert_into(user_login_ips::table)
                .values((
                    user_login_ips::user_id.eq(id),
                    user_login_ips::ip.eq(ip),
                    user_login_ips::first_seen.eq(t),
                    user_login_ips::last_seen.eq(t),
                ))
                .execute(c)
                .await
        })
        .map_err(StorageError::from);
        match inserted {
            Err(e) if !e.is_unique_violation() => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Admin search: by nickname substring or by phone blind index; newest first, keyset-paged
/// on the (time-ordered) id.
pub async fn search(
    db: &Db,
    nickname: Option<&str>,
    phone_index: Option<&str>,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<UserRow>, StorageError> {
    let mut conn = db.conn().await?;
    let pattern = nickname.map(|n| {
        let escaped = n
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    Ok(with_conn!(&mut conn, |c| {
        let mut q = users::table.select(UserRow::as_select()).into_boxed();
        if let Some(p) = &pattern {
            q = q.filter(users::nickname.like(p.clone()).escape('\\'));
        }
        if let Some(b) = phone_index {
            q = q.filter(users::phone_blind_index.eq(b.to_string()));
        }
        if let Some(cur) = before_id {
            q = q.filter(users::id.lt(cur.to_string()));
        }
        q.order(users::id.desc()).limit(limit).load(c).await
    })?)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub id: String,
    pub family_id: String,
    pub subject_type: String,
    pub subject_id: String,
    pub token_hash: String,
    pub status: String,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

/// `refresh_tokens.subject_type` of a user's session.
pub const SUBJECT_USER: &str = "user";
pub const TOKEN_ACTIVE: &str = "active";
pub const TOKEN_USED: &str = "used";
pub const TOKEN_REVOKED: &str = "revoked";

pub async fn insert_refresh_token(db: &Db, row: &RefreshTokenRow) -> Result<(), StorageError> {
    let mut conn = db.write_conn().await?;
    with_conn!(&mut conn, |c| {
        diesel::insert_into(refresh_tokens::table)
            .values(row)
            .execute(c)
            .await
    })?;
    Ok(())
}

pub async fn find_refresh_token(
    db: &Db,
    hash: &str,
) -> Result<Option<RefreshTokenRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(hash))
            .select(RefreshTokenRow::as_select())
            .first(c)
            .await
            .optional()
    })?)
}

/// Marks an active token used; false when it was not active any more (a concurrent use).
pub async fn use_refresh_token(db: &Db, id: &str) -> Result<bool, StorageError> {
    let mut conn = db.write_conn().await?;
    let t = now();
    let n = with_conn!(&mut conn, |c| {
        diesel::update(
            refresh_tokens::table
                .find(id)
                .filter(refresh_tokens::status.eq(TOKEN_ACTIVE)),
        )
        .set((
            refresh_tokens::status.eq(TOKEN_USED),
            refresh_tokens::used_at.eq(t),
        ))
        .execute(c)
        .await
    })?;
    Ok(n == 1)
}

/// True when the session (refresh family) was revoked.
pub async fn family_revoked(db: &Db, family_id: &str) -> Result<bool, StorageError> {
    let mut conn = db.conn().await?;
    let n: i64 = with_conn!(&mut conn, |c| {
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::status.eq(TOKEN_REVOKED))
            .count()
            .get_result(c)
            .await
    })?;
    Ok(n > 0)
}

/// What authorising a user's request reads, in one round trip: the user's status and
/// whether the session (refresh family) `family_id` was revoked. `None`: no such user.
pub async fn auth_state(
    db: &Db,
    user_id: &str,
    family_id: &str,
) -> Result<Option<(String, bool)>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        users::table
            .filter(users::id.eq(user_id))
            .select((
                users::status,
                diesel::dsl::exists(
                    refresh_tokens::table
                        .filter(refresh_tokens::family_id.eq(family_id))
                        .filter(refresh_tokens::status.eq(TOKEN_REVOKED)),
                ),
            ))
            .first(c)
            .await
            .optional()
    })?)
}

/// Ends one session: every refresh token of the family is revoked.
pub async fn revoke_family(db: &Db, family_id: &str) -> Result<usize, StorageError> {
    let mut conn = db.write_conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        diesel::update(refresh_tokens::table.filter(refresh_tokens::family_id.eq(family_id)))
            .set(refresh_tokens::status.eq(TOKEN_REVOKED))
            .execute(c)
            .await
    })?)
}
