//! Sky regions a query selects (cone, coordinate box, polygon) and the HEALPix pixels they
//! touch, with `cdshealpix`'s coverage (which never misses a pixel), so a HATS catalog opens
//! only the partitions that can hold matches.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// Deepest HEALPix order.
pub const MAX_ORDER: u8 = 29;

/// A region of the sky, in degrees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SkyRegion {
    /// Points within `radius` of (ra, dec), boundary included.
    Cone {
        /// Centre RA.
        ra: f64,
        /// Centre Dec.
        dec: f64,
        /// Radius.
        radius: f64,
    },
    /// ADQL `BOX`: RA within `width/2` of `ra` (wrapping at 0/360), Dec within `height/2` of `dec`.
    Box {
        /// Centre RA.
        ra: f64,
        /// Centre Dec.
        dec: f64,
        /// Full width in RA.
        width: f64,
        /// Full height in Dec.
        height: f64,
    },
    /// A spherical polygon with great-circle edges, vertices (ra, dec) in order.
    Polygon(Vec<(f64, f64)>),
}

impl SkyRegion {
    /// The order-29 pixel ranges (nested) that may hold points of the region, sorted and
    /// disjoint, computed at `order` (a coarser order is quicker and looser).
    pub fn ranges(&self, order: u8) -> Vec<Range<u64>> {
        let order = order.min(MAX_ORDER);
        let bmoc = match self {
            SkyRegion::Cone { ra, dec, radius } => {
                if *radius >= 180.0 {
                    return std::iter::once(0..12u64 << 58).collect();
                }
                cdshealpix::nested::cone_coverage_approx(
                    order,
                    ra.rem_euclid(360.0).to_radians(),
                    dec.clamp(-90.0, 90.0).to_radians(),
                    radius.max(0.0).to_radians(),
                )
            }
            SkyRegion::Box { ra, dec, width, height } => {
                let lat_min = (dec - height / 2.0).max(-90.0);
                let lat_max = (dec + height / 2.0).min(90.0);
                if lat_min > lat_max {
                    return vec![];
                }
                let (lon_min, lon_max) = if *width >= 360.0 {
                    (0.0, 360.0f64.next_down())
                } else {
                    ((ra - width / 2.0).rem_euclid(360.0), (ra + width / 2.0).rem_euclid(360.0))
                };
                // A pole is in the zone only when asked as lon_min == 0 && lat = ±90: take the
                // whole cap around a pole the box reaches.
                let whole_ra = *width >= 360.0 || lat_max >= 90.0 || lat_min <= -90.0;
                let (lon_min, lon_max) = if whole_ra { (0.0, 360.0f64.next_down()) } else { (lon_min, lon_max) };
                cdshealpix::nested::zone_coverage(
                    order,
                    lon_min.to_radians().min(std::f64::consts::TAU.next_down()),
                    lat_min.to_radians(),
                    lon_max.to_radians().min(std::f64::consts::TAU.next_down()),
                    lat_max.to_radians(),
                )
            }
            SkyRegion::Polygon(vertices) => {
                let v: Vec<(f64, f64)> = vertices
                    .iter()
                    .map(|(ra, dec)| (ra.rem_euclid(360.0).to_radians(), dec.clamp(-90.0, 90.0).to_radians()))
                    .collect();
                cdshealpix::nested::polygon_coverage(order, &v, true)
            }
        };
        let shift = 2 * u32::from(MAX_ORDER - bmoc.get_depth_max());
        bmoc.to_ranges().iter().map(|r| (r.start << shift)..(r.end << shift)).collect()
    }
}

/// The order-29 range of nested pixel `pixel` at `order`.
pub fn pixel_range(order: u8, pixel: u64) -> Range<u64> {
    let shift = 2 * u32::from(MAX_ORDER - order.min(MAX_ORDER));
    (pixel << shift)..((pixel + 1) << shift)
}

/// Whether `range` meets any of the sorted, disjoint `ranges`.
pub fn overlaps(ranges: &[Range<u64>], range: &Range<u64>) -> bool {
    // The first range ending after `range.start`.
    let i = ranges.partition_point(|r| r.end <= range.start);
    ranges.get(i).is_some_and(|r| r.start < range.end)
}

/// A polygon for point tests, built once: cdshealpix's, the same one the coverage uses, so
/// a point the test keeps is never in a pruned pixel.
pub struct PolygonTest(cdshealpix::sph_geom::Polygon);

impl PolygonTest {
    /// The polygon of vertices (ra, dec) in degrees.
    pub fn new(vertices: &[(f64, f64)]) -> Self {
        let v: Vec<cdshealpix::sph_geom::coo3d::LonLat> = vertices
            .iter()
            .map(|(ra, dec)| cdshealpix::sph_geom::coo3d::LonLat {
                lon: ra.rem_euclid(360.0).to_radians(),
                lat: dec.clamp(-90.0, 90.0).to_radians(),
            })
            .collect();
        Self(cdshealpix::sph_geom::Polygon::new(v.into_boxed_slice()))
    }

    /// Whether (ra, dec) in degrees is inside; NaN is outside.
    pub fn contains(&self, ra: f64, dec: f64) -> bool {
        if !ra.is_finite() || !dec.is_finite() || dec.abs() > 90.0 {
            return false;
        }
        let p = cdshealpix::sph_geom::coo3d::Coo3D::from_sph_coo(ra.rem_euclid(360.0).to_radians(), dec.to_radians());
        self.0.contains(&p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel_of(ra: f64, dec: f64) -> u64 {
        cdshealpix::nested::get(MAX_ORDER).hash(ra.rem_euclid(360.0).to_radians(), dec.to_radians())
    }

    /// Every point of a region lies in its ranges (brute force over a grid of points).
    #[test]
    fn coverage_never_misses_a_point() {
        let regions = [
            SkyRegion::Cone { ra: 0.2, dec: 10.0, radius: 1.5 },
            SkyRegion::Cone { ra: 45.0, dec: 89.5, radius: 2.0 },
            SkyRegion::Box { ra: 359.0, dec: -30.0, width: 4.0, height: 3.0 },
            SkyRegion::Box { ra: 100.0, dec: -88.0, width: 10.0, height: 6.0 },
            SkyRegion::Polygon(vec![(358.0, -1.0), (2.0, -1.0), (2.0, 2.0), (358.0, 2.0)]),
        ];
        for region in &regions {
            for order in [3u8, 6, 9] {
                let ranges = region.ranges(order);
                let poly = match region {
                    SkyRegion::Polygon(v) => Some(PolygonTest::new(v)),
                    _ => None,
                };
                let (mut inside, mut total) = (0, 0);
                for i in 0..400 {
                    for j in 0..400 {
                        let (ra, dec) = match region {
                            SkyRegion::Cone { ra, dec, radius } | SkyRegion::Box { ra, dec, width: radius, .. } => {
                                (ra + (i as f64 / 200.0 - 1.0) * 6.0 * radius, dec + (j as f64 / 200.0 - 1.0) * 3.0)
                            }
                            SkyRegion::Polygon(_) => (356.0 + i as f64 * 0.02, -3.0 + j as f64 * 0.02),
                        };
                        if dec.abs() > 90.0 {
                            continue;
                        }
                        let ra = ra.rem_euclid(360.0);
                        let is_in = match region {
                            SkyRegion::Cone { ra: a, dec: d, radius } => haversine(ra, dec, *a, *d) <= *radius,
                            SkyRegion::Box { ra: a, dec: d, width, height } => {
                                ((ra - a + 180.0).rem_euclid(360.0) - 180.0).abs() <= width / 2.0
                                    && (dec - d).abs() <= height / 2.0
                            }
                            SkyRegion::Polygon(_) => poly.as_ref().unwrap().contains(ra, dec),
                        };
                        total += 1;
                        if is_in {
                            inside += 1;
                            let p = pixel_of(ra, dec);
                            assert!(overlaps(&ranges, &(p..p + 1)), "{region:?} at order {order} misses ({ra}, {dec})");
                        }
                    }
                }
                assert!(inside > 100 && inside < total, "{region:?}: {inside} of {total} inside");
            }
        }
    }

    fn haversine(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
        let (d1, d2) = (dec1.to_radians(), dec2.to_radians());
        let h = ((d2 - d1) / 2.0).sin().powi(2) + d1.cos() * d2.cos() * ((ra2 - ra1).to_radians() / 2.0).sin().powi(2);
        2.0 * h.sqrt().min(1.0).asin().to_degrees()
    }

    #[test]
    fn overlap_of_ranges() {
        let ranges = vec![10..20, 30..40];
        assert!(overlaps(&ranges, &(15..16)));
        assert!(overlaps(&ranges, &(0..11)));
        assert!(!overlaps(&ranges, &(20..30)));
        assert!(overlaps(&ranges, &(39..100)));
        assert!(!overlaps(&ranges, &(40..100)));
        assert_eq!(pixel_range(0, 1), (1u64 << 58)..(2u64 << 58));
    }

    #[test]
    fn polygon_contains_its_inside() {
        let p = PolygonTest::new(&[(10.0, 0.0), (12.0, 0.0), (12.0, 2.0), (10.0, 2.0)]);
        assert!(p.contains(11.0, 1.0));
        assert!(!p.contains(13.0, 1.0));
        assert!(!p.contains(11.0, -1.0));
        assert!(!p.contains(f64::NAN, 1.0));
    }
}
