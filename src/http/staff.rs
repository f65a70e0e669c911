//! Merchant staff: the owner's invites and staff list, role changes and removals, and the
//! redeeming of an invite code by the person joining. Roles and what each may do:
//! `domain::staff` (and README.md, *Merchant staff and roles*).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{
    AuthUser, CanManageStaff, CanReadStaff, Member, Signed, client_ip, rate_limit,
};
use super::{AppState, error::ApiError};
use crate::app::audit::Actor;
use crate::domain::staff::MerchantRole;

pub use crate::app::staff::{CreatedInvite, JoinedMerchant, PendingInvite, StaffMember};

/// `{role}` of a new invite or a role change: `manager` or `cashier`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    /// `manager` (refunds, payment codes, stats, orders) or `cashier` (today's payments).
    pub role: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemBody {
    /// The code as the owner passed it on, e.g. `K7QM-3XD9-PW2H` (case, spaces and dashes
    /// do not matter).
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct PendingInviteList {
    pub items: Vec<PendingInvite>,
}

#[derive(Serialize, ToSchema)]
pub struct StaffList {
    pub items: Vec<StaffMember>,
}

/// A role change's answer.
#[derive(Serialize, ToSchema)]
pub struct StaffRole {
    pub user_id: String,
    pub role: String,
}

fn staff_role(body: &RoleBody) -> Result<MerchantRole, ApiError> {
    MerchantRole::parse_staff(body.role.trim())
        .ok_or_else(|| ApiError::validation("role must be manager or cashier"))
}

fn user_actor(req: &HttpRequest, user_id: &str) -> Actor {
    Actor::user(user_id, client_ip(req))
}

#[utoipa::path(post, path = "/api/merchants/{id}/staff/invites", tag = "staff",
    summary = "Invite a manager or cashier (owner only): a one-time code, valid 72 h, shown this once",
    request_body = RoleBody, security(("bearer" = [])),
    params(("id" = String, Path, description = "the merchant"),
        ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses(
        (status = 201, body = CreatedInvite),
        (status = 403, description = "FORBIDDEN: a manager or cashier"),
        (status = 404, description = "MERCHANT_NOT_FOUND: not a member"),
        (status = 409, description = "TOO_MANY_INVITES: 20 pending already"),
        (status = 422, description = "VALIDATION_FAILED: role is not manager or cashier"),
    ))]
pub async fn create_invite(
    req: HttpRequest,
    owner: Member<CanManageStaff>,
    signed: Signed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: RoleBody = signed.json()?;
    let role = staff_role(&body)?;
    let invite = state
        .app
        .staff
        .invite(
            &user_actor(&req, &owner.user.user_id),
            &owner.merchant_id,
            role,
        )
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(invite))
}

#[utoipa::path(get, path = "/api/merchants/{id}/staff/invites", tag = "staff",
    summary = "The pending invites (owner only), newest first, without their codes",
    security(("bearer" = [])), params(("id" = String, Path, description = "the merchant")),
    responses((status = 200, body = PendingInviteList), (status = 403, description = "FORBIDDEN: a manager or cashier")))]
pub async fn list_invites(
    owner: Member<CanReadStaff>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let items = state.app.staff.pending(&owner.merchant_id).await?;
    Ok(HttpResponse::Ok().json(PendingInviteList { items }))
}

#[utoipa::path(delete, path = "/api/merchants/{id}/staff/invites/{invite_id}", tag = "staff",
    summary = "Revoke a pending invite (owner only): its code stops working",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the merchant"), ("invite_id" = String, Path),
        ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses(
        (status = 204, description = "revoked"),
        (status = 403, description = "FORBIDDEN: a manager or cashier"),
        (status = 404, description = "INVITE_NOT_FOUND: no pending invite with this id (used, revoked, expired, or another merchant's)"),
    ))]
pub async fn revoke_invite(
    req: HttpRequest,
    owner: Member<CanManageStaff>,
    _signed: Signed,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (_, invite_id) = path.into_inner();
    state
        .app
        .staff
        .revoke(
            &user_actor(&req, &owner.user.user_id),
            &owner.merchant_id,
            &invite_id,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/merchants/{id}/staff", tag = "staff",
    summary = "The merchant's managers and cashiers (owner only), oldest first",
    security(("bearer" = [])), params(("id" = String, Path, description = "the merchant")),
    responses((status = 200, body = StaffList), (status = 403, description = "FORBIDDEN: a manager or cashier")))]
pub async fn list_staff(
    owner: Member<CanReadStaff>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let items = state.app.staff.list(&owner.merchant_id).await?;
    Ok(HttpResponse::Ok().json(StaffList { items }))
}

#[utoipa::path(patch, path = "/api/merchants/{id}/staff/{user_id}", tag = "staff",
    summary = "Change a staff member's role (owner only); effective at once for every change they make",
    request_body = RoleBody, security(("bearer" = [])),
    params(("id" = String, Path, description = "the merchant"), ("user_id" = String, Path),
        ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses(
        (status = 200, body = StaffRole),
        (status = 403, description = "FORBIDDEN: a manager or cashier"),
        (status = 404, description = "STAFF_NOT_FOUND"),
        (status = 422, description = "VALIDATION_FAILED: role is not manager or cashier"),
    ))]
pub async fn change_role(
    req: HttpRequest,
    owner: Member<CanManageStaff>,
    signed: Signed,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: RoleBody = signed.json()?;
    let role = staff_role(&body)?;
    let (_, user_id) = path.into_inner();
    state
        .app
        .staff
        .change_role(
            &user_actor(&req, &owner.user.user_id),
            &owner.merchant_id,
            &user_id,
            role,
        )
        .await?;
    Ok(HttpResponse::Ok().json(StaffRole {
        user_id,
        role: role.as_str().to_string(),
    }))
}

#[utoipa::path(delete, path = "/api/merchants/{id}/staff/{user_id}", tag = "staff",
    summary = "Remove a staff member (owner only); effective at once for every change they make",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the merchant"), ("user_id" = String, Path),
        ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses(
        (status = 204, description = "removed"),
        (status = 403, description = "FORBIDDEN: a manager or cashier"),
        (status = 404, description = "STAFF_NOT_FOUND"),
    ))]
pub async fn remove_staff(
    req: HttpRequest,
    owner: Member<CanManageStaff>,
    _signed: Signed,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (_, user_id) = path.into_inner();
    state
        .app
        .staff
        .remove(
            &user_actor(&req, &owner.user.user_id),
            &owner.merchant_id,
            &user_id,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/staff/invites/redeem", tag = "staff",
    summary = "Join a merchant with an invite code (any signed-in user; 10 tries a minute)",
    request_body = RedeemBody, security(("bearer" = [])),
    params(("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses(
        (status = 200, body = JoinedMerchant, description = "joined (or, for the same code again, already joined through it); refresh the session for a token that lists the merchant"),
        (status = 404, description = "INVITE_INVALID: whatever is wrong with the code (malformed, unknown, used, revoked or expired)"),
        (status = 409, description = "ALREADY_STAFF: the caller owns or already works at the merchant; the invite stays pending"),
        (status = 429, description = "RATE_LIMITED"),
    ))]
pub async fn redeem(
    req: HttpRequest,
    user: AuthUser,
    signed: Signed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    rate_limit(&state, &state.security.limits.staff_redeem, &user.user_id).await?;
    let body: RedeemBody = signed.json()?;
    let joined = state
        .app
        .staff
        .redeem(&user_actor(&req, &user.user_id), &body.code)
        .await
        .inspect_err(|e| {
            if e.code == crate::app::ErrorCode::InviteInvalid {
                state.security.event("bad_invite_code", &user.user_id);
            }
        })?;
    Ok(HttpResponse::Ok().json(joined))
}
