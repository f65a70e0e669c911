//! The order writer's transactions (the group commit the payment path uses): an idempotent
//! insert, and paid + outbox, where concurrent and repeated deliveries make one paid order and
//! one outbox row, and a closed order is never paid.

use chrono::Utc;
use points_app::actors::payments::order_writer::PaidWrite;
use points_app::domain::order::OrderStatus;
use points_app::storage::orders::{self, Inserted, OrderRow, OutboxRow};
use points_app::storage::outbox;

use crate::helpers::spawn_app;

fn new_order(user: &str, key: &str) -> OrderRow {
    let now = Utc::now().naive_utc();
    let id = uuid::Uuid::now_v7();
    OrderRow {
        id: id.to_string(),
        order_no: id.simple().to_string(),
        user_id: user.into(),
        merchant_id: "m1".into(),
        payment_code_id: "c1".into(),
        amount_fen: 1234,
        refunded_fen: 0,
        status: OrderStatus::Created.as_str().into(),
        idempotency_key: key.into(),
        request_hash: "h".into(),
        description: "test".into(),
        payer_openid: "o1".into(),
        prepay_id: None,
        wechat_transaction_id: None,
        expires_at: now + chrono::Duration::minutes(15),
        paid_at: None,
        closed_at: None,
        version: 0,
        created_at: now,
        updated_at: now,
    }
}

fn award_row(order_no: &str) -> OutboxRow {
    let now = Utc::now().naive_utc();
    OutboxRow {
        id: uuid::Uuid::now_v7().to_string(),
        kind: outbox::AWARD_POINTS.into(),
        aggregate_id: order_no.into(),
        payload: "{}".into(),
        attempts: 0,
        next_attempt_at: now,
        last_error: None,
        created_at: now,
    }
}

fn paid(order_no: &str, transaction_id: &str, now: chrono::NaiveDateTime) -> PaidWrite {
    PaidWrite {
        order_no: order_no.into(),
        from: OrderStatus::Created,
        transaction_id: transaction_id.into(),
        paid_at: now,
        now,
        award: award_row(order_no),
    }
}

#[actix_web::test]
async fn the_same_idempotency_key_returns_the_first_order() {
    let app = spawn_app().await;
    let first = new_order("u1", "key-1");
    assert!(matches!(
        app.state
            .payments
            .writer()
            .insert(first.clone())
            .await
            .unwrap(),
        Inserted::New(_)
    ));
    let again = new_order("u1", "key-1");
    match app.state.payments.writer().insert(again).await.unwrap() {
        Inserted::Existing(o) => assert_eq!(o.order_no, first.order_no),
        other => panic!("{other:?}"),
    }
    // Another user may use the same key.
    assert!(matches!(
        app.state
            .payments
            .writer()
            .insert(new_order("u2", "key-1"))
            .await
            .unwrap(),
        Inserted::New(_)
    ));
}

#[actix_web::test]
async fn concurrent_deliveries_pay_once_and_write_one_outbox_row() {
    let app = spawn_app().await;
    let db = app.state.app.db().clone();
    let order = new_order("u1", "k");
    app.state
        .payments
        .writer()
        .insert(order.clone())
        .await
        .unwrap();
    let now = Utc::now().naive_utc();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (writer, order_no) = (app.state.payments.writer().clone(), order.order_no.clone());
            actix_web::rt::spawn(async move {
                writer
                    .mark_paid(paid(&order_no, "wx-txn-1", now))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    // One compare-and-set from created wins; the nine others find the order moved on.
    assert_eq!(
        outcomes.iter().filter(|moved| **moved).count(),
        1,
        "{outcomes:?}"
    );
    let (pending, _) = outbox::backlog(&db).await.unwrap();
    assert_eq!(pending, 1);
    let paid = orders::find(&db, &order.order_no).await.unwrap().unwrap();
    assert_eq!(paid.status().unwrap(), OrderStatus::Paid);
    assert_eq!(paid.wechat_transaction_id.as_deref(), Some("wx-txn-1"));
}

#[actix_web::test]
async fn a_closed_order_is_not_paid_and_gets_no_outbox_row() {
    let app = spawn_app().await;
    let db = app.state.app.db();
    let order = new_order("u1", "k");
    app.state
        .payments
        .writer()
        .insert(order.clone())
        .await
        .unwrap();
    let now = Utc::now().naive_utc();
    assert!(
        orders::change_status(
            db,
            &order.order_no,
            OrderStatus::Created,
            OrderStatus::Closed,
            now
        )
        .await
        .unwrap()
    );
    let outcome = app
        .state
        .payments
        .writer()
        .mark_paid(paid(&order.order_no, "t", now))
        .await
        .unwrap();
    assert!(!outcome, "a closed order is not paid");
    let closed = orders::find(db, &order.order_no).await.unwrap().unwrap();
    assert_eq!(closed.status().unwrap(), OrderStatus::Closed);
    assert_eq!(outbox::backlog(db).await.unwrap().0, 0);
    // The compare-and-set is on the exact previous status: closing from "paying" when the
    // order is closed changes nothing either.
    assert!(
        !orders::change_status(
            db,
            &order.order_no,
            OrderStatus::Paying,
            OrderStatus::Closed,
            now
        )
        .await
        .unwrap()
    );
    // An unknown order is reported, not invented.
    let outcome = app
        .state
        .payments
        .writer()
        .mark_paid(paid("nope", "t", now))
        .await
        .unwrap();
    assert!(!outcome);
}

#[actix_web::test]
async fn an_unknown_status_in_the_database_is_an_error_not_a_guess() {
    let app = spawn_app().await;
    let mut order = new_order("u1", "k-unknown");
    order.status = "teleported".into();
    app.state
        .payments
        .writer()
        .insert(order.clone())
        .await
        .unwrap();
    let row = orders::find(app.state.app.db(), &order.order_no)
        .await
        .unwrap()
        .unwrap();
    let err = row.status().unwrap_err();
    assert!(err.to_string().contains("teleported"), "{err}");
}

/// The export streams every order of the days in chunks read by keyset: across chunk
/// boundaries (and equal creation times) each order is in it exactly once, and no cap cuts it.
#[actix_web::test]
async fn the_orders_export_holds_every_order_once_across_chunks() {
    let app = crate::identity::spawn_identity_app().await;
    let admin = crate::identity::admin_token(&app).await;
    const N: usize = 2_345;
    let mut expected = std::collections::BTreeSet::new();
    let mut orders = Vec::new();
    for i in 0..N {
        let mut o = new_order(&format!("u{}", i % 7), &format!("export-{i}"));
        // Many orders share a creation time: the keyset must break ties on the number.
        o.created_at = orders.last().map_or(o.created_at, |p: &OrderRow| {
            if i % 3 == 0 {
                o.created_at
            } else {
                p.created_at
            }
        });
        expected.insert(o.order_no.clone());
        orders.push(o);
    }
    for chunk in orders.chunks(200) {
        let writes = chunk
            .iter()
            .map(|o| app.state.payments.writer().insert(o.clone()));
        for r in futures_util::future::join_all(writes).await {
            r.unwrap();
        }
    }
    let res = crate::identity::get_auth(&app, &admin, "/api/admin/reports/orders.csv").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["x-export-filter"]
            .to_str()
            .unwrap()
            .contains("all of them")
    );
    let text = res.text().await.unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().ends_with("order_no,created_at_cst,paid_at_cst,status,merchant_id,merchant_name,user_id,amount_fen,refunded_fen"));
    let seen: Vec<&str> = lines.map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(seen.len(), N, "every order, once");
    let unique: std::collections::BTreeSet<String> = seen.iter().map(|s| s.to_string()).collect();
    assert_eq!(unique, expected);
    assert_eq!(text.matches('\u{feff}').count(), 1, "one BOM, at the start");
}

/// Order leases: of concurrent claims by different instances exactly one wins; the holder
/// renews; another instance takes over only when the lease has run out; release and prune.
#[actix_web::test]
async fn an_order_lease_has_one_holder_until_it_runs_out() {
    use points_app::storage::leases;
    let app = spawn_app().await;
    let db = app.state.app.db().clone();
    let now = Utc::now().naive_utc();
    let until = now + chrono::Duration::seconds(60);

    // Eight instances race for a lease nobody holds: one wins.
    let claims = (0..8).map(|i| {
        let db = db.clone();
        async move { leases::claim(&db, "order-1", &format!("inst-{i}"), now, until).await }
    });
    let won: Vec<bool> = futures_util::future::join_all(claims)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    let holder = format!("inst-{}", won.iter().position(|w| *w).unwrap());
    let other = if holder == "inst-0" {
        "inst-1"
    } else {
        "inst-0"
    };

    // The holder renews; the others are refused while it lasts, and see it held elsewhere.
    assert!(
        leases::claim(&db, "order-1", &holder, now, until)
            .await
            .unwrap()
    );
    assert!(
        !leases::claim(&db, "order-1", other, now, until)
            .await
            .unwrap()
    );
    let held = leases::held_elsewhere(&db, &["order-1", "order-2"], other, now)
        .await
        .unwrap();
    assert_eq!(
        held.into_iter().collect::<Vec<_>>(),
        vec!["order-1".to_string()]
    );
    assert!(
        leases::held_elsewhere(&db, &["order-1"], &holder, now)
            .await
            .unwrap()
            .is_empty(),
        "not elsewhere for its holder"
    );

    // Once it has run out (the holder died), another instance takes it over, once.
    let later = until + chrono::Duration::seconds(1);
    let next_until = later + chrono::Duration::seconds(60);
    assert!(
        leases::claim(&db, "order-1", other, later, next_until)
            .await
            .unwrap()
    );
    assert!(
        !leases::claim(&db, "order-1", &holder, later, next_until)
            .await
            .unwrap()
    );

    // A release by someone who does not hold it changes nothing; by the holder, frees it.
    leases::release(&db, "order-1", &holder).await.unwrap();
    assert!(
        !leases::claim(&db, "order-1", "inst-9", later, next_until)
            .await
            .unwrap()
    );
    leases::release(&db, "order-1", other).await.unwrap();
    assert!(
        leases::claim(&db, "order-1", "inst-9", later, next_until)
            .await
            .unwrap()
    );

    // Pruning deletes only leases that ran out before the cut.
    assert!(
        leases::claim(&db, "order-old", "inst-9", now, now)
            .await
            .unwrap()
    );
    assert_eq!(leases::prune(&db, later).await.unwrap(), 1);
    assert!(
        !leases::claim(&db, "order-1", "inst-8", later, next_until)
            .await
            .unwrap()
    );
}

/// The rescan's query: open orders past their expiry, and paying ones older than the
/// query delay; never final ones, never fresh ones.
#[actix_web::test]
async fn due_open_orders_are_found_by_the_rescan_query() {
    let app = spawn_app().await;
    let db = app.state.app.db().clone();
    let now = Utc::now().naive_utc();
    let mut want = Vec::new();
    let cases = [
        // (status, created secs ago, expires in secs, due?)
        (OrderStatus::Created, 100, -1, true),
        (OrderStatus::Paying, 100, -1, true),
        (OrderStatus::Paying, 100, 600, true),
        (OrderStatus::Paying, 10, 600, false),
        (OrderStatus::Created, 100, 600, false),
        (OrderStatus::Closed, 100, -1, false),
        (OrderStatus::Paid, 100, -1, false),
    ];
    for (i, (status, age, expires, due)) in cases.into_iter().enumerate() {
        let mut o = new_order("u1", &format!("due-{i}"));
        o.status = status.as_str().into();
        o.created_at = now - chrono::Duration::seconds(age);
        o.expires_at = now + chrono::Duration::seconds(expires);
        app.state.payments.writer().insert(o.clone()).await.unwrap();
        if due {
            want.push(o.order_no);
        }
    }
    let found: Vec<String> =
        orders::due_for_supervision(&db, now, now - chrono::Duration::seconds(60), 100)
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.order_no)
            .collect();
    let mut sorted = found.clone();
    sorted.sort();
    want.sort();
    assert_eq!(sorted, want);
    assert_eq!(
        orders::due_for_supervision(&db, now, now - chrono::Duration::seconds(60), 2)
            .await
            .unwrap()
            .len(),
        2,
        "limited"
    );
}
