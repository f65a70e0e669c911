//! Sign-in: WeChat login, refresh-token rotation and reuse detection, admin login.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use points_app::storage::schema::{admin_users, user_login_ips, users};
use points_app::with_conn;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_body};
use crate::identity::*;

async fn count_users(app: &TestApp) -> i64 {
    let mut conn = app.state.app.db().conn().await.unwrap();
    with_conn!(&mut conn, |c| users::table.count().get_result(c).await).unwrap()
}

#[actix_web::test]
async fn login_creates_the_user_once_and_records_the_ip() {
    let app = spawn_identity_app().await;
    let res = post_json(
        &app,
        "/api/auth/wechat-login",
        json!({"code": code_for("alice")}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    for field in [
        "access_token",
        "refresh_token",
        "expires_in",
        "sign_key",
        "user",
    ] {
        assert!(!body[field].is_null(), "{field} missing: {body}");
    }
    assert_eq!(body["sign_key"].as_str().unwrap().len(), 64);
    assert_eq!(body["user"]["status"], "active");
    let again = login(&app, "alice").await;
    assert_eq!(again.user_id, body["user"]["id"].as_str().unwrap());
    assert_ne!(
        again.sign_key,
        body["sign_key"].as_str().unwrap(),
        "each session has its own key"
    );
    assert_eq!(count_users(&app).await, 1);
    login(&app, "bob").await;
    assert_eq!(count_users(&app).await, 2);

    let mut conn = app.state.app.db().conn().await.unwrap();
    let ips: Vec<String> = with_conn!(&mut conn, |c| {
        user_login_ips::table
            .filter(user_login_ips::user_id.eq(&again.user_id))
            .select(user_login_ips::ip)
            .load(c)
            .await
    })
    .unwrap();
    assert_eq!(ips, vec!["127.0.0.1".to_string()]);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("user_registrations_total 2"), "{metrics}");
}

#[actix_web::test]
async fn wechat_errors_map_to_clear_answers_and_create_nobody() {
    let app = spawn_identity_app().await;
    let cases = [
        ("bad-code", 400, "WECHAT_CODE_INVALID"),
        ("err-40226", 403, "WECHAT_HIGH_RISK"),
        ("err--1", 503, "WECHAT_BUSY"),
        ("err-45011", 429, "WECHAT_RATE_LIMITED"),
    ];
    for (code, status, expected) in cases {
        let res = post_json(&app, "/api/auth/wechat-login", json!({"code": code})).await;
        assert_eq!(res.status(), status, "{code}");
        assert_eq!(error_body(res).await["code"], expected, "{code}");
    }
    let code = code_for("carol");
    assert_eq!(
        post_json(&app, "/api/auth/wechat-login", json!({"code": code}))
            .await
            .status(),
        200
    );
    let res = post_json(&app, "/api/auth/wechat-login", json!({"code": code})).await;
    assert_eq!(res.status(), 400);
    assert_eq!(error_body(res).await["code"], "WECHAT_CODE_USED");

    for bad in [
        json!({"code": ""}),
        json!({"code": "x".repeat(200)}),
        json!({"code": 5}),
        json!({}),
    ] {
        let res = post_json(&app, "/api/auth/wechat-login", bad.clone()).await;
        assert_eq!(res.status(), 422, "{bad}");
        error_body(res).await;
    }
    let res = app
        .client
        .post(app.url("/api/auth/wechat-login"))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(count_users(&app).await, 1);
}

#[actix_web::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_session() {
    let app = spawn_identity_app().await;
    let s = login(&app, "dave").await;
    let res = post_json(
        &app,
        "/api/auth/refresh",
        json!({"refresh_token": s.refresh_token}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let next: Value = res.json().await.unwrap();
    let next_refresh = next["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(next_refresh, s.refresh_token);
    assert_eq!(
        next["sign_key"],
        s.sign_key.as_str(),
        "the session, and so its key, goes on"
    );
    let token = next["access_token"].as_str().unwrap();
    assert_eq!(get_auth(&app, token, "/api/users/me").await.status(), 200);

    // The old token again: theft. The whole family is revoked, including the newest token.
    let res = post_json(
        &app,
        "/api/auth/refresh",
        json!({"refresh_token": s.refresh_token}),
    )
    .await;
    assert_eq!(res.status(), 401);
    assert_eq!(error_body(res).await["code"], "REFRESH_TOKEN_REUSED");
    let res = post_json(
        &app,
        "/api/auth/refresh",
        json!({"refresh_token": next_refresh}),
    )
    .await;
    assert_eq!(res.status(), 401);
    assert_eq!(error_body(res).await["code"], "SESSION_REVOKED");
    // The session's access tokens stop working too.
    let res = get_auth(&app, token, "/api/users/me").await;
    assert_eq!(res.status(), 401);
    assert_eq!(error_body(res).await["code"], "SESSION_REVOKED");
    // Another session of the same user is unaffected.
    let other = login(&app, "dave").await;
    assert_eq!(
        get_auth(&app, &other.access_token, "/api/users/me")
            .await
            .status(),
        200
    );

    for bad in ["", "nope", &"x".repeat(300)] {
        let res = post_json(&app, "/api/auth/refresh", json!({"refresh_token": bad})).await;
        assert_eq!(res.status(), 401);
        assert_eq!(error_body(res).await["code"], "REFRESH_TOKEN_INVALID");
    }
}

#[actix_web::test]
async fn bad_and_expired_access_tokens_are_refused() {
    let app = spawn_identity_app().await;
    let s = login(&app, "erin").await;
    let res = app.get("/api/users/me").await;
    assert_eq!(res.status(), 401);
    assert_eq!(error_body(res).await["code"], "UNAUTHORIZED");
    // Change a whole character in the middle of the signature (the last one carries
    // padding bits a decoder may ignore).
    let mut chars: Vec<char> = s.access_token.chars().collect();
    let i = chars.len() - 10;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    for token in [tampered.as_str(), "abc.def.ghi", "garbage"] {
        let res = get_auth(&app, token, "/api/users/me").await;
        assert_eq!(res.status(), 401);
        assert_eq!(error_body(res).await["code"], "TOKEN_INVALID");
    }
    // A token signed with the right key but expired.
    use points_app::security::crypto::hmac_sha256;
    use secrecy::ExposeSecret;
    let key = hmac_sha256(
        app.state.settings.jwt_secret.expose_secret().as_bytes(),
        b"points-app/jwt/v1",
    );
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": s.user_id, "role": "user", "sid": "x", "iat": now - 3600, "exp": now - 1800, "jti": "j"});
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&key),
    )
    .unwrap();
    let res = get_auth(&app, &expired, "/api/users/me").await;
    assert_eq!(res.status(), 401);
    assert_eq!(error_body(res).await["code"], "TOKEN_EXPIRED");
}

#[actix_web::test]
async fn admin_login_checks_the_password_and_roles_do_not_mix() {
    let app = spawn_identity_app().await;
    for (user, pw) in [
        ("admin", "wrong-password"),
        ("nobody", ADMIN_PASSWORD),
        ("admin", ""),
    ] {
        let res = post_json(
            &app,
            "/api/admin/login",
            json!({"username": user, "password": pw}),
        )
        .await;
        assert_eq!(res.status(), 401);
        assert_eq!(error_body(res).await["code"], "INVALID_CREDENTIALS");
    }
    let admin = admin_token(&app).await;
    let res = get_auth(&app, &admin, "/api/users/me").await;
    assert_eq!(res.status(), 403);
    error_body(res).await;
    let user = login(&app, "frank").await;
    let res = get_auth(&app, &user.access_token, "/api/admin/users").await;
    assert_eq!(res.status(), 403);
    error_body(res).await;
    assert_eq!(
        get_auth(&app, &admin, "/api/admin/users").await.status(),
        200
    );
}

#[actix_web::test]
async fn without_a_configured_password_the_admin_gets_a_generated_one() {
    let app = spawn_identity_app_with(|s| s.admin_password = None).await;
    let mut conn = app.state.app.db().conn().await.unwrap();
    let hashes: Vec<String> = with_conn!(&mut conn, |c| {
        admin_users::table
            .select(admin_users::password_hash)
            .load(c)
            .await
    })
    .unwrap();
    assert_eq!(hashes.len(), 1);
    assert!(hashes[0].starts_with("$argon2id$"));
    for pw in ["", "admin", ADMIN_PASSWORD] {
        let res = post_json(
            &app,
            "/api/admin/login",
            json!({"username": "admin", "password": pw}),
        )
        .await;
        assert_eq!(res.status(), 401);
    }
    // A second start finds the admin and does not print or change anything.
    let again =
        points_app::security::passwords::bootstrap_admin(app.state.app.db(), &app.state.settings)
            .await
            .unwrap();
    assert!(again.is_none());
}
