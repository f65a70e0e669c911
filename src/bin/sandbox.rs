//! `sandbox`: the local WeChat stand-in, and a `verify-notification` check that runs the
//! server's real notification verifier on files (for the interoperability tests).
//!
//! ```text
//! sandbox [--host 127.0.0.1] [--port 8081] [--keys-dir ./data/sandbox] [--time-scale 1.0]
//!         [--max-in-flight 32]
//!   env: SANDBOX_HOST, SANDBOX_PORT, SANDBOX_KEYS_DIR, SANDBOX_TIME_SCALE,
//!        SANDBOX_MAX_IN_FLIGHT
//! sandbox --help
//!   the options, and the ids (appid, mchid, serial, public key id) and key files a server
//!   pointed at the sandbox needs.
//! sandbox verify-notification --headers H.json --body BODY --apiv3-key-file F
//!         (--platform-public-key PEM --platform-public-key-id ID | --platform-cert PEM)...
//!         --mchid M --appid A [--now UNIX]
//!   exit 0: accepted (prints the event as JSON); 1: refused (prints why); 2: usage.
//! sandbox env [--keys-dir ./data/sandbox] [--base-url http://127.0.0.1:8081]
//!   prints `export WECHAT_…=…` lines that point a server at a sandbox with these keys
//!   (several server instances sharing one standalone sandbox).
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use points_app::sandbox::keys::{
    APIV3_KEY_FILE, APP_SECRET_FILE, MERCHANT_KEY_FILE, MERCHANT_PUBLIC_FILE, PLATFORM_KEY_FILE,
    PLATFORM_PUBLIC_FILE, SANDBOX_APPID, SANDBOX_MCHID, SANDBOX_MERCHANT_SERIAL,
    SANDBOX_PUBLIC_KEY_ID,
};
use points_app::sandbox::{self, SandboxConfig};
use points_app::telemetry;
use points_app::wechat::aead::ApiV3Key;
use points_app::wechat::keys::{self, PlatformKeys};
use points_app::wechat::notify::{NotificationResource, NotificationVerifier};
use points_app::wechat::sign::{Clock, FixedClock, PlatformVerifier, SystemClock};
use secrecy::SecretString;

const DEFAULT_KEYS_DIR: &str = "./data/sandbox";

/// The local WeChat Pay v3 and mini-program stand-in: speaks the real protocol with its own
/// keys (generated once into the keys directory), delivers signed, encrypted notifications
/// with WeChat's retries, and takes `/sandbox/...` control calls. Without a command it
/// serves.
#[derive(Debug, Parser)]
#[command(name = "sandbox", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve (the default).
    Serve(ServeArgs),
    /// Print `export WECHAT_...=...` lines that point a server at a sandbox with these keys
    /// (generating the keys if needed): several server instances sharing one sandbox.
    Env(EnvArgs),
    /// Run the server's real notification verifier on files. Exit 0: accepted (prints the
    /// event as JSON); 1: refused (prints why); 2: usage.
    VerifyNotification(VerifyArgs),
}

#[derive(Debug, Clone, Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SANDBOX_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0: any free port).
    #[arg(long, env = "SANDBOX_PORT", default_value_t = 8081)]
    port: u16,
    /// Where the keys are kept (missing files are generated, mode 0600).
    #[arg(long, env = "SANDBOX_KEYS_DIR", default_value = DEFAULT_KEYS_DIR)]
    keys_dir: PathBuf,
    /// Multiplies WeChat's notification retry schedule (1.0: real time; tests use 0.001).
    #[arg(long, env = "SANDBOX_TIME_SCALE", default_value_t = 1.0)]
    time_scale: f64,
    /// Notification requests in flight at once.
    #[arg(long, env = "SANDBOX_MAX_IN_FLIGHT", default_value_t = 32)]
    max_in_flight: usize,
}

#[derive(Debug, Args)]
struct EnvArgs {
    /// The sandbox's keys directory.
    #[arg(long, env = "SANDBOX_KEYS_DIR", default_value = DEFAULT_KEYS_DIR)]
    keys_dir: PathBuf,
    /// The sandbox's base URL (for WECHAT_PAY_BASE_URL and WECHAT_API_BASE_URL).
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    base_url: String,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// The notification's headers, a JSON object (Wechatpay-Signature and the rest).
    #[arg(long, value_name = "H.json")]
    headers: PathBuf,
    /// The raw notification body.
    #[arg(long, value_name = "BODY")]
    body: PathBuf,
    /// A file holding the 32-character APIv3 key.
    #[arg(long, value_name = "FILE")]
    apiv3_key_file: PathBuf,
    /// The merchant id the notification must carry.
    #[arg(long)]
    mchid: String,
    /// The app id the notification must carry.
    #[arg(long)]
    appid: String,
    /// A WeChat Pay public key (SPKI PEM); give one --platform-public-key-id per key.
    #[arg(long, value_name = "PEM")]
    platform_public_key: Vec<PathBuf>,
    /// The id (PUB_KEY_ID_...) of each --platform-public-key, in the same order.
    #[arg(long, value_name = "ID")]
    platform_public_key_id: Vec<String>,
    /// A platform certificate (X.509 PEM); its serial is read from it.
    #[arg(long, value_name = "PEM")]
    platform_cert: Vec<PathBuf>,
    /// Check timestamps against this Unix time instead of the clock.
    #[arg(long, value_name = "UNIX")]
    now: Option<i64>,
}

/// The keys directory `--help` describes: the `--keys-dir` on the command line, else
/// `SANDBOX_KEYS_DIR`, else the default.
fn keys_dir_for_help(args: &[String]) -> PathBuf {
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if let Some(dir) = arg.strip_prefix("--keys-dir=") {
            return PathBuf::from(dir);
        }
        if arg == "--keys-dir"
            && let Some(dir) = it.next()
        {
            return PathBuf::from(dir);
        }
    }
    std::env::var("SANDBOX_KEYS_DIR")
        .ok()
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_KEYS_DIR), PathBuf::from)
}

/// The identities and key files a server needs to talk to this sandbox.
fn identities_help(dir: &Path) -> String {
    let file = |name: &str| dir.join(name).display().to_string();
    format!(
        "Identities and keys (point a server at this sandbox with these; `sandbox env` prints \
         them as export lines):
  WECHAT_APPID={SANDBOX_APPID}    (the mini-program's app id)
  WECHAT_MCHID={SANDBOX_MCHID}           (the merchant id)
  WECHAT_MERCHANT_SERIAL_NO={SANDBOX_MERCHANT_SERIAL}
  WECHAT_PLATFORM_PUBLIC_KEY_ID={SANDBOX_PUBLIC_KEY_ID}
  WECHAT_MERCHANT_PRIVATE_KEY_FILE={merchant_key}
  WECHAT_PLATFORM_PUBLIC_KEY_FILE={platform_public}
  WECHAT_APIV3_KEY=$(cat {apiv3})
  WECHAT_APP_SECRET=$(cat {app_secret})
  WECHAT_PAY_BASE_URL, WECHAT_API_BASE_URL: http://HOST:PORT of this sandbox

Key files in {dir} (generated on first start, mode 0600, reused after):
  {MERCHANT_KEY_FILE}, {MERCHANT_PUBLIC_FILE} (the merchant's RSA key pair)
  {PLATFORM_KEY_FILE}, {PLATFORM_PUBLIC_FILE} (WeChat Pay's, public-key mode)
  {APIV3_KEY_FILE}, {APP_SECRET_FILE} (32-character secrets)

GET /sandbox/keys on a running sandbox shows the same ids and its directory.",
        merchant_key = file(MERCHANT_KEY_FILE),
        platform_public = file(PLATFORM_PUBLIC_FILE),
        apiv3 = file(APIV3_KEY_FILE),
        app_secret = file(APP_SECRET_FILE),
        dir = dir.display(),
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let command = Cli::command().after_help(identities_help(&keys_dir_for_help(&args)));
    let cli = match Cli::from_arg_matches(&command.get_matches_from(&args)) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Env(args)) => print_env(args),
        Some(Command::VerifyNotification(args)) => verify_notification(args),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let mut config = SandboxConfig::new(args.keys_dir, args.port);
    config.host = args.host;
    config.time_scale = args.time_scale;
    config.max_in_flight_deliveries = args.max_in_flight;
    telemetry::init_subscriber(&std::env::var("APP_LOG_FORMAT").unwrap_or_else(|_| "auto".into()));
    let result = actix_web::rt::System::new().block_on(async move {
        let handle = sandbox::start(&config).await?;
        // The line scripts wait for: the port is bound and the keys are on disk.
        println!(
            "sandbox listening on {} (keys in {})",
            handle.base_url(),
            config.keys_dir.display()
        );
        shutdown_signal().await?;
        handle.stop().await;
        anyhow::Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandbox: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_env(args: EnvArgs) -> ExitCode {
    let (dir, base) = (args.keys_dir, args.base_url);
    let keys = match sandbox::SandboxKeys::load_or_generate(&dir) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("sandbox env: {e}");
            return ExitCode::FAILURE;
        }
    };
    let abs = |file: &str| {
        let p = keys.path(file);
        std::fs::canonicalize(&p).unwrap_or(p).display().to_string()
    };
    let lines = [
        ("WECHAT_APPID", keys.appid.clone()),
        ("WECHAT_APP_SECRET", keys.app_secret.clone()),
        ("WECHAT_MCHID", keys.mchid.clone()),
        ("WECHAT_MERCHANT_SERIAL_NO", keys.merchant_serial.clone()),
        (
            "WECHAT_MERCHANT_PRIVATE_KEY_FILE",
            abs(sandbox::keys::MERCHANT_KEY_FILE),
        ),
        ("WECHAT_APIV3_KEY", keys.apiv3_key.expose().to_string()),
        (
            "WECHAT_PLATFORM_PUBLIC_KEY_FILE",
            abs(sandbox::keys::PLATFORM_PUBLIC_FILE),
        ),
        (
            "WECHAT_PLATFORM_PUBLIC_KEY_ID",
            keys.platform_key_id.clone(),
        ),
        ("WECHAT_PAY_BASE_URL", base.clone()),
        ("WECHAT_API_BASE_URL", base),
    ];
    for (name, value) in lines {
        println!("export {name}='{value}'");
    }
    ExitCode::SUCCESS
}

fn verify_notification(args: VerifyArgs) -> ExitCode {
    match run_verify(args) {
        Ok(Ok(summary)) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Ok(Err(refusal)) => {
            println!("refused: {refusal}");
            ExitCode::FAILURE
        }
        Err(usage) => {
            eprintln!("sandbox verify-notification: {usage}");
            ExitCode::from(2)
        }
    }
}

/// Outer `Err`: bad usage. Inner `Err`: the verifier refused.
fn run_verify(args: VerifyArgs) -> Result<Result<String, String>, String> {
    let read = |path: &Path| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
    let headers: HashMap<String, String> =
        serde_json::from_slice(&read(&args.headers)?).map_err(|e| format!("headers: {e}"))?;
    let body = read(&args.body)?;
    let apiv3 = String::from_utf8(read(&args.apiv3_key_file)?).map_err(|e| e.to_string())?;
    let apiv3 =
        ApiV3Key::parse(SecretString::from(apiv3.trim().to_string())).map_err(|e| e.to_string())?;

    let mut platform = PlatformKeys::new();
    let (key_files, key_ids) = (args.platform_public_key, args.platform_public_key_id);
    if key_files.len() != key_ids.len() {
        return Err("each --platform-public-key needs a --platform-public-key-id".into());
    }
    for (file, id) in key_files.iter().zip(key_ids) {
        let pem = keys::read_pem(file).map_err(|e| e.to_string())?;
        platform.insert(
            id,
            keys::public_key_from_pem(&pem).map_err(|e| e.to_string())?,
        );
    }
    for file in &args.platform_cert {
        let pem = keys::read_pem(file).map_err(|e| e.to_string())?;
        platform
            .insert_certificate_pem(&pem)
            .map_err(|e| e.to_string())?;
    }
    if platform.is_empty() {
        return Err(
            "give --platform-public-key with --platform-public-key-id, or --platform-cert".into(),
        );
    }
    let clock: Arc<dyn Clock> = match args.now {
        Some(now) => Arc::new(FixedClock(now)),
        None => Arc::new(SystemClock),
    };
    let verifier = NotificationVerifier::new(
        PlatformVerifier::with_clock(platform, clock),
        apiv3,
        args.mchid,
        args.appid,
    );
    Ok(match verifier.verify_and_decrypt(&headers, &body) {
        Ok(n) => {
            let (kind, key) = match &n.resource {
                NotificationResource::Transaction(t) => ("transaction", t.out_trade_no.clone()),
                NotificationResource::Refund(r) => ("refund", r.out_refund_no.clone()),
            };
            Ok(serde_json::json!({"id": n.id, "event_type": n.event_type, "resource": kind, "key": key}).to_string())
        }
        Err(e) => Err(format!("{e:?}")),
    })
}

/// SIGINT (Ctrl-C) or SIGTERM (what `kill`, `timeout` and CI send).
async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
