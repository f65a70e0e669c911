//! The route table: every method and path the server answers (besides the admin console,
//! `admin_web`), each with its handler. `http::configure` registers exactly these, and the
//! OpenAPI test reads the same table, so a route cannot be served without being documented.
//! Add a route here and nowhere else; `tests/api/openapi.rs` fails on a route registered any
//! other way.

use actix_web::http::Method;
use actix_web::{Route, web};

use super::{
    admin, auth, health, merchants, openapi, orders, payments, points, reconciliation, settlements,
    staff, users,
};

/// One registered route.
pub struct ApiRoute {
    pub method: Method,
    /// The actix pattern, e.g. `/api/merchants/{id}/orders`.
    pub path: &'static str,
    route: fn() -> Route,
}

macro_rules! route_table {
    ($($method:ident $path:literal => $handler:path,)*) => {
        /// Every route, in registration order (actix tries resources in this order, so a
        /// literal path such as `/api/merchants/me` comes before `/api/merchants/{id}/..`).
        pub fn routes() -> Vec<ApiRoute> {
            vec![$(ApiRoute {
                method: Method::$method,
                path: $path,
                route: || web::route().method(Method::$method).to($handler),
            }),*]
        }
    };
}

route_table! {
    GET "/healthz" => health::healthz,
    GET "/readyz" => health::readyz,
    GET "/metrics" => health::metrics,
    GET "/api-docs" => openapi::viewer_page,
    GET "/api-docs/openapi.json" => openapi::openapi_json,
    // The viewer's files (Swagger UI, vendored: see src/http/swagger-ui/README.md).
    GET "/api-docs/swagger-ui.css" => openapi::viewer_asset,
    GET "/api-docs/swagger-ui-bundle.js" => openapi::viewer_asset,
    GET "/api-docs/viewer.js" => openapi::viewer_asset,
    // Auth
    POST "/api/auth/wechat-login" => auth::wechat_login,
    POST "/api/auth/refresh" => auth::refresh,
    POST "/api/auth/logout" => auth::logout,
    POST "/api/admin/login" => auth::admin_login,
    // Users
    GET "/api/users/me" => users::get_me,
    PATCH "/api/users/me" => users::patch_me,
    PUT "/api/users/me/phone" => users::put_phone,
    // Merchants and payment codes
    POST "/api/merchants" => merchants::register,
    GET "/api/merchants/me" => merchants::my_merchants,
    POST "/api/merchants/{id}/payment-codes" => merchants::create_code,
    GET "/api/merchants/{id}/payment-codes" => merchants::list_codes,
    POST "/api/merchants/{id}/payment-codes/{code_id}/disable" => merchants::disable_code,
    GET "/api/merchants/{id}/payment-codes/{code_id}/qr" => merchants::owner_code_qr,
    GET "/api/payment-codes/{code_id}" => merchants::get_code,
    GET "/api/payment-codes/{code_id}/qr.png" => merchants::code_qr,
    // Admin
    GET "/api/admin/merchants" => admin::list_merchants,
    POST "/api/admin/merchants/{id}/approve" => admin::approve_merchant,
    POST "/api/admin/merchants/{id}/disable" => admin::disable_merchant,
    GET "/api/admin/users" => admin::list_users,
    PUT "/api/admin/users/{id}/status" => admin::set_user_status,
    GET "/api/admin/audit-log" => admin::audit_log,
    GET "/api/admin/notifications" => admin::notifications,
    GET "/api/admin/risk-rules" => admin::risk_rules,
    PATCH "/api/admin/risk-rules/{id}" => admin::change_risk_rule,
    GET "/api/admin/notifications/{id}" => admin::notification,
    POST "/api/admin/notifications/{id}/replay" => admin::replay_notification,
    GET "/api/admin/orders" => orders::admin_orders,
    GET "/api/admin/stats/overview" => orders::admin_overview,
    GET "/api/admin/reports/orders.csv" => orders::orders_csv,
    GET "/api/admin/settlements" => settlements::admin_settlements,
    GET "/api/admin/settlements.csv" => settlements::admin_settlements_csv,
    POST "/api/admin/orders/{order_no}/refund" => orders::admin_refund,
    POST "/api/admin/points/{user_id}/adjust" => points::adjust,
    GET "/api/admin/points-rules" => points::get_rules,
    PUT "/api/admin/points-rules" => points::put_rules,
    POST "/api/admin/reconciliation/runs" => reconciliation::start_run,
    GET "/api/admin/reconciliation/runs" => reconciliation::list_runs,
    GET "/api/admin/reconciliation/runs/{id}" => reconciliation::get_run,
    // Merchants' orders and takings
    GET "/api/merchants/{id}/orders" => orders::merchant_orders,
    POST "/api/merchants/{id}/orders/{order_no}/refund" => orders::merchant_refund,
    GET "/api/merchants/{id}/stats" => orders::merchant_stats,
    GET "/api/merchants/{id}/settlements" => settlements::merchant_settlements,
    GET "/api/merchants/{id}/settlements.csv" => settlements::merchant_settlements_csv,
    // Merchant staff (the owner's) and joining a merchant by invite code
    POST "/api/merchants/{id}/staff/invites" => staff::create_invite,
    GET "/api/merchants/{id}/staff/invites" => staff::list_invites,
    DELETE "/api/merchants/{id}/staff/invites/{invite_id}" => staff::revoke_invite,
    GET "/api/merchants/{id}/staff" => staff::list_staff,
    PATCH "/api/merchants/{id}/staff/{user_id}" => staff::change_role,
    DELETE "/api/merchants/{id}/staff/{user_id}" => staff::remove_staff,
    POST "/api/staff/invites/redeem" => staff::redeem,
    // Payments
    POST "/api/payments" => payments::create,
    GET "/api/payments" => payments::list,
    GET "/api/payments/{order_no}" => payments::get,
    POST "/api/payments/{order_no}/cancel" => payments::cancel,
    POST "/api/wechat/pay/notify" => payments::notify,
    POST "/api/wechat/refund/notify" => payments::notify,
    // Points
    GET "/api/points/balance" => points::balance,
    GET "/api/points/history" => points::history,
    GET "/api/points/statistics" => points::statistics,
    POST "/api/points/deduct" => points::deduct,
}

/// Registers the table: one resource per path (its routes in table order), paths in the
/// order they first appear.
pub fn register(cfg: &mut web::ServiceConfig) {
    let table = routes();
    let mut paths: Vec<&'static str> = Vec::new();
    for r in &table {
        if !paths.contains(&r.path) {
            paths.push(r.path);
        }
    }
    for path in paths {
        let mut resource = web::resource(path);
        for r in table.iter().filter(|r| r.path == path) {
            resource = resource.route((r.route)());
        }
        cfg.service(resource);
    }
}
