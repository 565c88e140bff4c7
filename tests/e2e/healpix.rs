//! HEALPix: the kernel (cdshealpix) against the HEALPix paper's construction over the whole
//! sphere at every order, and `HEALPIX(order, ra, dec)` / `HEALPIX_29(ra, dec)` in SQL over the
//! catalog against the same reference, per row and as a group-by key, on several workers.

use std::collections::BTreeMap;

use starflow_e2e::{Value, WORKER_COUNTS, dp02, healpix_nested, rows, starflow_query, try_query};
use starflow_operators::kernels::angular::Operand;
use starflow_operators::kernels::healpix::nested;

/// `n` deterministic pseudo-random numbers in [0, 1).
fn uniform(n: usize, seed: u64) -> Vec<f64> {
    let mut next = starflow_e2e::uniform(seed);
    (0..n).map(|_| next()).collect()
}

#[test]
fn pixels_agree_with_the_papers_construction_at_every_order() {
    // Uniform on the sphere, plus dense samples in the polar caps and at the edges of the
    // equatorial belt (|dec| = asin(2/3)), where the construction changes.
    let (u, v) = (uniform(20_000, 1), uniform(20_000, 2));
    let mut ra: Vec<f64> = u.iter().map(|u| u * 360.0).collect();
    let mut dec: Vec<f64> = v.iter().map(|v| (2.0 * v - 1.0).asin().to_degrees()).collect();
    for (i, w) in uniform(4_000, 3).iter().enumerate() {
        ra.push(w * 360.0);
        dec.push(match i % 4 {
            0 => 89.0 + w,
            1 => -89.0 - w,
            2 => 41.81 + w * 0.01,
            _ => -41.82 + w * 0.01,
        });
    }
    for order in [0u8, 1, 2, 5, 8, 11, 14, 19, 24, 29] {
        let got = nested(order, ra.len(), Operand::Column(&ra), Operand::Column(&dec));
        let bad: Vec<(f64, f64)> = (0..ra.len())
            .filter(|&i| got[i] != Some(healpix_nested(order, ra[i], dec[i]) as i64))
            .map(|i| (ra[i], dec[i]))
            .collect();
        assert!(bad.is_empty(), "order {order}: {} of {} differ, e.g. {:?}", bad.len(), ra.len(), bad.first());
    }
}

#[test]
fn healpix_in_sql_matches_the_reference_per_row() {
    let sql = "SELECT objectId, HEALPIX(0, coord_ra, coord_dec) AS p0, HEALPIX(7, coord_ra, coord_dec) AS p7, \
               HEALPIX(16, coord_ra, coord_dec) AS p16, HEALPIX_29(coord_ra, coord_dec) AS p29 FROM dp02";
    let expected: BTreeMap<i64, Vec<i64>> = dp02()
        .rows
        .iter()
        .map(|r| (r.object_id, [0, 7, 16, 29].iter().map(|&k| healpix_nested(k, r.ra, r.dec) as i64).collect()))
        .collect();
    for workers in WORKER_COUNTS {
        let got: BTreeMap<i64, Vec<i64>> = rows(sql, workers)
            .into_iter()
            .map(|row| {
                let ints: Vec<i64> = row
                    .iter()
                    .map(|v| match v {
                        Value::Int(i) => *i,
                        other => panic!("a pixel is an integer, got {other:?}"),
                    })
                    .collect();
                (ints[0], ints[1..].to_vec())
            })
            .collect();
        assert_eq!(got, expected, "{workers} workers");
    }
}

#[test]
fn pixels_group_counts_like_the_reference() {
    let sql = "SELECT HEALPIX(5, coord_ra, coord_dec) AS pix, COUNT(*) AS n FROM dp02 WHERE mag_i < 25 GROUP BY pix";
    let mut expected: BTreeMap<i64, i64> = BTreeMap::new();
    for r in dp02().rows.iter().filter(|r| r.mag_i < 25.0) {
        *expected.entry(healpix_nested(5, r.ra, r.dec) as i64).or_default() += 1;
    }
    assert!(expected.len() > 3, "the catalog spans several order-5 pixels");
    for workers in WORKER_COUNTS {
        let got: BTreeMap<i64, i64> = rows(sql, workers)
            .into_iter()
            .map(|r| match (&r[0], &r[1]) {
                (Value::Int(p), Value::Int(n)) => (*p, *n),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(got, expected, "{workers} workers");
    }
    // An order-29 pixel lies inside its order-5 parent: 4^24 consecutive numbers (integer math).
    let nested = rows(
        "SELECT COUNT(*) FROM dp02 WHERE HEALPIX_29(coord_ra, coord_dec) - HEALPIX(5, coord_ra, coord_dec) * 281474976710656 \
         BETWEEN 0 AND 281474976710655",
        2,
    );
    assert_eq!(nested[0][0], Value::Int(dp02().rows.len() as i64));
}

#[test]
fn bad_orders_are_refused_by_name() {
    for (sql, needle) in [
        ("SELECT HEALPIX(30, coord_ra, coord_dec) FROM dp02", "order from 0 to 29"),
        ("SELECT HEALPIX(-1, coord_ra, coord_dec) FROM dp02", "order from 0 to 29"),
        ("SELECT HEALPIX(tract, coord_ra, coord_dec) FROM dp02", "order from 0 to 29, got tract"),
        ("SELECT HEALPIX(2.5, coord_ra, coord_dec) FROM dp02", "order from 0 to 29"),
        ("SELECT HEALPIX(5, coord_ra) FROM dp02", "HEALPIX"),
    ] {
        let err = try_query(sql, 1).expect_err(sql);
        assert!(err.contains(needle), "{sql}: {err}");
    }
    starflow_query(&[], "SELECT HEALPIX(31, coord_ra, coord_dec) FROM dp02").clean_error(&["HEALPIX", "0 to 29"]);
}

#[test]
fn orders_nest_ra_wraps_and_edges_have_no_pixel() {
    let ra: Vec<f64> = uniform(5_000, 9).iter().map(|u| u * 360.0).collect();
    let dec: Vec<f64> = uniform(5_000, 10).iter().map(|v| v * 180.0 - 90.0).collect();
    let deep = nested(29, ra.len(), Operand::Column(&ra), Operand::Column(&dec));
    for order in [0u8, 3, 10, 28] {
        let shallow = nested(order, ra.len(), Operand::Column(&ra), Operand::Column(&dec));
        for (d, s) in deep.iter().zip(&shallow) {
            assert_eq!(d.map(|d| d >> (2 * (29 - order as i64))), *s, "order {order} is order 29's parent");
        }
    }
    // Pixels cover [0, 12·4^order); RA wraps; the poles have pixels; nothing else does.
    assert!(
        nested(0, ra.len(), Operand::Column(&ra), Operand::Column(&dec)).iter().all(|p| (0..12).contains(&p.unwrap()))
    );
    assert_eq!(
        nested(12, 1, Operand::Const(360.0), Operand::Const(10.0)),
        nested(12, 1, Operand::Const(0.0), Operand::Const(10.0))
    );
    assert_eq!(
        nested(12, 1, Operand::Const(-90.0), Operand::Const(45.0)),
        nested(12, 1, Operand::Const(270.0), Operand::Const(45.0))
    );
    assert!(nested(5, 1, Operand::Const(0.0), Operand::Const(90.0))[0].is_some());
    assert!(nested(5, 1, Operand::Const(0.0), Operand::Const(-90.0))[0].is_some());
    for (a, d) in [(f64::NAN, 0.0), (0.0, f64::NAN), (0.0, 90.5), (f64::INFINITY, 1.0)] {
        assert_eq!(nested(5, 1, Operand::Const(a), Operand::Const(d)), vec![None], "({a}, {d})");
    }
}

#[test]
fn density_counts_rows_per_pixel_at_its_centre() {
    let mut want: BTreeMap<i64, i64> = BTreeMap::new();
    for r in &dp02().rows {
        *want.entry(healpix_nested(5, r.ra, r.dec) as i64).or_default() += 1;
    }
    for workers in [1, 3] {
        let got = rows("SELECT pixel, ra, dec, count FROM DENSITY(dp02, 5)", workers);
        let counts: BTreeMap<i64, i64> = got
            .iter()
            .map(|r| {
                let (Value::Int(p), Value::Float(ra), Value::Float(dec), Value::Int(n)) = (&r[0], &r[1], &r[2], &r[3])
                else {
                    panic!("{r:?}")
                };
                // Each row's position is its pixel's centre: inside that pixel.
                assert_eq!(healpix_nested(5, *ra, *dec) as i64, *p, "the centre of pixel {p}");
                (*p, *n)
            })
            .collect();
        assert_eq!(counts, want, "{workers} workers");
    }
    // Conditions and aggregates apply to the pixels.
    let busy = rows("SELECT COUNT(*), SUM(count) FROM DENSITY(dp02, 5) WHERE count >= 100", 2);
    let big: Vec<&i64> = want.values().filter(|n| **n >= 100).collect();
    assert_eq!(busy[0], vec![Value::Int(big.len() as i64), Value::Int(big.iter().copied().sum())]);
}

#[test]
fn pixel_centres_are_within_a_pixel_of_the_rows() {
    let got = rows(
        "SELECT coord_ra, coord_dec, HEALPIX_RA(29, HEALPIX_29(coord_ra, coord_dec)), \
         HEALPIX_DEC(29, HEALPIX_29(coord_ra, coord_dec)), HEALPIX_RA(3, 768), HEALPIX_DEC(3, -1) FROM dp02",
        2,
    );
    for r in &got {
        let f = |v: &Value| if let Value::Float(x) = v { *x } else { panic!("{v:?}") };
        let (ra, dec, cra, cdec) = (f(&r[0]), f(&r[1]), f(&r[2]), f(&r[3]));
        // Order-29 pixels are 0.4 milliarcseconds across.
        assert!(starflow_e2e::haversine_deg(ra, dec, cra, cdec) < 1e-6, "({ra}, {dec}) vs ({cra}, {cdec})");
        // 768 = 12·4³ and -1 are not pixels of order 3.
        assert_eq!((&r[4], &r[5]), (&Value::Null, &Value::Null));
    }
}
