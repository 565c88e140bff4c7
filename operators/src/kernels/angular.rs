//! Angular geometry on the sphere, in degrees: distances (Vincenty form, exact at all
//! separations), cone and box membership with RA wrapping at 0/360.

/// One argument of a geometry kernel: a column or a constant.
#[derive(Clone, Copy)]
pub enum Operand<'a> {
    /// One value per row.
    Column(&'a [f64]),
    /// The same value for every row.
    Const(f64),
}

impl Operand<'_> {
    /// The value for row `i`.
    #[inline]
    pub fn at(&self, i: usize) -> f64 {
        match self {
            Operand::Column(v) => v[i],
            Operand::Const(c) => *c,
        }
    }
}

/// Angular separation in degrees between (ra1, dec1) and (ra2, dec2), all in degrees.
/// Vincenty's formula: well conditioned at tiny and near-antipodal separations.
#[inline]
pub fn separation_deg(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let (s1, c1) = dec1.to_radians().sin_cos();
    let (s2, c2) = dec2.to_radians().sin_cos();
    let (sd, cd) = (ra2 - ra1).to_radians().sin_cos();
    let num1 = c2 * sd;
    let num2 = c1 * s2 - s1 * c2 * cd;
    let den = s1 * s2 + c1 * c2 * cd;
    num1.hypot(num2).atan2(den).to_degrees()
}

/// Separations for `n` rows.
pub fn separations(n: usize, ra1: Operand, dec1: Operand, ra2: Operand, dec2: Operand) -> Vec<f64> {
    (0..n).map(|i| separation_deg(ra1.at(i), dec1.at(i), ra2.at(i), dec2.at(i))).collect()
}

/// `true` where (ra, dec) lies within `radius` degrees of (ra0, dec0) (boundary included).
/// Uses the haversine form, exact at small radii; NaN coordinates are outside.
pub fn in_circle(n: usize, ra: Operand, dec: Operand, ra0: Operand, dec0: Operand, radius: Operand) -> Vec<bool> {
    if let (Operand::Const(ra0), Operand::Const(dec0), Operand::Const(r)) = (ra0, dec0, radius) {
        // Fast path for a fixed cone: compare haversines, no inverse trig per row.
        let limit = (r.clamp(0.0, 180.0).to_radians() / 2.0).sin().powi(2);
        let cos_dec0 = dec0.to_radians().cos();
        return (0..n)
            .map(|i| {
                let (a, d) = (ra.at(i), dec.at(i));
                let sdd = ((d - dec0).to_radians() / 2.0).sin();
                let sda = ((a - ra0).to_radians() / 2.0).sin();
                let h = sdd * sdd + cos_dec0 * d.to_radians().cos() * sda * sda;
                h <= limit
            })
            .collect();
    }
    (0..n).map(|i| separation_deg(ra.at(i), dec.at(i), ra0.at(i), dec0.at(i)) <= radius.at(i)).collect()
}

/// `true` where (ra, dec) lies in the coordinate box centred on (ra0, dec0) with full
/// width `w` (degrees of RA) and height `h` (degrees of Dec); RA differences wrap at 0/360.
pub fn in_box(n: usize, ra: Operand, dec: Operand, ra0: Operand, dec0: Operand, w: Operand, h: Operand) -> Vec<bool> {
    (0..n)
        .map(|i| {
            let dra = wrap180(ra.at(i) - ra0.at(i));
            dra.abs() <= w.at(i) / 2.0 && (dec.at(i) - dec0.at(i)).abs() <= h.at(i) / 2.0
        })
        .collect()
}

/// `true` where (ra, dec) lies inside the spherical polygon of `vertices` (great-circle
/// edges; cdshealpix's test, the one HATS pixel pruning uses); NaN coordinates are outside.
pub fn in_polygon(n: usize, ra: Operand, dec: Operand, vertices: &[(f64, f64)]) -> Vec<bool> {
    let polygon = starflow_catalogs::hats::region::PolygonTest::new(vertices);
    (0..n).map(|i| polygon.contains(ra.at(i), dec.at(i))).collect()
}

/// Wraps an angle difference into [-180, 180).
#[inline]
pub fn wrap180(x: f64) -> f64 {
    (x + 180.0).rem_euclid(360.0) - 180.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separation_is_exact_at_small_and_large_angles() {
        // 1 arcsec along Dec.
        let d = separation_deg(10.0, 20.0, 10.0, 20.0 + 1.0 / 3600.0);
        assert!((d * 3600.0 - 1.0).abs() < 1e-9, "{d}");
        // Across RA = 0/360.
        let d = separation_deg(359.5, 0.0, 0.5, 0.0);
        assert!((d - 1.0).abs() < 1e-12, "{d}");
        // Antipodes and poles.
        assert!((separation_deg(0.0, 0.0, 180.0, 0.0) - 180.0).abs() < 1e-12);
        assert!((separation_deg(0.0, 90.0, 123.0, 89.0) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn cone_fast_path_agrees_with_separation() {
        let ra: Vec<f64> = (0..2000).map(|i| 359.0 + (i as f64) * 0.001).map(|x| x % 360.0).collect();
        let dec: Vec<f64> = (0..2000).map(|i| -0.5 + (i % 100) as f64 * 0.01).collect();
        let fast = in_circle(
            ra.len(),
            Operand::Column(&ra),
            Operand::Column(&dec),
            Operand::Const(0.0),
            Operand::Const(0.0),
            Operand::Const(0.7),
        );
        for i in 0..ra.len() {
            assert_eq!(fast[i], separation_deg(ra[i], dec[i], 0.0, 0.0) <= 0.7, "row {i}");
        }
        assert!(fast.iter().any(|x| *x) && fast.iter().any(|x| !*x));
    }

    #[test]
    fn box_wraps_ra() {
        let ra = [359.9, 0.1, 1.0, 180.0];
        let dec = [0.0, 0.0, 0.0, 0.0];
        let inside = in_box(
            4,
            Operand::Column(&ra),
            Operand::Column(&dec),
            Operand::Const(0.0),
            Operand::Const(0.0),
            Operand::Const(0.5),
            Operand::Const(1.0),
        );
        assert_eq!(inside, vec![true, true, false, false]);
    }
}
