use points_app::wechat::keys::{self, PlatformKeys, RsaVerifier};
use points_app::wechat::sign::{PlatformVerifier, VerifyError};
use points_app::wechat::types::{RefundStatus, TradeState};
use points_app::wechat::{PayErrorCode, RefundRequest, RefundTarget, WechatClient, WechatError};

use crate::helpers::{TestSandbox, prepay_request};

fn pay_code(e: WechatError) -> PayErrorCode {
    match e {
        WechatError::Pay { code, .. } => code,
        other => panic!("expected a WeChat Pay error, got {other:?}"),
    }
}

#[actix_web::test]
async fn prepay_query_and_close_follow_wechats_rules() {
    let sb = TestSandbox::start().await;
    let c = &sb.client;
    let first = c
        .jsapi_prepay(&prepay_request("order-0001", 1234, "o-alice"))
        .await
        .unwrap();
    assert!(first.prepay_id.starts_with("wx"));
    // The same order again: the same prepay_id. Changed: refused.
    let again = c
        .jsapi_prepay(&prepay_request("order-0001", 1234, "o-alice"))
        .await
        .unwrap();
    assert_eq!(again, first);
    let changed = c
        .jsapi_prepay(&prepay_request("order-0001", 999, "o-alice"))
        .await
        .unwrap_err();
    assert_eq!(pay_code(changed), PayErrorCode::OutTradeNoUsed);

    let tx = c.query_by_out_trade_no("order-0001").await.unwrap();
    assert_eq!(tx.trade_state, TradeState::Notpay);
    assert_eq!(tx.amount.total, 1234);
    assert_eq!(tx.mchid, c.config().mchid);

    c.close("order-0001").await.unwrap();
    c.close("order-0001").await.unwrap();
    assert_eq!(
        c.query_by_out_trade_no("order-0001")
            .await
            .unwrap()
            .trade_state,
        TradeState::Closed
    );
    let closed = c
        .jsapi_prepay(&prepay_request("order-0001", 1234, "o-alice"))
        .await
        .unwrap_err();
    assert_eq!(pay_code(closed), PayErrorCode::OrderClosed);

    let missing = c.query_by_out_trade_no("order-none").await.unwrap_err();
    assert_eq!(pay_code(missing), PayErrorCode::OrderNotExist);
    let bad_amount = c
        .jsapi_prepay(&prepay_request("order-0002", 0, "o-alice"))
        .await
        .unwrap_err();
    assert!(matches!(bad_amount, WechatError::InvalidRequest(_)));
    let bad_no = c.query_by_out_trade_no("../../etc").await.unwrap_err();
    assert!(matches!(bad_no, WechatError::InvalidRequest(_)));
}

#[actix_web::test]
async fn paid_orders_refund_up_to_the_amount_and_refunds_repeat_by_number() {
    let sb = TestSandbox::start().await;
    let c = &sb.client;
    c.jsapi_prepay(&prepay_request("order-0003", 100, "o-bob"))
        .await
        .unwrap();
    let (status, paid) = sb.control("/sandbox/orders/order-0003/pay").await;
    assert_eq!(status, 200, "{paid}");
    let transaction_id = paid["transaction"]["transaction_id"]
        .as_str()
        .unwrap()
        .to_string();

    let tx = c.query_by_transaction_id(&transaction_id).await.unwrap();
    assert_eq!(tx.trade_state, TradeState::Success);
    assert_eq!(tx.out_trade_no, "order-0003");
    assert_eq!(
        pay_code(c.close("order-0003").await.unwrap_err()),
        PayErrorCode::OrderPaid
    );

    let refund = |no: &str, fen: i64, target: RefundTarget| RefundRequest {
        target,
        out_refund_no: no.into(),
        reason: Some("customer asked".into()),
        refund_fen: fen,
        total_fen: 100,
        notify_path: Some("/notify".into()),
    };
    let r1 = c
        .refund(&refund(
            "refund-1",
            60,
            RefundTarget::OutTradeNo("order-0003".into()),
        ))
        .await
        .unwrap();
    assert_eq!(r1.status, RefundStatus::Processing);
    assert_eq!(r1.amount.refund, 60);
    let again = c
        .refund(&refund(
            "refund-1",
            60,
            RefundTarget::OutTradeNo("order-0003".into()),
        ))
        .await
        .unwrap();
    assert_eq!(again.refund_id, r1.refund_id);
    let too_much = c
        .refund(&refund(
            "refund-2",
            41,
            RefundTarget::TransactionId(transaction_id.clone()),
        ))
        .await
        .unwrap_err();
    assert_eq!(pay_code(too_much), PayErrorCode::NotEnough);
    c.refund(&refund(
        "refund-2",
        40,
        RefundTarget::TransactionId(transaction_id),
    ))
    .await
    .unwrap();
    assert_eq!(
        c.query_by_out_trade_no("order-0003")
            .await
            .unwrap()
            .trade_state,
        TradeState::Refund
    );

    let (status, _) = sb.control("/sandbox/refunds/refund-1/succeed").await;
    assert_eq!(status, 200);
    assert_eq!(
        c.query_refund("refund-1").await.unwrap().status,
        RefundStatus::Success
    );
    assert_eq!(
        c.query_refund("refund-2").await.unwrap().status,
        RefundStatus::Processing
    );
    assert_eq!(
        pay_code(c.query_refund("refund-none").await.unwrap_err()),
        PayErrorCode::ResourceNotExists
    );
}

#[actix_web::test]
async fn unpaid_orders_expire_at_time_expire() {
    let sb = TestSandbox::start().await;
    let mut req = prepay_request("order-0004", 100, "o-carol");
    let expire = chrono::Utc::now() + chrono::Duration::seconds(1);
    req.time_expire = Some(expire.to_rfc3339());
    sb.client.jsapi_prepay(&req).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let tx = sb.client.query_by_out_trade_no("order-0004").await.unwrap();
    assert_eq!(tx.trade_state, TradeState::Closed);
    let (status, body) = sb.control("/sandbox/orders/order-0004/pay").await;
    assert_eq!((status, body["code"].as_str()), (400, Some("ORDER_CLOSED")));
}

#[actix_web::test]
async fn a_request_signed_with_another_key_gets_sign_error() {
    let sb = TestSandbox::start().await;
    let mut config = sb.config();
    let other = keys::generate_private_key().unwrap();
    config.merchant = points_app::wechat::sign::MerchantSigner::new(
        config.mchid.clone(),
        config.merchant.serial_no.clone(),
        keys::RsaSigner::new(other),
    );
    let forged = WechatClient::new(config).unwrap();
    let err = forged
        .query_by_out_trade_no("order-0005")
        .await
        .unwrap_err();
    match err {
        WechatError::Pay { status, code, .. } => {
            assert_eq!(status, 401);
            assert_eq!(code, PayErrorCode::SignError);
        }
        other => panic!("{other:?}"),
    }
}

#[actix_web::test]
async fn answers_not_signed_by_the_platform_are_refused() {
    let sb = TestSandbox::start().await;
    let mut config = sb.config();
    // The sandbox's key id, but a different key: every answer fails verification.
    let mut wrong = PlatformKeys::new();
    let serial = config.platform.keys().serials().next().unwrap().to_string();
    wrong.insert(
        serial,
        keys::generate_private_key()
            .unwrap()
            .to_public_key()
            .unwrap(),
    );
    config.platform = PlatformVerifier::new(wrong);
    let client = WechatClient::new(config.clone()).unwrap();
    let err = client
        .jsapi_prepay(&prepay_request("order-0006", 100, "o-dan"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, WechatError::Verify(VerifyError::BadSignature)),
        "{err:?}"
    );
    // And a platform we do not know at all.
    config.platform = PlatformVerifier::new(PlatformKeys::new());
    let client = WechatClient::new(config).unwrap();
    let err = client
        .query_by_out_trade_no("order-0006")
        .await
        .unwrap_err();
    assert!(
        matches!(err, WechatError::Verify(VerifyError::UnknownSerial)),
        "{err:?}"
    );
}

#[actix_web::test]
async fn pay_params_are_signed_for_wx_request_payment() {
    let sb = TestSandbox::start().await;
    let prepay = sb
        .client
        .jsapi_prepay(&prepay_request("order-0007", 100, "o-eve"))
        .await
        .unwrap();
    let p = sb
        .client
        .pay_params_at(&prepay.prepay_id, "1795766112", "nonce-abc")
        .unwrap();
    assert_eq!(p.package, format!("prepay_id={}", prepay.prepay_id));
    assert_eq!(p.sign_type, "RSA");
    let message = format!(
        "{}\n1795766112\nnonce-abc\nprepay_id={}\n",
        sb.client.config().appid,
        prepay.prepay_id
    );
    let pem = keys::read_pem(&sb.handle.keys().path("merchant_public_key.pem")).unwrap();
    let verifier = RsaVerifier::new(keys::public_key_from_pem(&pem).unwrap());
    assert!(verifier.verify_base64(message.as_bytes(), &p.pay_sign));
    let json = serde_json::to_value(sb.client.pay_params(&prepay.prepay_id).unwrap()).unwrap();
    for field in ["timeStamp", "nonceStr", "package", "signType", "paySign"] {
        assert!(json.get(field).is_some(), "{field}");
    }
}

async fn inject(sb: &TestSandbox, count: u32, status: u16, code: &str) {
    let r = sb
        .http
        .post(sb.url("/sandbox/faults"))
        .json(&serde_json::json!({"count": count, "status": status, "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
}

#[actix_web::test]
async fn transient_errors_are_retried_with_backoff_and_others_are_not() {
    let sb = TestSandbox::start().await;
    let c = &sb.client;
    c.jsapi_prepay(&prepay_request("order-0008", 100, "o-fay"))
        .await
        .unwrap();
    // Two transient failures, then success: the third attempt answers.
    inject(&sb, 2, 500, "SYSTEM_ERROR").await;
    let started = std::time::Instant::now();
    assert_eq!(
        c.query_by_out_trade_no("order-0008")
            .await
            .unwrap()
            .trade_state,
        TradeState::Notpay
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(600),
        "200 ms + 400 ms backoff"
    );
    inject(&sb, 1, 429, "FREQUENCY_LIMITED").await;
    c.close("order-0008").await.unwrap();
    // Three in a row exhaust the attempts; the typed error comes back.
    inject(&sb, 3, 500, "SYSTEM_ERROR").await;
    let err = c.query_by_out_trade_no("order-0008").await.unwrap_err();
    assert_eq!(pay_code(err), PayErrorCode::SystemError);
    // A caller's mistake is not repeated: the second queued fault is still there afterwards.
    inject(&sb, 2, 400, "PARAM_ERROR").await;
    assert_eq!(
        pay_code(c.query_by_out_trade_no("order-0008").await.unwrap_err()),
        PayErrorCode::ParamError
    );
    assert_eq!(
        pay_code(c.query_by_out_trade_no("order-0008").await.unwrap_err()),
        PayErrorCode::ParamError
    );
    assert_eq!(
        c.query_by_out_trade_no("order-0008")
            .await
            .unwrap()
            .trade_state,
        TradeState::Closed
    );
}

#[actix_web::test]
async fn the_sandbox_refuses_stale_missing_or_tampered_authorization() {
    let sb = TestSandbox::start().await;
    let merchant = &sb.client.config().merchant;
    let path = format!(
        "/v3/pay/transactions/out-trade-no/order-0009?mchid={}",
        merchant.mchid
    );
    let send = |auth: Option<String>| {
        let mut r = sb.http.get(sb.url(&path));
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        r.send()
    };
    let now = chrono::Utc::now().timestamp();
    let code = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap();
        (status, body["code"].as_str().unwrap_or("").to_string())
    };
    let fresh = merchant
        .authorization("GET", &path, now, "nonce-1", b"")
        .unwrap();
    assert_eq!(
        code(send(Some(fresh.clone())).await.unwrap()).await,
        (404, "ORDER_NOT_EXIST".into())
    );
    let stale = merchant
        .authorization("GET", &path, now - 301, "nonce-2", b"")
        .unwrap();
    assert_eq!(
        code(send(Some(stale)).await.unwrap()).await,
        (401, "SIGN_ERROR".into())
    );
    assert_eq!(
        code(send(None).await.unwrap()).await,
        (401, "SIGN_ERROR".into())
    );
    // Signed for another path: the signature covers the URL.
    let other = merchant
        .authorization(
            "GET",
            "/v3/pay/transactions/out-trade-no/order-0010",
            now,
            "n3",
            b"",
        )
        .unwrap();
    assert_eq!(
        code(send(Some(other)).await.unwrap()).await,
        (401, "SIGN_ERROR".into())
    );
    let wrong_serial = fresh.replace(&merchant.serial_no, "0000");
    assert_eq!(
        code(send(Some(wrong_serial)).await.unwrap()).await,
        (401, "SIGN_ERROR".into())
    );
}

#[actix_web::test]
async fn a_failed_payment_leaves_the_order_payable() {
    let sb = TestSandbox::start().await;
    sb.client
        .jsapi_prepay(&prepay_request("order-0011", 100, "o-gus"))
        .await
        .unwrap();
    let (status, _) = sb.control("/sandbox/orders/order-0011/fail").await;
    assert_eq!(status, 200);
    let tx = sb.client.query_by_out_trade_no("order-0011").await.unwrap();
    assert_eq!(tx.trade_state, TradeState::Payerror);
    assert!(
        sb.deliveries("order-0011").await.is_empty(),
        "no notification for a failure"
    );
    let (status, _) = sb.control("/sandbox/orders/order-0011/pay").await;
    assert_eq!(status, 200);
    assert_eq!(
        sb.client
            .query_by_out_trade_no("order-0011")
            .await
            .unwrap()
            .trade_state,
        TradeState::Success
    );
    let (status, body) = sb.control("/sandbox/orders/order-0011/pay").await;
    assert_eq!((status, body["code"].as_str()), (400, Some("ORDERPAID")));
}
