//! The printable payment code: a QR code of the code's https link (or WeChat's mini-program
//! code for it), captioned with the merchant name and the code label in Chinese.
//!
//! - What a scan opens: `{APP_QR_BASE_URL}?code={id}` ([`code_url`]). WeChat's "scan an
//!   ordinary QR code to open the mini-program" rule maps that prefix to `pages/pay/index`,
//!   which gets the link URL-encoded as `options.q`; any other scanner shows the link.
//! - The mini-program code (`wxacode.getUnlimited`) carries only a 32-character `scene`:
//!   the code id as 32 hex digits ([`wxacode_scene`]); the page restores the dashes.
//! - Layouts ([`Layout`]): the code with its caption, or an A6 sheet at 300 dpi with the
//!   instruction 微信扫码付款; formats ([`Format`]): PNG, or SVG whose text is paths of the
//!   embedded font (a self-contained file).

pub mod caption;

use std::fmt::Write as _;

use base64::Engine as _;
use image::{GrayImage, Luma};
use qrcode::{Color, EcLevel, QrCode};
use serde::Deserialize;
use utoipa::ToSchema;

use caption::Line;

/// The mini-program page a scan opens.
pub const PAY_PAGE: &str = "pages/pay/index";

/// The instruction printed on the sheet.
pub const INSTRUCTION: &str = "微信扫码付款";
/// The sheet's footer: shoppers check whom they pay.
pub const FOOTER: &str = "付款前请确认商家名称";

/// Pixels per QR module in the `code` layout's PNG.
const MODULE_PX: u32 = 8;
const QUIET_MODULES: u32 = 4;

/// A6 portrait (105 x 148 mm) at 300 dpi.
pub const SHEET_W: u32 = 1240;
pub const SHEET_H: u32 = 1748;
const SHEET_DPI: u32 = 300;

/// The mini-program path of a code (what the `path` field of a payment code shows).
pub fn pay_path(code_id: &str) -> String {
    format!("{PAY_PAGE}?code={code_id}")
}

/// The link the printed QR code holds: `{base}?code={id}` (`&code=` when `base` has a query).
pub fn code_url(base: &str, code_id: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}code={code_id}")
}

/// The `scene` of the mini-program code for a code id: WeChat allows 32 characters, so a
/// UUID goes without its dashes. `None` for an id that cannot be a scene.
pub fn wxacode_scene(code_id: &str) -> Option<String> {
    if let Ok(id) = uuid::Uuid::parse_str(code_id) {
        return Some(id.simple().to_string());
    }
    (!code_id.is_empty()
        && code_id.len() <= 32
        && code_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| code_id.to_string())
}

/// `?format=`: the file type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Png,
    Svg,
}

/// `?layout=`: what is on the page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// The code with the merchant name and the label under it.
    #[default]
    Code,
    /// An A6 sheet at 300 dpi: instruction, code, name, label, and a reminder.
    Sheet,
}

/// `?kind=`: which code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A QR code of the https link: WeChat opens the mini-program, other scanners the link.
    #[default]
    Url,
    /// WeChat's mini-program code (`wxacode.getUnlimited`), fetched from WeChat.
    Wxacode,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Svg => "image/svg+xml",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
        }
    }
}

/// The code to print: a QR code we make, or an image WeChat made (on white).
pub enum CodeImage {
    Qr(QrCode),
    Raster(GrayImage),
}

impl CodeImage {
    /// A QR code of `text` (error correction M: a print survives some wear).
    pub fn qr(text: &str) -> anyhow::Result<CodeImage> {
        Ok(CodeImage::Qr(QrCode::with_error_correction_level(
            text.as_bytes(),
            EcLevel::M,
        )?))
    }

    /// An image from WeChat (PNG, possibly with a transparent background), laid on white.
    pub fn from_image(bytes: &[u8]) -> anyhow::Result<CodeImage> {
        let img = image::load_from_memory(bytes)?.to_luma_alpha8();
        let mut out = GrayImage::from_pixel(img.width(), img.height(), Luma([255]));
        for (x, y, p) in img.enumerate_pixels() {
            let [l, a] = p.0;
            let a = u32::from(a);
            let v = (u32::from(l) * a + 255 * (255 - a)) / 255;
            out.put_pixel(x, y, Luma([u8::try_from(v).unwrap_or(255)]));
        }
        Ok(CodeImage::Raster(out))
    }

    /// The natural side in pixels of the `code` layout.
    fn natural_side(&self) -> anyhow::Result<u32> {
        Ok(match self {
            CodeImage::Qr(code) => (u32::try_from(code.width())? + 2 * QUIET_MODULES) * MODULE_PX,
            CodeImage::Raster(img) => img.width().max(img.height()),
        })
    }

    /// Draws the code into the square `side` at (`left`, `top`), quiet zone included.
    fn draw(&self, img: &mut GrayImage, left: u32, top: u32, side: u32) -> anyhow::Result<()> {
        match self {
            CodeImage::Qr(code) => {
                let modules = u32::try_from(code.width())?;
                let module = (side / (modules + 2 * QUIET_MODULES)).max(1);
                let offset = (side.saturating_sub(modules * module)) / 2;
                for (i, color) in code.to_colors().iter().enumerate() {
                    if *color != Color::Dark {
                        continue;
                    }
                    let i = u32::try_from(i)?;
                    let (mx, my) = (i % modules, i / modules);
                    for dy in 0..module {
                        for dx in 0..module {
                            let (x, y) = (
                                left + offset + mx * module + dx,
                                top + offset + my * module + dy,
                            );
                            if x < img.width() && y < img.height() {
                                img.put_pixel(x, y, Luma([0]));
                            }
                        }
                    }
                }
            }
            CodeImage::Raster(raster) => {
                let scaled = if raster.width() == side && raster.height() == side {
                    raster.clone()
                } else {
                    image::imageops::resize(
                        raster,
                        side,
                        side,
                        image::imageops::FilterType::Triangle,
                    )
                };
                image::imageops::overlay(img, &scaled, i64::from(left), i64::from(top));
            }
        }
        Ok(())
    }

    /// The code as SVG elements in the square `side` at (`left`, `top`).
    fn svg(&self, left: u32, top: u32, side: u32) -> anyhow::Result<String> {
        Ok(match self {
            CodeImage::Qr(code) => {
                let modules = u32::try_from(code.width())?;
                let module = f64::from(side) / f64::from(modules + 2 * QUIET_MODULES);
                let mut d = String::new();
                let colors = code.to_colors();
                for y in 0..modules {
                    let mut x = 0;
                    while x < modules {
                        let dark = |x: u32| {
                            colors.get(usize::try_from(y * modules + x).unwrap_or(usize::MAX))
                                == Some(&Color::Dark)
                        };
                        if !dark(x) {
                            x += 1;
                            continue;
                        }
                        let start = x;
                        while x < modules && dark(x) {
                            x += 1;
                        }
                        let _ = write!(d, "M{start} {y}h{}v1h-{}z", x - start, x - start);
                    }
                }
                let origin = f64::from(QUIET_MODULES) * module;
                format!(
                    r##"<path transform="translate({:.3} {:.3}) scale({module:.4})" shape-rendering="crispEdges" fill="#000" d="{d}"/>"##,
                    f64::from(left) + origin,
                    f64::from(top) + origin,
                )
            }
            CodeImage::Raster(raster) => {
                let png = encode_png(raster, None)?;
                format!(
                    r#"<image x="{left}" y="{top}" width="{side}" height="{side}" href="data:image/png;base64,{}"/>"#,
                    base64::engine::general_purpose::STANDARD.encode(png)
                )
            }
        })
    }
}

/// What is written around the code.
#[derive(Debug, Clone)]
pub struct Caption {
    pub merchant_name: String,
    /// The code's label, with its fixed amount when it has one.
    pub label: String,
}

impl Caption {
    /// The caption of a code: the label, and `¥12.50` for a fixed amount.
    pub fn new(merchant_name: &str, label: &str, amount_fen: Option<i64>) -> Caption {
        let label = match amount_fen {
            Some(fen) => format!("{label} · ¥{}.{:02}", fen / 100, fen % 100),
            None => label.to_string(),
        };
        Caption {
            merchant_name: merchant_name.to_string(),
            label,
        }
    }
}

/// A text line placed on the page: centred on `center_x`, its box from `top`.
struct Placed {
    line: Line,
    top: f32,
    gray: u8,
}

/// Everything on one page, in pixels, shared by the PNG and the SVG.
struct Page {
    width: u32,
    height: u32,
    /// The code's square: left, top, side.
    code: (u32, u32, u32),
    lines: Vec<Placed>,
    /// A thin cut line inset this far from the edge (sheet only).
    frame: Option<u32>,
    dpi: Option<u32>,
}

impl Page {
    fn new(code: &CodeImage, caption: &Caption, layout: Layout) -> anyhow::Result<Page> {
        match layout {
            Layout::Code => {
                let side = code.natural_side()?.max(320);
                let max = side as f32 - 32.0;
                let name = Line::fit(&caption.merchant_name, 30.0, 18.0, max)?;
                let label = Line::fit(&caption.label, 24.0, 16.0, max)?;
                let name_top = side as f32;
                let label_top = name_top + name.height() + 6.0;
                let height = (label_top + label.height() + 18.0).ceil() as u32;
                Ok(Page {
                    width: side,
                    height,
                    code: (0, 0, side),
                    lines: vec![
                        Placed {
                            line: name,
                            top: name_top,
                            gray: 0,
                        },
                        Placed {
                            line: label,
                            top: label_top,
                            gray: 0x33,
                        },
                    ],
                    frame: None,
                    dpi: None,
                })
            }
            Layout::Sheet => {
                let max = SHEET_W as f32 - 160.0;
                let side = 960;
                let code_top = 270;
                let head = Line::fit(INSTRUCTION, 110.0, 110.0, max)?;
                let name = Line::fit(&caption.merchant_name, 84.0, 44.0, max)?;
                let label = Line::fit(&caption.label, 60.0, 36.0, max)?;
                let footer = Line::fit(FOOTER, 40.0, 40.0, max)?;
                let name_top = (code_top + side) as f32 + 20.0;
                let label_top = name_top + name.height() + 12.0;
                Ok(Page {
                    width: SHEET_W,
                    height: SHEET_H,
                    code: ((SHEET_W - side) / 2, code_top, side),
                    lines: vec![
                        Placed {
                            line: head,
                            top: 96.0,
                            gray: 0,
                        },
                        Placed {
                            line: name,
                            top: name_top,
                            gray: 0,
                        },
                        Placed {
                            line: label,
                            top: label_top,
                            gray: 0x33,
                        },
                        Placed {
                            line: footer,
                            top: SHEET_H as f32 - 150.0,
                            gray: 0x66,
                        },
                    ],
                    frame: Some(24),
                    dpi: Some(SHEET_DPI),
                })
            }
        }
    }

    fn png(&self, code: &CodeImage) -> anyhow::Result<Vec<u8>> {
        let mut img = GrayImage::from_pixel(self.width, self.height, Luma([255]));
        if let Some(inset) = self.frame {
            let (w, h) = (self.width - 2 * inset, self.height - 2 * inset);
            for i in 0..w {
                for y in [inset, inset + h - 1] {
                    img.put_pixel(inset + i, y, Luma([0xbb]));
                }
            }
            for j in 0..h {
                for x in [inset, inset + w - 1] {
                    img.put_pixel(x, inset + j, Luma([0xbb]));
                }
            }
        }
        let (left, top, side) = self.code;
        code.draw(&mut img, left, top, side)?;
        let center = self.width as f32 / 2.0;
        for placed in &self.lines {
            let mut layer = GrayImage::from_pixel(self.width, self.height, Luma([255]));
            placed.line.draw(&mut layer, center, placed.top)?;
            // Gray text: scale the ink, then darken the page with it.
            for (x, y, p) in layer.enumerate_pixels() {
                if p.0[0] == 255 {
                    continue;
                }
                let ink = 255 - u32::from(p.0[0]);
                let tone = u32::from(placed.gray) * ink / 255 + (255 - ink);
                let old = img.get_pixel(x, y).0[0];
                img.put_pixel(x, y, Luma([old.min(u8::try_from(tone).unwrap_or(255))]));
            }
        }
        encode_png(&img, self.dpi)
    }

    fn svg(&self, code: &CodeImage, caption: &Caption) -> anyhow::Result<Vec<u8>> {
        let (width, height) = match self.dpi {
            // Printed size: 25.4 mm an inch.
            Some(dpi) => (
                format!("{:.0}mm", f64::from(self.width) * 25.4 / f64::from(dpi)),
                format!("{:.0}mm", f64::from(self.height) * 25.4 / f64::from(dpi)),
            ),
            None => (self.width.to_string(), self.height.to_string()),
        };
        let title = xml_escape(&format!("{} – {}", caption.merchant_name, caption.label));
        let mut out = format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {} {}" role="img" aria-label="{title}"><title>{title}</title><rect width="100%" height="100%" fill="#fff"/>"##,
            self.width, self.height
        );
        if let Some(inset) = self.frame {
            let _ = write!(
                out,
                r##"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#bbb" stroke-width="1"/>"##,
                f64::from(inset) + 0.5,
                f64::from(inset) + 0.5,
                self.width - 2 * inset - 1,
                self.height - 2 * inset - 1
            );
        }
        let (left, top, side) = self.code;
        out.push_str(&code.svg(left, top, side)?);
        let center = self.width as f32 / 2.0;
        for placed in &self.lines {
            let d = placed.line.svg_path(center, placed.top)?;
            let _ = write!(
                out,
                r##"<path aria-label="{}" fill="#{:02x}{:02x}{:02x}" d="{d}"/>"##,
                xml_escape(&placed.line.text),
                placed.gray,
                placed.gray,
                placed.gray
            );
        }
        out.push_str("</svg>\n");
        Ok(out.into_bytes())
    }
}

/// Renders the printable code.
pub fn render(
    code: &CodeImage,
    caption: &Caption,
    layout: Layout,
    format: Format,
) -> anyhow::Result<Vec<u8>> {
    let page = Page::new(code, caption, layout)?;
    match format {
        Format::Png => page.png(code),
        Format::Svg => page.svg(code, caption),
    }
}

/// The `code` layout's PNG of the QR code of `url` (the public `qr.png`).
pub fn render_png(url: &str, caption: &Caption) -> anyhow::Result<Vec<u8>> {
    render(&CodeImage::qr(url)?, caption, Layout::Code, Format::Png)
}

/// An 8-bit grayscale PNG, with its print resolution when given.
fn encode_png(img: &GrayImage, dpi: Option<u32>) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, img.width(), img.height());
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    if let Some(dpi) = dpi {
        // Pixels per metre: 39.37 inches.
        let ppm = (f64::from(dpi) / 0.0254).round() as u32;
        encoder.set_pixel_dims(Some(png::PixelDimensions {
            xppu: ppm,
            yppu: ppm,
            unit: png::Unit::Meter,
        }));
    }
    let mut writer = encoder.write_header()?;
    writer.write_image_data(img.as_raw())?;
    writer.finish()?;
    Ok(out)
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png: &[u8]) -> String {
        let img = image::load_from_memory(png).unwrap().to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(img);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        grids[0].decode().unwrap().1
    }

    #[test]
    fn urls_and_scenes() {
        assert_eq!(
            code_url("https://pay.example.com/q", "abc"),
            "https://pay.example.com/q?code=abc"
        );
        assert_eq!(
            code_url("https://x.cn/p?src=print", "abc"),
            "https://x.cn/p?src=print&code=abc"
        );
        assert_eq!(
            wxacode_scene("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").as_deref(),
            Some("0190a1b2c3d47e5f8a9b0c1d2e3f4a5b")
        );
        assert_eq!(wxacode_scene("pc_1").as_deref(), Some("pc_1"));
        assert_eq!(wxacode_scene(&"x".repeat(33)), None);
        assert_eq!(wxacode_scene("a b"), None);
    }

    #[test]
    fn every_layout_decodes_to_the_link() {
        let url = "https://pay.example.com/q?code=0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        let caption = Caption::new("验收咖啡", "前台", Some(1250));
        assert_eq!(caption.label, "前台 · ¥12.50");
        let code = CodeImage::qr(url).unwrap();
        let png = render(&code, &caption, Layout::Code, Format::Png).unwrap();
        assert_eq!(decode(&png), url);
        let sheet = render(&code, &caption, Layout::Sheet, Format::Png).unwrap();
        let img = image::load_from_memory(&sheet).unwrap();
        assert_eq!((img.width(), img.height()), (SHEET_W, SHEET_H));
        assert_eq!(decode(&sheet), url);
        let svg = String::from_utf8(render(&code, &caption, Layout::Sheet, Format::Svg).unwrap())
            .unwrap();
        assert!(svg.starts_with("<svg") && svg.contains(r#"width="105mm" height="148mm""#));
        assert!(
            svg.contains("验收咖啡") && !svg.contains("<text"),
            "text is paths"
        );
    }

    #[test]
    fn a_transparent_wechat_image_is_laid_on_white() {
        let code = QrCode::new(b"pages/pay/index?scene=abc").unwrap();
        let light = image::LumaA([0u8, 0]); // transparent black: must come out white
        let dark = image::LumaA([0u8, 255]);
        let modules = code.width() as u32;
        let img = image::GrayAlphaImage::from_fn((modules + 8) * 4, (modules + 8) * 4, |x, y| {
            let (mx, my) = ((x / 4).wrapping_sub(4), (y / 4).wrapping_sub(4));
            if mx < modules && my < modules && code[(mx as usize, my as usize)] == Color::Dark {
                dark
            } else {
                light
            }
        });
        let mut bytes = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
        let raster = CodeImage::from_image(&bytes).unwrap();
        let caption = Caption::new("Shop", "Till", None);
        let png = render(&raster, &caption, Layout::Sheet, Format::Png).unwrap();
        assert_eq!(decode(&png), "pages/pay/index?scene=abc");
        let svg = render(&raster, &caption, Layout::Code, Format::Svg).unwrap();
        assert!(
            String::from_utf8(svg)
                .unwrap()
                .contains("data:image/png;base64,")
        );
    }

    /// The samples in `docs/samples/`: `WRITE_QR_SAMPLES=1 cargo test --lib
    /// http::qr::tests::docs_samples` writes them; otherwise this checks that the committed
    /// ones still hold the sample link and caption.
    #[test]
    fn docs_samples() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/samples");
        let url = code_url(
            crate::config::DEFAULT_QR_BASE_URL,
            "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        );
        let caption = Caption::new("验收咖啡", "一号收银台", Some(1250));
        let (png, svg) = (dir.join("qr-sheet.png"), dir.join("qr-sheet.svg"));
        if std::env::var_os("WRITE_QR_SAMPLES").is_some() {
            let code = CodeImage::qr(&url).unwrap();
            std::fs::create_dir_all(&dir).unwrap();
            let sheet = render(&code, &caption, Layout::Sheet, Format::Png).unwrap();
            std::fs::write(&png, sheet).unwrap();
            let sheet = render(&code, &caption, Layout::Sheet, Format::Svg).unwrap();
            std::fs::write(&svg, sheet).unwrap();
        }
        assert_eq!(decode(&std::fs::read(&png).unwrap()), url);
        let svg = std::fs::read_to_string(&svg).unwrap();
        assert!(svg.contains("aria-label=\"验收咖啡\""));
        assert!(svg.contains("aria-label=\"一号收银台 · ¥12.50\""));
    }

    #[test]
    fn markup_in_names_is_escaped() {
        let code = CodeImage::qr("x").unwrap();
        let svg = render(
            &code,
            &Caption::new("<b>&\"", "l", None),
            Layout::Code,
            Format::Svg,
        )
        .unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(!svg.contains("<b>") && svg.contains("&lt;b&gt;&amp;&quot;"));
    }
}
