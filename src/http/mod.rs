//! HTTP: routes, extractors, DTOs and the mapping of answers to responses. Handlers hold no
//! business logic: they authenticate, parse, send a message, and map the answer.

pub mod admin_web;
pub mod error;
pub mod health;
pub mod middleware;

use std::sync::Arc;

use actix_web::web;

use crate::actors::points::PointsService;
use crate::cache::RedisPool;
use crate::config::Settings;
use crate::sandbox::SandboxHandle;
use crate::storage::Db;
use crate::telemetry::Metrics;
use crate::wechat::{NotificationVerifier, WechatClient};

pub use error::ApiError;

/// Largest JSON body accepted (WeChat notifications are a few kB).
pub const JSON_LIMIT: usize = 64 * 1024;

/// What handlers share: settings, the database, Redis when configured, metrics.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub redis: Option<RedisPool>,
    pub metrics: Metrics,
    pub wechat: WechatClient,
    pub notify_verifier: NotificationVerifier,
    /// The in-process WeChat sandbox of the embedded default (kept alive with the app).
    pub sandbox: Option<Arc<SandboxHandle>>,
    /// The points engine (changes through per-user actors, reads from read models).
    pub points: PointsService,
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
    .default_service(web::to(not_found));
}

async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::not_found("no such route"))
}
