//! Merchant registration, the owner's merchants and payment codes, and what a shopper sees
//! after scanning a code.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApprovedMerchant, AuthUser, MerchantOwner, Signed};
use super::{AppState, error::ApiError, qr};
use crate::security::Phone;
use crate::storage::merchants::{
    self as store, CODE_ACTIVE, MERCHANT_APPROVED, MerchantRow, PaymentCodeRow,
};
use crate::storage::users::now;

/// The largest fixed amount a payment code may carry: 1,000,000 yuan (the rules' order cap).
pub const MAX_CODE_AMOUNT_FEN: i64 = 100_000_000;
/// How many merchants one user may register.
pub const MAX_MERCHANTS_PER_USER: i64 = 20;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterMerchant {
    pub merchant_name: String,
    pub contact_name: String,
    pub contact_phone: String,
    /// Unified social credit code (18 characters) or an old 15-digit licence number.
    pub business_license: String,
    pub address: String,
}

#[derive(Serialize, ToSchema)]
pub struct MerchantView {
    pub id: String,
    pub owner_user_id: String,
    pub merchant_name: String,
    pub contact_name: String,
    /// Masked.
    pub contact_phone: String,
    pub business_license: String,
    pub address: String,
    /// `pending`, `approved` or `disabled`.
    pub status: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub reviewed_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<MerchantRow> for MerchantView {
    fn from(m: MerchantRow) -> Self {
        MerchantView {
            id: m.id,
            owner_user_id: m.owner_user_id,
            merchant_name: m.merchant_name,
            contact_name: m.contact_name,
            contact_phone: m.contact_phone_masked,
            business_license: m.business_license,
            address: m.address,
            status: m.status,
            created_at: m.created_at.and_utc(),
            reviewed_at: m.reviewed_at.map(|t| t.and_utc()),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MerchantList {
    pub items: Vec<MerchantView>,
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePaymentCode {
    pub label: String,
    /// A fixed amount in fen; absent for an open amount.
    pub amount_fen: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentCodeView {
    pub id: String,
    pub merchant_id: String,
    pub label: String,
    pub amount_fen: Option<i64>,
    pub status: String,
    /// The mini-program path the QR opens.
    pub path: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<PaymentCodeRow> for PaymentCodeView {
    fn from(c: PaymentCodeRow) -> Self {
        PaymentCodeView {
            path: qr::pay_path(&c.id),
            id: c.id,
            merchant_id: c.merchant_id,
            label: c.label,
            amount_fen: c.amount_fen,
            status: c.status,
            created_at: c.created_at.and_utc(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PaymentCodeList {
    pub items: Vec<PaymentCodeView>,
    pub next_cursor: Option<String>,
}

/// What a shopper sees after scanning.
#[derive(Serialize, ToSchema)]
pub struct ScannedCode {
    pub code_id: String,
    pub merchant_id: String,
    pub merchant_name: String,
    pub label: String,
    pub amount_fen: Option<i64>,
    /// False when the code or its merchant is disabled: no payment possible.
    pub active: bool,
}

#[derive(Deserialize, IntoParams)]
pub struct Page {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

impl Page {
    /// (cursor, limit) with the limit checked: 1..100, default 20.
    pub fn parse(&self) -> Result<(Option<&str>, i64), ApiError> {
        let limit = self.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::validation("limit must be 1..100"));
        }
        let cursor = self.cursor.as_deref().filter(|c| !c.is_empty());
        if cursor.is_some_and(|c| c.len() > 64) {
            return Err(ApiError::bad_request(
                "INVALID_CURSOR",
                "cursor is not valid",
            ));
        }
        Ok((cursor, limit))
    }
}

/// Trims `items` to `limit` and gives the cursor of the next page (items are fetched limit+1).
pub fn paginate<T>(
    mut items: Vec<T>,
    limit: i64,
    id: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(20);
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(&id);
        (items, next)
    } else {
        (items, None)
    }
}

fn text(name: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(ApiError::validation(format!(
            "{name} must be 1-{max} characters"
        )));
    }
    Ok(v.to_string())
}

fn license(value: &str) -> Result<String, ApiError> {
    let v = value.trim().to_ascii_uppercase();
    let ok = match v.len() {
        15 => v.bytes().all(|b| b.is_ascii_digit()),
        18 => v
            .bytes()
            .all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"IOSVZ".contains(&b))),
        _ => false,
    };
    if ok {
        Ok(v)
    } else {
        Err(ApiError::validation(
            "business_license must be an 18-character unified social credit code or 15 digits",
        ))
    }
}

#[utoipa::path(post, path = "/api/merchants", tag = "merchants", request_body = RegisterMerchant, security(("bearer" = [])),
    params(("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 201, body = MerchantView), (status = 401), (status = 409), (status = 422)))]
pub async fn register(
    user: AuthUser,
    signed: Signed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: RegisterMerchant = signed.json()?;
    let merchant_name = text("merchant_name", &body.merchant_name, 64)?;
    let contact_name = text("contact_name", &body.contact_name, 32)?;
    let phone = Phone::parse(&body.contact_phone)
        .map_err(|e| ApiError::validation(format!("contact_{e}")))?;
    let business_license = license(&body.business_license)?;
    let address = text("address", &body.address, 255)?;
    if store::count_by_owner(&state.db, &user.user_id).await? >= MAX_MERCHANTS_PER_USER {
        return Err(ApiError::conflict(
            "TOO_MANY_MERCHANTS",
            "this account has registered the most merchants allowed",
        ));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let (key_id, cipher) = state
        .security
        .fields
        .encrypt(phone.as_str(), &contact_aad(&id))
        .map_err(ApiError::internal)?;
    let t = now();
    let row = MerchantRow {
        id,
        owner_user_id: user.user_id.clone(),
        merchant_name,
        contact_name,
        contact_phone_cipher: cipher,
        contact_phone_key_id: key_id,
        contact_phone_masked: phone.masked(),
        business_license,
        address,
        status: store::MERCHANT_PENDING.to_string(),
        reviewed_by: None,
        reviewed_at: None,
        created_at: t,
        updated_at: t,
    };
    store::insert(&state.db, &row).await?;
    tracing::info!(category = "business", merchant_id = %row.id, "merchant registered");
    Ok(HttpResponse::Created().json(MerchantView::from(row)))
}

pub fn contact_aad(merchant_id: &str) -> String {
    format!("merchants.contact_phone:{merchant_id}")
}

/// Re-encrypts a contact phone stored under an old key (lazy rotation).
async fn rotate_contact(state: &AppState, m: &MerchantRow) -> Result<(), ApiError> {
    let fields = &state.security.fields;
    if !fields.needs_rotation(&m.contact_phone_key_id) {
        return Ok(());
    }
    let aad = contact_aad(&m.id);
    let plain = fields
        .decrypt(&m.contact_phone_key_id, &m.contact_phone_cipher, &aad)
        .map_err(ApiError::internal)?;
    let (key_id, cipher) = fields.encrypt(&plain, &aad).map_err(ApiError::internal)?;
    store::rekey_contact_phone(&state.db, &m.id, &m.contact_phone_key_id, &key_id, &cipher).await?;
    Ok(())
}

#[utoipa::path(get, path = "/api/merchants/me", tag = "merchants", security(("bearer" = [])),
    responses((status = 200, body = MerchantList), (status = 401)))]
pub async fn my_merchants(
    user: AuthUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let rows = store::list_by_owner(&state.db, &user.user_id).await?;
    for m in &rows {
        rotate_contact(&state, m).await?;
    }
    let items = rows.into_iter().map(MerchantView::from).collect();
    Ok(HttpResponse::Ok().json(MerchantList {
        items,
        next_cursor: None,
    }))
}

#[utoipa::path(post, path = "/api/merchants/{id}/payment-codes", tag = "merchants", request_body = CreatePaymentCode,
    security(("bearer" = [])), params(("id" = String, Path), ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 201, body = PaymentCodeView), (status = 403, description = "MERCHANT_NOT_APPROVED"), (status = 404), (status = 422)))]
pub async fn create_code(
    merchant: ApprovedMerchant,
    signed: Signed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: CreatePaymentCode = signed.json()?;
    let label = text("label", &body.label, 32)?;
    if body
        .amount_fen
        .is_some_and(|a| !(1..=MAX_CODE_AMOUNT_FEN).contains(&a))
    {
        return Err(ApiError::validation(format!(
            "amount_fen must be 1..{MAX_CODE_AMOUNT_FEN}"
        )));
    }
    let t = now();
    let row = PaymentCodeRow {
        id: uuid::Uuid::now_v7().to_string(),
        merchant_id: merchant.0.merchant_id.clone(),
        label,
        amount_fen: body.amount_fen,
        status: CODE_ACTIVE.to_string(),
        created_at: t,
        updated_at: t,
    };
    store::insert_code(&state.db, &row).await?;
    Ok(HttpResponse::Created().json(PaymentCodeView::from(row)))
}

#[utoipa::path(get, path = "/api/merchants/{id}/payment-codes", tag = "merchants", security(("bearer" = [])),
    params(("id" = String, Path), Page), responses((status = 200, body = PaymentCodeList), (status = 404)))]
pub async fn list_codes(
    merchant: MerchantOwner,
    page: web::Query<Page>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (cursor, limit) = page.parse()?;
    let rows = store::list_codes(&state.db, &merchant.merchant_id, cursor, limit + 1).await?;
    let (rows, next_cursor) = paginate(rows, limit, |c| c.id.clone());
    let items = rows.into_iter().map(PaymentCodeView::from).collect();
    Ok(HttpResponse::Ok().json(PaymentCodeList { items, next_cursor }))
}

#[utoipa::path(post, path = "/api/merchants/{id}/payment-codes/{code_id}/disable", tag = "merchants",
    security(("bearer" = [])), params(("id" = String, Path), ("code_id" = String, Path), ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 200, body = PaymentCodeView), (status = 404)))]
pub async fn disable_code(
    merchant: MerchantOwner,
    _signed: Signed,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (_, code_id) = path.into_inner();
    if !store::disable_code(&state.db, &merchant.merchant_id, &code_id).await? {
        return Err(code_not_found());
    }
    let row = store::find_code(&state.db, &code_id)
        .await?
        .ok_or_else(code_not_found)?;
    Ok(HttpResponse::Ok().json(PaymentCodeView::from(row)))
}

fn code_not_found() -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::NOT_FOUND,
        "PAYMENT_CODE_NOT_FOUND",
        "no such payment code",
    )
}

async fn scanned(state: &AppState, code_id: &str) -> Result<ScannedCode, ApiError> {
    if code_id.len() > 64 {
        return Err(code_not_found());
    }
    let code = store::find_code(&state.db, code_id)
        .await?
        .ok_or_else(code_not_found)?;
    let merchant = store::find(&state.db, &code.merchant_id)
        .await?
        .ok_or_else(code_not_found)?;
    Ok(ScannedCode {
        active: code.status == CODE_ACTIVE && merchant.status == MERCHANT_APPROVED,
        code_id: code.id,
        merchant_id: merchant.id,
        merchant_name: merchant.merchant_name,
        label: code.label,
        amount_fen: code.amount_fen,
    })
}

#[utoipa::path(get, path = "/api/payment-codes/{code_id}", tag = "merchants", params(("code_id" = String, Path)),
    responses((status = 200, body = ScannedCode), (status = 404, description = "PAYMENT_CODE_NOT_FOUND")))]
pub async fn get_code(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(scanned(&state, &path).await?))
}

#[utoipa::path(get, path = "/api/payment-codes/{code_id}/qr.png", tag = "merchants", params(("code_id" = String, Path)),
    responses((status = 200, content_type = "image/png", description = "the printable QR"), (status = 404)))]
pub async fn code_qr(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let code = scanned(&state, &path).await?;
    let subtitle = match code.amount_fen {
        Some(fen) => format!("{} - {}.{:02} CNY", code.label, fen / 100, fen % 100),
        None => code.label.clone(),
    };
    let png = web::block(move || qr::render_png(&code.code_id, &code.merchant_name, &subtitle))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("image/png")
        .insert_header(("Cache-Control", "no-store"))
        .body(png))
}
