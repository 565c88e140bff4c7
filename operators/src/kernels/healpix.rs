//! HEALPix pixel numbers (nested scheme) of sky positions, with `cdshealpix`: the code HATS
//! uses, so pixel numbers agree with HATS catalogs' `Npix` and `_healpix_29` bit for bit.

use super::angular::Operand;

/// The nested pixel of each (ra, dec) in degrees at `order`; None where a coordinate is not
/// finite or |dec| > 90 (no pixel holds it). RA wraps (−90 is 270).
pub fn nested(order: u8, n: usize, ra: Operand, dec: Operand) -> Vec<Option<i64>> {
    let layer = cdshealpix::nested::get(order);
    (0..n)
        .map(|i| {
            let (a, d) = (ra.at(i), dec.at(i));
            (a.is_finite() && d.is_finite() && d.abs() <= 90.0)
                .then(|| layer.hash(a.rem_euclid(360.0).to_radians(), d.to_radians()) as i64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers in [0, 1).
    fn uniform(n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (x >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect()
    }

    #[test]
    fn orders_nest_and_edges_are_handled() {
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
            nested(0, ra.len(), Operand::Column(&ra), Operand::Column(&dec))
                .iter()
                .all(|p| (0..12).contains(&p.unwrap()))
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
}
