//! Admin accounts and the audit log.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::schema::{admin_users, audit_log};
use super::users::now;
use super::{Db, StorageError};
use crate::with_conn;

pub const ADMIN_ACTIVE: &str = "active";
/// `refresh_tokens.subject_type` of an admin's session.
pub const SUBJECT_ADMIN: &str = "admin";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = admin_users)]
pub struct AdminRow {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub last_login_at: Option<NaiveDateTime>,
    /// Consecutive failed sign-ins since the last success.
    pub failed_logins: i32,
    /// Sign-in is refused until then.
    pub locked_until: Option<NaiveDateTime>,
}

pub async fn find_by_username(db: &Db, username: &str) -> Result<Option<AdminRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        admin_users::table
            .filter(admin_users::username.eq(username))
            .select(AdminRow::as_select())
            .first(c)
            .await
            .optional()
    })?)
}

pub async fn find(db: &Db, id: &str) -> Result<Option<AdminRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        admin_users::table
            .find(id)
            .select(AdminRow::as_select())
            .first(c)
            .await
            .optional()
    })?)
}

/// Inserts the admin; false when one with that username already exists.
pub async fn insert_if_absent(db: &Db, row: &AdminRow) -> Result<bool, StorageError> {
    let mut conn = db.write_conn().await?;
    let res = with_conn!(&mut conn, |c| {
        diesel::insert_into(admin_users::table)
            .values(row)
            .execute(c)
            .await
    })
    .map_err(StorageError::from);
    match res {
        Ok(_) => Ok(true),
        Err(e) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e),
    }
}

/// A successful sign-in: notes the time and clears the failure count and any lock.
pub async fn touch_login(db: &Db, id: &str) -> Result<(), StorageError> {
    let mut conn = db.write_conn().await?;
    let t = now();
    with_conn!(&mut conn, |c| {
        diesel::update(admin_users::table.find(id))
            .set((
                admin_users::last_login_at.eq(Some(t)),
                admin_users::failed_logins.eq(0),
                admin_users::locked_until.eq(None::<NaiveDateTime>),
            ))
            .execute(c)
            .await
    })?;
    Ok(())
}

/// A failed sign-in: counts it and, when `lock_for(failures)` says so, locks the account
/// from now for that long. Concurrent failures each count (the row is locked while
/// counting). Returns the new count and the lock.
pub async fn record_failed_login(
    db: &Db,
    id: &str,
    lock_for: fn(i32) -> Option<chrono::Duration>,
) -> Result<(i32, Option<NaiveDateTime>), StorageError> {
    let mut conn = db.write_conn().await?;
    let t = now();
    Ok(with_conn!(&mut conn, |c| {
        c.transaction::<_, diesel::result::Error, _>(async |c| {
            diesel::update(admin_users::table.find(id))
                .set(admin_users::failed_logins.eq(admin_users::failed_logins + 1))
                .execute(c)
                .await?;
            let failures: i32 = admin_users::table
                .find(id)
                .select(admin_users::failed_logins)
                .first(c)
                .await?;
            let until = lock_for(failures).map(|d| t + d);
            if until.is_some() {
                diesel::update(admin_users::table.find(id))
                    .set(admin_users::locked_until.eq(until))
                    .execute(c)
                    .await?;
            }
            Ok((failures, until))
        })
        .await
    })?)
}

/// What a password reset changed.
#[derive(Debug, Clone)]
pub struct PasswordReset {
    pub admin_id: String,
    /// Consecutive failed sign-ins before the reset (cleared by it).
    pub failed_logins_before: i32,
    /// The lock the reset lifted, if any.
    pub locked_until_before: Option<NaiveDateTime>,
    /// Sessions (refresh families) of the admin that the reset ended.
    pub ended_sessions: Vec<String>,
}

/// Sets a new password hash for the admin `username`, clears the failure count and any lock,
/// ends every live session of the admin, and writes `audit` (its target and before/after
/// filled in here), all in one transaction. `None`: no admin of that name.
pub async fn reset_password_audited(
    db: &Db,
    username: &str,
    password_hash: &str,
    mut audit: AuditRow,
) -> Result<Option<PasswordReset>, StorageError> {
    use super::schema::refresh_tokens;
    use super::users::TOKEN_REVOKED;
    let mut conn = db.write_conn().await?;
    let t = now();
    Ok(with_conn!(&mut conn, |c| {
        c.transaction::<_, diesel::result::Error, _>(async |c| {
            // Lock first (the row on MySQL, the database on SQLite).
            diesel::update(admin_users::table.filter(admin_users::username.eq(username)))
                .set(admin_users::failed_logins.eq(admin_users::failed_logins))
                .execute(c)
                .await?;
            let before: Option<AdminRow> = admin_users::table
                .filter(admin_users::username.eq(username))
                .select(AdminRow::as_select())
                .first(c)
                .await
                .optional()?;
            let Some(before) = before else {
                return Ok(None);
            };
            diesel::update(admin_users::table.find(&before.id))
                .set((
                    admin_users::password_hash.eq(password_hash),
                    admin_users::failed_logins.eq(0),
                    admin_users::locked_until.eq(None::<NaiveDateTime>),
                ))
                .execute(c)
                .await?;
            let live = refresh_tokens::table
                .filter(refresh_tokens::subject_type.eq(SUBJECT_ADMIN))
                .filter(refresh_tokens::subject_id.eq(&before.id))
                .filter(refresh_tokens::status.ne(TOKEN_REVOKED))
                .filter(refresh_tokens::expires_at.gt(t));
            let ended_sessions = live
                .select(refresh_tokens::family_id)
                .distinct()
                .load::<String>(c)
                .await?;
            diesel::update(live)
                .set(refresh_tokens::status.eq(TOKEN_REVOKED))
                .execute(c)
                .await?;
            audit.target_type = "admin".into();
            audit.target_id = before.id.clone();
            audit.before_json = Some(
                serde_json::json!({
                    "username": before.username,
                    "failed_logins": before.failed_logins,
                    "locked_until": before.locked_until,
                })
                .to_string(),
            );
            audit.after_json = Some(
                serde_json::json!({
                    "username": before.username,
                    "password": "reset",
                    "failed_logins": 0,
                    "locked_until": null,
                    "sessions_ended": ended_sessions.len(),
                })
                .to_string(),
            );
            diesel::insert_into(audit_log::table)
                .values(&audit)
                .execute(c)
                .await?;
            Ok(Some(PasswordReset {
                admin_id: before.id,
                failed_logins_before: before.failed_logins,
                locked_until_before: before.locked_until,
                ended_sessions,
            }))
        })
        .await
    })?)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub id: String,
    pub actor_type: String,
    pub actor_id: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub before_json: Option<String>,
    pub after_json: Option<String>,
    pub trace_id: String,
    pub ip: Option<String>,
    pub created_at: NaiveDateTime,
}

pub async fn insert_audit(db: &Db, row: &AuditRow) -> Result<(), StorageError> {
    let mut conn = db.write_conn().await?;
    with_conn!(&mut conn, |c| {
        diesel::insert_into(audit_log::table)
            .values(row)
            .execute(c)
            .await
    })?;
    Ok(())
}

pub async fn list_audit(
    db: &Db,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        let mut q = audit_log::table.select(AuditRow::as_select()).into_boxed();
        if let Some(cur) = before_id {
            q = q.filter(audit_log::id.lt(cur.to_string()));
        }
        q.order(audit_log::id.desc()).limit(limit).load(c).await
    })?)
}
