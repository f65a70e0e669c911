//! Admin routes: merchant review, user search and status, and the audit log they write.

use serde_json::{Value, json};

use crate::helpers::error_body;
use crate::identity::*;

#[actix_web::test]
async fn merchant_review_is_audited_with_the_trace_id() {
    let app = spawn_identity_app().await;
    let s = login(&app, "quinn").await;
    let res = signed(
        &app,
        &s,
        "POST",
        "/api/merchants",
        Some(merchant_body("Quinn Quilts")),
    )
    .await;
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let admin = admin_token(&app).await;

    let pending: Value = get_auth(&app, &admin, "/api/admin/merchants?status=pending")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pending["items"].as_array().unwrap().len(), 1);
    let approved: Value = get_auth(&app, &admin, "/api/admin/merchants?status=approved")
        .await
        .json()
        .await
        .unwrap();
    assert!(approved["items"].as_array().unwrap().is_empty());
    let res = get_auth(&app, &admin, "/api/admin/merchants?status=weird").await;
    assert_eq!(res.status(), 422);
    error_body(res).await;
    // A bad page size is a bad query on every listing.
    let res = get_auth(&app, &admin, "/api/admin/merchants?limit=0").await;
    assert_eq!(res.status(), 400);
    assert_eq!(error_body(res).await["code"], "INVALID_QUERY");

    let res = app
        .client
        .post(app.url(&format!("/api/admin/merchants/{id}/approve")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let trace = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let res = app
        .client
        .post(app.url(&format!("/api/admin/merchants/{id}/approve")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    assert_eq!(error_body(res).await["code"], "INVALID_MERCHANT_STATUS");
    let res = app
        .client
        .post(app.url("/api/admin/merchants/nope/approve"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    error_body(res).await;

    let log: Value = get_auth(&app, &admin, "/api/admin/audit-log")
        .await
        .json()
        .await
        .unwrap();
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "refused actions write nothing: {log}");
    let entry = &items[0];
    assert_eq!(entry["action"], "merchant.approve");
    assert_eq!(entry["target_type"], "merchant");
    assert_eq!(entry["target_id"], id.as_str());
    assert_eq!(entry["before"], json!({"status": "pending"}));
    assert_eq!(entry["after"], json!({"status": "approved"}));
    assert_eq!(entry["trace_id"], trace.as_str());
    assert_eq!(entry["actor_type"], "admin");
    assert_eq!(entry["ip"], "127.0.0.1");
}

#[actix_web::test]
async fn user_search_and_status_changes() {
    let app = spawn_identity_app().await;
    let admin = admin_token(&app).await;
    let mut sessions = Vec::new();
    for name in ["rita", "rob", "sam"] {
        let s = login(&app, name).await;
        let nick = format!("{name}_nick");
        assert_eq!(
            signed(
                &app,
                &s,
                "PATCH",
                "/api/users/me",
                Some(json!({"nickname": nick}))
            )
            .await
            .status(),
            200
        );
        sessions.push(s);
    }
    let found: Value = get_auth(&app, &admin, "/api/admin/users?nickname=r")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["items"].as_array().unwrap().len(), 2);
    // `_` and `%` are literal in a search, not wildcards.
    let found: Value = get_auth(&app, &admin, "/api/admin/users?nickname=%25")
        .await
        .json()
        .await
        .unwrap();
    assert!(found["items"].as_array().unwrap().is_empty());
    let page: Value = get_auth(&app, &admin, "/api/admin/users?limit=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = get_auth(
        &app,
        &admin,
        &format!("/api/admin/users?limit=2&cursor={cursor}"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    let res = get_auth(&app, &admin, "/api/admin/users?phone=123").await;
    assert_eq!(res.status(), 422);
    error_body(res).await;

    let target = &sessions[0];
    let path = format!("/api/admin/users/{}/status", target.user_id);
    for bad in [json!({"status": "banned"}), json!({"status": 1}), json!({})] {
        let res = app
            .client
            .put(app.url(&path))
            .bearer_auth(&admin)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{bad}");
        error_body(res).await;
    }
    let res = app
        .client
        .put(app.url("/api/admin/users/nope/status"))
        .bearer_auth(&admin)
        .json(&json!({"status": "disabled"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    error_body(res).await;

    let res = app
        .client
        .put(app.url(&path))
        .bearer_auth(&admin)
        .json(&json!({"status": "disabled"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Takes effect on the next request: tokens, refresh and login are refused.
    let res = get_auth(&app, &target.access_token, "/api/users/me").await;
    assert_eq!(res.status(), 403);
    assert_eq!(error_body(res).await["code"], "USER_DISABLED");
    let res = post_json(
        &app,
        "/api/auth/refresh",
        json!({"refresh_token": target.refresh_token}),
    )
    .await;
    assert_eq!(res.status(), 403);
    assert_eq!(error_body(res).await["code"], "USER_DISABLED");
    let res = post_json(
        &app,
        "/api/auth/wechat-login",
        json!({"code": code_for("rita")}),
    )
    .await;
    assert_eq!(res.status(), 403);
    assert_eq!(error_body(res).await["code"], "USER_DISABLED");

    let res = app
        .client
        .put(app.url(&path))
        .bearer_auth(&admin)
        .json(&json!({"status": "active"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    login(&app, "rita").await;
    let log: Value = get_auth(&app, &admin, "/api/admin/audit-log")
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["user.set_status", "user.set_status"]);
}
