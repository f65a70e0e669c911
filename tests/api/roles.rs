//! Merchant staff and roles: the authorisation matrix of every route in the route table
//! against every kind of caller, and the life of an invite (redeem, reuse, expiry,
//! revocation, concurrent redeems), role changes and removals taking effect on changes at
//! once, and a cashier's today-only orders.

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use points_app::storage::schema::{merchant_staff_invites, payment_orders};
use points_app::with_conn;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_body};
use crate::identity::{
    Session, admin_token, approved_merchant, get_auth, login, post_json, signed_request,
    spawn_identity_app_with,
};
use crate::payments::{paid_order, payment_code};

pub async fn roles_app() -> TestApp {
    // Logs only when asked for (`TEST_LOG=1`), as `spawn_app` does.
    if std::env::var("TEST_LOG").is_ok() {
        points_app::telemetry::init_subscriber("pretty");
    }
    spawn_identity_app_with(|s| {
        s.rate_limit_payments_per_min = 1000;
        s.rate_limit_login_per_min_per_ip = 1000;
    })
    .await
}

/// A signed user request with an Idempotency-Key (routes that do not read one ignore it).
pub async fn call(
    app: &TestApp,
    s: &Session,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    signed_request(app, s, method, path, body.as_ref())
        .header(
            "Idempotency-Key",
            format!("k{}", uuid::Uuid::now_v7().simple()),
        )
        .send()
        .await
        .unwrap()
}

/// A new invite of `merchant` for `role`: (invite id, code).
pub async fn invite(
    app: &TestApp,
    owner: &Session,
    merchant: &str,
    role: &str,
) -> (String, String) {
    let res = call(
        app,
        owner,
        "POST",
        &format!("/api/merchants/{merchant}/staff/invites"),
        Some(json!({ "role": role })),
    )
    .await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["role"], role);
    (
        body["id"].as_str().unwrap().to_string(),
        body["code"].as_str().unwrap().to_string(),
    )
}

pub async fn redeem(app: &TestApp, s: &Session, code: &str) -> reqwest::Response {
    call(
        app,
        s,
        "POST",
        "/api/staff/invites/redeem",
        Some(json!({ "code": code })),
    )
    .await
}

/// A new session continuing `s`'s (its access token is issued now, with the memberships of
/// now); the sign key stays the session's.
pub async fn refreshed(app: &TestApp, s: &Session) -> Session {
    let res = post_json(
        app,
        "/api/auth/refresh",
        json!({ "refresh_token": s.refresh_token }),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    Session {
        access_token: body["access_token"].as_str().unwrap().into(),
        refresh_token: body["refresh_token"].as_str().unwrap().into(),
        sign_key: body["sign_key"].as_str().unwrap().into(),
        user_id: s.user_id.clone(),
    }
}

/// A user who joined `merchant` with `role` (invited by `owner`), their token refreshed so
/// it lists the membership.
pub async fn staff(
    app: &TestApp,
    owner: &Session,
    merchant: &str,
    name: &str,
    role: &str,
) -> Session {
    let s = login(app, name).await;
    let (_, code) = invite(app, owner, merchant, role).await;
    let res = redeem(app, &s, &code).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    refreshed(app, &s).await
}

/// The `mer` claim of an access token (not verified: the server verified it).
fn memberships(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let claims: Value = serde_json::from_slice(&bytes).unwrap();
    claims.get("mer").cloned().unwrap_or(Value::Null)
}

#[derive(QueryableByName, Debug, PartialEq, Eq, Clone)]
struct Fingerprint {
    #[diesel(sql_type = BigInt)]
    refunds: i64,
    #[diesel(sql_type = BigInt)]
    codes: i64,
    #[diesel(sql_type = BigInt)]
    active_codes: i64,
    #[diesel(sql_type = BigInt)]
    staff: i64,
    #[diesel(sql_type = BigInt)]
    managers: i64,
    #[diesel(sql_type = BigInt)]
    pending_invites: i64,
    #[diesel(sql_type = BigInt)]
    invites: i64,
    #[diesel(sql_type = BigInt)]
    audit: i64,
    #[diesel(sql_type = BigInt)]
    merchants: i64,
    #[diesel(sql_type = BigInt)]
    approved: i64,
    #[diesel(sql_type = BigInt)]
    orders: i64,
    #[diesel(sql_type = BigInt)]
    active_users: i64,
    #[diesel(sql_type = BigInt)]
    points_records: i64,
}

/// Counts of everything a refused call could have changed.
async fn fingerprint(app: &TestApp) -> Fingerprint {
    let mut conn = app.state.app.db().conn().await.unwrap();
    let sql = "SELECT \
        (SELECT COUNT(*) FROM refunds) AS refunds, \
        (SELECT COUNT(*) FROM payment_codes) AS codes, \
        (SELECT COUNT(*) FROM payment_codes WHERE status = 'active') AS active_codes, \
        (SELECT COUNT(*) FROM merchant_staff) AS staff, \
        (SELECT COUNT(*) FROM merchant_staff WHERE role = 'manager') AS managers, \
        (SELECT COUNT(*) FROM merchant_staff_invites WHERE redeemed_at IS NULL AND revoked_at IS NULL) AS pending_invites, \
        (SELECT COUNT(*) FROM merchant_staff_invites) AS invites, \
        (SELECT COUNT(*) FROM audit_log) AS audit, \
        (SELECT COUNT(*) FROM merchants) AS merchants, \
        (SELECT COUNT(*) FROM merchants WHERE status = 'approved') AS approved, \
        (SELECT COUNT(*) FROM payment_orders) AS orders, \
        (SELECT COUNT(*) FROM users WHERE status = 'active') AS active_users, \
        (SELECT COUNT(*) FROM points_records) AS points_records";
    with_conn!(&mut conn, |c| {
        diesel::sql_query(sql).get_result::<Fingerprint>(c).await
    })
    .unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Shopper,
    Cashier,
    Manager,
    Owner,
    OtherOwner,
    Admin,
}

const EVERYONE: [Who; 7] = [
    Who::Anonymous,
    Who::Shopper,
    Who::Cashier,
    Who::Manager,
    Who::Owner,
    Who::OtherOwner,
    Who::Admin,
];

/// What a caller gets from a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Served: 2xx, or a business refusal that is not 401, 403 or 404.
    Allowed,
    /// Served, but the id in the path is made up, so a 404 of that thing is fine (not a
    /// refusal: `MERCHANT_NOT_FOUND` and 401/403 still fail).
    AllowedUnknownId,
    /// Refused with this status, changing nothing.
    Refused(u16),
    /// A public route: the caller does not matter (every caller gets the same status).
    Public,
}

use Expect::{Allowed, AllowedUnknownId, Public, Refused};

/// The matrix: for each route of the table, what each of [`EVERYONE`] gets. A route of the
/// table without a row here fails the test.
fn matrix(method: &str, path: &str) -> Option<[Expect; 7]> {
    // anonymous, shopper, cashier, manager, owner, another merchant's owner, admin
    const PUBLIC: [Expect; 7] = [Public; 7];
    const USER: [Expect; 7] = [
        Refused(401),
        Allowed,
        Allowed,
        Allowed,
        Allowed,
        Allowed,
        Refused(403),
    ];
    const SESSION: [Expect; 7] = [
        Refused(401),
        Allowed,
        Allowed,
        Allowed,
        Allowed,
        Allowed,
        Allowed,
    ];
    const ADMIN: [Expect; 7] = [
        Refused(401),
        Refused(403),
        Refused(403),
        Refused(403),
        Refused(403),
        Refused(403),
        Allowed,
    ];
    const ADMIN_BY_ID: [Expect; 7] = [
        Refused(401),
        Refused(403),
        Refused(403),
        Refused(403),
        Refused(403),
        Refused(403),
        AllowedUnknownId,
    ];
    // Merchant routes: a non-member is answered like a missing merchant (404), a member
    // whose role lacks the permission 403.
    const CASHIER_UP: [Expect; 7] = [
        Refused(401),
        Refused(404),
        Allowed,
        Allowed,
        Allowed,
        Refused(404),
        Refused(403),
    ];
    const MANAGER_UP: [Expect; 7] = [
        Refused(401),
        Refused(404),
        Refused(403),
        Allowed,
        Allowed,
        Refused(404),
        Refused(403),
    ];
    const OWNER: [Expect; 7] = [
        Refused(401),
        Refused(404),
        Refused(403),
        Refused(403),
        Allowed,
        Refused(404),
        Refused(403),
    ];
    Some(match (method, path) {
        ("GET", "/healthz" | "/readyz" | "/metrics" | "/api-docs" | "/api-docs/openapi.json") => {
            PUBLIC
        }
        (
            "GET",
            "/api-docs/swagger-ui.css" | "/api-docs/swagger-ui-bundle.js" | "/api-docs/viewer.js",
        ) => PUBLIC,
        ("POST", "/api/auth/wechat-login" | "/api/auth/refresh" | "/api/admin/login") => PUBLIC,
        ("POST", "/api/auth/logout") => SESSION,
        ("GET" | "PATCH", "/api/users/me") | ("PUT", "/api/users/me/phone") => USER,
        ("POST", "/api/merchants") | ("GET", "/api/merchants/me") => USER,
        ("POST" | "GET", "/api/merchants/{id}/payment-codes") => MANAGER_UP,
        ("POST", "/api/merchants/{id}/payment-codes/{code_id}/disable") => MANAGER_UP,
        ("GET", "/api/merchants/{id}/payment-codes/{code_id}/qr") => MANAGER_UP,
        ("GET", "/api/payment-codes/{code_id}" | "/api/payment-codes/{code_id}/qr.png") => PUBLIC,
        ("GET", "/api/admin/notifications/{id}")
        | ("POST", "/api/admin/notifications/{id}/replay") => ADMIN_BY_ID,
        ("GET", "/api/admin/reconciliation/runs/{id}") => ADMIN_BY_ID,
        (_, p) if p.starts_with("/api/admin/") => ADMIN,
        ("GET", "/api/merchants/{id}/orders") => CASHIER_UP,
        ("POST", "/api/merchants/{id}/orders/{order_no}/refund") => MANAGER_UP,
        ("GET", "/api/merchants/{id}/stats") => MANAGER_UP,
        ("GET", "/api/merchants/{id}/settlements" | "/api/merchants/{id}/settlements.csv") => OWNER,
        ("POST" | "GET", "/api/merchants/{id}/staff/invites") => OWNER,
        ("DELETE", "/api/merchants/{id}/staff/invites/{invite_id}") => OWNER,
        ("GET", "/api/merchants/{id}/staff") => OWNER,
        ("PATCH" | "DELETE", "/api/merchants/{id}/staff/{user_id}") => OWNER,
        ("POST", "/api/staff/invites/redeem") => USER,
        ("POST", "/api/payments") | ("GET", "/api/payments") => USER,
        ("GET", "/api/payments/{order_no}") | ("POST", "/api/payments/{order_no}/cancel") => USER,
        ("POST", "/api/wechat/pay/notify" | "/api/wechat/refund/notify") => PUBLIC,
        ("GET", "/api/points/balance" | "/api/points/history" | "/api/points/statistics") => USER,
        ("POST", "/api/points/deduct") => USER,
        _ => return None,
    })
}

/// Everyone and everything the matrix calls.
struct World {
    app: TestApp,
    owner: Session,
    merchant: String,
    other_owner: Session,
    shopper: Session,
    cashier: Session,
    manager: Session,
    admin: String,
    /// A code of `merchant` the matrix disables (the payments use `pay_code`).
    spare_code: String,
    /// An open-amount code of a merchant none of the callers belongs to: where they pay.
    pay_code: String,
    /// A paid order of `merchant`, refunded by the matrix.
    order_no: String,
    /// A pending invite of `merchant` to revoke.
    revoke_invite: String,
    /// Staff of `merchant` whose role the matrix changes, and one it removes.
    changed: Session,
    leaver: Session,
    /// A pending merchant the admin approves and disables, and a user whose status is set.
    review_merchant: String,
    spare_user: String,
    /// Codes of the joining merchant, one per user caller, for the redeem route.
    join_codes: Vec<(Who, String)>,
    /// Each user caller's own order (made by the matrix's `POST /api/payments`).
    orders: std::cell::RefCell<Vec<(Who, String)>>,
}

impl World {
    async fn build() -> World {
        let app = roles_app().await;
        let (owner, merchant) = approved_merchant(&app, "roles-owner").await;
        let (other_owner, _) = approved_merchant(&app, "roles-rival").await;
        let (join_owner, join_merchant) = approved_merchant(&app, "roles-join").await;
        let shopper = login(&app, "roles-shopper").await;
        let cashier = staff(&app, &owner, &merchant, "roles-cashier", "cashier").await;
        let manager = staff(&app, &owner, &merchant, "roles-manager", "manager").await;
        let changed = staff(&app, &owner, &merchant, "roles-changed", "cashier").await;
        let leaver = staff(&app, &owner, &merchant, "roles-leaver", "cashier").await;
        let admin = admin_token(&app).await;
        let spare_code = payment_code(&app, &owner, &merchant, None).await;
        let code = payment_code(&app, &owner, &merchant, None).await;
        let pay_code = payment_code(&app, &join_owner, &join_merchant, None).await;
        let order_no = paid_order(&app, &shopper, &code, 10_000).await;
        let (revoke_invite, _) = invite(&app, &owner, &merchant, "cashier").await;
        let spare = login(&app, "roles-spare").await;
        let res = call(
            &app,
            &spare,
            "POST",
            "/api/merchants",
            Some(crate::identity::merchant_body("review me")),
        )
        .await;
        assert_eq!(res.status(), 201);
        let review_merchant = res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let mut join_codes = Vec::new();
        for who in [
            Who::Shopper,
            Who::Cashier,
            Who::Manager,
            Who::Owner,
            Who::OtherOwner,
        ] {
            let (_, c) = invite(&app, &join_owner, &join_merchant, "cashier").await;
            join_codes.push((who, c));
        }
        World {
            app,
            owner,
            merchant,
            other_owner,
            shopper,
            cashier,
            manager,
            admin,
            spare_code,
            pay_code,
            order_no,
            revoke_invite,
            changed,
            leaver,
            review_merchant,
            spare_user: spare.user_id,
            join_codes,
            orders: Default::default(),
        }
    }

    fn session(&self, who: Who) -> Option<&Session> {
        match who {
            Who::Shopper => Some(&self.shopper),
            Who::Cashier => Some(&self.cashier),
            Who::Manager => Some(&self.manager),
            Who::Owner => Some(&self.owner),
            Who::OtherOwner => Some(&self.other_owner),
            Who::Anonymous | Who::Admin => None,
        }
    }

    /// The caller's own order, or the shopper's paid one.
    fn own_order(&self, who: Who) -> String {
        self.orders
            .borrow()
            .iter()
            .find(|(w, _)| *w == who)
            .map(|(_, o)| o.clone())
            .unwrap_or_else(|| self.order_no.clone())
    }

    /// The concrete path (with a valid query) and body of a route for `who`.
    async fn request(&self, who: Who, method: &str, pattern: &str) -> (String, Option<Value>) {
        let today = chrono::Utc::now()
            .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
            .date_naive();
        let yesterday = today.pred_opt().unwrap();
        let admin_first = |path: &'static str| async move {
            let list: Value = get_auth(&self.app, &self.admin, path)
                .await
                .json()
                .await
                .unwrap();
            list["items"][0]["id"]
                .as_str()
                .unwrap_or("unknown")
                .to_string()
        };
        let path = pattern
            .replace("{code_id}", &self.spare_code)
            .replace("{invite_id}", &self.revoke_invite)
            .replace("{order_no}", &self.own_order(who));
        let path = match pattern {
            "/api/merchants/{id}/staff/{user_id}" if method == "PATCH" => path
                .replace("{id}", &self.merchant)
                .replace("{user_id}", &self.changed.user_id),
            "/api/merchants/{id}/staff/{user_id}" => path
                .replace("{id}", &self.merchant)
                .replace("{user_id}", &self.leaver.user_id),
            "/api/merchants/{id}/orders/{order_no}/refund" => pattern
                .replace("{id}", &self.merchant)
                .replace("{order_no}", &self.order_no),
            "/api/admin/orders/{order_no}/refund" => pattern.replace("{order_no}", &self.order_no),
            "/api/payment-codes/{code_id}" | "/api/payment-codes/{code_id}/qr.png" => {
                pattern.replace("{code_id}", &self.pay_code)
            }
            p if p.starts_with("/api/admin/merchants/") => {
                path.replace("{id}", &self.review_merchant)
            }
            "/api/admin/users/{id}/status" => path.replace("{id}", &self.spare_user),
            "/api/admin/points/{user_id}/adjust" => {
                path.replace("{user_id}", &self.shopper.user_id)
            }
            "/api/admin/risk-rules/{id}" => {
                path.replace("{id}", &admin_first("/api/admin/risk-rules").await)
            }
            p if p.starts_with("/api/admin/notifications/") => {
                path.replace("{id}", &admin_first("/api/admin/notifications").await)
            }
            "/api/admin/reconciliation/runs/{id}" => {
                path.replace("{id}", &admin_first("/api/admin/reconciliation/runs").await)
            }
            "/api/admin/settlements" | "/api/admin/settlements.csv" => {
                format!("{path}?date={today}")
            }
            _ => path.replace("{id}", &self.merchant),
        };
        let phone = |n: u8| format!("1381234{:04}", n);
        let body = match (method, pattern) {
            ("POST", "/api/auth/wechat-login") => Some(json!({"code": "not-a-code"})),
            ("POST", "/api/auth/refresh") => Some(json!({"refresh_token": "not-a-token"})),
            ("POST", "/api/admin/login") => {
                Some(json!({"username": "nobody", "password": "wrong password"}))
            }
            ("PATCH", "/api/users/me") => Some(json!({"nickname": "matrix"})),
            ("PUT", "/api/users/me/phone") => Some(json!({"phone": phone(who as u8)})),
            ("POST", "/api/merchants") => Some(crate::identity::merchant_body("matrix shop")),
            ("POST", "/api/merchants/{id}/payment-codes") => Some(json!({"label": "matrix"})),
            ("PUT", "/api/admin/users/{id}/status") => Some(json!({"status": "active"})),
            ("PATCH", "/api/admin/risk-rules/{id}") => Some(json!({"enabled": true})),
            ("POST", "/api/admin/orders/{order_no}/refund")
            | ("POST", "/api/merchants/{id}/orders/{order_no}/refund") => {
                Some(json!({"amount_fen": 1, "reason": "matrix"}))
            }
            ("POST", "/api/admin/points/{user_id}/adjust") => {
                Some(json!({"points": 1, "reason": "matrix"}))
            }
            ("PUT", "/api/admin/points-rules") => {
                let rule: Value = get_auth(&self.app, &self.admin, "/api/admin/points-rules")
                    .await
                    .json()
                    .await
                    .unwrap();
                Some(json!({
                    "points_per_yuan": rule["points_per_yuan"], "min_order_fen": rule["min_order_fen"],
                    "max_order_fen": rule["max_order_fen"], "per_order_max_points": rule["per_order_max_points"],
                    "daily_cap": rule["daily_cap"], "lifetime_cap": rule["lifetime_cap"],
                    "expiry_days": rule["expiry_days"],
                }))
            }
            ("POST", "/api/admin/reconciliation/runs") => {
                Some(json!({"date": yesterday.to_string()}))
            }
            ("POST", "/api/merchants/{id}/staff/invites") => Some(json!({"role": "cashier"})),
            ("PATCH", "/api/merchants/{id}/staff/{user_id}") => Some(json!({"role": "manager"})),
            ("POST", "/api/staff/invites/redeem") => {
                let code = self
                    .join_codes
                    .iter()
                    .find(|(w, _)| *w == who)
                    .map(|(_, c)| c.clone())
                    .unwrap_or_else(|| "0000-0000-0000".into());
                Some(json!({ "code": code }))
            }
            ("POST", "/api/payments") => {
                Some(json!({"payment_code_id": self.pay_code, "amount_fen": 500}))
            }
            ("POST", "/api/points/deduct") => Some(json!({"points": 1, "reason": "matrix"})),
            ("POST", "/api/wechat/pay/notify" | "/api/wechat/refund/notify") => {
                Some(json!({"id": "forged"}))
            }
            _ => None,
        };
        (path, body)
    }

    async fn send(
        &self,
        who: Who,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let app = &self.app;
        match (who, self.session(who)) {
            (_, Some(s)) => call(app, s, method, path, body).await,
            (Who::Admin, _) => {
                let mut req = app
                    .client
                    .request(method.parse().unwrap(), app.url(path))
                    .bearer_auth(&self.admin);
                if let Some(b) = &body {
                    req = req.json(b);
                }
                req.send().await.unwrap()
            }
            _ => {
                let mut req = app.client.request(method.parse().unwrap(), app.url(path));
                if let Some(b) = &body {
                    req = req.json(b);
                }
                req.send().await.unwrap()
            }
        }
    }
}

#[actix_web::test]
async fn every_route_answers_each_role_as_the_matrix_says_and_refusals_change_nothing() {
    let w = World::build().await;
    let table = points_app::http::routes::routes();
    let missing: Vec<String> = table
        .iter()
        .filter(|r| matrix(r.method.as_str(), r.path).is_none())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the authorisation matrix (add one to `matrix`): {missing:?}"
    );
    // Signing out ends the session: last.
    let mut routes: Vec<(String, &'static str)> = table
        .iter()
        .map(|r| (r.method.as_str().to_string(), r.path))
        .collect();
    routes.sort_by_key(|(m, p)| (*m == "POST" && *p == "/api/auth/logout") as u8);

    let mut failures = Vec::new();
    for (method, pattern) in &routes {
        let row = matrix(method, pattern).unwrap();
        let mut public_status = None;
        for (who, expect) in EVERYONE.into_iter().zip(row) {
            let (path, body) = w.request(who, method, pattern).await;
            let before = match expect {
                Refused(_) => Some(fingerprint(&w.app).await),
                _ => None,
            };
            let res = w.send(who, method, &path, body).await;
            let status = res.status().as_u16();
            let text = res.text().await.unwrap_or_default();
            let code = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["code"].as_str().map(str::to_string))
                .unwrap_or_default();
            let what = format!("{who:?} {method} {path}: {status} {text:.200}");
            match expect {
                Allowed => {
                    if [401, 403, 404].contains(&status) || status >= 500 {
                        failures.push(format!("allowed but refused: {what}"));
                    }
                }
                AllowedUnknownId => {
                    if [401, 403].contains(&status) || code == "MERCHANT_NOT_FOUND" || status >= 500
                    {
                        failures.push(format!("allowed but refused: {what}"));
                    }
                }
                Refused(want) => {
                    if status != want {
                        failures.push(format!("expected {want}: {what}"));
                    }
                    if want == 404 && code != "MERCHANT_NOT_FOUND" {
                        failures.push(format!("a refusal is MERCHANT_NOT_FOUND: {what}"));
                    }
                    if let Some(before) = before {
                        let after = fingerprint(&w.app).await;
                        if after != before {
                            failures.push(format!(
                                "refused, yet changed: {what}\n{before:?}\n{after:?}"
                            ));
                        }
                    }
                }
                Public => {
                    if *public_status.get_or_insert(status) != status {
                        failures.push(format!(
                            "a public route answered callers differently: {what}"
                        ));
                    }
                }
            }
            if *method == "POST"
                && *pattern == "/api/payments"
                && let Ok(v) = serde_json::from_str::<Value>(&text)
                && let Some(no) = v["order_no"].as_str()
            {
                w.orders.borrow_mut().push((who, no.to_string()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // What the allowed calls did: the owner made one cashier a manager and removed another.
    // (Everyone signed out last: the owner signs in again.)
    let owner = login(&w.app, "roles-owner").await;
    assert_eq!(owner.user_id, w.owner.user_id);
    let staff: Value = get_auth(
        &w.app,
        &owner.access_token,
        &format!("/api/merchants/{}/staff", w.merchant),
    )
    .await
    .json()
    .await
    .unwrap();
    let role_of = |id: &str| {
        staff["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["user_id"] == id)
            .map(|m| m["role"].as_str().unwrap().to_string())
    };
    assert_eq!(role_of(&w.changed.user_id).as_deref(), Some("manager"));
    assert_eq!(role_of(&w.leaver.user_id), None);
    assert_eq!(role_of(&w.cashier.user_id).as_deref(), Some("cashier"));
}

/// The cashier and manager of a fresh merchant, and its owner: (owner, merchant, manager,
/// cashier).
async fn team(app: &TestApp, name: &str) -> (Session, String, Session, Session) {
    let (owner, merchant) = approved_merchant(app, &format!("{name}-owner")).await;
    let manager = staff(
        app,
        &owner,
        &merchant,
        &format!("{name}-manager"),
        "manager",
    )
    .await;
    let cashier = staff(
        app,
        &owner,
        &merchant,
        &format!("{name}-cashier"),
        "cashier",
    )
    .await;
    (owner, merchant, manager, cashier)
}

async fn refunds_of(app: &TestApp, order_no: &str) -> i64 {
    use points_app::storage::schema::refunds;
    let mut conn = app.state.app.db().conn().await.unwrap();
    let order = order_no.to_string();
    with_conn!(&mut conn, |c| {
        refunds::table
            .filter(refunds::order_no.eq(&order))
            .count()
            .get_result::<i64>(c)
            .await
    })
    .unwrap()
}

#[actix_web::test]
async fn an_invite_is_redeemed_once_and_the_role_works() {
    let app = roles_app().await;
    let (owner, merchant) = approved_merchant(&app, "inv-owner").await;
    let joiner = login(&app, "inv-joiner").await;
    let (invite_id, code) = invite(&app, &owner, &merchant, "manager").await;
    assert_eq!(code.len(), 14, "{code}");

    // Pending: listed without its code.
    let pending: Value = get_auth(
        &app,
        &owner.access_token,
        &format!("/api/merchants/{merchant}/staff/invites"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(pending["items"][0]["id"], invite_id.as_str());
    assert!(!pending.to_string().contains(&code));

    // Typed loosely: lower case, spaces instead of dashes.
    let typed = code.to_lowercase().replace('-', " ");
    let res = redeem(&app, &joiner, &typed).await;
    assert_eq!(res.status(), 200);
    let joined: Value = res.json().await.unwrap();
    assert_eq!(joined["merchant_id"], merchant.as_str());
    assert_eq!(joined["role"], "manager");
    assert_eq!(joined["merchant_name"], "inv-owner shop");

    // A retry of the same redeem answers the same; anyone else is refused.
    let res = redeem(&app, &joiner, &code).await;
    assert_eq!(res.status(), 200);
    let other = login(&app, "inv-other").await;
    let res = redeem(&app, &other, &code).await;
    assert_eq!(res.status(), 404);
    let used = error_body(res).await;
    assert_eq!(used["code"], "INVITE_INVALID");

    // The role works at once (the token does not list the merchant yet), and after a
    // refresh the token lists it.
    let res = get_auth(
        &app,
        &joiner.access_token,
        &format!("/api/merchants/{merchant}/orders"),
    )
    .await;
    assert_eq!(res.status(), 200);
    let joiner = refreshed(&app, &joiner).await;
    assert_eq!(
        memberships(&joiner.access_token),
        json!([[merchant, "manager"]])
    );
    assert_eq!(
        memberships(&refreshed(&app, &owner).await.access_token),
        json!([[merchant, "owner"]])
    );
    let res = call(
        &app,
        &joiner,
        "POST",
        &format!("/api/merchants/{merchant}/payment-codes"),
        Some(json!({"label": "by the manager"})),
    )
    .await;
    assert_eq!(res.status(), 201);
    let res = get_auth(
        &app,
        &joiner.access_token,
        &format!("/api/merchants/{merchant}/settlements"),
    )
    .await;
    assert_eq!(res.status(), 403);
    assert_eq!(error_body(res).await["code"], "FORBIDDEN");

    // /api/merchants/me lists the merchant with the role.
    let mine: Value = get_auth(&app, &joiner.access_token, "/api/merchants/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine["items"][0]["id"], merchant.as_str());
    assert_eq!(mine["items"][0]["role"], "manager");
    let mine: Value = get_auth(&app, &owner.access_token, "/api/merchants/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"][0]["role"], "owner");

    // The staff list, then no pending invites left.
    let list: Value = get_auth(
        &app,
        &owner.access_token,
        &format!("/api/merchants/{merchant}/staff"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(list["items"][0]["user_id"], joiner.user_id.as_str());
    assert_eq!(list["items"][0]["role"], "manager");
    let pending: Value = get_auth(
        &app,
        &owner.access_token,
        &format!("/api/merchants/{merchant}/staff/invites"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(pending["items"], json!([]));

    // The owner cannot join their own merchant; a member cannot join again; either way the
    // invite stays pending.
    let (_, second) = invite(&app, &owner, &merchant, "cashier").await;
    let res = redeem(&app, &owner, &second).await;
    assert_eq!(res.status(), 409);
    assert_eq!(error_body(res).await["code"], "ALREADY_STAFF");
    let res = redeem(&app, &joiner, &second).await;
    assert_eq!(res.status(), 409);
    assert_eq!(error_body(res).await["code"], "ALREADY_STAFF");
    let pending: Value = get_auth(
        &app,
        &owner.access_token,
        &format!("/api/merchants/{merchant}/staff/invites"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(pending["items"].as_array().unwrap().len(), 1);

    // An invite for the owner role is refused.
    let res = call(
        &app,
        &owner,
        "POST",
        &format!("/api/merchants/{merchant}/staff/invites"),
        Some(json!({"role": "owner"})),
    )
    .await;
    assert_eq!(res.status(), 422);

    // Every step is in the audit log, by the user who took it.
    let admin = admin_token(&app).await;
    let audit: Value = get_auth(&app, &admin, "/api/admin/audit-log?limit=100")
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<(String, String, String)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor_type"].as_str().unwrap().to_string(),
                e["actor_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        actions.contains(&("staff.invite".into(), "user".into(), owner.user_id.clone())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("staff.join".into(), "user".into(), joiner.user_id.clone())),
        "{actions:?}"
    );
    let join = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "staff.join")
        .unwrap();
    assert_eq!(join["target_type"], "merchant");
    assert_eq!(join["target_id"], merchant.as_str());
    assert_eq!(join["after"]["user_id"], joiner.user_id.as_str());
    assert_eq!(join["after"]["role"], "manager");
}

#[actix_web::test]
async fn expired_revoked_used_and_made_up_codes_are_refused_alike() {
    let app = roles_app().await;
    let (owner, merchant) = approved_merchant(&app, "bad-owner").await;
    let joiner = login(&app, "bad-joiner").await;

    let (revoked_id, revoked) = invite(&app, &owner, &merchant, "cashier").await;
    let res = call(
        &app,
        &owner,
        "DELETE",
        &format!("/api/merchants/{merchant}/staff/invites/{revoked_id}"),
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    // Revoking twice: nothing pending with that id.
    let res = call(
        &app,
        &owner,
        "DELETE",
        &format!("/api/merchants/{merchant}/staff/invites/{revoked_id}"),
        None,
    )
    .await;
    assert_eq!(res.status(), 404);
    assert_eq!(error_body(res).await["code"], "INVITE_NOT_FOUND");

    let (expired_id, expired) = invite(&app, &owner, &merchant, "cashier").await;
    {
        let mut conn = app.state.app.db().write_conn().await.unwrap();
        let past = chrono::Utc::now().naive_utc() - chrono::Duration::minutes(1);
        with_conn!(&mut conn, |c| {
            diesel::update(merchant_staff_invites::table.find(&expired_id))
                .set(merchant_staff_invites::expires_at.eq(past))
                .execute(c)
                .await
        })
        .unwrap();
    }

    let mut messages = Vec::new();
    for code in [
        revoked.as_str(),
        expired.as_str(),
        "ABCD-EFGH-JKMN",
        "not a code at all",
        "",
    ] {
        let res = redeem(&app, &joiner, code).await;
        assert_eq!(res.status(), 404, "{code}");
        let body = error_body(res).await;
        assert_eq!(body["code"], "INVITE_INVALID", "{code}");
        messages.push(body["message"].as_str().unwrap().to_string());
    }
    messages.dedup();
    assert_eq!(
        messages.len(),
        1,
        "one answer for every bad code: {messages:?}"
    );
    let list: Value = get_auth(
        &app,
        &owner.access_token,
        &format!("/api/merchants/{merchant}/staff"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(list["items"], json!([]));
}

#[actix_web::test]
async fn guessing_codes_is_rate_limited() {
    let app = roles_app().await;
    let guesser = login(&app, "guesser").await;
    let mut statuses = Vec::new();
    for i in 0..12 {
        let res = redeem(&app, &guesser, &format!("ABCD-EFGH-{i:04}")).await;
        statuses.push(res.status().as_u16());
    }
    assert_eq!(&statuses[..10], &[404; 10]);
    assert_eq!(statuses[11], 429);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(r#"rate_limited_total{limit="staff_redeem"}"#));
    assert!(!metrics.contains(r#"security_events_total{event="bad_invite_code"} 0"#));
}

#[actix_web::test]
async fn concurrent_redeems_of_one_code_admit_exactly_one() {
    let app = roles_app().await;
    let (owner, merchant) = approved_merchant(&app, "race-owner").await;
    let (_, code) = invite(&app, &owner, &merchant, "cashier").await;
    let mut racers = Vec::new();
    for i in 0..8 {
        racers.push(login(&app, &format!("racer-{i}")).await);
    }
    let answers =
        futures_util::future::join_all(racers.iter().map(|s| redeem(&app, s, &code))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 404).count(),
        7,
        "{statuses:?}"
    );
    let list: Value = get_auth(
        &app,
        &owner.access_token,
        &format!("/api/merchants/{merchant}/staff"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn a_removed_or_demoted_member_loses_the_power_to_change_at_once() {
    let app = roles_app().await;
    let (owner, merchant, manager, cashier) = team(&app, "fire").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "fire-shopper").await;
    let order_no = paid_order(&app, &shopper, &code, 10_000).await;
    assert!(
        memberships(&manager.access_token)
            .to_string()
            .contains("manager")
    );

    // A cashier cannot refund, whatever its token says.
    let res = crate::payments::refund(&app, &cashier, &merchant, &order_no, 100).await;
    assert_eq!(res.status(), 403);
    assert_eq!(error_body(res).await["code"], "FORBIDDEN");

    // Demoted: the manager's token still says manager, the database says cashier.
    let res = call(
        &app,
        &owner,
        "PATCH",
        &format!("/api/merchants/{merchant}/staff/{}", manager.user_id),
        Some(json!({"role": "cashier"})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = crate::payments::refund(&app, &manager, &merchant, &order_no, 100).await;
    assert_eq!(res.status(), 403);
    let res = call(
        &app,
        &manager,
        "POST",
        &format!("/api/merchants/{merchant}/payment-codes"),
        Some(json!({"label": "after demotion"})),
    )
    .await;
    assert_eq!(res.status(), 403);
    // Promoted back, then removed: the still-valid token cannot refund.
    let res = call(
        &app,
        &owner,
        "PATCH",
        &format!("/api/merchants/{merchant}/staff/{}", manager.user_id),
        Some(json!({"role": "manager"})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = call(
        &app,
        &owner,
        "DELETE",
        &format!("/api/merchants/{merchant}/staff/{}", manager.user_id),
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    let res = crate::payments::refund(&app, &manager, &merchant, &order_no, 100).await;
    assert_eq!(res.status(), 404);
    assert_eq!(error_body(res).await["code"], "MERCHANT_NOT_FOUND");
    assert_eq!(refunds_of(&app, &order_no).await, 0, "no refund was made");
    // Removing twice: no such member.
    let res = call(
        &app,
        &owner,
        "DELETE",
        &format!("/api/merchants/{merchant}/staff/{}", manager.user_id),
        None,
    )
    .await;
    assert_eq!(res.status(), 404);
    assert_eq!(error_body(res).await["code"], "STAFF_NOT_FOUND");

    // A refresh drops the merchant from the token, and reads end too.
    let manager = refreshed(&app, &manager).await;
    assert_eq!(memberships(&manager.access_token), Value::Null);
    let res = get_auth(
        &app,
        &manager.access_token,
        &format!("/api/merchants/{merchant}/orders"),
    )
    .await;
    assert_eq!(res.status(), 404);

    // The owner's refund still works.
    let res = crate::payments::refund(&app, &owner, &merchant, &order_no, 100).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    assert_eq!(refunds_of(&app, &order_no).await, 1);

    let admin = admin_token(&app).await;
    let audit: Value = get_auth(&app, &admin, "/api/admin/audit-log?limit=100")
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions.iter().filter(|a| **a == "staff.role").count(), 2);
    assert_eq!(actions.iter().filter(|a| **a == "staff.remove").count(), 1);
}

#[actix_web::test]
async fn a_cashier_sees_only_todays_payments() {
    let app = roles_app().await;
    let (owner, merchant, manager, cashier) = team(&app, "today").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "today-shopper").await;
    let old = paid_order(&app, &shopper, &code, 1_000).await;
    let new = paid_order(&app, &shopper, &code, 2_000).await;
    // The first order was made yesterday (China Standard Time).
    {
        let mut conn = app.state.app.db().write_conn().await.unwrap();
        let yesterday = chrono::Utc::now().naive_utc() - chrono::Duration::hours(26);
        with_conn!(&mut conn, |c| {
            diesel::update(payment_orders::table.filter(payment_orders::order_no.eq(&old)))
                .set((
                    payment_orders::created_at.eq(yesterday),
                    payment_orders::paid_at.eq(Some(yesterday)),
                ))
                .execute(c)
                .await
        })
        .unwrap();
    }
    let orders = |s: Session, query: &'static str| {
        let app = &app;
        let merchant = merchant.clone();
        async move {
            let res = get_auth(
                app,
                &s.access_token,
                &format!("/api/merchants/{merchant}/orders{query}"),
            )
            .await;
            assert_eq!(res.status(), 200);
            let page: Value = res.json().await.unwrap();
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["order_no"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let all = orders(owner.clone(), "").await;
    assert!(all.contains(&old) && all.contains(&new), "{all:?}");
    let all = orders(manager.clone(), "").await;
    assert!(all.contains(&old) && all.contains(&new), "{all:?}");
    assert_eq!(orders(cashier.clone(), "").await, vec![new.clone()]);
    assert_eq!(
        orders(cashier.clone(), "?limit=100").await,
        vec![new.clone()]
    );

    // Nothing else of the merchant for the cashier.
    for path in [
        format!("/api/merchants/{merchant}/stats"),
        format!("/api/merchants/{merchant}/payment-codes"),
        format!("/api/merchants/{merchant}/settlements"),
        format!("/api/merchants/{merchant}/staff"),
    ] {
        let res = get_auth(&app, &cashier.access_token, &path).await;
        assert_eq!(res.status(), 403, "{path}");
    }
    // And shopping as usual.
    let res = get_auth(&app, &cashier.access_token, "/api/points/balance").await;
    assert_eq!(res.status(), 200);
}
