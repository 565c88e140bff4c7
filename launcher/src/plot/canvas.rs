//! An RGB canvas (rectangles, lines, text in the bitmap font), the colour map, and PNG output.

use std::path::Path;

use anyhow::{Context, Result};

use super::font;

/// An RGB colour.
pub type Rgb = [u8; 3];

pub const WHITE: Rgb = [255, 255, 255];
pub const INK: Rgb = [40, 44, 52];

/// Viridis (matplotlib's perceptually uniform map) at 0, 1/8, …, 1.
const VIRIDIS: [Rgb; 9] = [
    [0x44, 0x01, 0x54],
    [0x47, 0x2d, 0x7b],
    [0x3b, 0x52, 0x8b],
    [0x2c, 0x72, 0x8e],
    [0x21, 0x91, 0x8c],
    [0x28, 0xae, 0x80],
    [0x5e, 0xc9, 0x62],
    [0xad, 0xdc, 0x30],
    [0xfd, 0xe7, 0x25],
];

/// The colour of `t` in [0, 1] (clamped).
pub fn viridis(t: f64) -> Rgb {
    let t = t.clamp(0.0, 1.0) * 8.0;
    let i = (t.floor() as usize).min(7);
    let f = t - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    [0, 1, 2].map(|c| (a[c] as f64 + (b[c] as f64 - a[c] as f64) * f).round() as u8)
}

/// A picture being drawn.
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pixels: Vec<Rgb>,
}

impl Canvas {
    pub fn new(width: usize, height: usize) -> Self {
        Self { width, height, pixels: vec![WHITE; width * height] }
    }

    pub fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, c: Rgb) {
        for yy in y..(y + h).min(self.height) {
            for xx in x..(x + w).min(self.width) {
                self.pixels[yy * self.width + xx] = c;
            }
        }
    }

    /// An unfilled rectangle one pixel wide.
    pub fn frame(&mut self, x: usize, y: usize, w: usize, h: usize, c: Rgb) {
        self.fill(x, y, w, 1, c);
        self.fill(x, y + h - 1, w, 1, c);
        self.fill(x, y, 1, h, c);
        self.fill(x + w - 1, y, 1, h, c);
    }

    /// Text with its top left at (x, y), each font pixel drawn `scale`×`scale`.
    pub fn text(&mut self, x: usize, y: usize, text: &str, scale: usize, c: Rgb) {
        for (fx, fy) in font::ink(text) {
            self.fill(x + fx * scale, y + fy * scale, scale, scale, c);
        }
    }

    /// Text centred on `cx`.
    pub fn text_centred(&mut self, cx: usize, y: usize, text: &str, scale: usize, c: Rgb) {
        let w = font::width(text) * scale;
        self.text(cx.saturating_sub(w / 2), y, text, scale, c);
    }

    /// Text ending at `right`.
    pub fn text_right(&mut self, right: usize, y: usize, text: &str, scale: usize, c: Rgb) {
        let w = font::width(text) * scale;
        self.text(right.saturating_sub(w), y, text, scale, c);
    }

    /// Writes the picture as an 8-bit RGB PNG.
    pub fn write_png(&self, path: &Path) -> Result<()> {
        let file = std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().context("writing the PNG header")?;
        let data: Vec<u8> = self.pixels.iter().flatten().copied().collect();
        writer.write_image_data(&data).context("writing the PNG")?;
        writer.finish().context("finishing the PNG")?;
        Ok(())
    }
}

/// Round tick values in [lo, hi]: steps of 1, 2 or 5 × 10^k, about `n` of them.
pub fn ticks(lo: f64, hi: f64, n: usize) -> (f64, Vec<f64>) {
    let span = (hi - lo).abs().max(1e-12);
    let raw = span / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() * step;
    let values = (0..).map(|i| first + i as f64 * step).take_while(|v| *v <= hi + step * 1e-9).collect();
    (step, values)
}

/// A tick value with as many decimals as its step needs.
pub fn label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 { 0 } else { (-step.log10().floor()) as usize };
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') { s[1..].to_string() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_ticks_and_labels() {
        assert_eq!(viridis(0.0), VIRIDIS[0]);
        assert_eq!(viridis(1.0), VIRIDIS[8]);
        assert_eq!(viridis(2.0), VIRIDIS[8]);
        let (step, t) = ticks(51.3, 58.9, 6);
        assert_eq!(step, 2.0);
        assert_eq!(t, vec![52.0, 54.0, 56.0, 58.0]);
        assert_eq!(label(0.25, 0.05), "0.25");
        assert_eq!(label(-0.0, 1.0), "0");
        assert_eq!(label(120.0, 10.0), "120");
    }
}
