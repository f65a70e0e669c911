//! Build script: rebuild when a migration changes (they are embedded), and build the admin
//! console (`admin/`, a Vue app) into `OUT_DIR` so the binary serves it at `/admin/`.
//!
//! Where the console comes from, first match wins:
//! 1. `POINTS_ADMIN_BUILD=0`: no console (the server answers `/admin/` with how to get one).
//! 2. `npm` on PATH: `npm ci` (when `admin/node_modules` is missing or older than the lock
//!    file), then `vite build` into `OUT_DIR` (seconds; re-run only when the console's
//!    sources change).
//! 3. `admin/dist/index.html` exists (a build made beforehand, e.g. the Dockerfile's node
//!    stage): copied as it is.
//! 4. Otherwise no console, with a warning naming what is missing.
//!
//! A failed npm build is a warning, not a failed cargo build, so the server still builds on a
//! machine without the npm registry; CI fetches `/admin/` and an asset, so it notices.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let admin = manifest.join("admin");
    let target = out.join("admin-console");
    for input in [
        "src",
        "public",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
        "tsconfig.json",
        "dist/index.html",
    ] {
        // A path that does not exist would make cargo rerun this script on every build.
        let path = admin.join(input);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!("cargo:rerun-if-env-changed=POINTS_ADMIN_BUILD");

    let _ = fs::remove_dir_all(&target);
    fs::create_dir_all(&target).expect("create OUT_DIR/admin-console");
    let source = console(&admin, &target);
    println!("cargo:rustc-env=POINTS_ADMIN_SOURCE={source}");
    // rust-embed's folder must be a literal: write the derive with the absolute path.
    let embed = format!(
        "/// The admin console built into the binary ({source}).\n\
         #[derive(rust_embed::RustEmbed)]\n\
         #[folder = {path:?}]\n\
         #[exclude = \".vite/*\"]\n\
         pub struct Console;\n",
        path = target.display().to_string(),
    );
    fs::write(out.join("admin_console.rs"), embed).expect("write admin_console.rs");
}

/// Fills `target` with the built console; returns how (for the server's messages).
fn console(admin: &Path, target: &Path) -> &'static str {
    if env::var("POINTS_ADMIN_BUILD").as_deref() == Ok("0") {
        return "not built: POINTS_ADMIN_BUILD=0";
    }
    if !admin.join("package.json").is_file() {
        return "not built: no admin/ sources";
    }
    if which("npm") {
        match npm_build(admin, target) {
            Ok(()) => return "built by npm at compile time",
            Err(e) => println!("cargo:warning=admin console: npm build failed ({e})"),
        }
    }
    let dist = admin.join("dist");
    if dist.join("index.html").is_file() {
        return match copy_dir(&dist, target) {
            Ok(()) => "copied from admin/dist",
            Err(e) => {
                println!("cargo:warning=admin console: copying admin/dist failed: {e}");
                "not built: copying admin/dist failed"
            }
        };
    }
    println!(
        "cargo:warning=admin console not embedded: install Node.js >= 20.19 (npm) and rebuild, \
         or build admin/dist first; /admin/ will say so"
    );
    "not built: npm not found and no admin/dist"
}

fn which(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn npm_build(admin: &Path, target: &Path) -> Result<(), String> {
    let installed = admin.join("node_modules/.package-lock.json");
    let stale = match (
        modified(&installed),
        modified(&admin.join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => installed < lock,
        _ => true,
    };
    if stale {
        run(Command::new("npm")
            .args(["ci", "--no-progress", "--no-audit", "--no-fund"])
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
            .current_dir(admin))?;
    }
    run(Command::new(admin.join("node_modules/.bin/vite"))
        .args(["build", "--logLevel", "warn", "--emptyOutDir"])
        .arg("--outDir")
        .arg(target)
        .current_dir(admin))
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    Err(format!(
        "{command:?} exited with {}: {}",
        output.status,
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    ))
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()))?;
        } else {
            fs::copy(&path, to.join(entry.file_name()))?;
        }
    }
    Ok(())
}
