//! The OpenAPI document, generated from the handlers' annotations, and a small page that
//! lists it. (utoipa-swagger-ui downloads its assets at build time, which offline builds
//! cannot do; the page below needs nothing but the document.)

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::openapi_more as more;
use super::{admin, auth, merchants, users};

/// Operations endpoints are documented here: their handlers belong to `health`.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive")))]
#[allow(dead_code)]
fn healthz_doc() {}

#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "ready"), (status = 503, description = "NOT_READY")))]
#[allow(dead_code)]
fn readyz_doc() {}

#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format")))]
#[allow(dead_code)]
fn metrics_doc() {}

#[utoipa::path(get, path = "/api-docs/openapi.json", tag = "operations", responses((status = 200, description = "this document")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

#[utoipa::path(get, path = "/api-docs", tag = "operations", responses((status = 200, content_type = "text/html", description = "a page listing the operations")))]
pub async fn docs_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(DOCS_PAGE)
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "points-app", description = "WeChat scan-to-pay with loyalty points. Errors: {code, message, trace_id}."),
    modifiers(&BearerAuth),
    paths(
        healthz_doc, readyz_doc, metrics_doc, openapi_json, docs_page,
        auth::wechat_login, auth::refresh, auth::logout, auth::admin_login,
        users::get_me, users::patch_me, users::put_phone,
        merchants::register, merchants::my_merchants, merchants::create_code, merchants::list_codes,
        merchants::disable_code, merchants::get_code, merchants::code_qr,
        admin::list_merchants, admin::approve_merchant, admin::disable_merchant, admin::list_users,
        admin::set_user_status, admin::audit_log, admin::notifications, admin::notification,
        admin::replay_notification, admin::risk_rules, admin::change_risk_rule,
        more::create_payment, more::list_payments, more::get_payment, more::cancel_payment,
        more::pay_notify, more::refund_notify, more::merchant_orders, more::merchant_refund,
        more::merchant_stats, more::admin_orders, more::admin_refund, more::admin_adjust,
        more::get_rules, more::put_rules, more::points_balance, more::points_history,
        more::points_statistics, more::points_deduct, more::admin_overview, more::orders_csv,
    )
)]
pub struct ApiDoc;

const DOCS_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>points-app API</title>
<style>body{font-family:sans-serif;margin:2em}td{padding:2px 8px;vertical-align:top}code{font-weight:bold}</style>
</head><body><h1>points-app API</h1>
<p>The document: <a href="/api-docs/openapi.json">/api-docs/openapi.json</a> (load it into any OpenAPI viewer).</p>
<table id="ops"></table>
<script>
fetch('/api-docs/openapi.json').then(r => r.json()).then(doc => {
  const t = document.getElementById('ops');
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const row = t.insertRow();
      row.insertCell().textContent = method.toUpperCase();
      row.insertCell().innerHTML = '<code></code>';
      row.cells[1].firstChild.textContent = path;
      row.insertCell().textContent = (op.tags || []).join(', ');
    }
  }
});
</script></body></html>"#;

/// Starts `http_requests_total{method, route, status="200"}` and the latency histogram at 0
/// for every documented operation, so rates and alerts read 0 on an instance nobody has
/// called yet instead of "no data".
pub fn preregister_request_series(metrics: &crate::telemetry::Metrics) {
    let doc = ApiDoc::openapi();
    for (path, item) in &doc.paths.paths {
        let methods = [
            ("GET", item.get.is_some()),
            ("POST", item.post.is_some()),
            ("PUT", item.put.is_some()),
            ("PATCH", item.patch.is_some()),
            ("DELETE", item.delete.is_some()),
        ];
        for (method, _) in methods.iter().filter(|(_, present)| *present) {
            metrics
                .http_requests_total
                .with_label_values(&[method, path.as_str(), "200"]);
            metrics
                .http_request_duration_seconds
                .with_label_values(&[method, path.as_str()]);
        }
    }
}
