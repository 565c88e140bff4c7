//! Pruning and early stop, checked through `QueryStats` and `EXPLAIN`: a limited scan opens
//! only its first row groups, narrow predicates skip row groups, and skipping never loses a
//! matching row (boundary cases where statistics and comparisons use different types).

use starflow_e2e::{Dp02Row, Tol, Value, WORKER_COUNTS, WORKERS, assert_rows_eq, dp02, explain, query, rows, sorted};

pub(crate) const HEAD: &str = "SELECT * FROM dp02 WHERE mag_i < 26 LIMIT 5";

#[test]
fn limit_stops_after_the_first_row_groups() {
    let fx = dp02();
    for workers in WORKER_COUNTS {
        let out = query(HEAD, workers);
        let stats = &out.stats;
        assert!(
            stats.partitions_read <= workers as u64,
            "{workers} worker(s) opened {} row groups for LIMIT 5",
            stats.partitions_read
        );
        assert!(
            stats.rows_read <= (workers * DP02_ROW_GROUP_ROWS) as u64 && stats.rows_read < fx.rows.len() as u64 / 2,
            "{workers} worker(s) read {} of {} rows for LIMIT 5",
            stats.rows_read,
            fx.rows.len()
        );
        assert_eq!(stats.rows_out, 5);
    }
    assert!(explain(HEAD, 2).contains("early stop"), "{}", explain(HEAD, 2));
}

const DP02_ROW_GROUP_ROWS: usize = starflow_e2e::fixture::DP02_OPTIONS.row_group_rows;

/// `(kept, total)` row groups from the `EXPLAIN` line
/// `files: .. ; row groups: K of T kept (P pruned); N rows to read`.
fn row_groups_kept(explain: &str) -> (u64, u64) {
    let line = explain.lines().find(|l| l.contains("row groups:")).unwrap_or_else(|| panic!("no row-group line:\n{explain}"));
    let tail = &line[line.find("row groups:").expect("marker") + "row groups:".len()..];
    let words: Vec<&str> = tail.split_whitespace().collect();
    let kept = words[0].parse().unwrap_or_else(|_| panic!("kept count in {line}"));
    let total = words[2].parse().unwrap_or_else(|_| panic!("total count in {line}"));
    assert!(line.contains("pruned"), "{line}");
    (kept, total)
}

#[test]
fn narrow_cone_reads_fewer_row_groups() {
    let fx = dp02();
    let row = &fx.rows[fx.rows.len() / 2];
    let sql = format!(
        "SELECT objectId FROM dp02 WHERE CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', {:?}, {:?}, 0.01)) = 1",
        row.ra, row.dec
    );
    let text = explain(&sql, WORKERS);
    let (kept, total) = row_groups_kept(&text);
    assert_eq!(total, fx.total_row_groups() as u64, "{text}");
    assert!(kept >= 1 && kept < total, "a 0.01° cone kept {kept} of {total} row groups:\n{text}");
    for workers in WORKER_COUNTS {
        let out = query(&sql, workers);
        assert_eq!(out.stats.partitions_read, kept, "{workers} worker(s) read other row groups than EXPLAIN kept");
        assert!(out.rows().contains(&vec![Value::Int(row.object_id)]), "the cone misses its centre row");
    }
}

#[test]
fn equality_on_a_tract_keeps_one_file() {
    let text = explain("SELECT COUNT(*) FROM dp02 WHERE tract = 2003", WORKERS);
    assert!(text.contains("files: 1 of 6 kept (5 pruned)"), "{text}");
}

#[test]
fn explain_of_an_unprunable_scan_keeps_everything() {
    let text = explain("SELECT COUNT(*) FROM dp02 WHERE mag_i + 0 < 24", WORKERS);
    let (kept, total) = row_groups_kept(&text);
    assert_eq!(kept, total, "{text}");
}

/// The largest `mag_i` of one row group, which is that row group's max statistic.
fn row_group_max_mag_i(file: usize, row_group: usize) -> f32 {
    dp02()
        .rows
        .iter()
        .filter(|r| r.file == file && r.row_group == row_group && !r.mag_i.is_nan())
        .map(|r| r.mag_i)
        .fold(f32::NEG_INFINITY, f32::max)
}

/// `mag_i` is Float32 and comparisons with a constant run in the column's type (as numpy
/// does), so `mag_i >= L` means `mag_i >= (L as f32)`. Pruning must agree even when `L` is
/// not representable in f32 and rounds down onto a row group's maximum.
#[test]
fn pruning_agrees_with_float32_comparisons() {
    let fx = dp02();
    let max = row_group_max_mag_i(1, 1);
    // The shortest decimal above `max` that still rounds to it as f32.
    let literal = (1..=20)
        .map(|digits| format!("{:.*}", digits, f64::from(max) + f64::from(max) * f64::from(f32::EPSILON) / 4.0))
        .find(|s| {
            let v: f64 = s.parse().expect("number");
            v > f64::from(max) && v as f32 == max
        })
        .expect("a literal that rounds onto the max");
    for op in [">=", "="] {
        let sql = format!("SELECT objectId FROM dp02 WHERE mag_i {op} {literal}");
        let keep = |r: &Dp02Row| if op == "=" { r.mag_i == max } else { r.mag_i >= max };
        let expected: Vec<Vec<Value>> = fx.rows.iter().filter(|r| keep(r)).map(|r| vec![Value::Int(r.object_id)]).collect();
        assert!(!expected.is_empty());
        assert_rows_eq(&sorted(rows(&sql, WORKERS)), &sorted(expected), Tol::Exact, &sql);
    }
}

/// `objectId` values exceed 2^53, where neighbouring integers share one f64; pruning bounds
/// are f64, so a strict bound must not drop the row group holding the largest id.
#[test]
fn pruning_keeps_large_integer_ids_on_strict_bounds() {
    let fx = dp02();
    let max = fx.rows.iter().map(|r| r.object_id).max().expect("rows");
    let min = fx.rows.iter().map(|r| r.object_id).min().expect("rows");
    assert!(max > 1 << 53, "objectId {max} does not exercise f64 rounding");
    for (sql, expected) in [
        (format!("SELECT objectId FROM dp02 WHERE objectId > {}", max - 1), max),
        (format!("SELECT objectId FROM dp02 WHERE objectId < {}", min + 1), min),
    ] {
        assert_rows_eq(&rows(&sql, WORKERS), &[vec![Value::Int(expected)]], Tol::Exact, &sql);
    }
}

/// Every statement of this module, for the worker-count comparison.
pub(crate) fn queries() -> Vec<String> {
    vec![HEAD.to_string(), "SELECT COUNT(*) FROM dp02 WHERE tract = 2003".to_string()]
}
