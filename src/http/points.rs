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
use crate::actors::points::{AdjustPoints, DeductPoints, PointsError};
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
pub async fn get_rules(
    state: web::Data<AppState>,
    _admin: AdminUser,
) -> Result<HttpResponse, ApiError> {
    let rule = state.points.current_rule().await.map_err(points_error)?;
    Ok(HttpResponse::Ok().json(rule))
}

#[derive(Debug, Deserialize)]
pub struct RulesBody {
    #[serde(flatten)]
    pub spec: PointsRuleSpec,
    /// When the rule takes effect; now when absent.
    pub effective_from: Option<DateTime<Utc>>,
}

/// `PUT /api/admin/points-rules`: a new rule, effective without a restart, audited.
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
