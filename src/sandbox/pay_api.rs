//! The WeChat Pay v3 paths: every request's signature is checked with the merchant's public
//! key, every answer is signed with the platform key.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Sandbox;
use super::ledger::Fail;
use crate::wechat::sign::{AuthorizationHeader, is_fresh, request_message};
use crate::wechat::types::{JsapiPrepayBody, PrepayResponse, RefundBody};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v3/pay/transactions/jsapi", web::post().to(prepay))
        .route(
            "/v3/pay/transactions/out-trade-no/{no}",
            web::get().to(query_by_out_trade_no),
        )
        .route(
            "/v3/pay/transactions/id/{id}",
            web::get().to(query_by_transaction_id),
        )
        .route(
            "/v3/pay/transactions/out-trade-no/{no}/close",
            web::post().to(close),
        )
        .route("/v3/refund/domestic/refunds", web::post().to(refund))
        .route(
            "/v3/refund/domestic/refunds/{no}",
            web::get().to(query_refund),
        )
        .route("/v3/bill/tradebill", web::get().to(trade_bill))
        .route("/v3/billdownload/file", web::get().to(download_bill));
}

/// How long a bill's download link lives (WeChat: 30 s).
const BILL_LINK_TTL: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(serde::Deserialize)]
struct BillQuery {
    bill_date: Option<String>,
    bill_type: Option<String>,
    tar_type: Option<String>,
}

/// `GET /v3/bill/tradebill`: builds the day's bill now and answers where to download it and
/// the SHA1 of the plain file. Unlike WeChat (whose bill of a day is ready the next morning),
/// the sandbox also serves today's bill so far, so tests need not wait a day.
async fn trade_bill(sb: web::Data<Sandbox>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let result = authenticate(&sb, &req, &body).and_then(|()| {
        let q = web::Query::<BillQuery>::from_query(req.query_string())
            .map_err(|e| param_fail(&format!("query: {e}")))?;
        let date = q
            .bill_date
            .as_deref()
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .filter(|_| q.bill_date.as_deref().is_some_and(|d| d.len() == 10))
            .ok_or_else(|| param_fail("bill_date must be yyyy-MM-dd"))?;
        let today = crate::domain::time::cst_day(Utc::now());
        if date > today {
            return Err(Fail {
                status: 400,
                code: "NO_STATEMENT_EXIST",
                message: "账单不存在".into(),
            });
        }
        if date < today - chrono::Days::new(92) {
            return Err(Fail {
                status: 400,
                code: "INVALID_REQUEST",
                message: "仅支持三个月内的账单下载申请".into(),
            });
        }
        let bill_type = q.bill_type.as_deref().unwrap_or("ALL");
        if !matches!(bill_type, "ALL" | "SUCCESS" | "REFUND") {
            return Err(param_fail("bill_type must be ALL, SUCCESS or REFUND"));
        }
        let gzip = match q.tar_type.as_deref() {
            None => false,
            Some("GZIP") => true,
            Some(_) => return Err(param_fail("tar_type must be GZIP")),
        };
        let plain = lock(&sb)?.trade_bill(date, bill_type).into_bytes();
        let mut hash_value = crate::wechat::bill::sha1_hex(&plain);
        let wrong_hash = sb.bill_hash_faults.lock().ok().is_some_and(|mut n| {
            let take = *n > 0;
            *n = n.saturating_sub(1);
            take
        });
        if wrong_hash {
            hash_value = crate::wechat::bill::sha1_hex(b"not this bill");
        }
        let bytes = if gzip { gzip_bytes(&plain)? } else { plain };
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let now = std::time::Instant::now();
        let mut bills = sb.bills.lock().map_err(|_| system_fail())?;
        bills.retain(|_, (_, until)| *until > now);
        bills.insert(token.clone(), (bytes, now + BILL_LINK_TTL));
        let info = req.connection_info();
        Ok(crate::wechat::bill::BillLocation {
            hash_type: "SHA1".into(),
            hash_value,
            download_url: format!(
                "{}://{}/v3/billdownload/file?token={token}",
                info.scheme(),
                info.host()
            ),
        })
    });
    reply_json(&sb, result)
}

/// `GET /v3/billdownload/file?token=…`: the bill's bytes. The request is signed; the answer
/// is not (WeChat does not sign downloads: the announced hash protects them).
async fn download_bill(sb: web::Data<Sandbox>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let found = authenticate(&sb, &req, &body).and_then(|()| {
        let token = req
            .query_string()
            .split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .ok_or_else(|| param_fail("token is required"))?;
        let bills = sb.bills.lock().map_err(|_| system_fail())?;
        match bills.get(token) {
            Some((bytes, until)) if *until > std::time::Instant::now() => Ok(bytes.clone()),
            _ => Err(Fail {
                status: 400,
                code: "INVALID_REQUEST",
                message: "下载链接已失效".into(),
            }),
        }
    });
    match found {
        Ok(bytes) => HttpResponse::Ok()
            .content_type("application/octet-stream")
            .body(bytes),
        Err(fail) => reply_fail(&sb, &fail),
    }
}

fn gzip_bytes(plain: &[u8]) -> Result<Vec<u8>, Fail> {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(plain).map_err(|_| system_fail())?;
    gz.finish().map_err(|_| system_fail())
}

fn param_fail(message: &str) -> Fail {
    Fail {
        status: 400,
        code: "PARAM_ERROR",
        message: message.to_string(),
    }
}

fn system_fail() -> Fail {
    Fail {
        status: 500,
        code: "SYSTEM_ERROR",
        message: "sandbox state unavailable".into(),
    }
}

async fn prepay(sb: web::Data<Sandbox>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let result = authenticate(&sb, &req, &body)
        .and_then(|()| parse::<JsapiPrepayBody>(&body))
        .and_then(|b| lock(&sb)?.prepay(b, Utc::now()))
        .map(|prepay_id| PrepayResponse { prepay_id });
    // The order is booked (and payable) already; only the answer is late.
    let delay = sb.prepay_delays.lock().ok().and_then(|mut q| q.pop_front());
    if let Some(delay) = delay.filter(|_| result.is_ok()) {
        tokio::time::sleep(delay).await;
    }
    reply_json(&sb, result)
}

async fn query_by_out_trade_no(
    sb: web::Data<Sandbox>,
    req: HttpRequest,
    body: web::Bytes,
    no: web::Path<String>,
) -> HttpResponse {
    let result = authenticate(&sb, &req, &body)
        .and_then(|()| check_mchid_query(&sb, &req))
        .and_then(|()| lock(&sb)?.query(&no, Utc::now()));
    reply_json(&sb, result)
}

async fn query_by_transaction_id(
    sb: web::Data<Sandbox>,
    req: HttpRequest,
    body: web::Bytes,
    id: web::Path<String>,
) -> HttpResponse {
    let result = authenticate(&sb, &req, &body)
        .and_then(|()| check_mchid_query(&sb, &req))
        .and_then(|()| lock(&sb)?.query_by_transaction_id(&id, Utc::now()));
    reply_json(&sb, result)
}

async fn close(
    sb: web::Data<Sandbox>,
    req: HttpRequest,
    body: web::Bytes,
    no: web::Path<String>,
) -> HttpResponse {
    #[derive(serde::Deserialize)]
    struct CloseBody {
        mchid: String,
    }
    let result = authenticate(&sb, &req, &body)
        .and_then(|()| parse::<CloseBody>(&body))
        .and_then(|b| lock(&sb)?.close(&no, &b.mchid, Utc::now()));
    match result {
        Ok(()) => signed(&sb, StatusCode::NO_CONTENT, Vec::new()),
        Err(fail) => reply_fail(&sb, &fail),
    }
}

async fn refund(sb: web::Data<Sandbox>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let result = authenticate(&sb, &req, &body)
        .and_then(|()| parse::<RefundBody>(&body))
        .and_then(|b| lock(&sb)?.refund(b, Utc::now()));
    reply_json(&sb, result)
}

async fn query_refund(
    sb: web::Data<Sandbox>,
    req: HttpRequest,
    body: web::Bytes,
    no: web::Path<String>,
) -> HttpResponse {
    let result = authenticate(&sb, &req, &body).and_then(|()| lock(&sb)?.query_refund(&no));
    reply_json(&sb, result)
}

/// Checks `Authorization` as WeChat does: our merchant, its certificate serial, a fresh
/// timestamp and a SHA256withRSA signature over `METHOD\nURL\nTS\nNONCE\nBODY\n`.
pub fn authenticate(sb: &Sandbox, req: &HttpRequest, body: &[u8]) -> Result<(), Fail> {
    let sign_error = |message: &str| Fail {
        status: 401,
        code: "SIGN_ERROR",
        message: message.to_string(),
    };
    let raw = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| sign_error("Authorization header is missing"))?;
    let auth = AuthorizationHeader::parse(raw)
        .ok_or_else(|| sign_error("Authorization header is malformed"))?;
    if auth.mchid != sb.keys.mchid {
        return Err(sign_error("mchid does not match the merchant"));
    }
    if auth.serial_no != sb.keys.merchant_serial {
        return Err(sign_error(
            "serial_no is not the merchant's certificate serial",
        ));
    }
    let timestamp: i64 = auth
        .timestamp
        .parse()
        .map_err(|_| sign_error("timestamp is malformed"))?;
    if !is_fresh(Utc::now().timestamp(), timestamp) {
        return Err(sign_error("timestamp is outside the 5-minute window"));
    }
    let url = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let message = request_message(req.method().as_str(), url, timestamp, &auth.nonce_str, body);
    if sb
        .keys
        .merchant_verifier
        .verify_base64(&message, &auth.signature)
    {
        injected_fault(sb)
    } else {
        tracing::warn!(category = "security", nonce = %auth.nonce_str, "sandbox: merchant signature refused");
        Err(sign_error("签名错误"))
    }
}

/// A fault queued by a test takes the place of the next authentic call's answer.
fn injected_fault(sb: &Sandbox) -> Result<(), Fail> {
    match sb.faults.lock().ok().and_then(|mut q| q.pop_front()) {
        Some(fault) => Err(fault),
        None => Ok(()),
    }
}

fn check_mchid_query(sb: &Sandbox, req: &HttpRequest) -> Result<(), Fail> {
    let ok = req
        .query_string()
        .split('&')
        .any(|kv| kv.strip_prefix("mchid=") == Some(sb.keys.mchid.as_str()));
    if ok {
        Ok(())
    } else {
        Err(Fail {
            status: 400,
            code: "PARAM_ERROR",
            message: "mchid query parameter is missing or wrong".into(),
        })
    }
}

pub(super) fn lock(sb: &Sandbox) -> Result<std::sync::MutexGuard<'_, super::ledger::Ledger>, Fail> {
    sb.ledger.lock().map_err(|_| Fail {
        status: 500,
        code: "SYSTEM_ERROR",
        message: "ledger unavailable".into(),
    })
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Fail> {
    serde_json::from_slice(body).map_err(|e| Fail {
        status: 400,
        code: "PARAM_ERROR",
        message: format!("body: {e}"),
    })
}

fn reply_json<T: Serialize>(sb: &Sandbox, result: Result<T, Fail>) -> HttpResponse {
    match result.and_then(|v| {
        serde_json::to_vec(&v).map_err(|e| Fail {
            status: 500,
            code: "SYSTEM_ERROR",
            message: e.to_string(),
        })
    }) {
        Ok(bytes) => signed(sb, StatusCode::OK, bytes),
        Err(fail) => reply_fail(sb, &fail),
    }
}

fn reply_fail(sb: &Sandbox, fail: &Fail) -> HttpResponse {
    let body = serde_json::json!({ "code": fail.code, "message": fail.message });
    let status = StatusCode::from_u16(fail.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    signed(sb, status, body.to_string().into_bytes())
}

/// An answer with the platform's `Wechatpay-*` signature headers over its exact bytes.
fn signed(sb: &Sandbox, status: StatusCode, body: Vec<u8>) -> HttpResponse {
    let headers = match sb.keys.platform().headers(Utc::now().timestamp(), &body) {
        Ok(headers) => headers,
        // Unsigned, so the caller refuses it as WeChat's answer.
        Err(e) => return HttpResponse::InternalServerError().body(e.to_string()),
    };
    let mut response = HttpResponse::build(status);
    response.insert_header(("Request-Id", uuid::Uuid::now_v7().to_string()));
    for (name, value) in headers {
        response.insert_header((name, value));
    }
    if body.is_empty() {
        response.finish()
    } else {
        response.content_type("application/json").body(body)
    }
}
