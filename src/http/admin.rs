//! Admin routes for merchants, users and the audit log. Every change writes `audit_log`
//! (through the app layer, in the change's own transaction where there is one).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{AdminUser, client_ip};
use super::merchants::{MerchantList, MerchantView};
use super::page::PageQuery;
use super::{AppState, error::ApiError};
use crate::actors::payments::Replayed;
use crate::app::audit::Actor;
use crate::app::merchants::{MERCHANT_APPROVED, MERCHANT_DISABLED, MERCHANT_PENDING, Review};
use crate::app::ops::{NotificationDetail, NotificationEntry, Ops};
use crate::app::risk::{RiskRulePatch, RiskRuleView};
use crate::app::users::UserSearch;
use crate::security::Phone;

pub use crate::app::audit::AuditEntry;
pub use crate::app::users::UserSummary as AdminUserView;

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
pub struct AuditList {
    pub items: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

/// The admin behind a request, as the audit log records them.
pub fn actor(req: &HttpRequest, admin: &AdminUser) -> Actor {
    Actor::admin(&admin.admin_id, client_ip(req))
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
    let page = PageQuery {
        cursor: q.cursor.clone(),
        limit: q.limit,
    }
    .page()?;
    let merchants = state.app.merchants.list(status, &page).await?;
    Ok(HttpResponse::Ok().json(MerchantList {
        items: merchants.items,
        next_cursor: merchants.next_cursor,
    }))
}

async fn review(
    req: HttpRequest,
    admin: AdminUser,
    id: &str,
    state: &AppState,
    review: Review,
) -> Result<HttpResponse, ApiError> {
    let merchant = state
        .app
        .merchants
        .review(&actor(&req, &admin), id, review)
        .await?;
    Ok(HttpResponse::Ok().json(merchant))
}

#[utoipa::path(post, path = "/api/admin/merchants/{id}/approve", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = MerchantView), (status = 404), (status = 409, description = "INVALID_MERCHANT_STATUS")))]
pub async fn approve_merchant(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    review(req, admin, &path, &state, Review::Approve).await
}

#[utoipa::path(post, path = "/api/admin/merchants/{id}/disable", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = MerchantView), (status = 404), (status = 409)))]
pub async fn disable_merchant(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    review(req, admin, &path, &state, Review::Disable).await
}

#[utoipa::path(get, path = "/api/admin/users", tag = "admin", security(("bearer" = [])), params(UserFilter),
    responses((status = 200, body = AdminUserList), (status = 401), (status = 403), (status = 422)))]
pub async fn list_users(
    _admin: AdminUser,
    q: web::Query<UserFilter>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let page = PageQuery {
        cursor: q.cursor.clone(),
        limit: q.limit,
    }
    .page()?;
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
    let search = UserSearch {
        nickname: nickname.map(str::to_string),
        phone,
    };
    let users = state.app.users.search(&search, &page).await?;
    Ok(HttpResponse::Ok().json(AdminUserList {
        items: users.items,
        next_cursor: users.next_cursor,
    }))
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
    let user = state
        .app
        .users
        .set_status(&actor(&req, &admin), &path, &body.status)
        .await?;
    Ok(HttpResponse::Ok().json(user))
}

#[utoipa::path(get, path = "/api/admin/audit-log", tag = "admin", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = AuditList), (status = 401), (status = 403)))]
pub async fn audit_log(
    _admin: AdminUser,
    page: web::Query<PageQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let entries = state.app.audit.list(&page.page()?).await?;
    Ok(HttpResponse::Ok().json(AuditList {
        items: entries.items,
        next_cursor: entries.next_cursor,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct NotificationQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
    /// `ok`, `duplicate`, `ignored`, `rejected` or `error`.
    pub result: Option<String>,
    /// The order a payment notification was about.
    pub order_no: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct NotificationList {
    pub items: Vec<NotificationEntry>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/admin/notifications", tag = "admin", security(("bearer" = [])), params(NotificationQuery),
    responses((status = 200, body = NotificationList), (status = 400, description = "INVALID_QUERY / INVALID_CURSOR"), (status = 401), (status = 403)))]
pub async fn notifications(
    _admin: AdminUser,
    query: web::Query<NotificationQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let page = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .page()?;
    let found = state
        .app
        .ops
        .notifications(q.result.as_deref(), q.order_no.as_deref(), &page)
        .await?;
    Ok(HttpResponse::Ok().json(NotificationList {
        items: found.items,
        next_cursor: found.next_cursor,
    }))
}

fn notification_not_found() -> ApiError {
    ApiError::new(super::error::ErrorCode::NotFound, "no such notification")
}

#[utoipa::path(get, path = "/api/admin/notifications/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = NotificationDetail), (status = 401), (status = 403), (status = 404)))]
pub async fn notification(
    _admin: AdminUser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let row = state
        .app
        .ops
        .notification_row(&path)
        .await?
        .ok_or_else(notification_not_found)?;
    Ok(HttpResponse::Ok().json(Ops::notification_detail(&row)))
}

#[utoipa::path(post, path = "/api/admin/notifications/{id}/replay", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Replayed, description = "The notification ran through the verified path again: `result` as for a delivery (`duplicate` when it was applied already), `log_id` the new log row"),
        (status = 401), (status = 403), (status = 404)))]
pub async fn replay_notification(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let row = state
        .app
        .ops
        .notification_row(&path)
        .await?
        .ok_or_else(notification_not_found)?;
    let replayed = state.payments.replay_notification(&row).await;
    state
        .app
        .audit
        .record(
            &actor(&req, &admin),
            "notification.replay",
            ("notification", &row.id),
            serde_json::json!({"result": row.result}),
            serde_json::json!({"result": replayed.result, "log_id": replayed.log_id}),
        )
        .await?;
    Ok(HttpResponse::Ok().json(replayed))
}

#[derive(Serialize, ToSchema)]
pub struct RiskRuleList {
    pub items: Vec<RiskRuleView>,
}

#[utoipa::path(get, path = "/api/admin/risk-rules", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = RiskRuleList), (status = 401), (status = 403)))]
pub async fn risk_rules(
    _admin: AdminUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let items = state.app.risk.list().await?;
    Ok(HttpResponse::Ok().json(RiskRuleList { items }))
}

#[utoipa::path(patch, path = "/api/admin/risk-rules/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = RiskRulePatch,
    responses((status = 200, body = RiskRuleView, description = "Changed and audited: in force at once on this instance, within 5 s on the others"),
        (status = 401), (status = 403), (status = 404), (status = 422, description = "VALIDATION_FAILED: a condition or action the engine would not run")))]
pub async fn change_risk_rule(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<String>,
    body: web::Json<RiskRulePatch>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let rule = state
        .app
        .risk
        .change(&actor(&req, &admin), &path, &body)
        .await?;
    state.payments.risk_rules_changed();
    Ok(HttpResponse::Ok().json(rule))
}
