//! The signed-in user's own profile and phone.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::{AuthUser, Signed, text_field};
use super::{AppState, error::ApiError};
use crate::security::Phone;

pub use crate::app::users::UserProfile as UserView;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    pub nickname: Option<String>,
    pub avatar: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPhone {
    /// A mainland China mobile number.
    pub phone: String,
}

#[utoipa::path(get, path = "/api/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401), (status = 403, description = "USER_DISABLED")))]
pub async fn get_me(user: AuthUser, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let me = state.app.users.profile(&user.user_id).await?;
    Ok(HttpResponse::Ok().json(me))
}

#[utoipa::path(patch, path = "/api/users/me", tag = "users", request_body = UpdateMe, security(("bearer" = [])),
    params(("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 200, body = UserView), (status = 401, description = "SIGNATURE_INVALID / SIGNATURE_EXPIRED"),
        (status = 409, description = "REPLAYED_REQUEST"), (status = 422)))]
pub async fn patch_me(
    user: AuthUser,
    signed: Signed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: UpdateMe = signed.json()?;
    let nickname = body
        .nickname
        .as_deref()
        .map(|n| text_field("nickname", n, 32))
        .transpose()?;
    let avatar = match body.avatar.as_deref().map(str::trim) {
        Some(a)
            if a.len() <= 512 && a.starts_with("https://") && !a.contains(char::is_whitespace) =>
        {
            Some(a.to_string())
        }
        Some(_) => {
            return Err(ApiError::validation(
                "avatar must be an https:// URL of at most 512 characters",
            ));
        }
        None => None,
    };
    if nickname.is_none() && avatar.is_none() {
        return Err(ApiError::validation("give nickname or avatar"));
    }
    let me = state
        .app
        .users
        .update_profile(&user.user_id, nickname.as_deref(), avatar.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(me))
}

#[utoipa::path(put, path = "/api/users/me/phone", tag = "users", request_body = SetPhone, security(("bearer" = [])),
    params(("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 200, body = UserView), (status = 401), (status = 409, description = "REPLAYED_REQUEST"), (status = 422)))]
pub async fn put_phone(
    user: AuthUser,
    signed: Signed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: SetPhone = signed.json()?;
    let phone = Phone::parse(&body.phone).map_err(ApiError::validation)?;
    let me = state.app.users.set_phone(&user.user_id, &phone).await?;
    Ok(HttpResponse::Ok().json(me))
}
