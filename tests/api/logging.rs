//! Security logging: refusals are logged in the security category, and no log line carries an
//! unmasked phone number (the log writer masks them).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use points_app::security::mask::MaskingMakeWriter;
use serde_json::json;

use crate::identity::*;

#[derive(Clone)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs, once per test binary, a global JSON subscriber writing through the same masking
/// writer as production into memory. `None` when another subscriber was installed first.
fn captured_logs() -> Option<Arc<Mutex<Vec<u8>>>> {
    static CAPTURE: OnceLock<Option<Arc<Mutex<Vec<u8>>>>> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let buf = Arc::new(Mutex::new(Vec::new()));
            let sink = Sink(buf.clone());
            use tracing_subscriber::prelude::*;
            // The production JSON layer, into memory.
            let subscriber = tracing_subscriber::registry()
                .with(tracing_subscriber::filter::LevelFilter::INFO)
                .with(points_app::telemetry::json_layer(MaskingMakeWriter::new(
                    move || sink.clone(),
                )));
            tracing::subscriber::set_global_default(subscriber)
                .ok()
                .map(|_| buf)
        })
        .clone()
}

#[actix_web::test]
async fn log_lines_never_carry_an_unmasked_phone() {
    let Some(logs) = captured_logs() else {
        eprintln!("another subscriber is installed (TEST_LOG?): log capture skipped");
        return;
    };
    let app = spawn_identity_app().await;
    let s = login(&app, "yara").await;
    // A wrongly typed phone: the refusal's cause (logged) quotes the value.
    let res = signed(
        &app,
        &s,
        "PUT",
        "/api/users/me/phone",
        Some(json!({"phone": 13812345678u64})),
    )
    .await;
    assert_eq!(res.status(), 422);
    // A phone as an admin username: the failed login is a security event.
    let res = post_json(
        &app,
        "/api/admin/login",
        json!({"username": "13987654321", "password": "x"}),
    )
    .await;
    assert_eq!(res.status(), 401);
    // A password typed into the username field.
    let res = post_json(
        &app,
        "/api/admin/login",
        json!({"username": "correct horse battery staple", "password": "admin"}),
    )
    .await;
    assert_eq!(res.status(), 401);
    // A forged signature: a security event.
    let res = app
        .client
        .patch(app.url("/api/users/me"))
        .bearer_auth(&s.access_token)
        .header("X-Timestamp", chrono::Utc::now().timestamp().to_string())
        .header("X-Nonce", nonce())
        .header("X-Signature", "00")
        .json(&json!({"nickname": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(!text.contains("13812345678"), "unmasked phone in logs");
    assert!(!text.contains("13987654321"), "unmasked phone in logs");
    assert!(
        text.contains("138****5678"),
        "the refusal was logged, masked"
    );
    // A typed admin username is never logged, not even masked: people type passwords there.
    assert!(!text.contains("139****4321"), "typed username in logs");
    assert!(
        !text.contains("correct horse battery"),
        "typed username in logs"
    );
    assert!(text.contains("typed-username-sha256:"), "{text}");
    let security: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(r#""category":"security""#))
        .collect();
    assert!(
        security.iter().any(|l| l.contains("admin_login_failed")),
        "{text}"
    );
    assert!(
        security.iter().any(|l| l.contains("bad_signature")),
        "{text}"
    );
    assert!(!text.contains(ADMIN_PASSWORD));
}

/// The JSON log lines captured so far.
fn lines(logs: &Arc<Mutex<Vec<u8>>>) -> Vec<serde_json::Value> {
    String::from_utf8(logs.lock().unwrap().clone())
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Business log lines on the payment and points paths carry the source design's fields:
/// timestamp, level, category, trace id (request span), user id, merchant id, action, message.
#[actix_web::test]
async fn business_lines_name_the_user_the_merchant_and_the_action() {
    let Some(logs) = captured_logs() else {
        eprintln!("another subscriber is installed (TEST_LOG?): log capture skipped");
        return;
    };
    let app = crate::payments::app().await;
    let (owner, merchant) = approved_merchant(&app, "m-logs").await;
    let code = crate::payments::payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-logs").await;
    let order_no = crate::payments::paid_order(&app, &shopper, &code, 5_000).await;

    let body = json!({"points": 3, "reason": "coffee"});
    let res = signed_request(&app, &shopper, "POST", "/api/points/deduct", Some(&body))
        .header("Idempotency-Key", "log-key-0001")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let trace_id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let res = signed(
        &app,
        &owner,
        "POST",
        &format!("/api/merchants/{merchant}/orders/{order_no}/refund"),
        Some(json!({"amount_fen": 1_000, "reason": "returned goods"})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let refund_trace = res.headers()["x-request-id"].to_str().unwrap().to_string();

    let lines = lines(&logs);
    let common = |l: &serde_json::Value| {
        for field in ["timestamp", "level", "category", "action", "message"] {
            assert!(l[field].is_string(), "{field} missing: {l}");
        }
        assert_eq!(l["category"], "business", "{l}");
    };
    // The award (background, after the payment notification): user and order.
    let award = lines
        .iter()
        .find(|l| l["action"] == "points_award" && l["source_id"] == order_no.as_str())
        .unwrap_or_else(|| panic!("no award line for {order_no}"));
    common(award);
    assert_eq!(award["user_id"], shopper.user_id.as_str(), "{award}");
    assert_eq!(award["level"], "INFO");
    // The deduct (in the request): user, and the request's trace id and user in the span.
    let deduct = lines
        .iter()
        .find(|l| l["action"] == "points_deduct" && l["span"]["trace_id"] == trace_id.as_str())
        .unwrap_or_else(|| panic!("no deduct line with trace id {trace_id}"));
    common(deduct);
    assert_eq!(deduct["user_id"], shopper.user_id.as_str(), "{deduct}");
    assert_eq!(
        deduct["span"]["user_id"],
        shopper.user_id.as_str(),
        "{deduct}"
    );
    assert_eq!(deduct["points"], -3, "{deduct}");
    // The merchant's refund: merchant, and the owner in the span.
    let refund = lines
        .iter()
        .find(|l| l["action"] == "refund_request" && l["span"]["trace_id"] == refund_trace.as_str())
        .unwrap_or_else(|| panic!("no refund line with trace id {refund_trace}"));
    common(refund);
    assert_eq!(refund["merchant_id"], merchant.as_str(), "{refund}");
    assert_eq!(refund["span"]["merchant_id"], merchant.as_str(), "{refund}");
    assert_eq!(
        refund["span"]["user_id"],
        owner.user_id.as_str(),
        "{refund}"
    );
}

/// A notification refused for not matching its order says which order, in the line's own
/// field, so one grep for the order number finds it.
#[actix_web::test]
async fn a_refused_notification_line_names_its_order() {
    let Some(logs) = captured_logs() else {
        eprintln!("another subscriber is installed (TEST_LOG?): log capture skipped");
        return;
    };
    let app = crate::payments::app().await;
    let (owner, merchant) = approved_merchant(&app, "m-grep").await;
    let code = crate::payments::payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-grep").await;
    let order = crate::payments::created(&app, &shopper, &code, 5_000, "grep-key-0001").await;
    let order_no = order["order_no"].as_str().unwrap().to_string();
    let cfg = app.state.wechat.client.config();
    // Signed by WeChat, but for another amount than the order's.
    let wrong =
        crate::payments_faults::success_transaction(&cfg.appid, &cfg.mchid, &order_no, 4_999);
    let keys =
        points_app::sandbox::SandboxKeys::load_or_generate(&app.state.settings.sandbox_keys_dir())
            .unwrap();
    let res = crate::payments_faults::deliver_signed(
        &app.client,
        &app.url("/api/wechat/pay/notify"),
        &keys,
        &wrong,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 400);
    let refused: Vec<serde_json::Value> = lines(&logs)
        .into_iter()
        .filter(|l| l.to_string().contains("does not match its order"))
        .collect();
    assert!(!refused.is_empty(), "the refusal was logged");
    assert!(
        refused.iter().any(|l| l
            .to_string()
            .contains(&format!("\"order_no\":\"{order_no}\""))),
        "{refused:?}"
    );
}

/// One order's life in one grep: background work logs in a trace of its own that names the
/// order (the supervisor closing an expired order, its steps and WeChat calls), and work a
/// request handed to an actor keeps the request's trace (the award after WeChat's
/// notification carries the notification request's trace id). Every line that mentions
/// either order carries its number in a field.
#[actix_web::test]
async fn one_orders_life_is_found_by_its_order_number() {
    let Some(logs) = captured_logs() else {
        eprintln!("another subscriber is installed (TEST_LOG?): log capture skipped");
        return;
    };
    let app = spawn_identity_app_with(|s| {
        s.rate_limit_payments_per_min = 1000;
        s.order_ttl_secs = 3;
    })
    .await;
    let (owner, merchant) = approved_merchant(&app, "m-life").await;
    let code = crate::payments::payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-life").await;
    let expired =
        crate::payments::created(&app, &shopper, &code, 2_000, "life-key-0001").await["order_no"]
            .as_str()
            .unwrap()
            .to_string();
    let paid = crate::payments::paid_order(&app, &shopper, &code, 5_000).await;
    crate::payments::wait_order(&app, &shopper, &expired, |o| o["status"] == "closed").await;

    let lines = lines(&logs);
    let about = |no: &str| -> Vec<serde_json::Value> {
        lines
            .iter()
            .filter(|l| l.to_string().contains(no))
            .cloned()
            .collect()
    };
    // The supervisor's close: its own trace, naming the order.
    let closing: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["span"]["work"] == "supervise" && l["span"]["order_no"] == expired.as_str())
        .collect();
    let close = closing
        .iter()
        .find(|l| l["action"] == "order_expire")
        .unwrap_or_else(|| panic!("no order_expire line for {expired}: {closing:?}"));
    let trace = close["span"]["trace_id"].as_str().unwrap();
    assert_eq!(trace.len(), 32, "{close}");
    assert_eq!(close["user_id"], shopper.user_id.as_str(), "{close}");
    // The award after the notification: in the notification request's trace.
    let award = lines
        .iter()
        .find(|l| l["action"] == "points_award" && l["source_id"] == paid.as_str())
        .unwrap_or_else(|| panic!("no award line for {paid}"));
    assert_eq!(award["span"]["route"], "/api/wechat/pay/notify", "{award}");
    assert_eq!(
        award["span"]["trace_id"].as_str().unwrap().len(),
        32,
        "{award}"
    );
    // Whatever mentions an order names it in a field, never only in free text.
    for no in [&expired, &paid] {
        let found = about(no);
        assert!(!found.is_empty());
        for l in found {
            let named = ["order_no", "source_id", "reference", "aggregate_id"]
                .iter()
                .any(|f| l[*f] == no.as_str())
                || l["span"]["order_no"] == no.as_str();
            assert!(named, "a line mentions {no} without naming it: {l}");
        }
    }
}
