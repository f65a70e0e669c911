//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations (the
//! route table in `routes.rs` lists the same handlers, and `tests/api/openapi.rs` keeps the
//! two equal), and the interactive viewer at `/api-docs`: Swagger UI, vendored in
//! `swagger-ui/` and compiled into the binary, so it fetches nothing at build or run time.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::error::ApiError;
use super::{
    admin, auth, health, merchants, orders, payments, points, reconciliation, settlements, staff,
    users,
};

#[utoipa::path(get, path = "/api-docs/openapi.json", tag = "operations",
    responses((status = 200, body = serde_json::Value, description = "this document (OpenAPI 3.1)")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

/// The viewer's page: no inline script or style, so the policy below can forbid them.
const VIEWER_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>points-app API</title>
<link rel="stylesheet" href="/api-docs/swagger-ui.css">
</head>
<body>
<noscript>The OpenAPI document: <a href="/api-docs/openapi.json">/api-docs/openapi.json</a></noscript>
<div id="swagger-ui"></div>
<script src="/api-docs/swagger-ui-bundle.js"></script>
<script src="/api-docs/viewer.js"></script>
</body>
</html>
"#;

/// Starts Swagger UI on the served document. `validatorUrl: null`: by default Swagger UI
/// asks an external validator for a badge.
const VIEWER_JS: &str = r##"window.ui = SwaggerUIBundle({
  url: "/api-docs/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  validatorUrl: null,
});
"##;

/// Everything the viewer loads comes from this server. Swagger UI sets inline style
/// attributes and draws icons as `data:` images.
const VIEWER_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; \
base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

#[utoipa::path(get, path = "/api-docs", tag = "operations",
    responses((status = 200, content_type = "text/html", body = String,
        description = "the interactive viewer of this document (Swagger UI)")))]
pub async fn viewer_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, VIEWER_CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(VIEWER_PAGE)
}

/// The viewer's scripts and style sheet (`/api-docs/<name>`), from the binary.
pub async fn viewer_asset(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (body, content_type): (&'static [u8], &str) = match req.path() {
        "/api-docs/swagger-ui-bundle.js" => (
            include_bytes!("swagger-ui/swagger-ui-bundle.js"),
            "text/javascript; charset=utf-8",
        ),
        "/api-docs/swagger-ui.css" => (
            include_bytes!("swagger-ui/swagger-ui.css"),
            "text/css; charset=utf-8",
        ),
        "/api-docs/viewer.js" => (VIEWER_JS.as_bytes(), "text/javascript; charset=utf-8"),
        _ => return Err(ApiError::not_found("no such file")),
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Changes only with the binary; a day is short enough for an upgrade to show.
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(body))
}

/// A binary answer (the QR image): `{type: string, format: binary}`, as client generators
/// expect for a file.
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl utoipa::ToSchema for Binary {}

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
                // A DELETE is signed too, and the signature covers whatever body it has.
                (&mut item.delete, true),
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
    info(title = "points-app", description = "WeChat scan-to-pay with loyalty points. Errors: {code, message, trace_id} (schema ErrorBody). \
User, merchant and admin routes take `Authorization: Bearer <access token>`; mutating user and merchant routes are also signed \
(X-Timestamp, X-Nonce, X-Signature). WeChat's notification routes are authenticated by their Wechatpay-* signature headers."),
    modifiers(&BearerAuth, &ErrorResponses),
    paths(
        health::healthz, health::readyz, health::metrics, openapi_json, viewer_page,
        auth::wechat_login, auth::refresh, auth::logout, auth::admin_login,
        users::get_me, users::patch_me, users::put_phone,
        merchants::register, merchants::my_merchants, merchants::create_code, merchants::list_codes,
        merchants::disable_code, merchants::get_code, merchants::code_qr, merchants::owner_code_qr,
        admin::list_merchants, admin::approve_merchant, admin::disable_merchant, admin::list_users,
        admin::set_user_status, admin::audit_log, admin::notifications, admin::notification,
        admin::replay_notification, admin::risk_rules, admin::change_risk_rule,
        orders::admin_orders, orders::admin_overview, orders::orders_csv, orders::admin_refund,
        orders::merchant_orders, orders::merchant_refund, orders::merchant_stats,
        settlements::merchant_settlements, settlements::merchant_settlements_csv,
        settlements::admin_settlements, settlements::admin_settlements_csv,
        staff::create_invite, staff::list_invites, staff::revoke_invite, staff::list_staff,
        staff::change_role, staff::remove_staff, staff::redeem,
        points::adjust, points::get_rules, points::put_rules,
        reconciliation::start_run, reconciliation::list_runs, reconciliation::get_run,
        points::balance, points::history, points::statistics, points::deduct,
        payments::create, payments::list, payments::get, payments::cancel,
        payments::notify, payments::refund_notify,
    )
)]
pub struct ApiDoc;

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
