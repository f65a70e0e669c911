use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use points_app::actors::points::{
    AwardPoints, DeductPoints, PointsChange, PointsConfig, PointsError, PointsService,
};
use points_app::domain::{Clock, Fen, Points, SystemClock};
use points_app::storage::Db;
use points_app::storage::schema::points_records;
use points_app::telemetry::Metrics;

#[path = "../common/mod.rs"]
mod common;
pub use common::TestDatabase;

/// One engine ("instance") over a test database.
pub struct Engine {
    pub svc: PointsService,
    pub db: Db,
    pub metrics: Metrics,
    _dir: tempfile::TempDir,
}

pub async fn engine(tdb: &TestDatabase) -> Engine {
    engine_with(tdb, Arc::new(SystemClock), |_| {}).await
}

pub async fn engine_with(
    tdb: &TestDatabase,
    clock: Arc<dyn Clock>,
    tweak: impl FnOnce(&mut PointsConfig),
) -> Engine {
    if std::env::var("TEST_LOG").is_ok() {
        points_app::telemetry::init_subscriber("pretty");
    }
    let dir = tempfile::tempdir().expect("data dir");
    let settings = common::test_settings(tdb, dir.path());
    let db = Db::connect(&settings).await.expect("database");
    let mut config = PointsConfig::from_settings(&settings);
    config.sweep_interval = None;
    config.idle = Duration::from_secs(60);
    tweak(&mut config);
    let metrics = Metrics::new().expect("metrics");
    let svc = PointsService::start(db.clone(), config, &metrics, clock).expect("points engine");
    Engine {
        svc,
        db,
        metrics,
        _dir: dir,
    }
}

pub fn award(order: &str, fen: i64) -> AwardPoints {
    AwardPoints {
        order_no: order.to_string(),
        amount: Fen::parse(fen).expect("fen"),
        description: format!("order {order}"),
        outbox_id: None,
    }
}

pub fn deduct(key: &str, points: i64) -> DeductPoints {
    DeductPoints {
        points: Points::parse(points).expect("points"),
        idempotency_key: key.to_string(),
        reason: "spend".to_string(),
    }
}

pub fn pts(v: i64) -> Points {
    Points::parse(v).expect("points")
}

pub fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("time")
}

pub async fn ledger_rows(db: &Db, user: &str) -> i64 {
    let mut conn = db.conn().await.expect("conn");
    points_app::with_conn!(&mut conn, |c| {
        points_records::table
            .filter(points_records::user_id.eq(user))
            .count()
            .get_result::<i64>(c)
            .await
    })
    .expect("count")
}

pub async fn assert_audit(svc: &PointsService, user: &str) {
    let report = svc.audit(user).await.expect("audit");
    assert!(report.ok, "{report:#?}");
}

pub fn ok(r: Result<PointsChange, PointsError>) -> PointsChange {
    r.expect("points change")
}
