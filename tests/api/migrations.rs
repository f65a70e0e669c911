//! Both dialects yield the same tables and columns; every migration runs up, down, up.

use std::collections::BTreeSet;

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use points_app::storage::migrate::{self, Direction};
use points_app::with_conn;

use crate::helpers::spawn_app;

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

async fn columns(app: &crate::helpers::TestApp) -> BTreeSet<(String, String)> {
    let mut conn = app.state.app.db().conn().await.unwrap();
    let rows: Vec<Column> = with_conn!(&mut conn, |c| {
        let sql = if app.db.is_mysql() {
            "SELECT CAST(table_name AS CHAR) AS table_name, CAST(column_name AS CHAR) AS column_name \
             FROM information_schema.columns WHERE table_schema = DATABASE()"
        } else {
            "SELECT m.name AS table_name, p.name AS column_name \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'"
        };
        diesel::sql_query(sql).load(c).await
    })
    .unwrap();
    rows.into_iter()
        .map(|c| (c.table_name, c.column_name))
        .filter(|(t, _)| t != "__diesel_schema_migrations")
        .collect()
}

/// The tables every part of the system relies on.
const TABLES: &[&str] = &[
    "users",
    "merchants",
    "payment_codes",
    "payment_orders",
    "refunds",
    "points_records",
    "user_points",
    "points_rules",
    "outbox",
    "notification_log",
    "admin_users",
    "audit_log",
    "reconciliation_runs",
    "reconciliation_discrepancies",
    "bill_order_fees",
    "bill_refund_fees",
];

#[actix_web::test]
async fn the_schema_is_complete_and_migrations_run_up_down_up() {
    let app = spawn_app().await;
    let before = columns(&app).await;
    let tables: BTreeSet<&str> = before.iter().map(|(t, _)| t.as_str()).collect();
    for t in TABLES {
        assert!(tables.contains(t), "table {t} missing: {tables:?}");
    }
    // Never written, so dropped: merchant takings are summed from the orders.
    assert!(!tables.contains("merchant_daily_stats"), "{tables:?}");
    for (t, c) in [
        ("points_records", "remaining"),
        ("points_records", "expires_at"),
        ("user_points", "version"),
        ("payment_orders", "amount_fen"),
    ] {
        assert!(before.contains(&(t.to_string(), c.to_string())), "{t}.{c}");
    }

    if app.db.is_mysql() {
        let url = app.db.url.clone();
        migrate::migrate_mysql(&url, Direction::DownUp)
            .await
            .unwrap();
    } else {
        let path = app.db.url.trim_start_matches("sqlite://").to_string();
        migrate::migrate_sqlite(&path, Direction::DownUp)
            .await
            .unwrap();
    }
    assert_eq!(
        columns(&app).await,
        before,
        "down then up changed the schema"
    );
}

#[actix_web::test]
async fn mysql_and_sqlite_migrations_define_the_same_columns() {
    // Compares the two dialects' SQL text: the same tables with the same columns.
    fn parse(sql: &str) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        let mut table = None;
        for line in sql.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
                table = rest.split_whitespace().next().map(str::to_string);
            } else if line.starts_with(')') {
                table = None;
            } else if let Some(t) = &table {
                let word = line.split_whitespace().next().unwrap_or("");
                let keyword = ["PRIMARY", "UNIQUE", "KEY", "CONSTRAINT", "INDEX"];
                if !word.is_empty() && !keyword.contains(&word) {
                    out.insert((t.clone(), word.to_string()));
                }
            }
        }
        out
    }
    let root = env!("CARGO_MANIFEST_DIR");
    for entry in std::fs::read_dir(format!("{root}/migrations/mysql")).unwrap() {
        let dir = entry.unwrap().file_name();
        for file in ["up.sql", "down.sql"] {
            let my = std::fs::read_to_string(format!(
                "{root}/migrations/mysql/{}/{file}",
                dir.to_string_lossy()
            ))
            .unwrap();
            let lite = std::fs::read_to_string(format!(
                "{root}/migrations/sqlite/{}/{file}",
                dir.to_string_lossy()
            ))
            .unwrap_or_else(|_| panic!("sqlite twin of {dir:?}/{file} missing"));
            assert_eq!(parse(&my), parse(&lite), "{dir:?}/{file}");
        }
    }
}
