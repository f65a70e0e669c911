//! Sign-in: WeChat login for users, password login for admins, refresh-token rotation.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Duration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{client_ip, rate_limit};
use super::users::{UserView, user_view};
use super::{AppState, error::ApiError};
use crate::security::LoginError;
use crate::security::passwords;
use crate::security::tokens::{REFRESH_TTL_SECS, Role, hash_refresh_token, new_refresh_token};
use crate::storage::users::{self as user_store, RefreshTokenRow, TOKEN_ACTIVE, UserRow, now};
use crate::storage::{admins, users::USER_ACTIVE};

#[derive(Deserialize, ToSchema)]
pub struct WechatLoginRequest {
    /// The code from `wx.login()`.
    pub code: String,
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Deserialize, ToSchema)]
pub struct AdminLoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
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

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    #[serde(flatten)]
    pub tokens: TokenPair,
    pub user: UserView,
}

const SUBJECT_USER: &str = "user";
const SUBJECT_ADMIN: &str = "admin";

fn login_error(e: &LoginError) -> ApiError {
    match e {
        LoginError::CodeInvalid => {
            ApiError::bad_request("WECHAT_CODE_INVALID", "the login code is not valid")
        }
        LoginError::CodeUsed => ApiError::bad_request(
            "WECHAT_CODE_USED",
            "the login code was already used; call wx.login() again",
        ),
        LoginError::RateLimited => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "WECHAT_RATE_LIMITED",
            "WeChat is rate limiting logins; retry shortly",
        )
        .with_retry_after(5),
        LoginError::HighRisk => ApiError::new(
            StatusCode::FORBIDDEN,
            "WECHAT_HIGH_RISK",
            "WeChat flagged this account as high risk",
        ),
        LoginError::Busy => ApiError::unavailable("WECHAT_BUSY", "WeChat is busy; retry shortly")
            .with_retry_after(2),
        LoginError::Upstream(_) => ApiError::unavailable(
            "WECHAT_UNAVAILABLE",
            "WeChat login is unavailable; retry shortly",
        ),
    }
}

/// Creates a session (or continues `family` on refresh): access token, refresh token, key.
async fn issue(
    state: &AppState,
    subject_type: &str,
    subject_id: &str,
    role: Role,
    family: Option<String>,
) -> Result<TokenPair, ApiError> {
    let sid = family.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let (refresh_token, hash) = new_refresh_token();
    let t = now();
    user_store::insert_refresh_token(
        &state.db,
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
    let (access_token, expires_in) = state
        .security
        .tokens
        .issue(subject_id, role, &sid)
        .map_err(ApiError::internal)?;
    Ok(TokenPair {
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in,
        sign_key: (role == Role::User).then(|| state.security.tokens.sign_key(&sid)),
    })
}

#[utoipa::path(post, path = "/api/auth/wechat-login", tag = "auth", request_body = WechatLoginRequest,
    responses((status = 200, body = LoginResponse), (status = 400, description = "WECHAT_CODE_INVALID / WECHAT_CODE_USED"),
        (status = 403, description = "USER_DISABLED / WECHAT_HIGH_RISK"), (status = 429, description = "RATE_LIMITED")))]
pub async fn wechat_login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<WechatLoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let ip = client_ip(&req);
    rate_limit(&state, &state.security.limits.login_per_ip, &ip).await?;
    let code = body.code.trim();
    if code.is_empty() || code.len() > 128 {
        return Err(ApiError::validation("code must be 1-128 characters"));
    }
    let session = state
        .security
        .code2session
        .code2session(code)
        .await
        .map_err(|e| {
            state.security.event("login_refused", &e.to_string());
            login_error(&e).with_cause(e)
        })?;
    let user = match user_store::find_by_openid(&state.db, &session.openid).await? {
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
            let (user, created) = user_store::create_or_get(&state.db, row).await?;
            if created {
                state.security.metrics.user_registrations_total.inc();
                tracing::info!(category = "business", user_id = %user.id, "user registered");
            }
            user
        }
    };
    if user.status != USER_ACTIVE {
        state
            .security
            .event("disabled_user_login_refused", &user.id);
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "USER_DISABLED",
            "this account is disabled",
        ));
    }
    user_store::record_login(&state.db, &user.id, &ip).await?;
    let tokens = issue(&state, SUBJECT_USER, &user.id, Role::User, None).await?;
    let user = user_view(&state, user).await?;
    Ok(HttpResponse::Ok().json(LoginResponse { tokens, user }))
}

#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "REFRESH_TOKEN_INVALID / REFRESH_TOKEN_EXPIRED / REFRESH_TOKEN_REUSED")))]
pub async fn refresh(
    state: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let invalid = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "REFRESH_TOKEN_INVALID",
            "the refresh token is not valid",
        )
    };
    let token = body.refresh_token.trim();
    if token.is_empty() || token.len() > 256 {
        return Err(invalid());
    }
    let row = user_store::find_refresh_token(&state.db, &hash_refresh_token(token))
        .await?
        .ok_or_else(invalid)?;
    let reused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "REFRESH_TOKEN_REUSED",
            "this refresh token was already used; the session is revoked, sign in again",
        )
    };
    if row.status != TOKEN_ACTIVE || !user_store::use_refresh_token(&state.db, &row.id).await? {
        // A used token presented again: it was stolen or replayed. End the whole session.
        user_store::revoke_family(&state.db, &row.family_id).await?;
        // Every other instance drops its cached "not revoked" too (L1 invalidation).
        state
            .security
            .session_revoked
            .invalidate(&row.family_id)
            .await;
        state.security.session_revoked.put(&row.family_id, true);
        state
            .security
            .event("refresh_token_reused", &row.subject_id);
        return Err(reused());
    }
    if row.expires_at < now() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "REFRESH_TOKEN_EXPIRED",
            "the refresh token expired; sign in again",
        ));
    }
    let tokens = match row.subject_type.as_str() {
        SUBJECT_USER => {
            let status = user_store::find(&state.db, &row.subject_id)
                .await?
                .map(|u| u.status);
            if status.as_deref() != Some(USER_ACTIVE) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "USER_DISABLED",
                    "this account is disabled",
                ));
            }
            issue(
                &state,
                SUBJECT_USER,
                &row.subject_id,
                Role::User,
                Some(row.family_id),
            )
            .await?
        }
        SUBJECT_ADMIN => {
            let status = admins::find(&state.db, &row.subject_id)
                .await?
                .map(|a| a.status);
            if status.as_deref() != Some(admins::ADMIN_ACTIVE) {
                return Err(ApiError::forbidden("this admin account is disabled"));
            }
            issue(
                &state,
                SUBJECT_ADMIN,
                &row.subject_id,
                Role::Admin,
                Some(row.family_id),
            )
            .await?
        }
        _ => return Err(invalid()),
    };
    Ok(HttpResponse::Ok().json(tokens))
}

#[utoipa::path(post, path = "/api/admin/login", tag = "admin", request_body = AdminLoginRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "INVALID_CREDENTIALS"), (status = 429, description = "RATE_LIMITED")))]
pub async fn admin_login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<AdminLoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let ip = client_ip(&req);
    rate_limit(&state, &state.security.limits.login_per_ip, &ip).await?;
    if body.username.len() > 64 || body.password.len() > 256 {
        return Err(ApiError::validation(
            "username at most 64, password at most 256 characters",
        ));
    }
    let admin = admins::find_by_username(&state.db, body.username.trim()).await?;
    let password = body.password.clone();
    let hash = admin
        .as_ref()
        .map(|a| a.password_hash.clone())
        .unwrap_or_else(|| passwords::dummy_hash().to_string());
    // argon2 takes tens of milliseconds of CPU: keep it off the async workers.
    let ok = web::block(move || passwords::verify_password(&password, &hash))
        .await
        .map_err(ApiError::internal)?;
    let admin = match admin {
        Some(a) if ok => a,
        _ => {
            state
                .security
                .event("admin_login_failed", body.username.trim());
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "INVALID_CREDENTIALS",
                "wrong username or password",
            ));
        }
    };
    if admin.status != admins::ADMIN_ACTIVE {
        state
            .security
            .event("disabled_admin_login_refused", &admin.id);
        return Err(ApiError::forbidden("this admin account is disabled"));
    }
    admins::touch_login(&state.db, &admin.id).await?;
    let tokens = issue(&state, SUBJECT_ADMIN, &admin.id, Role::Admin, None).await?;
    Ok(HttpResponse::Ok().json(tokens))
}
