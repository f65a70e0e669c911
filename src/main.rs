// glibc malloc took about an eighth of the server's CPU under the notification load test
// (malloc_consolidate, unlink_chunk); mimalloc handles many small short-lived allocations
// across threads far better.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use points_app::config::Settings;
use points_app::startup::Application;
use points_app::telemetry;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("points-app: {e}");
            std::process::exit(2);
        }
    };
    telemetry::init_subscriber(&settings.log_format);
    let backends = settings.describe_backends();
    let env = settings.env.as_str();
    let app = Application::build(settings).await?;
    let addr = format!("http://{}:{}", app.state().settings.host, app.port());
    tracing::info!(category = "system", %addr, env, backends = %backends, "listening");
    println!("points-app listening on {addr} (env={env}; {backends})");
    if let Some(sandbox) = app.sandbox_url() {
        println!("wechat sandbox listening on {sandbox}");
    }
    app.run_until_stopped().await?;
    tracing::info!(category = "system", "stopped cleanly");
    Ok(())
}
