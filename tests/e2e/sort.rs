//! ORDER BY against brute force: multi-key ASC/DESC, with and without LIMIT (top-k), by
//! expression, alias, position, a column not selected, an aggregate; TOP; NaN and NULL order.

use std::cmp::Ordering;

use starflow_e2e::{Dp02Row, Tol, Value, WORKERS, assert_rows_eq, dp02, rows};

use crate::check_all;

/// A sorted statement and its expected rows, in order.
pub(crate) struct SortCase {
    pub sql: &'static str,
    pub expected: Vec<Vec<Value>>,
}

fn reference(
    keep: impl Fn(&Dp02Row) -> bool,
    order: impl Fn(&Dp02Row, &Dp02Row) -> Ordering,
    limit: usize,
    out: impl Fn(&Dp02Row) -> Vec<Value>,
) -> Vec<Vec<Value>> {
    let mut v: Vec<&Dp02Row> = dp02().rows.iter().filter(|r| keep(r)).collect();
    v.sort_by(|a, b| order(a, b));
    v.into_iter().take(limit).map(out).collect()
}

/// Every key ends with the unique `objectId` so the expected order is total.
pub(crate) fn sort_cases() -> Vec<SortCase> {
    let cols = |names: &'static [&'static str]| move |r: &Dp02Row| r.select(names);
    let by_tract_patch = |a: &Dp02Row, b: &Dp02Row| {
        a.tract.cmp(&b.tract).then(b.patch.cmp(&a.patch)).then(a.object_id.cmp(&b.object_id))
    };
    let color = |r: &Dp02Row| r.mag_g - r.mag_r;
    vec![
        SortCase {
            sql: "SELECT objectId, tract, patch, mag_i FROM dp02 WHERE mag_i < 23 ORDER BY tract ASC, patch DESC, objectId",
            expected: reference(
                |r| r.mag_i < 23.0,
                by_tract_patch,
                usize::MAX,
                cols(&["objectId", "tract", "patch", "mag_i"]),
            ),
        },
        SortCase {
            sql: "SELECT objectId, tract, patch, mag_i FROM dp02 WHERE mag_i < 23 ORDER BY tract ASC, patch DESC, objectId LIMIT 25",
            expected: reference(|r| r.mag_i < 23.0, by_tract_patch, 25, cols(&["objectId", "tract", "patch", "mag_i"])),
        },
        SortCase {
            sql: "SELECT objectId, mag_g - mag_r AS color FROM dp02 WHERE mag_g < 24 AND mag_r < 24 ORDER BY color DESC, objectId LIMIT 15",
            expected: reference(
                |r| r.mag_g < 24.0 && r.mag_r < 24.0,
                |a, b| color(b).total_cmp(&color(a)).then(a.object_id.cmp(&b.object_id)),
                15,
                |r| vec![Value::Int(r.object_id), Value::f32(color(r))],
            ),
        },
        SortCase {
            sql: "SELECT objectId, mag_g - mag_r FROM dp02 WHERE mag_g < 22 AND mag_r < 22 ORDER BY mag_g - mag_r, objectId DESC",
            expected: reference(
                |r| r.mag_g < 22.0 && r.mag_r < 22.0,
                |a, b| color(a).total_cmp(&color(b)).then(b.object_id.cmp(&a.object_id)),
                usize::MAX,
                |r| vec![Value::Int(r.object_id), Value::f32(color(r))],
            ),
        },
        SortCase {
            sql: "SELECT patch, objectId FROM dp02 WHERE tract = 2001 AND mag_i < 22 ORDER BY 1 DESC, 2",
            expected: reference(
                |r| r.tract == 2001 && r.mag_i < 22.0,
                |a, b| b.patch.cmp(&a.patch).then(a.object_id.cmp(&b.object_id)),
                usize::MAX,
                cols(&["patch", "objectId"]),
            ),
        },
        SortCase {
            sql: "SELECT objectId FROM dp02 WHERE tract = 2001 ORDER BY coord_dec DESC, objectId LIMIT 10",
            expected: reference(
                |r| r.tract == 2001,
                |a, b| b.dec.total_cmp(&a.dec).then(a.object_id.cmp(&b.object_id)),
                10,
                cols(&["objectId"]),
            ),
        },
        SortCase {
            sql: "SELECT TOP 10 objectId, mag_i FROM dp02 WHERE mag_i < 30 ORDER BY mag_i, objectId",
            expected: reference(
                |r| r.mag_i < 30.0,
                |a, b| a.mag_i.total_cmp(&b.mag_i).then(a.object_id.cmp(&b.object_id)),
                10,
                cols(&["objectId", "mag_i"]),
            ),
        },
        SortCase {
            sql: "SELECT objectId, coord_ra FROM dp02 WHERE coord_ra > 74.9 ORDER BY coord_ra DESC LIMIT 100000",
            expected: reference(
                |r| r.ra > 74.9,
                |a, b| b.ra.total_cmp(&a.ra),
                usize::MAX,
                cols(&["objectId", "coord_ra"]),
            ),
        },
        SortCase { sql: "SELECT objectId FROM dp02 WHERE mag_i > 100 ORDER BY objectId LIMIT 3", expected: vec![] },
        SortCase {
            sql: "SELECT tract, COUNT(*) AS n FROM dp02 GROUP BY tract ORDER BY n DESC, tract",
            expected: {
                let mut counts: Vec<(i32, i64)> = dp02()
                    .tracts()
                    .iter()
                    .map(|t| (*t, dp02().rows.iter().filter(|r| r.tract == *t).count() as i64))
                    .collect();
                counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                counts.iter().map(|(t, n)| vec![Value::Int((*t).into()), Value::Int(*n)]).collect()
            },
        },
    ]
}

#[test]
fn order_by_matches_brute_force() {
    check_all("ORDER BY", &sort_cases(), |c| {
        compare(&rows(c.sql, WORKERS), &c.expected).map_err(|e| format!("{}\n{e}", c.sql))
    });
}

fn compare(actual: &[Vec<Value>], expected: &[Vec<Value>]) -> Result<(), String> {
    starflow_e2e::compare_rows(actual, expected, Tol::Exact)
}

#[test]
fn nan_sorts_after_every_number_as_in_postgres() {
    // PostgreSQL orders NaN above every number: last ascending, first descending.
    let asc = rows("SELECT mag_u FROM dp02 WHERE tract = 2002 ORDER BY mag_u", WORKERS);
    let first_nan = asc.iter().position(|r| r[0].as_f64().is_some_and(f64::is_nan)).expect("tract 2002 has NaN mag_u");
    assert!(asc[first_nan..].iter().all(|r| r[0].as_f64().is_some_and(f64::is_nan)), "NaN not last ascending");
    let desc = rows("SELECT mag_u FROM dp02 WHERE tract = 2002 ORDER BY mag_u DESC LIMIT 3", WORKERS);
    assert!(desc.iter().all(|r| r[0].as_f64().is_some_and(f64::is_nan)), "NaN not first descending: {desc:?}");
}

// The nullable catalog: ids 1..=9, x = 1.5, NULL, NaN, -2.0, NULL, 4.0, NULL, NULL, NULL.

fn ids(sql: &str) -> Vec<i64> {
    rows(sql, WORKERS).iter().map(|r| r[0].as_i64().expect("id")).collect()
}

#[test]
fn nulls_sort_last_ascending() {
    assert_eq!(ids("SELECT id FROM nulls ORDER BY x, id"), [4, 1, 6, 3, 2, 5, 7, 8, 9]);
}

#[test]
fn explicit_nulls_first_and_last_are_honoured() {
    assert_eq!(ids("SELECT id FROM nulls ORDER BY x NULLS FIRST, id"), [2, 5, 7, 8, 9, 4, 1, 6, 3]);
    assert_eq!(ids("SELECT id FROM nulls ORDER BY x DESC NULLS LAST, id"), [3, 6, 1, 4, 2, 5, 7, 8, 9]);
}

#[test]
fn nulls_sort_first_descending_as_documented() {
    // `SortKey::nulls_first` documents PostgreSQL's default: NULLS LAST for ASC, NULLS FIRST for DESC.
    let got = ids("SELECT id FROM nulls ORDER BY x DESC, id");
    assert_rows_eq(
        &[got.iter().map(|i| Value::Int(*i)).collect()],
        &[[2, 5, 7, 8, 9, 3, 6, 1, 4].iter().map(|i| Value::Int(*i)).collect()],
        Tol::Exact,
        "ORDER BY x DESC: NULLs first (PostgreSQL default)",
    );
}

/// Every statement of this module, for the worker-count comparison.
pub(crate) fn queries() -> Vec<String> {
    let mut q: Vec<String> = sort_cases().iter().map(|c| c.sql.to_string()).collect();
    q.extend([
        "SELECT id, x FROM nulls ORDER BY x, id".to_string(),
        "SELECT id, x FROM nulls ORDER BY x DESC NULLS LAST, id".to_string(),
        "SELECT objectId, mag_u FROM dp02 WHERE tract = 2002 ORDER BY mag_u, objectId".to_string(),
    ]);
    q
}
