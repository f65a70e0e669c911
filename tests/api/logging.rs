//! Security logging: refusals are logged in the security category, and no log line carries an
//! unmasked phone number (the log writer masks them).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use points_app::security::mask::MaskingMakeWriter;
use serde_json::json;

use crate::identity::*;

#[derive(Clone)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs, once per test binary, a global JSON subscriber writing through the same masking
/// writer as production into memory. `None` when another subscriber was installed first.
fn captured_logs() -> Option<Arc<Mutex<Vec<u8>>>> {
    static CAPTURE: OnceLock<Option<Arc<Mutex<Vec<u8>>>>> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let buf = Arc::new(Mutex::new(Vec::new()));
            let sink = Sink(buf.clone());
            let subscriber = tracing_subscriber::fmt()
                .json()
                .with_max_level(tracing::Level::INFO)
                .with_writer(MaskingMakeWriter::new(move || sink.clone()))
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .ok()
                .map(|_| buf)
        })
        .clone()
}

#[actix_web::test]
async fn log_lines_never_carry_an_unmasked_phone() {
    let Some(logs) = captured_logs() else {
        eprintln!("another subscriber is installed (TEST_LOG?): log capture skipped");
        return;
    };
    let app = spawn_identity_app().await;
    let s = login(&app, "yara").await;
    // A wrongly typed phone: the refusal's cause (logged) quotes the value.
    let res = signed(
        &app,
        &s,
        "PUT",
        "/api/users/me/phone",
        Some(json!({"phone": 13812345678u64})),
    )
    .await;
    assert_eq!(res.status(), 422);
    // A phone as an admin username: the failed login is a security event naming it.
    let res = post_json(
        &app,
        "/api/admin/login",
        json!({"username": "13987654321", "password": "x"}),
    )
    .await;
    assert_eq!(res.status(), 401);
    // A forged signature: a security event.
    let res = app
        .client
        .patch(app.url("/api/users/me"))
        .bearer_auth(&s.access_token)
        .header("X-Timestamp", chrono::Utc::now().timestamp().to_string())
        .header("X-Nonce", nonce())
        .header("X-Signature", "00")
        .json(&json!({"nickname": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(!text.contains("13812345678"), "unmasked phone in logs");
    assert!(!text.contains("13987654321"), "unmasked phone in logs");
    assert!(
        text.contains("138****5678"),
        "the refusal was logged, masked"
    );
    assert!(
        text.contains("139****4321"),
        "the failed admin login was logged, masked"
    );
    let security: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(r#""category":"security""#))
        .collect();
    assert!(
        security.iter().any(|l| l.contains("admin_login_failed")),
        "{text}"
    );
    assert!(
        security.iter().any(|l| l.contains("bad_signature")),
        "{text}"
    );
    assert!(!text.contains(ADMIN_PASSWORD));
}
