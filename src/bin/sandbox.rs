//! `sandbox`: the local WeChat stand-in, and a `verify-notification` check that runs the
//! server's real notification verifier on files (for the interoperability tests).
//!
//! ```text
//! sandbox [--host 127.0.0.1] [--port 8081] [--keys-dir ./data/sandbox] [--time-scale 1.0]
//!         [--max-in-flight 32]
//!   env: SANDBOX_HOST, SANDBOX_PORT, SANDBOX_KEYS_DIR, SANDBOX_TIME_SCALE
//! sandbox verify-notification --headers H.json --body BODY --apiv3-key-file F
//!         (--platform-public-key PEM --platform-public-key-id ID | --platform-cert PEM)...
//!         --mchid M --appid A [--now UNIX]
//!   exit 0: accepted (prints the event as JSON); 1: refused (prints why); 2: usage.
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use points_app::sandbox::{self, SandboxConfig};
use points_app::telemetry;
use points_app::wechat::aead::ApiV3Key;
use points_app::wechat::keys::{self, PlatformKeys};
use points_app::wechat::notify::{NotificationResource, NotificationVerifier};
use points_app::wechat::sign::{Clock, FixedClock, PlatformVerifier, SystemClock};
use secrecy::SecretString;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("verify-notification") => verify_notification(args.get(1..).unwrap_or_default()),
        Some("serve") => serve(args.get(1..).unwrap_or_default()),
        Some("-h" | "--help") => {
            println!(
                "usage: sandbox [serve] [--host H] [--port N] [--keys-dir D] [--time-scale F] [--max-in-flight N]\n       sandbox verify-notification --headers H.json --body B --apiv3-key-file F --mchid M --appid A (--platform-public-key PEM --platform-public-key-id ID | --platform-cert PEM) [--now UNIX]"
            );
            ExitCode::SUCCESS
        }
        _ => serve(&args),
    }
}

/// `--name value` pairs; a repeated name keeps every value.
fn flags(args: &[String]) -> Result<HashMap<String, Vec<String>>, String> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let mut it = args.iter();
    while let Some(name) = it.next() {
        let key = name
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {name}"))?;
        let value = it.next().ok_or_else(|| format!("{name} needs a value"))?;
        out.entry(key.to_string()).or_default().push(value.clone());
    }
    Ok(out)
}

fn one(flags: &HashMap<String, Vec<String>>, name: &str, env: &str) -> Option<String> {
    flags
        .get(name)
        .and_then(|v| v.last().cloned())
        .or_else(|| std::env::var(env).ok().filter(|v| !v.is_empty()))
}

fn serve(args: &[String]) -> ExitCode {
    let flags = match flags(args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sandbox: {e}");
            return ExitCode::from(2);
        }
    };
    let mut config = SandboxConfig::new(
        PathBuf::from(
            one(&flags, "keys-dir", "SANDBOX_KEYS_DIR").unwrap_or_else(|| "./data/sandbox".into()),
        ),
        8081,
    );
    if let Some(host) = one(&flags, "host", "SANDBOX_HOST") {
        config.host = host;
    }
    let parsed = (|| -> Result<(), String> {
        if let Some(p) = one(&flags, "port", "SANDBOX_PORT") {
            config.port = p.parse().map_err(|_| format!("bad port {p}"))?;
        }
        if let Some(s) = one(&flags, "time-scale", "SANDBOX_TIME_SCALE") {
            config.time_scale = s.parse().map_err(|_| format!("bad time scale {s}"))?;
        }
        if let Some(n) = one(&flags, "max-in-flight", "SANDBOX_MAX_IN_FLIGHT") {
            config.max_in_flight_deliveries =
                n.parse().map_err(|_| format!("bad max-in-flight {n}"))?;
        }
        Ok(())
    })();
    if let Err(e) = parsed {
        eprintln!("sandbox: {e}");
        return ExitCode::from(2);
    }
    telemetry::init_subscriber(&std::env::var("APP_LOG_FORMAT").unwrap_or_else(|_| "auto".into()));
    let result = actix_web::rt::System::new().block_on(async move {
        let handle = sandbox::start(&config).await?;
        // The line scripts wait for: the port is bound and the keys are on disk.
        println!(
            "sandbox listening on {} (keys in {})",
            handle.base_url(),
            config.keys_dir.display()
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
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

fn verify_notification(args: &[String]) -> ExitCode {
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
fn run_verify(args: &[String]) -> Result<Result<String, String>, String> {
    let flags = flags(args)?;
    let need = |name: &str| one(&flags, name, "").ok_or_else(|| format!("--{name} is required"));
    let read = |path: String| std::fs::read(&path).map_err(|e| format!("{path}: {e}"));
    let headers: HashMap<String, String> =
        serde_json::from_slice(&read(need("headers")?)?).map_err(|e| format!("headers: {e}"))?;
    let body = read(need("body")?)?;
    let apiv3 = String::from_utf8(read(need("apiv3-key-file")?)?).map_err(|e| e.to_string())?;
    let apiv3 =
        ApiV3Key::parse(SecretString::from(apiv3.trim().to_string())).map_err(|e| e.to_string())?;

    let mut platform = PlatformKeys::new();
    let key_files = flags
        .get("platform-public-key")
        .cloned()
        .unwrap_or_default();
    let key_ids = flags
        .get("platform-public-key-id")
        .cloned()
        .unwrap_or_default();
    if key_files.len() != key_ids.len() {
        return Err("each --platform-public-key needs a --platform-public-key-id".into());
    }
    for (file, id) in key_files.iter().zip(key_ids) {
        let pem = keys::read_pem(file.as_ref()).map_err(|e| e.to_string())?;
        platform.insert(
            id,
            keys::public_key_from_pem(&pem).map_err(|e| e.to_string())?,
        );
    }
    for file in flags.get("platform-cert").cloned().unwrap_or_default() {
        let pem = keys::read_pem(file.as_ref()).map_err(|e| e.to_string())?;
        platform
            .insert_certificate_pem(&pem)
            .map_err(|e| e.to_string())?;
    }
    if platform.is_empty() {
        return Err(
            "give --platform-public-key with --platform-public-key-id, or --platform-cert".into(),
        );
    }
    let clock: Arc<dyn Clock> = match one(&flags, "now", "") {
        Some(now) => Arc::new(FixedClock(now.parse().map_err(|_| "bad --now")?)),
        None => Arc::new(SystemClock),
    };
    let verifier = NotificationVerifier::new(
        PlatformVerifier::with_clock(platform, clock),
        apiv3,
        need("mchid")?,
        need("appid")?,
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
