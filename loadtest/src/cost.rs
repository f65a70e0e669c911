//! What the measured load cost in CPU: utime + stime of every process under test (from
//! `/proc/<pid>/stat`) read just before the load starts and just after it ends, divided by
//! the paid orders of the run. Accounting never fails the run: a process that is gone, was
//! restarted in between or cannot be read is reported as n/a.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use serde::Serialize;

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 if that fails).
pub fn clk_tck() -> u64 {
    static TCK: OnceLock<u64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
}

/// utime + stime of a process, in ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command may contain spaces and parentheses: fields start after the last ')'.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // state is [0]; utime [11] and stime [12] (fields 14 and 15 of proc(5)).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn loadavg() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let parts: Vec<&str> = text.split_whitespace().take(3).collect();
    (parts.len() == 3).then(|| parts.join(" "))
}

/// The name -> pid of every `*.pid` file in `pid_dir` (run.sh's: server1.., sandbox, redis,
/// mariadb, proxy), plus the load generator itself.
fn pids(pid_dir: Option<&Path>) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    out.insert(GENERATOR.to_string(), std::process::id());
    let Some(entries) = pid_dir.and_then(|d| std::fs::read_dir(d).ok()) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("pid") {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if let Some(pid) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            out.insert(name.to_string(), pid);
        }
    }
    out
}

const GENERATOR: &str = "loadtest (generator)";

/// CPU ticks of every watched process at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    at: std::time::Instant,
    /// name -> (pid, ticks; None when the process could not be read).
    procs: BTreeMap<String, (u32, Option<u64>)>,
    loadavg: Option<String>,
}

pub fn snapshot(pid_dir: Option<&Path>) -> Snapshot {
    let procs = pids(pid_dir)
        .into_iter()
        .map(|(name, pid)| (name, (pid, cpu_ticks(pid))))
        .collect();
    Snapshot {
        at: std::time::Instant::now(),
        procs,
        loadavg: loadavg(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcCost {
    pub name: String,
    /// The pid at the end of the load (for a sum: none).
    pub pid: Option<u32>,
    /// CPU time used during the load; None = n/a (see `note`).
    pub cpu_ms: Option<f64>,
    pub cpu_ms_per_paid_order: Option<f64>,
    pub note: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuCost {
    /// From just before the scenario's first request to just after its end.
    pub window_seconds: f64,
    pub clk_tck: u64,
    /// The divisor: paid orders the clients saw through (the `client_paid_orders` figure).
    pub paid_orders: u64,
    /// Orders paid (or refunded since) in the run's database after the run, for comparison.
    pub paid_orders_in_db: Option<i64>,
    pub processes: Vec<ProcCost>,
    /// 1, 5 and 15 minute load averages of the machine (/proc/loadavg).
    pub loadavg_start: Option<String>,
    pub loadavg_end: Option<String>,
}

fn per_order(ms: Option<f64>, paid: u64) -> Option<f64> {
    ms.filter(|_| paid > 0).map(|m| m / paid as f64)
}

/// Sort key: servers first (server1, server2, ...), then the rest in a fixed order.
fn rank(name: &str) -> (u32, u32) {
    if let Some(n) = name.strip_prefix("server").and_then(|n| n.parse().ok()) {
        return (0, n);
    }
    let fixed = ["proxy", "sandbox", "mariadb", "redis", GENERATOR];
    (
        1,
        fixed
            .iter()
            .position(|f| *f == name)
            .map_or(fixed.len() as u32, |p| p as u32),
    )
}

/// The cost of the window between two snapshots. `mariadb_used` / `redis_used`: whether
/// the run uses them (so a missing pid file means "not used" rather than "not found").
pub fn compute(
    start: &Snapshot,
    end: &Snapshot,
    paid_orders: u64,
    paid_orders_in_db: Option<i64>,
    mariadb_used: bool,
    redis_used: bool,
) -> CpuCost {
    let tck = clk_tck();
    let ms = |ticks: u64| ticks as f64 * 1000.0 / tck as f64;
    let mut names: Vec<String> = start
        .procs
        .keys()
        .chain(end.procs.keys())
        .cloned()
        .collect();
    // Always a line for the database and Redis, n/a when the run has none.
    names.extend(["mariadb".to_string(), "redis".to_string()]);
    names.sort_by_key(|n| (rank(n), n.clone()));
    names.dedup();
    let mut processes = Vec::new();
    let mut servers = (0u32, 0u32, 0.0f64); // (instances, measured, ms)
    for name in &names {
        let s = start.procs.get(name);
        let e = end.procs.get(name);
        let (cpu, note) = match (s, e) {
            (Some((sp, Some(st))), Some((ep, Some(et)))) if sp == ep && et >= st => {
                (Some(ms(et - st)), String::new())
            }
            (Some((sp, _)), Some((ep, _))) if sp != ep => (
                None,
                format!("n/a: restarted during the load (pid {sp} -> {ep})"),
            ),
            (Some((sp, _)), Some(_)) => (None, format!("n/a: pid {sp} gone or unreadable")),
            (None, None) if name == "mariadb" && !mariadb_used => {
                (None, "n/a: SQLite run".to_string())
            }
            (None, None) if name == "redis" && !redis_used => {
                (None, "n/a: run without Redis".to_string())
            }
            (None, None) => (None, "n/a: no pid found".to_string()),
            (None, Some(_)) => (None, "n/a: started during the load".to_string()),
            (Some((sp, _)), None) => (None, format!("n/a: pid {sp} gone at the end")),
        };
        let note = if name == "mariadb" && cpu.is_some() {
            "the system MariaDB: shared with anything else using it".to_string()
        } else {
            note
        };
        if rank(name).0 == 0 {
            servers.0 += 1;
            if let Some(c) = cpu {
                servers.1 += 1;
                servers.2 += c;
            }
        }
        processes.push(ProcCost {
            name: name.clone(),
            pid: e.or(s).map(|(p, _)| *p),
            cpu_ms: cpu,
            cpu_ms_per_paid_order: per_order(cpu, paid_orders),
            note,
        });
    }
    let (instances, measured, sum) = servers;
    let (total, note) = if instances == 0 {
        (None, "n/a: no server pid found".to_string())
    } else if measured == instances {
        (Some(sum), format!("{instances} instance(s)"))
    } else if measured > 0 {
        (
            Some(sum),
            format!("partial: {measured} of {instances} instances measured"),
        )
    } else {
        (None, format!("n/a: none of {instances} instances measured"))
    };
    processes.insert(
        instances as usize,
        ProcCost {
            name: "servers (sum)".into(),
            pid: None,
            cpu_ms: total,
            cpu_ms_per_paid_order: per_order(total, paid_orders),
            note,
        },
    );
    CpuCost {
        window_seconds: end.at.duration_since(start.at).as_secs_f64(),
        clk_tck: tck,
        paid_orders,
        paid_orders_in_db,
        processes,
        loadavg_start: start.loadavg.clone(),
        loadavg_end: end.loadavg.clone(),
    }
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.digits$}"))
}

impl CpuCost {
    /// The plain-text block `loadtest run` prints and run.sh repeats at its end.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "CPU during the load ({:.1} s, {} paid orders{}, CLK_TCK {}):",
            self.window_seconds,
            self.paid_orders,
            self.paid_orders_in_db
                .map_or(String::new(), |n| format!("; {n} paid in the database")),
            self.clk_tck
        );
        for p in &self.processes {
            let ms = |v: Option<f64>, digits: usize, unit: &str| {
                v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.digits$} {unit}"))
            };
            let line = format!(
                "  {:<22} {:>10} {:>10} {:>22}  {}",
                p.name,
                p.pid.map_or(String::new(), |p| format!("pid {p}")),
                ms(p.cpu_ms, 0, "ms"),
                ms(p.cpu_ms_per_paid_order, 2, "ms/paid order"),
                p.note
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
        let _ = writeln!(
            out,
            "  load average (1/5/15 min): start {}, end {}",
            self.loadavg_start.as_deref().unwrap_or("n/a"),
            self.loadavg_end.as_deref().unwrap_or("n/a")
        );
        out
    }

    /// The report.md section.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "## CPU per paid order\n\nCPU time (utime + stime from `/proc/<pid>/stat`, CLK_TCK {}) used by each process from just before the load started to just after it ended ({:.1} s), divided by the {} paid orders the clients saw{}. Load average (1/5/15 min): start {}, end {}.\n",
            self.clk_tck,
            self.window_seconds,
            self.paid_orders,
            self.paid_orders_in_db
                .map_or(String::new(), |n| format!(" ({n} paid in the database)")),
            self.loadavg_start.as_deref().unwrap_or("n/a"),
            self.loadavg_end.as_deref().unwrap_or("n/a")
        );
        let _ = writeln!(
            md,
            "| process | pid | CPU ms | CPU ms per paid order | note |\n| --- | ---: | ---: | ---: | --- |"
        );
        for p in &self.processes {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                p.name,
                p.pid.map_or(String::new(), |p| p.to_string()),
                fmt_opt(p.cpu_ms, 0),
                fmt_opt(p.cpu_ms_per_paid_order, 2),
                p.note
            );
        }
        md.push('\n');
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(procs: &[(&str, u32, Option<u64>)]) -> Snapshot {
        Snapshot {
            at: std::time::Instant::now(),
            procs: procs
                .iter()
                .map(|(n, p, t)| (n.to_string(), (*p, *t)))
                .collect(),
            loadavg: Some("0.10 0.20 0.30".into()),
        }
    }

    #[test]
    fn per_process_and_sum_and_na() {
        let tck = clk_tck() as f64;
        let start = snap(&[
            ("server1", 10, Some(100)),
            ("server2", 11, Some(100)),
            ("sandbox", 12, Some(5)),
            ("redis", 13, Some(1)),
            (GENERATOR, 14, Some(0)),
        ]);
        let end = snap(&[
            ("server1", 10, Some(300)),
            ("server2", 21, Some(50)),
            ("sandbox", 12, None),
            ("redis", 13, Some(1 + tck as u64)),
            (GENERATOR, 14, Some(tck as u64)),
        ]);
        let c = compute(&start, &end, 4, Some(5), false, true);
        let names: Vec<&str> = c.processes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "server1",
                "server2",
                "servers (sum)",
                "sandbox",
                "mariadb",
                "redis",
                GENERATOR
            ]
        );
        let p = |n: &str| c.processes.iter().find(|p| p.name == n).unwrap().clone();
        assert_eq!(p("server1").cpu_ms, Some(200.0 * 1000.0 / tck));
        assert!(p("server2").cpu_ms.is_none() && p("server2").note.contains("restarted"));
        assert_eq!(p("servers (sum)").cpu_ms, p("server1").cpu_ms);
        assert!(p("servers (sum)").note.contains("partial"));
        assert!(p("sandbox").cpu_ms.is_none());
        assert_eq!(p("mariadb").note, "n/a: SQLite run");
        assert_eq!(p("redis").cpu_ms, Some(1000.0));
        assert_eq!(p("redis").cpu_ms_per_paid_order, Some(250.0));
        assert_eq!(p(GENERATOR).cpu_ms, Some(1000.0));
        let text = c.text();
        assert!(text.contains("n/a"), "{text}");
        assert!(c.markdown().contains("| redis | 13 | 1000 | 250.00 |"));
        // No paid order: nothing to divide by.
        let c = compute(&start, &end, 0, None, false, true);
        assert!(
            c.processes
                .iter()
                .all(|p| p.cpu_ms_per_paid_order.is_none())
        );
    }

    #[test]
    fn reads_its_own_process() {
        assert!(cpu_ticks(std::process::id()).is_some());
        assert!(cpu_ticks(u32::MAX).is_none());
        let s = snapshot(None);
        assert!(s.procs.contains_key(GENERATOR));
    }
}
