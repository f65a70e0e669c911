// glibc malloc took about an eighth of the server's CPU under the notification load test
// (malloc_consolidate, unlink_chunk); mimalloc handles many small short-lived allocations
// across threads far better.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::BufRead;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use points_app::app::admin_accounts;
use points_app::app::keys::{self, EncryptedColumn, RotationOptions};
use points_app::config::Settings;
use points_app::security::crypto::FieldCipher;
use points_app::startup::Application;
use points_app::storage::{self, Db};
use points_app::telemetry;
use secrecy::SecretString;

/// WeChat scan-to-pay with loyalty points: the server, and the commands that maintain its
/// database.
///
/// Every command reads the server's settings: `APP_*` variables, `DATABASE_URL`,
/// `REDIS_URL` and `WECHAT_*` (README.md lists them), or the file `APP_CONFIG_FILE` names.
#[derive(Debug, Parser)]
#[command(name = "points-app", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (what `points-app` alone does): apply pending migrations, listen on
    /// APP_HOST:APP_PORT, stop gracefully on SIGTERM/SIGINT.
    Serve,
    /// Apply the pending database migrations (under the migration lock) and exit.
    Migrate,
    /// Maintain admin accounts.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Re-encrypt every encrypted field still under a retired key with the current one
    /// (the first of APP_FIELD_KEYS). Resumable, and safe while servers are serving.
    RotateFieldKeys(RotateArgs),
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Set a new password for an admin, read from stdin (one line) or from the variable
    /// --password-env names, never from the command line. Clears the sign-in lock, ends the
    /// admin's sessions and writes an audit record.
    ResetPassword {
        /// The admin's username.
        username: String,
        /// Read the new password from this environment variable instead of stdin.
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
    },
}

#[derive(Debug, Args)]
struct RotateArgs {
    /// Rows read and rewritten per transaction.
    #[arg(long, default_value_t = keys::DEFAULT_BATCH_SIZE as u64,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    batch_size: u64,
    /// Start after this primary key (the last_id of a progress line); applies to every table
    /// walked, so give --table with it.
    #[arg(long, value_name = "ID")]
    from_id: Option<String>,
    /// Stop after this many rows under a retired key; run again to continue.
    #[arg(long, value_name = "ROWS")]
    limit: Option<u64>,
    /// Walk only this table (default: every table with an encrypted column).
    #[arg(long, value_enum)]
    table: Option<Table>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Table {
    /// users.phone_cipher
    Users,
    /// merchants.contact_phone_cipher
    Merchants,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("points-app: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Migrate => maintenance("migrate", migrate(settings)),
        Command::Admin(AdminCommand::ResetPassword {
            username,
            password_env,
        }) => {
            let password = match read_password(password_env.as_deref()) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("points-app admin reset-password: {e}");
                    return ExitCode::from(2);
                }
            };
            maintenance(
                "admin reset-password",
                reset_password(settings, username, password),
            )
        }
        Command::RotateFieldKeys(args) => maintenance("rotate-field-keys", rotate(settings, args)),
    }
}

fn serve(settings: Settings) -> ExitCode {
    let result = actix_web::rt::System::new().block_on(async move {
        telemetry::init_subscriber(&settings.log_format);
        let backends = settings.describe_backends();
        let env = settings.env.as_str();
        let app = Application::build(settings).await?;
        let addr = format!("http://{}:{}", app.state().settings.host, app.port());
        tracing::info!(category = "system", %addr, env, backends = %backends, "listening");
        print!("{}", banner(&app, env, &backends));
        app.run_until_stopped().await?;
        tracing::info!(category = "system", "stopped cleanly");
        anyhow::Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("points-app: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What a person starting the server wants to open: the console, the API, the probes.
fn banner(app: &Application, env: &str, backends: &str) -> String {
    let settings = &app.state().settings;
    // A wildcard listen address is reached on loopback from this machine.
    let host = match settings.host.as_str() {
        "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
        host => host,
    };
    let base = format!("http://{host}:{}", app.port());
    let console = match points_app::http::admin_web::console_source(settings.admin_dir.as_deref()) {
        Ok(source) => format!("{base}/admin/  ({source})"),
        Err(why) => format!("{base}/admin/  answers ADMIN_NOT_BUILT: {why}"),
    };
    let mut text = format!(
        "points-app listening on http://{}:{} (env={env}; {backends})\n  \
         admin console  {console}\n  \
         API            {base}/api/  (docs {base}/api-docs, OpenAPI {base}/api-docs/openapi.json)\n  \
         operations     {base}/healthz  {base}/readyz  {base}/metrics\n",
        settings.host,
        app.port(),
    );
    if let Some(sandbox) = app.sandbox_url() {
        text.push_str(&format!("wechat sandbox listening on {sandbox}\n"));
    }
    text
}

/// Runs a maintenance command on a runtime of its own (no actix system, no listener).
fn maintenance(
    name: &str,
    command: impl std::future::Future<Output = anyhow::Result<()>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("points-app {name}: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("points-app {name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let applied = storage::migrate(&settings).await?;
    let db = settings.describe_backends();
    if applied.is_empty() {
        println!("points-app migrate: the schema is up to date ({db})");
    } else {
        println!("points-app migrate: applied {} ({db})", applied.join(", "));
    }
    Ok(())
}

/// The new password: from the named environment variable, or the first line of stdin.
fn read_password(env: Option<&str>) -> Result<SecretString, String> {
    let password = match env {
        Some(name) => std::env::var(name).map_err(|_| format!("{name} is not set"))?,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| format!("reading the password from stdin: {e}"))?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if password.is_empty() {
        return Err(match env {
            Some(name) => format!("{name} is empty"),
            None => "no password on stdin (give it as one line, or use --password-env VAR)".into(),
        });
    }
    Ok(SecretString::from(password))
}

async fn reset_password(
    settings: Settings,
    username: String,
    password: SecretString,
) -> anyhow::Result<()> {
    let db = Db::connect(&settings).await?;
    let operator = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let reset = admin_accounts::reset_admin_password(&db, &username, &password, &operator).await?;
    println!(
        "points-app admin reset-password: new password set for admin {username:?}; \
         sign-in lock cleared ({} failed sign-ins), {} session(s) ended",
        reset.failed_logins_before,
        reset.ended_sessions.len()
    );
    Ok(())
}

async fn rotate(settings: Settings, args: RotateArgs) -> anyhow::Result<()> {
    let fields = FieldCipher::new(settings.field_keys.as_ref(), &settings.field_key)?;
    let db = Db::connect(&settings).await?;
    let options = RotationOptions {
        batch_size: usize::try_from(args.batch_size)?,
        from_id: args.from_id,
        limit: args.limit,
        columns: match args.table {
            None => EncryptedColumn::ALL.to_vec(),
            Some(Table::Users) => vec![EncryptedColumn::UserPhone],
            Some(Table::Merchants) => vec![EncryptedColumn::MerchantContactPhone],
        },
    };
    eprintln!(
        "rotate-field-keys: current key {}, key ring {}",
        fields.current_key_id(),
        fields.key_ids().join(", ")
    );
    let summary = keys::rotate_field_keys(&db, &fields, &options, |progress| {
        eprintln!("rotate-field-keys: {progress}");
    })
    .await?;
    println!("rotate-field-keys: done: {summary}");
    Ok(())
}
