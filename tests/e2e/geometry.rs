//! ADQL geometry against brute force: cone searches (checked with an independent haversine),
//! coordinate boxes, their complements, and DISTANCE values.

use starflow_e2e::{
    Dp02Row, Tol, Value, WORKERS, assert_rows_eq, compare_rows, dp02, haversine_deg, rows, sorted, wrap_ra,
};

use crate::check_all;

/// Rows this close (degrees) to a region's edge may fall either way by rounding; they are
/// left out of the comparison.
const EDGE: f64 = 1e-9;

/// Brute-force membership: `Some(inside)`, or `None` on the edge.
type Membership = Box<dyn Fn(&Dp02Row) -> Option<bool>>;

/// A region query and its brute-force membership test.
pub(crate) struct RegionCase {
    pub sql: String,
    pub inside: Membership,
}

fn cone(ra0: f64, dec0: f64, r: f64) -> impl Fn(&Dp02Row) -> Option<bool> {
    move |row| {
        let d = haversine_deg(row.ra, row.dec, ra0, dec0);
        ((d - r).abs() > EDGE).then_some(d <= r)
    }
}

fn coordinate_box(ra0: f64, dec0: f64, w: f64, h: f64) -> impl Fn(&Dp02Row) -> Option<bool> {
    move |row| {
        let (dra, ddec) = (wrap_ra(row.ra - ra0).abs() - w / 2.0, (row.dec - dec0).abs() - h / 2.0);
        (dra.abs() > EDGE && ddec.abs() > EDGE).then_some(dra <= 0.0 && ddec <= 0.0)
    }
}

fn region(sql: String, inside: impl Fn(&Dp02Row) -> Option<bool> + 'static) -> RegionCase {
    RegionCase { sql, inside: Box::new(inside) }
}

fn in_circle(ra0: f64, dec0: f64, r: f64) -> String {
    format!("CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', {ra0:?}, {dec0:?}, {r:?})) = 1")
}

/// Cones (in one tract, across the corner of four tracts, at the field edge, tiny around a
/// row) and boxes, with and without the coordinate-system argument, and complements.
pub(crate) fn region_cases() -> Vec<RegionCase> {
    let row = &dp02().rows[4321];
    let (ra, dec) = (row.ra, row.dec);
    let select = |condition: &str| format!("SELECT objectId FROM dp02 WHERE {condition}");
    vec![
        region(select(&in_circle(62.5, -35.0, 1.0)), cone(62.5, -35.0, 1.0)),
        region(select(&in_circle(58.3, -34.5, 0.5)), cone(58.3, -34.5, 0.5)),
        region(select(&in_circle(50.1, -41.9, 0.5)), cone(50.1, -41.9, 0.5)),
        region(select(&in_circle(ra, dec, 0.02)), cone(ra, dec, 0.02)),
        region(
            select("CONTAINS(POINT(coord_ra, coord_dec), CIRCLE(70.25, -30.5, 0.75)) = 1"),
            cone(70.25, -30.5, 0.75),
        ),
        region(
            select("1 = CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 62.5, -35.0, 0.5 * 2))"),
            cone(62.5, -35.0, 1.0),
        ),
        region(
            select(
                "CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 62.5, -35.0, 1.0)) = 0 AND tract = 2001",
            ),
            |r| cone(62.5, -35.0, 1.0)(r).map(|inside| !inside && r.tract == 2001),
        ),
        region(
            select("CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 62.5, -35.0, 1.0)) = 1 AND mag_i < 24"),
            |r| cone(62.5, -35.0, 1.0)(r).map(|inside| inside && r.mag_i < 24.0),
        ),
        // Centres given outside [0, 360) wrap; degenerate and whole-sky regions.
        region(select(&in_circle(422.5, -35.0, 1.0)), cone(62.5, -35.0, 1.0)),
        region(select(&in_circle(62.5, -35.0, 0.0)), |_| Some(false)),
        region(select(&in_circle(62.5, -35.0, 200.0)), |_| Some(true)),
        region(select("DISTANCE(POINT(coord_ra, coord_dec), POINT(62.5, -35.0)) < 0.3 AND mag_i < 26"), |r| {
            cone(62.5, -35.0, 0.3)(r).map(|inside| inside && r.mag_i < 26.0)
        }),
        region(
            select("CONTAINS(POINT('ICRS', coord_ra, coord_dec), BOX('ICRS', 62.0, -35.0, 2.0, 1.0)) = 1"),
            coordinate_box(62.0, -35.0, 2.0, 1.0),
        ),
        region(
            select("CONTAINS(POINT(coord_ra, coord_dec), BOX(58.3, -34.5, 0.6, 0.4)) = 1"),
            coordinate_box(58.3, -34.5, 0.6, 0.4),
        ),
        region(
            select("CONTAINS(POINT(coord_ra, coord_dec), BOX(-297.7, -34.5, 0.6, 0.4)) = 1"),
            coordinate_box(62.3, -34.5, 0.6, 0.4),
        ),
        region(select("CONTAINS(POINT(coord_ra, coord_dec), BOX(62.5, -35.0, 400, 400)) = 1"), |_| Some(true)),
        region(select("CONTAINS(POINT(coord_ra, coord_dec), BOX(58.3, -34.5, 0.6, 0.4)) = 0 AND patch = 3"), |r| {
            coordinate_box(58.3, -34.5, 0.6, 0.4)(r).map(|inside| !inside && r.patch == 3)
        }),
    ]
}

#[test]
fn regions_match_brute_force() {
    let fx = dp02();
    check_all("region", &region_cases(), |c| {
        let edge: Vec<i64> = fx.rows.iter().filter(|r| (c.inside)(r).is_none()).map(|r| r.object_id).collect();
        let mut got: Vec<i64> = rows(&c.sql, WORKERS).iter().map(|r| r[0].as_i64().expect("objectId")).collect();
        got.retain(|id| !edge.contains(id));
        got.sort_unstable();
        let expected: Vec<i64> = fx.rows.iter().filter(|r| (c.inside)(r) == Some(true)).map(|r| r.object_id).collect();
        let as_rows = |v: &[i64]| v.iter().map(|i| vec![Value::Int(*i)]).collect::<Vec<_>>();
        compare_rows(&as_rows(&got), &sorted(as_rows(&expected)), Tol::Exact).map_err(|e| format!("{}\n{e}", c.sql))
    });
}

/// DISTANCE statements and their brute-force values (haversine).
/// The expected row of a DISTANCE statement for one catalog row (None: filtered out).
type DistanceRow = fn(&Dp02Row) -> Option<Vec<Value>>;

pub(crate) fn distance_cases() -> Vec<(&'static str, DistanceRow)> {
    vec![
        (
            "SELECT objectId, DISTANCE(POINT('ICRS', coord_ra, coord_dec), POINT('ICRS', 62.0, -37.0)) AS d FROM dp02 WHERE tract = 2001",
            |r| {
                (r.tract == 2001)
                    .then(|| vec![Value::Int(r.object_id), Value::Float(haversine_deg(r.ra, r.dec, 62.0, -37.0))])
            },
        ),
        ("SELECT objectId, DISTANCE(coord_ra, coord_dec, 50, -27) AS d FROM dp02 WHERE patch = 10", |r| {
            (r.patch == 10)
                .then(|| vec![Value::Int(r.object_id), Value::Float(haversine_deg(r.ra, r.dec, 50.0, -27.0))])
        }),
        (
            "SELECT objectId, DISTANCE(POINT(coord_ra, coord_dec), POINT(coord_ra + 0.1, coord_dec - 0.05)) AS d FROM dp02 WHERE tract = 2004",
            |r| {
                (r.tract == 2004).then(|| {
                    vec![Value::Int(r.object_id), Value::Float(haversine_deg(r.ra, r.dec, r.ra + 0.1, r.dec - 0.05))]
                })
            },
        ),
    ]
}

#[test]
fn distance_matches_haversine() {
    let fx = dp02();
    check_all("DISTANCE", &distance_cases(), |(sql, reference)| {
        let expected: Vec<Vec<Value>> = fx.rows.iter().filter_map(reference).collect();
        // Vincenty (engine) and haversine (here) agree far below 1e-9 degrees.
        compare_rows(&sorted(rows(sql, WORKERS)), &sorted(expected), Tol::Rel(1e-9)).map_err(|e| format!("{sql}\n{e}"))
    });
}

pub(crate) const NEAREST: &str = "SELECT objectId, DISTANCE(POINT('ICRS', coord_ra, coord_dec), POINT('ICRS', 62.0, -37.0)) AS sep \
     FROM dp02 WHERE CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 62.0, -37.0, 0.2)) = 1 ORDER BY sep LIMIT 10";

#[test]
fn nearest_neighbours_by_distance() {
    let mut all: Vec<(f64, i64)> = dp02()
        .rows
        .iter()
        .map(|r| (haversine_deg(r.ra, r.dec, 62.0, -37.0), r.object_id))
        .filter(|(d, _)| *d <= 0.2)
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(all.len() >= 10, "cone holds {} rows", all.len());
    let expected: Vec<Vec<Value>> =
        all.iter().take(10).map(|(d, id)| vec![Value::Int(*id), Value::Float(*d)]).collect();
    assert_rows_eq(&rows(NEAREST, WORKERS), &expected, Tol::Rel(1e-9), NEAREST);
}

/// Every statement of this module, for the worker-count comparison.
pub(crate) fn queries() -> Vec<String> {
    let mut q: Vec<String> = region_cases().into_iter().map(|c| c.sql).collect();
    q.extend(distance_cases().iter().map(|(sql, _)| sql.to_string()));
    q.push(NEAREST.to_string());
    q
}
