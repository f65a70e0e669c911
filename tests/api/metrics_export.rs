//! The dashboards and alert rules read only what the server really exports: after one full
//! payment flow (scan, pay, points, refund with clawback) the `/metrics` answer is checked
//! against the names used by every Grafana query and alert rule, and against the types
//! `docs/metrics.md` gives them. The names are extracted here exactly as
//! `dashboards/check_ops.py --list-used` extracts them (a port of its `used_metrics`), so
//! the test needs neither Python nor PyYAML.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;
use serde_json::{Value, json};

use crate::cache::scrape;
use crate::identity::{approved_merchant, login, signed};
use crate::payments::{app, balance, paid_order, payment_code, sandbox};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `# TYPE name type` lines of a Prometheus text answer.
fn exported_types(metrics: &str) -> BTreeMap<String, String> {
    metrics
        .lines()
        .filter_map(|l| {
            let mut parts = l.strip_prefix("# TYPE ")?.split_whitespace();
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect()
}

/// `| \`name\` | type |` rows of docs/metrics.md (check_ops.py's `load_catalogue`).
fn catalogue_types() -> BTreeMap<String, String> {
    static ROW: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|\s*(counter|gauge|histogram|summary)\s*\|",
        )
        .unwrap()
    });
    let md = std::fs::read_to_string(root().join("docs/metrics.md")).expect("docs/metrics.md");
    md.lines()
        .filter_map(|l| {
            let c = ROW.captures(l)?;
            Some((c[1].to_string(), c[2].to_string()))
        })
        .collect()
}

/// PromQL words that look like identifiers but are not series names (`PROMQL_WORDS`).
const PROMQL_WORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "and",
    "or",
    "unless",
    "atan2",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
];

/// Python's `\w` on a `str`: a letter or digit of any script, or `_`.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Series names referenced by a PromQL expression: check_ops.py's `metric_names`, the same
/// substitutions and then its `(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?` scan (by
/// hand: the regex crate has no look-behind), skipping function calls and PromQL words.
fn metric_names(expr: &str) -> BTreeSet<String> {
    static SUBS: LazyLock<Vec<(Regex, &str)>> = LazyLock::new(|| {
        [
            (r#""(?:[^"\\]|\\.)*""#, "\"\""), // string literals
            (r"\{[^{}]*\}", " "),             // label matchers
            (r"\[[^\]]*\]", " "),             // range and subquery selectors
            (
                r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)",
                " ",
            ),
            (r"\boffset\s+\S+", " "),
        ]
        .into_iter()
        .map(|(re, with)| (Regex::new(re).unwrap(), with))
        .collect()
    });
    let mut s = expr.to_string();
    for (re, with) in SUBS.iter() {
        s = re.replace_all(&s, *with).into_owned();
    }
    let cs: Vec<char> = s.chars().collect();
    let start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let rest = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    // `\b` at position e: exactly one side of it is a word character.
    let boundary = |e: usize| is_word(cs[e - 1]) != cs.get(e).is_some_and(|c| is_word(*c));
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < cs.len() {
        let free = i == 0 || !(is_word(cs[i - 1]) || cs[i - 1] == '$' || cs[i - 1] == '.');
        if !free || !start(cs[i]) {
            i += 1;
            continue;
        }
        let mut longest = i + 1;
        while longest < cs.len() && rest(cs[longest]) {
            longest += 1;
        }
        // Greedy, then back off until the name ends on a word boundary.
        let Some(end) = (i + 1..=longest).rev().find(|&e| boundary(e)) else {
            i += 1;
            continue;
        };
        let mut j = end;
        while j < cs.len() && cs[j].is_whitespace() {
            j += 1;
        }
        let call = cs.get(j) == Some(&'(');
        let word: String = cs[i..end].iter().collect();
        i = if call { j + 1 } else { end };
        if !call && !PROMQL_WORDS.contains(&word.as_str()) {
            names.insert(word);
        }
    }
    names
}

/// The catalogue name a series belongs to (`x_bucket` -> `x` for a histogram), or None.
fn base_name<'a>(name: &'a str, catalogue: &BTreeMap<String, String>) -> Option<&'a str> {
    if catalogue.contains_key(name) {
        return Some(name);
    }
    ["_bucket", "_sum", "_count"]
        .into_iter()
        .find_map(|suffix| {
            let base = name.strip_suffix(suffix)?;
            matches!(
                catalogue.get(base).map(String::as_str),
                Some("histogram" | "summary")
            )
            .then_some(base)
        })
}

/// The files of `dir` whose names end in `suffix`, sorted (a `glob` of `dir/*suffix`).
fn files(dir: &str, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_name()?.to_str()?;
            (name.ends_with(suffix) && !name.starts_with('.')).then_some(path)
        })
        .collect();
    out.sort();
    out
}

/// Every panel, and the panels of rows, depth first (`walk_panels`).
fn walk_panels<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
    for p in panels.as_array().into_iter().flatten() {
        out.push(p);
        walk_panels(&p["panels"], out);
    }
}

/// The PromQL of every dashboard query and annotation (what `check_dashboards` collects).
fn dashboard_expressions() -> Vec<String> {
    let mut exprs = Vec::new();
    for path in files("dashboards/grafana", ".json") {
        let text = std::fs::read_to_string(&path).unwrap();
        let Ok(d) = serde_json::from_str::<Value>(&text) else {
            continue; // check_ops.py reports it (not JSON) and goes on
        };
        let mut panels = Vec::new();
        walk_panels(&d["panels"], &mut panels);
        for p in panels {
            if p["type"] == "row" {
                continue;
            }
            for t in p["targets"].as_array().into_iter().flatten() {
                exprs.push(t["expr"].as_str().unwrap_or("").to_string());
            }
        }
        for a in d["annotations"]["list"].as_array().into_iter().flatten() {
            if let Some(e) = a["expr"].as_str().filter(|e| !e.is_empty()) {
                exprs.push(e.to_string());
            }
        }
    }
    exprs
}

/// Python's `str()` of a YAML scalar.
fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        other => other.to_string(),
    }
}

/// The `expr` of every rule in dashboards/alerts/*.rules.yml (`rule_expressions`).
fn rule_expressions() -> Vec<String> {
    let mut exprs = Vec::new();
    for path in files("dashboards/alerts", ".rules.yml") {
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: Value = serde_norway::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: YAML does not parse: {e}", path.display()));
        for group in doc["groups"].as_array().into_iter().flatten() {
            for rule in group["rules"].as_array().into_iter().flatten() {
                exprs.push(rule.get("expr").map_or(String::new(), python_str));
            }
        }
    }
    exprs
}

/// The catalogue metrics the dashboards and alert rules use (`--list-used`), sorted.
fn used_metrics() -> Vec<String> {
    let catalogue = catalogue_types();
    let mut used = BTreeSet::new();
    for expr in dashboard_expressions().iter().chain(&rule_expressions()) {
        for name in metric_names(expr) {
            if let Some(base) = base_name(&name, &catalogue) {
                used.insert(base.to_string());
            }
        }
    }
    used.into_iter().collect()
}

#[test]
fn metric_names_as_check_ops_py_finds_them() {
    let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"sum by (status) (rate(http_requests_total{job="points", path=~"/api/.*"}[5m])) / ignoring(x) up offset 1h"#
        ),
        ["http_requests_total", "up"]
    );
    assert_eq!(
        names("histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket[$__rate_interval])))"),
        ["a_seconds_bucket"]
    );
    // A recording rule's name; no `$variable`, nothing after a `.`, no number, no keyword.
    assert_eq!(
        names("job:errors:rate5m > bool 0.5 and $instance or x.y unless 1e3 > inf"),
        ["job:errors:rate5m", "x"]
    );
    // A trailing `:` is left off (`\b`), a leading one kept.
    assert_eq!(names("foo: + :bar + a:b:"), [":bar", "a:b", "foo"]);
    // After a `:` inside a word that started after `$`, a new name may start (as in Python).
    assert_eq!(names("$foo:bar"), ["bar"]);
    assert_eq!(names("count (foo) + count(bar)"), ["bar", "foo"]);
}

/// While CI still runs dashboards/check_ops.py, both must find the same names: compared
/// when Python with PyYAML is there, skipped (with a note) when not.
#[test]
fn used_metrics_agree_with_check_ops_py() {
    let out = Command::new("python3")
        .arg(root().join("dashboards/check_ops.py"))
        .arg("--list-used")
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!(
                "skipped: check_ops.py --list-used failed ({})",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("skipped: no python3 ({e})");
            return;
        }
    };
    let python: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    assert_eq!(used_metrics(), python);
}

/// Every used metric missing from `metrics` or exported with another type than the
/// catalogue's.
pub fn problems(metrics: &str, used: &[String]) -> Vec<String> {
    let exported = exported_types(metrics);
    let catalogue = catalogue_types();
    let mut problems = Vec::new();
    for name in used {
        match (exported.get(name), catalogue.get(name)) {
            (None, _) => problems.push(format!(
                "{name} is used by a dashboard or rule but not exported"
            )),
            (Some(e), Some(c)) if e != c => problems.push(format!(
                "{name} is exported as {e}, docs/metrics.md says {c}"
            )),
            (Some(_), None) => problems.push(format!("{name} is not in docs/metrics.md")),
            _ => {}
        }
    }
    problems
}

#[actix_web::test]
async fn every_metric_a_dashboard_or_alert_uses_is_exported() {
    let used = used_metrics();
    assert!(used.len() >= 25, "too few metrics found: {used:?}");

    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-metrics").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-metrics").await;
    let order_no = paid_order(&app, &shopper, &code, 5_000).await;
    let earned = balance(&app, &shopper).await;
    assert!(earned > 0);
    // A refund with its clawback.
    let res = signed(
        &app,
        &owner,
        "POST",
        &format!("/api/merchants/{merchant}/orders/{order_no}/refund"),
        Some(json!({"amount_fen": 5_000, "reason": "returned goods"})),
    )
    .await;
    assert!(res.status().is_success(), "{:?}", res.text().await);
    let refund: Value = res.json().await.unwrap();
    let out_refund_no = refund["out_refund_no"].as_str().expect("out_refund_no");
    let res = app
        .client
        .post(format!(
            "{}/sandbox/refunds/{out_refund_no}/succeed",
            sandbox(&app)
        ))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    for _ in 0..200 {
        if balance(&app, &shopper).await < earned {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(balance(&app, &shopper).await < earned, "clawback applied");
    app.get("/readyz").await;

    let metrics = scrape(&app).await;
    let file = app._data_dir.path().join("metrics.txt");
    std::fs::write(&file, &metrics).unwrap();
    let found = problems(&metrics, &used);
    assert!(
        found.is_empty(),
        "dashboards/rules use metrics the server does not export (scrape in {}):\n{}",
        file.display(),
        found.join("\n")
    );
    // The check is not vacuous: a name the server does not export is reported.
    let fake = vec!["payment_refunds_pending".to_string()];
    assert_eq!(problems(&metrics, &fake).len(), 1);
}

/// Every metric docs/metrics.md lists, and every one a dashboard or alert rule reads, is on a
/// fresh server's first scrape (at 0 where nothing happened yet), so an alert on it never
/// reads "no data" on a quiet instance.
#[actix_web::test]
async fn every_catalogued_metric_is_on_a_fresh_servers_first_scrape() {
    let app = app().await;
    let metrics = scrape(&app).await;
    let exported = exported_types(&metrics);
    let mut wanted: BTreeSet<String> = catalogue_types().into_keys().collect();
    wanted.extend(used_metrics());
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|m| !exported.contains_key(*m))
        .collect();
    assert!(missing.is_empty(), "not on the first scrape: {missing:?}");
}

/// The business gauges are read from the database: shoppers with an order in the last 5
/// minutes and 24 hours, and the 7-day retention cohort (signed up 14 to 7 days ago) with
/// those of them who ordered in the last 7 days; the data directory's disk; refunds by
/// outcome.
#[actix_web::test]
async fn business_gauges_count_active_shoppers_and_the_retention_cohort() {
    use crate::payments::{refund, refund_succeeds};
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-biz").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let mut shoppers = Vec::new();
    for i in 0..4 {
        shoppers.push(login(&app, &format!("shopper-biz-{i}")).await);
    }
    // Shoppers 0..3 order now; 0 and 1 (and an idle user) signed up ten days ago.
    let mut orders = Vec::new();
    for s in &shoppers[..3] {
        orders.push(paid_order(&app, s, &code, 1_000).await);
    }
    let idle = login(&app, "idle-biz").await;
    let ten_days_ago = chrono::Utc::now().naive_utc() - chrono::Duration::days(10);
    use diesel_async::RunQueryDsl;
    let mut conn = app.state.app.db().write_conn().await.unwrap();
    for id in [&shoppers[0].user_id, &shoppers[1].user_id, &idle.user_id] {
        points_app::with_conn!(&mut conn, |c| {
            diesel::sql_query("UPDATE users SET created_at = ? WHERE id = ?")
                .bind::<diesel::sql_types::Timestamp, _>(ten_days_ago)
                .bind::<diesel::sql_types::Text, _>(id.as_str())
                .execute(c)
                .await
        })
        .unwrap();
    }
    drop(conn);
    // One refund that succeeds.
    let r: Value = refund(&app, &owner, &merchant, &orders[0], 500)
        .await
        .json()
        .await
        .unwrap();
    refund_succeeds(&app, r["out_refund_no"].as_str().unwrap()).await;

    let text = scrape(&app).await;
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} missing"))
    };
    assert_eq!(value(r#"business_active_users{window="5m"}"#), 3.0);
    assert_eq!(value(r#"business_active_users{window="24h"}"#), 3.0);
    assert_eq!(value(r#"business_retention_users{group="cohort"}"#), 3.0);
    assert_eq!(value(r#"business_retention_users{group="retained"}"#), 2.0);
    let (free, total) = (
        value(r#"data_dir_bytes{kind="free"}"#),
        value(r#"data_dir_bytes{kind="total"}"#),
    );
    assert!(total > 0.0 && free <= total, "{free} of {total}");
    // Booked when the refund's notification is (asynchronous): asked until it shows.
    let success = r#"refunds_total{result="success"}"#;
    let mut booked = value(success);
    for _ in 0..100 {
        if booked == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        booked = scrape(&app)
            .await
            .lines()
            .find_map(|l| l.strip_prefix(success)?.trim().parse().ok())
            .unwrap_or(0.0);
    }
    assert_eq!(booked, 1.0);
}
