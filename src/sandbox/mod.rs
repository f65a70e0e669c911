//! A local stand-in for WeChat Pay v3 and the mini-program APIs that speaks the real
//! protocol with its own keys: it checks every merchant signature, signs every answer, keeps
//! orders and refunds by WeChat's rules, and delivers signed, encrypted notifications with
//! WeChat's retries. Control calls under `/sandbox/` let tests play the shopper.

pub mod control;
pub mod deliver;
pub mod keys;
pub mod ledger;
pub mod mini_api;
pub mod pay_api;

use std::collections::VecDeque;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Mutex;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};

pub use keys::SandboxKeys;

use deliver::Deliverer;
use ledger::Ledger;
use mini_api::MiniState;

/// How to run the sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    pub keys_dir: PathBuf,
    /// Multiplies WeChat's retry delays: 1.0 is real time, 0.001 turns 15 s into 15 ms.
    pub time_scale: f64,
    /// Notification requests in flight at once.
    pub max_in_flight_deliveries: usize,
}

impl SandboxConfig {
    pub fn new(keys_dir: PathBuf, port: u16) -> Self {
        Self {
            host: "127.0.0.1".into(),
            port,
            keys_dir,
            time_scale: 1.0,
            max_in_flight_deliveries: 32,
        }
    }
}

/// What every handler shares.
pub struct Sandbox {
    pub keys: SandboxKeys,
    pub ledger: Mutex<Ledger>,
    pub mini: Mutex<MiniState>,
    pub deliverer: Deliverer,
    /// Answers the next Pay calls get instead of their real one (`POST /sandbox/faults`).
    pub faults: Mutex<VecDeque<ledger::Fail>>,
    /// Delays for the next prepay answers (`POST /sandbox/faults {delay_prepay_ms}`).
    pub prepay_delays: Mutex<VecDeque<std::time::Duration>>,
    /// How many of the next payment notifications are never sent
    /// (`POST /sandbox/faults {drop_notifications}`), as when WeChat's calls never arrive.
    pub drop_notifications: Mutex<u32>,
    /// How many of the next trade-bill answers announce a wrong hash
    /// (`POST /sandbox/faults {bill_hash_mismatch}`).
    pub bill_hash_faults: Mutex<u32>,
    /// Bills ready for download, by token: the bytes served and when the link runs out.
    pub bills: Mutex<std::collections::HashMap<String, (Vec<u8>, std::time::Instant)>>,
}

/// A running sandbox.
pub struct SandboxHandle {
    port: u16,
    server: ServerHandle,
    keys: SandboxKeys,
}

impl std::fmt::Debug for SandboxHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxHandle")
            .field("port", &self.port)
            .finish()
    }
}

impl SandboxHandle {
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn keys(&self) -> &SandboxKeys {
        &self.keys
    }

    /// Stops accepting and lets in-flight requests finish.
    pub async fn stop(&self) {
        self.server.stop(true).await;
    }
}

/// Loads (or generates) the keys, binds the port and starts serving on the current actix
/// system. Returns once the listener is bound.
pub async fn start(config: &SandboxConfig) -> anyhow::Result<SandboxHandle> {
    let keys_dir = config.keys_dir.clone();
    // Key generation is CPU work: keep it off the async threads.
    let keys =
        tokio::task::spawn_blocking(move || SandboxKeys::load_or_generate(&keys_dir)).await??;
    let listener = TcpListener::bind((config.host.as_str(), config.port))?;
    let port = listener.local_addr()?.port();
    let sandbox = web::Data::new(Sandbox {
        ledger: Mutex::new(Ledger::new(&keys.appid, &keys.mchid)),
        mini: Mutex::new(MiniState::default()),
        deliverer: Deliverer::start(
            keys.platform(),
            keys.apiv3_key.clone(),
            config.time_scale,
            config.max_in_flight_deliveries,
        ),
        keys: keys.clone(),
        faults: Mutex::new(VecDeque::new()),
        prepay_delays: Mutex::new(VecDeque::new()),
        drop_notifications: Mutex::new(0),
        bill_hash_faults: Mutex::new(0),
        bills: Mutex::new(std::collections::HashMap::new()),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(sandbox.clone())
            .app_data(web::PayloadConfig::new(64 * 1024))
            .configure(configure)
    })
    .workers(2)
    // Idle connections outlive the server's WeChat client pool's 60 s (see
    // `startup::KEEP_ALIVE`): a sandbox that closed one first would race the server's next
    // call on it.
    .keep_alive(crate::startup::KEEP_ALIVE)
    // The owner (the server, or the sandbox binary) decides when to stop, on its signals.
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    tracing::info!(category = "system", port, keys_dir = %config.keys_dir.display(), "wechat sandbox listening");
    Ok(SandboxHandle {
        port,
        server: handle,
        keys,
    })
}

/// Every route of the sandbox.
pub fn configure(cfg: &mut web::ServiceConfig) {
    pay_api::configure(cfg);
    mini_api::configure(cfg);
    control::configure(cfg);
}
