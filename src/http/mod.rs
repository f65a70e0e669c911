//! HTTP: routes, extractors, DTOs and the mapping of answers to responses. Handlers hold no
//! business logic: they authenticate, parse, send a message, and map the answer.

pub mod admin;
pub mod admin_web;
pub mod auth;
pub mod error;
pub mod extract;
pub mod health;
pub mod merchants;
pub mod middleware;
pub mod openapi;
mod openapi_more;
pub mod orders;
pub mod page;
pub mod payments;
pub mod points;
pub mod qr;
pub mod users;

use std::sync::Arc;

use actix_web::web;

use crate::actors::payments::Payments;
use crate::actors::points::PointsService;
use crate::app::App;
use crate::cache::{Cache, RedisPool};
use crate::config::Settings;
use crate::security::SecurityState;
use crate::telemetry::Metrics;
use crate::wechat::WechatServices;

pub use error::ApiError;

/// Largest JSON body accepted (WeChat notifications are a few kB).
pub const JSON_LIMIT: usize = 64 * 1024;

/// What handlers share: settings, the use cases, Redis when configured, metrics, and the
/// WeChat client with its notification verifier.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    /// The use cases (`crate::app`): handlers reach data only through them.
    pub app: App,
    pub redis: Option<RedisPool>,
    /// The two-level cache (L1 in process, L2 in Redis when configured).
    pub cache: Cache,
    pub metrics: Metrics,
    pub security: Arc<SecurityState>,
    pub wechat: WechatServices,
    /// The points engine (changes through per-user actors, reads from read models).
    pub points: PointsService,
    /// The payment supervisor: every order's state machine on this node, sharded by order
    /// number; handlers send it messages.
    pub payments: Payments,
}

/// Every route of the server, registered in one place.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(JSON_LIMIT)
            .error_handler(|err, _req| error::json_error(err).into()),
    )
    .app_data(web::QueryConfig::default().error_handler(|err, _req| error::query_error(err).into()))
    .app_data(web::PathConfig::default().error_handler(|err, _req| error::path_error(err).into()))
    .service(web::resource("/healthz").route(web::get().to(health::healthz)))
    .service(web::resource("/readyz").route(web::get().to(health::readyz)))
    .service(web::resource("/metrics").route(web::get().to(health::metrics)))
    .service(web::resource("/api-docs").route(web::get().to(openapi::docs_page)))
    .service(web::resource("/api-docs/openapi.json").route(web::get().to(openapi::openapi_json)))
    // Auth
    .service(web::resource("/api/auth/wechat-login").route(web::post().to(auth::wechat_login)))
    .service(web::resource("/api/auth/refresh").route(web::post().to(auth::refresh)))
    .service(web::resource("/api/auth/logout").route(web::post().to(auth::logout)))
    .service(web::resource("/api/admin/login").route(web::post().to(auth::admin_login)))
    // Users
    .service(
        web::resource("/api/users/me")
            .route(web::get().to(users::get_me))
            .route(web::patch().to(users::patch_me)),
    )
    .service(web::resource("/api/users/me/phone").route(web::put().to(users::put_phone)))
    // Merchants and payment codes
    .service(web::resource("/api/merchants").route(web::post().to(merchants::register)))
    .service(web::resource("/api/merchants/me").route(web::get().to(merchants::my_merchants)))
    .service(
        web::resource("/api/merchants/{id}/payment-codes")
            .route(web::post().to(merchants::create_code))
            .route(web::get().to(merchants::list_codes)),
    )
    .service(
        web::resource("/api/merchants/{id}/payment-codes/{code_id}/disable")
            .route(web::post().to(merchants::disable_code)),
    )
    .service(
        web::resource("/api/merchants/{id}/payment-codes/{code_id}/qr")
            .route(web::get().to(merchants::owner_code_qr)),
    )
    .service(
        web::resource("/api/payment-codes/{code_id}").route(web::get().to(merchants::get_code)),
    )
    .service(
        web::resource("/api/payment-codes/{code_id}/qr.png")
            .route(web::get().to(merchants::code_qr)),
    )
    // Admin
    .service(web::resource("/api/admin/merchants").route(web::get().to(admin::list_merchants)))
    .service(
        web::resource("/api/admin/merchants/{id}/approve")
            .route(web::post().to(admin::approve_merchant)),
    )
    .service(
        web::resource("/api/admin/merchants/{id}/disable")
            .route(web::post().to(admin::disable_merchant)),
    )
    .service(web::resource("/api/admin/users").route(web::get().to(admin::list_users)))
    .service(
        web::resource("/api/admin/users/{id}/status").route(web::put().to(admin::set_user_status)),
    )
    .service(web::resource("/api/admin/audit-log").route(web::get().to(admin::audit_log)))
    .service(web::resource("/api/admin/notifications").route(web::get().to(admin::notifications)))
    .service(web::resource("/api/admin/risk-rules").route(web::get().to(admin::risk_rules)))
    .service(
        web::resource("/api/admin/risk-rules/{id}").route(web::patch().to(admin::change_risk_rule)),
    )
    .service(
        web::resource("/api/admin/notifications/{id}").route(web::get().to(admin::notification)),
    )
    .service(
        web::resource("/api/admin/notifications/{id}/replay")
            .route(web::post().to(admin::replay_notification)),
    )
    .service(web::resource("/api/admin/orders").route(web::get().to(orders::admin_orders)))
    .service(
        web::resource("/api/admin/stats/overview").route(web::get().to(orders::admin_overview)),
    )
    .service(
        web::resource("/api/admin/reports/orders.csv").route(web::get().to(orders::orders_csv)),
    )
    .service(
        web::resource("/api/admin/orders/{order_no}/refund")
            .route(web::post().to(orders::admin_refund)),
    )
    .service(
        web::resource("/api/admin/points/{user_id}/adjust").route(web::post().to(points::adjust)),
    )
    .service(
        web::resource("/api/admin/points-rules")
            .route(web::get().to(points::get_rules))
            .route(web::put().to(points::put_rules)),
    )
    // Merchants' orders and takings
    .service(
        web::resource("/api/merchants/{id}/orders").route(web::get().to(orders::merchant_orders)),
    )
    .service(
        web::resource("/api/merchants/{id}/orders/{order_no}/refund")
            .route(web::post().to(orders::merchant_refund)),
    )
    .service(
        web::resource("/api/merchants/{id}/stats").route(web::get().to(orders::merchant_stats)),
    )
    // Payments
    .service(
        web::resource("/api/payments")
            .route(web::post().to(payments::create))
            .route(web::get().to(payments::list)),
    )
    .service(web::resource("/api/payments/{order_no}").route(web::get().to(payments::get)))
    .service(
        web::resource("/api/payments/{order_no}/cancel").route(web::post().to(payments::cancel)),
    )
    .service(web::resource("/api/wechat/pay/notify").route(web::post().to(payments::notify)))
    .service(web::resource("/api/wechat/refund/notify").route(web::post().to(payments::notify)))
    // Points
    .service(web::resource("/api/points/balance").route(web::get().to(points::balance)))
    .service(web::resource("/api/points/history").route(web::get().to(points::history)))
    .service(web::resource("/api/points/statistics").route(web::get().to(points::statistics)))
    .service(web::resource("/api/points/deduct").route(web::post().to(points::deduct)))
    .default_service(web::to(not_found));
}

async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::not_found("no such route"))
}
