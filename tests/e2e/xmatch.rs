//! `XMATCH` against brute force on generated catalogs with dense clusters across RA = 0/360,
//! at both poles, on the edge of HEALPix's equatorial belt and over many pixel boundaries of
//! the partitioning order: every pair within the radius, the k nearest, self-matches, on 1
//! and 3 workers and on 2 processes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use arrow_array::{Float32Array, Float64Array, Int64Array, RecordBatch};
use starflow_catalogs::ParquetCatalog;
use starflow_dataflow::{CatalogSet, ExecOptions, PlanOptions, plan_sql, run_query};
use starflow_e2e::{Scratch, Value, haversine_deg, healpix_nested, rows_of, starflow, write_parquet};
use starflow_operators::Operators;

/// Where the clusters are: (RA, Dec) centre and half-width in degrees.
const CLUSTERS: [(f64, f64, f64); 6] = [
    (0.0, 10.0, 0.04),     // across RA = 0/360
    (123.0, 89.985, 0.01), // the north pole inside
    (300.0, -89.99, 0.01), // the south pole inside
    (45.0, 41.81, 0.04),   // the equatorial belt's edge (|dec| = asin(2/3))
    (200.0, -20.0, 0.06),  // many order-10 pixels
    (90.0, 0.0, 0.05),     // the equator
];
const ROWS_PER_CLUSTER: usize = 1_500;
/// Radius of the tests, arcseconds (the partitioning order is then 10: pixels of 206″).
const RADIUS: f64 = 2.0;

struct Sky {
    _scratch: Scratch,
    a: String,
    b: String,
    /// (id, ra, dec, mag) of `a`; (id, ra, dec, flux) of `b`.
    left: Vec<(i64, f64, f64, f32)>,
    right: Vec<(i64, f64, f64, f32)>,
}

/// Two catalogs `a` and `b` (two files per cluster each): `b` has a shifted copy of about
/// 60 % of `a`'s rows (offsets up to 1.5″) and as many unrelated ones.
fn sky() -> &'static Sky {
    static SKY: OnceLock<Sky> = OnceLock::new();
    SKY.get_or_init(|| {
        let scratch = Scratch::new("xmatch");
        let (a, b) = (scratch.join("a"), scratch.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let mut next = starflow_e2e::uniform(42);
        let (mut left, mut right) = (Vec::new(), Vec::new());
        for (c, &(ra0, dec0, w)) in CLUSTERS.iter().enumerate() {
            let (mut l, mut r) = (Vec::new(), Vec::new());
            for i in 0..ROWS_PER_CLUSTER {
                let dec = (dec0 + (next() - 0.5) * 2.0 * w).clamp(-90.0, 90.0);
                let ra = (ra0 + (next() - 0.5) * 2.0 * w / dec0.to_radians().cos().max(0.05)).rem_euclid(360.0);
                let id = (c * 100_000 + i) as i64;
                l.push((id, ra, dec, 15.0 + 10.0 * next() as f32));
                if next() < 0.6 {
                    let (dra, ddec) = ((next() - 0.5) * 3.0 / 3600.0, (next() - 0.5) * 3.0 / 3600.0);
                    let dec2 = (dec + ddec).clamp(-90.0, 90.0);
                    r.push((
                        id + 1_000_000,
                        (ra + dra / dec.to_radians().cos().max(0.01)).rem_euclid(360.0),
                        dec2,
                        next() as f32,
                    ));
                }
                if next() < 0.6 {
                    let dec = (dec0 + (next() - 0.5) * 2.0 * w).clamp(-90.0, 90.0);
                    let ra = (ra0 + (next() - 0.5) * 2.0 * w / dec0.to_radians().cos().max(0.05)).rem_euclid(360.0);
                    r.push((id + 2_000_000, ra, dec, next() as f32));
                }
            }
            for (dir, rows, value) in [(&a, &l, "mag"), (&b, &r, "flux")] {
                for (half, chunk) in rows.chunks(rows.len().div_ceil(2)).enumerate() {
                    write(&dir.join(format!("c{c}_{half}.parquet")), chunk, value);
                }
            }
            left.extend(l);
            right.extend(r);
        }
        let path = |p: &Path| p.to_str().unwrap().to_string();
        Sky { a: path(&a), b: path(&b), _scratch: scratch, left, right }
    })
}

fn write(path: &Path, rows: &[(i64, f64, f64, f32)], value: &str) {
    let batch = RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))) as _),
        ("ra", Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))) as _),
        ("dec", Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))) as _),
        (value, Arc::new(Float32Array::from_iter_values(rows.iter().map(|r| r.3))) as _),
    ])
    .unwrap();
    write_parquet(path, &batch);
}

fn catalogs() -> Arc<CatalogSet> {
    let mut set = CatalogSet::new();
    set.insert(ParquetCatalog::open("a", &sky().a).unwrap());
    set.insert(ParquetCatalog::open("b", &sky().b).unwrap());
    Arc::new(set)
}

/// The result of `sql` on `workers` threads (small partitions and batches).
fn run(sql: &str, workers: usize) -> Vec<RecordBatch> {
    let catalogs = catalogs();
    let planned = plan_sql(sql, &catalogs, &PlanOptions { batch_rows: 1000, partition_rows: 2000 }).unwrap();
    let mut batches = Vec::new();
    run_query(&planned.plan, catalogs, Operators, ExecOptions::local(workers), |b| {
        batches.push(b);
        Ok(())
    })
    .unwrap();
    batches
}

/// The pairs of `sql` (left id, right id) → distance, on `workers` threads.
fn pairs(sql: &str, workers: usize) -> Pairs {
    to_pairs(rows_of(&run(sql, workers)))
}

fn to_pairs(rows: Vec<Vec<Value>>) -> Pairs {
    let mut out = BTreeMap::new();
    for r in rows {
        let (Value::Int(l), Value::Int(rr), Value::Float(d)) = (&r[0], &r[1], &r[2]) else { panic!("{r:?}") };
        assert!(out.insert((*l, *rr), *d).is_none(), "pair ({l}, {rr}) twice");
    }
    out
}

/// Pairs (left id, right id) → distance in arcseconds.
type Pairs = BTreeMap<(i64, i64), f64>;

/// Brute force: each left row's `k` nearest right rows within the radius (a row never
/// matches itself when `same`). Pairs within 1e-9″ of the radius, or tied at the k-th place,
/// may go either way and are returned apart.
fn reference(
    left: &[(i64, f64, f64, f32)],
    right: &[(i64, f64, f64, f32)],
    k: usize,
    same: bool,
) -> (Pairs, Vec<(i64, i64)>) {
    let (mut sure, mut unsure) = (BTreeMap::new(), Vec::new());
    for l in left {
        let mut near: Vec<(f64, i64)> = right
            .iter()
            .filter(|r| !(same && r.0 == l.0) && (r.2 - l.2).abs() <= 2.0 * RADIUS / 3600.0)
            .map(|r| (haversine_deg(l.1, l.2, r.1, r.2) * 3600.0, r.0))
            .filter(|(d, _)| *d <= RADIUS + 1e-9)
            .collect();
        near.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (i, &(d, r)) in near.iter().enumerate().take(k) {
            let edge = (d - RADIUS).abs() < 1e-9 || near.get(k).is_some_and(|n| (n.0 - d).abs() < 1e-12 && i + 1 == k);
            if edge {
                unsure.push((l.0, r));
            } else {
                sure.insert((l.0, r), d);
            }
        }
    }
    (sure, unsure)
}

#[track_caller]
fn assert_pairs(got: &Pairs, want: &(Pairs, Vec<(i64, i64)>), what: &str) {
    let (sure, unsure) = want;
    let missing: Vec<_> = sure.keys().filter(|p| !got.contains_key(p)).take(5).collect();
    let extra: Vec<_> = got.keys().filter(|p| !sure.contains_key(p) && !unsure.contains(p)).take(5).collect();
    assert!(missing.is_empty() && extra.is_empty(), "{what}: missing {missing:?}, extra {extra:?} (of {})", sure.len());
    for (p, d) in sure {
        assert!((got[p] - d).abs() < 1e-6, "{what}: distance of {p:?}: {} vs {d}", got[p]);
    }
}

#[test]
fn every_pair_within_the_radius_is_found_once() {
    let s = sky();
    let want = reference(&s.left, &s.right, usize::MAX, false);
    assert!(want.0.len() > 3_000, "the clusters give many pairs ({})", want.0.len());
    // Pairs whose rows sit in different pixels of the partitioning order, at each cluster.
    let straddling = want.0.keys().filter(|(l, r)| {
        let (l, r) = (s.left.iter().find(|x| x.0 == *l).unwrap(), s.right.iter().find(|x| x.0 == *r).unwrap());
        healpix_nested(10, l.1, l.2) != healpix_nested(10, r.1, r.2)
    });
    let straddling = straddling.count();
    assert!(straddling > 20, "only {straddling} pairs across pixel edges");
    let sql = "SELECT a_id, b_id, _dist_arcsec FROM XMATCH(a, b, 2.0, 1000)";
    for workers in [1, 3] {
        assert_pairs(&pairs(sql, workers), &want, &format!("all pairs, {workers} workers"));
    }
}

#[test]
fn the_k_nearest_are_kept() {
    let s = sky();
    for k in [1, 3] {
        let want = reference(&s.left, &s.right, k, false);
        let sql = format!("SELECT a_id, b_id, _dist_arcsec FROM XMATCH(a, b, 2, {k})");
        for workers in [1, 3] {
            assert_pairs(&pairs(&sql, workers), &want, &format!("k = {k}, {workers} workers"));
        }
    }
    // The default k is 1.
    let default = pairs("SELECT a_id, b_id, _dist_arcsec FROM XMATCH(a, b, 2)", 2);
    assert_pairs(&default, &reference(&s.left, &s.right, 1, false), "default k");
}

#[test]
fn a_self_match_finds_neighbours_not_the_row_itself() {
    let s = sky();
    let want = reference(&s.left, &s.left, 2, true);
    assert!(!want.0.is_empty());
    let sql = "SELECT a_1_id, a_2_id, _dist_arcsec FROM XMATCH(a, a, 2, 2)";
    for workers in [1, 3] {
        let got = pairs(sql, workers);
        assert!(got.keys().all(|(l, r)| l != r), "a row matched itself");
        assert_pairs(&got, &want, &format!("self-match, {workers} workers"));
    }
}

#[test]
fn two_processes_agree_with_brute_force() {
    let s = sky();
    let out = starflow(&[
        "query",
        "--catalog",
        &format!("a={}", s.a),
        "--catalog",
        &format!("b={}", s.b),
        "--processes",
        "2",
        "--workers",
        "2",
        "--format",
        "csv",
        "SELECT a_id, b_id, _dist_arcsec FROM XMATCH(a, b, 2, 3)",
    ]);
    let rows: Vec<Vec<Value>> = out
        .ok()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            vec![
                Value::Int(f[0].parse().unwrap()),
                Value::Int(f[1].parse().unwrap()),
                Value::Float(f[2].parse().unwrap()),
            ]
        })
        .collect();
    assert_pairs(&to_pairs(rows), &reference(&s.left, &s.right, 3, false), "2 processes");
}

#[test]
fn columns_conditions_and_aggregates_apply_to_the_pairs() {
    let s = sky();
    let catalogs = catalogs();
    let planned = plan_sql("SELECT * FROM XMATCH(a, b, 2)", &catalogs, &PlanOptions::default()).unwrap();
    let names: Vec<String> = planned.plan.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, ["a_id", "a_ra", "a_dec", "mag", "b_id", "b_ra", "b_dec", "flux", "_dist_arcsec"]);
    // A condition on the pairs and an aggregate over them.
    let (sure, unsure) = reference(&s.left, &s.right, 1, false);
    let mags: BTreeMap<i64, f32> = s.left.iter().map(|r| (r.0, r.3)).collect();
    let bright: Vec<_> = sure.iter().filter(|((l, _), d)| mags[l] < 20.0 && **d < 1.0).collect();
    let sql =
        "SELECT COUNT(*) AS n, MAX(_dist_arcsec) AS worst FROM XMATCH(a, b, 2) WHERE mag < 20 AND _dist_arcsec < 1";
    let got = rows_of(&run(sql, 2));
    let Value::Int(n) = got[0][0] else { panic!("{got:?}") };
    assert!((n as usize).abs_diff(bright.len()) <= unsure.len(), "{n} vs {}", bright.len());
    let Value::Float(worst) = got[0][1] else { panic!("{got:?}") };
    assert!(worst < 1.0);
}

#[test]
fn bad_crossmatches_are_refused_by_name() {
    let s = sky();
    let nulls = starflow_e2e::nulls_catalog().to_str().unwrap().to_string();
    for (sql, needle) in [
        ("SELECT * FROM XMATCH(a, b)", "3 or 4 arguments"),
        ("SELECT * FROM XMATCH(a, b, 0)", "radius must be above 0"),
        ("SELECT * FROM XMATCH(a, b, -1)", "radius must be above 0"),
        ("SELECT * FROM XMATCH(a, b, 1, 0)", "k must be an integer"),
        ("SELECT * FROM XMATCH(a, b, 1, 2.5)", "k must be an integer"),
        ("SELECT * FROM XMATCH(a, nope, 1)", "nope"),
        ("SELECT * FROM XMATCH(a, 'b', 1)", "not a catalog name"),
        ("SELECT * FROM XMATCH(a, nulls, 1)", "no RA/Dec columns"),
        ("SELECT * FROM GENERATE_SERIES(1, 3)", "table function"),
    ] {
        let out = starflow(&[
            "query",
            "--catalog",
            &format!("a={}", s.a),
            "--catalog",
            &format!("b={}", s.b),
            "--catalog",
            &format!("nulls={nulls}"),
            sql,
        ]);
        out.clean_error(&[needle]);
    }
}

#[test]
fn duplicates_lists_every_close_pair_once_with_its_sky_map() {
    let s = sky();
    let scratch = Scratch::new("duplicates");
    let out_dir = scratch.join("dups");
    let out = starflow(&[
        "duplicates",
        "--catalog",
        &format!("a={}", s.a),
        "--radius",
        "2",
        "--workers",
        "3",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stdout = out.ok().to_string();
    // Brute force: each pair (i < j) within the radius.
    let (all, unsure) = reference(&s.left, &s.left, usize::MAX, true);
    let want: Pairs = all.into_iter().filter(|((l, r), _)| l < r).collect();
    let file = std::fs::File::open(out_dir.join("pairs.parquet")).unwrap();
    let batches: Vec<RecordBatch> = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let names: Vec<String> = batches[0].schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, ["id_1", "id_2", "ra", "dec", "ra_2", "dec_2", "sep_arcsec"]);
    let rows = rows_of(&batches);
    let got = to_pairs(rows.iter().map(|r| vec![r[0].clone(), r[1].clone(), r[6].clone()]).collect());
    assert_pairs(&got, &(want.clone(), unsure), "duplicates");
    // Closest first.
    let seps: Vec<f64> = rows.iter().map(|r| if let Value::Float(d) = r[6] { d } else { panic!() }).collect();
    assert!(seps.windows(2).all(|w| w[0] <= w[1]));
    assert!(stdout.contains(&format!("pairs: {}", got.len())), "{stdout}");
    let summary = std::fs::read_to_string(out_dir.join("summary.txt")).unwrap();
    assert!(summary.contains("closest pairs:") && stdout.contains(&summary));
    let (w, h, pixels) = starflow_e2e::image::decode_png(&out_dir.join("pairs.png"));
    assert!(w > 500 && h > 100 && pixels.iter().any(|p| *p != [255, 255, 255]));
}

#[test]
fn the_adql_join_form_returns_every_pair_within_the_radius() {
    let s = sky();
    let want = reference(&s.left, &s.right, usize::MAX, false);
    let sql = "SELECT x.id, y.id, DISTANCE(POINT('ICRS', x.ra, x.dec), POINT('ICRS', y.ra, y.dec)) * 3600 \
               FROM a AS x JOIN b AS y ON DISTANCE(POINT('ICRS', x.ra, x.dec), POINT('ICRS', y.ra, y.dec)) < 2.0 / 3600";
    for workers in [1, 3] {
        assert_pairs(&pairs(sql, workers), &want, &format!("join form, {workers} workers"));
    }
    // CONTAINS … CIRCLE, and another condition in ON.
    let (sure, unsure) = want;
    let mags: BTreeMap<i64, f32> = s.left.iter().map(|r| (r.0, r.3)).collect();
    let bright: Pairs = sure.into_iter().filter(|((l, _), _)| mags[l] < 20.0).collect();
    let sql = "SELECT a.id, b.id, _dist_arcsec FROM a JOIN b \
               ON 1 = CONTAINS(POINT(a.ra, a.dec), CIRCLE(b.ra, b.dec, 2.0 / 3600)) AND a.mag < 20";
    assert_pairs(&pairs(sql, 2), &(bright, unsure), "CONTAINS form");
    // A self-join keeps each row's pair with itself, as SQL says.
    let sql =
        "SELECT COUNT(*) FROM a AS p JOIN a AS q ON DISTANCE(POINT(p.ra, p.dec), POINT(q.ra, q.dec)) <= 2.0 / 3600";
    let close = reference(&s.left, &s.left, usize::MAX, true).0.len();
    let got = rows_of(&run(sql, 2));
    assert_eq!(got[0][0], Value::Int((s.left.len() + close) as i64));
}

#[test]
fn joins_other_than_a_distance_are_refused() {
    let s = sky();
    for (sql, needle) in [
        ("SELECT * FROM a JOIN b ON a.id = b.id", "ON DISTANCE"),
        ("SELECT * FROM a LEFT JOIN b ON DISTANCE(POINT(a.ra, a.dec), POINT(b.ra, b.dec)) < 0.001", "outer"),
        ("SELECT * FROM a JOIN a ON DISTANCE(POINT(a.ra, a.dec), POINT(a.ra, a.dec)) < 0.001", "aliases"),
        ("SELECT * FROM a JOIN b ON DISTANCE(POINT(a.ra, a.dec), POINT(b.ra, b.dec)) < 5", "radius"),
        (
            "SELECT * FROM a JOIN b ON DISTANCE(POINT(a.ra, a.dec), POINT(b.ra, b.dec)) < 0.001 JOIN a AS c ON 1 = 1",
            "more than two",
        ),
        ("SELECT a.nope FROM a JOIN b ON DISTANCE(POINT(a.ra, a.dec), POINT(b.ra, b.dec)) < 0.001", "a.nope"),
    ] {
        let out = starflow(&["query", "--catalog", &format!("a={}", s.a), "--catalog", &format!("b={}", s.b), sql]);
        out.clean_error(&[needle]);
    }
}

#[test]
fn conditions_on_one_side_are_read_into_its_scan_when_that_keeps_the_answer() {
    let s = sky();
    let catalogs = catalogs();
    let explain = |sql: &str| {
        let planned = plan_sql(sql, &catalogs, &PlanOptions::default()).unwrap();
        starflow_dataflow::plan::explain::explain(&planned.plan, 2)
    };
    let mags: BTreeMap<i64, f32> = s.left.iter().map(|r| (r.0, r.3)).collect();
    let fluxes: BTreeMap<i64, f32> = s.right.iter().map(|r| (r.0, r.3)).collect();
    // A left condition: read into the left scan; the same pairs as filtering afterwards.
    let sql = "SELECT a_id, b_id, _dist_arcsec FROM XMATCH(a, b, 2) WHERE mag < 20 AND a_dec > -80";
    let plan = explain(sql);
    assert!(plan.contains("predicate (applied while reading): ((mag < 20) AND (dec > -80))"), "{plan}");
    let (sure, unsure) = reference(&s.left, &s.right, 1, false);
    let decs: BTreeMap<i64, f64> = s.left.iter().map(|r| (r.0, r.2)).collect();
    let keep = |l: &i64| mags[l] < 20.0 && decs[l] > -80.0;
    let want: Pairs = sure.iter().filter(|((l, _), _)| keep(l)).map(|(p, d)| (*p, *d)).collect();
    for workers in [1, 3] {
        assert_pairs(&pairs(sql, workers), &(want.clone(), unsure.clone()), "left condition");
    }
    // A right condition changes which row is nearest: it applies to the pairs, after matching.
    let sql = "SELECT a_id, b_id, _dist_arcsec FROM XMATCH(a, b, 2) WHERE flux < 0.5";
    assert!(explain(sql).contains("Filter (flux < 0.5)"), "{}", explain(sql));
    let want: Pairs = sure.iter().filter(|((_, r), _)| fluxes[r] < 0.5).map(|(p, d)| (*p, *d)).collect();
    assert_pairs(&pairs(sql, 2), &(want, unsure.clone()), "right condition after matching");
    // Every pair (the join form): a right condition is read into the right scan.
    let sql = "SELECT a.id, b.id, _dist_arcsec FROM a JOIN b ON DISTANCE(POINT(a.ra, a.dec), POINT(b.ra, b.dec)) < 2.0/3600 \
               WHERE b.flux < 0.5";
    assert!(explain(sql).contains("predicate (applied while reading): (flux < 0.5)"), "{}", explain(sql));
    let (all, all_unsure) = reference(&s.left, &s.right, usize::MAX, false);
    let want: Pairs = all.into_iter().filter(|((_, r), _)| fluxes[r] < 0.5).collect();
    assert_pairs(&pairs(sql, 3), &(want, all_unsure), "join form, right condition");
    // A self-match with a condition on one side still never matches a row with itself.
    let sql = "SELECT a_1_id, a_2_id, _dist_arcsec FROM XMATCH(a, a, 2, 2) WHERE a_1_mag < 20";
    let (sure, unsure) = reference(&s.left, &s.left, 2, true);
    let want: Pairs = sure.into_iter().filter(|((l, _), _)| mags[l] < 20.0).collect();
    let got = pairs(sql, 3);
    assert!(got.keys().all(|(l, r)| l != r));
    assert_pairs(&got, &(want, unsure), "self-match with a left condition");
}
