//! Request signatures: the shared vectors, and forged, altered, expired and replayed requests
//! refused with nothing changed.

use serde_json::{Value, json};

use crate::helpers::{TestApp, error_body};
use crate::identity::*;

#[test]
fn the_shared_vectors_match() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/request-signature.json"
    ))
    .unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(cases.len() >= 4);
    for case in cases {
        let s = |k: &str| case[k].as_str().unwrap().to_string();
        let canonical = points_app::security::signing::canonical_string(
            &s("method"),
            &s("path_with_query"),
            &s("timestamp"),
            &s("nonce"),
            s("body").as_bytes(),
        );
        assert_eq!(canonical, s("canonical"));
        assert_eq!(
            points_app::security::signing::sign(&s("sign_key"), &canonical),
            s("expected")
        );
    }
}

/// The mini-program's own vector file (its tests read it too): the two sides agree.
#[test]
fn the_mini_program_vectors_match() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/miniprogram/test/vectors/request-signature.json"
    );
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let doc: Value = serde_json::from_str(&text).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let s = |k: &str| match &case[k] {
            Value::String(v) => v.clone(),
            other => other.to_string(),
        };
        let canonical = points_app::security::signing::canonical_string(
            &s("method"),
            &s("path_with_query"),
            &s("timestamp"),
            &s("nonce"),
            s("body").as_bytes(),
        );
        assert_eq!(canonical, s("canonical"), "{}", s("name"));
        assert_eq!(
            points_app::security::signing::sign(&s("sign_key"), &canonical),
            s("expected_signature"),
            "{}",
            s("name")
        );
    }
}

async fn nickname(app: &TestApp, s: &Session) -> Value {
    let me: Value = get_auth(app, &s.access_token, "/api/users/me")
        .await
        .json()
        .await
        .unwrap();
    me["nickname"].clone()
}

async fn send_with(
    app: &TestApp,
    s: &Session,
    headers: Vec<(&'static str, String)>,
    body: &Value,
) -> reqwest::Response {
    let mut req = app
        .client
        .patch(app.url("/api/users/me"))
        .bearer_auth(&s.access_token)
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(body).unwrap());
    for (k, v) in headers {
        req = req.header(k, v);
    }
    req.send().await.unwrap()
}

#[actix_web::test]
async fn forged_altered_and_expired_signatures_are_refused() {
    let app = spawn_identity_app().await;
    let s = login(&app, "jack").await;
    let other = login(&app, "kate").await;
    let body = json!({"nickname": "Mallory"});
    let bytes = serde_json::to_vec(&body).unwrap();
    let now = chrono::Utc::now().timestamp();
    let path = "/api/users/me";

    type Headers = Vec<(&'static str, String)>;
    let cases: Vec<(&str, Headers, &str)> = vec![
        ("no headers", vec![], "SIGNATURE_INVALID"),
        (
            "another session's key",
            signature_headers(&other.sign_key, "PATCH", path, &bytes, now, &nonce()),
            "SIGNATURE_INVALID",
        ),
        (
            "another body",
            signature_headers(
                &s.sign_key,
                "PATCH",
                path,
                b"{\"nickname\":\"x\"}",
                now,
                &nonce(),
            ),
            "SIGNATURE_INVALID",
        ),
        (
            "another path",
            signature_headers(
                &s.sign_key,
                "PATCH",
                "/api/users/me?x=1",
                &bytes,
                now,
                &nonce(),
            ),
            "SIGNATURE_INVALID",
        ),
        (
            "another method",
            signature_headers(&s.sign_key, "PUT", path, &bytes, now, &nonce()),
            "SIGNATURE_INVALID",
        ),
        (
            "short nonce",
            signature_headers(&s.sign_key, "PATCH", path, &bytes, now, "short"),
            "SIGNATURE_INVALID",
        ),
        (
            "too old",
            signature_headers(&s.sign_key, "PATCH", path, &bytes, now - 310, &nonce()),
            "SIGNATURE_EXPIRED",
        ),
        (
            "from the future",
            signature_headers(&s.sign_key, "PATCH", path, &bytes, now + 310, &nonce()),
            "SIGNATURE_EXPIRED",
        ),
        // The skew is computed with checked arithmetic: no wrap into the window.
        (
            "the far end of the past",
            signature_headers(&s.sign_key, "PATCH", path, &bytes, i64::MIN, &nonce()),
            "SIGNATURE_EXPIRED",
        ),
        (
            "now - 2^63",
            signature_headers(
                &s.sign_key,
                "PATCH",
                path,
                &bytes,
                now.wrapping_sub(i64::MAX).wrapping_sub(1),
                &nonce(),
            ),
            "SIGNATURE_EXPIRED",
        ),
        (
            "the far end of the future",
            signature_headers(&s.sign_key, "PATCH", path, &bytes, i64::MAX, &nonce()),
            "SIGNATURE_EXPIRED",
        ),
    ];
    for (what, headers, code) in cases {
        let res = send_with(&app, &s, headers, &body).await;
        assert_eq!(res.status(), 401, "{what}");
        assert_eq!(error_body(res).await["code"], code, "{what}");
    }
    let mut garbled = signature_headers(&s.sign_key, "PATCH", path, &bytes, now, &nonce());
    garbled[2].1 = "zz".into();
    assert_eq!(send_with(&app, &s, garbled, &body).await.status(), 401);
    assert!(nickname(&app, &s).await.is_null(), "nothing changed");

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        !metrics.contains(r#"security_events_total{event="bad_signature"} 0"#),
        "{metrics}"
    );
    assert!(
        !metrics.contains(r#"security_events_total{event="expired_signature"} 0"#),
        "{metrics}"
    );
}

#[actix_web::test]
async fn a_replayed_request_is_refused_here_and_on_another_instance() {
    let app = spawn_identity_app().await;
    let s = login(&app, "liam").await;
    let req = signed_request(
        &app,
        &s,
        "PATCH",
        "/api/users/me",
        Some(&json!({"nickname": "Liam"})),
    );
    let replay = req.try_clone().unwrap();
    assert_eq!(req.send().await.unwrap().status(), 200);
    let res = replay.try_clone().unwrap().send().await.unwrap();
    assert_eq!(res.status(), 409);
    assert_eq!(error_body(res).await["code"], "REPLAYED_REQUEST");

    if app.state.redis.is_some() {
        // Same request, other instance: the nonce store is shared through Redis.
        let other = spawn_other_instance(&app, |_| {}).await;
        let built = replay.build().unwrap();
        let mut to_other = app
            .client
            .request(built.method().clone(), other.url("/api/users/me"))
            .body(built.body().unwrap().as_bytes().unwrap().to_vec());
        for (k, v) in built.headers() {
            to_other = to_other.header(k, v);
        }
        let res = to_other.send().await.unwrap();
        assert_eq!(res.status(), 409);
        assert_eq!(error_body(res).await["code"], "REPLAYED_REQUEST");
    }
}

#[actix_web::test]
async fn signed_calls_need_json_and_a_bounded_body() {
    let app = spawn_identity_app().await;
    let s = login(&app, "mia").await;
    let body = b"nickname=x".to_vec();
    let now = chrono::Utc::now().timestamp();
    let mut req = app
        .client
        .patch(app.url("/api/users/me"))
        .bearer_auth(&s.access_token)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.clone());
    for (k, v) in signature_headers(&s.sign_key, "PATCH", "/api/users/me", &body, now, &nonce()) {
        req = req.header(k, v);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 415);
    error_body(res).await;

    let big = json!({"nickname": "x".repeat(70 * 1024)});
    let res = signed(&app, &s, "PATCH", "/api/users/me", Some(big)).await;
    assert_eq!(res.status(), 413);
    error_body(res).await;

    let res = signed_request(&app, &s, "PATCH", "/api/users/me", None)
        .header("Content-Type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "an empty body is malformed JSON");
    error_body(res).await;
}
