//! CPU and memory of the processes under test, read from /proc once a second. The processes
//! are named by `*.pid` files in a directory (re-read every sample, so an instance restarted
//! after `kill -9` is followed under its new pid).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcStats {
    pub samples: u64,
    pub cpu_avg_pct: f64,
    pub cpu_max_pct: f64,
    pub rss_max_mib: f64,
    pub rss_last_mib: f64,
    #[serde(skip)]
    cpu_sum: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MachineStats {
    /// Busy share of all cores, 0..100 (100 = both cores busy).
    pub cpu_avg_pct: f64,
    pub cpu_max_pct: f64,
    /// Per second: machine CPU % and the sum of the watched processes' CPU %.
    pub timeline: Vec<(u64, f64)>,
    #[serde(skip)]
    samples: u64,
    #[serde(skip)]
    sum: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    pub processes: BTreeMap<String, ProcStats>,
    pub machine: MachineStats,
    pub cores: usize,
}

fn ticks_per_sec() -> f64 {
    crate::cost::clk_tck() as f64
}

fn read_pid(path: &PathBuf) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// (utime + stime) ticks and RSS in KiB.
fn proc_sample(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields after the command: state is [0]; utime [11], stime [12] (stat(5) 14 and 15).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some((utime + stime, rss))
}

/// (busy, total) jiffies of the whole machine.
fn machine_sample() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Samples until the returned handle is stopped; answers the usage so far on `finish`.
pub struct Monitor {
    usage: Arc<Mutex<Usage>>,
    task: tokio::task::JoinHandle<()>,
}

impl Monitor {
    pub fn start(pid_dir: Option<PathBuf>) -> Monitor {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let usage = Arc::new(Mutex::new(Usage {
            cores,
            ..Usage::default()
        }));
        let shared = usage.clone();
        let task = tokio::spawn(async move {
            let mut last: BTreeMap<String, (u32, u64)> = BTreeMap::new();
            let mut last_machine = machine_sample();
            let mut second = 0u64;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                second += 1;
                let mut u = shared.lock();
                if let (Some((b0, t0)), Some((b1, t1))) = (last_machine, machine_sample()) {
                    let pct = if t1 > t0 {
                        100.0 * (b1 - b0) as f64 / (t1 - t0) as f64
                    } else {
                        0.0
                    };
                    let m = &mut u.machine;
                    m.samples += 1;
                    m.sum += pct;
                    m.cpu_avg_pct = m.sum / m.samples as f64;
                    m.cpu_max_pct = m.cpu_max_pct.max(pct);
                    m.timeline.push((second, (pct * 10.0).round() / 10.0));
                }
                last_machine = machine_sample();
                // The load generator itself shares the machine: watch it too.
                let me = std::process::id();
                if let Some((ticks, rss)) = proc_sample(me) {
                    let p = u
                        .processes
                        .entry("loadtest (generator)".into())
                        .or_default();
                    if let Some((_, lticks)) = last.get("loadtest (generator)")
                        && ticks >= *lticks
                    {
                        let pct = 100.0 * (ticks - lticks) as f64 / ticks_per_sec();
                        p.samples += 1;
                        p.cpu_sum += pct;
                        p.cpu_avg_pct = p.cpu_sum / p.samples as f64;
                        p.cpu_max_pct = p.cpu_max_pct.max(pct);
                    }
                    p.rss_max_mib = p.rss_max_mib.max(rss as f64 / 1024.0);
                    p.rss_last_mib = rss as f64 / 1024.0;
                    last.insert("loadtest (generator)".into(), (me, ticks));
                }
                let Some(dir) = &pid_dir else { continue };
                let Ok(entries) = std::fs::read_dir(dir) else {
                    continue;
                };
                for e in entries.flatten() {
                    let path = e.path();
                    if path.extension().and_then(|x| x.to_str()) != Some("pid") {
                        continue;
                    }
                    let name = path
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or("?")
                        .to_string();
                    let Some(pid) = read_pid(&path) else { continue };
                    let Some((ticks, rss)) = proc_sample(pid) else {
                        continue;
                    };
                    let p = u.processes.entry(name.clone()).or_default();
                    if let Some((lpid, lticks)) = last.get(&name)
                        && *lpid == pid
                        && ticks >= *lticks
                    {
                        // Percent of one core (200% = both cores of this machine).
                        let pct = 100.0 * (ticks - lticks) as f64 / ticks_per_sec();
                        p.samples += 1;
                        p.cpu_sum += pct;
                        p.cpu_avg_pct = p.cpu_sum / p.samples as f64;
                        p.cpu_max_pct = p.cpu_max_pct.max(pct);
                    }
                    let mib = rss as f64 / 1024.0;
                    p.rss_max_mib = p.rss_max_mib.max(mib);
                    p.rss_last_mib = mib;
                    last.insert(name, (pid, ticks));
                }
            }
        });
        Monitor { usage, task }
    }

    pub fn finish(self) -> Usage {
        self.task.abort();
        self.usage.lock().clone()
    }
}
