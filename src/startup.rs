//! Building and running the application: config -> storage -> actors -> HTTP.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware::from_fn, web};

use crate::actors::points::PointsService;
use crate::cache;
use crate::config::Settings;
use crate::http::{self, AppState};
use crate::storage::Db;
use crate::telemetry::Metrics;

pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
}

impl Application {
    /// Connects storage (applying migrations), starts background actors, binds the listener
    /// (port 0 picks a free port) and prepares the HTTP server without running it.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let metrics = Metrics::new()?;
        let db = Db::connect(&settings).await?;
        let redis = cache::connect_redis(&settings).await?;
        let points = PointsService::from_settings(db.clone(), &settings, &metrics)?;
        let settings = Arc::new(settings);
        let state = AppState {
            settings: settings.clone(),
            db,
            redis,
            metrics,
            points,
        };
        let listener = TcpListener::bind((settings.host.as_str(), settings.port))?;
        let port = listener.local_addr()?.port();
        let server = {
            let state = state.clone();
            HttpServer::new(move || {
                App::new()
                    .wrap(from_fn(http::middleware::observe))
                    .app_data(web::Data::new(state.clone()))
                    .app_data(web::Data::new(state.metrics.clone()))
                    .configure(http::configure)
            })
            .shutdown_timeout(settings.shutdown_timeout_secs)
            .client_request_timeout(Duration::from_secs(10))
            .listen(listener)?
            .run()
        };
        Ok(Application {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// A handle to stop the server gracefully (what SIGTERM does).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT (or a stop through the handle): stops accepting, lets
    /// in-flight requests finish, then lets background work flush.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        tracing::info!(
            category = "system",
            "http server stopped; flushing background work"
        );
        self.state.points.shutdown().await;
        result
    }
}
