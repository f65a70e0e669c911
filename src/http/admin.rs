//! Admin routes for merchants, users and the audit log. Every change writes `audit_log`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::extract::{AdminUser, client_ip};
use super::merchants::{MerchantList, MerchantView, Page, paginate};
use super::{AppState, error::ApiError};
use crate::security::Phone;
use crate::storage::admins::{self, AuditRow};
use crate::storage::merchants::{
    self as merchant_store, MERCHANT_APPROVED, MERCHANT_DISABLED, MERCHANT_PENDING,
};
use crate::storage::users::{self as user_store, USER_ACTIVE, USER_DISABLED, now};
use crate::telemetry::current_trace_id;

#[derive(Deserialize, IntoParams)]
pub struct MerchantFilter {
    /// `pending`, `approved` or `disabled`.
    pub status: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
pub struct UserFilter {
    /// One search box: a phone number searches by phone, anything else by nickname.
    pub q: Option<String>,
    /// Substring of the nickname.
    pub nickname: Option<String>,
    /// A full phone number (matched through the blind index).
    pub phone: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AdminUserView {
    pub id: String,
    pub nickname: Option<String>,
    pub phone: Option<String>,
    pub status: String,
    pub last_login_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct AdminUserList {
    pub items: Vec<AdminUserView>,
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetUserStatus {
    /// `active` or `disabled`.
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub actor_type: String,
    pub actor_id: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub trace_id: String,
    pub ip: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditList {
    pub items: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

/// One audit record: who did what to which target, before and after. Every admin change
/// calls it (points rules, refunds and adjustments too).
pub async fn audit(
    state: &AppState,
    req: &HttpRequest,
    admin: &AdminUser,
    action: &str,
    target: (&str, &str),
    before: serde_json::Value,
    after: serde_json::Value,
) -> Result<(), ApiError> {
    admins::insert_audit(
        &state.db,
        &AuditRow {
            id: uuid::Uuid::now_v7().to_string(),
            actor_type: "admin".into(),
            actor_id: admin.admin_id.clone(),
            action: action.into(),
            target_type: target.0.into(),
            target_id: target.1.into(),
            before_json: Some(before.to_string()),
            after_json: Some(after.to_string()),
            trace_id: current_trace_id(),
            ip: Some(client_ip(req)),
            created_at: now(),
        },
    )
    .await?;
    tracing::info!(category = "audit", admin_id = %admin.admin_id, action, target_type = target.0, target_id = target.1, "admin action");
    Ok(())
}

#[utoipa::path(get, path = "/api/admin/merchants", tag = "admin", security(("bearer" = [])), params(MerchantFilter),
    responses((status = 200, body = MerchantList), (status = 401), (status = 403)))]
pub async fn list_merchants(
    _admin: AdminUser,
    q: web::Query<MerchantFilter>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s @ (MERCHANT_PENDING | MERCHANT_APPROVED | MERCHANT_DISABLED)) => Some(s),
        Some(_) => {
            return Err(ApiError::validation(
                "status must be pending, approved or disabled",
            ));
        }
    };
    let page = Page {
        cursor: q.cursor.clone(),
        limit: q.limit,
    };
    let (cursor, limit) = page.parse()?;
    let rows = merchant_store::list_by_status(&state.db, status, cursor, limit + 1).await?;
    let (rows, next_cursor) = paginate(rows, limit, |m| m.id.clone());
    let items = rows.into_iter().map(MerchantView::from).collect();
    Ok(HttpResponse::Ok().json(MerchantList { items, next_cursor }))
}

async fn change_merchant(
    req: HttpRequest,
    admin: AdminUser,
    id: &str,
    state: &AppState,
    from: &[&str],
    to: &str,
    action: &str,
) -> Result<HttpResponse, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "MERCHANT_NOT_FOUND",
            "no such merchant",
        )
    };
    let before = merchant_store::find(&state.db, id)
        .await?
        .ok_or_else(not_found)?;
    if !merchant_store::transition(&state.db, id, from, to, &admin.admin_id).await? {
        return Err(ApiError::conflict(
            "INVALID_MERCHANT_STATUS",
            format!("the merchant is {}; cannot {action}", before.status),
        ));
    }
    state.security.merchant_access.invalidate(id).await;
    let after = merchant_store::find(&state.db, id)
        .await?
        .ok_or_else(not_found)?;
    audit(
        state,
        &req,
        &admin,
        &format!("merchant.{action}"),
        ("merchant", id),
        json!({"status": before.status}),
        json!({"status": after.status}),
    )
    .await?;
    Ok(HttpResponse::Ok().json(MerchantView::from(after)))
}

#[utoipa::path(post, path = "/api/admin/merchants/{id}/approve", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = MerchantView), (status = 404), (status = 409, description = "INVALID_MERCHANT_STATUS")))]
pub async fn approve_merchant(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    change_merchant(
        req,
        admin,
        &path,
        &state,
        &[MERCHANT_PENDING, MERCHANT_DISABLED],
        MERCHANT_APPROVED,
        "approve",
    )
    .await
}

#[utoipa::path(post, path = "/api/admin/merchants/{id}/disable", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = MerchantView), (status = 404), (status = 409)))]
pub async fn disable_merchant(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    change_merchant(
        req,
        admin,
        &path,
        &state,
        &[MERCHANT_PENDING, MERCHANT_APPROVED],
        MERCHANT_DISABLED,
        "disable",
    )
    .await
}

#[utoipa::path(get, path = "/api/admin/users", tag = "admin", security(("bearer" = [])), params(UserFilter),
    responses((status = 200, body = AdminUserList), (status = 401), (status = 403), (status = 422)))]
pub async fn list_users(
    _admin: AdminUser,
    q: web::Query<UserFilter>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let page = Page {
        cursor: q.cursor.clone(),
        limit: q.limit,
    };
    let (cursor, limit) = page.parse()?;
    let boxed = q.q.as_deref().map(str::trim).filter(|v| !v.is_empty());
    let boxed_phone = boxed.and_then(|v| Phone::parse(v).ok());
    let nickname = q
        .nickname
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .or(boxed.filter(|_| boxed_phone.is_none()));
    if nickname.is_some_and(|n| n.chars().count() > 32) {
        return Err(ApiError::validation(
            "nickname filter at most 32 characters",
        ));
    }
    let phone = match q.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => Some(Phone::parse(p).map_err(ApiError::validation)?),
        None => boxed_phone,
    };
    let phone_index = phone.map(|p| state.security.fields.blind_index(p.as_str()));
    let rows = user_store::search(
        &state.db,
        nickname,
        phone_index.as_deref(),
        cursor,
        limit + 1,
    )
    .await?;
    let (rows, next_cursor) = paginate(rows, limit, |u| u.id.clone());
    let items = rows
        .into_iter()
        .map(|u| AdminUserView {
            id: u.id,
            nickname: u.nickname,
            phone: u.phone_masked,
            status: u.status,
            last_login_at: u.last_login_at.map(|t| t.and_utc()),
            created_at: u.created_at.and_utc(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(AdminUserList { items, next_cursor }))
}

#[utoipa::path(put, path = "/api/admin/users/{id}/status", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = SetUserStatus,
    responses((status = 200, body = AdminUserView), (status = 404), (status = 422)))]
pub async fn set_user_status(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<String>,
    body: web::Json<SetUserStatus>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let status = match body.status.as_str() {
        s @ (USER_ACTIVE | USER_DISABLED) => s,
        _ => return Err(ApiError::validation("status must be active or disabled")),
    };
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "USER_NOT_FOUND", "no such user");
    let before = user_store::find(&state.db, &path)
        .await?
        .ok_or_else(not_found)?;
    user_store::set_status(&state.db, &path, status).await?;
    state.security.user_status.invalidate(&path).await;
    let after = user_store::find(&state.db, &path)
        .await?
        .ok_or_else(not_found)?;
    audit(
        &state,
        &req,
        &admin,
        "user.set_status",
        ("user", &path),
        json!({"status": before.status}),
        json!({"status": after.status}),
    )
    .await?;
    Ok(HttpResponse::Ok().json(AdminUserView {
        id: after.id,
        nickname: after.nickname,
        phone: after.phone_masked,
        status: after.status,
        last_login_at: after.last_login_at.map(|t| t.and_utc()),
        created_at: after.created_at.and_utc(),
    }))
}

#[utoipa::path(get, path = "/api/admin/audit-log", tag = "admin", security(("bearer" = [])), params(Page),
    responses((status = 200, body = AuditList), (status = 401), (status = 403)))]
pub async fn audit_log(
    _admin: AdminUser,
    page: web::Query<Page>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (cursor, limit) = page.parse()?;
    let rows = admins::list_audit(&state.db, cursor, limit + 1).await?;
    let (rows, next_cursor) = paginate(rows, limit, |a| a.id.clone());
    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    let items = rows
        .into_iter()
        .map(|a| AuditEntry {
            id: a.id,
            actor_type: a.actor_type,
            actor_id: a.actor_id,
            action: a.action,
            target_type: a.target_type,
            target_id: a.target_id,
            before: parse(a.before_json),
            after: parse(a.after_json),
            trace_id: a.trace_id,
            ip: a.ip,
            created_at: a.created_at.and_utc(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(AuditList { items, next_cursor }))
}
