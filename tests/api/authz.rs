//! Every protected route, tried as anonymous, as another user, as another merchant and as a
//! disabled user: refused, and nothing changed.

use serde_json::{Value, json};

use crate::helpers::{TestApp, error_body};
use crate::identity::*;

/// (method, path, body) of every user- or merchant-protected route, aimed at merchant `m`.
fn user_routes(m: &str, code: &str) -> Vec<(&'static str, String, Option<Value>)> {
    vec![
        ("GET", "/api/users/me".into(), None),
        (
            "PATCH",
            "/api/users/me".into(),
            Some(json!({"nickname": "pwned"})),
        ),
        (
            "PUT",
            "/api/users/me/phone".into(),
            Some(json!({"phone": "13700000000"})),
        ),
        (
            "POST",
            "/api/merchants".into(),
            Some(merchant_body("Intruder")),
        ),
        ("GET", "/api/merchants/me".into(), None),
        (
            "POST",
            format!("/api/merchants/{m}/payment-codes"),
            Some(json!({"label": "pwned"})),
        ),
        ("GET", format!("/api/merchants/{m}/payment-codes"), None),
        (
            "POST",
            format!("/api/merchants/{m}/payment-codes/{code}/disable"),
            None,
        ),
    ]
}

fn admin_routes(m: &str, u: &str) -> Vec<(&'static str, String, Option<Value>)> {
    vec![
        ("GET", "/api/admin/merchants".into(), None),
        ("POST", format!("/api/admin/merchants/{m}/approve"), None),
        ("POST", format!("/api/admin/merchants/{m}/disable"), None),
        ("GET", "/api/admin/users".into(), None),
        (
            "PUT",
            format!("/api/admin/users/{u}/status"),
            Some(json!({"status": "disabled"})),
        ),
        ("GET", "/api/admin/audit-log".into(), None),
    ]
}

async fn anonymous(
    app: &TestApp,
    method: &str,
    path: &str,
    body: &Option<Value>,
) -> reqwest::Response {
    let mut req = app.client.request(method.parse().unwrap(), app.url(path));
    if let Some(b) = body {
        req = req.json(b);
    }
    req.send().await.unwrap()
}

/// What must be unchanged afterwards.
async fn snapshot(app: &TestApp, owner: &Session, m: &str, code: &str) -> (Value, Value, Value) {
    let me: Value = get_auth(app, &owner.access_token, "/api/users/me")
        .await
        .json()
        .await
        .unwrap();
    let codes: Value = get_auth(
        app,
        &owner.access_token,
        &format!("/api/merchants/{m}/payment-codes"),
    )
    .await
    .json()
    .await
    .unwrap();
    let seen: Value = app
        .get(&format!("/api/payment-codes/{code}"))
        .await
        .json()
        .await
        .unwrap();
    (me, codes["items"].clone(), seen)
}

#[actix_web::test]
async fn every_route_refuses_the_wrong_caller_and_changes_nothing() {
    let app = spawn_identity_app().await;
    let (owner, m) = approved_merchant(&app, "tara").await;
    let res = signed(
        &app,
        &owner,
        "POST",
        &format!("/api/merchants/{m}/payment-codes"),
        Some(json!({"label": "Main"})),
    )
    .await;
    let code = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let stranger = login(&app, "uma").await;
    let (rival, rival_m) = approved_merchant(&app, "vic").await;
    let (banned, banned_m) = approved_merchant(&app, "will").await;
    let admin = admin_token(&app).await;
    let res = app
        .client
        .put(app.url(&format!("/api/admin/users/{}/status", banned.user_id)))
        .bearer_auth(&admin)
        .json(&json!({"status": "disabled"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let before = snapshot(&app, &owner, &m, &code).await;
    let audit_before: Value = get_auth(&app, &admin, "/api/admin/audit-log")
        .await
        .json()
        .await
        .unwrap();

    for (method, path, body) in user_routes(&m, &code)
        .iter()
        .chain(admin_routes(&m, &owner.user_id).iter())
    {
        let res = anonymous(&app, method, path, body).await;
        assert_eq!(res.status(), 401, "anonymous {method} {path}");
        error_body(res).await;
    }

    // Another user and another merchant: the merchant's routes answer as if it did not exist.
    for who in [&stranger, &rival] {
        for (method, path, body) in user_routes(&m, &code).into_iter().skip(5) {
            let res = signed(&app, who, method, &path, body).await;
            assert_eq!(res.status(), 404, "{} {method} {path}", who.user_id);
            assert_eq!(error_body(res).await["code"], "MERCHANT_NOT_FOUND");
        }
        for (method, path, body) in admin_routes(&m, &owner.user_id) {
            let res = signed(&app, who, method, &path, body).await;
            assert_eq!(res.status(), 403, "{method} {path}");
            error_body(res).await;
        }
    }
    // A merchant cannot reach another's code through its own merchant id.
    let res = signed(
        &app,
        &rival,
        "POST",
        &format!("/api/merchants/{rival_m}/payment-codes/{code}/disable"),
        None,
    )
    .await;
    assert_eq!(res.status(), 404);
    assert_eq!(error_body(res).await["code"], "PAYMENT_CODE_NOT_FOUND");

    // A disabled user: refused everywhere, their own merchant included.
    for (method, path, body) in user_routes(&banned_m, &code) {
        let res = signed(&app, &banned, method, &path, body).await;
        assert_eq!(res.status(), 403, "disabled {method} {path}");
        assert_eq!(error_body(res).await["code"], "USER_DISABLED");
    }

    assert_eq!(
        snapshot(&app, &owner, &m, &code).await,
        before,
        "nothing changed"
    );
    let audit_after: Value = get_auth(&app, &admin, "/api/admin/audit-log")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit_after, audit_before);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        !metrics.contains(r#"security_events_total{event="forbidden"} 0"#),
        "{metrics}"
    );
}
