//! Typed settings: embedded defaults < optional config file < `APP_*` environment variables,
//! plus the conventional `DATABASE_URL` and `REDIS_URL` and the `WECHAT_*` group.
//!
//! Secrets live in `SecretString` so they never reach a log line or a `Debug` print.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The shortest admin password production accepts.
pub const MIN_ADMIN_PASSWORD_CHARS: usize = 12;

/// The placeholder secrets of the embedded default. Production refuses to start on them.
pub const DEFAULT_JWT_SECRET: &str = "dev-only-jwt-secret-change-me-in-production";
pub const DEFAULT_FIELD_KEY: &str = "dev-only-field-key-change-me-in-production";

/// The placeholder of `APP_QR_BASE_URL`: codes printed with it open nothing real.
pub const DEFAULT_QR_BASE_URL: &str = "https://pay.example.com/q";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Local,
    Test,
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Local => "local",
            Environment::Test => "test",
            Environment::Production => "production",
        }
    }
}

/// Most threads `APP_PAYMENT_SHARDS` or `APP_POINTS_ARBITERS` may ask for.
const MAX_THREADS: usize = 64;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub env: Environment,
    /// Where the embedded SQLite file and generated sandbox keys live.
    pub data_dir: PathBuf,
    /// `mysql://…` or `sqlite://…`; `None` means an SQLite file under `data_dir`.
    pub database_url: Option<SecretString>,
    pub redis_url: Option<SecretString>,
    /// Prefix for every Redis key, so several deployments (or tests) can share one Redis.
    pub redis_prefix: String,
    pub db_pool_size: u32,
    /// `json`, `pretty`, or `auto` (JSON unless stdout is a terminal).
    pub log_format: String,
    pub jwt_secret: SecretString,
    /// Key material for field encryption (phone numbers) and blind indexes.
    pub field_key: SecretString,
    /// Versioned field keys, `"v2:secret,v1:secret"`, the first encrypting new values
    /// (`APP_FIELD_KEYS`). `field_key` stays `v1` and keys the blind index.
    #[serde(default)]
    pub field_keys: Option<SecretString>,
    pub admin_username: String,
    pub admin_password: Option<SecretString>,
    /// Port of the in-process WeChat sandbox in the embedded default; `port + 1` when unset.
    pub sandbox_port: Option<u16>,
    /// Serve the admin console at `/admin/` from this directory (a `vite build` output, for
    /// working on the console) instead of the one built into the binary.
    pub admin_dir: Option<PathBuf>,
    /// Where the embedded sandbox keeps its generated keys (`data_dir/sandbox` when unset).
    pub sandbox_keys_dir: Option<PathBuf>,
    /// Scales the sandbox's notification retry delays (1.0 = WeChat's real schedule).
    pub sandbox_time_scale: f64,
    /// Seconds an idle points actor lives before it stops.
    pub actor_idle_secs: u64,
    /// Payment shards (one thread each); 0 means one per core.
    pub payment_shards: usize,
    /// Threads the points actors run on.
    pub points_arbiters: usize,
    /// Seconds between expiry sweeps of points lots (0 disables the sweep).
    pub points_expiry_sweep_secs: u64,
    pub rate_limit_payments_per_min: u32,
    pub rate_limit_points_queries_per_min: u32,
    pub rate_limit_login_per_min_per_ip: u32,
    /// Staff invite codes one user may try per minute (`POST /api/staff/invites/redeem`).
    pub rate_limit_staff_redeem_per_min: u32,
    /// Graceful shutdown: how long in-flight requests get to finish.
    pub shutdown_timeout_secs: u64,
    /// Origins (comma-separated, e.g. `https://console.example.com`) whose pages may call the
    /// API from a browser; empty: none (cross-origin reads are refused by browsers).
    pub cors_origins: String,
    /// Reverse proxies (comma-separated addresses and CIDR blocks) whose `X-Forwarded-For`
    /// names the client; empty: the socket peer is the client.
    pub trusted_proxies: String,
    /// How long a request body may take to arrive in full (a slow or stalled body is
    /// answered 408 and the connection closed).
    pub body_timeout_secs: u64,
    /// The link printed payment codes hold: `{qr_base_url}?code={id}`. WeChat's rule "scan
    /// an ordinary QR code to open the mini-program" must map this prefix to
    /// `pages/pay/index`; other scanners open the link itself (`APP_QR_BASE_URL`).
    pub qr_base_url: String,
    /// How long an unpaid order lives before it is closed (WeChat's `time_expire`).
    pub order_ttl_secs: u64,
    /// WeChat Pay's fee rate in basis points (60 = 0.6%, the usual rate for ordinary
    /// merchants), for merchant settlements; 0..=10000.
    pub wechat_fee_rate_bp: u32,
    /// How often each instance rescans the database for open orders that are due (past
    /// their expiry, or paying without an answer), so orders of an instance that died are
    /// still closed or re-queried.
    pub supervisor_rescan_secs: u64,
    /// An order paying this long without a notification is asked about at WeChat (and again
    /// as often while it stays paying).
    pub supervisor_query_after_secs: u64,
    /// This instance's name in order leases (`<hostname>-<random>` when unset); unique per
    /// running process.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// When (China Standard Time, `HH:MM`, 10:00 or later) the daily job reconciles the day
    /// before against WeChat's trade bill, or `off`. Unset: `10:30`, except in the test
    /// environment, where the job is off unless asked for (`APP_RECONCILE_AT`).
    #[serde(default)]
    pub reconcile_at: Option<String>,
    /// Subscribe-message template for "payment succeeded" (`off`: no message; empty: the
    /// sandbox's in sandbox mode, none otherwise).
    #[serde(default)]
    pub subscribe_template_payment: String,
    /// Subscribe-message template for "refund succeeded" (as above).
    #[serde(default)]
    pub subscribe_template_refund: String,
    /// Fault injection for crash tests: `after_paid_commit` makes the process SIGKILL
    /// itself right after an order's paid + outbox commit. Refused in production.
    #[serde(default)]
    pub fault_kill_at: Option<FaultPoint>,
    #[serde(default)]
    pub wechat: WechatSettings,
}

/// Where a crash test may make the process kill itself (`APP_FAULT_KILL_AT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultPoint {
    /// Right after an order's paid + outbox commit, before its points are awarded.
    AfterPaidCommit,
}

/// WeChat Pay and login settings (`WECHAT_*`). When none is given the server runs in sandbox
/// mode: it starts the local stand-in for WeChat and uses its keys.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WechatSettings {
    pub appid: Option<String>,
    pub app_secret: Option<SecretString>,
    pub mchid: Option<String>,
    pub merchant_serial_no: Option<String>,
    pub merchant_private_key_file: Option<PathBuf>,
    pub apiv3_key: Option<SecretString>,
    pub platform_public_key_file: Option<PathBuf>,
    pub platform_public_key_id: Option<String>,
    pub platform_certificate_file: Option<PathBuf>,
    pub pay_base_url: Option<String>,
    pub api_base_url: Option<String>,
    pub notify_base_url: Option<String>,
}

impl WechatSettings {
    /// True when no `WECHAT_*` setting was given: the server starts its own sandbox.
    pub fn is_sandbox(&self) -> bool {
        self.appid.is_none()
            && self.mchid.is_none()
            && self.merchant_private_key_file.is_none()
            && self.apiv3_key.is_none()
            && self.pay_base_url.is_none()
            && self.api_base_url.is_none()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(#[from] config::ConfigError),
    #[error("refusing to start in production: {0}")]
    Unsafe(String),
    #[error("invalid setting: {0}")]
    Invalid(String),
}

/// Which database the server talks to, derived from `database_url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Mysql,
    Sqlite,
}

impl Settings {
    /// Loads settings from the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(&vars)
    }

    /// Loads settings from the given environment (tests pass their own).
    pub fn load_from(vars: &[(String, String)]) -> Result<Self, ConfigError> {
        let get = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let mut builder = config::Config::builder()
            .set_default("host", "127.0.0.1")?
            .set_default("port", 8080)?
            .set_default("env", "local")?
            .set_default("data_dir", "./data")?
            .set_default("redis_prefix", "points")?
            .set_default("db_pool_size", 16)?
            .set_default("log_format", "auto")?
            .set_default("jwt_secret", DEFAULT_JWT_SECRET)?
            .set_default("field_key", DEFAULT_FIELD_KEY)?
            .set_default("admin_username", "admin")?
            .set_default("actor_idle_secs", 300)?
            .set_default("payment_shards", 0)?
            .set_default("points_arbiters", 2)?
            .set_default("points_expiry_sweep_secs", 600)?
            .set_default("rate_limit_payments_per_min", 5)?
            .set_default("rate_limit_points_queries_per_min", 100)?
            .set_default("rate_limit_login_per_min_per_ip", 60)?
            .set_default("rate_limit_staff_redeem_per_min", 10)?
            .set_default("shutdown_timeout_secs", 30)?
            .set_default("body_timeout_secs", 10)?
            .set_default("trusted_proxies", "")?
            .set_default("cors_origins", "")?
            .set_default("order_ttl_secs", 900)?
            .set_default("wechat_fee_rate_bp", 60)?
            .set_default("supervisor_rescan_secs", 30)?
            .set_default("supervisor_query_after_secs", 60)?
            .set_default("sandbox_time_scale", 1.0)?
            .set_default("qr_base_url", DEFAULT_QR_BASE_URL)?;
        if let Some(file) = get("APP_CONFIG_FILE") {
            builder = builder.add_source(config::File::with_name(&file).required(true));
        } else {
            builder = builder.add_source(config::File::with_name("config/app").required(false));
        }
        let app_env: config::Map<String, String> = vars
            .iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix("APP_")?;
                (key != "CONFIG_FILE").then(|| (key.to_ascii_lowercase(), v.clone()))
            })
            .collect();
        let wechat_env: config::Map<String, String> = vars
            .iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix("WECHAT_")?;
                Some((format!("wechat.{}", key.to_ascii_lowercase()), v.clone()))
            })
            .collect();
        builder = builder.add_source(
            config::Environment::default()
                .source(Some(app_env))
                .try_parsing(true),
        );
        for (k, v) in wechat_env {
            builder = builder.set_override(k, v)?;
        }
        if let Some(url) = get("DATABASE_URL").filter(|u| !u.is_empty()) {
            builder = builder.set_override("database_url", url)?;
        }
        if let Some(url) = get("REDIS_URL").filter(|u| !u.is_empty()) {
            builder = builder.set_override("redis_url", url)?;
        }
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.check()?;
        Ok(settings)
    }

    /// True when the server listens on loopback only.
    fn loopback_only(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Refuses unsafe settings, naming the missing setting. Outside production the public
    /// development secrets are fine on loopback only: a server others can reach on them
    /// accepts tokens anyone can forge.
    fn check(&self) -> Result<(), ConfigError> {
        self.check_qr_base_url()?;
        if self.wechat_fee_rate_bp > crate::domain::money::MAX_FEE_RATE_BP {
            return Err(ConfigError::Invalid(format!(
                "APP_WECHAT_FEE_RATE_BP={} must be 0..={} basis points (60 = 0.6%)",
                self.wechat_fee_rate_bp,
                crate::domain::money::MAX_FEE_RATE_BP
            )));
        }
        self.reconcile_time()?;
        if self.payment_shards > MAX_THREADS || !(1..=MAX_THREADS).contains(&self.points_arbiters) {
            return Err(ConfigError::Invalid(format!(
                "APP_PAYMENT_SHARDS={} must be 0..={MAX_THREADS} and APP_POINTS_ARBITERS={} 1..={MAX_THREADS}",
                self.payment_shards, self.points_arbiters
            )));
        }
        if self.env != Environment::Production {
            let mut public = Vec::new();
            if self.jwt_secret.expose_secret() == DEFAULT_JWT_SECRET {
                public.push("APP_JWT_SECRET");
            }
            if self.field_key.expose_secret() == DEFAULT_FIELD_KEY {
                public.push("APP_FIELD_KEY");
            }
            if !public.is_empty() && !self.loopback_only() {
                return Err(ConfigError::Unsafe(format!(
                    "APP_HOST={} is reachable beyond this machine: set {} (not the public \
                     development defaults), or listen on 127.0.0.1",
                    self.host,
                    public.join(" and ")
                )));
            }
            return Ok(());
        }
        let mut missing = Vec::new();
        if self.jwt_secret.expose_secret() == DEFAULT_JWT_SECRET
            || self.jwt_secret.expose_secret().len() < 32
        {
            missing.push("APP_JWT_SECRET (at least 32 characters, not the default)");
        }
        if self.field_key.expose_secret() == DEFAULT_FIELD_KEY
            || self.field_key.expose_secret().len() < 32
        {
            missing.push("APP_FIELD_KEY (at least 32 characters, not the default)");
        }
        if self.database_kind() != DatabaseKind::Mysql {
            missing.push("DATABASE_URL (mysql://…; SQLite is for local use only)");
        }
        if self.redis_url.is_none() {
            missing.push("REDIS_URL");
        }
        match &self.admin_password {
            None => missing.push("APP_ADMIN_PASSWORD"),
            Some(p) if p.expose_secret().chars().count() < MIN_ADMIN_PASSWORD_CHARS => {
                missing.push("APP_ADMIN_PASSWORD (at least 12 characters)")
            }
            Some(_) => {}
        }
        if self.wechat.is_sandbox() {
            missing.push("WECHAT_* (the sandbox is not for production)");
        }
        if self.fault_kill_at.is_some() {
            missing.push("no APP_FAULT_KILL_AT (fault injection is for tests)");
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Unsafe(format!("set {}", missing.join(", "))))
        }
    }

    /// `APP_QR_BASE_URL` is an absolute link without a fragment or spaces (WeChat matches
    /// the printed link by prefix, and a `#` would hide `code=` from the page); https in
    /// production, where WeChat requires it.
    fn check_qr_base_url(&self) -> Result<(), ConfigError> {
        let url = self.qr_base_url.as_str();
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        let host = rest.map(|r| r.split(['/', '?']).next().unwrap_or(""));
        let bad = match host {
            None | Some("") => Some("must start with https:// and name a host"),
            Some(_) if url.contains('#') || url.chars().any(char::is_whitespace) => {
                Some("must have no fragment (#) and no spaces")
            }
            Some(_) if self.env == Environment::Production && !url.starts_with("https://") => {
                Some("must be https in production (WeChat opens https links only)")
            }
            Some(_) => None,
        };
        match bad {
            Some(why) => Err(ConfigError::Invalid(format!("APP_QR_BASE_URL={url} {why}"))),
            None => Ok(()),
        }
    }

    /// The CST time of day of the daily reconciliation, or `None` when it is off (see
    /// `reconcile_at`). 10:00 or later: WeChat's bill of the day before is ready after 10:00.
    pub fn reconcile_time(&self) -> Result<Option<chrono::NaiveTime>, ConfigError> {
        let value = match self.reconcile_at.as_deref().map(str::trim) {
            Some(v) if !v.is_empty() => v,
            _ if self.env == Environment::Test => return Ok(None),
            _ => "10:30",
        };
        if value.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let earliest = chrono::NaiveTime::from_hms_opt(10, 0, 0).unwrap_or(chrono::NaiveTime::MIN);
        match chrono::NaiveTime::parse_from_str(value, "%H:%M") {
            Ok(t) if t >= earliest => Ok(Some(t)),
            _ => Err(ConfigError::Invalid(format!(
                "APP_RECONCILE_AT={value} must be HH:MM, 10:00 or later (CST), or off"
            ))),
        }
    }

    pub fn database_kind(&self) -> DatabaseKind {
        match &self.database_url {
            Some(url) if url.expose_secret().starts_with("mysql://") => DatabaseKind::Mysql,
            _ => DatabaseKind::Sqlite,
        }
    }

    /// The SQLite path: from `sqlite://PATH` or the embedded default under `data_dir`.
    pub fn sqlite_path(&self) -> PathBuf {
        match &self.database_url {
            Some(url) => {
                let url = url.expose_secret();
                let path = url
                    .strip_prefix("sqlite://")
                    .or_else(|| url.strip_prefix("sqlite:"))
                    .unwrap_or(url);
                PathBuf::from(path)
            }
            None => self.data_dir.join("points.sqlite"),
        }
    }

    pub fn sandbox_port(&self) -> u16 {
        self.sandbox_port.unwrap_or_else(|| {
            if self.port == 0 {
                0
            } else {
                self.port.saturating_add(1)
            }
        })
    }

    pub fn sandbox_keys_dir(&self) -> PathBuf {
        self.sandbox_keys_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("sandbox"))
    }

    /// Describes the backends in use without revealing credentials.
    pub fn describe_backends(&self) -> String {
        let db = match self.database_kind() {
            DatabaseKind::Mysql => format!(
                "mysql ({})",
                redact_url(
                    self.database_url
                        .as_ref()
                        .map(|u| u.expose_secret())
                        .unwrap_or("")
                )
            ),
            DatabaseKind::Sqlite => format!("sqlite ({})", self.sqlite_path().display()),
        };
        let cache = match &self.redis_url {
            Some(url) => format!("redis ({})", redact_url(url.expose_secret())),
            None => "in-memory".to_string(),
        };
        let wechat = if self.wechat.is_sandbox() {
            "sandbox"
        } else {
            "wechat"
        };
        format!("database={db} cache={cache} nonce_store={cache} wechat={wechat}")
    }
}

/// `scheme://user:pass@host/db` -> `scheme://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((creds, host)) => {
            let user = creds.split(':').next().unwrap_or("");
            if creds.contains(':') {
                format!("{scheme}://{user}:***@{host}")
            } else {
                format!("{scheme}://{user}@{host}")
            }
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let s = Settings::load_from(&[]).unwrap();
        assert_eq!(s.host, "127.0.0.1");
        assert_eq!(s.port, 8080);
        assert_eq!(s.env, Environment::Local);
        assert_eq!(s.database_kind(), DatabaseKind::Sqlite);
        assert!(s.redis_url.is_none());
        assert!(s.wechat.is_sandbox());
        assert_eq!(s.sandbox_port(), 8081);
    }

    #[test]
    fn environment_overrides_defaults() {
        let s = Settings::load_from(&vars(&[
            ("APP_HOST", "0.0.0.0"),
            ("APP_JWT_SECRET", "0123456789abcdef0123456789abcdef-jwt"),
            ("APP_FIELD_KEY", "0123456789abcdef0123456789abcdef-field"),
            ("APP_PORT", "9000"),
            ("APP_RATE_LIMIT_PAYMENTS_PER_MIN", "1000"),
            ("DATABASE_URL", "mysql://root:pw@127.0.0.1:3306/x"),
            ("WECHAT_APPID", "wx123"),
        ]))
        .unwrap();
        assert_eq!(s.host, "0.0.0.0");
        assert_eq!(s.port, 9000);
        assert_eq!(s.sandbox_port(), 9001);
        assert_eq!(s.rate_limit_payments_per_min, 1000);
        assert_eq!(s.database_kind(), DatabaseKind::Mysql);
        assert_eq!(s.wechat.appid.as_deref(), Some("wx123"));
        assert!(!s.wechat.is_sandbox());
    }

    #[test]
    fn thread_counts_are_bounded() {
        let s = Settings::load_from(&vars(&[
            ("APP_PAYMENT_SHARDS", "1"),
            ("APP_POINTS_ARBITERS", "1"),
        ]))
        .unwrap();
        assert_eq!((s.payment_shards, s.points_arbiters), (1, 1));
        for (name, value) in [
            ("APP_PAYMENT_SHARDS", "65"),
            ("APP_POINTS_ARBITERS", "0"),
            ("APP_POINTS_ARBITERS", "65"),
        ] {
            let err = Settings::load_from(&vars(&[(name, value)])).unwrap_err();
            assert!(err.to_string().contains(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn production_refuses_defaults_and_names_each_missing_setting() {
        let err = Settings::load_from(&vars(&[("APP_ENV", "production")])).unwrap_err();
        let msg = err.to_string();
        for name in [
            "APP_JWT_SECRET",
            "APP_FIELD_KEY",
            "DATABASE_URL",
            "REDIS_URL",
            "APP_ADMIN_PASSWORD",
            "WECHAT_",
        ] {
            assert!(msg.contains(name), "{name} missing from: {msg}");
        }
    }

    #[test]
    fn development_secrets_are_refused_beyond_loopback() {
        for host in ["0.0.0.0", "::", "[::]", "10.0.0.5"] {
            let err = Settings::load_from(&vars(&[("APP_HOST", host)])).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("APP_JWT_SECRET"), "{host}: {msg}");
            assert!(msg.contains("APP_FIELD_KEY"), "{host}: {msg}");
        }
        // Only the JWT secret set: the field key is still named.
        let err = Settings::load_from(&vars(&[
            ("APP_HOST", "0.0.0.0"),
            ("APP_JWT_SECRET", "0123456789abcdef0123456789abcdef-jwt"),
        ]))
        .unwrap_err();
        assert!(!err.to_string().contains("APP_JWT_SECRET"), "{err}");
        for host in ["127.0.0.1", "::1", "[::1]", "localhost"] {
            assert!(
                Settings::load_from(&vars(&[("APP_HOST", host)])).is_ok(),
                "{host}"
            );
        }
    }

    #[test]
    fn production_starts_when_everything_is_set() {
        let s = Settings::load_from(&vars(&[
            ("APP_ENV", "production"),
            ("APP_JWT_SECRET", "0123456789abcdef0123456789abcdef-jwt"),
            ("APP_FIELD_KEY", "0123456789abcdef0123456789abcdef-field"),
            ("APP_ADMIN_PASSWORD", "a-long-admin-password"),
            ("DATABASE_URL", "mysql://app:pw@db:3306/points"),
            ("REDIS_URL", "redis://redis:6379"),
            ("WECHAT_APPID", "wx123"),
            ("WECHAT_MCHID", "1900000001"),
        ]))
        .unwrap();
        assert_eq!(s.env, Environment::Production);
    }

    #[test]
    fn production_refuses_a_weak_admin_password() {
        let err = Settings::load_from(&vars(&[
            ("APP_ENV", "production"),
            ("APP_JWT_SECRET", "0123456789abcdef0123456789abcdef-jwt"),
            ("APP_FIELD_KEY", "0123456789abcdef0123456789abcdef-field"),
            ("APP_ADMIN_PASSWORD", "admin123"),
            ("DATABASE_URL", "mysql://app:pw@db:3306/points"),
            ("REDIS_URL", "redis://redis:6379"),
            ("WECHAT_APPID", "wx123"),
            ("WECHAT_MCHID", "1900000001"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().contains("APP_ADMIN_PASSWORD (at least 12"),
            "{err}"
        );
    }

    #[test]
    fn production_refuses_fault_injection() {
        let err = Settings::load_from(&vars(&[
            ("APP_ENV", "production"),
            ("APP_JWT_SECRET", "0123456789abcdef0123456789abcdef-jwt"),
            ("APP_FIELD_KEY", "0123456789abcdef0123456789abcdef-field"),
            ("APP_ADMIN_PASSWORD", "a-long-admin-password"),
            ("DATABASE_URL", "mysql://app:pw@db:3306/points"),
            ("REDIS_URL", "redis://redis:6379"),
            ("WECHAT_APPID", "wx123"),
            ("WECHAT_MCHID", "1900000001"),
            ("APP_FAULT_KILL_AT", "after_paid_commit"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("APP_FAULT_KILL_AT"), "{err}");
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings::load_from(&vars(&[(
            "DATABASE_URL",
            "mysql://root:hunter2@127.0.0.1:3306/x",
        )]))
        .unwrap();
        let shown = format!("{s:?} {}", s.describe_backends());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains(DEFAULT_JWT_SECRET), "{shown}");
    }

    /// The shipped examples, as a settings file would be read: `config/app.example.toml`
    /// (through `APP_CONFIG_FILE`) and `.env.example` (as variables).
    const EXAMPLE_TOML: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/app.example.toml");
    const EXAMPLE_ENV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example");

    fn read(path: &str) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// `# key = value` lines of the example file, the settings it shows but leaves off.
    fn commented_toml_keys(text: &str) -> impl Iterator<Item = &str> {
        text.lines().filter_map(|line| {
            let rest = line.strip_prefix("# ")?;
            let (key, _) = rest.split_once(" = ")?;
            key.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                .then_some(rest)
        })
    }

    /// Every `NAME=value` of `.env.example` (all of them commented out there).
    fn example_env_vars() -> Vec<(String, String)> {
        read(EXAMPLE_ENV)
            .lines()
            .filter_map(|line| {
                let (name, value) = line.strip_prefix("# ")?.split_once('=')?;
                name.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                    .then(|| (name.to_string(), value.to_string()))
            })
            .collect()
    }

    #[test]
    fn example_config_file_parses_into_settings() {
        let s = Settings::load_from(&vars(&[("APP_CONFIG_FILE", EXAMPLE_TOML)])).unwrap();
        // Its uncommented values are the defaults.
        assert_eq!(s.port, 8080);
        assert_eq!(s.admin_dir, None, "the console built into the binary");
        assert!(s.wechat.is_sandbox());

        // With every commented key enabled too (a copy, so the example stays as shipped).
        let text = read(EXAMPLE_TOML);
        let enabled: Vec<&str> = commented_toml_keys(&text).collect();
        assert!(enabled.len() > 10, "{enabled:?}");
        let mut full = String::new();
        for line in text.lines() {
            full.push_str(
                line.strip_prefix("# ")
                    .filter(|l| enabled.contains(l))
                    .unwrap_or(line),
            );
            full.push('\n');
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.toml");
        std::fs::write(&path, full).unwrap();
        let s = Settings::load_from(&vars(&[("APP_CONFIG_FILE", path.to_str().unwrap())])).unwrap();
        assert_eq!(s.database_kind(), DatabaseKind::Mysql);
        assert!(s.redis_url.is_some());
        assert!(s.admin_password.is_some());
        assert_eq!(s.fault_kill_at, Some(FaultPoint::AfterPaidCommit));
        assert_eq!(s.wechat.appid.as_deref(), Some("wx0000000000000000"));
        assert!(s.wechat.apiv3_key.is_some());
        assert!(s.wechat.notify_base_url.is_some());
        assert!(!s.wechat.is_sandbox());
    }

    #[test]
    fn example_env_file_parses_and_matches_the_example_config_file() {
        let env: Vec<(String, String)> = example_env_vars()
            .into_iter()
            .filter(|(k, _)| k != "APP_CONFIG_FILE")
            .collect();
        let s = Settings::load_from(&env).unwrap();
        assert_eq!(s.database_kind(), DatabaseKind::Mysql);
        assert_eq!(s.instance_id.as_deref(), Some("points-app-1"));
        assert_eq!(s.wechat.mchid.as_deref(), Some("1900000000"));

        // The same settings in both examples: APP_X is `x`, WECHAT_X is `x` under [wechat].
        let from_env: std::collections::BTreeSet<String> = env
            .iter()
            .filter_map(|(k, _)| match k.as_str() {
                "RUST_LOG" => None,
                "DATABASE_URL" | "REDIS_URL" => Some(k.to_ascii_lowercase()),
                _ => k
                    .strip_prefix("APP_")
                    .map(str::to_ascii_lowercase)
                    .or_else(|| {
                        k.strip_prefix("WECHAT_")
                            .map(|w| format!("wechat.{}", w.to_ascii_lowercase()))
                    }),
            })
            .collect();
        let mut from_toml = std::collections::BTreeSet::new();
        let mut table = "";
        for line in read(EXAMPLE_TOML).lines() {
            let line = line.strip_prefix("# ").unwrap_or(line);
            if line == "[wechat]" {
                table = "wechat.";
            } else if let Some((key, _)) = line.split_once(" = ")
                && key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                from_toml.insert(format!("{table}{key}"));
            }
        }
        assert_eq!(from_env, from_toml);
    }

    #[test]
    fn every_setting_in_the_readme_tables_is_in_env_example() {
        let readme = read(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        let listed: Vec<String> = example_env_vars().into_iter().map(|(k, _)| k).collect();
        let mut missing = Vec::new();
        for row in readme.lines().filter(|l| l.starts_with("| `")) {
            let cell = row.split('|').nth(1).unwrap_or("");
            for name in cell.split('`').skip(1).step_by(2) {
                let setting = ["APP_", "WECHAT_", "DATABASE_URL", "REDIS_URL", "RUST_LOG"]
                    .iter()
                    .any(|p| name.starts_with(p));
                if setting && !listed.iter().any(|l| l == name) {
                    missing.push(name.to_string());
                }
            }
        }
        assert!(missing.is_empty(), "not in .env.example: {missing:?}");
    }

    #[test]
    fn the_daily_reconciliation_is_at_10_30_off_in_tests_and_checked() {
        let s = Settings::load_from(&[]).unwrap();
        assert_eq!(
            s.reconcile_time().unwrap(),
            chrono::NaiveTime::from_hms_opt(10, 30, 0)
        );
        let s = Settings::load_from(&vars(&[("APP_ENV", "test")])).unwrap();
        assert_eq!(s.reconcile_time().unwrap(), None);
        let s = Settings::load_from(&vars(&[("APP_ENV", "test"), ("APP_RECONCILE_AT", "11:05")]))
            .unwrap();
        assert_eq!(
            s.reconcile_time().unwrap(),
            chrono::NaiveTime::from_hms_opt(11, 5, 0)
        );
        let s = Settings::load_from(&vars(&[("APP_RECONCILE_AT", "off")])).unwrap();
        assert_eq!(s.reconcile_time().unwrap(), None);
        for bad in ["09:59", "25:00", "10.30", "soon"] {
            let err = Settings::load_from(&vars(&[("APP_RECONCILE_AT", bad)])).unwrap_err();
            assert!(err.to_string().contains("APP_RECONCILE_AT"), "{bad}: {err}");
        }
    }

    #[test]
    fn qr_base_url_is_an_absolute_link() {
        let s = Settings::load_from(&[]).unwrap();
        assert_eq!(s.qr_base_url, DEFAULT_QR_BASE_URL);
        let s =
            Settings::load_from(&vars(&[("APP_QR_BASE_URL", "https://pay.shop.cn/q")])).unwrap();
        assert_eq!(s.qr_base_url, "https://pay.shop.cn/q");
        assert!(Settings::load_from(&vars(&[("APP_QR_BASE_URL", "http://127.0.0.1/q")])).is_ok());
        for bad in [
            "pay.shop.cn/q",
            "https://",
            "https://x.cn/q#a",
            "https://x.cn/a b",
            "ftp://x.cn",
        ] {
            let err = Settings::load_from(&vars(&[("APP_QR_BASE_URL", bad)])).unwrap_err();
            assert!(err.to_string().contains("APP_QR_BASE_URL"), "{bad}: {err}");
        }
        let err = Settings::load_from(&vars(&[
            ("APP_ENV", "production"),
            ("APP_QR_BASE_URL", "http://pay.shop.cn/q"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("https in production"), "{err}");
    }

    #[test]
    fn sqlite_url_forms() {
        let s = Settings::load_from(&vars(&[("DATABASE_URL", "sqlite:///tmp/a.db")])).unwrap();
        assert_eq!(s.sqlite_path(), PathBuf::from("/tmp/a.db"));
        let s = Settings::load_from(&vars(&[("DATABASE_URL", "sqlite://rel.db")])).unwrap();
        assert_eq!(s.sqlite_path(), PathBuf::from("rel.db"));
    }
}
