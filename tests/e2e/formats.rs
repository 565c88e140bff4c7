//! Output formats of `starflow query`: csv, json, parquet and table, each compared with the
//! result of the same statement through the library.

use std::fs::File;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use starflow_e2e::{Scratch, Tol, Value, WORKERS, assert_rows_eq, dp02, query, rows_of, starflow_query};

const SAMPLE: &str = "SELECT objectId, tract, detect_isPrimary, mag_u, coord_ra, mag_g - mag_r AS color \
     FROM dp02 WHERE tract = 2002 ORDER BY objectId LIMIT 50";

#[test]
fn csv_one_cell_result_is_the_last_line() {
    let out = starflow_query(&["--format", "csv"], "SELECT COUNT(*) AS n FROM dp02 WHERE mag_i < 26");
    let n = dp02().rows.iter().filter(|r| r.mag_i < 26.0).count();
    let stdout = out.ok();
    assert_eq!(stdout.lines().next(), Some("n"));
    assert_eq!(stdout.lines().last(), Some(n.to_string().as_str()));
}

#[test]
fn csv_is_the_default_when_stdout_is_not_a_terminal() {
    let out = starflow_query(&[], "SELECT COUNT(*) AS n FROM dp02");
    assert_eq!(out.ok(), format!("n\n{}\n", dp02().rows.len()));
}

#[test]
fn csv_of_an_empty_result_is_the_header() {
    let out = starflow_query(&["--format", "csv"], "SELECT objectId, mag_i FROM dp02 WHERE mag_i > 100");
    assert_eq!(out.ok(), "objectId,mag_i\n");
}

#[test]
fn csv_rows_match_the_library() {
    let stdout = starflow_query(&["--format", "csv"], SAMPLE).ok().to_string();
    let expected = query(SAMPLE, WORKERS).rows();
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("objectId,tract,detect_isPrimary,mag_u,coord_ra,color"));
    let got: Vec<Vec<Value>> = lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let float = |s: &str| {
                if s == "NaN" { f64::NAN } else { s.parse::<f64>().unwrap_or_else(|_| panic!("float {s:?}")) }
            };
            vec![
                Value::Int(f[0].parse().expect("objectId")),
                Value::Int(f[1].parse().expect("tract")),
                Value::Bool(f[2].parse().expect("bool")),
                Value::f32(float(f[3]) as f32),
                Value::Float(float(f[4])),
                Value::f32(float(f[5]) as f32),
            ]
        })
        .collect();
    // CSV prints floats in their shortest round-trip form, so values survive exactly.
    assert_rows_eq(&got, &expected, Tol::Exact, SAMPLE);
}

#[test]
fn json_is_an_array_of_row_objects() {
    let stdout = starflow_query(&["--format", "json"], SAMPLE).ok().to_string();
    let parsed: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    let array = parsed.as_array().expect("a JSON array");
    let expected = query(SAMPLE, WORKERS).rows();
    assert_eq!(array.len(), expected.len());
    let got: Vec<Vec<Value>> = array
        .iter()
        .map(|o| {
            let o = o.as_object().expect("row object");
            assert_eq!(o.len(), 6);
            let num = |k: &str| o[k].as_f64();
            vec![
                Value::Int(o["objectId"].as_i64().expect("objectId")),
                Value::Int(o["tract"].as_i64().expect("tract")),
                Value::Bool(o["detect_isPrimary"].as_bool().expect("bool")),
                // JSON has no NaN: the writer emits null.
                Value::f32(num("mag_u").map_or(f32::NAN, |x| x as f32)),
                Value::Float(num("coord_ra").expect("coord_ra")),
                Value::f32(num("color").map_or(f32::NAN, |x| x as f32)),
            ]
        })
        .collect();
    assert_rows_eq(&got, &expected, Tol::Exact, SAMPLE);
    assert!(
        array.iter().any(|o| o["mag_u"].is_null()) || expected.iter().all(|r| !r[3].as_f64().expect("mag_u").is_nan())
    );
}

#[test]
fn json_of_an_empty_result_is_an_empty_array() {
    let stdout = starflow_query(&["--format", "json"], "SELECT objectId FROM dp02 WHERE mag_i > 100").ok().to_string();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&stdout).expect("JSON"), serde_json::json!([]));
}

#[test]
fn parquet_output_reads_back_identically() {
    let scratch = Scratch::new("parquet-out");
    let path = scratch.join("out.parquet");
    let out = starflow_query(&["--format", "parquet", "--out", path.to_str().expect("utf-8")], SAMPLE);
    assert_eq!(out.ok(), "", "nothing on stdout with --out");
    let expected = query(SAMPLE, WORKERS);
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).expect("open output")).expect("footer");
    let batches: Vec<_> = reader.build().expect("reader").map(|b| b.expect("batch")).collect();
    assert_eq!(batches[0].schema().fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>(), expected.names());
    let types: Vec<_> = batches[0].schema().fields().iter().map(|f| f.data_type().clone()).collect();
    assert_eq!(types, expected.types());
    assert_rows_eq(&rows_of(&batches), &expected.rows(), Tol::Exact, SAMPLE);
}

#[test]
fn table_shows_column_names_and_row_count() {
    let out =
        starflow_query(&["--format", "table"], "SELECT tract, COUNT(*) AS n FROM dp02 GROUP BY tract ORDER BY tract");
    let stdout = out.ok();
    for name in ["tract", "n"] {
        assert!(stdout.lines().any(|l| l.split('|').any(|cell| cell.trim() == name)), "no column {name}:\n{stdout}");
    }
    for t in dp02().tracts() {
        assert!(stdout.contains(&t.to_string()), "tract {t} missing:\n{stdout}");
    }
    assert!(stdout.contains(&format!("({} rows)", dp02().tracts().len())), "{stdout}");
}

#[test]
fn stats_go_to_stderr() {
    let out = starflow_query(&["--stats", "--workers", "2"], "SELECT * FROM dp02 WHERE mag_i < 26 LIMIT 5");
    out.ok();
    let stats = out
        .stderr
        .lines()
        .find(|l| l.starts_with("stats:"))
        .unwrap_or_else(|| panic!("no stats line:\n{}", out.stderr));
    assert!(stats.contains("workers=2") && stats.contains("rows_out=5"), "{stats}");
}

#[test]
fn explain_prints_the_plan() {
    let out =
        starflow_query(&["--workers", "2"], "EXPLAIN SELECT COUNT(*) FROM dp02 WHERE coord_dec BETWEEN -30 AND -29");
    let stdout = out.ok();
    assert!(stdout.contains("Scan dp02 on 2 worker(s)") && stdout.contains("pruned"), "{stdout}");
}
