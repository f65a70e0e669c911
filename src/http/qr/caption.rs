//! Caption text in the embedded Noto Sans SC subset (`assets/fonts/`): drawn into a raster
//! with anti-aliasing, or turned into SVG path data so an SVG needs no installed font.
//!
//! A character the subset lacks is drawn as the font's `.notdef` box (tofu): visibly wrong,
//! never another character. Lines too wide for their box are shrunk down to a minimum size,
//! then cut with `…`.

use std::fmt::Write as _;
use std::sync::LazyLock;

use ab_glyph::{Font, FontRef, GlyphId, OutlineCurve, PxScale, ScaleFont, point};
use image::GrayImage;

static FONT_DATA: &[u8] = include_bytes!("../../../assets/fonts/NotoSansSC-Bold-subset.otf");

static FONT: LazyLock<Result<FontRef<'static>, ab_glyph::InvalidFont>> =
    LazyLock::new(|| FontRef::try_from_slice(FONT_DATA));

fn font() -> anyhow::Result<&'static FontRef<'static>> {
    FONT.as_ref()
        .map_err(|e| anyhow::anyhow!("the embedded caption font: {e}"))
}

/// True when the caption font has a glyph for `c` (else it prints as a tofu box).
pub fn has_glyph(c: char) -> bool {
    font().is_ok_and(|f| f.glyph_id(c) != GlyphId(0))
}

/// One line of text fitted to a width: the glyphs, their size and their total advance.
#[derive(Debug, Clone)]
pub struct Line {
    glyphs: Vec<GlyphId>,
    /// Font size in pixels (ascent to descent).
    pub px: f32,
    /// Width of the line in pixels.
    pub width: f32,
    /// The text as laid out (control characters dropped, possibly cut with `…`).
    pub text: String,
}

impl Line {
    /// Lays out `text` at `px`, shrinking it to no less than `min_px` and then cutting it
    /// with `…` so that it fits `max_width`.
    pub fn fit(text: &str, px: f32, min_px: f32, max_width: f32) -> anyhow::Result<Line> {
        let font = font()?;
        let chars: Vec<char> = text.chars().filter(|c| !c.is_control()).collect();
        let width_at = |chars: &[char], px: f32| -> f32 {
            let scaled = font.as_scaled(PxScale::from(px));
            chars
                .iter()
                .map(|c| scaled.h_advance(font.glyph_id(*c)))
                .sum()
        };
        let mut px = px;
        let natural = width_at(&chars, px);
        if natural > max_width && natural > 0.0 {
            px = (px * max_width / natural).max(min_px);
        }
        let mut kept = chars.clone();
        let mut cut = false;
        while !kept.is_empty()
            && width_at(&kept, px) + if cut { width_at(&['…'], px) } else { 0.0 } > max_width
        {
            kept.pop();
            cut = true;
        }
        if cut {
            kept.push('…');
        }
        let glyphs: Vec<GlyphId> = kept.iter().map(|c| font.glyph_id(*c)).collect();
        Ok(Line {
            width: width_at(&kept, px),
            glyphs,
            px,
            text: kept.into_iter().collect(),
        })
    }

    /// Distance from the top of the line box to the baseline.
    fn ascent(&self, font: &FontRef<'static>) -> f32 {
        font.as_scaled(PxScale::from(self.px)).ascent()
    }

    /// Height of the line box (ascent to descent).
    pub fn height(&self) -> f32 {
        font().map_or(self.px, |f| {
            let s = f.as_scaled(PxScale::from(self.px));
            s.ascent() - s.descent()
        })
    }

    /// Draws the line in black into `img`, centred on `center_x`, its box starting at `top`.
    pub fn draw(&self, img: &mut GrayImage, center_x: f32, top: f32) -> anyhow::Result<()> {
        let font = font()?;
        let scaled = font.as_scaled(PxScale::from(self.px));
        let baseline = top + self.ascent(font);
        let mut x = center_x - self.width / 2.0;
        let (w, h) = (img.width(), img.height());
        for id in &self.glyphs {
            let glyph = id.with_scale_and_position(PxScale::from(self.px), point(x, baseline));
            x += scaled.h_advance(*id);
            let Some(outlined) = font.outline_glyph(glyph) else {
                continue; // a space
            };
            let bounds = outlined.px_bounds();
            outlined.draw(|gx, gy, coverage| {
                let px = bounds.min.x as i64 + i64::from(gx);
                let py = bounds.min.y as i64 + i64::from(gy);
                let (Ok(px), Ok(py)) = (u32::try_from(px), u32::try_from(py)) else {
                    return;
                };
                if px >= w || py >= h {
                    return;
                }
                let pixel = img.get_pixel_mut(px, py);
                let ink = coverage.clamp(0.0, 1.0);
                pixel.0[0] = (f32::from(pixel.0[0]) * (1.0 - ink)).round() as u8;
            });
        }
        Ok(())
    }

    /// The line as SVG path data (absolute coordinates), centred on `center_x`, its box
    /// starting at `top`.
    pub fn svg_path(&self, center_x: f32, top: f32) -> anyhow::Result<String> {
        let font = font()?;
        let scaled = font.as_scaled(PxScale::from(self.px));
        let (sx, sy) = (scaled.h_scale_factor(), scaled.v_scale_factor());
        let baseline = top + self.ascent(font);
        let mut x = center_x - self.width / 2.0;
        let mut d = String::new();
        for id in &self.glyphs {
            if let Some(outline) = font.outline(*id) {
                let at = |p: ab_glyph::Point| (x + p.x * sx, baseline - p.y * sy);
                let mut pen: Option<ab_glyph::Point> = None;
                for curve in &outline.curves {
                    let (start, end) = match curve {
                        OutlineCurve::Line(a, b) => (*a, *b),
                        OutlineCurve::Quad(a, _, c) => (*a, *c),
                        OutlineCurve::Cubic(a, _, _, c) => (*a, *c),
                    };
                    if pen != Some(start) {
                        if pen.is_some() {
                            d.push('Z');
                        }
                        let (px, py) = at(start);
                        let _ = write!(d, "M{px:.1} {py:.1}");
                    }
                    match curve {
                        OutlineCurve::Line(_, b) => {
                            let (bx, by) = at(*b);
                            let _ = write!(d, "L{bx:.1} {by:.1}");
                        }
                        OutlineCurve::Quad(_, b, c) => {
                            let ((bx, by), (cx, cy)) = (at(*b), at(*c));
                            let _ = write!(d, "Q{bx:.1} {by:.1} {cx:.1} {cy:.1}");
                        }
                        OutlineCurve::Cubic(_, b, c, e) => {
                            let ((bx, by), (cx, cy), (ex, ey)) = (at(*b), at(*c), at(*e));
                            let _ = write!(d, "C{bx:.1} {by:.1} {cx:.1} {cy:.1} {ex:.1} {ey:.1}");
                        }
                    }
                    pen = Some(end);
                }
                if pen.is_some() {
                    d.push('Z');
                }
            }
            x += scaled.h_advance(*id);
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str) -> GrayImage {
        let line = Line::fit(text, 48.0, 48.0, 1000.0).unwrap();
        let mut img = GrayImage::from_pixel(200, 80, image::Luma([255]));
        line.draw(&mut img, 100.0, 8.0).unwrap();
        img
    }

    #[test]
    fn chinese_glyphs_are_drawn_and_differ_from_each_other_and_from_a_question_mark() {
        assert!(has_glyph('验') && has_glyph('鑫') && has_glyph('A'));
        let (a, b, q) = (render("验"), render("咖"), render("?"));
        let ink = |img: &GrayImage| img.pixels().filter(|p| p.0[0] < 128).count();
        assert!(ink(&a) > 200, "{}", ink(&a));
        assert_ne!(a, b);
        assert_ne!(a, q);
        assert!(ink(&a) > 2 * ink(&q), "a Chinese character is not a '?'");
    }

    #[test]
    fn a_character_outside_the_subset_is_a_visible_box_not_a_crash() {
        assert!(!has_glyph('😀'));
        let tofu = render("😀");
        assert!(tofu.pixels().any(|p| p.0[0] < 128), "nothing drawn");
        assert_ne!(tofu, render("?"));
        let line = Line::fit("😀", 48.0, 48.0, 1000.0).unwrap();
        assert!(!line.svg_path(0.0, 0.0).unwrap().is_empty());
    }

    #[test]
    fn long_lines_shrink_then_are_cut() {
        let line = Line::fit("验收咖啡", 40.0, 10.0, 100.0).unwrap();
        assert!(line.px < 40.0 && line.width <= 100.0, "{line:?}");
        assert_eq!(line.text, "验收咖啡");
        let long = "很".repeat(100);
        let line = Line::fit(&long, 40.0, 20.0, 200.0).unwrap();
        assert!(line.width <= 200.0 && line.text.ends_with('…'), "{line:?}");
        assert_eq!(line.px, 20.0);
    }

    #[test]
    fn svg_paths_are_closed_contours() {
        let d = Line::fit("验A", 32.0, 32.0, 500.0)
            .unwrap()
            .svg_path(100.0, 0.0)
            .unwrap();
        assert!(d.starts_with('M') && d.ends_with('Z'), "{d}");
        assert_eq!(d.matches('M').count(), d.matches('Z').count());
    }
}
