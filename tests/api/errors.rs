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
