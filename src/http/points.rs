//! Points routes: the shopper's balance, history, statistics and spending, and the admin's
//! adjustments and earning rules. Handlers only call the points service.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::admin::actor;
use super::error::{ApiError, ErrorCode};
use super::extract::{self, AdminUser, AuthUser, Signed, text_field};
use super::page::PageQuery;
use crate::actors::points::{
    AdjustPoints, Balance, DeductPoints, HistoryItem, Page as HistoryPage, PointsChange,
    PointsError, PointsRuleView, Statistics,
};
use crate::app::AppError;
use crate::domain::{Points, PointsRuleSpec};

/// The points engine's refusals and failures as API errors (mapped in the app layer).
pub fn points_error(e: PointsError) -> ApiError {
    AppError::from(e).into()
}

async fn limited(state: &AppState, user: &AuthUser) -> Result<(), ApiError> {
    extract::rate_limit(state, &state.security.limits.points_queries, &user.user_id).await
}

/// `GET /api/points/balance`
#[utoipa::path(get, path = "/api/points/balance", tag = "points", operation_id = "points_balance",
    summary = "available, total_earned, used, expired, clawed_back, expiring_soon",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Balance),
        (status = 400, description = "{code, message, trace_id}"),
        (status = 401, description = "not signed in"),
        (status = 403, description = "not allowed"),
        (status = 404, description = "not found"),
        (status = 409, description = "conflict"),
        (status = 422, description = "validation failed"),
        (status = 429, description = "RATE_LIMITED"),
        (status = 503, description = "POINTS_BUSY: retry"),
    ))]
pub async fn balance(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    limited(&state, &user).await?;
    let b = state
        .points
        .balance(&user.user_id)
        .await
        .map_err(points_error)?;
    Ok(HttpResponse::Ok().json(b))
}

/// `GET /api/points/history?cursor=&limit=`
#[utoipa::path(get, path = "/api/points/history", tag = "points", operation_id = "points_history",
    summary = "Ledger rows, newest first, cursor-paged", security(("bearer" = [])), params(PageQuery),
    responses(
        (status = 200, body = HistoryPage<HistoryItem>),
        (status = 400, description = "INVALID_QUERY / INVALID_CURSOR"),
        (status = 401, description = "not signed in"),
        (status = 403, description = "not allowed"),
        (status = 404, description = "not found"),
        (status = 409, description = "conflict"),
        (status = 422, description = "validation failed"),
        (status = 429, description = "RATE_LIMITED"),
        (status = 503, description = "POINTS_BUSY: retry"),
    ))]
pub async fn history(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    limited(&state, &user).await?;
    let page = query.page()?;
    let limit = usize::try_from(page.limit()).unwrap_or(20);
    let page = state
        .points
        .history(&user.user_id, page.cursor(), limit)
        .await
        .map_err(points_error)?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /api/points/statistics`
#[utoipa::path(get, path = "/api/points/statistics", tag = "points", operation_id = "points_statistics",
    summary = "Per month earned, spent, expired, and totals", security(("bearer" = [])),
    responses(
        (status = 200, body = Statistics),
        (status = 400, description = "{code, message, trace_id}"),
        (status = 401, description = "not signed in"),
        (status = 403, description = "not allowed"),
        (status = 404, description = "not found"),
        (status = 409, description = "conflict"),
        (status = 422, description = "validation failed"),
        (status = 429, description = "RATE_LIMITED"),
        (status = 503, description = "POINTS_BUSY: retry"),
    ))]
pub async fn statistics(
    state: web::Data<AppState>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    limited(&state, &user).await?;
    let s = state
        .points
        .statistics(&user.user_id)
        .await
        .map_err(points_error)?;
    Ok(HttpResponse::Ok().json(s))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeductBody {
    #[schema(minimum = 1)]
    pub points: i64,
    #[schema(min_length = 1, max_length = 100)]
    pub reason: String,
}

/// `POST /api/points/deduct` (signed, with an `Idempotency-Key`).
#[utoipa::path(post, path = "/api/points/deduct", tag = "points", operation_id = "points_deduct",
    summary = "Spend points first-to-expire first (signed, Idempotency-Key); POINTS_INSUFFICIENT when short",
    request_body = DeductBody, security(("bearer" = [])),
    params(
        ("Idempotency-Key" = String, Header, pattern = r"^[A-Za-z0-9_-]{8,64}$",
            description = "8-64 letters, digits, '-' or '_': the same key spends once"),
        ("X-Timestamp" = String, Header, description = "request signature: Unix seconds"),
        ("X-Nonce" = String, Header, description = "request signature: single-use nonce"),
        ("X-Signature" = String, Header, description = "request signature: hex HMAC-SHA256 with the session's sign_key"),
    ),
    responses(
        (status = 200, body = PointsChange, description = "The ledger row (`duplicate` when the key was used already)"),
        (status = 400, description = "IDEMPOTENCY_KEY_REQUIRED / IDEMPOTENCY_KEY_INVALID / MALFORMED_JSON"),
        (status = 401, description = "not signed in, or SIGNATURE_INVALID / SIGNATURE_EXPIRED"),
        (status = 403, description = "USER_DISABLED"),
        (status = 404, description = "not found"),
        (status = 409, description = "POINTS_INSUFFICIENT / REPLAYED_REQUEST"),
        (status = 422, description = "VALIDATION_FAILED"),
        (status = 429, description = "rate limited"),
        (status = 503, description = "POINTS_BUSY: retry"),
    ))]
pub async fn deduct(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    signed: Signed,
) -> Result<HttpResponse, ApiError> {
    let key = super::payments::idempotency_key(&req)?;
    let body: DeductBody = signed.json()?;
    if body.points <= 0 {
        return Err(ApiError::validation("points must be a positive integer"));
    }
    let points = Points::parse(body.points).map_err(|e| ApiError::validation(e.to_string()))?;
    let reason = &text_field("reason", &body.reason, 100)?;
    let change = state
        .points
        .deduct(
            &user.user_id,
            DeductPoints {
                points,
                idempotency_key: key,
                reason: reason.to_string(),
            },
        )
        .await
        .map_err(points_error)?;
    Ok(HttpResponse::Ok().json(change))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustBody {
    /// Non-zero: positive credits, negative debits.
    pub points: i64,
    #[schema(min_length = 1, max_length = 100)]
    pub reason: String,
}

/// `POST /api/admin/points/{user_id}/adjust`: a correction with a reason, audited.
#[utoipa::path(post, path = "/api/admin/points/{user_id}/adjust", tag = "admin", operation_id = "admin_adjust",
    summary = "Adjust a user's points with a reason (audited)",
    request_body = AdjustBody, security(("bearer" = [])),
    params(
        ("user_id" = String, Path, description = "the user"),
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[A-Za-z0-9_-]{8,64}$",
            description = "optional, 8-64 letters, digits, '-' or '_': the same key adjusts once"),
    ),
    responses(
        (status = 200, body = PointsChange, description = "The ledger row"),
        (status = 400, description = "IDEMPOTENCY_KEY_INVALID / MALFORMED_JSON"),
        (status = 401, description = "not signed in"),
        (status = 403, description = "not an admin"),
        (status = 404, description = "USER_NOT_FOUND (or not active)"),
        (status = 409, description = "POINTS_INSUFFICIENT"),
        (status = 422, description = "VALIDATION_FAILED"),
        (status = 429, description = "rate limited"),
        (status = 503, description = "POINTS_BUSY: retry"),
    ))]
pub async fn adjust(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminUser,
    path: web::Path<String>,
    body: web::Json<AdjustBody>,
) -> Result<HttpResponse, ApiError> {
    let user_id = path.into_inner();
    if body.points == 0 {
        return Err(ApiError::validation("points must be a non-zero integer"));
    }
    let reason = &text_field("reason", &body.reason, 100)?;
    if !state.app.points.active_user_exists(&user_id).await? {
        return Err(ApiError::new(
            ErrorCode::UserNotFound,
            "no such active user",
        ));
    }
    let request_id = match req.headers().get("Idempotency-Key") {
        Some(_) => super::payments::idempotency_key(&req)?,
        None => uuid::Uuid::now_v7().to_string(),
    };
    let before = state.points.balance(&user_id).await.map_err(points_error)?;
    let change = state
        .points
        .adjust(
            &user_id,
            AdjustPoints {
                delta: body.points,
                reason: reason.to_string(),
                admin_id: admin.admin_id.clone(),
                request_id,
            },
        )
        .await
        .map_err(points_error)?;
    state
        .app
        .audit
        .record(
            &actor(&req, &admin),
            "points.adjust",
            ("user", &user_id),
            serde_json::json!({"available": before.available}),
            serde_json::json!({"available": change.balance_after, "change": change.change, "reason": reason}),
        )
        .await?;
    Ok(HttpResponse::Ok().json(change))
}

/// `GET /api/admin/points-rules`: the rule in force.
#[utoipa::path(get, path = "/api/admin/points-rules", tag = "admin",
    summary = "The earning rule in force", security(("bearer" = [])),
    responses(
        (status = 200, body = PointsRuleView),
        (status = 400, description = "{code, message, trace_id}"),
        (status = 401, description = "not signed in"),
        (status = 403, description = "not allowed"),
        (status = 404, description = "not found"),
        (status = 409, description = "conflict"),
        (status = 422, description = "validation failed"),
        (status = 429, description = "RATE_LIMITED"),
        (status = 503, description = "POINTS_BUSY: retry"),
    ))]
pub async fn get_rules(
    state: web::Data<AppState>,
    _admin: AdminUser,
) -> Result<HttpResponse, ApiError> {
    let rule = state.points.current_rule().await.map_err(points_error)?;
    Ok(HttpResponse::Ok().json(rule))
}

/// The body of `PUT /api/admin/points-rules`: the rule's fields and when it takes effect.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RulesBody {
    #[serde(flatten)]
    pub spec: PointsRuleSpec,
    /// When the rule takes effect; now when absent.
    pub effective_from: Option<DateTime<Utc>>,
}

/// `PUT /api/admin/points-rules`: a new rule, effective without a restart, audited.
#[utoipa::path(put, path = "/api/admin/points-rules", tag = "admin",
    summary = "A new earning rule, effective without restart (audited)",
    request_body = RulesBody, security(("bearer" = [])),
    responses(
        (status = 200, body = PointsRuleView, description = "The rule as stored"),
        (status = 400, description = "MALFORMED_JSON"),
        (status = 401, description = "not signed in"),
        (status = 403, description = "not allowed"),
        (status = 404, description = "not found"),
        (status = 409, description = "conflict"),
        (status = 422, description = "VALIDATION_FAILED: a rule the engine would not run"),
        (status = 429, description = "RATE_LIMITED"),
        (status = 503, description = "POINTS_BUSY: retry"),
    ))]
pub async fn put_rules(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminUser,
    body: web::Json<RulesBody>,
) -> Result<HttpResponse, ApiError> {
    let before = state.points.current_rule().await.map_err(points_error)?;
    let body = body.into_inner();
    let rule = state
        .points
        .set_rule(
            body.spec,
            body.effective_from,
            &format!("admin:{}", admin.admin_id),
        )
        .await
        .map_err(points_error)?;
    state
        .app
        .audit
        .record(
            &actor(&req, &admin),
            "points_rules.update",
            ("points_rules", rule.id.as_deref().unwrap_or("")),
            serde_json::to_value(&before).unwrap_or_default(),
            serde_json::to_value(&rule).unwrap_or_default(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(rule))
}
