//! OpenAPI entries for the payment, refund, takings and points routes. The handlers take
//! extractors utoipa cannot see through, so each route is described here, next to the
//! shapes it answers with; the openapi test keeps this list equal to the router.
#![allow(dead_code)]

use super::orders::{AdminOrdersQuery, RangeQuery, RefundBody};
use super::page::PageQuery;
use super::payments::{CreateBody, OrderQuery};
use super::points::{AdjustBody, DeductBody};

/// The body of `PUT /api/admin/points-rules` (`points::RulesBody`: the domain's rule,
/// flattened, and when it takes effect), for the document only.
#[derive(utoipa::ToSchema)]
pub struct RulesDoc {
    pub points_per_yuan: i64,
    pub min_order_fen: i64,
    pub max_order_fen: i64,
    pub per_order_max_points: i64,
    pub daily_cap: i64,
    pub lifetime_cap: i64,
    pub expiry_days: i64,
    /// RFC 3339; now when absent.
    pub effective_from: Option<chrono::DateTime<chrono::Utc>>,
}

/// `doc_op!(name, method, path, tag, summary [, path params…] [; body = T] [; query = Q])`:
/// the request body's schema (`T: ToSchema`) and the query's parameters (`Q: IntoParams`)
/// are documented when named, so clients and the fuzz run see them.
macro_rules! doc_op {
    ($name:ident, $method:ident, $path:literal, $tag:literal, $summary:literal $(, $param:literal)* $(; body = $body:ident)? $(; query = $query:ident)?) => {
        #[utoipa::path(
            $method,
            path = $path,
            tag = $tag,
            summary = $summary,
            $(request_body = $body,)?
            params($($query,)? $(($param = String, Path, description = $param)),*),
            security(("bearer" = [])),
            responses(
                (status = 200, description = "success"),
                (status = 400, description = "{code, message, trace_id}"),
                (status = 401, description = "not signed in"),
                (status = 403, description = "not allowed"),
                (status = 404, description = "not found"),
                (status = 409, description = "conflict"),
                (status = 422, description = "validation failed"),
                (status = 429, description = "rate limited"),
            )
        )]
        pub fn $name() {}
    };
}

doc_op!(
    create_payment,
    post,
    "/api/payments",
    "payments",
    "Create an order (signed, Idempotency-Key) and get wx.requestPayment parameters"
    ; body = CreateBody
);
doc_op!(
    list_payments,
    get,
    "/api/payments",
    "payments",
    "The caller's orders, newest first, cursor-paged"
    ; query = PageQuery
);
doc_op!(
    get_payment,
    get,
    "/api/payments/{order_no}",
    "payments",
    "One of the caller's orders. With ?wait_ms=N (0..=10000), an order still moving (created, paying, or paid before its points are booked) is answered when it settles or after N ms",
    "order_no"
    ; query = OrderQuery
);
doc_op!(
    cancel_payment,
    post,
    "/api/payments/{order_no}/cancel",
    "payments",
    "Close an unpaid order (signed)",
    "order_no"
);
doc_op!(
    pay_notify,
    post,
    "/api/wechat/pay/notify",
    "wechat",
    "WeChat Pay payment notification: verified over the raw body; 204, or 4xx/5xx {code: FAIL}"
);
doc_op!(
    refund_notify,
    post,
    "/api/wechat/refund/notify",
    "wechat",
    "WeChat Pay refund notification: verified over the raw body; 204, or 4xx/5xx {code: FAIL}"
);
doc_op!(
    merchant_orders,
    get,
    "/api/merchants/{id}/orders",
    "merchants",
    "The merchant's orders, cursor-paged",
    "id"
    ; query = PageQuery
);
doc_op!(
    merchant_refund,
    post,
    "/api/merchants/{id}/orders/{order_no}/refund",
    "merchants",
    "Refund all or part of an order (signed; optional Idempotency-Key)",
    "id",
    "order_no"
    ; body = RefundBody
);
doc_op!(
    merchant_stats,
    get,
    "/api/merchants/{id}/stats",
    "merchants",
    "Takings per China Standard Time day: date, order_count, amount_fen, refund_fen, points_awarded",
    "id"
    ; query = RangeQuery
);
doc_op!(
    admin_orders,
    get,
    "/api/admin/orders",
    "admin",
    "All orders, filterable by merchant_id and user_id, cursor-paged"
    ; query = AdminOrdersQuery
);
doc_op!(
    admin_refund,
    post,
    "/api/admin/orders/{order_no}/refund",
    "admin",
    "Refund all or part of an order (audited)",
    "order_no"
    ; body = RefundBody
);
doc_op!(
    admin_adjust,
    post,
    "/api/admin/points/{user_id}/adjust",
    "admin",
    "Adjust a user's points with a reason (audited)",
    "user_id"
    ; body = AdjustBody
);
doc_op!(
    get_rules,
    get,
    "/api/admin/points-rules",
    "admin",
    "The earning rule in force"
);
doc_op!(
    put_rules,
    put,
    "/api/admin/points-rules",
    "admin",
    "A new earning rule, effective without restart (audited)"
    ; body = RulesDoc
);
doc_op!(
    points_balance,
    get,
    "/api/points/balance",
    "points",
    "available, total_earned, used, expired, expiring_soon"
);
doc_op!(
    points_history,
    get,
    "/api/points/history",
    "points",
    "Ledger rows, newest first, cursor-paged"
    ; query = PageQuery
);
doc_op!(
    points_statistics,
    get,
    "/api/points/statistics",
    "points",
    "Per month earned, spent, expired, and totals"
);
doc_op!(
    points_deduct,
    post,
    "/api/points/deduct",
    "points",
    "Spend points first-to-expire first (signed, Idempotency-Key); POINTS_INSUFFICIENT when short"
    ; body = DeductBody
);
doc_op!(
    admin_overview,
    get,
    "/api/admin/stats/overview",
    "admin",
    "Per CST day: date, order_count, amount_fen, refund_fen, new_users, points_awarded, points_spent, points_expired, payment_success_rate"
    ; query = RangeQuery
);
doc_op!(
    orders_csv,
    get,
    "/api/admin/reports/orders.csv",
    "admin",
    "Orders created in the CST date range as CSV (UTF-8 with BOM)"
    ; query = RangeQuery
);
