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
pub mod orders;
pub mod page;
pub mod payments;
pub mod points;
pub mod qr;
pub mod reconciliation;
pub mod routes;
pub mod settlements;
pub mod staff;
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

/// Every route of the server: the extractor settings, the route table (`routes`), and 404
/// for anything else.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(JSON_LIMIT)
            .error_handler(|err, _req| error::json_error(err).into()),
    )
    .app_data(web::QueryConfig::default().error_handler(|err, _req| error::query_error(err).into()))
    .app_data(web::PathConfig::default().error_handler(|err, _req| error::path_error(err).into()))
    .configure(routes::register)
    .default_service(web::to(not_found));
}

async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::not_found("no such route"))
}
