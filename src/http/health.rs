//! Operations endpoints: liveness, readiness and the Prometheus scrape.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::{AppState, error::ApiError, error::ErrorCode};

/// The answer of `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub struct Alive {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The answer of `GET /readyz`.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, or `degraded` when Redis does not answer.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Always `ok` here (otherwise the answer is 503 `NOT_READY`).
    pub database: &'static str,
    /// `ok`, `unreachable` or `not configured`.
    pub redis: &'static str,
}

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Alive, description = "alive")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Alive { status: "ok" })
}

/// Ready: the database answers (503 `NOT_READY` otherwise: this instance cannot serve).
/// Redis is reported but does not fail readiness: every instance shares one Redis, so a 503
/// for it would take every instance out of the load balancer at once, while each of them
/// can still answer from the database (cache, nonces and rate limits degrade to this
/// instance). A Redis outage shows as `"status": "degraded", "redis": "unreachable"`, in
/// `dependency_up{dependency="redis"}` and the `PointsAppRedisDown` alert.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness, description = "ready (or degraded: serving without Redis)"),
        (status = 503, description = "NOT_READY: the database does not answer")))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let db_ok = state.app.ops.ping().await;
    state
        .metrics
        .dependency_up
        .with_label_values(&["database"])
        .set(i64::from(db_ok.is_ok()));
    if let Err(e) = db_ok {
        return Err(ApiError::new(ErrorCode::NotReady, "database unreachable").with_cause(e));
    }
    let (status, redis) = match &state.redis {
        Some(pool) => {
            // Below the probe's 2 s timeout (deploy/k8s), so a Redis that does not answer
            // reads as degraded, not as a failed probe.
            let ok = tokio::time::timeout(
                std::time::Duration::from_millis(1500),
                crate::cache::ping(pool),
            )
            .await
            .unwrap_or_else(|_| Err(crate::cache::CacheError::Pool("timed out".into())));
            state
                .metrics
                .dependency_up
                .with_label_values(&["redis"])
                .set(i64::from(ok.is_ok()));
            match ok {
                Ok(()) => ("ready", "ok"),
                Err(e) => {
                    tracing::warn!(category = "system", error = %e, "readiness: redis unreachable; serving from the database");
                    ("degraded", "unreachable")
                }
            }
        }
        None => ("ready", "not configured"),
    };
    Ok(HttpResponse::Ok().json(Readiness {
        status,
        database: "ok",
        redis,
    }))
}

/// Prometheus text format. Pool gauges are sampled at scrape time.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "text/plain", body = String,
        description = "Prometheus text exposition format")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let (conns, idle) = state.app.ops.pool_state();
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
    m.sample_disk(&state.settings.data_dir);
    // Who uses the product, database-wide: read at most once a minute, whatever the scrape
    // rate; a failed read leaves the last values.
    if m.business_due() {
        match state.app.ops.activity().await {
            Ok(a) => {
                m.business_active_users
                    .with_label_values(&["5m"])
                    .set(a.active_5m);
                m.business_active_users
                    .with_label_values(&["24h"])
                    .set(a.active_24h);
                m.business_retention_users
                    .with_label_values(&["cohort"])
                    .set(a.cohort_7d);
                m.business_retention_users
                    .with_label_values(&["retained"])
                    .set(a.retained_7d);
            }
            Err(e) => {
                tracing::warn!(category = "system", error = %e, "business gauges not sampled")
            }
        }
    }
    // The outbox backlog is database-wide; a failed query leaves the last values.
    match state.app.ops.outbox_backlog().await {
        Ok((pending, oldest)) => {
            m.outbox_pending.set(pending);
            let age = oldest
                .map(|at| {
                    (chrono::Utc::now().naive_utc() - at)
                        .num_milliseconds()
                        .max(0) as f64
                        / 1000.0
                })
                .unwrap_or(0.0);
            m.outbox_oldest_age_seconds.set(age);
        }
        Err(e) => {
            tracing::warn!(category = "system", error = %e, "outbox backlog not sampled");
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(m.render())
}
