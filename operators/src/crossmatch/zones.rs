//! The right rows a worker received, indexed for radius searches: zones (bands of Dec a few
//! radii high), rows sorted by (zone, RA) within them. A search looks at the zones the
//! radius spans and, in each, at the RA window that can hold a match (the zones algorithm of
//! Gray, Nieto-Santisteban and Szalay, 2006).

/// One indexed row: where it is and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    zone: i64,
    /// RA in [0, 360).
    ra: f64,
    dec: f64,
    /// Batch and row of the right side.
    pub batch: u32,
    pub row: u32,
}

/// Right rows by zone and RA.
pub struct Zones {
    radius: f64,
    height: f64,
    entries: Vec<Entry>,
    /// Where each zone's entries are.
    ranges: std::collections::HashMap<i64, (usize, usize)>,
}

/// Zone height in radii: a search mostly reads one zone, whose RA window still holds few
/// rows at survey densities.
const ZONE_RADII: f64 = 8.0;

impl Zones {
    /// Indexes `(ra, dec, batch, row)` for searches within `radius` degrees.
    pub fn new(radius: f64, rows: impl Iterator<Item = (f64, f64, u32, u32)>) -> Self {
        // A tiny radius still gets zones of a sane height.
        let height = (radius * ZONE_RADII).max(1e-6);
        let mut entries: Vec<Entry> = rows
            .map(|(ra, dec, batch, row)| Entry { zone: zone(dec, height), ra: ra.rem_euclid(360.0), dec, batch, row })
            .collect();
        entries.sort_by(|a, b| a.zone.cmp(&b.zone).then(a.ra.total_cmp(&b.ra)));
        let mut ranges = std::collections::HashMap::new();
        let mut start = 0;
        for (i, e) in entries.iter().enumerate() {
            if entries.get(i + 1).is_none_or(|n| n.zone != e.zone) {
                ranges.insert(e.zone, (start, i + 1));
                start = i + 1;
            }
        }
        Self { radius, height, entries, ranges }
    }

    /// Rows indexed.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Calls `found(entry, distance in degrees)` for every indexed row within the radius of
    /// (ra, dec).
    pub fn search(&self, ra: f64, dec: f64, mut found: impl FnMut(&Entry, f64)) {
        let r = self.radius;
        let ra = ra.rem_euclid(360.0);
        let half_width = ra_half_width(dec, r);
        for z in zone(dec - r, self.height)..=zone(dec + r, self.height) {
            let Some(&(lo, hi)) = self.ranges.get(&z) else { continue };
            let zone = &self.entries[lo..hi];
            let mut scan = |from: f64, to: f64| {
                let start = zone.partition_point(|e| e.ra < from);
                for e in zone[start..].iter().take_while(|e| e.ra <= to) {
                    let d = haversine_deg(ra, dec, e.ra, e.dec);
                    if d <= r {
                        found(e, d);
                    }
                }
            };
            if half_width >= 180.0 {
                scan(0.0, 360.0);
            } else if ra - half_width < 0.0 {
                scan(0.0, ra + half_width);
                scan(ra - half_width + 360.0, 360.0);
            } else if ra + half_width >= 360.0 {
                scan(ra - half_width, 360.0);
                scan(0.0, ra + half_width - 360.0);
            } else {
                scan(ra - half_width, ra + half_width);
            }
        }
    }
}

fn zone(dec: f64, height: f64) -> i64 {
    ((dec + 90.0) / height).floor() as i64
}

/// The most RA can differ (degrees) between (ra, dec) and a point within `r` of it; 180 when
/// the circle reaches a pole.
fn ra_half_width(dec: f64, r: f64) -> f64 {
    if dec.abs() + r >= 89.999_999 {
        return 180.0;
    }
    let (dec, r) = (dec.to_radians(), r.to_radians());
    let w = (r.sin() / ((dec - r).cos() * (dec + r).cos()).abs().sqrt()).atan().to_degrees();
    // A little slack for rounding; candidates are checked by distance anyway.
    (w * (1.0 + 1e-9) + 1e-12).min(180.0)
}

/// Great-circle distance (degrees) by the haversine formula, exact at small separations.
pub fn haversine_deg(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let (d1, d2) = (dec1.to_radians(), dec2.to_radians());
    let sdd = ((d2 - d1) / 2.0).sin();
    let sda = ((ra2 - ra1).to_radians() / 2.0).sin();
    let h = (sdd * sdd + d1.cos() * d2.cos() * sda * sda).clamp(0.0, 1.0);
    (2.0 * h.sqrt().asin()).to_degrees()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row within the radius is found, and only those, at the poles, across RA = 0 and
    /// with radii from an arcsecond to degrees.
    #[test]
    fn finds_exactly_the_rows_within_the_radius() {
        let mut next = super::super::uniform(5);
        for (centre_dec, spread, r) in
            [(0.0, 1.0, 0.01), (89.9, 0.2, 0.05), (-89.99, 0.05, 0.02), (45.0, 0.01, 1.0 / 3600.0), (10.0, 30.0, 5.0)]
        {
            let rows: Vec<(f64, f64)> = (0..3000)
                .map(|_| {
                    ((next() - 0.5) * 2.0 * spread, (centre_dec + (next() - 0.5) * 2.0 * spread).clamp(-90.0, 90.0))
                })
                .collect();
            let zones = Zones::new(r, rows.iter().enumerate().map(|(i, &(a, d))| (a, d, 0, i as u32)));
            assert_eq!(zones.len(), rows.len());
            for probe in 0..200 {
                let (ra, dec) = rows[probe * 7 % rows.len()];
                let (ra, dec) = (ra + (next() - 0.5) * r, (dec + (next() - 0.5) * r).clamp(-90.0, 90.0));
                let mut got: Vec<u32> = Vec::new();
                zones.search(ra, dec, |e, d| {
                    assert!(d <= r);
                    got.push(e.row)
                });
                got.sort();
                let want: Vec<u32> = (0..rows.len() as u32)
                    .filter(|&i| haversine_deg(ra, dec, rows[i as usize].0, rows[i as usize].1) <= r)
                    .collect();
                assert_eq!(got, want, "around ({ra}, {dec}), r = {r}");
            }
        }
    }
}
