//! Admin passwords (argon2id) and the bootstrap admin created on first start.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use secrecy::{ExposeSecret, SecretString};

use crate::config::Settings;
use crate::storage::admins::{self, ADMIN_ACTIVE, AdminRow};
use crate::storage::{Db, StorageError};

pub fn hash_password(password: &str) -> Result<String, anyhow::Error> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the username is unknown, so both cases take as long.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not-a-password").unwrap_or_default())
}

/// Creates the configured admin when absent. Without `APP_ADMIN_PASSWORD` a random password is
/// generated and printed once on stdout (never logged). Returns it when generated.
pub async fn bootstrap_admin(
    db: &Db,
    settings: &Settings,
) -> Result<Option<SecretString>, anyhow::Error> {
    let username = settings.admin_username.trim();
    if username.is_empty() {
        return Ok(None);
    }
    if admins::find_by_username(db, username).await?.is_some() {
        return Ok(None);
    }
    let (password, generated) = match &settings.admin_password {
        Some(p) if !p.expose_secret().is_empty() => (p.clone(), false),
        _ => (SecretString::from(super::crypto::random_token(18)), true),
    };
    let row = AdminRow {
        id: uuid::Uuid::now_v7().to_string(),
        username: username.to_string(),
        password_hash: hash_password(password.expose_secret())?,
        role: "admin".into(),
        status: ADMIN_ACTIVE.into(),
        created_at: crate::storage::users::now(),
        last_login_at: None,
        failed_logins: 0,
        locked_until: None,
    };
    let created = admins::insert_if_absent(db, &row)
        .await
        .map_err(|e: StorageError| anyhow::anyhow!(e))?;
    if !created {
        return Ok(None);
    }
    tracing::info!(category = "security", admin = %username, generated, "bootstrap admin created");
    if generated {
        println!(
            "points-app: created admin '{username}' with generated password: {} (shown once; set APP_ADMIN_PASSWORD to choose it)",
            password.expose_secret()
        );
        return Ok(Some(password));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }
}
