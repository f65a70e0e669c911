//! Operations endpoints: liveness, readiness and the Prometheus scrape.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::{AppState, error::ApiError};

/// Alive: the process answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready: the database and, when configured, Redis answer. 503 names what does not.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let db_ok = state.db.ping().await;
    state
        .metrics
        .dependency_up
        .with_label_values(&["database"])
        .set(i64::from(db_ok.is_ok()));
    if let Err(e) = db_ok {
        return Err(ApiError::unavailable("NOT_READY", "database unreachable").with_cause(e));
    }
    let redis = match &state.redis {
        Some(pool) => {
            let ok = crate::cache::ping(pool).await;
            state
                .metrics
                .dependency_up
                .with_label_values(&["redis"])
                .set(i64::from(ok.is_ok()));
            if let Err(e) = ok {
                return Err(ApiError::unavailable("NOT_READY", "redis unreachable").with_cause(e));
            }
            "ok"
        }
        None => "not configured",
    };
    Ok(HttpResponse::Ok().json(json!({"status": "ready", "database": "ok", "redis": redis})))
}

/// Prometheus text format. Pool gauges are sampled at scrape time.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let (conns, idle) = state.db.pool_state();
    let m = &state.metrics;
    m.db_pool_connections
        .with_label_values(&["idle"])
        .set(i64::from(idle));
    m.db_pool_connections
        .with_label_values(&["in_use"])
        .set(i64::from(conns.saturating_sub(idle)));
    if let Some(pool) = &state.redis {
        let s = pool.state();
        m.redis_pool_connections
            .with_label_values(&["idle"])
            .set(i64::from(s.idle_connections));
        m.redis_pool_connections
            .with_label_values(&["in_use"])
            .set(i64::from(s.connections.saturating_sub(s.idle_connections)));
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(m.render())
}
