//! The OpenAPI document, generated from the handlers' annotations, and a small page that
//! lists it. (utoipa-swagger-ui downloads its assets at build time, which offline builds
//! cannot do; the page below needs nothing but the document.)

use actix_web::HttpResponse;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
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

/// The error answers every operation can give, by its shape, each with the one error body
/// `{code, message, trace_id}` (schema `ErrorBody`): 400 for a malformed path, query or body;
/// 401 and 403 where a token is needed; 404 where the path names something; 413, 415 and
/// 422 where a body is read (every mutating operation: signed ones read theirs whatever it
/// is). Statuses an operation lists itself keep their description and get the body. The
/// WeChat notification routes answer in WeChat's format instead (`{code: FAIL, message}`).
struct ErrorResponses;

const ERROR_BODY: &str = "ErrorBody";

fn error_statuses(op: &Operation, mutating: bool) -> Vec<(&'static str, &'static str)> {
    let has = |place: ParameterIn| {
        op.parameters
            .iter()
            .flatten()
            .any(|p| p.parameter_in == place)
    };
    let mut statuses = Vec::new();
    if mutating || has(ParameterIn::Query) || has(ParameterIn::Path) {
        statuses.push((
            "400",
            "MALFORMED_JSON / INVALID_QUERY / INVALID_PATH and the route's own refusals",
        ));
    }
    if op.security.is_some() {
        statuses.push((
            "401",
            "UNAUTHORIZED / TOKEN_INVALID / TOKEN_EXPIRED / SESSION_REVOKED",
        ));
        statuses.push(("403", "FORBIDDEN / USER_DISABLED"));
    }
    if has(ParameterIn::Path) {
        statuses.push(("404", "not found"));
    }
    if mutating {
        statuses.push(("413", "PAYLOAD_TOO_LARGE (64 KiB)"));
        statuses.push(("415", "UNSUPPORTED_MEDIA_TYPE (expected application/json)"));
        statuses.push(("422", "VALIDATION_FAILED"));
    }
    statuses
}

fn add_error_responses(op: &mut Operation, mutating: bool) {
    let body = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(ERROR_BODY)))
            .build()
    };
    for (status, description) in error_statuses(op, mutating) {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| ResponseBuilder::new().description(description).into());
    }
    for (status, response) in op.responses.responses.iter_mut() {
        if let (true, RefOr::T(response)) = (status.starts_with(['4', '5']), response)
            && response.content.is_empty()
        {
            response
                .content
                .insert("application/json".to_string(), body());
        }
    }
}

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let string = || ObjectBuilder::new().schema_type(Type::String);
        let components = openapi.components.get_or_insert_with(Default::default);
        components.schemas.insert(
            ERROR_BODY.to_string(),
            ObjectBuilder::new()
                .description(Some(
                    "Every error answer (the WeChat notification routes excepted)",
                ))
                .property(
                    "code",
                    string().description(Some("stable, e.g. VALIDATION_FAILED")),
                )
                .property("message", string())
                .property(
                    "trace_id",
                    string().description(Some("the X-Request-Id of the answer")),
                )
                .required("code")
                .required("message")
                .required("trace_id")
                .into(),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            if path.starts_with("/api/wechat/") {
                continue;
            }
            let ops = [
                (&mut item.get, false),
                (&mut item.delete, false),
                (&mut item.post, true),
                (&mut item.put, true),
                (&mut item.patch, true),
            ];
            for (op, mutating) in ops {
                if let Some(op) = op.as_mut() {
                    add_error_responses(op, mutating);
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "points-app", description = "WeChat scan-to-pay with loyalty points. Errors: {code, message, trace_id}."),
    modifiers(&BearerAuth, &ErrorResponses),
    paths(
        healthz_doc, readyz_doc, metrics_doc, openapi_json, docs_page,
        auth::wechat_login, auth::refresh, auth::logout, auth::admin_login,
        users::get_me, users::patch_me, users::put_phone,
        merchants::register, merchants::my_merchants, merchants::create_code, merchants::list_codes,
        merchants::disable_code, merchants::get_code, merchants::code_qr, merchants::owner_code_qr,
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
