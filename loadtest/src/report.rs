//! The report: `report.json` (everything), `report.md` (the summary a person reads),
//! `latency.svg` and `throughput.svg` (hand-written SVG: no plotting dependency needed for
//! two line charts).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::audit::Check;
use crate::cost::CpuCost;
use crate::procmon::Usage;
use crate::stats::Summary;

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub started_at: String,
    pub command: String,
    pub setup: serde_json::Value,
    pub summary: Summary,
    /// Scenario-specific figures (e.g. notifications/s).
    pub figures: BTreeMap<String, f64>,
    pub usage: Usage,
    /// CPU time of each process during the load, and per paid order.
    pub cpu_cost: CpuCost,
    pub audit: Vec<Check>,
    pub audit_ok: bool,
    /// Counters of the servers' /metrics that moved during the run (after - before).
    pub metrics_delta: BTreeMap<String, f64>,
}

/// `name{labels} value` lines of a Prometheus text page.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// Counters that moved, summed over instances; histogram buckets left out (the _sum and
/// _count lines say enough).
pub fn metrics_delta(
    before: &[BTreeMap<String, f64>],
    after: &[BTreeMap<String, f64>],
) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for (i, a) in after.iter().enumerate() {
        let b = before.get(i);
        for (k, v) in a {
            if k.contains("_bucket{") {
                continue;
            }
            let base = k.split('{').next().unwrap_or(k);
            if !(base.ends_with("_total") || base.ends_with("_count") || base.ends_with("_sum")) {
                continue;
            }
            let d = v - b.and_then(|m| m.get(k)).copied().unwrap_or(0.0);
            if d.abs() > 0.0 {
                *out.entry(k.clone()).or_default() += d;
            }
        }
    }
    out
}

/// One line: name, colour, (x, y) points.
type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

fn line_chart(title: &str, y_label: &str, series: &[Series<'_>]) -> String {
    let (w, h, l, r, t, b) = (900.0, 360.0, 70.0, 20.0, 40.0, 50.0);
    let xmax = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let ymax = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.1;
    let sx = |x: f64| l + (w - l - r) * x / xmax;
    let sy = |y: f64| h - b - (h - t - b) * y / ymax;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" font-size="15" text-anchor="middle">{title}</text>
<line x1="{l}" y1="{}" x2="{}" y2="{}" stroke="black"/>
<line x1="{l}" y1="{t}" x2="{l}" y2="{}" stroke="black"/>
<text x="{}" y="{}" text-anchor="middle">seconds since start</text>
<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">{y_label}</text>
"#,
        w / 2.0,
        h - b,
        w - r,
        h - b,
        h - b,
        (l + w - r) / 2.0,
        h - 12.0,
        (t + h - b) / 2.0,
        (t + h - b) / 2.0,
    );
    for i in 0..=5 {
        let y = ymax * f64::from(i) / 5.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{l}" y1="{0}" x2="{1}" y2="{0}" stroke="#ddd"/><text x="{2}" y="{3}" text-anchor="end">{4:.0}</text>"##,
            sy(y),
            w - r,
            l - 6.0,
            sy(y) + 4.0,
            y
        );
        let x = xmax * f64::from(i) / 5.0;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{x:.0}</text>"#,
            sx(x),
            h - b + 16.0
        );
    }
    for (i, (name, color, points)) in series.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
            path.join(" ")
        );
        let ly = t + 4.0 + 16.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<rect x="{}" y="{}" width="12" height="3" fill="{color}"/><text x="{}" y="{}">{name}</text>"#,
            w - r - 160.0,
            ly,
            w - r - 142.0,
            ly + 5.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

pub fn write(dir: &Path, report: &Report) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.json"), serde_json::to_vec_pretty(report)?)?;
    let tl = &report.summary.timeline;
    let lat = line_chart(
        &format!("{}: latency per second (all requests)", report.scenario),
        "ms",
        &[
            (
                "p50",
                "#1f77b4",
                tl.iter().map(|p| (p.second as f64, p.p50_ms)).collect(),
            ),
            (
                "p99",
                "#d62728",
                tl.iter().map(|p| (p.second as f64, p.p99_ms)).collect(),
            ),
        ],
    );
    std::fs::write(dir.join("latency.svg"), lat)?;
    let thr = line_chart(
        &format!("{}: requests per second", report.scenario),
        "requests/s",
        &[
            (
                "requests/s",
                "#2ca02c",
                tl.iter()
                    .map(|p| (p.second as f64, p.requests as f64))
                    .collect(),
            ),
            (
                "errors/s",
                "#d62728",
                tl.iter()
                    .map(|p| (p.second as f64, p.errors as f64))
                    .collect(),
            ),
            (
                "machine CPU % (2 cores=100)",
                "#9467bd",
                report
                    .usage
                    .machine
                    .timeline
                    .iter()
                    .map(|(s, c)| (*s as f64, *c))
                    .collect(),
            ),
        ],
    );
    std::fs::write(dir.join("throughput.svg"), thr)?;
    std::fs::write(dir.join("report.md"), markdown(report))?;
    Ok(())
}

fn markdown(r: &Report) -> String {
    let s = &r.summary;
    let mut md = String::new();
    let _ = writeln!(md, "# Load test: {} ({})\n", r.scenario, r.started_at);
    let _ = writeln!(md, "Command: `{}`\n", r.command);
    let _ = writeln!(
        md,
        "Audit: **{}**. Requests {} ({} errors) in {:.1} s: **{:.0} req/s**; all requests (long-poll waits, steps ending in `_wait`, excluded) p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms.\n",
        if r.audit_ok { "PASS" } else { "FAIL" },
        s.requests,
        s.errors,
        s.elapsed_s,
        s.throughput_per_s,
        s.latency_all.p50_ms,
        s.latency_all.p95_ms,
        s.latency_all.p99_ms,
        s.latency_all.max_ms
    );
    let _ = writeln!(md, "Setup: `{}`\n", r.setup);
    md.push_str(&r.cpu_cost.markdown());
    if !r.figures.is_empty() {
        let _ = writeln!(md, "## Figures\n\n| figure | value |\n| --- | --- |");
        for (k, v) in &r.figures {
            let _ = writeln!(md, "| {k} | {v:.1} |");
        }
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "## Steps\n\n| step | ok | errors | rate/s | p50 ms | p95 ms | p99 ms | max ms |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (name, st) in &s.steps {
        let l = &st.latency;
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            st.ok, st.errors, st.rate_per_s, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
        );
    }
    for (name, l) in &s.delays {
        let _ = writeln!(
            md,
            "| *{name}* | {} | | | {:.1} | {:.1} | {:.1} | {:.1} |",
            l.count, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
        );
    }
    let _ = writeln!(md, "\n## Errors by kind\n");
    if s.errors_by_kind.is_empty() {
        let _ = writeln!(md, "None.");
    } else {
        let _ = writeln!(
            md,
            "| step: kind | count | first sample |\n| --- | ---: | --- |"
        );
        for (k, n) in &s.errors_by_kind {
            let sample = s
                .error_samples
                .get(k)
                .cloned()
                .unwrap_or_default()
                .replace('|', "/")
                .replace('\n', " ");
            let _ = writeln!(md, "| {k} | {n} | {sample} |");
        }
    }
    let _ = writeln!(
        md,
        "\n## Resources ({} cores)\n\nMachine CPU: avg {:.0}%, max {:.0}% of all cores.\n\n| process | CPU avg % of one core | CPU max % | RSS max MiB | RSS end MiB |\n| --- | ---: | ---: | ---: | ---: |",
        r.usage.cores, r.usage.machine.cpu_avg_pct, r.usage.machine.cpu_max_pct
    );
    for (name, p) in &r.usage.processes {
        let _ = writeln!(
            md,
            "| {name} | {:.0} | {:.0} | {:.0} | {:.0} |",
            p.cpu_avg_pct, p.cpu_max_pct, p.rss_max_mib, p.rss_last_mib
        );
    }
    let _ = writeln!(
        md,
        "\n## Audit\n\n| check | result | checked | problems (first) |\n| --- | --- | --- | --- |"
    );
    for c in &r.audit {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            c.name,
            if c.ok { "pass" } else { "**FAIL**" },
            c.checked,
            if c.ok {
                String::new()
            } else {
                format!(
                    "{}: {}",
                    c.problem_count,
                    c.problems.first().cloned().unwrap_or_default()
                )
            }
        );
    }
    let _ = writeln!(
        md,
        "\n## Server /metrics, change during the run (selected)\n"
    );
    let interesting = [
        "http_requests_total",
        "payments_",
        "points_",
        "wechat_",
        "notifications",
        "ledger",
        "outbox",
    ];
    let mut rows = 0;
    for (k, v) in &r.metrics_delta {
        if interesting.iter().any(|p| k.contains(p)) && rows < 60 {
            let _ = writeln!(md, "- `{k}`: {v}");
            rows += 1;
        }
    }
    let _ = writeln!(
        md,
        "\n![latency](latency.svg)\n\n![throughput](throughput.svg)"
    );
    md
}
