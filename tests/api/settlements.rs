//! Merchant settlement over real HTTP with the in-process WeChat sandbox: payments at two
//! merchants and refunds, then the figures per day and per merchant as JSON and CSV, the fee
//! rounding, the fee from a reconciled trade bill (and the estimate beside it), tenancy and
//! bad queries.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use serde_json::Value;

use crate::helpers::{TestApp, error_body};
use crate::identity::{Session, admin_token, approved_merchant, get_auth, login};
use crate::payments::{
    app, created, pay, payment_code, refund, refund_succeeds, sandbox, wait_order,
};

/// A paid order of `amount` fen; with `points`, also waits for its award (a refund needs it).
async fn paid(app: &TestApp, shopper: &Session, code: &str, amount: i64, points: bool) -> String {
    let key = format!("key-{}", uuid::Uuid::now_v7().simple());
    let order = created(app, shopper, code, amount, &key).await;
    let order_no = order["order_no"].as_str().unwrap().to_string();
    pay(app, &order_no, "").await;
    wait_order(app, shopper, &order_no, |o| {
        o["status"] == "paid" && (!points || o["points_awarded"].as_i64() > Some(0))
    })
    .await;
    order_no
}

/// Refunds `amount` of the order and waits until WeChat's success is booked.
async fn refunded(
    app: &TestApp,
    owner: &Session,
    merchant: &str,
    shopper: &Session,
    order_no: &str,
    amount: i64,
    total_refunded: i64,
) {
    let res = refund(app, owner, merchant, order_no, amount).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let r: Value = res.json().await.unwrap();
    refund_succeeds(app, r["out_refund_no"].as_str().unwrap()).await;
    wait_order(app, shopper, order_no, |o| {
        o["refunded_fen"].as_i64() == Some(total_refunded)
    })
    .await;
}

async fn json(app: &TestApp, token: &str, path: &str) -> Value {
    let res = get_auth(app, token, path).await;
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

/// The CSV answer as rows of cells, after checking its type and the BOM.
async fn csv_rows(app: &TestApp, token: &str, path: &str) -> Vec<Vec<String>> {
    let res = get_auth(app, token, path).await;
    assert_eq!(res.status(), 200, "{path}");
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "text/csv; charset=utf-8"
    );
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let text = res.text().await.unwrap();
    let body = text.strip_prefix('\u{feff}').expect("a UTF-8 BOM first");
    csv::Reader::from_reader(body.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

const SUMS: [&str; 7] = [
    "order_count",
    "gross_fen",
    "refund_count",
    "refund_fen",
    "fee_fen",
    "fee_refund_fen",
    "net_fen",
];

fn sums(v: &Value) -> Vec<i64> {
    SUMS.iter()
        .map(|k| v[k].as_i64().unwrap_or_else(|| panic!("{k} in {v}")))
        .collect()
}

/// The amounts of a CSV line (the cells of [`SUMS`], from `first`).
fn cells(row: &[String], first: usize) -> Vec<i64> {
    row[first..first + SUMS.len()]
        .iter()
        .map(|c| c.parse().unwrap())
        .collect()
}

/// Where the fees of a JSON day (or totals) came from: (from the bill: orders, refunds;
/// `fee_source`).
fn source(v: &Value) -> (i64, i64, String) {
    (
        v["fee_from_bill_orders"].as_i64().unwrap(),
        v["fee_from_bill_refunds"].as_i64().unwrap(),
        v["fee_source"].as_str().unwrap().to_string(),
    )
}

/// The same of a CSV line whose amounts start at `first`.
fn csv_source(row: &[String], first: usize) -> (i64, i64, String) {
    let at = first + SUMS.len();
    (
        row[at].parse().unwrap(),
        row[at + 1].parse().unwrap(),
        row[at + 2].clone(),
    )
}

/// Two merchants, six payments and three refunds (one partial, and one order refunded in
/// full in two parts) at the default 0.6%. The CST days are read as a two-day range and
/// summed, so a run across CST midnight still adds up.
#[actix_web::test]
async fn settlement_adds_up_the_days_orders_refunds_and_fees_as_json_and_csv() {
    let app = app().await;
    let (owner_a, a) = approved_merchant(&app, "m-settle-a").await;
    let (owner_b, b) = approved_merchant(&app, "m-settle-b").await;
    let code_a = payment_code(&app, &owner_a, &a, None).await;
    let code_b = payment_code(&app, &owner_b, &b, None).await;
    let shopper = login(&app, "shopper-settle").await;

    // The fee of each order, rounded half up to the fen: 1 fen -> 0.006 -> 0; 83 -> 0.498
    // -> 0; 12345 -> 74.07 -> 74; 750 -> 4.5 -> 5; 84 -> 0.504 -> 1; 10000 -> 60.
    for amount in [1, 83, 750] {
        paid(&app, &shopper, &code_a, amount, false).await;
    }
    let big_a = paid(&app, &shopper, &code_a, 12_345, true).await;
    paid(&app, &shopper, &code_b, 84, false).await;
    let big_b = paid(&app, &shopper, &code_b, 10_000, true).await;
    // A: 5000 of 12345 back, with the fee on 5000 (30). B: all of 10000 in two parts; the
    // fee on 3333 is 19.998 -> 20, then 60 - 20 = 40: exactly the order's fee comes back.
    refunded(&app, &owner_a, &a, &shopper, &big_a, 5_000, 5_000).await;
    refunded(&app, &owner_b, &b, &shopper, &big_b, 3_333, 3_333).await;
    refunded(&app, &owner_b, &b, &shopper, &big_b, 6_667, 10_000).await;

    let today = points_app::domain::cst_day(Utc::now());
    let yesterday = today - Duration::days(1);
    let range = format!("from={yesterday}&to={today}");
    // [order_count, gross, refund_count, refund, fee, fee_refund, net]
    let expect_a = [4, 13_179, 1, 5_000, 79, 30, 13_179 - 5_000 - 79 + 30];
    let expect_b = [2, 10_084, 2, 10_000, 61, 60, 10_084 - 10_000 - 61 + 60];

    for (owner, merchant, expect) in [(&owner_a, &a, expect_a), (&owner_b, &b, expect_b)] {
        let s = json(
            &app,
            &owner.access_token,
            &format!("/api/merchants/{merchant}/settlements?{range}"),
        )
        .await;
        assert_eq!(s["merchant_id"], merchant.as_str());
        assert_eq!(s["fee_rate_bp"], 60);
        let items = s["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "every day of the range: {s}");
        assert_eq!(items[0]["date"], yesterday.to_string());
        assert_eq!(items[1]["date"], today.to_string());
        assert_eq!(sums(&s["totals"]), expect, "{s}");
        let summed: Vec<i64> = (0..SUMS.len())
            .map(|i| items.iter().map(|d| sums(d)[i]).sum())
            .collect();
        assert_eq!(summed, expect, "the days add up to the totals");

        // The CSV holds the same days and totals.
        let rows = csv_rows(
            &app,
            &owner.access_token,
            &format!("/api/merchants/{merchant}/settlements.csv?{range}"),
        )
        .await;
        assert_eq!(rows.len(), 3, "two days and the total: {rows:?}");
        for (row, day) in rows.iter().zip(items) {
            assert_eq!(row[0], day["date"].as_str().unwrap());
            assert_eq!(cells(row, 1), sums(day));
            assert_eq!(csv_source(row, 1), source(day));
        }
        assert_eq!(rows[2][0], "total");
        assert_eq!(cells(&rows[2], 1), expect);
        // Nothing reconciled: every fee is the estimate.
        assert_eq!(csv_source(&rows[2], 1), (0, 0, "estimate".to_string()));
        assert_eq!(source(&s["totals"]), (0, 0, "estimate".to_string()));
    }

    // The admin's view of each day, one merchant a page; the two days together give the
    // same figures per merchant, and each day's totals are the sum of its merchants.
    let admin = admin_token(&app).await;
    let mut per_merchant: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut day_totals = vec![0; SUMS.len()];
    let mut csv_totals = vec![0; SUMS.len()];
    for day in [yesterday, today] {
        let mut cursor = String::new();
        let mut pages = 0;
        let mut page_sum = vec![0; SUMS.len()];
        let totals = loop {
            let page = json(
                &app,
                &admin,
                &format!("/api/admin/settlements?date={day}&limit=1&cursor={cursor}"),
            )
            .await;
            pages += 1;
            assert_eq!(page["date"], day.to_string());
            for m in page["items"].as_array().unwrap() {
                let id = m["merchant_id"].as_str().unwrap().to_string();
                let name = m["merchant_name"].as_str().unwrap();
                assert_eq!(
                    name,
                    if id == a {
                        "m-settle-a shop"
                    } else {
                        "m-settle-b shop"
                    }
                );
                let v = sums(m);
                for (i, x) in v.iter().enumerate() {
                    page_sum[i] += x;
                }
                let e = per_merchant.entry(id).or_insert(vec![0; SUMS.len()]);
                for (i, x) in v.iter().enumerate() {
                    e[i] += x;
                }
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = c.to_string(),
                None => break page["totals"].clone(),
            }
        };
        assert!(pages <= 3, "one merchant a page");
        assert_eq!(sums(&totals), page_sum, "{day}: totals over every page");
        for (i, x) in page_sum.iter().enumerate() {
            day_totals[i] += x;
        }

        let rows = csv_rows(
            &app,
            &admin,
            &format!("/api/admin/settlements.csv?date={day}"),
        )
        .await;
        let (total, merchants) = rows.split_last().unwrap();
        assert_eq!(total[1], "total");
        assert_eq!(
            cells(total, 3),
            page_sum,
            "{day}: the CSV's total is the JSON's"
        );
        assert_eq!(csv_source(total, 3), source(&totals));
        let listed: Vec<i64> = (0..SUMS.len())
            .map(|i| merchants.iter().map(|r| cells(r, 3)[i]).sum())
            .collect();
        assert_eq!(listed, page_sum);
        for (i, x) in cells(total, 3).iter().enumerate() {
            csv_totals[i] += x;
        }
    }
    assert_eq!(per_merchant[&a], expect_a);
    assert_eq!(per_merchant[&b], expect_b);
    let both: Vec<i64> = (0..SUMS.len()).map(|i| expect_a[i] + expect_b[i]).collect();
    assert_eq!(day_totals, both);
    assert_eq!(csv_totals, both);
}

#[actix_web::test]
async fn another_owner_sees_nothing_of_a_merchants_settlement() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-settle-own").await;
    let (rival, rival_merchant) = approved_merchant(&app, "m-settle-rival").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-settle-own").await;
    paid(&app, &shopper, &code, 1_000, false).await;

    for path in [
        format!("/api/merchants/{merchant}/settlements"),
        format!("/api/merchants/{merchant}/settlements.csv"),
    ] {
        for token in [&rival.access_token, &shopper.access_token] {
            let res = get_auth(&app, token, &path).await;
            assert_eq!(res.status(), 404, "{path}");
            assert_eq!(error_body(res).await["code"], "MERCHANT_NOT_FOUND");
        }
        let res = app.get(&path).await;
        assert_eq!(res.status(), 401, "{path}");
    }
    // The rival's own settlement holds none of it.
    let s = json(
        &app,
        &rival.access_token,
        &format!("/api/merchants/{rival_merchant}/settlements"),
    )
    .await;
    assert_eq!(s["totals"]["order_count"], 0, "{s}");
    assert_eq!(s["totals"]["gross_fen"], 0, "{s}");
    assert_eq!(
        s["items"].as_array().unwrap().len(),
        7,
        "the last 7 days by default"
    );
    // The admin routes are for admins only.
    for path in [
        "/api/admin/settlements?date=2026-12-07",
        "/api/admin/settlements.csv?date=2026-12-07",
    ] {
        let res = get_auth(&app, &owner.access_token, path).await;
        assert_eq!(res.status(), 403, "{path}");
    }
}

#[actix_web::test]
async fn bad_settlement_queries_are_refused() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-settle-bad").await;
    let admin = admin_token(&app).await;
    let base = format!("/api/merchants/{merchant}/settlements");
    let mut cases: Vec<(String, &str)> = Vec::new();
    for route in [base.clone(), format!("{base}.csv")] {
        for q in [
            "from=2026-12-08&to=2026-12-07",
            "from=2026-01-01&to=2026-12-07",
            "from=2026-09-06&to=2026-12-07",
            "from=2026-13-01&to=2026-12-07",
            "from=yesterday",
            "from=0001-01-01&to=0001-01-02",
            "to=2026-12-07&merchant=other",
        ] {
            cases.push((format!("{route}?{q}"), &owner.access_token));
        }
    }
    for route in ["/api/admin/settlements", "/api/admin/settlements.csv"] {
        for q in [
            "",
            "?date=",
            "?date=2026-02-30",
            "?date=07-12-2026",
            "?date=2026-12-07&x=1",
        ] {
            cases.push((format!("{route}{q}"), &admin));
        }
    }
    cases.push((
        "/api/admin/settlements?date=2026-12-07&limit=0".into(),
        &admin,
    ));
    cases.push((
        "/api/admin/settlements?date=2026-12-07&limit=101".into(),
        &admin,
    ));
    for (path, token) in cases {
        let res = get_auth(&app, token, &path).await;
        assert_eq!(res.status(), 400, "{path}");
        assert_eq!(error_body(res).await["code"], "INVALID_QUERY", "{path}");
    }
    // The admin's day at the ends of the calendar a database holds, and beyond them.
    for route in ["/api/admin/settlements", "/api/admin/settlements.csv"] {
        for date in ["9999-12-31", "+262142-12-25", "-262143-01-01", "0001-01-01"] {
            let res = get_auth(&app, &admin, &format!("{route}?date={date}")).await;
            assert_eq!(res.status(), 400, "{route}?date={date}");
            assert_eq!(error_body(res).await["code"], "INVALID_QUERY");
        }
        for date in ["9999-12-30", "1970-01-01"] {
            let res = get_auth(&app, &admin, &format!("{route}?date={date}")).await;
            assert_eq!(res.status(), 200, "{route}?date={date}");
        }
    }
    // 92 days is the most one request covers.
    let s = json(
        &app,
        &owner.access_token,
        &format!("{base}?from=2026-09-07&to=2026-12-07"),
    )
    .await;
    assert_eq!(s["items"].as_array().unwrap().len(), 92);
}

/// Today's settlement of one merchant (one day) as JSON.
async fn today(app: &TestApp, owner: &Session, merchant: &str) -> Value {
    let day = points_app::domain::cst_day(Utc::now());
    let s = json(
        app,
        &owner.access_token,
        &format!("/api/merchants/{merchant}/settlements?from={day}&to={day}"),
    )
    .await;
    s["items"][0].clone()
}

async fn reconcile_today(app: &TestApp, admin: &str) -> Value {
    let day = points_app::domain::cst_day(Utc::now());
    let res = app
        .client
        .post(app.url("/api/admin/reconciliation/runs"))
        .bearer_auth(admin)
        .json(&serde_json::json!({ "date": day.to_string() }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let run: Value = res.json().await.unwrap();
    assert_eq!(run["status"], "succeeded", "{run}");
    run
}

#[derive(diesel::QueryableByName, Debug, PartialEq, Eq)]
struct StoredFee {
    #[diesel(sql_type = diesel::sql_types::Text)]
    ref_no: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    fee: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    recorded: String,
}

/// Every recorded bill fee, orders then refunds, with when it was recorded.
async fn stored_fees(app: &TestApp) -> Vec<StoredFee> {
    use diesel_async::RunQueryDsl;
    let mut conn = app.state.app.db().conn().await.unwrap();
    points_app::with_conn!(&mut conn, |c| {
        diesel::sql_query(
            "SELECT order_no AS ref_no, fee_fen AS fee, CAST(recorded_at AS CHAR) AS recorded \
             FROM bill_order_fees \
             UNION ALL SELECT out_refund_no, fee_returned_fen, CAST(recorded_at AS CHAR) \
             FROM bill_refund_fees ORDER BY ref_no",
        )
        .load(c)
        .await
    })
    .unwrap()
}

/// WeChat's fee on each of today's bill rows, by order number (payments) and refund number
/// (refunds, negative: the fee returned), as the bill itself says.
async fn bill_fees(app: &TestApp) -> (BTreeMap<String, i64>, BTreeMap<String, i64>) {
    let day = points_app::domain::cst_day(Utc::now());
    let client = &app.state.wechat.client;
    let location = client.trade_bill(day).await.unwrap();
    let bill = client.download_trade_bill(&location).await.unwrap();
    let mut orders = BTreeMap::new();
    let mut refunds = BTreeMap::new();
    for row in bill.rows {
        match row.out_refund_no {
            Some(no) => refunds.insert(no, row.fee_fen),
            None => orders.insert(row.out_trade_no, row.fee_fen),
        };
    }
    (orders, refunds)
}

/// The sandbox's bill charges 0.38% where the server estimates 0.6%: before reconciliation
/// the fee is the estimate; after it, WeChat's fee from the bill (orders and refunds), with
/// net = gross - refunds - fee + fee returned; a second run changes nothing; an order paid
/// after the run is estimated beside the billed ones (mixed), in JSON and both CSVs.
#[actix_web::test]
async fn settlement_takes_the_fee_from_the_reconciled_bill_and_estimates_the_rest() {
    let app = app().await;
    let res = app
        .client
        .post(format!("{}/sandbox/fee-rate", sandbox(&app)))
        .json(&serde_json::json!({ "rate_bp": 38 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (owner_a, a) = approved_merchant(&app, "m-fee-a").await;
    let (owner_b, b) = approved_merchant(&app, "m-fee-b").await;
    let code_a = payment_code(&app, &owner_a, &a, None).await;
    let code_b = payment_code(&app, &owner_b, &b, None).await;
    let shopper = login(&app, "shopper-fee").await;

    let mut orders_a = vec![
        paid(&app, &shopper, &code_a, 750, false).await,
        paid(&app, &shopper, &code_a, 84, false).await,
    ];
    let big_a = paid(&app, &shopper, &code_a, 12_345, true).await;
    orders_a.push(big_a.clone());
    let big_b = paid(&app, &shopper, &code_b, 10_000, true).await;
    refunded(&app, &owner_a, &a, &shopper, &big_a, 5_000, 5_000).await;
    refunded(&app, &owner_b, &b, &shopper, &big_b, 3_333, 3_333).await;
    refunded(&app, &owner_b, &b, &shopper, &big_b, 6_667, 10_000).await;

    // Before any reconciliation: the estimate at 0.6% (as in the test above).
    let before_a = today(&app, &owner_a, &a).await;
    assert_eq!(
        sums(&before_a),
        [3, 13_179, 1, 5_000, 80, 30, 13_179 - 5_000 - 80 + 30]
    );
    assert_eq!(source(&before_a), (0, 0, "estimate".to_string()));
    let before_b = today(&app, &owner_b, &b).await;
    assert_eq!(sums(&before_b), [1, 10_000, 2, 10_000, 60, 60, -60 + 60]);

    let admin = admin_token(&app).await;
    reconcile_today(&app, &admin).await;
    let (bill_orders, bill_refunds) = bill_fees(&app).await;
    // The bill's own fee at 0.38%, per row rounded half up: 750 -> 2.85 -> 3; 84 -> 0.3192
    // -> 0; 12345 -> 46.911 -> 47; 10000 -> 38. Returned: 5000 -> 19; 3333 -> 12.67 -> 13;
    // 6667 -> 25.33 -> 25.
    let bill_fee_a: i64 = orders_a.iter().map(|no| bill_orders[no]).sum();
    assert_eq!(bill_fee_a, 50);
    assert_eq!(bill_orders[&big_b], 38);
    let mut returned: Vec<i64> = bill_refunds.values().map(|f| -f).collect();
    returned.sort();
    assert_eq!(returned, [13, 19, 25]);

    let after_a = today(&app, &owner_a, &a).await;
    assert_eq!(
        sums(&after_a),
        [3, 13_179, 1, 5_000, 50, 19, 13_179 - 5_000 - 50 + 19]
    );
    assert_eq!(
        after_a["fee_fen"].as_i64().unwrap() - after_a["fee_refund_fen"].as_i64().unwrap(),
        bill_fee_a - 19,
        "the bill's fee column for A's rows, less the fee returned"
    );
    assert_eq!(source(&after_a), (3, 1, "bill".to_string()));
    let after_b = today(&app, &owner_b, &b).await;
    assert_eq!(sums(&after_b), [1, 10_000, 2, 10_000, 38, 38, 0]);
    assert_eq!(source(&after_b), (1, 2, "bill".to_string()));
    let net = |v: &Value| {
        v["gross_fen"].as_i64().unwrap()
            - v["refund_fen"].as_i64().unwrap()
            - v["fee_fen"].as_i64().unwrap()
            + v["fee_refund_fen"].as_i64().unwrap()
    };
    assert_eq!(after_a["net_fen"].as_i64().unwrap(), net(&after_a));

    // A second run of the day changes nothing, not even when the fees were recorded.
    let stored = stored_fees(&app).await;
    assert_eq!(stored.len(), 4 + 3, "{stored:?}");
    reconcile_today(&app, &admin).await;
    assert_eq!(stored_fees(&app).await, stored);
    assert_eq!(today(&app, &owner_a, &a).await, after_a);
    assert_eq!(today(&app, &owner_b, &b).await, after_b);

    // An order paid after the run is not on the bill yet: estimated (1000 at 0.6% = 6)
    // beside the three billed ones.
    paid(&app, &shopper, &code_a, 1_000, false).await;
    let mixed = today(&app, &owner_a, &a).await;
    assert_eq!(
        sums(&mixed),
        [4, 14_179, 1, 5_000, 56, 19, 14_179 - 5_000 - 56 + 19]
    );
    assert_eq!(source(&mixed), (3, 1, "mixed".to_string()));

    // The merchant's CSV and the admin's day (JSON and CSV) say the same.
    let day = points_app::domain::cst_day(Utc::now());
    let rows = csv_rows(
        &app,
        &owner_a.access_token,
        &format!("/api/merchants/{a}/settlements.csv?from={day}&to={day}"),
    )
    .await;
    assert_eq!(cells(&rows[0], 1), sums(&mixed));
    assert_eq!(csv_source(&rows[0], 1), (3, 1, "mixed".to_string()));
    assert_eq!(
        csv_source(&rows[1], 1),
        (3, 1, "mixed".to_string()),
        "total"
    );
    let page = json(&app, &admin, &format!("/api/admin/settlements?date={day}")).await;
    let items = page["items"].as_array().unwrap();
    let of = |id: &str| items.iter().find(|m| m["merchant_id"] == id).unwrap();
    assert_eq!(sums(of(&a)), sums(&mixed));
    assert_eq!(source(of(&a)), (3, 1, "mixed".to_string()));
    assert_eq!(source(of(&b)), (1, 2, "bill".to_string()));
    assert_eq!(source(&page["totals"]), (4, 3, "mixed".to_string()));
    let rows = csv_rows(
        &app,
        &admin,
        &format!("/api/admin/settlements.csv?date={day}"),
    )
    .await;
    let line = |id: &str| rows.iter().find(|r| r[1] == id).unwrap();
    assert_eq!(csv_source(line(&a), 3), (3, 1, "mixed".to_string()));
    assert_eq!(csv_source(line(&b), 3), (1, 2, "bill".to_string()));
    assert_eq!(csv_source(line("total"), 3), (4, 3, "mixed".to_string()));
    assert_eq!(cells(line("total"), 3), sums(&page["totals"]));
}
