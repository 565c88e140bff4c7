//! Scans against brute force: every filter form, projections with arithmetic and every
//! scalar function, `LIMIT`/`TOP` in catalog order, `SELECT *`, empty results, NULLs.

use arrow_schema::DataType;
use starflow_e2e::{
    DP02_COLUMNS, Dp02Row, Tol, Value, WORKERS, assert_rows_eq, assert_same_rows, compare_rows, dp02, query, rows,
    sorted,
};

use crate::check_all;

/// A `WHERE` clause and the brute-force predicate it must agree with.
pub(crate) struct FilterCase {
    pub clause: String,
    pub keep: Box<dyn Fn(&Dp02Row) -> bool>,
}

fn case(clause: impl Into<String>, keep: impl Fn(&Dp02Row) -> bool + 'static) -> FilterCase {
    FilterCase { clause: clause.into(), keep: Box::new(keep) }
}

const FILTER_COLUMNS: [&str; 3] = ["objectId", "coord_ra", "mag_i"];

/// Every filter form. Float comparisons follow IEEE (NaN compares false, `<>` true), and
/// `NOT` of a comparison with NaN is true — the same as Rust's operators on the row.
pub(crate) fn filter_cases() -> Vec<FilterCase> {
    let fx = dp02();
    let some = &fx.rows[12_345];
    let (dec, id, mag) = (some.dec, some.object_id, some.mag_i);
    assert!(!mag.is_nan(), "pick a detected row");
    vec![
        // Each comparison operator, on Float32, Float64, Int32, Int64 and Boolean columns.
        case("mag_i < 24.5", |r| r.mag_i < 24.5),
        case("mag_i <= 24.5", |r| r.mag_i <= 24.5),
        case("mag_i > 24.5", |r| r.mag_i > 24.5),
        case("mag_i >= 24.5", |r| r.mag_i >= 24.5),
        case(format!("mag_i = {mag:?}"), move |r| r.mag_i == mag),
        case("mag_u <> 25", |r| r.mag_u != 25.0),
        case("mag_u != 25", |r| r.mag_u != 25.0),
        case("coord_ra < 60.25", |r| r.ra < 60.25),
        case("coord_dec >= -35.5", |r| r.dec >= -35.5),
        case(format!("coord_dec = {dec:?}"), move |r| r.dec == dec),
        case("tract = 2003", |r| r.tract == 2003),
        case("tract <> 2003", |r| r.tract != 2003),
        case("patch < 10", |r| r.patch < 10),
        case("patch >= 40", |r| r.patch >= 40),
        case("tract > 2001.5", |r| f64::from(r.tract) > 2001.5),
        case(format!("objectId = {id}"), move |r| r.object_id == id),
        case(format!("objectId <= {id}"), move |r| r.object_id <= id),
        case("detect_isPrimary", |r| r.primary),
        case("detect_isPrimary = false", |r| !r.primary),
        case("refExtendedness > 0.5", |r| r.extendedness > 0.5),
        // Literal on the left, negation, expressions.
        case("2003 = tract", |r| r.tract == 2003),
        case("24 > mag_i", |r| r.mag_i < 24.0),
        case("-mag_i < -24", |r| -r.mag_i < -24.0),
        case("mag_g - mag_r > 0.5", |r| r.mag_g - r.mag_r > 0.5),
        case("coord_ra * 2 > 125", |r| r.ra * 2.0 > 125.0),
        case("objectId % 7 = 3", |r| r.object_id % 7 == 3),
        case("ABS(coord_dec + 35) < 0.5", |r| (r.dec + 35.0).abs() < 0.5),
        case("mag_u = mag_u", |r| !r.mag_u.is_nan()),
        // BETWEEN, IN, NOT, OR, AND.
        case("mag_i BETWEEN 22 AND 23.5", |r| r.mag_i >= 22.0 && r.mag_i <= 23.5),
        case("mag_i NOT BETWEEN 22 AND 23.5", |r| !(r.mag_i >= 22.0 && r.mag_i <= 23.5)),
        case("tract IN (2001, 2004)", |r| r.tract == 2001 || r.tract == 2004),
        case("patch NOT IN (0, 1, 2, 3)", |r| !(0..=3).contains(&r.patch)),
        case("patch IN (5)", |r| r.patch == 5),
        case("NOT (mag_i < 24)", |r| r.mag_i >= 24.0 || r.mag_i.is_nan()),
        case("NOT detect_isPrimary", |r| !r.primary),
        case("mag_i < 20 OR mag_z < 19.5", |r| r.mag_i < 20.0 || r.mag_z < 19.5),
        case("tract = 2003 AND mag_i < 22", |r| r.tract == 2003 && r.mag_i < 22.0),
        case("(tract = 2002 OR tract = 2004) AND mag_r BETWEEN 21 AND 25 AND NOT detect_isPrimary", |r| {
            (r.tract == 2002 || r.tract == 2004) && r.mag_r >= 21.0 && r.mag_r <= 25.0 && !r.primary
        }),
        // NaN is not NULL; comparing with NULL is unknown, hence false.
        case("mag_u IS NULL", |_| false),
        case("mag_i = NULL", |_| false),
        case("NOT (mag_i = NULL) OR tract = 2001", |r| r.tract == 2001),
        case("mag_u IS NOT NULL", |_| true),
        // Empty results: pruned away, contradictory, and not prunable.
        case("mag_i > 100", |_| false),
        case("mag_i < 24.5 AND mag_i > 24.5", |_| false),
        case("mag_i BETWEEN 25 AND 20", |_| false),
        case("mag_i + 0 > 100", |_| false),
    ]
}

/// `SELECT objectId, coord_ra, mag_i FROM dp02 WHERE <clause>`.
pub(crate) fn filter_sql(clause: &str) -> String {
    format!("SELECT {} FROM dp02 WHERE {clause}", FILTER_COLUMNS.join(", "))
}

#[test]
fn filters_match_brute_force() {
    let fx = dp02();
    check_all("filter", &filter_cases(), |c| {
        let sql = filter_sql(&c.clause);
        let expected: Vec<Vec<Value>> =
            fx.rows.iter().filter(|r| (c.keep)(r)).map(|r| r.select(&FILTER_COLUMNS)).collect();
        compare_rows(&sorted(rows(&sql, WORKERS)), &sorted(expected), Tol::Exact).map_err(|e| format!("{sql}\n{e}"))
    });
}

/// A projected expression, its output type and its brute-force value.
pub(crate) struct ProjectionCase {
    pub expr: &'static str,
    pub data_type: DataType,
    pub value: fn(&Dp02Row) -> Value,
}

fn f(x: f64) -> Value {
    Value::Float(x)
}

fn g(r: &Dp02Row, column: &str) -> f64 {
    f64::from(r.f32(column))
}

/// Arithmetic keeps Float32 when both sides are Float32, widens to Float64 otherwise, uses
/// Int64 for integers; `/` and the math functions always give Float64 (`ABS` of an integer
/// stays Int64). The references repeat those types, so values must agree bit for bit.
pub(crate) fn projection_cases() -> Vec<ProjectionCase> {
    use DataType::{Boolean, Float32, Float64, Int32, Int64};
    let p = |expr, data_type, value| ProjectionCase { expr, data_type, value };
    vec![
        p("tract", Int32, |r| Value::Int(r.tract.into())),
        p("mag_g", Float32, |r| Value::f32(r.mag_g)),
        p("mag_g - mag_r", Float32, |r| Value::f32(r.mag_g - r.mag_r)),
        p("mag_g + mag_r * 2", Float64, |r| f(g(r, "mag_g") + g(r, "mag_r") * 2.0)),
        p("mag_i * 2.5", Float64, |r| f(g(r, "mag_i") * 2.5)),
        p("coord_ra - 60", Float64, |r| f(r.ra - 60.0)),
        p("-coord_dec", Float64, |r| f(-r.dec)),
        p("tract * 100 + patch", Int64, |r| Value::Int(i64::from(r.tract) * 100 + i64::from(r.patch))),
        p("patch % 7", Int64, |r| Value::Int(i64::from(r.patch) % 7)),
        p("coord_ra % 1", Float64, |r| f(r.ra % 1.0)),
        p("mag_g / mag_r", Float64, |r| f(g(r, "mag_g") / g(r, "mag_r"))),
        p("patch / 2", Float64, |r| f(f64::from(r.patch) / 2.0)),
        p("patch / 0", Float64, |r| f(f64::from(r.patch) / 0.0)),
        p("(mag_g - mag_r) * (mag_r - mag_i)", Float32, |r| Value::f32((r.mag_g - r.mag_r) * (r.mag_r - r.mag_i))),
        p("ABS(coord_dec)", Float64, |r| f(r.dec.abs())),
        p("ABS(patch - 24)", Int64, |r| Value::Int((i64::from(r.patch) - 24).abs())),
        p("ABS(mag_g - mag_r)", Float64, |r| f(f64::from(r.mag_g - r.mag_r).abs())),
        p("SQRT(coord_ra)", Float64, |r| f(r.ra.sqrt())),
        p("sqrt(magerr_i)", Float64, |r| f(g(r, "magerr_i").sqrt())),
        p("LOG10(mag_i)", Float64, |r| f(g(r, "mag_i").log10())),
        p("POWER(10, -0.4 * mag_i)", Float64, |r| f(10f64.powf(-0.4 * g(r, "mag_i")))),
        p("POW(mag_g, 2)", Float64, |r| f(g(r, "mag_g").powf(2.0))),
        p("ROUND(mag_i)", Float64, |r| f(g(r, "mag_i").round())),
        p("ROUND(mag_i, 2)", Float64, |r| f((g(r, "mag_i") * 100.0).round() / 100.0)),
        p("ROUND(coord_ra, 3)", Float64, |r| f((r.ra * 1000.0).round() / 1000.0)),
        p("RADIANS(coord_ra)", Float64, |r| f(r.ra.to_radians())),
        p("DEGREES(RADIANS(coord_dec))", Float64, |r| f(r.dec.to_radians().to_degrees())),
        p("SIN(RADIANS(coord_dec))", Float64, |r| f(r.dec.to_radians().sin())),
        p("COS(RADIANS(coord_dec))", Float64, |r| f(r.dec.to_radians().cos())),
        p("1", Int64, |_| Value::Int(1)),
        p("2.5", Float64, |_| f(2.5)),
        p("detect_isPrimary", Boolean, |r| Value::Bool(r.primary)),
        p("NOT detect_isPrimary", Boolean, |r| Value::Bool(!r.primary)),
        p("mag_i < 24", Boolean, |r| Value::Bool(r.mag_i < 24.0)),
        p("mag_i IS NULL", Boolean, |_| Value::Bool(false)),
    ]
}

/// `SELECT objectId, <expr> AS v FROM dp02`.
pub(crate) fn projection_sql(expr: &str) -> String {
    format!("SELECT objectId, {expr} AS v FROM dp02")
}

#[test]
fn projections_match_brute_force() {
    let fx = dp02();
    check_all("projection", &projection_cases(), |c| {
        let sql = projection_sql(c.expr);
        let out = query(&sql, WORKERS);
        if out.types() != [DataType::Int64, c.data_type.clone()] {
            return Err(format!("{sql}\ntypes {:?}, expected [Int64, {}]", out.types(), c.data_type));
        }
        if out.names() != ["objectId", "v"] {
            return Err(format!("{sql}\nnames {:?}", out.names()));
        }
        let expected: Vec<Vec<Value>> = fx.rows.iter().map(|r| vec![Value::Int(r.object_id), (c.value)(r)]).collect();
        compare_rows(&sorted(out.rows()), &sorted(expected), Tol::Exact).map_err(|e| format!("{sql}\n{e}"))
    });
}

/// `FLOOR` separately: sqlparser parses it as `Expr::Floor`, not as a function call.
pub(crate) fn floor_cases() -> Vec<ProjectionCase> {
    vec![
        ProjectionCase { expr: "FLOOR(mag_i)", data_type: DataType::Float64, value: |r| f(g(r, "mag_i").floor()) },
        ProjectionCase { expr: "FLOOR(coord_dec)", data_type: DataType::Float64, value: |r| f(r.dec.floor()) },
    ]
}

#[test]
fn floor_matches_brute_force() {
    let fx = dp02();
    check_all("FLOOR", &floor_cases(), |c| {
        let sql = projection_sql(c.expr);
        let expected: Vec<Vec<Value>> = fx.rows.iter().map(|r| vec![Value::Int(r.object_id), (c.value)(r)]).collect();
        for workers in starflow_e2e::WORKER_COUNTS {
            let out = starflow_e2e::try_query(&sql, workers).map_err(|e| format!("{sql}\n{e}"))?;
            if out.types() != [DataType::Int64, c.data_type.clone()] {
                return Err(format!("{sql}\ntypes {:?}", out.types()));
            }
            compare_rows(&sorted(out.rows()), &sorted(expected.clone()), Tol::Exact)
                .map_err(|e| format!("{sql}\n{e}"))?;
        }
        Ok(())
    });
}

#[test]
fn unaliased_expressions_are_named_by_their_sql() {
    let out = query("SELECT objectId, mag_g - mag_r, SQRT(coord_ra), tract FROM dp02 LIMIT 1", WORKERS);
    assert_eq!(out.names(), ["objectId", "mag_g - mag_r", "SQRT(coord_ra)", "tract"]);
}

#[test]
fn select_star_returns_every_column_and_row() {
    let fx = dp02();
    let out = query("SELECT * FROM dp02", WORKERS);
    assert_eq!(out.names(), DP02_COLUMNS);
    let types = out.types();
    assert_eq!(
        &types[..6],
        [DataType::Int64, DataType::Float64, DataType::Float64, DataType::Int32, DataType::Int32, DataType::Boolean]
    );
    assert!(types[6..].iter().all(|t| *t == DataType::Float32), "{types:?}");
    let expected: Vec<Vec<Value>> = fx.rows.iter().map(|r| r.select(&DP02_COLUMNS)).collect();
    assert_same_rows(out.rows(), expected, Tol::Exact, "SELECT * FROM dp02");
}

#[test]
fn qualified_names_and_aliases_resolve() {
    let fx = dp02();
    let got = rows("SELECT o.objectId, dp02.mag_i AS m FROM dp02 AS o WHERE o.tract = 2002 AND MAG_I < 22", WORKERS);
    let expected: Vec<Vec<Value>> = fx
        .rows
        .iter()
        .filter(|r| r.tract == 2002 && r.mag_i < 22.0)
        .map(|r| r.select(&["objectId", "mag_i"]))
        .collect();
    assert_same_rows(got, expected, Tol::Exact, "qualified names");
}

/// A limited statement and its expected rows, in order.
pub(crate) struct LimitCase {
    pub sql: String,
    pub expected: Vec<Vec<Value>>,
}

/// `LIMIT`/`TOP` without `ORDER BY`: the first n matching rows in catalog order.
pub(crate) fn limit_cases() -> Vec<LimitCase> {
    let fx = dp02();
    let first = |n: usize, keep: &dyn Fn(&Dp02Row) -> bool, cols: &[&str]| -> Vec<Vec<Value>> {
        fx.rows.iter().filter(|r| keep(r)).take(n).map(|r| r.select(cols)).collect()
    };
    let id_mag = ["objectId", "mag_i"];
    let c = |sql: &str, expected| LimitCase { sql: sql.to_string(), expected };
    vec![
        c("SELECT objectId, mag_i FROM dp02 WHERE mag_i < 24 LIMIT 7", first(7, &|r| r.mag_i < 24.0, &id_mag)),
        c("SELECT TOP 7 objectId, mag_i FROM dp02 WHERE mag_i < 24", first(7, &|r| r.mag_i < 24.0, &id_mag)),
        c("SELECT TOP 5 objectId, mag_i FROM dp02 LIMIT 3", first(3, &|_| true, &id_mag)),
        c("SELECT * FROM dp02 WHERE mag_i < 26 LIMIT 5", first(5, &|r| r.mag_i < 26.0, &DP02_COLUMNS)),
        // Crosses a row-group boundary (2,000 rows per row group).
        c("SELECT * FROM dp02 LIMIT 2500", first(2500, &|_| true, &DP02_COLUMNS)),
        // The first matches are in later files / row groups.
        c("SELECT objectId, mag_i FROM dp02 WHERE tract = 2004 LIMIT 3", first(3, &|r| r.tract == 2004, &id_mag)),
        c(
            "SELECT objectId, mag_i FROM dp02 WHERE patch >= 45 AND mag_i < 23 LIMIT 10",
            first(10, &|r| r.patch >= 45 && r.mag_i < 23.0, &id_mag),
        ),
        // More than match: every match, in catalog order.
        c(
            "SELECT objectId, mag_i FROM dp02 WHERE mag_i < 19 LIMIT 100000",
            first(usize::MAX, &|r| r.mag_i < 19.0, &id_mag),
        ),
        c("SELECT objectId, mag_i FROM dp02 LIMIT 0", vec![]),
        c("SELECT objectId, mag_i FROM dp02 WHERE mag_i > 100 LIMIT 5", vec![]),
    ]
}

#[test]
fn limit_returns_first_matching_rows_in_catalog_order() {
    check_all("limit", &limit_cases(), |c| {
        compare_rows(&rows(&c.sql, WORKERS), &c.expected, Tol::Exact).map_err(|e| format!("{}\n{e}", c.sql))
    });
}

#[test]
fn empty_result_keeps_the_schema() {
    let out = query("SELECT objectId, mag_i * 2 AS m2 FROM dp02 WHERE mag_i > 100", WORKERS);
    assert_eq!(out.rows().len(), 0);
    assert_eq!(out.names(), ["objectId", "m2"]);
    assert_eq!(out.types(), [DataType::Int64, DataType::Float64]);
    assert_eq!(out.stats.rows_out, 0);
}

// The nullable catalog (see `starflow_e2e::nulls_catalog`): ids 1..=9,
// x = 1.5, NULL, NaN, -2.0, NULL, 4.0 in a.parquet, and no x column at all in b.parquet.

fn ids(sql: &str) -> Vec<i64> {
    let mut ids: Vec<i64> = rows(sql, WORKERS).iter().map(|r| r[0].as_i64().expect("integer id")).collect();
    ids.sort_unstable();
    ids
}

#[test]
fn missing_nullable_column_reads_as_null() {
    let got = sorted(rows("SELECT id, x FROM nulls", WORKERS));
    let x = [Some(1.5), None, Some(f64::NAN), Some(-2.0), None, Some(4.0), None, None, None];
    let expected: Vec<Vec<Value>> =
        x.iter().enumerate().map(|(i, x)| vec![Value::Int(i as i64 + 1), Value::opt_f64(*x)]).collect();
    assert_rows_eq(&got, &expected, Tol::Exact, "SELECT id, x FROM nulls");
}

#[test]
fn is_null_distinguishes_null_from_nan() {
    assert_eq!(ids("SELECT id FROM nulls WHERE x IS NULL"), [2, 5, 7, 8, 9]);
    assert_eq!(ids("SELECT id FROM nulls WHERE x IS NOT NULL"), [1, 3, 4, 6]);
}

#[test]
fn comparisons_with_null_and_nan_are_false() {
    assert_eq!(ids("SELECT id FROM nulls WHERE x > 0"), [1, 6]);
    assert_eq!(ids("SELECT id FROM nulls WHERE x <= 0"), [4]);
    assert_eq!(ids("SELECT id FROM nulls WHERE x > 0 OR id = 9"), [1, 6, 9]);
    assert_eq!(ids("SELECT id FROM nulls WHERE x IN (1.5, 4)"), [1, 6]);
    assert_eq!(ids("SELECT id FROM nulls WHERE x BETWEEN -5 AND 2"), [1, 4]);
}

#[test]
fn not_is_true_for_nan_and_unknown_for_null() {
    // IEEE: NOT (NaN > 0) is true; SQL three-valued logic: NOT (NULL > 0) is NULL, filtered out.
    assert_eq!(ids("SELECT id FROM nulls WHERE NOT (x > 0)"), [3, 4]);
    assert_eq!(ids("SELECT id FROM nulls WHERE x NOT IN (1.5)"), [3, 4, 6]);
}

#[test]
fn arithmetic_on_null_is_null() {
    let got = sorted(rows("SELECT id, x + 1 AS y, SQRT(x) AS s FROM nulls WHERE id IN (1, 2, 8)", WORKERS));
    let expected = vec![
        vec![Value::Int(1), Value::Float(2.5), Value::Float(1.5f64.sqrt())],
        vec![Value::Int(2), Value::Null, Value::Null],
        vec![Value::Int(8), Value::Null, Value::Null],
    ];
    assert_rows_eq(&got, &expected, Tol::Exact, "x + 1 over NULLs");
}

/// The filter statements, for the worker-count comparison.
pub(crate) fn filter_queries() -> Vec<String> {
    filter_cases().iter().map(|c| filter_sql(&c.clause)).collect()
}

/// Every projection in one statement, for the worker-count comparison.
pub(crate) fn projection_queries() -> Vec<String> {
    let items: Vec<String> =
        projection_cases().iter().enumerate().map(|(i, c)| format!("{} AS v{i}", c.expr)).collect();
    vec![format!("SELECT objectId, {} FROM dp02", items.join(", "))]
}

/// The other statements of this module, for the worker-count comparison.
pub(crate) fn other_queries() -> Vec<String> {
    let mut q: Vec<String> = limit_cases().into_iter().map(|c| c.sql).collect();
    q.extend([
        "SELECT * FROM dp02".to_string(),
        "SELECT id, x, x + 1 FROM nulls WHERE NOT (x > 0) OR x IS NULL".to_string(),
    ]);
    q
}
