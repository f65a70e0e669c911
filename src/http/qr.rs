//! The printable payment-code QR: the mini-program path as a QR code, the merchant name and
//! the code label drawn under it.
//!
//! Text uses the public-domain 8x8 bitmap font (`font8x8`): Latin, Greek and kana render;
//! characters it lacks (Chinese among them) are drawn as `?`. A CJK font would add megabytes;
//! the name is printed on the merchant's own signage anyway.

use std::io::Cursor;

use font8x8::UnicodeFonts;
use image::{GrayImage, ImageFormat, Luma};
use qrcode::{Color, EcLevel, QrCode};

const MODULE_PX: u32 = 8;
const QUIET_MODULES: u32 = 4;
const TEXT_SCALE: u32 = 2;
const GLYPH_PX: u32 = 8 * TEXT_SCALE;

/// The mini-program page a scan opens.
pub fn pay_path(code_id: &str) -> String {
    format!("pages/pay/index?code={code_id}")
}

fn glyph(c: char) -> [u8; 8] {
    font8x8::BASIC_FONTS
        .get(c)
        .or_else(|| font8x8::LATIN_FONTS.get(c))
        .or_else(|| font8x8::GREEK_FONTS.get(c))
        .or_else(|| font8x8::HIRAGANA_FONTS.get(c))
        .or_else(|| font8x8::BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

fn draw_line(img: &mut GrayImage, text: &str, top: u32) {
    let max_chars = (img.width() / GLYPH_PX).saturating_sub(2).max(1) as usize;
    let mut chars: Vec<char> = text.chars().filter(|c| !c.is_control()).collect();
    if chars.len() > max_chars {
        chars.truncate(max_chars.saturating_sub(2));
        chars.extend(['.', '.']);
    }
    let width = chars.len() as u32 * GLYPH_PX;
    let left = img.width().saturating_sub(width) / 2;
    for (i, c) in chars.iter().enumerate() {
        let rows = glyph(*c);
        let x0 = left + i as u32 * GLYPH_PX;
        for (y, row) in rows.iter().enumerate() {
            for x in 0..8u32 {
                if row & (1 << x) == 0 {
                    continue;
                }
                for dy in 0..TEXT_SCALE {
                    for dx in 0..TEXT_SCALE {
                        let px = x0 + x * TEXT_SCALE + dx;
                        let py = top + y as u32 * TEXT_SCALE + dy;
                        if px < img.width() && py < img.height() {
                            img.put_pixel(px, py, Luma([0]));
                        }
                    }
                }
            }
        }
    }
}

/// Renders the PNG: QR of `pay_path(code_id)`, then `title` and `subtitle` lines.
pub fn render_png(code_id: &str, title: &str, subtitle: &str) -> anyhow::Result<Vec<u8>> {
    let code = QrCode::with_error_correction_level(pay_path(code_id).as_bytes(), EcLevel::M)?;
    let modules = u32::try_from(code.width())?;
    let side = (modules + 2 * QUIET_MODULES) * MODULE_PX;
    let text_height = 2 * (GLYPH_PX + 8) + 16;
    let mut img = GrayImage::from_pixel(side, side + text_height, Luma([255]));
    for (i, color) in code.to_colors().iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let i = u32::try_from(i)?;
        let (mx, my) = (i % modules + QUIET_MODULES, i / modules + QUIET_MODULES);
        for dy in 0..MODULE_PX {
            for dx in 0..MODULE_PX {
                img.put_pixel(mx * MODULE_PX + dx, my * MODULE_PX + dy, Luma([0]));
            }
        }
    }
    draw_line(&mut img, title, side);
    draw_line(&mut img, subtitle, side + GLYPH_PX + 8);
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_png_with_a_caption() {
        let png = render_png("0190-abc", "Noodle Shop 面馆", "Table 3").unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let img = image::load_from_memory(&png).unwrap().to_luma8();
        assert!(img.height() > img.width());
    }
}
