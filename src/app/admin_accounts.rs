//! Admin accounts kept on the command line (`points-app admin …`), for when no admin can
//! sign in: a forgotten password, or an account locked by failed sign-ins.

use secrecy::{ExposeSecret, SecretString};

use crate::config::MIN_ADMIN_PASSWORD_CHARS;
use crate::security::passwords;
use crate::storage::admins::{self, AuditRow, PasswordReset};
use crate::storage::users::now;
use crate::storage::{Db, StorageError};

/// The audit action of a password reset.
pub const RESET_PASSWORD_ACTION: &str = "admin.reset_password";

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("no admin named {0:?}")]
    NoSuchAdmin(String),
    #[error("the new password must have at least {MIN_ADMIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("hashing the password failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Sets a new password for the admin `username`: clears the failed sign-in count and any
/// lock, ends the admin's sessions (their access tokens stop working within the session
/// cache's 2 s on running instances), and records it in the audit log as done by `operator`
/// (the account that ran the command; actor type `cli`), all in one transaction.
pub async fn reset_admin_password(
    db: &Db,
    username: &str,
    password: &SecretString,
    operator: &str,
) -> Result<PasswordReset, ResetError> {
    if password.expose_secret().chars().count() < MIN_ADMIN_PASSWORD_CHARS {
        return Err(ResetError::TooShort);
    }
    let plain = password.clone();
    // argon2 takes tens of milliseconds of CPU: keep it off the async threads.
    let hash = tokio::task::spawn_blocking(move || passwords::hash_password(plain.expose_secret()))
        .await
        .map_err(|e| ResetError::Hash(e.to_string()))?
        .map_err(|e| ResetError::Hash(e.to_string()))?;
    let audit = AuditRow {
        id: uuid::Uuid::now_v7().to_string(),
        actor_type: "cli".into(),
        actor_id: operator.to_string(),
        action: RESET_PASSWORD_ACTION.into(),
        target_type: "admin".into(),
        target_id: String::new(),
        before_json: None,
        after_json: None,
        trace_id: crate::telemetry::new_trace_id(),
        ip: None,
        created_at: now(),
    };
    let reset = admins::reset_password_audited(db, username, &hash, audit)
        .await?
        .ok_or_else(|| ResetError::NoSuchAdmin(username.to_string()))?;
    tracing::info!(
        category = "audit",
        actor_type = "cli",
        operator,
        action = RESET_PASSWORD_ACTION,
        target_type = "admin",
        target_id = %reset.admin_id,
        sessions_ended = reset.ended_sessions.len(),
        "admin password reset"
    );
    Ok(reset)
}
