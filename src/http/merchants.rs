//! Merchant registration, the owner's merchants and payment codes, and what a shopper sees
//! after scanning a code.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{
    AuthUser, CanChangeCodes, CanCreateCodes, CanReadCodes, Member, Signed, text_field,
};
use super::page::PageQuery;
use super::{AppState, error::ApiError, error::ErrorCode, qr};
use crate::app::merchants::{NewMerchant, PaymentCode};
use crate::security::Phone;
use crate::wechat::WxaCodeRequest;

pub use crate::app::merchants::{Merchant as MerchantView, MyMerchant, ScannedCode};

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
pub struct MerchantList {
    pub items: Vec<MerchantView>,
    pub next_cursor: Option<String>,
}

/// The caller's merchants: owned ones first, then those they work at, each with the role.
#[derive(Serialize, ToSchema)]
pub struct MyMerchantList {
    pub items: Vec<MyMerchant>,
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

impl From<PaymentCode> for PaymentCodeView {
    fn from(c: PaymentCode) -> Self {
        PaymentCodeView {
            path: qr::pay_path(&c.id),
            id: c.id,
            merchant_id: c.merchant_id,
            label: c.label,
            amount_fen: c.amount_fen,
            status: c.status,
            created_at: c.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PaymentCodeList {
    pub items: Vec<PaymentCodeView>,
    pub next_cursor: Option<String>,
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
    let merchant_name = text_field("merchant_name", &body.merchant_name, 64)?;
    let contact_name = text_field("contact_name", &body.contact_name, 32)?;
    let phone = Phone::parse(&body.contact_phone)
        .map_err(|e| ApiError::validation(format!("contact_{e}")))?;
    let business_license = license(&body.business_license)?;
    let address = text_field("address", &body.address, 255)?;
    let merchant = state
        .app
        .merchants
        .register(
            &user.user_id,
            NewMerchant {
                merchant_name,
                contact_name,
                contact_phone: phone,
                business_license,
                address,
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(merchant))
}

#[utoipa::path(get, path = "/api/merchants/me", tag = "merchants", security(("bearer" = [])),
    summary = "The merchants the caller owns or works at, each with the caller's role",
    responses((status = 200, body = MyMerchantList), (status = 401)))]
pub async fn my_merchants(
    user: AuthUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let items = state.app.merchants.of_member(&user.user_id).await?;
    Ok(HttpResponse::Ok().json(MyMerchantList {
        items,
        next_cursor: None,
    }))
}

#[utoipa::path(post, path = "/api/merchants/{id}/payment-codes", tag = "merchants", request_body = CreatePaymentCode,
    security(("bearer" = [])), params(("id" = String, Path), ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 201, body = PaymentCodeView), (status = 403, description = "MERCHANT_NOT_APPROVED"), (status = 404), (status = 422)))]
pub async fn create_code(
    merchant: Member<CanCreateCodes>,
    signed: Signed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: CreatePaymentCode = signed.json()?;
    let label = text_field("label", &body.label, 32)?;
    let code = state
        .app
        .merchants
        .create_code(&merchant.merchant_id, label, body.amount_fen)
        .await?;
    Ok(HttpResponse::Created().json(PaymentCodeView::from(code)))
}

#[utoipa::path(get, path = "/api/merchants/{id}/payment-codes", tag = "merchants", security(("bearer" = [])),
    params(("id" = String, Path), PageQuery), responses((status = 200, body = PaymentCodeList), (status = 404)))]
pub async fn list_codes(
    merchant: Member<CanReadCodes>,
    page: web::Query<PageQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let codes = state
        .app
        .merchants
        .codes(&merchant.merchant_id, &page.page()?)
        .await?;
    Ok(HttpResponse::Ok().json(PaymentCodeList {
        items: codes.items.into_iter().map(PaymentCodeView::from).collect(),
        next_cursor: codes.next_cursor,
    }))
}

#[utoipa::path(post, path = "/api/merchants/{id}/payment-codes/{code_id}/disable", tag = "merchants",
    security(("bearer" = [])), params(("id" = String, Path), ("code_id" = String, Path), ("X-Timestamp" = String, Header), ("X-Nonce" = String, Header), ("X-Signature" = String, Header)),
    responses((status = 200, body = PaymentCodeView), (status = 404)))]
pub async fn disable_code(
    merchant: Member<CanChangeCodes>,
    _signed: Signed,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (_, code_id) = path.into_inner();
    let code = state
        .app
        .merchants
        .disable_code(&merchant.merchant_id, &code_id)
        .await?;
    Ok(HttpResponse::Ok().json(PaymentCodeView::from(code)))
}

#[utoipa::path(get, path = "/api/payment-codes/{code_id}", tag = "merchants", params(("code_id" = String, Path)),
    responses((status = 200, body = ScannedCode), (status = 404, description = "PAYMENT_CODE_NOT_FOUND")))]
pub async fn get_code(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.app.merchants.scan(&path).await?))
}

#[utoipa::path(get, path = "/api/payment-codes/{code_id}/qr.png", tag = "merchants", params(("code_id" = String, Path)),
    responses((status = 200, content_type = "image/png", body = inline(super::openapi::Binary),
        description = "The code with its caption: a QR code of `{APP_QR_BASE_URL}?code={code_id}`, the merchant name and the label (with a fixed amount) under it. The owner's `/api/merchants/{id}/payment-codes/{code_id}/qr` also makes SVG, print sheets and WeChat mini-program codes."),
        (status = 404)))]
pub async fn code_qr(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let code = state.app.merchants.scan(&path).await?;
    let url = qr::code_url(&state.settings.qr_base_url, &code.code_id);
    let caption = qr::Caption::new(&code.merchant_name, &code.label, code.amount_fen);
    let png = web::block(move || qr::render_png(&url, &caption))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("image/png")
        .insert_header(("Cache-Control", "no-store"))
        .body(png))
}

/// `?format=&layout=&kind=` of the owner's printable code; each has a default, and an
/// unknown value or parameter is 400 `INVALID_QUERY`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct QrQuery {
    /// `png` (default) or `svg` (self-contained: the text is drawn as paths).
    #[param(inline)]
    pub format: Option<qr::Format>,
    /// `code` (default): the code with the merchant name and label under it; `sheet`: an A6
    /// page (105 x 148 mm, 1240 x 1748 px at 300 dpi) with the instruction 微信扫码付款.
    #[param(inline)]
    pub layout: Option<qr::Layout>,
    /// `url` (default): a QR code of `{APP_QR_BASE_URL}?code={code_id}`, which WeChat's
    /// scanner opens in the mini-program (through the "scan ordinary QR codes" rule) and any
    /// other scanner shows as a link; `wxacode`: WeChat's mini-program code
    /// (`wxacode.getUnlimited`, page `pages/pay/index`, scene = the code id without dashes),
    /// fetched from WeChat for each request.
    #[param(inline)]
    pub kind: Option<qr::Kind>,
}

#[utoipa::path(get, path = "/api/merchants/{id}/payment-codes/{code_id}/qr", tag = "merchants", security(("bearer" = [])),
    params(("id" = String, Path), ("code_id" = String, Path), QrQuery),
    responses(
        (status = 200, description = "The printable code, captioned in Chinese with the merchant name and the label (and a fixed amount). `Content-Disposition` names the file.",
            content(("image/png"), ("image/svg+xml"))),
        (status = 400, description = "INVALID_QUERY: an unknown format, layout, kind or parameter"),
        (status = 401),
        (status = 404, description = "MERCHANT_NOT_FOUND, or PAYMENT_CODE_NOT_FOUND (also for another merchant's code)"),
        (status = 503, description = "WECHAT_UNAVAILABLE: WeChat did not make the mini-program code (`kind=wxacode`)")))]
pub async fn owner_code_qr(
    merchant: Member<CanReadCodes>,
    path: web::Path<(String, String)>,
    query: web::Query<QrQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (_, code_id) = path.into_inner();
    let code = state
        .app
        .merchants
        .owned_code(&merchant.merchant_id, &code_id)
        .await?;
    let format = query.format.unwrap_or_default();
    let layout = query.layout.unwrap_or_default();
    let caption = qr::Caption::new(&code.merchant_name, &code.label, code.amount_fen);
    let image = match query.kind.unwrap_or_default() {
        qr::Kind::Url => Source::Text(qr::code_url(&state.settings.qr_base_url, &code.code_id)),
        qr::Kind::Wxacode => Source::Image(wxacode(&state, &code.code_id, layout).await?),
    };
    let body = web::block(move || {
        let code = match image {
            Source::Text(url) => qr::CodeImage::qr(&url)?,
            Source::Image(bytes) => qr::CodeImage::from_image(&bytes)?,
        };
        qr::render(&code, &caption, layout, format)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let layout_name = match layout {
        qr::Layout::Code => "code",
        qr::Layout::Sheet => "sheet",
    };
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            "Content-Disposition",
            format!(
                "inline; filename=\"payment-code-{}-{layout_name}.{}\"",
                code.code_id,
                format.extension()
            ),
        ))
        .body(body))
}

enum Source {
    Text(String),
    Image(Vec<u8>),
}

/// The mini-program code of `code_id` from WeChat, as an image (PNG, transparent).
async fn wxacode(state: &AppState, code_id: &str, layout: qr::Layout) -> Result<Vec<u8>, ApiError> {
    let scene = qr::wxacode_scene(code_id)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("code id {code_id} is no scene")))?;
    let req = WxaCodeRequest {
        scene,
        page: qr::PAY_PAGE.to_string(),
        width: match layout {
            qr::Layout::Code => 430,
            qr::Layout::Sheet => 1280,
        },
        is_hyaline: true,
    };
    state
        .wechat
        .client
        .wxacode_unlimited(&req)
        .await
        .map_err(|e| {
            ApiError::new(
                ErrorCode::WechatUnavailable,
                "WeChat did not make the mini-program code; retry, or print kind=url",
            )
            .with_cause(e)
        })
}
