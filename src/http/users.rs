//! The signed-in user's own profile and phone.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{AuthUser, Signed};
use super::{AppState, error::ApiError};
use crate::security::Phone;
use crate::storage::users::{self as user_store, StoredPhone, UserRow};

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub nickname: Option<String>,
    pub avatar: Option<String>,
    /// Masked: `138****5678`.
    pub phone: Option<String>,
    pub status: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

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

pub fn phone_aad(user_id: &str) -> String {
    format!("users.phone:{user_id}")
}

/// Encrypts a phone for storage under the current key.
pub fn seal_phone(state: &AppState, phone: &Phone, aad: &str) -> Result<StoredPhone, ApiError> {
    let (key_id, cipher) = state
        .security
        .fields
        .encrypt(phone.as_str(), aad)
        .map_err(ApiError::internal)?;
    Ok(StoredPhone {
        cipher,
        key_id,
        blind_index: state.security.fields.blind_index(phone.as_str()),
        masked: phone.masked(),
    })
}

/// The user as shown to them. A phone stored under an old key is re-encrypted under the
/// current one on the way (lazy rotation).
pub async fn user_view(state: &AppState, user: UserRow) -> Result<UserView, ApiError> {
    if let (Some(cipher), Some(key_id)) = (&user.phone_cipher, &user.phone_key_id)
        && state.security.fields.needs_rotation(key_id)
    {
        let aad = phone_aad(&user.id);
        let plain = state
            .security
            .fields
            .decrypt(key_id, cipher, &aad)
            .map_err(ApiError::internal)?;
        let phone = Phone::parse(&plain).map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
        let sealed = seal_phone(state, &phone, &aad)?;
        user_store::set_phone(&state.db, &user.id, &sealed, Some(key_id)).await?;
    }
    Ok(UserView {
        id: user.id,
        nickname: user.nickname,
        avatar: user.avatar,
        phone: user.phone_masked,
        status: user.status,
        created_at: user.created_at.and_utc(),
    })
}

async fn load(state: &AppState, user: &AuthUser) -> Result<UserRow, ApiError> {
    user_store::find(&state.db, &user.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))
}

#[utoipa::path(get, path = "/api/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401), (status = 403, description = "USER_DISABLED")))]
pub async fn get_me(user: AuthUser, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let row = load(&state, &user).await?;
    Ok(HttpResponse::Ok().json(user_view(&state, row).await?))
}

fn check_text(name: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(ApiError::validation(format!(
            "{name} must be 1-{max} characters without control characters"
        )));
    }
    Ok(v.to_string())
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
        .map(|n| check_text("nickname", n, 32))
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
    user_store::update_profile(
        &state.db,
        &user.user_id,
        nickname.as_deref(),
        avatar.as_deref(),
    )
    .await?;
    let row = load(&state, &user).await?;
    Ok(HttpResponse::Ok().json(user_view(&state, row).await?))
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
    let sealed = seal_phone(&state, &phone, &phone_aad(&user.user_id))?;
    user_store::set_phone(&state.db, &user.user_id, &sealed, None).await?;
    let row = load(&state, &user).await?;
    Ok(HttpResponse::Ok().json(user_view(&state, row).await?))
}
