//! The end-to-end test binary (one binary for the whole suite: link once, run many).
//!
//! SQL runs over a generated multi-file DP0.2-like catalog through the library API and the
//! `starflow` binary; every result is checked against brute force over the same files read
//! with the plain `parquet` reader (`starflow_e2e::load`). Fixtures live in `tests/src/`.

mod aggregate;
mod density;
mod errors;
mod formats;
mod geometry;
mod golden;
mod hats;
mod healpix;
mod locations;
mod processes;
mod pruning;
mod releases;
mod report;
mod scan;
mod serve;
mod server;
mod sort;
mod terminal;
mod workers;
mod xmatch;

/// Runs every case and panics once with all failures (so one bad case does not hide others).
#[track_caller]
pub(crate) fn check_all<T>(what: &str, cases: &[T], check: impl Fn(&T) -> Result<(), String>) {
    let failures: Vec<String> = cases.iter().filter_map(|c| check(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} {what} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
