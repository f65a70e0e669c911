//! Sign-in: WeChat login for users, password login for admins, refresh-token rotation.
//! The rules (registration, rotation, reuse detection) live in `app::identity`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::{SessionOf, client_ip, rate_limit};
use super::{AppState, error::ApiError};

pub use crate::app::identity::{Login as LoginResponse, TokenPair};

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
    let login = state.app.identity.wechat_login(code, &ip).await?;
    Ok(no_store().json(login))
}

#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "REFRESH_TOKEN_INVALID / REFRESH_TOKEN_EXPIRED / REFRESH_TOKEN_REUSED")))]
pub async fn refresh(
    state: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let tokens = state.app.identity.refresh(&body.refresh_token).await?;
    Ok(no_store().json(tokens))
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
    let tokens = state
        .app
        .identity
        .admin_login(body.username.trim(), body.password.clone())
        .await?;
    Ok(no_store().json(tokens))
}

#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    responses((status = 204, description = "Signed out: the session's access and refresh tokens no longer work (answered again for a session already ended)"),
        (status = 401, description = "UNAUTHORIZED / TOKEN_INVALID / TOKEN_EXPIRED")),
    security(("bearer" = [])))]
pub async fn logout(
    state: web::Data<AppState>,
    session: SessionOf,
) -> Result<HttpResponse, ApiError> {
    state.app.identity.logout(&session.sid).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A 200 whose body carries credentials: no cache or proxy may keep it.
fn no_store() -> actix_web::HttpResponseBuilder {
    let mut res = HttpResponse::Ok();
    res.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    res
}
