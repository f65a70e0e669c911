//! The user's own profile and phone: validation, encryption at rest, masking, key rotation.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use points_app::storage::schema::users;
use points_app::with_conn;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_body};
use crate::identity::*;

async fn phone_columns(
    app: &TestApp,
    id: &str,
) -> (Option<String>, Option<String>, Option<String>) {
    let mut conn = app.state.app.db().conn().await.unwrap();
    with_conn!(&mut conn, |c| {
        users::table
            .find(id)
            .select((
                users::phone_cipher,
                users::phone_key_id,
                users::phone_blind_index,
            ))
            .first(c)
            .await
    })
    .unwrap()
}

#[actix_web::test]
async fn profile_reads_and_updates_with_validation() {
    let app = spawn_identity_app().await;
    let s = login(&app, "gina").await;
    let me: Value = get_auth(&app, &s.access_token, "/api/users/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], s.user_id.as_str());
    assert!(me["nickname"].is_null());

    let res = signed(
        &app,
        &s,
        "PATCH",
        "/api/users/me",
        Some(json!({"nickname": " Gina ", "avatar": "https://img.example/a.png"})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["nickname"], "Gina");
    assert_eq!(me["avatar"], "https://img.example/a.png");

    for bad in [
        json!({}),
        json!({"nickname": ""}),
        json!({"nickname": "x".repeat(33)}),
        json!({"nickname": "a\u{0007}b"}),
        json!({"avatar": "http://insecure/a.png"}),
        json!({"avatar": "javascript:alert(1)"}),
        json!({"nickname": 5}),
        json!({"nickname": "ok", "role": "admin"}),
    ] {
        let res = signed(&app, &s, "PATCH", "/api/users/me", Some(bad.clone())).await;
        assert_eq!(res.status(), 422, "{bad}");
        assert_eq!(error_body(res).await["code"], "VALIDATION_FAILED");
    }
    let me: Value = get_auth(&app, &s.access_token, "/api/users/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["nickname"], "Gina", "bad input changed nothing");
}

#[actix_web::test]
async fn the_phone_is_encrypted_masked_and_searchable_by_admins() {
    let app = spawn_identity_app().await;
    let s = login(&app, "hank").await;
    for bad in ["12345", "23812345678", "1381234567x", "+1 415 555 0100", ""] {
        let res = signed(
            &app,
            &s,
            "PUT",
            "/api/users/me/phone",
            Some(json!({"phone": bad})),
        )
        .await;
        assert_eq!(res.status(), 422, "{bad}");
        error_body(res).await;
    }
    assert_eq!(phone_columns(&app, &s.user_id).await.0, None);

    let res = signed(
        &app,
        &s,
        "PUT",
        "/api/users/me/phone",
        Some(json!({"phone": "+86 138-1234-5678"})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(body.contains("138****5678"), "{body}");
    assert!(!body.contains("13812345678"), "{body}");
    let (cipher, key_id, index) = phone_columns(&app, &s.user_id).await;
    let cipher = cipher.unwrap();
    assert!(!cipher.contains("12345678"));
    assert_eq!(key_id.as_deref(), Some("v1"));
    assert_eq!(index.unwrap().len(), 64);

    let admin = admin_token(&app).await;
    let found: Value = get_auth(&app, &admin, "/api/admin/users?phone=13812345678")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    assert_eq!(found["items"][0]["id"], s.user_id.as_str());
    assert_eq!(found["items"][0]["phone"], "138****5678");
    let boxed: Value = get_auth(&app, &admin, "/api/admin/users?q=138-1234-5678")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        boxed["items"][0]["id"],
        s.user_id.as_str(),
        "the admin console's search box"
    );
    let none: Value = get_auth(&app, &admin, "/api/admin/users?phone=13900000000")
        .await
        .json()
        .await
        .unwrap();
    assert!(none["items"].as_array().unwrap().is_empty());
}

#[actix_web::test]
async fn a_new_field_key_reads_old_rows_and_re_encrypts_them_lazily() {
    let app = spawn_identity_app().await;
    let s = login(&app, "ivy").await;
    let res = signed(
        &app,
        &s,
        "PUT",
        "/api/users/me/phone",
        Some(json!({"phone": "13812345678"})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let (old_cipher, old_key, old_index) = phone_columns(&app, &s.user_id).await;
    assert_eq!(old_key.as_deref(), Some("v1"));

    // Rotation: a second instance with v2 as the current key, v1 still readable.
    let rotated = spawn_other_instance(&app, |st| {
        st.field_keys = Some("v2:second-field-key-0123456789".to_string().into());
    })
    .await;
    let res = app
        .client
        .get(rotated.url("/api/users/me"))
        .bearer_auth(&s.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["phone"], "138****5678");
    let (new_cipher, new_key, new_index) = phone_columns(&app, &s.user_id).await;
    assert_eq!(new_key.as_deref(), Some("v2"), "re-encrypted on read");
    assert_ne!(new_cipher, old_cipher);
    assert_eq!(new_index, old_index, "the blind index survives rotation");

    let (_, admin) = {
        let res = app
            .client
            .post(rotated.url("/api/admin/login"))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        let v: Value = res.json().await.unwrap();
        ((), v["access_token"].as_str().unwrap().to_string())
    };
    let found: Value = app
        .client
        .get(rotated.url("/api/admin/users?phone=13812345678"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["items"][0]["id"], s.user_id.as_str());
}
