//! Building and running the application: config -> storage -> actors -> HTTP.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware::from_fn, web};

use actix::Actor;

use crate::actors::notifier::{Notifier, Templates};
use crate::actors::payments::metrics::PaymentMetrics;
use crate::actors::payments::order_writer::OrderWriter;
use crate::actors::payments::{PaymentCore, Payments};
use crate::actors::points::PointsService;
use crate::cache;
use crate::config::Settings;
use crate::http::{self, AppState};
use crate::sandbox::SandboxHandle;
use crate::security::SecurityState;
use crate::storage::Db;
use crate::telemetry::Metrics;
use crate::wechat::{self, WechatServices};

/// How long an idle HTTP/1.1 connection is kept open: longer than the 60 s nginx keeps its
/// upstream connections (see `.keep_alive` below), and than the load generator's 60 s.
pub const KEEP_ALIVE: Duration = Duration::from_secs(75);

pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    /// The in-process WeChat sandbox, when no `WECHAT_*` setting is given.
    sandbox: Option<SandboxHandle>,
}

impl Application {
    /// Connects storage (applying migrations), starts background actors, binds the listener
    /// (port 0 picks a free port) and prepares the HTTP server without running it.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let metrics = Metrics::new()?;
        let db = Db::connect(&settings).await?;
        let redis = cache::connect_redis(&settings).await?;
        let settings = Arc::new(settings);
        let listener = TcpListener::bind((settings.host.as_str(), settings.port))?;
        let port = listener.local_addr()?.port();
        // WeChat's notifications come back to this server; with port 0 the real port is only
        // known now. A wildcard bind is reached on loopback by the in-process sandbox.
        let notify_host = match settings.host.as_str() {
            "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
            host => host,
        };
        let (client, notifications, sandbox) =
            wechat::setup_with_notify_base(&settings, &format!("http://{notify_host}:{port}"))
                .await?;
        client.metrics().register(&metrics);
        if let Some(pool) = &redis {
            client.share_token_through(
                pool.clone(),
                format!("{}:wechat:access_token", settings.redis_prefix),
            );
        }
        let cache = cache::Cache::new(&settings, redis.clone(), &metrics)?;
        cache.start_invalidation_listener();
        let security = Arc::new(SecurityState::new(
            &settings,
            redis.clone(),
            &cache,
            &metrics,
            Arc::new(client.clone()),
        )?);
        crate::security::passwords::bootstrap_admin(&db, &settings).await?;
        let points = PointsService::from_settings(db.clone(), &settings, &metrics, cache.clone())?;
        // Warm-up: the rule in force (and with it the database connection) is read once now,
        // so the first payment does not pay for it.
        match points.current_rule().await {
            Ok(rule) => tracing::info!(category = "system", rule = ?rule.id, "points rule cached"),
            Err(e) => tracing::warn!(category = "system", error = %e, "points rule warm-up failed"),
        }
        crate::telemetry::metrics::init_series(&metrics);
        http::openapi::preregister_request_series(&metrics);
        let payment_metrics = Arc::new(PaymentMetrics::new(&metrics)?);
        let notifier = Notifier::new(
            db.clone(),
            client.clone(),
            subscribe_templates(&settings),
            &metrics,
        )
        .start();
        let order_writer = OrderWriter::start(db.clone());
        // `risk_blocks_total{rule}` from start-up at 0 for every configured rule, so the
        // dashboards and `RiskBlocksSpike` see the series before the first block.
        match crate::storage::shop::risk_rules(&db).await {
            Ok(rules) => {
                for (name, ..) in rules {
                    payment_metrics
                        .risk_blocks
                        .with_label_values(&[name.as_str()]);
                }
            }
            Err(e) => {
                tracing::warn!(category = "system", error = %e, "risk rules not read at start-up")
            }
        }
        let payment_core = PaymentCore {
            db: db.clone(),
            wechat: client.clone(),
            points: points.clone(),
            metrics: payment_metrics.clone(),
            order_ttl: chrono::Duration::seconds(
                i64::try_from(settings.order_ttl_secs).unwrap_or(i64::MAX / 1000),
            ),
            notifier: Some(notifier),
            order_writer: order_writer.clone(),
            kill_after_paid: settings.fault_kill_at
                == Some(crate::config::FaultPoint::AfterPaidCommit),
            risk_rules: Default::default(),
            changes: Default::default(),
        };
        let shards = match settings.payment_shards {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let supervision = crate::actors::payments::Supervision::from_settings(&settings);
        tracing::info!(category = "system", instance = %supervision.instance, "order leases are taken under this instance id");
        let instance = supervision.instance.clone();
        let payments = Payments::start(payment_core, notifications.clone(), shards, supervision);
        match settings.reconcile_time()? {
            Some(at) => {
                tracing::info!(category = "system", at = %at, "daily trade-bill reconciliation scheduled (CST)");
                crate::actors::payments::reconcile::start_daily(
                    payments.clone(),
                    crate::actors::payments::reconcile::DailySchedule { at },
                    instance,
                );
            }
            None => tracing::info!(
                category = "system",
                "daily trade-bill reconciliation is off"
            ),
        }
        let app = crate::app::App::new(
            db,
            security.clone(),
            cache.clone(),
            settings.wechat_fee_rate_bp,
        );
        let state = AppState {
            settings: settings.clone(),
            app,
            redis,
            cache,
            metrics,
            security,
            wechat: WechatServices {
                client,
                notifications,
            },
            points,
            payments,
        };
        let server = {
            let state = state.clone();
            let admin_dir = settings.admin_dir.clone();
            let cors_origins = http::middleware::cors_origins(&settings.cors_origins)?;
            HttpServer::new(move || {
                App::new()
                    .wrap(http::middleware::cors(&cors_origins))
                    .wrap(from_fn(http::middleware::observe))
                    .app_data(web::Data::new(state.clone()))
                    .app_data(web::Data::new(state.metrics.clone()))
                    .configure(|cfg| http::admin_web::configure(cfg, admin_dir.as_deref()))
                    .configure(http::configure)
            })
            .shutdown_timeout(settings.shutdown_timeout_secs)
            // SIGINT is graceful too (actix would stop at once): see `run_until_stopped`.
            .disable_signals()
            .client_request_timeout(Duration::from_secs(10))
            // Longer than any keep-alive a client or proxy in front holds an idle connection
            // (nginx's upstream `keepalive_timeout` is 60 s here): a server that closes first
            // races the proxy's next request on that connection, and a POST lost that way is
            // not retried (actix's default is 5 s).
            .keep_alive(KEEP_ALIVE)
            .listen(listener)?
            .run()
        };
        Ok(Application {
            port,
            server,
            state,
            sandbox,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The in-process WeChat sandbox's base URL, in sandbox mode.
    pub fn sandbox_url(&self) -> Option<String> {
        self.sandbox.as_ref().map(SandboxHandle::base_url)
    }

    /// A handle to stop the server gracefully (what SIGTERM does).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT (or a stop through the handle): stops accepting, lets
    /// in-flight requests finish, then lets background work flush.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        actix_web::rt::spawn(async move {
            match shutdown_signal().await {
                Ok(signal) => {
                    tracing::info!(
                        category = "system",
                        signal,
                        "stopping: finishing in-flight requests"
                    );
                    handle.stop(true).await;
                }
                Err(e) => tracing::warn!(category = "system", error = %e, "no signal handling"),
            }
        });
        let result = self.server.await;
        tracing::info!(
            category = "system",
            "http server stopped; flushing background work"
        );
        if let Some(sandbox) = &self.sandbox {
            sandbox.stop().await;
        }
        self.state.points.shutdown().await;
        result
    }
}

/// The subscribe-message templates: as configured, or the sandbox's in sandbox mode.
fn subscribe_templates(settings: &Settings) -> Templates {
    let pick = |configured: &str, sandbox: &str| match configured {
        "off" => String::new(),
        "" if settings.wechat.is_sandbox() => sandbox.to_string(),
        other => other.to_string(),
    };
    Templates {
        payment: pick(&settings.subscribe_template_payment, "tmpl-payment-success"),
        refund: pick(&settings.subscribe_template_refund, "tmpl-refund-success"),
    }
}

/// Waits for SIGTERM (Kubernetes) or SIGINT (a terminal's Ctrl-C).
async fn shutdown_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
