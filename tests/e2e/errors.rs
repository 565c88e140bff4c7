//! User errors through the `starflow` binary: every one exits with code 1, prints a message
//! starting with `error:` that says what is wrong (and where, or what was meant), and never
//! panics.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use starflow_e2e::{Scratch, dp02, starflow, starflow_query, write_parquet};

fn query_catalog(location: &str, sql: &str) -> starflow_e2e::CliOutput {
    starflow(&["query", "--catalog", &format!("t={location}"), sql])
}

#[test]
fn unknown_column_suggests_the_nearest() {
    starflow_query(&[], "SELECT objectId, mag_ii FROM dp02").clean_error(&["\"mag_ii\"", "did you mean \"mag_i\""]);
    starflow_query(&[], "SELECT objectId FROM dp02 WHERE coord_raa > 3")
        .clean_error(&["\"coord_raa\"", "\"coord_ra\""]);
}

#[test]
fn unknown_catalog_suggests_the_nearest() {
    starflow_query(&[], "SELECT * FROM dp03").clean_error(&["\"dp03\"", "did you mean \"dp02\""]);
}

#[test]
fn unknown_function_suggests_the_nearest() {
    starflow_query(&[], "SELECT SQRTT(mag_i) FROM dp02").clean_error(&["SQRTT", "SQRT"]);
}

#[test]
fn syntax_error_has_a_position() {
    starflow_query(&[], "SELECT FROM WHERE").clean_error(&["syntax error", "Line: 1, Column"]);
    starflow_query(&[], "SELECT objectId FROM dp02 WHERE mag_i < < 3")
        .clean_error(&["syntax error", "Line: 1, Column"]);
}

#[test]
fn syntax_error_at_end_of_input_has_a_position() {
    starflow_query(&[], "SELECT objectId FROM dp02 WHERE mag_i <").clean_error(&["syntax error", "Line: 1, Column"]);
}

#[test]
fn type_errors_are_reported() {
    starflow_query(&[], "SELECT objectId FROM dp02 WHERE mag_i + 'a' > 1").clean_error(&["type error"]);
    starflow_query(&[], "SELECT SUM(detect_isPrimary) FROM dp02").clean_error(&["type error", "detect_isPrimary"]);
    starflow_query(&[], "SELECT objectId FROM dp02 WHERE mag_i").clean_error(&["type error"]);
    starflow_query(&[], "SELECT tract, mag_i FROM dp02 GROUP BY tract").clean_error(&["mag_i", "GROUP BY"]);
    starflow_query(&[], "SELECT objectId FROM dp02 WHERE COUNT(*) > 1").clean_error(&["WHERE"]);
}

#[test]
fn runtime_arithmetic_errors_are_reported() {
    // Integer division by zero (`%`) and Int64 overflow fail the query cleanly.
    starflow_query(&[], "SELECT tract % 0 FROM dp02").clean_error(&[]);
    starflow_query(&[], "SELECT objectId * objectId FROM dp02").clean_error(&["overflow"]);
    // An integer SUM never wraps: it fails, naming the aggregate (here on 1, 2 and 4 workers).
    for w in ["1", "2", "4"] {
        starflow_query(&["--workers", w], "SELECT SUM(objectId) FROM dp02").clean_error(&["SUM(objectId) overflows"]);
    }
}

#[test]
fn unsupported_statements_are_reported() {
    starflow_query(&[], "DELETE FROM dp02").clean_error(&["not supported"]);
    starflow_query(&[], "SELECT * FROM dp02 LIMIT 5 OFFSET 3").clean_error(&["OFFSET"]);
}

#[test]
fn truncated_parquet_file_is_named() {
    let scratch = Scratch::new("truncated");
    let source = &dp02().files[0];
    let bytes = std::fs::read(source).expect("read fixture file");
    let path = scratch.join("half.parquet");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write truncated copy");
    query_catalog(scratch.path().to_str().expect("utf-8"), "SELECT COUNT(*) FROM t").clean_error(&["half.parquet"]);
}

#[test]
fn non_parquet_file_is_named() {
    let scratch = Scratch::new("not-parquet");
    std::fs::write(scratch.join("x.parquet"), "objectId,mag_i\n1,20.5\n").expect("write text file");
    query_catalog(scratch.path().to_str().expect("utf-8"), "SELECT * FROM t").clean_error(&["x.parquet", "Parquet"]);
}

#[test]
fn empty_folder_is_reported() {
    let scratch = Scratch::new("empty");
    let folder = scratch.path().to_str().expect("utf-8").to_string();
    query_catalog(&folder, "SELECT * FROM t").clean_error(&["no Parquet files", &folder]);
}

#[test]
fn missing_path_is_reported() {
    let scratch = Scratch::new("missing");
    let path = scratch.join("nowhere");
    query_catalog(path.to_str().expect("utf-8"), "SELECT * FROM t").clean_error(&["nowhere"]);
}

#[test]
fn conflicting_column_types_name_both_files() {
    let scratch = Scratch::new("mismatch");
    let batch = |t: DataType, values: ArrayRef| {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("v", t, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2])), values]).expect("batch")
    };
    write_parquet(&scratch.join("a.parquet"), &batch(DataType::Int32, Arc::new(Int32Array::from(vec![1, 2]))));
    write_parquet(&scratch.join("b.parquet"), &batch(DataType::Float64, Arc::new(Float64Array::from(vec![1.0, 2.0]))));
    query_catalog(scratch.path().to_str().expect("utf-8"), "SELECT * FROM t").clean_error(&[
        "a.parquet",
        "b.parquet",
        "\"v\"",
    ]);
}

#[test]
fn missing_non_nullable_column_names_the_file() {
    let scratch = Scratch::new("missing-column");
    let schema =
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("v", DataType::Int32, false)]));
    let full =
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1])), Arc::new(Int32Array::from(vec![1]))]);
    write_parquet(&scratch.join("a.parquet"), &full.expect("batch"));
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let short = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![2]))]);
    write_parquet(&scratch.join("b.parquet"), &short.expect("batch"));
    query_catalog(scratch.path().to_str().expect("utf-8"), "SELECT * FROM t").clean_error(&["b.parquet", "\"v\""]);
}

#[test]
fn missing_nullable_column_reads_as_nulls_through_the_binary() {
    let out = starflow_query(&["--format", "csv"], "SELECT id, x FROM nulls WHERE id >= 6 ORDER BY id");
    assert_eq!(out.ok(), "id,x\n6,4.0\n7,\n8,\n9,\n");
}

#[test]
fn bad_command_lines_are_reported() {
    starflow(&["query", "--catalog", "dp02", "SELECT 1"]).clean_error(&["NAME=PATH"]);
    let out = starflow(&[
        "query",
        "--catalog",
        &format!("dp02={}", dp02().dir.display()),
        "--format",
        "parquet",
        "SELECT * FROM dp02",
    ]);
    out.clean_error(&["--out"]);
}
