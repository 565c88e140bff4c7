//! Pruning and early stop, checked through `QueryStats` and `EXPLAIN`: a limited scan opens
//! only its first row groups, narrow predicates skip row groups, and skipping never loses a
//! matching row (boundary cases where statistics and comparisons use different types).

use starflow_dataflow::PlanOptions;
use starflow_e2e::{
    DP02_COLUMNS, Dp02Row, Tol, Value, WORKER_COUNTS, WORKERS, assert_rows_eq, compare_rows, dp02, explain, rows,
    small_partitions, sorted, try_query_with,
};

use crate::check_all;

pub(crate) const HEAD: &str = "SELECT * FROM dp02 WHERE mag_i < 26 LIMIT 5";

/// Each worker opens one partition and decodes one batch, which already holds five
/// matches; nothing else is read. With the default 16,384-row batches a worker's first
/// batch is a whole file of this small catalog, so the stop is also checked with small
/// batches, where it reads a small fraction of the catalog.
#[test]
fn limit_stops_after_the_first_batch_of_each_worker() {
    let fx = dp02();
    let expected: Vec<Vec<Value>> =
        fx.rows.iter().filter(|r| r.mag_i < 26.0).take(5).map(|r| r.select(&DP02_COLUMNS)).collect();
    for workers in WORKER_COUNTS {
        for options in [PlanOptions::default(), small_partitions()] {
            let out = try_query_with(HEAD, workers, &options).unwrap_or_else(|e| panic!("{e}"));
            let (stats, batch) = (&out.stats, options.batch_rows as u64);
            let context = format!("{workers} worker(s), {batch}-row batches");
            assert!(
                stats.partitions_read <= workers as u64,
                "{context}: opened {} partitions for LIMIT 5",
                stats.partitions_read
            );
            assert!(stats.rows_read <= workers as u64 * batch, "{context}: read {} rows for LIMIT 5", stats.rows_read);
            assert_eq!(stats.rows_out, 5, "{context}");
            assert_rows_eq(&out.rows(), &expected, Tol::Exact, &context);
        }
        let stats = try_query_with(HEAD, workers, &small_partitions()).expect("query").stats;
        assert!(
            stats.rows_read * 8 < fx.rows.len() as u64,
            "{workers} worker(s) read {} rows for LIMIT 5",
            stats.rows_read
        );
    }
    assert!(explain(HEAD, 2).contains("early stop"), "{}", explain(HEAD, 2));
}

/// `(kept row groups, total row groups, rows to read)` from the `EXPLAIN` line
/// `files: .. ; row groups: K of T kept (P pruned); N rows to read`.
fn pruning_line(explain: &str) -> (u64, u64, u64) {
    let line =
        explain.lines().find(|l| l.contains("row groups:")).unwrap_or_else(|| panic!("no row-group line:\n{explain}"));
    let tail = &line[line.find("row groups:").expect("marker") + "row groups:".len()..];
    let words: Vec<&str> = tail.split_whitespace().collect();
    let number = |i: usize| {
        words[i].trim_matches(|c: char| !c.is_ascii_digit()).parse().unwrap_or_else(|_| panic!("number {i} in {line}"))
    };
    let rows_at = words.iter().position(|w| *w == "rows").unwrap_or_else(|| panic!("no row count in {line}"));
    assert!(line.contains("pruned"), "{line}");
    (number(0), number(2), number(rows_at - 1))
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
    let (kept, total, to_read) = pruning_line(&text);
    assert_eq!(total, fx.total_row_groups() as u64, "{text}");
    assert!(kept >= 1 && kept < total, "a 0.01° cone kept {kept} of {total} row groups:\n{text}");
    assert!(to_read < fx.rows.len() as u64, "{text}");
    for workers in WORKER_COUNTS {
        for options in [PlanOptions::default(), small_partitions()] {
            let out = try_query_with(&sql, workers, &options).unwrap_or_else(|e| panic!("{e}"));
            let context = format!("{workers} worker(s), {} rows per partition", options.partition_rows);
            // A partition is a run of kept row groups, so there are at most as many as kept row groups.
            assert!(out.stats.partitions_read >= 1 && out.stats.partitions_read <= kept, "{context}: {:?}", out.stats);
            assert!(
                out.stats.rows_read <= to_read,
                "{context}: read {} rows, EXPLAIN said {to_read}",
                out.stats.rows_read
            );
            assert!(out.rows().contains(&vec![Value::Int(row.object_id)]), "{context}: the cone misses its centre row");
        }
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
    let (kept, total, _) = pruning_line(&text);
    assert_eq!(kept, total, "{text}");
}

/// The `mag_i` values of one row group (its min/max are the row group's statistics).
fn row_group_mag_i(file: usize, row_group: usize) -> impl Iterator<Item = f32> {
    dp02().rows.iter().filter(move |r| r.file == file && r.row_group == row_group && !r.mag_i.is_nan()).map(|r| r.mag_i)
}

/// The shortest decimal on the `side` (+1 above, -1 below) of `v` that still rounds to `v`
/// as f32.
fn literal_rounding_onto(v: f32, side: f64) -> String {
    let target = f64::from(v) + side * f64::from(v) * f64::from(f32::EPSILON) / 4.0;
    (1..=20)
        .map(|digits| format!("{target:.digits$}"))
        .find(|s| {
            let x: f64 = s.parse().expect("number");
            (x - f64::from(v)) * side > 0.0 && x as f32 == v
        })
        .expect("a literal that rounds onto the value")
}

/// `mag_i` is Float32 and comparisons with a constant run in the column's type (as numpy
/// does), so `mag_i >= L` means `mag_i >= (L as f32)`. Pruning must agree even when `L` is
/// not representable in f32 and rounds down onto a row group's maximum.
#[test]
fn pruning_agrees_with_float32_comparisons() {
    let fx = dp02();
    let max = row_group_mag_i(1, 1).fold(f32::NEG_INFINITY, f32::max);
    let min = row_group_mag_i(2, 0).fold(f32::INFINITY, f32::min);
    let above_max = literal_rounding_onto(max, 1.0);
    let below_min = literal_rounding_onto(min, -1.0);
    type Keep = Box<dyn Fn(&Dp02Row) -> bool>;
    let cases: [(&str, &str, Keep); 4] = [
        (">=", &above_max, Box::new(move |r: &Dp02Row| r.mag_i >= max)),
        ("=", &above_max, Box::new(move |r: &Dp02Row| r.mag_i == max)),
        ("<=", &below_min, Box::new(move |r: &Dp02Row| r.mag_i <= min)),
        ("=", &below_min, Box::new(move |r: &Dp02Row| r.mag_i == min)),
    ];
    check_all("float32 bound", &cases, |(op, literal, keep)| {
        let sql = format!("SELECT objectId FROM dp02 WHERE mag_i {op} {literal}");
        let expected: Vec<Vec<Value>> =
            fx.rows.iter().filter(|r| keep(r)).map(|r| vec![Value::Int(r.object_id)]).collect();
        assert!(!expected.is_empty());
        compare_rows(&sorted(rows(&sql, WORKERS)), &sorted(expected), Tol::Exact).map_err(|e| format!("{sql}\n{e}"))
    });
}

/// `objectId` values exceed 2^53, where neighbouring integers share one f64; pruning bounds
/// are f64, so a strict bound must not drop the row group holding the largest id.
#[test]
fn pruning_keeps_large_integer_ids_on_strict_bounds() {
    let fx = dp02();
    let max = fx.rows.iter().map(|r| r.object_id).max().expect("rows");
    let min = fx.rows.iter().map(|r| r.object_id).min().expect("rows");
    assert!(max > 1 << 53, "objectId {max} does not exercise f64 rounding");
    let cases = [
        (format!("SELECT objectId FROM dp02 WHERE objectId > {}", max - 1), max),
        (format!("SELECT objectId FROM dp02 WHERE objectId < {}", min + 1), min),
    ];
    check_all("integer bound", &cases, |(sql, expected)| {
        compare_rows(&rows(sql, WORKERS), &[vec![Value::Int(*expected)]], Tol::Exact).map_err(|e| format!("{sql}\n{e}"))
    });
}

/// Every statement of this module, for the worker-count comparison.
pub(crate) fn queries() -> Vec<String> {
    vec![HEAD.to_string(), "SELECT COUNT(*) FROM dp02 WHERE tract = 2003".to_string()]
}
