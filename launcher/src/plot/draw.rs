//! The density picture: the grid (RA increasing to the left), axes in degrees, a title and a
//! colour bar.

use super::Grid;
use super::canvas::{Canvas, INK, label, ticks, viridis};

const LEFT: usize = 110;
const RIGHT: usize = 150;
const TOP: usize = 60;
const BOTTOM: usize = 70;
/// Font scale of labels.
const S: usize = 2;

/// Draws `grid`; `log` scales colours by log10(count).
pub fn density_image(grid: &Grid, log: bool, title: &str, order: Option<u8>) -> Canvas {
    // Small grids are drawn with several screen pixels per bin.
    let zoom = (512 / grid.nx.max(grid.ny)).max(1);
    let (w, h) = (grid.nx * zoom, grid.ny * zoom);
    let mut c = Canvas::new(LEFT + w + RIGHT, TOP + h + BOTTOM);
    let max = grid.counts.iter().copied().max().unwrap_or(0).max(1);
    let scale = |n: u64| {
        if log { (n as f64).log10() / (max as f64).log10().max(1e-9) } else { n as f64 / max as f64 }
    };
    for iy in 0..grid.ny {
        for ix in 0..grid.nx {
            let n = grid.counts[iy * grid.nx + ix];
            if n == 0 {
                continue;
            }
            // RA grows to the left, Dec upwards.
            let (x, y) = (LEFT + (grid.nx - 1 - ix) * zoom, TOP + (grid.ny - 1 - iy) * zoom);
            c.fill(x, y, zoom, zoom, viridis(if max == 1 { 1.0 } else { scale(n) }));
        }
    }
    c.frame(LEFT - 1, TOP - 1, w + 2, h + 2, INK);
    // RA ticks along the bottom, right to left.
    let (step, ras) = ticks(grid.ra_lo, grid.ra_hi, 6);
    for ra in ras {
        let x = LEFT + ((grid.ra_hi - ra) / (grid.ra_hi - grid.ra_lo) * w as f64).round() as usize;
        c.fill(x.min(LEFT + w - 1), TOP + h + 1, 1, 8, INK);
        c.text_centred(x, TOP + h + 14, &label(ra.rem_euclid(360.0), step), S, INK);
    }
    c.text_centred(LEFT + w / 2, TOP + h + 44, "RA (deg)", S, INK);
    // Dec ticks on the left, upwards.
    let (step, decs) = ticks(grid.dec_lo, grid.dec_hi, 6);
    for dec in decs {
        let y = TOP + ((grid.dec_hi - dec) / (grid.dec_hi - grid.dec_lo) * h as f64).round() as usize;
        let y = y.min(TOP + h - 1);
        c.fill(LEFT - 9, y, 8, 1, INK);
        c.text_right(LEFT - 14, y.saturating_sub(7), &label(dec, step), S, INK);
    }
    c.text(10, TOP - 26, "Dec (deg)", S, INK);
    c.text_centred(LEFT + w / 2, 14, title, S, INK);
    colour_bar(&mut c, LEFT + w + 30, TOP, h, max, log, order);
    c
}

/// A vertical colour bar (0 or 1 at the bottom, the maximum at the top) with labels.
fn colour_bar(c: &mut Canvas, x: usize, top: usize, h: usize, max: u64, log: bool, order: Option<u8>) {
    let bar_w = 18;
    for y in 0..h {
        let t = 1.0 - y as f64 / (h.max(2) - 1) as f64;
        c.fill(x, top + y, bar_w, 1, viridis(t));
    }
    c.frame(x - 1, top - 1, bar_w + 2, h + 2, INK);
    let at = |t: f64| top + ((1.0 - t) * (h - 1) as f64).round() as usize;
    let mut marks: Vec<(f64, String)> = Vec::new();
    if log {
        let top_exp = (max as f64).log10();
        for e in 0..=(top_exp.floor() as u32) {
            marks.push((e as f64 / top_exp.max(1e-9), format!("{}", 10u64.pow(e))));
        }
    } else {
        let (step, values) = ticks(0.0, max as f64, 5);
        marks.extend(values.into_iter().map(|v| (v / max as f64, label(v, step))));
    }
    for (t, text) in marks.into_iter().filter(|(t, _)| (0.0..=1.0).contains(t)) {
        let y = at(t);
        c.fill(x + bar_w + 1, y, 5, 1, INK);
        c.text(x + bar_w + 9, y.saturating_sub(7), &text, S, INK);
    }
    let unit = if order.is_some() { "per pixel" } else { "per bin" };
    c.text(x - 10, top + h + 14, if log { "log count" } else { "count" }, S, INK);
    c.text(x - 10, top + h + 34, unit, S, INK);
}
