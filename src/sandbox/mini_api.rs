//! The mini-program paths: `jscode2session`, `cgi-bin/token`, subscribe messages and
//! `wxa/getwxacodeunlimit` (whose "mini-program code" is a QR code of `{page}?scene={scene}`,
//! so tests can read what a real one would open).
//!
//! Login codes: `test-<name>` (optionally `test-<name>.<anything>`) logs in as a stable openid
//! for `<name>`; each code works once (40163 after). `err-<errcode>` answers that errcode
//! (e.g. `err-45011`, `err-40226`, `err--1`). Anything else is 40029.

use std::collections::HashSet;

use actix_web::{HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use rand::RngExt as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::Sandbox;

/// A template id the sandbox treats as "the user has not accepted it" (43101).
pub const UNSUBSCRIBED_TEMPLATE: &str = "tmpl-not-subscribed";

/// How many accepted messages `GET /sandbox/messages` keeps (a load test sends millions).
pub const KEEP_MESSAGES: usize = 10_000;

#[derive(Debug, Default)]
pub struct MiniState {
    used_codes: HashSet<String>,
    token: Option<String>,
    /// The latest accepted messages (at most `KEEP_MESSAGES`), oldest first.
    pub messages: std::collections::VecDeque<SentMessage>,
    /// Errcodes the next subscribe sends answer (`POST /sandbox/faults {subscribe_errcode}`).
    pub send_failures: std::collections::VecDeque<i64>,
}

impl MiniState {
    /// Makes the current token invalid, as when another instance fetched a new one.
    pub fn expire_token(&mut self) {
        self.token = None;
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SentMessage {
    pub at: String,
    pub message: serde_json::Value,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/sns/jscode2session", web::get().to(jscode2session))
        .route("/cgi-bin/token", web::get().to(token))
        .route(
            "/cgi-bin/message/subscribe/send",
            web::post().to(subscribe_send),
        )
        .route("/wxa/getwxacodeunlimit", web::post().to(wxacode_unlimited));
}

/// The openid the sandbox gives `<name>`: stable, 28 characters like WeChat's.
pub fn openid_for(appid: &str, name: &str) -> String {
    let digest = sha2::Sha256::digest(format!("sandbox-openid:{appid}:{name}").as_bytes());
    let encoded = URL_SAFE_NO_PAD.encode(digest);
    format!("o{}", encoded.get(..27).unwrap_or(&encoded))
}

fn errcode(code: i64, msg: &str) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "errcode": code, "errmsg": msg }))
}

#[derive(Deserialize)]
struct LoginQuery {
    appid: Option<String>,
    secret: Option<String>,
    js_code: Option<String>,
    grant_type: Option<String>,
}

async fn jscode2session(sb: web::Data<Sandbox>, q: web::Query<LoginQuery>) -> HttpResponse {
    if q.appid.as_deref() != Some(sb.keys.appid.as_str()) {
        return errcode(40013, "invalid appid");
    }
    if q.secret.as_deref() != Some(sb.keys.app_secret.as_str()) {
        return errcode(40125, "invalid appsecret");
    }
    if q.grant_type.as_deref() != Some("authorization_code") {
        return errcode(40002, "invalid grant_type");
    }
    let code = q.js_code.as_deref().unwrap_or("");
    if let Some(forced) = code
        .strip_prefix("err-")
        .and_then(|c| c.parse::<i64>().ok())
    {
        return errcode(forced, "sandbox: forced error");
    }
    let Some(name) = code
        .strip_prefix("test-")
        .map(|rest| rest.split('.').next().unwrap_or(rest))
        .filter(|n| !n.is_empty())
    else {
        return errcode(40029, "invalid code");
    };
    let Ok(mut mini) = sb.mini.lock() else {
        return errcode(-1, "system error");
    };
    if !mini.used_codes.insert(code.to_string()) {
        return errcode(40163, "code been used");
    }
    let session_key: [u8; 16] = rand::rng().random();
    HttpResponse::Ok().json(serde_json::json!({
        "openid": openid_for(&sb.keys.appid, name),
        "session_key": B64.encode(session_key),
    }))
}

#[derive(Deserialize)]
struct TokenQuery {
    grant_type: Option<String>,
    appid: Option<String>,
    secret: Option<String>,
}

async fn token(sb: web::Data<Sandbox>, q: web::Query<TokenQuery>) -> HttpResponse {
    if q.grant_type.as_deref() != Some("client_credential") {
        return errcode(40002, "invalid grant_type");
    }
    if q.appid.as_deref() != Some(sb.keys.appid.as_str()) {
        return errcode(40013, "invalid appid");
    }
    if q.secret.as_deref() != Some(sb.keys.app_secret.as_str()) {
        return errcode(40125, "invalid appsecret");
    }
    let Ok(mut mini) = sb.mini.lock() else {
        return errcode(-1, "system error");
    };
    // One token per app is valid at a time: a new one replaces the old.
    let token = hex::encode(rand::rng().random::<[u8; 32]>());
    mini.token = Some(token.clone());
    HttpResponse::Ok().json(serde_json::json!({ "access_token": token, "expires_in": 7200 }))
}

/// WeChat's 40001/42001 answer, unless `given` is the current token.
fn refuse_token(mini: &MiniState, given: Option<&String>) -> Option<HttpResponse> {
    match (&mini.token, given) {
        (Some(current), Some(given)) if current == given => None,
        (None, Some(_)) => Some(errcode(42001, "access_token expired")),
        _ => Some(errcode(
            40001,
            "invalid credential, access_token is invalid or not latest",
        )),
    }
}

#[derive(Deserialize)]
struct WxaCodeBody {
    scene: Option<String>,
    page: Option<String>,
    width: Option<u32>,
    #[serde(default)]
    is_hyaline: bool,
}

/// WeChat's checks, then a PNG: a QR code of `{page}?scene={scene}`, `width` pixels wide
/// (clamped to 280..=1280), with a transparent background when `is_hyaline`.
async fn wxacode_unlimited(
    sb: web::Data<Sandbox>,
    q: web::Query<SendQuery>,
    body: web::Bytes,
) -> HttpResponse {
    {
        let Ok(mini) = sb.mini.lock() else {
            return errcode(-1, "system error");
        };
        if let Some(answer) = refuse_token(&mini, q.access_token.as_ref()) {
            return answer;
        }
    }
    let Ok(req) = serde_json::from_slice::<WxaCodeBody>(&body) else {
        return errcode(47001, "data format error");
    };
    let scene = req.scene.unwrap_or_default();
    let scene_ok = !scene.is_empty()
        && scene.len() <= 32
        && scene
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&'()*+,/:;=?@-._~".contains(&b));
    if !scene_ok {
        return errcode(
            40169,
            "invalid length for scene, or the data is not json string",
        );
    }
    let page = req.page.unwrap_or_else(|| "pages/index/index".into());
    if page.is_empty()
        || page.starts_with('/')
        || !page
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-/".contains(&b))
    {
        return errcode(41030, "invalid page rid");
    }
    let width = req.width.unwrap_or(430).clamp(280, 1280);
    match wxacode_png(&format!("{page}?scene={scene}"), width, req.is_hyaline) {
        Ok(png) => HttpResponse::Ok().content_type("image/png").body(png),
        Err(_) => errcode(-1, "system error"),
    }
}

fn wxacode_png(text: &str, width: u32, transparent: bool) -> anyhow::Result<Vec<u8>> {
    let code = qrcode::QrCode::new(text.as_bytes())?;
    let modules = u32::try_from(code.width())?;
    let module = (width / (modules + 8)).max(1);
    let side = (modules + 8) * module;
    let colors = code.to_colors();
    // Light is transparent black when hyaline: a reader that ignores alpha sees nothing.
    let light = if transparent { [0u8, 0] } else { [255, 255] };
    let img = image::GrayAlphaImage::from_fn(side, side, |x, y| {
        let (mx, my) = ((x / module).wrapping_sub(4), (y / module).wrapping_sub(4));
        let dark = mx < modules
            && my < modules
            && colors.get(usize::try_from(my * modules + mx).unwrap_or(usize::MAX))
                == Some(&qrcode::Color::Dark);
        image::LumaA(if dark { [0, 255] } else { light })
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

#[derive(Deserialize)]
struct SendQuery {
    access_token: Option<String>,
}

async fn subscribe_send(
    sb: web::Data<Sandbox>,
    q: web::Query<SendQuery>,
    body: web::Bytes,
) -> HttpResponse {
    let Ok(mut mini) = sb.mini.lock() else {
        return errcode(-1, "system error");
    };
    if let Some(answer) = refuse_token(&mini, q.access_token.as_ref()) {
        return answer;
    }
    let Ok(message) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return errcode(47001, "data format error");
    };
    let field = |k: &str| {
        message
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    if field("touser").is_empty()
        || field("template_id").is_empty()
        || !message.get("data").is_some_and(|d| d.is_object())
    {
        return errcode(
            47003,
            "argument invalid: touser, template_id and data are required",
        );
    }
    if let Some(code) = mini.send_failures.pop_front() {
        return errcode(code, "injected by the sandbox");
    }
    if field("template_id") == UNSUBSCRIBED_TEMPLATE {
        return errcode(43101, "user refuse to accept the msg");
    }
    if mini.messages.len() >= KEEP_MESSAGES {
        mini.messages.pop_front();
    }
    mini.messages.push_back(SentMessage {
        at: super::ledger::rfc3339_cn(chrono::Utc::now()),
        message,
    });
    errcode(0, "ok")
}
