//! Users: the profile a user sees, their phone, and the admin's search and status changes.
//! A phone stored under a retired key is re-encrypted here, and only here, when read.

use std::sync::Arc;

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::audit::{self, Actor, Audit};
use super::error::{AppError, ErrorCode};
use super::page::{PageRequest, Paged};
use crate::security::crypto::FieldCipher;
use crate::security::{Phone, SecurityState};
use crate::storage::Db;
use crate::storage::users::{self as store, StoredPhone, UserRow};

pub use crate::storage::users::{USER_ACTIVE, USER_DISABLED};

/// The user as shown to them.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = UserView)]
pub struct UserProfile {
    pub id: String,
    pub nickname: Option<String>,
    pub avatar: Option<String>,
    /// Masked: `138****5678`.
    pub phone: Option<String>,
    pub status: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A user as admins see them.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AdminUserView)]
pub struct UserSummary {
    pub id: String,
    pub nickname: Option<String>,
    pub phone: Option<String>,
    pub status: String,
    pub last_login_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<UserRow> for UserSummary {
    fn from(u: UserRow) -> Self {
        UserSummary {
            id: u.id,
            nickname: u.nickname,
            phone: u.phone_masked,
            status: u.status,
            last_login_at: u.last_login_at.map(|t| t.and_utc()),
            created_at: u.created_at.and_utc(),
        }
    }
}

/// What an admin searches users by.
#[derive(Debug, Default)]
pub struct UserSearch {
    pub nickname: Option<String>,
    pub phone: Option<Phone>,
}

#[derive(Clone)]
pub struct Users {
    db: Db,
    security: Arc<SecurityState>,
}

pub(crate) fn phone_aad(user_id: &str) -> String {
    format!("users.phone:{user_id}")
}

fn gone() -> AppError {
    AppError::new(ErrorCode::Unauthorized, "the account no longer exists")
}

/// The audit record of a status change: the status before and after.
fn status_audit_json(u: &UserRow) -> String {
    json!({"status": u.status}).to_string()
}

fn user_not_found() -> AppError {
    AppError::new(ErrorCode::UserNotFound, "no such user")
}

/// Lazy key rotation of an encrypted field: the plaintext when `key_id` is retired (the
/// caller stores it again under the current key), `None` when the key is current. Phones
/// and merchant contact phones both rotate through this one check.
pub(crate) fn stale_plaintext(
    fields: &FieldCipher,
    key_id: &str,
    cipher: &str,
    aad: &str,
) -> Result<Option<String>, AppError> {
    if !fields.needs_rotation(key_id) {
        return Ok(None);
    }
    fields
        .decrypt(key_id, cipher, aad)
        .map(Some)
        .map_err(AppError::internal)
}

impl Users {
    pub fn new(db: Db, security: Arc<SecurityState>) -> Users {
        Users { db, security }
    }

    /// Encrypts a phone for storage under the current key, with its blind index and mask.
    fn seal(&self, phone: &Phone, aad: &str) -> Result<StoredPhone, AppError> {
        let fields = &self.security.fields;
        let (key_id, cipher) = fields
            .encrypt(phone.as_str(), aad)
            .map_err(AppError::internal)?;
        Ok(StoredPhone {
            cipher,
            key_id,
            blind_index: fields.blind_index(phone.as_str()),
            masked: phone.masked(),
        })
    }

    /// The user as shown to them; a phone under a retired key is re-encrypted on the way
    /// (only while the row still holds that value, so a newer phone is never overwritten).
    pub(crate) async fn profile_of(&self, user: UserRow) -> Result<UserProfile, AppError> {
        if let (Some(cipher), Some(key_id)) = (&user.phone_cipher, &user.phone_key_id) {
            let aad = phone_aad(&user.id);
            if let Some(plain) = stale_plaintext(&self.security.fields, key_id, cipher, &aad)? {
                let phone =
                    Phone::parse(&plain).map_err(|e| AppError::internal(anyhow::anyhow!(e)))?;
                let sealed = self.seal(&phone, &aad)?;
                store::set_phone(&self.db, &user.id, &sealed, Some((key_id, cipher))).await?;
            }
        }
        Ok(UserProfile {
            id: user.id,
            nickname: user.nickname,
            avatar: user.avatar,
            phone: user.phone_masked,
            status: user.status,
            created_at: user.created_at.and_utc(),
        })
    }

    async fn load(&self, user_id: &str) -> Result<UserRow, AppError> {
        store::find(&self.db, user_id).await?.ok_or_else(gone)
    }

    /// The signed-in user's profile (401 when the account no longer exists).
    pub async fn profile(&self, user_id: &str) -> Result<UserProfile, AppError> {
        let row = self.load(user_id).await?;
        self.profile_of(row).await
    }

    /// Changes the nickname and/or avatar (already checked by the caller).
    pub async fn update_profile(
        &self,
        user_id: &str,
        nickname: Option<&str>,
        avatar: Option<&str>,
    ) -> Result<UserProfile, AppError> {
        store::update_profile(&self.db, user_id, nickname, avatar).await?;
        self.profile(user_id).await
    }

    /// Stores the user's phone, encrypted under the current key.
    pub async fn set_phone(&self, user_id: &str, phone: &Phone) -> Result<UserProfile, AppError> {
        let sealed = self.seal(phone, &phone_aad(user_id))?;
        store::set_phone(&self.db, user_id, &sealed, None).await?;
        self.profile(user_id).await
    }

    /// The user's status and whether session `sid` was revoked, in one read, for
    /// authorization (`None`: no such user).
    pub async fn auth_state(
        &self,
        user_id: &str,
        sid: &str,
    ) -> Result<Option<(String, bool)>, AppError> {
        Ok(store::auth_state(&self.db, user_id, sid).await?)
    }

    /// Admin search by nickname substring or phone (through its blind index), newest first.
    pub async fn search(
        &self,
        q: &UserSearch,
        page: &PageRequest,
    ) -> Result<Paged<UserSummary>, AppError> {
        let phone_index = q
            .phone
            .as_ref()
            .map(|p| self.security.fields.blind_index(p.as_str()));
        let rows = store::search(
            &self.db,
            q.nickname.as_deref(),
            phone_index.as_deref(),
            page.cursor(),
            page.fetch(),
        )
        .await?;
        Ok(Paged::from_rows(rows, page, |u| u.id.clone()).map(UserSummary::from))
    }

    /// Enables or disables a user (`active` / `disabled`); the change and its audit record
    /// commit together. Disabling also ends every session of the user, so enabling them
    /// again needs a new sign-in. Authorization sees it within its cache's lifetime on every
    /// instance, at once on this one.
    pub async fn set_status(
        &self,
        actor: &Actor,
        user_id: &str,
        status: &str,
    ) -> Result<UserSummary, AppError> {
        if status != USER_ACTIVE && status != USER_DISABLED {
            return Err(AppError::validation("status must be active or disabled"));
        }
        let action = "user.set_status";
        let target = ("user", user_id);
        let changed = store::set_status_audited(
            &self.db,
            user_id,
            status,
            status == USER_DISABLED,
            Audit::row(actor, action, target),
            status_audit_json,
        )
        .await?
        .ok_or_else(user_not_found)?;
        self.security.user_status.invalidate(user_id).await;
        for sid in &changed.ended_sessions {
            self.security.session_revoked.invalidate(sid).await;
            self.security.session_revoked.put(sid, true);
        }
        let after = changed.user;
        audit::logged(actor, action, target);
        Ok(UserSummary::from(after))
    }
}
