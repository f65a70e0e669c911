use std::time::Duration;

use points_app::wechat::NotificationResource;
use points_app::wechat::notify::{EVENT_REFUND_SUCCESS, EVENT_TRANSACTION_SUCCESS};
use points_app::wechat::{RefundRequest, RefundTarget};

use crate::helpers::{Receiver, TestSandbox, prepay_request};

/// A sandbox whose notify URL points at a fresh receiver.
async fn with_receiver(fail_first: u32) -> (TestSandbox, Receiver) {
    let probe = TestSandbox::start().await;
    // The receiver needs the sandbox's keys, and the sandbox needs the receiver's URL:
    // start the receiver with the keys, then a client whose notify base is the receiver.
    let receiver = Receiver::start(probe.verifier.clone(), fail_first).await;
    let mut sb = probe;
    let mut config = sb.config();
    config.notify_base_url = receiver.base_url.clone();
    sb.client = points_app::wechat::WechatClient::new(config).unwrap();
    (sb, receiver)
}

#[actix_web::test]
async fn paying_delivers_a_verified_transaction_success() {
    let (sb, receiver) = with_receiver(0).await;
    sb.client
        .jsapi_prepay(&prepay_request("order-n001", 2500, "o-alice"))
        .await
        .unwrap();
    let (status, paid) = sb.control("/sandbox/orders/order-n001/pay").await;
    assert_eq!(status, 200);
    let got = receiver.wait_for(1).await;
    let n = &got[0];
    assert_eq!(n.event_type, EVENT_TRANSACTION_SUCCESS);
    assert_eq!(n.id, paid["notification_id"].as_str().unwrap());
    match &n.resource {
        NotificationResource::Transaction(t) => {
            assert_eq!(t.out_trade_no, "order-n001");
            assert_eq!(t.amount.total, 2500);
            assert_eq!(t.payer.as_ref().unwrap().openid.as_deref(), Some("o-alice"));
        }
        other => panic!("{other:?}"),
    }
    let refund = RefundRequest {
        target: RefundTarget::OutTradeNo("order-n001".into()),
        out_refund_no: "refund-n001".into(),
        reason: None,
        refund_fen: 500,
        total_fen: 2500,
        notify_path: Some("/notify".into()),
    };
    sb.client.refund(&refund).await.unwrap();
    sb.control("/sandbox/refunds/refund-n001/succeed").await;
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].event_type, EVENT_REFUND_SUCCESS);
    assert!(matches!(&got[1].resource, NotificationResource::Refund(r) if r.amount.refund == 500));
    receiver.stop().await;
}

#[actix_web::test]
async fn failed_deliveries_are_retried_until_204() {
    let (sb, receiver) = with_receiver(2).await;
    sb.client
        .jsapi_prepay(&prepay_request("order-n002", 100, "o-bob"))
        .await
        .unwrap();
    sb.control("/sandbox/orders/order-n002/pay").await;
    receiver.wait_for(1).await;
    // The record is updated right after the answer; give it a moment.
    let mut deliveries = Vec::new();
    for _ in 0..100 {
        deliveries = sb.deliveries("order-n002").await;
        if deliveries
            .first()
            .is_some_and(|d| d["status"] == "delivered")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let d = &deliveries[0];
    assert_eq!(d["status"], "delivered", "{d}");
    let statuses: Vec<_> = d["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["http_status"].as_u64())
        .collect();
    assert_eq!(statuses, vec![Some(500), Some(500), Some(204)]);
    receiver.stop().await;
}

#[actix_web::test]
async fn duplicates_and_late_deliveries_carry_the_same_notification_id() {
    let (sb, receiver) = with_receiver(0).await;
    sb.client
        .jsapi_prepay(&prepay_request("order-n003", 100, "o-carol"))
        .await
        .unwrap();
    sb.control("/sandbox/orders/order-n003/pay?duplicates=3&delay_ms=300")
        .await;
    // The query overtakes the delayed notification: the order is already paid.
    let tx = sb.client.query_by_out_trade_no("order-n003").await.unwrap();
    assert_eq!(
        tx.trade_state,
        points_app::wechat::types::TradeState::Success
    );
    assert!(receiver.accepted().is_empty());
    let got = receiver.wait_for(4).await;
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|n| n.id == got[0].id));
    assert_eq!(sb.deliveries("order-n003").await.len(), 4);
    receiver.stop().await;
}

#[actix_web::test]
async fn an_unreachable_receiver_is_recorded_and_retried() {
    let sb = TestSandbox::start().await; // notify base points at a closed port
    sb.client
        .jsapi_prepay(&prepay_request("order-n004", 100, "o-dan"))
        .await
        .unwrap();
    sb.control("/sandbox/orders/order-n004/pay").await;
    let mut attempts = 0;
    for _ in 0..100 {
        let d = sb.deliveries("order-n004").await;
        attempts = d[0]["attempts"].as_array().unwrap().len();
        if attempts >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(attempts >= 2, "retries continue after a refused connection");
}
