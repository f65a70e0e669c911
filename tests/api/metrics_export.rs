//! The dashboards and alert rules read only what the server really exports: after one full
//! payment flow (scan, pay, points, refund with clawback) the `/metrics` answer is checked
//! against the names `dashboards/check_ops.py --list-used` extracts from every Grafana query
//! and alert rule, and against the types `docs/metrics.md` gives them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cache::scrape;
use crate::identity::{approved_merchant, login, signed};
use crate::payments::{app, balance, paid_order, payment_code, sandbox};

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

/// `| \`name\` | type |` rows of docs/metrics.md.
fn catalogue_types() -> BTreeMap<String, String> {
    let md = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md"))
        .expect("docs/metrics.md");
    md.lines()
        .filter_map(|l| {
            let mut cells = l.split('|').map(str::trim).skip(1);
            let name = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            let kind = cells.next()?;
            ["counter", "gauge", "histogram", "summary"]
                .contains(&kind)
                .then(|| (name.to_string(), kind.to_string()))
        })
        .collect()
}

/// The metrics the dashboards and alert rules use, as check_ops.py finds them (Python 3
/// with PyYAML: `python3`, or the venv `.ci/ops.sh` makes).
fn used_metrics() -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/check_ops.py");
    let venv = std::env::var("OPS_VENV").unwrap_or_else(|_| "/var/tmp/points-ops-venv".into());
    let candidates = ["python3".to_string(), format!("{venv}/bin/python")];
    let mut errors = Vec::new();
    for python in &candidates {
        match Command::new(python)
            .arg(&script)
            .arg("--list-used")
            .output()
        {
            Ok(out) if out.status.success() => {
                return String::from_utf8(out.stdout)
                    .expect("utf-8")
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect();
            }
            Ok(out) => errors.push(format!(
                "{python}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => errors.push(format!("{python}: {e}")),
        }
    }
    panic!(
        "dashboards/check_ops.py --list-used did not run (install python3-yaml): {}",
        errors.join("; ")
    );
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
