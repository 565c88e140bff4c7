//! Progress of long work on a terminal: the line the REPL and `starflow query` redraw while a
//! query runs (time, rows and bytes read with their rates, partitions done, ETA), and the
//! ticker that redraws it for `starflow query`. Nothing is drawn unless stderr is a terminal.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use starflow_dataflow::{Plan, QueryMetrics};

use crate::wire::ProgressFrame;

/// Work shorter than this draws no progress (no flicker on quick queries).
pub const QUIET: f64 = 0.5;

/// Time between redraws.
const TICK: Duration = Duration::from_millis(250);

/// Partitions of `plan` that process `rank` (of `threads` workers, `peers` in all) reads.
pub fn local_partitions(plan: &Plan, rank: usize, threads: usize, peers: usize) -> u64 {
    let scans = plan.scans();
    scans.iter().map(|s| starflow_catalogs::process_share(&s.partitions, peers, threads, rank).len() as u64).sum()
}

/// The progress text (without the REPL's hints).
pub fn line(p: &ProgressFrame) -> String {
    let share = if p.processes > 1 { " (process 0's share)" } else { "" };
    let rate = |n: u64| n as f64 / p.seconds.max(1e-3);
    let mut line = format!(
        "  {:.1} s · {} rows read ({}/s) · {} ({}/s)",
        p.seconds,
        count(p.rows_read),
        count(rate(p.rows_read) as u64),
        bytes(p.bytes_read),
        bytes(rate(p.bytes_read) as u64)
    );
    if p.partitions_total > 0 {
        let done = p.partitions_read.min(p.partitions_total);
        let fraction = done as f64 / p.partitions_total as f64;
        line += &format!(" · partitions {done}/{}{share} {:.0}%", p.partitions_total, 100.0 * fraction);
        if fraction > 0.05 && fraction < 1.0 {
            line += &format!(" · ETA {:.0} s", p.seconds * (1.0 - fraction) / fraction);
        }
    }
    line
}

/// A count with a unit prefix: 950, 12.3 K, 7.7 M.
pub fn count(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1} K", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} M", n as f64 / 1e6),
        _ => format!("{:.2} G", n as f64 / 1e9),
    }
}

/// Bytes in kB, MB or GB.
pub fn bytes(n: u64) -> String {
    match n {
        0..1_000_000 => format!("{:.0} kB", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}

/// Redraws the progress line of a `starflow query` on stderr until dropped (which clears it).
pub struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Starts drawing (only if stderr is a terminal) from this process's counters.
    pub fn start(metrics: Arc<QueryMetrics>, partitions_total: u64, processes: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::io::stderr().is_terminal().then(|| {
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut shown = false;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(TICK);
                    let seconds = started.elapsed().as_secs_f64();
                    if seconds < QUIET || flag.load(Ordering::Relaxed) {
                        continue;
                    }
                    let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
                    let p = ProgressFrame {
                        partitions_read: get(&metrics.partitions_read),
                        partitions_total,
                        rows_read: get(&metrics.rows_read),
                        bytes_read: get(&metrics.bytes_read),
                        rows_out: 0,
                        seconds,
                        processes,
                    };
                    eprint!("\r\x1b[K{}", line(&p));
                    shown = true;
                }
                if shown {
                    eprint!("\r\x1b[K");
                }
            })
        });
        Self { stop, thread }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_has_rates_partitions_and_eta() {
        let p = ProgressFrame {
            partitions_read: 25,
            partitions_total: 100,
            rows_read: 2_000_000,
            bytes_read: 50_000_000,
            rows_out: 0,
            seconds: 2.0,
            processes: 1,
        };
        assert_eq!(
            line(&p),
            "  2.0 s · 2.0 M rows read (1.0 M/s) · 50.0 MB (25.0 MB/s) · partitions 25/100 25% · ETA 6 s"
        );
        let shared = ProgressFrame { processes: 2, ..p };
        assert!(line(&shared).contains("partitions 25/100 (process 0's share)"));
    }
}
