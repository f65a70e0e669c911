//! Identity: WeChat login (registering new users), admin password login, and refresh-token
//! rotation with reuse detection. Also what authorization reads: admin status and whether a
//! session was revoked.

use std::sync::Arc;

use chrono::Duration;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{AppError, ErrorCode};
use super::users::{USER_ACTIVE, UserProfile, Users};
use crate::security::tokens::{REFRESH_TTL_SECS, Role, hash_refresh_token, new_refresh_token};
use crate::security::{LoginError, SecurityState, passwords};
use crate::storage::Db;
use crate::storage::admins;
use crate::storage::users::{
    self as user_store, RefreshTokenRow, SUBJECT_USER, TOKEN_ACTIVE, TOKEN_REVOKED, UserRow, now,
};

pub use crate::storage::admins::ADMIN_ACTIVE;

const SUBJECT_ADMIN: &str = "admin";

/// A session's credentials.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Hex key for `X-Signature` (users only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_key: Option<String>,
}

/// A user's login: the session and the user.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = LoginResponse)]
pub struct Login {
    #[serde(flatten)]
    pub tokens: TokenPair,
    pub user: UserProfile,
}

#[derive(Clone)]
pub struct Identity {
    db: Db,
    security: Arc<SecurityState>,
    users: Users,
    staff: super::staff::Staff,
}

fn user_disabled() -> AppError {
    AppError::new(ErrorCode::UserDisabled, "this account is disabled")
}

fn session_ended() -> AppError {
    AppError::new(
        ErrorCode::SessionRevoked,
        "this session was signed out or revoked; sign in again",
    )
}

/// Consecutive failed admin sign-ins before the account locks.
pub const ADMIN_LOCK_AFTER: i32 = 5;
/// The first lock's length; each further failure doubles it, up to [`ADMIN_LOCK_MAX_SECS`].
pub const ADMIN_LOCK_FIRST_SECS: i64 = 30;
pub const ADMIN_LOCK_MAX_SECS: i64 = 900;

/// How long an admin account locks after its `failures`-th consecutive failed sign-in:
/// nothing before the fifth, then 30 s, 60 s, 120 s, ... up to 15 minutes.
pub fn admin_lock_for(failures: i32) -> Option<Duration> {
    let over = failures.checked_sub(ADMIN_LOCK_AFTER)?;
    let over = u32::try_from(over).ok()?;
    let secs = 2_i64
        .checked_pow(over)
        .and_then(|f| f.checked_mul(ADMIN_LOCK_FIRST_SECS))
        .map_or(ADMIN_LOCK_MAX_SECS, |s| s.min(ADMIN_LOCK_MAX_SECS));
    Some(Duration::seconds(secs))
}

/// What a failed sign-in's log line says about the typed username: people type passwords
/// there, so never the text itself, only a short digest that lets repeats be grouped.
fn typed_name_digest(username: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(username.as_bytes());
    format!("typed-username-sha256:{}", hex::encode(&digest[..6]))
}

fn wrong_credentials() -> AppError {
    AppError::new(ErrorCode::InvalidCredentials, "wrong username or password")
}

fn account_locked(retry_after_secs: i64) -> AppError {
    AppError::new(
        ErrorCode::AccountLocked,
        format!("too many failed sign-ins for this account; it is locked for {retry_after_secs} s"),
    )
    .with_retry_after(u64::try_from(retry_after_secs).unwrap_or(1))
}

fn admin_disabled() -> AppError {
    AppError::new(ErrorCode::Forbidden, "this admin account is disabled")
}

/// WeChat's refusals of a login code, as the client should read them.
fn login_error(e: LoginError) -> AppError {
    let err = match &e {
        LoginError::CodeInvalid => {
            AppError::new(ErrorCode::WechatCodeInvalid, "the login code is not valid")
        }
        LoginError::CodeUsed => AppError::new(
            ErrorCode::WechatCodeUsed,
            "the login code was already used; call wx.login() again",
        ),
        LoginError::RateLimited => AppError::new(
            ErrorCode::WechatRateLimited,
            "WeChat is rate limiting logins; retry shortly",
        )
        .with_retry_after(5),
        LoginError::HighRisk => AppError::new(
            ErrorCode::WechatHighRisk,
            "WeChat flagged this account as high risk",
        ),
        LoginError::Busy => AppError::new(ErrorCode::WechatBusy, "WeChat is busy; retry shortly")
            .with_retry_after(2),
        LoginError::Upstream(_) => AppError::new(
            ErrorCode::WechatUnavailable,
            "WeChat login is unavailable; retry shortly",
        ),
    };
    err.with_cause(e)
}

impl Identity {
    pub fn new(db: Db, security: Arc<SecurityState>, users: Users) -> Identity {
        Identity {
            staff: super::staff::Staff::new(db.clone()),
            db,
            security,
            users,
        }
    }

    /// Creates a session (or continues `family` on refresh): access token, refresh token,
    /// and for users the request signing key. A user's access token carries their merchant
    /// memberships as they are now, so a role change or removal reaches the token at the
    /// next refresh (and every change re-checks the database anyway).
    async fn issue(
        &self,
        subject_type: &str,
        subject_id: &str,
        role: Role,
        family: Option<String>,
    ) -> Result<TokenPair, AppError> {
        let sid = family.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let (refresh_token, hash) = new_refresh_token();
        let t = now();
        user_store::insert_refresh_token(
            &self.db,
            &RefreshTokenRow {
                id: uuid::Uuid::now_v7().to_string(),
                family_id: sid.clone(),
                subject_type: subject_type.to_string(),
                subject_id: subject_id.to_string(),
                token_hash: hash,
                status: TOKEN_ACTIVE.to_string(),
                expires_at: t + Duration::seconds(REFRESH_TTL_SECS),
                created_at: t,
                used_at: None,
            },
        )
        .await?;
        let memberships = match role {
            Role::User => self.staff.memberships(subject_id).await?,
            Role::Admin => Vec::new(),
        };
        let (access_token, expires_in) = self
            .security
            .tokens
            .issue(subject_id, role, &sid, memberships)
            .map_err(AppError::internal)?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            token_type: "Bearer",
            expires_in,
            sign_key: (role == Role::User).then(|| self.security.tokens.sign_key(&sid)),
        })
    }

    /// Signs a user in with a `wx.login()` code, registering them on first sight. A disabled
    /// user is refused (403 `USER_DISABLED`).
    pub async fn wechat_login(&self, code: &str, ip: &str) -> Result<Login, AppError> {
        let session = self
            .security
            .code2session
            .code2session(code)
            .await
            .map_err(|e| {
                self.security.event("login_refused", &e.to_string());
                login_error(e)
            })?;
        let user = match user_store::find_by_openid(&self.db, &session.openid).await? {
            Some(u) => u,
            None => {
                let t = now();
                let row = UserRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    openid: session.openid.clone(),
                    unionid: session.unionid.clone(),
                    nickname: None,
                    avatar: None,
                    phone_cipher: None,
                    phone_key_id: None,
                    phone_blind_index: None,
                    phone_masked: None,
                    status: USER_ACTIVE.to_string(),
                    last_login_ip: None,
                    last_login_at: None,
                    created_at: t,
                    updated_at: t,
                };
                let (user, created) = user_store::create_or_get(&self.db, row).await?;
                if created {
                    self.security.metrics.user_registrations_total.inc();
                    tracing::info!(category = "business", user_id = %user.id, "user registered");
                }
                user
            }
        };
        if user.status != USER_ACTIVE {
            self.security.event("disabled_user_login_refused", &user.id);
            return Err(user_disabled());
        }
        user_store::record_login(&self.db, &user.id, ip).await?;
        let tokens = self.issue(SUBJECT_USER, &user.id, Role::User, None).await?;
        let user = self.users.profile_of(user).await?;
        Ok(Login { tokens, user })
    }

    /// Rotates a refresh token: each token works once and its successor continues the same
    /// session. A token presented a second time was stolen or replayed, so the whole session
    /// is revoked (here and, through the cache invalidation, on every instance).
    pub async fn refresh(&self, token: &str) -> Result<TokenPair, AppError> {
        let invalid = || {
            AppError::new(
                ErrorCode::RefreshTokenInvalid,
                "the refresh token is not valid",
            )
        };
        let token = token.trim();
        if token.is_empty() || token.len() > 256 {
            return Err(invalid());
        }
        let row = user_store::find_refresh_token(&self.db, &hash_refresh_token(token))
            .await?
            .ok_or_else(invalid)?;
        if row.status == TOKEN_REVOKED {
            // Disabling a user ends their sessions: say why.
            if row.subject_type == SUBJECT_USER && !self.user_active(&row.subject_id).await? {
                return Err(user_disabled());
            }
            return Err(session_ended());
        }
        if row.status != TOKEN_ACTIVE || !user_store::use_refresh_token(&self.db, &row.id).await? {
            user_store::revoke_family(&self.db, &row.family_id).await?;
            self.security
                .session_revoked
                .invalidate(&row.family_id)
                .await;
            self.security.session_revoked.put(&row.family_id, true);
            self.security.event("refresh_token_reused", &row.subject_id);
            return Err(AppError::new(
                ErrorCode::RefreshTokenReused,
                "this refresh token was already used; the session is revoked, sign in again",
            ));
        }
        if row.expires_at < now() {
            return Err(AppError::new(
                ErrorCode::RefreshTokenExpired,
                "the refresh token expired; sign in again",
            ));
        }
        match row.subject_type.as_str() {
            SUBJECT_USER => {
                if !self.user_active(&row.subject_id).await? {
                    return Err(user_disabled());
                }
                self.issue(
                    SUBJECT_USER,
                    &row.subject_id,
                    Role::User,
                    Some(row.family_id),
                )
                .await
            }
            SUBJECT_ADMIN => {
                if self.admin_status(&row.subject_id).await?.as_deref() != Some(ADMIN_ACTIVE) {
                    return Err(admin_disabled());
                }
                self.issue(
                    SUBJECT_ADMIN,
                    &row.subject_id,
                    Role::Admin,
                    Some(row.family_id),
                )
                .await
            }
            _ => Err(invalid()),
        }
    }

    /// Signs an admin in with a password. An unknown username costs the same hash check as
    /// a wrong password, so the answer's timing does not tell which names exist. After
    /// [`ADMIN_LOCK_AFTER`] consecutive failures the account refuses sign-in for a while
    /// ([`admin_lock_for`]), whatever the password, on every instance (the lock is a column).
    pub async fn admin_login(
        &self,
        username: &str,
        password: String,
    ) -> Result<TokenPair, AppError> {
        let admin = admins::find_by_username(&self.db, username).await?;
        let t = now();
        if let Some(until) = admin
            .as_ref()
            .and_then(|a| a.locked_until)
            .filter(|u| *u > t)
        {
            let wait = (until - t).num_seconds().max(1);
            if let Some(a) = &admin {
                self.security.event("admin_login_locked", &a.id);
            }
            return Err(account_locked(wait));
        }
        let hash = admin
            .as_ref()
            .map(|a| a.password_hash.clone())
            .unwrap_or_else(|| passwords::dummy_hash().to_string());
        // argon2 takes tens of milliseconds of CPU: keep it off the async workers.
        let ok = tokio::task::spawn_blocking(move || passwords::verify_password(&password, &hash))
            .await
            .map_err(AppError::internal)?;
        let admin = match admin {
            Some(a) if ok => a,
            Some(a) => {
                self.security.event("admin_login_failed", &a.id);
                let (_, locked) =
                    admins::record_failed_login(&self.db, &a.id, admin_lock_for).await?;
                if let Some(until) = locked {
                    self.security.event("admin_locked", &a.id);
                    return Err(account_locked((until - t).num_seconds().max(1)));
                }
                return Err(wrong_credentials());
            }
            None => {
                self.security
                    .event("admin_login_failed", &typed_name_digest(username));
                return Err(wrong_credentials());
            }
        };
        if admin.status != ADMIN_ACTIVE {
            self.security
                .event("disabled_admin_login_refused", &admin.id);
            return Err(admin_disabled());
        }
        admins::touch_login(&self.db, &admin.id).await?;
        self.issue(SUBJECT_ADMIN, &admin.id, Role::Admin, None)
            .await
    }

    /// Signs out: the session (its refresh family) is revoked, so its access token and every
    /// refresh token of it stop working here and, through the cache invalidation, on every
    /// instance.
    pub async fn logout(&self, sid: &str) -> Result<(), AppError> {
        user_store::revoke_family(&self.db, sid).await?;
        self.security.session_revoked.invalidate(sid).await;
        self.security.session_revoked.put(sid, true);
        Ok(())
    }

    async fn user_active(&self, user_id: &str) -> Result<bool, AppError> {
        let status = user_store::find(&self.db, user_id).await?.map(|u| u.status);
        Ok(status.as_deref() == Some(USER_ACTIVE))
    }

    /// An admin's status (`None` when there is no such admin), for authorization.
    pub async fn admin_status(&self, admin_id: &str) -> Result<Option<String>, AppError> {
        Ok(admins::find(&self.db, admin_id).await?.map(|a| a.status))
    }

    /// True when the session (refresh-token family) was revoked.
    pub async fn session_revoked(&self, sid: &str) -> Result<bool, AppError> {
        Ok(user_store::family_revoked(&self.db, sid).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_locks_after_five_failures_with_doubling_up_to_fifteen_minutes() {
        let secs = |n| admin_lock_for(n).map(|d| d.num_seconds());
        for n in [i32::MIN, -1, 0, 1, 4] {
            assert_eq!(secs(n), None, "{n}");
        }
        assert_eq!(secs(5), Some(30));
        assert_eq!(secs(6), Some(60));
        assert_eq!(secs(7), Some(120));
        assert_eq!(secs(9), Some(480));
        assert_eq!(secs(10), Some(900));
        assert_eq!(secs(70), Some(900));
        assert_eq!(secs(i32::MAX), Some(900));
    }

    #[test]
    fn a_typed_username_is_never_logged_as_typed() {
        let d = typed_name_digest("hunter2-my-password");
        assert!(!d.contains("hunter2"));
        assert_eq!(d, typed_name_digest("hunter2-my-password"));
        assert_ne!(d, typed_name_digest("admin"));
    }
}
