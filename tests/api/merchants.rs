//! The merchant journey: register, approval, payment codes, the shopper's view and the QR.

use serde_json::{Value, json};

use crate::helpers::error_body;
use crate::identity::*;

#[actix_web::test]
async fn register_approve_create_a_code_and_decode_its_qr() {
    let app = spawn_identity_app().await;
    let s = login(&app, "nora").await;
    let res = signed(
        &app,
        &s,
        "POST",
        "/api/merchants",
        Some(merchant_body("Nora Noodles")),
    )
    .await;
    assert_eq!(res.status(), 201);
    let m: Value = res.json().await.unwrap();
    assert_eq!(m["status"], "pending");
    assert_eq!(m["contact_phone"], "139****5678");
    let id = m["id"].as_str().unwrap().to_string();
    let codes_path = format!("/api/merchants/{id}/payment-codes");

    // Pending: no payment codes yet.
    let res = signed(
        &app,
        &s,
        "POST",
        &codes_path,
        Some(json!({"label": "Counter"})),
    )
    .await;
    assert_eq!(res.status(), 403);
    assert_eq!(error_body(res).await["code"], "MERCHANT_NOT_APPROVED");

    let admin = admin_token(&app).await;
    let res = app
        .client
        .post(app.url(&format!("/api/admin/merchants/{id}/approve")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mine: Value = get_auth(&app, &s.access_token, "/api/merchants/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"][0]["status"], "approved");

    // Approved: takes effect on the next request, without a new login.
    let res = signed(
        &app,
        &s,
        "POST",
        &codes_path,
        Some(json!({"label": "Counter", "amount_fen": 1500})),
    )
    .await;
    assert_eq!(res.status(), 201);
    let code: Value = res.json().await.unwrap();
    let code_id = code["id"].as_str().unwrap().to_string();
    assert_eq!(code["amount_fen"], 1500);
    assert_eq!(code["path"], format!("pages/pay/index?code={code_id}"));
    let res = signed(
        &app,
        &s,
        "POST",
        &codes_path,
        Some(json!({"label": "Open amount"})),
    )
    .await;
    assert_eq!(res.status(), 201);

    for bad in [
        json!({"label": ""}),
        json!({"label": "x".repeat(33)}),
        json!({"label": "a", "amount_fen": 0}),
        json!({"label": "a", "amount_fen": -100}),
        json!({"label": "a", "amount_fen": 100_000_001}),
        json!({"label": "a", "amount_fen": 1.5}),
        json!({"label": "a", "amount_fen": "100"}),
    ] {
        let res = signed(&app, &s, "POST", &codes_path, Some(bad.clone())).await;
        assert_eq!(res.status(), 422, "{bad}");
        error_body(res).await;
    }
    let list: Value = get_auth(&app, &s.access_token, &codes_path)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        2,
        "bad input created nothing"
    );
    let page: Value = get_auth(&app, &s.access_token, &format!("{codes_path}?limit=1"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = get_auth(
        &app,
        &s.access_token,
        &format!("{codes_path}?limit=1&cursor={cursor}"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());

    // What the shopper sees, without signing in.
    let seen: Value = app
        .get(&format!("/api/payment-codes/{code_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["merchant_name"], "Nora Noodles");
    assert_eq!(seen["amount_fen"], 1500);
    assert_eq!(seen["active"], true);

    let res = app
        .get(&format!("/api/payment-codes/{code_id}/qr.png"))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    let png = res.bytes().await.unwrap();
    let img = image::load_from_memory(&png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, content) = grids[0].decode().unwrap();
    // The link of the embedded default APP_QR_BASE_URL (tests/api/qr.rs sets its own).
    assert_eq!(content, format!("https://pay.example.com/q?code={code_id}"));

    // Disabling a code: the shopper sees it inactive.
    let res = signed(
        &app,
        &s,
        "POST",
        &format!("{codes_path}/{code_id}/disable"),
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    let seen: Value = app
        .get(&format!("/api/payment-codes/{code_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["active"], false);
    let res = signed(
        &app,
        &s,
        "POST",
        &format!("{codes_path}/no-such-code/disable"),
        None,
    )
    .await;
    assert_eq!(res.status(), 404);
    assert_eq!(error_body(res).await["code"], "PAYMENT_CODE_NOT_FOUND");

    for missing in ["/api/payment-codes/nope", "/api/payment-codes/nope/qr.png"] {
        let res = app.get(missing).await;
        assert_eq!(res.status(), 404);
        assert_eq!(error_body(res).await["code"], "PAYMENT_CODE_NOT_FOUND");
    }
}

#[actix_web::test]
async fn registration_is_validated_and_bad_input_creates_nothing() {
    let app = spawn_identity_app().await;
    let s = login(&app, "olga").await;
    let mut cases = Vec::new();
    for (field, value) in [
        ("merchant_name", json!("")),
        ("merchant_name", json!("x".repeat(65))),
        ("contact_name", json!("  ")),
        ("contact_phone", json!("12345")),
        ("business_license", json!("ABC")),
        ("business_license", json!("91110000MA01ABCD2O")),
        ("address", json!("")),
        ("address", json!(42)),
    ] {
        let mut body = merchant_body("Olga Optics");
        body[field] = value;
        cases.push(body);
    }
    let mut missing = merchant_body("Olga Optics");
    missing.as_object_mut().unwrap().remove("address");
    cases.push(missing);
    for body in cases {
        let res = signed(&app, &s, "POST", "/api/merchants", Some(body.clone())).await;
        assert_eq!(res.status(), 422, "{body}");
        assert_eq!(error_body(res).await["code"], "VALIDATION_FAILED");
    }
    let mine: Value = get_auth(&app, &s.access_token, "/api/merchants/me")
        .await
        .json()
        .await
        .unwrap();
    assert!(mine["items"].as_array().unwrap().is_empty());
}

#[actix_web::test]
async fn a_disabled_merchant_stops_acting_at_once() {
    let app = spawn_identity_app().await;
    let (s, id) = approved_merchant(&app, "paul").await;
    let codes_path = format!("/api/merchants/{id}/payment-codes");
    let res = signed(
        &app,
        &s,
        "POST",
        &codes_path,
        Some(json!({"label": "Till"})),
    )
    .await;
    assert_eq!(res.status(), 201);
    let code_id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let admin = admin_token(&app).await;
    let res = app
        .client
        .post(app.url(&format!("/api/admin/merchants/{id}/disable")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = signed(
        &app,
        &s,
        "POST",
        &codes_path,
        Some(json!({"label": "Till 2"})),
    )
    .await;
    assert_eq!(res.status(), 403);
    assert_eq!(error_body(res).await["code"], "MERCHANT_NOT_APPROVED");
    // The merchant role is an approved merchant's: its takings and orders are closed too.
    for path in [
        format!("/api/merchants/{id}/stats"),
        format!("/api/merchants/{id}/orders"),
    ] {
        let res = get_auth(&app, &s.access_token, &path).await;
        assert_eq!(res.status(), 403, "{path}");
        assert_eq!(error_body(res).await["code"], "MERCHANT_NOT_APPROVED");
    }
    let seen: Value = app
        .get(&format!("/api/payment-codes/{code_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["active"], false);
}

/// The per-user cap holds under concurrency: registrations racing past it get exactly the
/// cap through (the count and the insert are one transaction holding the owner's lock).
#[actix_web::test]
async fn concurrent_registrations_stop_exactly_at_the_cap() {
    const CAP: usize = 20;
    const TRIES: usize = 30;
    let app = spawn_identity_app().await;
    let s = login(&app, "quinn").await;
    let requests = (0..TRIES).map(|i| {
        signed(
            &app,
            &s,
            "POST",
            "/api/merchants",
            Some(merchant_body(&format!("Quinn Shop {i}"))),
        )
    });
    let responses = futures_util::future::join_all(requests).await;
    let mut created = 0;
    let mut refused = 0;
    for res in responses {
        match res.status().as_u16() {
            201 => created += 1,
            409 => {
                assert_eq!(error_body(res).await["code"], "TOO_MANY_MERCHANTS");
                refused += 1;
            }
            other => panic!("unexpected {other}: {:?}", res.text().await),
        }
    }
    assert_eq!((created, refused), (CAP, TRIES - CAP));
    let mine: Value = get_auth(&app, &s.access_token, "/api/merchants/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), CAP);
}
