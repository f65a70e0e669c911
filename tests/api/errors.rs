//! Bad input gets a clear 4xx with `{code, message, trace_id}` and changes nothing.

use crate::helpers::{error_body, spawn_app};

#[actix_web::test]
async fn unknown_route_is_404_json() {
    let app = spawn_app().await;
    let res = app.get("/api/nope").await;
    assert_eq!(res.status(), 404);
    assert_eq!(error_body(res).await["code"], "NOT_FOUND");
}

#[actix_web::test]
async fn wrong_method_is_405_json() {
    let app = spawn_app().await;
    let res = app.client.delete(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(error_body(res).await["code"], "METHOD_NOT_ALLOWED");
}

/// The bodies a fuzzer throws that JSON parsing must survive, on a plain JSON route (the
/// admin's adjustment) and a signed one (spending points): nesting far past the parser's
/// depth limit, bytes that are not UTF-8, integers beyond i64, and bodies over the 64 KiB
/// limit. Each is a 4xx with the JSON error body, and no balance moves.
#[actix_web::test]
async fn hostile_bodies_are_json_4xx_and_change_nothing() {
    use crate::identity::{admin_token, login, nonce, signature_headers, spawn_identity_app};
    use crate::payments::balance;

    let app = spawn_identity_app().await;
    let admin = admin_token(&app).await;
    let shopper = login(&app, "hostile").await;
    let adjust = format!("/api/admin/points/{}/adjust", shopper.user_id);
    let res = app
        .client
        .post(app.url(&adjust))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"points": 100, "reason": "start"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let deep = format!(
        "{{\"points\": {}1{}, \"reason\": \"x\"}}",
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    let deep_object = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    let mut not_utf8 = br#"{"points": 5, "reason": ""#.to_vec();
    not_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]);
    not_utf8.extend_from_slice(br#""}"#);
    let bodies: Vec<(&str, Vec<u8>, &[u16])> = vec![
        ("deep array", deep.into_bytes(), &[400, 422]),
        ("deep object", deep_object.into_bytes(), &[400, 422]),
        ("not UTF-8", not_utf8, &[400]),
        (
            "beyond u64",
            br#"{"points": 123456789012345678901234567890, "reason": "x"}"#.to_vec(),
            &[400, 422],
        ),
        (
            "below i64",
            br#"{"points": -9223372036854775809, "reason": "x"}"#.to_vec(),
            &[400, 422],
        ),
        (
            "i64::MIN",
            br#"{"points": -9223372036854775808, "reason": "x"}"#.to_vec(),
            &[422],
        ),
        (
            "i64::MAX",
            br#"{"points": 9223372036854775807, "reason": "x"}"#.to_vec(),
            &[422],
        ),
        (
            "1e400",
            br#"{"points": 1e400, "reason": "x"}"#.to_vec(),
            &[400, 422],
        ),
        (
            "over 64 KiB",
            format!(
                "{{\"points\": 5, \"reason\": \"{}\"}}",
                "x".repeat(65 * 1024)
            )
            .into_bytes(),
            &[413],
        ),
    ];
    for (what, body, statuses) in &bodies {
        let res = app
            .client
            .post(app.url(&adjust))
            .bearer_auth(&admin)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let err = error_body(res).await;
        assert!(statuses.contains(&status), "adjust, {what}: {status} {err}");

        let path = "/api/points/deduct";
        let now = chrono::Utc::now().timestamp();
        let mut req = app
            .client
            .post(app.url(path))
            .bearer_auth(&shopper.access_token)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", format!("hostile-{}", nonce()))
            .body(body.clone());
        for (k, v) in signature_headers(&shopper.sign_key, "POST", path, body, now, &nonce()) {
            req = req.header(k, v);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let err = error_body(res).await;
        assert!(statuses.contains(&status), "deduct, {what}: {status} {err}");
    }
    assert_eq!(balance(&app, &shopper).await, 100);

    // The one body field that takes any JSON: a risk rule's condition, nested past the
    // parser's limit and just under it.
    let rules: serde_json::Value = app
        .client
        .get(app.url("/api/admin/risk-rules"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = rules["items"][0]["id"].to_string();
    let id = id.trim_matches('"');
    for depth in [5_000, 120] {
        let condition = format!("{}{}", "{\"all\":[".repeat(depth), "]}".repeat(depth));
        let res = app
            .client
            .patch(app.url(&format!("/api/admin/risk-rules/{id}")))
            .bearer_auth(&admin)
            .header("Content-Type", "application/json")
            .body(format!("{{\"condition\": {condition}}}"))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let err = error_body(res).await;
        assert!(
            [400, 422].contains(&status),
            "condition {depth} deep: {status} {err}"
        );
    }
}
