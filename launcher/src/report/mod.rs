//! `--report FILE.html` and `REPORT`: one self-contained HTML performance report of a query
//! (summary, plan nodes, operators, task stream, CPU and memory, traffic), charts as inline
//! SVG, no external scripts or fonts. The data behind it is embedded as JSON
//! (`<script type="application/json" id="starflow-report">`) for tools and tests.

mod html;
mod resources;
mod svg;

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use starflow_dataflow::QueryStats;
use starflow_dataflow::plan::PruningSummary;
use starflow_dataflow::profile::QueryProfile;

/// What a report is made from.
#[derive(Debug, Clone, Serialize)]
pub struct ReportInput {
    /// The statement, as the user wrote it.
    pub statement: String,
    /// starflow's version.
    pub version: String,
    /// When the query started (UTC, `YYYY-MM-DD HH:MM:SS UTC`).
    pub started: String,
    /// Processes.
    pub processes: usize,
    /// Worker threads in all.
    pub workers: usize,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Row groups read by scans.
    pub partitions_read: u64,
    /// Rows decoded by scans.
    pub rows_read: u64,
    /// Rows that passed the scan predicates.
    pub rows_matched: u64,
    /// Compressed bytes read by scans.
    pub bytes_read: u64,
    /// Rows in the result.
    pub rows_out: u64,
    /// Bytes sent between processes.
    pub bytes_sent: u64,
    /// Pruning of each scan: (catalog, what was kept).
    pub scans: Vec<(String, PruningSummary)>,
    /// What every worker and process did.
    pub profile: QueryProfile,
}

impl ReportInput {
    /// The report of a finished query whose plan had these `scans` ([`scans`]).
    pub fn new(
        statement: &str,
        scans: Vec<(String, PruningSummary)>,
        workers: usize,
        stats: &QueryStats,
        started: std::time::SystemTime,
    ) -> Self {
        Self {
            statement: statement.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started: utc(started),
            processes: stats.processes.max(1),
            workers,
            seconds: stats.seconds,
            partitions_read: stats.partitions_read,
            rows_read: stats.rows_read,
            rows_matched: stats.rows_matched,
            bytes_read: stats.bytes_read,
            rows_out: stats.rows_out,
            bytes_sent: stats.bytes_sent,
            scans,
            profile: stats.profile.clone().unwrap_or_default(),
        }
    }
}

/// What pruning kept in each scan of `plan`.
pub fn scans(plan: &starflow_dataflow::Plan) -> Vec<(String, PruningSummary)> {
    plan.scans().into_iter().map(|s| (s.catalog.clone(), s.pruning.clone())).collect()
}

/// Text made safe to put in HTML.
pub fn escape(s: &str) -> String {
    html::esc(s)
}

/// The report as one HTML page.
pub fn render(input: &ReportInput) -> String {
    html::render(input)
}

/// Writes the report to `path` (a temporary file renamed into place).
pub fn write(path: &Path, input: &ReportInput) -> Result<()> {
    let tmp = path.with_extension("html.tmp");
    std::fs::write(&tmp, render(input)).with_context(|| format!("cannot write the report {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write the report {}", path.display()))
}

/// `YYYY-MM-DD HH:MM:SS UTC` (civil date from the Unix day number, no time-zone database).
fn utc(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days_from_civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        let at = |s: u64| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s);
        assert_eq!(utc(at(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(at(951_782_400)), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(at(1_796_152_940)), "2026-12-01 19:22:20 UTC");
    }
}
