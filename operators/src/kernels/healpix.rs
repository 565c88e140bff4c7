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

/// The centre (RA, Dec in degrees) of each nested pixel at `order`; None for a number that is
/// not a pixel of that order.
pub fn centres(order: u8, pixels: &[i64]) -> Vec<Option<(f64, f64)>> {
    let layer = cdshealpix::nested::get(order);
    let count = 12i64 << (2 * u32::from(order));
    pixels
        .iter()
        .map(|&p| {
            (0..count).contains(&p).then(|| {
                let (lon, lat) = layer.center(p as u64);
                (lon.to_degrees(), lat.to_degrees())
            })
        })
        .collect()
}
