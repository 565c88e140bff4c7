//! The report's charts as inline SVG: the task stream (one lane per worker, one rectangle per
//! run of an operator) and line charts of a process's resources over time.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use starflow_dataflow::profile::{QueryProfile, WorkerProfile};

use super::html::{esc, fmt_us};

/// The SVG namespace: the page's one URL.
const NS: &str = "http://www.w3.org/2000/svg";
/// Width of the task stream's drawing, in its own units (it scales to the page).
const STREAM_W: f64 = 1120.0;
/// Room for the lane labels.
const LABEL_W: f64 = 150.0;
const LANE_H: f64 = 26.0;

/// Line colours of processes, by rank (cycled).
pub(super) const PROCESS_COLOURS: [&str; 8] =
    ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];

/// Whether operator `i` of a worker is a scope (its address encloses another operator's).
pub(super) fn is_scope(w: &WorkerProfile, i: usize) -> bool {
    let a = &w.operators[i].address;
    w.operators.iter().any(|o| o.address.len() > a.len() && o.address.starts_with(a))
}

/// Ticks from 0 to at least `max`, about `n` of them, at 1, 2 or 5 times a power of ten.
pub(super) fn ticks(max: f64, n: usize) -> (f64, Vec<f64>) {
    let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
    let raw = max / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let count = (max / step - 1e-9).ceil() as usize;
    (step, (0..=count).map(|i| i as f64 * step).collect())
}

/// `v` with as many decimals as the tick `step` needs.
pub(super) fn tick_label(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

/// A time axis label, `v` and `step` in ms.
fn time_label(v: f64, step: f64) -> String {
    if step >= 1000.0 {
        format!("{} s", tick_label(v / 1000.0, step / 1000.0))
    } else {
        format!("{} ms", tick_label(v, step))
    }
}

/// A run of one operator on one worker: spans closer than a pixel drawn as one rectangle.
struct Run {
    x0: f64,
    x1: f64,
    start: u64,
    end: u64,
    busy: u64,
    spans: u64,
}

/// The task stream: lanes of every worker over `total_us`, operators coloured by `colours`
/// (scopes, which enclose the others, are left out).
pub(super) fn task_stream(profile: &QueryProfile, colours: &HashMap<&str, &str>, total_us: u64) -> String {
    let lanes: Vec<(usize, &WorkerProfile)> =
        profile.processes.iter().flat_map(|p| p.workers.iter().map(move |w| (p.process, w))).collect();
    let (top, axis_h) = (4.0, 28.0);
    let plot_w = STREAM_W - LABEL_W - 16.0;
    let plot_h = LANE_H * lanes.len() as f64;
    let total_ms = total_us.max(1) as f64 / 1000.0;
    let scale = plot_w / (total_ms * 1000.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="{NS}" class="stream" viewBox="0 0 {STREAM_W} {h}" width="100%" role="img" aria-label="task stream">"#,
        h = top + plot_h + axis_h
    );
    let (step, ts) = ticks(total_ms, 10);
    for t in ts.iter().filter(|t| **t <= total_ms * 1.0001) {
        let x = LABEL_W + t * 1000.0 * scale;
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{top}" y2="{y2}" class="grid"/><text x="{x:.1}" y="{ty}" text-anchor="middle" class="tick">{}</text>"##,
            time_label(*t, step),
            y2 = top + plot_h + 4.0,
            ty = top + plot_h + 18.0
        );
    }
    for (i, (process, w)) in lanes.iter().enumerate() {
        let y = top + LANE_H * i as f64;
        let _ = write!(
            s,
            r#"<g class="lane" data-process="{process}" data-worker="{wi}"><rect x="{LABEL_W}" y="{y}" width="{plot_w}" height="{LANE_H}" class="lane-bg{odd}"/><text x="{lx}" y="{ly}" text-anchor="end" class="label">process {process} · worker {wi}</text>"#,
            wi = w.worker,
            odd = if i % 2 == 1 { " odd" } else { "" },
            lx = LABEL_W - 8.0,
            ly = y + LANE_H / 2.0 + 4.0
        );
        let drawn: Vec<Option<(&str, &str)>> = (0..w.operators.len())
            .map(|o| {
                let name = w.operators[o].name.as_str();
                (!is_scope(w, o)).then(|| (name, colours.get(name).copied().unwrap_or("#999")))
            })
            .collect();
        let mut spans = w.spans.clone();
        spans.sort_by_key(|&(_, start, _)| start);
        let mut open: BTreeMap<u32, Run> = BTreeMap::new();
        let mut runs: Vec<(u32, Run)> = Vec::new();
        for (op, start, end) in spans {
            if drawn.get(op as usize).is_none_or(|d| d.is_none()) {
                continue;
            }
            let (x0, x1) = (start as f64 * scale, end.max(start) as f64 * scale);
            if let Some(r) = open.get_mut(&op).filter(|r| x0 - r.x1 < 1.0) {
                r.x1 = r.x1.max(x1);
                r.end = r.end.max(end);
                r.busy += end.saturating_sub(start);
                r.spans += 1;
            } else if let Some(done) =
                open.insert(op, Run { x0, x1, start, end, busy: end.saturating_sub(start), spans: 1 })
            {
                runs.push((op, done));
            }
        }
        runs.extend(open);
        for (op, r) in runs {
            let Some(Some((name, colour))) = drawn.get(op as usize) else { continue };
            let what = if r.spans == 1 {
                format!("{}: {}", esc(name), fmt_us(r.busy))
            } else {
                format!("{}: {} runs, {} busy", esc(name), r.spans, fmt_us(r.busy))
            };
            let _ = write!(
                s,
                r#"<rect x="{x:.2}" y="{ry}" width="{rw:.2}" height="{rh}" fill="{colour}"><title>{what} (at {} – {})</title></rect>"#,
                fmt_us(r.start),
                fmt_us(r.end),
                x = LABEL_W + r.x0,
                ry = y + 3.0,
                rw = (r.x1 - r.x0).max(0.6),
                rh = LANE_H - 6.0
            );
        }
        s.push_str("</g>");
    }
    let _ = write!(
        s,
        r#"<line x1="{LABEL_W}" x2="{x2}" y1="{y}" y2="{y}" class="axis"/></svg>"#,
        x2 = LABEL_W + plot_w,
        y = top + plot_h
    );
    s
}

/// One line of a chart.
pub(super) struct Series {
    pub label: String,
    pub colour: &'static str,
    /// (ms, value).
    pub points: Vec<(f64, f64)>,
}

/// A line chart over `0..=x_max` ms; `y_fmt(value, step)` labels the y axis and the points.
pub(super) fn line_chart(
    name: &str,
    series: &[Series],
    x_max: f64,
    y_min_top: f64,
    y_fmt: &dyn Fn(f64, f64) -> String,
) -> String {
    let (w, h, left, right, top, bottom) = (560.0, 230.0, 64.0, 14.0, 10.0, 30.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let y_max = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(y_min_top, f64::max);
    let (ystep, yt) = ticks(y_max, 5);
    let y_top = yt.last().copied().unwrap_or(1.0).max(ystep);
    let (xstep, xt) = ticks(x_max, 6);
    let x_top = x_max.max(1e-9);
    let px = |x: f64| left + x.min(x_top) / x_top * pw;
    let py = |y: f64| top + ph - y / y_top * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="{NS}" class="line-chart" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="{}">"#,
        esc(name)
    );
    for v in &yt {
        let _ = write!(
            s,
            r#"<line x1="{left}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{tx}" y="{ty:.1}" text-anchor="end" class="tick">{}</text>"#,
            y_fmt(*v, ystep),
            x2 = left + pw,
            y = py(*v),
            tx = left - 6.0,
            ty = py(*v) + 4.0
        );
    }
    for v in xt.iter().filter(|v| **v <= x_top * 1.0001) {
        let _ = write!(
            s,
            r#"<line x1="{x:.1}" x2="{x:.1}" y1="{y1}" y2="{y2}" class="axis"/><text x="{x:.1}" y="{ty}" text-anchor="middle" class="tick">{}</text>"#,
            time_label(*v, xstep),
            x = px(*v),
            y1 = top + ph,
            y2 = top + ph + 4.0,
            ty = top + ph + 18.0
        );
    }
    let _ = write!(
        s,
        r#"<line x1="{left}" x2="{left}" y1="{top}" y2="{y}" class="axis"/><line x1="{left}" x2="{x2}" y1="{y}" y2="{y}" class="axis"/>"#,
        x2 = left + pw,
        y = top + ph
    );
    for line in series {
        let pts: Vec<String> = line.points.iter().map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y))).collect();
        if pts.len() > 1 {
            let _ = write!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2" stroke-linejoin="round"/>"#,
                pts.join(" "),
                line.colour
            );
        }
        if line.points.len() <= 60 {
            for &(x, y) in &line.points {
                let _ = write!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"><title>{} at {}: {}</title></circle>"#,
                    px(x),
                    py(y),
                    line.colour,
                    esc(&line.label),
                    fmt_us((x * 1000.0) as u64),
                    y_fmt(y, ystep / 100.0)
                );
            }
        }
    }
    s.push_str("</svg>");
    s
}
