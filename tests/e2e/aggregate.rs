//! Aggregates against brute force: COUNT(*) and COUNT(col), group-by on one and two keys,
//! keys that are expressions, aliases, positions or booleans, HAVING, DISTINCT, and global
//! aggregates over no rows. NULL and NaN inputs are skipped (pandas `skipna`).

use std::collections::{BTreeMap, BTreeSet};

use arrow_schema::DataType;
use starflow_e2e::{
    AGG, Dp02Row, FloatAgg, Tol, Value, WORKERS, assert_rows_eq, assert_same_rows, catalogs, dp02, query, rows,
    small_partitions, try_plan,
};

/// Brute-force `COUNT(*)` and the float aggregates of one column, per key.
fn group<K: Ord>(key: impl Fn(&Dp02Row) -> Option<K>, value: impl Fn(&Dp02Row) -> f64) -> BTreeMap<K, (i64, FloatAgg)> {
    let mut groups: BTreeMap<K, (i64, FloatAgg)> = BTreeMap::new();
    for r in &dp02().rows {
        if let Some(k) = key(r) {
            let entry = groups.entry(k).or_default();
            entry.0 += 1;
            entry.1.push(value(r));
        }
    }
    groups
}

fn all_stats(n: i64, a: &FloatAgg) -> Vec<Value> {
    vec![Value::Int(n), a.count(), a.sum(), a.avg(), a.min(), a.max(), a.stddev()]
}

pub(crate) const COUNT_ALL: &str = "SELECT COUNT(*) AS n FROM dp02";
pub(crate) const COUNT_WHERE: &str = "SELECT COUNT(*) AS n FROM dp02 WHERE mag_i < 26";
pub(crate) const COUNT_COLUMNS: &str =
    "SELECT COUNT(*), COUNT(mag_u), COUNT(mag_i), COUNT(refExtendedness), COUNT(objectId) FROM dp02";
pub(crate) const BY_TRACT: &str = "SELECT tract, COUNT(*) AS n, COUNT(mag_i) AS n_i, SUM(mag_i) AS s, \
     AVG(mag_i) AS a, MIN(mag_i) AS lo, MAX(mag_i) AS hi, STDDEV(mag_i) AS sd FROM dp02 GROUP BY tract";
pub(crate) const BY_TRACT_PATCH: &str = "SELECT tract, patch, COUNT(*), COUNT(mag_r), SUM(mag_r), AVG(mag_r), \
     MIN(mag_r), MAX(mag_r), STDDEV(mag_r) FROM dp02 WHERE coord_dec < -33 GROUP BY tract, patch";
pub(crate) const INTEGER_AGGS: &str = "SELECT tract, SUM(patch) AS s, MIN(patch) AS lo, MAX(objectId) AS hi, AVG(patch) AS a, COUNT(patch) AS c FROM dp02 GROUP BY tract";
pub(crate) const GLOBAL: &str =
    "SELECT COUNT(*), SUM(patch), AVG(mag_i), MIN(coord_ra), MAX(coord_dec), STDDEV(mag_g) FROM dp02";
pub(crate) const BY_EXPRESSION_ALIAS: &str =
    "SELECT ROUND(mag_i) AS bin, COUNT(*) AS n, AVG(mag_i - mag_z) AS iz FROM dp02 WHERE mag_i < 30 GROUP BY bin";
pub(crate) const BY_FLOOR: &str =
    "SELECT FLOOR(mag_i) AS bin, COUNT(*) AS n, AVG(mag_i - mag_z) AS iz FROM dp02 WHERE mag_i < 30 GROUP BY bin";
pub(crate) const BY_POSITION: &str = "SELECT patch % 5, COUNT(*) FROM dp02 GROUP BY 1";
pub(crate) const BY_BOOLEAN: &str =
    "SELECT detect_isPrimary, COUNT(*) AS n, AVG(refExtendedness) AS e FROM dp02 GROUP BY detect_isPrimary";
pub(crate) const ZERO_ROWS: &str = "SELECT COUNT(*) AS n, COUNT(mag_i) AS c, SUM(mag_i) AS s, AVG(mag_i) AS a, \
     MIN(mag_i) AS lo, MAX(mag_i) AS hi, STDDEV(mag_i) AS sd FROM dp02 WHERE mag_i > 100";
pub(crate) const ZERO_ROWS_UNPRUNED: &str = "SELECT COUNT(*), SUM(patch) FROM dp02 WHERE mag_i + 0 > 100";
pub(crate) const ZERO_ROWS_GROUPED: &str = "SELECT tract, COUNT(*) FROM dp02 WHERE mag_i > 100 GROUP BY tract";
pub(crate) const DISTINCT_PAIRS: &str = "SELECT DISTINCT tract, patch FROM dp02 WHERE mag_i < 21";
pub(crate) const DISTINCT_ORDERED: &str = "SELECT DISTINCT tract FROM dp02 ORDER BY tract DESC";
pub(crate) const NULLS_GLOBAL: &str =
    "SELECT COUNT(*), COUNT(x), SUM(x), AVG(x), MIN(x), MAX(x), STDDEV(x), COUNT(id) FROM nulls";

#[test]
fn count_star_without_where_counts_every_row() {
    assert_rows_eq(&rows(COUNT_ALL, WORKERS), &[vec![Value::Int(dp02().rows.len() as i64)]], Tol::Exact, COUNT_ALL);
}

#[test]
fn count_star_with_where() {
    let n = dp02().rows.iter().filter(|r| r.mag_i < 26.0).count();
    assert_rows_eq(&rows(COUNT_WHERE, WORKERS), &[vec![Value::Int(n as i64)]], Tol::Exact, COUNT_WHERE);
}

#[test]
fn count_column_skips_nan() {
    let fx = dp02();
    let count = |f: &dyn Fn(&Dp02Row) -> f32| Value::Int(fx.rows.iter().filter(|r| !f(r).is_nan()).count() as i64);
    let n = fx.rows.len() as i64;
    let expected =
        vec![vec![Value::Int(n), count(&|r| r.mag_u), count(&|r| r.mag_i), count(&|r| r.extendedness), Value::Int(n)]];
    assert!(expected[0][1].as_i64() < Some(n), "the fixture has NaN in mag_u");
    assert_rows_eq(&rows(COUNT_COLUMNS, WORKERS), &expected, Tol::Exact, COUNT_COLUMNS);
}

#[test]
fn group_by_tract_matches_brute_force() {
    let out = query(BY_TRACT, WORKERS);
    let mut types = vec![DataType::Int32, DataType::Int64, DataType::Int64];
    types.extend(vec![DataType::Float64; 5]);
    assert_eq!(out.types(), types);
    assert_eq!(out.names(), ["tract", "n", "n_i", "s", "a", "lo", "hi", "sd"]);
    let expected: Vec<Vec<Value>> = group(|r| Some(r.tract), |r| f64::from(r.mag_i))
        .iter()
        .map(|(t, (n, a))| [vec![Value::Int((*t).into())], all_stats(*n, a)].concat())
        .collect();
    assert_eq!(expected.len(), dp02().tracts().len());
    assert_same_rows(out.rows(), expected, AGG, BY_TRACT);
}

#[test]
fn group_by_tract_and_patch_matches_brute_force() {
    let expected: Vec<Vec<Value>> = group(|r| (r.dec < -33.0).then_some((r.tract, r.patch)), |r| f64::from(r.mag_r))
        .iter()
        .map(|((t, p), (n, a))| [vec![Value::Int((*t).into()), Value::Int((*p).into())], all_stats(*n, a)].concat())
        .collect();
    assert!(expected.len() > 20, "many groups: {}", expected.len());
    assert_same_rows(rows(BY_TRACT_PATCH, WORKERS), expected.clone(), AGG, BY_TRACT_PATCH);
    // Every group finished on worker 0 (as a view's contribution query does): the same rows,
    // with no gather.
    let mut plan = starflow_dataflow::plan_sql(BY_TRACT_PATCH, &catalogs(), &small_partitions()).unwrap().plan;
    assert!(!plan.is_gathered());
    for aggregate in plan.aggregates_mut() {
        aggregate.on_first_worker = true;
    }
    assert!(plan.is_gathered(), "finished on worker 0, the result needs no gather");
    for workers in [1, 3] {
        let out = try_plan(&plan, workers).unwrap();
        assert_same_rows(out.rows(), expected.clone(), AGG, &format!("{BY_TRACT_PATCH} on worker 0 of {workers}"));
    }
}

#[test]
fn integer_aggregates_stay_integers() {
    let out = query(INTEGER_AGGS, WORKERS);
    use DataType::{Float64, Int32, Int64};
    assert_eq!(out.types(), [Int32, Int64, Int64, Int64, Float64, Int64]);
    let mut groups: BTreeMap<i32, (i64, i64, i64, i64)> = BTreeMap::new();
    for r in &dp02().rows {
        let e = groups.entry(r.tract).or_insert((0, i64::MAX, i64::MIN, 0));
        e.0 += i64::from(r.patch);
        e.1 = e.1.min(r.patch.into());
        e.2 = e.2.max(r.object_id);
        e.3 += 1;
    }
    let expected: Vec<Vec<Value>> = groups
        .iter()
        .map(|(t, (s, lo, hi, n))| {
            vec![
                Value::Int((*t).into()),
                Value::Int(*s),
                Value::Int(*lo),
                Value::Int(*hi),
                Value::Float(*s as f64 / *n as f64),
                Value::Int(*n),
            ]
        })
        .collect();
    assert_same_rows(out.rows(), expected, AGG, INTEGER_AGGS);
}

#[test]
fn global_aggregates_match_brute_force() {
    let fx = dp02();
    let agg = |f: &dyn Fn(&Dp02Row) -> f64| {
        let mut a = FloatAgg::default();
        fx.rows.iter().for_each(|r| a.push(f(r)));
        a
    };
    let expected = vec![vec![
        Value::Int(fx.rows.len() as i64),
        Value::Int(fx.rows.iter().map(|r| i64::from(r.patch)).sum()),
        agg(&|r| r.mag_i.into()).avg(),
        agg(&|r| r.ra).min(),
        agg(&|r| r.dec).max(),
        agg(&|r| r.mag_g.into()).stddev(),
    ]];
    assert_rows_eq(&rows(GLOBAL, WORKERS), &expected, AGG, GLOBAL);
}

fn binned(bin: fn(f64) -> f64) -> Vec<Vec<Value>> {
    group(|r| (r.mag_i < 30.0).then(|| bin(f64::from(r.mag_i)) as i64), |r| f64::from(r.mag_i - r.mag_z))
        .iter()
        .map(|(bin, (n, a))| vec![Value::Float(*bin as f64), Value::Int(*n), a.avg()])
        .collect()
}

#[test]
fn group_by_expression_alias() {
    assert_same_rows(rows(BY_EXPRESSION_ALIAS, WORKERS), binned(f64::round), AGG, BY_EXPRESSION_ALIAS);
}

#[test]
fn group_by_floor() {
    assert_same_rows(rows(BY_FLOOR, WORKERS), binned(f64::floor), AGG, BY_FLOOR);
}

#[test]
fn group_by_position() {
    let expected: Vec<Vec<Value>> = group(|r| Some(i64::from(r.patch) % 5), |_| 0.0)
        .iter()
        .map(|(k, (n, _))| vec![Value::Int(*k), Value::Int(*n)])
        .collect();
    let out = query(BY_POSITION, WORKERS);
    assert_eq!(out.names(), ["patch % 5", "COUNT(*)"]);
    assert_same_rows(out.rows(), expected, Tol::Exact, BY_POSITION);
}

#[test]
fn group_by_boolean_key() {
    let expected: Vec<Vec<Value>> = group(|r| Some(r.primary), |r| r.extendedness.into())
        .iter()
        .map(|(k, (n, a))| vec![Value::Bool(*k), Value::Int(*n), a.avg()])
        .collect();
    assert_eq!(expected.len(), 2);
    assert_same_rows(rows(BY_BOOLEAN, WORKERS), expected, AGG, BY_BOOLEAN);
}

pub(crate) const POST_AGGREGATE: &str = "SELECT tract + 1 AS t1, COUNT(*) + 1 AS n1, MAX(mag_i) - MIN(mag_i) AS spread, \
     SUM(mag_i) / COUNT(mag_i) AS mean, ROUND(AVG(mag_i), 2) AS rounded FROM dp02 GROUP BY tract + 1";

#[test]
fn expressions_over_keys_and_aggregates() {
    let expected: Vec<Vec<Value>> = group(|r| Some(i64::from(r.tract) + 1), |r| r.mag_i.into())
        .iter()
        .map(|(t1, (n, a))| {
            let f = |v: Value| v.as_f64().expect("aggregate");
            vec![
                Value::Int(*t1),
                Value::Int(n + 1),
                Value::Float(f(a.max()) - f(a.min())),
                Value::Float(f(a.sum()) / f(a.count())),
                Value::Float((f(a.avg()) * 100.0).round() / 100.0),
            ]
        })
        .collect();
    assert_same_rows(rows(POST_AGGREGATE, WORKERS), expected, AGG, POST_AGGREGATE);
}

pub(crate) const ORDER_BY_HIDDEN_AGGREGATE: &str =
    "SELECT tract FROM dp02 GROUP BY tract HAVING tract > 2001 ORDER BY COUNT(*) DESC, tract";

#[test]
fn order_by_an_aggregate_not_selected() {
    let mut counts: Vec<(i64, i32)> =
        group(|r| (r.tract > 2001).then_some(r.tract), |_| 0.0).iter().map(|(t, (n, _))| (*n, *t)).collect();
    counts.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let expected: Vec<Vec<Value>> = counts.iter().map(|(_, t)| vec![Value::Int((*t).into())]).collect();
    assert_rows_eq(&rows(ORDER_BY_HIDDEN_AGGREGATE, WORKERS), &expected, Tol::Exact, ORDER_BY_HIDDEN_AGGREGATE);
}

/// HAVING with a threshold between the smallest and largest tract, on an aggregate that is
/// and on one that is not in the select list.
pub(crate) fn having_queries() -> Vec<(String, Vec<Vec<Value>>)> {
    let counts = group(|r| Some(r.tract), |r| r.mag_i.into());
    let mut sizes: Vec<i64> = counts.values().map(|(n, _)| *n).collect();
    sizes.sort_unstable();
    let threshold = sizes[sizes.len() / 2];
    let by_count = format!("SELECT tract, COUNT(*) AS n FROM dp02 GROUP BY tract HAVING COUNT(*) >= {threshold}");
    let expected_count: Vec<Vec<Value>> = counts
        .iter()
        .filter(|(_, (n, _))| *n >= threshold)
        .map(|(t, (n, _))| vec![Value::Int((*t).into()), Value::Int(*n)])
        .collect();
    let mut means: Vec<f64> = counts.values().map(|(_, a)| a.avg().as_f64().expect("mean")).collect();
    means.sort_by(f64::total_cmp);
    let cut = (means[means.len() / 2 - 1] + means[means.len() / 2]) / 2.0;
    let by_mean = format!("SELECT tract FROM dp02 GROUP BY tract HAVING AVG(mag_i) < {cut:?} AND COUNT(*) > 0");
    let expected_mean: Vec<Vec<Value>> = counts
        .iter()
        .filter(|(_, (_, a))| a.avg().as_f64().expect("mean") < cut)
        .map(|(t, _)| vec![Value::Int((*t).into())])
        .collect();
    assert!(!expected_count.is_empty() && expected_count.len() < counts.len());
    assert!(!expected_mean.is_empty() && expected_mean.len() < counts.len());
    vec![(by_count, expected_count), (by_mean, expected_mean)]
}

#[test]
fn having_filters_groups() {
    for (sql, expected) in having_queries() {
        assert_same_rows(rows(&sql, WORKERS), expected, Tol::Exact, &sql);
    }
}

#[test]
fn distinct_returns_each_combination_once() {
    let expected: BTreeSet<(i32, i32)> =
        dp02().rows.iter().filter(|r| r.mag_i < 21.0).map(|r| (r.tract, r.patch)).collect();
    let expected: Vec<Vec<Value>> =
        expected.iter().map(|(t, p)| vec![Value::Int((*t).into()), Value::Int((*p).into())]).collect();
    assert_same_rows(rows(DISTINCT_PAIRS, WORKERS), expected, Tol::Exact, DISTINCT_PAIRS);
}

#[test]
fn distinct_with_order_by() {
    let expected: Vec<Vec<Value>> = dp02().tracts().iter().rev().map(|t| vec![Value::Int((*t).into())]).collect();
    assert_rows_eq(&rows(DISTINCT_ORDERED, WORKERS), &expected, Tol::Exact, DISTINCT_ORDERED);
}

#[test]
fn global_aggregate_over_zero_rows_gives_one_row() {
    let zero = [Value::Int(0), Value::Int(0)];
    let nulls = vec![Value::Null; 5];
    let expected = vec![[&zero[..], &nulls[..]].concat()];
    assert_rows_eq(&rows(ZERO_ROWS, WORKERS), &expected, Tol::Exact, ZERO_ROWS);
    // Same, when nothing can be pruned and every row is read and rejected.
    assert_rows_eq(
        &rows(ZERO_ROWS_UNPRUNED, WORKERS),
        &[vec![Value::Int(0), Value::Null]],
        Tol::Exact,
        ZERO_ROWS_UNPRUNED,
    );
}

#[test]
fn grouped_aggregate_over_zero_rows_gives_no_rows() {
    assert_rows_eq(&rows(ZERO_ROWS_GROUPED, WORKERS), &[], Tol::Exact, ZERO_ROWS_GROUPED);
}

#[test]
fn aggregates_skip_null_and_nan() {
    // x = 1.5, NULL, NaN, -2.0, NULL, 4.0, and NULL in the three rows of the file without x.
    let (sum, n) = (1.5 - 2.0 + 4.0, 3.0);
    let mean: f64 = sum / n;
    let var = [1.5f64, -2.0, 4.0].iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let expected = vec![vec![
        Value::Int(9),
        Value::Int(3),
        Value::Float(sum),
        Value::Float(mean),
        Value::Float(-2.0),
        Value::Float(4.0),
        Value::Float(var.sqrt()),
        Value::Int(9),
    ]];
    assert_rows_eq(&rows(NULLS_GLOBAL, WORKERS), &expected, AGG, NULLS_GLOBAL);
}

#[test]
fn stddev_of_fewer_than_two_values_is_null() {
    let got = rows("SELECT id, COUNT(x), STDDEV(x), AVG(x) FROM nulls WHERE id <= 3 GROUP BY id", WORKERS);
    let expected = vec![
        vec![Value::Int(1), Value::Int(1), Value::Null, Value::Float(1.5)],
        vec![Value::Int(2), Value::Int(0), Value::Null, Value::Null],
        vec![Value::Int(3), Value::Int(0), Value::Null, Value::Null],
    ];
    assert_same_rows(got, expected, Tol::Exact, "STDDEV of one value");
}

/// Every statement of this module, for the worker-count comparison.
pub(crate) fn queries() -> Vec<String> {
    let mut q: Vec<String> = [
        COUNT_ALL,
        COUNT_WHERE,
        COUNT_COLUMNS,
        BY_TRACT,
        BY_TRACT_PATCH,
        INTEGER_AGGS,
        GLOBAL,
        BY_EXPRESSION_ALIAS,
        BY_POSITION,
        BY_BOOLEAN,
        ZERO_ROWS,
        ZERO_ROWS_UNPRUNED,
        ZERO_ROWS_GROUPED,
        DISTINCT_PAIRS,
        DISTINCT_ORDERED,
        NULLS_GLOBAL,
        POST_AGGREGATE,
        ORDER_BY_HIDDEN_AGGREGATE,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    q.extend(having_queries().into_iter().map(|(sql, _)| sql));
    q
}
