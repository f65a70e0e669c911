//! Telemetry: the tracing subscriber (JSON logs, or human-readable on a terminal), trace ids,
//! and the Prometheus metrics registry.

pub mod metrics;

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

pub use metrics::Metrics;

use crate::security::mask::MaskingMakeWriter;

tokio::task_local! {
    /// The trace id of the request being served, for error bodies and background hand-offs.
    pub static TRACE_ID: String;
}

/// The current request's trace id, or an empty string outside a request.
pub fn current_trace_id() -> String {
    TRACE_ID.try_with(|t| t.clone()).unwrap_or_default()
}

/// A new trace id: a UUID v7 in simple form (time-ordered, 32 hex characters).
pub fn new_trace_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// The trace a piece of work runs in: its id (for error bodies and audit rows) and its span
/// (for every log line). A request's work handed to an actor keeps the request's trace
/// ([`Trace::current`]); work no request started (a supervision step, an outbox re-drive, a
/// message send, an expiry sweep) gets its own ([`Trace::background`]), naming the order or
/// user it is about, so one grep for an order number finds every line of its life.
#[derive(Debug, Clone)]
pub struct Trace {
    id: String,
    span: tracing::Span,
}

impl Trace {
    /// The trace of the running request (or of the background work already running); a new
    /// background trace outside both.
    pub fn current() -> Trace {
        match TRACE_ID.try_with(|t| t.clone()) {
            Ok(id) => Trace {
                id,
                span: tracing::Span::current(),
            },
            Err(_) => Trace::background("detached"),
        }
    }

    /// A new trace for background work of kind `work` (`supervise`, `outbox`, `notify`, …).
    pub fn background(work: &'static str) -> Trace {
        let id = new_trace_id();
        let span = tracing::info_span!(
            "background",
            trace_id = %id,
            work,
            order_no = tracing::field::Empty,
            user_id = tracing::field::Empty,
        );
        Trace { id, span }
    }

    /// Names the order the work is about (every line of it then carries `span.order_no`).
    pub fn order(self, order_no: &str) -> Trace {
        self.span.record("order_no", order_no);
        self
    }

    /// Names the user the work is about.
    pub fn user(self, user_id: &str) -> Trace {
        self.span.record("user_id", user_id);
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs `fut` in this trace: its log lines carry the span, and `current_trace_id()`
    /// inside answers this trace's id.
    pub fn run<F: std::future::Future>(
        self,
        fut: F,
    ) -> impl std::future::Future<Output = F::Output> {
        use tracing::Instrument;
        TRACE_ID.scope(self.id, fut.instrument(self.span))
    }
}

/// Accepts a caller's `X-Request-Id` when it is short and plain, so it cannot inject into logs.
pub fn accept_trace_id(raw: &str) -> Option<String> {
    let ok = !raw.is_empty()
        && raw.len() <= 128
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| raw.to_string())
}

/// The production JSON log format: one object per line, the event's fields at the top level
/// (`timestamp`, `level`, `target`, `category`, `action`, `user_id`, `merchant_id`, …,
/// `message`) and the request span as `span` (`trace_id`, `method`, `route`, and `user_id`
/// / `merchant_id` once known). Tests capture logs through the same layer.
pub fn json_layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    fmt::layer()
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
}

/// Installs the global subscriber once. `format` is `json`, `pretty` or `auto` (JSON unless
/// stdout is a terminal). `RUST_LOG` overrides the default filter.
pub fn init_subscriber(format: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn,mio=warn,h2=warn"));
    let json = match format {
        "json" => true,
        "pretty" => false,
        _ => !std::io::stdout().is_terminal(),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(json_layer(MaskingMakeWriter::new(std::io::stdout)))
            .try_init()
    } else {
        registry
            .with(
                fmt::layer()
                    .with_writer(MaskingMakeWriter::new(std::io::stdout))
                    .with_target(false),
            )
            .try_init()
    };
    // A second initialisation (several apps in one test process) keeps the first subscriber.
    if result.is_ok() && json {
        log_panics_as_json();
    }
}

/// The text a panic was raised with, when it is text.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// A panic is one JSON log line (message, location, and a backtrace when `RUST_BACKTRACE`
/// asks for one) instead of free text on stderr that log collectors cannot parse.
fn log_panics_as_json() {
    std::panic::set_hook(Box::new(|info| {
        let message = panic_message(info.payload());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let backtrace = std::backtrace::Backtrace::capture();
        tracing::error!(
            category = "system",
            panic = %message,
            location = %location,
            thread = std::thread::current().name().unwrap_or("unnamed"),
            backtrace = %backtrace,
            "panicked"
        );
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_from_callers_are_checked() {
        assert_eq!(accept_trace_id("abc-123").as_deref(), Some("abc-123"));
        assert!(accept_trace_id("").is_none());
        assert!(accept_trace_id("a b").is_none());
        assert!(accept_trace_id("x\n{\"level\":\"ERROR\"}").is_none());
        assert!(accept_trace_id(&"a".repeat(129)).is_none());
        assert_eq!(new_trace_id().len(), 32);
    }
}
