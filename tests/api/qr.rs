//! The printable payment code: the https link in the QR code, the Chinese caption, the print
//! sheet (PNG and SVG), the WeChat mini-program code through the sandbox, and bad requests.

use image::GrayImage;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_body};
use crate::identity::*;

const BASE: &str = "https://pay.shop.test/q";
const NAME: &str = "验收咖啡";

async fn spawn() -> TestApp {
    spawn_identity_app_with(|s| s.qr_base_url = BASE.to_string()).await
}

/// A user owning the approved merchant `merchant_name`: (session, merchant id).
async fn chinese_merchant(app: &TestApp, user: &str, merchant_name: &str) -> (Session, String) {
    let s = login(app, user).await;
    let res = signed(
        app,
        &s,
        "POST",
        "/api/merchants",
        Some(merchant_body(merchant_name)),
    )
    .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let admin = admin_token(app).await;
    let res = app
        .client
        .post(app.url(&format!("/api/admin/merchants/{id}/approve")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    (s, id)
}

async fn new_code(app: &TestApp, s: &Session, merchant: &str, body: Value) -> String {
    let res = signed(
        app,
        s,
        "POST",
        &format!("/api/merchants/{merchant}/payment-codes"),
        Some(body),
    )
    .await;
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn fetch(app: &TestApp, s: &Session, path: &str) -> reqwest::Response {
    get_auth(app, &s.access_token, path).await
}

async fn png_of(res: reqwest::Response) -> GrayImage {
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    let bytes = res.bytes().await.unwrap();
    image::load_from_memory(&bytes).unwrap().to_luma8()
}

fn decode(img: GrayImage) -> String {
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one code on the page");
    grids[0].decode().unwrap().1
}

/// The rows under the code (the caption) of a `code` layout PNG, and how many are dark.
fn caption_ink(img: &GrayImage) -> (Vec<u8>, usize) {
    let side = img.width();
    let rows: Vec<u8> = img
        .rows()
        .skip(side as usize)
        .flat_map(|r| r.map(|p| p.0[0]))
        .collect();
    let ink = rows.iter().filter(|v| **v < 128).count();
    (rows, ink)
}

#[actix_web::test]
async fn the_printed_code_holds_the_https_link_and_a_chinese_caption() {
    let app = spawn().await;
    let (s, m) = chinese_merchant(&app, "qiao", NAME).await;
    let code = new_code(&app, &s, &m, json!({"label": "前台", "amount_fen": 1250})).await;
    let url = format!("{BASE}?code={code}");

    // The public PNG and the owner's default are the same kind of code.
    let public = png_of(app.get(&format!("/api/payment-codes/{code}/qr.png")).await).await;
    assert_eq!(decode(public.clone()), url);
    let owner_path = format!("/api/merchants/{m}/payment-codes/{code}/qr");
    let owner = png_of(fetch(&app, &s, &owner_path).await).await;
    assert_eq!(owner, public);

    // The caption is drawn in the CJK font: two codes whose labels are different Chinese
    // characters differ under the code, and a Chinese label is not the `?` glyph.
    let mut captions = Vec::new();
    for label in ["咖", "啡", "?"] {
        let id = new_code(&app, &s, &m, json!({"label": label})).await;
        let path = format!("/api/merchants/{m}/payment-codes/{id}/qr");
        captions.push(caption_ink(&png_of(fetch(&app, &s, &path).await).await));
    }
    let [(ka, ink_a), (fei, ink_b), (question, ink_q)] = &captions[..] else {
        unreachable!()
    };
    assert_ne!(ka, fei, "two Chinese characters print differently");
    assert_ne!(ka, question, "a Chinese character is not printed as '?'");
    assert_ne!(fei, question);
    assert!(ink_a > ink_q && ink_b > ink_q, "{ink_a} {ink_b} {ink_q}");

    // The print sheet: A6 at 300 dpi, PNG and a self-contained SVG.
    let res = fetch(&app, &s, &format!("{owner_path}?layout=sheet")).await;
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .ends_with(&format!("payment-code-{code}-sheet.png\"")),
    );
    let sheet = png_of(res).await;
    assert_eq!((sheet.width(), sheet.height()), (1240, 1748));
    assert_eq!(decode(sheet), url);
    let res = fetch(&app, &s, &format!("{owner_path}?layout=sheet&format=svg")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    let svg = res.text().await.unwrap();
    assert!(svg.starts_with("<svg") && svg.contains(r#"width="105mm" height="148mm""#));
    for text in [NAME, "前台 · ¥12.50", "微信扫码付款"] {
        assert!(svg.contains(&format!("aria-label=\"{text}\"")), "{text}");
    }
    assert!(
        !svg.contains("<text") && !svg.contains("href="),
        "self-contained paths"
    );
    let res = fetch(&app, &s, &format!("{owner_path}?format=svg")).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("shape-rendering=\"crispEdges\"")
    );
}

fn wxacode_calls(app: &TestApp, outcome: &str) -> u64 {
    app.state
        .wechat
        .client
        .metrics()
        .calls_total
        .with_label_values(&["wxacode", outcome])
        .get()
}

#[actix_web::test]
async fn the_mini_program_code_comes_from_wechat_through_the_sandbox() {
    let app = spawn().await;
    let (s, m) = chinese_merchant(&app, "rong", NAME).await;
    let code = new_code(&app, &s, &m, json!({"label": "二号桌"})).await;
    let scene = code.replace('-', "");
    assert_eq!(scene.len(), 32);
    let path = format!("/api/merchants/{m}/payment-codes/{code}/qr?kind=wxacode");
    let img = png_of(fetch(&app, &s, &path).await).await;
    assert_eq!(decode(img), format!("pages/pay/index?scene={scene}"));
    let sheet = png_of(fetch(&app, &s, &format!("{path}&layout=sheet")).await).await;
    assert_eq!(
        (sheet.width(), sheet.height()),
        (1240, 1748),
        "the mini-program code on the print sheet"
    );
    assert_eq!(decode(sheet), format!("pages/pay/index?scene={scene}"));
    let res = fetch(&app, &s, &format!("{path}&format=svg")).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("data:image/png;base64,"));
    assert_eq!(wxacode_calls(&app, "ok"), 3);

    // Another instance took a new token: the server refreshes it once and goes on.
    let sandbox = app.state.wechat.client.config().api_base_url.clone();
    let res = app
        .client
        .post(format!("{sandbox}/sandbox/token/expire"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let img = png_of(fetch(&app, &s, &path).await).await;
    assert_eq!(decode(img), format!("pages/pay/index?scene={scene}"));
    assert_eq!(wxacode_calls(&app, "mp_error"), 1);

    // The sandbox answers a bad token as WeChat does: JSON, not an image.
    let res = app
        .client
        .post(format!(
            "{sandbox}/wxa/getwxacodeunlimit?access_token=not-a-token"
        ))
        .json(&json!({"scene": scene, "page": "pages/pay/index", "width": 430}))
        .send()
        .await
        .unwrap();
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["errcode"], 40001, "{answer}");
    assert!(answer["errmsg"].is_string());
}

#[actix_web::test]
async fn bad_qr_requests_are_refused_and_change_nothing() {
    let app = spawn().await;
    let (s, m) = chinese_merchant(&app, "shan", NAME).await;
    let code = new_code(&app, &s, &m, json!({"label": "前台"})).await;
    let (rival, rival_m) = chinese_merchant(&app, "tian", "对面茶馆").await;
    let rival_code = new_code(&app, &rival, &rival_m, json!({"label": "吧台"})).await;
    let codes_path = format!("/api/merchants/{m}/payment-codes");
    let before: Value = fetch(&app, &s, &codes_path).await.json().await.unwrap();
    let qr = format!("{codes_path}/{code}/qr");

    for (query, status, error) in [
        ("format=pdf", 400, "INVALID_QUERY"),
        ("layout=poster", 400, "INVALID_QUERY"),
        ("kind=barcode", 400, "INVALID_QUERY"),
        ("kind=wxacode&format=gif", 400, "INVALID_QUERY"),
        ("sheet=1", 400, "INVALID_QUERY"),
    ] {
        let res = fetch(&app, &s, &format!("{qr}?{query}")).await;
        assert_eq!(res.status(), status, "{query}");
        assert_eq!(error_body(res).await["code"], error, "{query}");
    }
    // Another merchant's code through my merchant, my code through theirs, no such code.
    for (path, error) in [
        (
            format!("{codes_path}/{rival_code}/qr?kind=wxacode"),
            "PAYMENT_CODE_NOT_FOUND",
        ),
        (
            format!("/api/merchants/{rival_m}/payment-codes/{code}/qr"),
            "MERCHANT_NOT_FOUND",
        ),
        (
            format!("/api/merchants/{rival_m}/payment-codes/{rival_code}/qr"),
            "MERCHANT_NOT_FOUND",
        ),
        (
            format!("{codes_path}/no-such-code/qr"),
            "PAYMENT_CODE_NOT_FOUND",
        ),
    ] {
        let res = fetch(&app, &s, &path).await;
        assert_eq!(res.status(), 404, "{path}");
        assert_eq!(error_body(res).await["code"], error, "{path}");
    }
    let res = app.get(&format!("{qr}?kind=wxacode")).await;
    assert_eq!(res.status(), 401);
    error_body(res).await;

    let after: Value = fetch(&app, &s, &codes_path).await.json().await.unwrap();
    assert_eq!(before, after, "nothing changed");
    let all = ["ok", "mp_error", "transport", "protocol", "invalid"];
    assert!(
        all.iter().all(|o| wxacode_calls(&app, o) == 0),
        "no refused request reached WeChat"
    );
}

#[actix_web::test]
async fn the_options_are_in_the_openapi_document() {
    let app = spawn().await;
    let doc: Value = app
        .get("/api-docs/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    let op = &doc["paths"]["/api/merchants/{id}/payment-codes/{code_id}/qr"]["get"];
    let params = op["parameters"].as_array().unwrap();
    let choices = |name: &str| -> Vec<String> {
        let p = params.iter().find(|p| p["name"] == name).unwrap();
        assert_eq!(p["in"], "query", "{p}");
        let schema = &p["schema"];
        let values = schema["enum"]
            .as_array()
            .or_else(|| {
                schema["oneOf"]
                    .as_array()
                    .and_then(|o| o.iter().find_map(|s| s["enum"].as_array()))
            })
            .unwrap_or_else(|| panic!("{p}"));
        values
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(choices("format"), ["png", "svg"]);
    assert_eq!(choices("layout"), ["code", "sheet"]);
    assert_eq!(choices("kind"), ["url", "wxacode"]);
    let ok = &op["responses"]["200"]["content"];
    assert!(
        ok["image/png"].is_object() && ok["image/svg+xml"].is_object(),
        "{ok}"
    );
}
