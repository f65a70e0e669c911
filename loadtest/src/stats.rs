//! What the virtual users measured: a latency histogram per step, errors by kind, and a
//! per-second timeline (requests, errors, latency) for the live line and the plots.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;

/// Latencies are recorded in microseconds, up to 10 minutes.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant, valid histogram bounds")
}

#[derive(Default)]
struct Second {
    ok: u64,
    errors: u64,
    hist: Option<Histogram<u64>>,
}

struct Inner {
    steps: BTreeMap<String, Histogram<u64>>,
    step_errors: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    error_samples: BTreeMap<String, String>,
    timeline: Vec<Second>,
    /// Named durations that are not requests (award delay, time to all points visible).
    delays: BTreeMap<String, Histogram<u64>>,
}

/// Shared by every virtual user; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Mutex<Inner>>,
    pub start: Instant,
    pub requests: Arc<AtomicU64>,
    pub max_requests: u64,
    pub stop: Arc<AtomicBool>,
}

impl Recorder {
    pub fn new(max_requests: u64) -> Self {
        Recorder {
            inner: Arc::new(Mutex::new(Inner {
                steps: BTreeMap::new(),
                step_errors: BTreeMap::new(),
                errors: BTreeMap::new(),
                error_samples: BTreeMap::new(),
                timeline: Vec::new(),
                delays: BTreeMap::new(),
            })),
            start: Instant::now(),
            requests: Arc::new(AtomicU64::new(0)),
            max_requests,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Takes one request from the budget; false once `--max-requests` is spent or the run
    /// was told to stop.
    pub fn admit(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        if n >= self.max_requests {
            self.stop.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn second(inner: &mut Inner, at: Instant, start: Instant) -> &mut Second {
        let idx = usize::try_from(at.saturating_duration_since(start).as_secs()).unwrap_or(0);
        if inner.timeline.len() <= idx {
            inner.timeline.resize_with(idx + 1, Second::default);
        }
        &mut inner.timeline[idx]
    }

    pub fn ok(&self, step: &str, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let now = Instant::now();
        let mut g = self.inner.lock();
        g.steps
            .entry(step.to_string())
            .or_insert_with(histogram)
            .saturating_record(us);
        let start = self.start;
        let s = Self::second(&mut g, now, start);
        s.ok += 1;
        if !is_wait(step) {
            s.hist.get_or_insert_with(histogram).saturating_record(us);
        }
    }

    /// A failed request: `kind` is e.g. `http 503 DB_UNAVAILABLE` or `transport`.
    pub fn error(&self, step: &str, kind: &str, detail: &str, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let now = Instant::now();
        let key = format!("{step}: {kind}");
        let mut g = self.inner.lock();
        *g.step_errors.entry(step.to_string()).or_default() += 1;
        *g.errors.entry(key.clone()).or_default() += 1;
        g.error_samples
            .entry(key)
            .or_insert_with(|| detail.chars().take(300).collect());
        let start = self.start;
        let s = Self::second(&mut g, now, start);
        s.errors += 1;
        s.hist.get_or_insert_with(histogram).saturating_record(us);
    }

    pub fn delay(&self, name: &str, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        self.inner
            .lock()
            .delays
            .entry(name.to_string())
            .or_insert_with(histogram)
            .saturating_record(us);
    }

    /// (requests, errors, last full second's rate, p99 ms over the last 5 s).
    pub fn live(&self) -> (u64, u64, u64, f64) {
        let g = self.inner.lock();
        let (mut total, mut errors) = (0, 0);
        for s in &g.timeline {
            total += s.ok + s.errors;
            errors += s.errors;
        }
        let n = g.timeline.len();
        let rate = if n >= 2 {
            g.timeline[n - 2].ok + g.timeline[n - 2].errors
        } else {
            0
        };
        let mut h = histogram();
        for s in g.timeline.iter().skip(n.saturating_sub(5)) {
            if let Some(x) = &s.hist {
                let _ = h.add(x);
            }
        }
        (total, errors, rate, ms(h.value_at_quantile(0.99)))
    }

    pub fn summary(&self, elapsed: Duration) -> Summary {
        let g = self.inner.lock();
        let secs = elapsed.as_secs_f64().max(0.001);
        let mut all = histogram();
        let mut steps = BTreeMap::new();
        let mut ok_total = 0;
        for (name, h) in &g.steps {
            if !is_wait(name) {
                let _ = all.add(h);
            }
            ok_total += h.len();
            steps.insert(
                name.clone(),
                StepSummary {
                    ok: h.len(),
                    errors: g.step_errors.get(name).copied().unwrap_or(0),
                    rate_per_s: h.len() as f64 / secs,
                    latency: Latency::of(h),
                },
            );
        }
        for (name, e) in &g.step_errors {
            steps.entry(name.clone()).or_insert_with(|| StepSummary {
                ok: 0,
                errors: *e,
                rate_per_s: 0.0,
                latency: Latency::of(&histogram()),
            });
        }
        let errors_total: u64 = g.errors.values().sum();
        let timeline = g
            .timeline
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (p50, p99) = s.hist.as_ref().map_or((0.0, 0.0), |h| {
                    (ms(h.value_at_quantile(0.5)), ms(h.value_at_quantile(0.99)))
                });
                TimePoint {
                    second: i as u64,
                    requests: s.ok + s.errors,
                    errors: s.errors,
                    p50_ms: p50,
                    p99_ms: p99,
                }
            })
            .collect();
        Summary {
            elapsed_s: secs,
            requests: ok_total + errors_total,
            ok: ok_total,
            errors: errors_total,
            throughput_per_s: (ok_total + errors_total) as f64 / secs,
            latency_all: Latency::of(&all),
            steps,
            errors_by_kind: g.errors.clone(),
            error_samples: g.error_samples.clone(),
            delays: g
                .delays
                .iter()
                .map(|(k, h)| (k.clone(), Latency::of(h)))
                .collect(),
            timeline,
        }
    }
}

/// A step that waits on purpose (a long poll answered when the order settles): counted as a
/// request, but its time is the wait the client asked for, so it stays out of the latency
/// of "all requests" and of the per-second latency; its own row shows it.
pub fn is_wait(step: &str) -> bool {
    step.ends_with("_wait")
}

pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Self {
        Latency {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepSummary {
    pub ok: u64,
    pub errors: u64,
    pub rate_per_s: f64,
    pub latency: Latency,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimePoint {
    pub second: u64,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub elapsed_s: f64,
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub throughput_per_s: f64,
    pub latency_all: Latency,
    pub steps: BTreeMap<String, StepSummary>,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub error_samples: BTreeMap<String, String>,
    pub delays: BTreeMap<String, Latency>,
    pub timeline: Vec<TimePoint>,
}
