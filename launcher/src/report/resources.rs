//! The report's resource sections: CPU and memory of each process over time, and the bytes
//! exchanged between processes.

use std::fmt::Write;

use super::ReportInput;
use super::html::*;
use super::svg::{self, PROCESS_COLOURS};

pub(super) fn resources(s: &mut String, input: &ReportInput, total_us: u64) {
    let procs = &input.profile.processes;
    s.push_str(r#"<section><h2 id="resources">CPU and memory</h2>"#);
    if procs.is_empty() {
        s.push_str(r#"<p class="note">No process was profiled.</p></section>"#);
        return;
    }
    s.push_str(r#"<table class="data"><thead><tr><th>Process</th><th>Host</th><th class="n">PID</th><th class="n">Workers</th><th class="n">Mean CPU</th><th class="n">Peak CPU</th><th class="n">Peak memory</th><th class="n">Bytes sent</th></tr></thead><tbody>"#);
    for p in procs {
        let n = p.samples.len().max(1) as f64;
        let mean = p.samples.iter().map(|x| x.cpu).sum::<f64>() / n;
        let peak = p.samples.iter().map(|x| x.cpu).fold(0.0, f64::max);
        let rss = p.samples.iter().map(|x| x.rss_mib).fold(0.0, f64::max);
        let _ = write!(
            s,
            r#"<tr><td><span class="sw" style="background:{}"></span>process {}</td><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{mean:.2} cores</td><td class="n">{peak:.2} cores</td><td class="n">{rss:.1} MiB</td><td class="n">{}</td></tr>"#,
            PROCESS_COLOURS[p.process % PROCESS_COLOURS.len()],
            p.process,
            esc(&p.host),
            p.pid,
            p.workers.len(),
            fmt_bytes(p.bytes_sent)
        );
    }
    s.push_str("</tbody></table>");
    if procs.iter().all(|p| p.samples.is_empty()) {
        s.push_str(r#"<p class="note">No resource samples were taken.</p></section>"#);
        return;
    }
    let x_max = total_us as f64 / 1000.0;
    let cpu = svg::line_chart("CPU", &series(&input.profile, |x| x.cpu), x_max, 1.0, &|v, st| {
        format!("{} cores", svg::tick_label(v, st.min(0.1)))
    });
    let rss = svg::line_chart("Memory", &series(&input.profile, |x| x.rss_mib), x_max, 1.0, &|v, st| {
        format!("{} MiB", svg::tick_label(v, st))
    });
    let _ = write!(
        s,
        r#"<div class="charts"><figure><figcaption>CPU in use (cores)</figcaption>{cpu}</figure><figure><figcaption>Resident memory (MiB)</figcaption>{rss}</figure></div><p class="note">Sampled every few tens of ms by each process; CPU is averaged since the previous sample.</p></section>"#
    );
}

pub(super) fn network(s: &mut String, input: &ReportInput, total_us: u64) {
    let procs = &input.profile.processes;
    s.push_str(r#"<section><h2 id="network">Bytes exchanged between processes</h2>"#);
    if input.processes <= 1 && procs.len() <= 1 {
        s.push_str(r#"<p class="note">One process: nothing crossed the network.</p></section>"#);
        return;
    }
    let n = procs.iter().map(|p| p.bytes_to.len()).max().unwrap_or(0).max(procs.len());
    s.push_str(r#"<table class="data matrix"><thead><tr><th>from \ to</th>"#);
    for r in 0..n {
        let _ = write!(s, r#"<th class="n">process {r}</th>"#);
    }
    s.push_str(r#"<th class="n">Sent in all</th></tr></thead><tbody>"#);
    let mut received = vec![0u64; n];
    for p in procs {
        let _ = write!(s, "<tr><th>process {}</th>", p.process);
        for (r, got) in received.iter_mut().enumerate() {
            let b = p.bytes_to.get(r).copied().unwrap_or(0);
            *got += b;
            let cell = if r == p.process { "—".to_string() } else { fmt_bytes(b) };
            let _ = write!(s, r#"<td class="n" title="{} bytes">{cell}</td>"#, group(b));
        }
        let _ = write!(s, r#"<td class="n"><b>{}</b></td></tr>"#, fmt_bytes(p.bytes_sent));
    }
    s.push_str(r#"</tbody><tfoot><tr><th>Received</th>"#);
    for r in &received {
        let _ = write!(s, r#"<td class="n">{}</td>"#, fmt_bytes(*r));
    }
    let sent: u64 = procs.iter().map(|p| p.bytes_sent).sum();
    let _ = write!(s, r#"<td class="n"><b>{}</b></td></tr></tfoot></table>"#, fmt_bytes(sent));
    s.push_str(r#"<p class="note">Data and timely progress messages while the query ran."#);
    if input.bytes_sent > sent {
        let _ = write!(
            s,
            " With the collection of results and profiles afterwards, {} in all.",
            fmt_bytes(input.bytes_sent)
        );
    }
    s.push_str("</p>");
    if procs.iter().any(|p| p.samples.iter().any(|x| x.bytes_sent > 0)) {
        let chart = svg::line_chart(
            "Bytes sent",
            &series(&input.profile, |x| x.bytes_sent as f64),
            total_us as f64 / 1000.0,
            1.0,
            &|v, _| fmt_bytes(v as u64),
        );
        let _ = write!(
            s,
            r#"<div class="charts"><figure><figcaption>Bytes sent since the start</figcaption>{chart}</figure></div>"#
        );
    }
    s.push_str("</section>");
}
