//! Brute-force reference computations, written independently of the engine's kernels:
//! haversine distances and textbook (two-pass) aggregates.

use crate::value::Value;

/// Angular separation in degrees by the haversine formula.
pub fn haversine_deg(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let (d1, d2) = (dec1.to_radians(), dec2.to_radians());
    let h = ((d2 - d1) / 2.0).sin().powi(2) + d1.cos() * d2.cos() * ((ra2 - ra1).to_radians() / 2.0).sin().powi(2);
    2.0 * h.sqrt().min(1.0).asin().to_degrees()
}

/// Wraps an RA difference into (-180, 180].
pub fn wrap_ra(mut d: f64) -> f64 {
    while d > 180.0 {
        d -= 360.0;
    }
    while d <= -180.0 {
        d += 360.0;
    }
    d
}

/// The aggregates of SQL over one group, skipping NULL and NaN (pandas `skipna`).
#[derive(Debug, Clone, Default)]
pub struct FloatAgg {
    values: Vec<f64>,
}

impl FloatAgg {
    /// Adds a value (NaN is skipped).
    pub fn push(&mut self, x: f64) {
        if !x.is_nan() {
            self.values.push(x);
        }
    }

    /// `COUNT(x)`.
    pub fn count(&self) -> Value {
        Value::Int(self.values.len() as i64)
    }

    /// `SUM(x)` (NULL over no values).
    pub fn sum(&self) -> Value {
        Value::opt_f64((!self.values.is_empty()).then(|| self.values.iter().sum()))
    }

    /// `AVG(x)`.
    pub fn avg(&self) -> Value {
        Value::opt_f64((!self.values.is_empty()).then(|| self.mean()))
    }

    /// `MIN(x)`.
    pub fn min(&self) -> Value {
        Value::opt_f64(self.values.iter().copied().reduce(f64::min))
    }

    /// `MAX(x)`.
    pub fn max(&self) -> Value {
        Value::opt_f64(self.values.iter().copied().reduce(f64::max))
    }

    /// `STDDEV(x)`: sample standard deviation, two-pass (NULL below two values).
    pub fn stddev(&self) -> Value {
        let n = self.values.len();
        if n < 2 {
            return Value::Null;
        }
        let mean = self.mean();
        let ss: f64 = self.values.iter().map(|x| (x - mean).powi(2)).sum();
        Value::Float((ss / (n - 1) as f64).sqrt())
    }

    fn mean(&self) -> f64 {
        self.values.iter().sum::<f64>() / self.values.len() as f64
    }
}

/// The nested HEALPix pixel of (ra, dec) in degrees by the HEALPix paper's construction
/// (Górski et al. 2005, as in `healpix_base`'s loc2pix): an independent reference for
/// cdshealpix.
pub fn healpix_nested(order: u8, ra_deg: f64, dec_deg: f64) -> u64 {
    let (theta, phi) = (std::f64::consts::FRAC_PI_2 - dec_deg.to_radians(), ra_deg.to_radians());
    let nside = 1i64 << order;
    let z = theta.cos();
    let za = z.abs();
    let tt = phi.rem_euclid(2.0 * std::f64::consts::PI) * 2.0 / std::f64::consts::PI; // in [0, 4)
    let (face, ix, iy) = if za <= 2.0 / 3.0 {
        let (t1, t2) = (nside as f64 * (0.5 + tt), nside as f64 * z * 0.75);
        let (jp, jm) = ((t1 - t2) as i64, (t1 + t2) as i64);
        let (ifp, ifm) = (jp >> order, jm >> order);
        let face = if ifp == ifm {
            ifp | 4
        } else if ifp < ifm {
            ifp
        } else {
            ifm + 8
        };
        (face, jm & (nside - 1), nside - (jp & (nside - 1)) - 1)
    } else {
        let ntt = (tt as i64).min(3);
        let tp = tt - ntt as f64;
        let tmp = nside as f64 * (3.0 * (1.0 - za)).sqrt();
        let jp = ((tp * tmp) as i64).min(nside - 1);
        let jm = (((1.0 - tp) * tmp) as i64).min(nside - 1);
        if z >= 0.0 { (ntt, nside - jm - 1, nside - jp - 1) } else { (ntt + 8, jp, jm) }
    };
    // Bits of ix at even positions, of iy at odd ones.
    let interleave =
        (0..order).fold(0u64, |h, b| h | (((ix as u64 >> b) & 1) << (2 * b)) | (((iy as u64 >> b) & 1) << (2 * b + 1)));
    face as u64 * (nside * nside) as u64 + interleave
}

/// Deterministic pseudo-random numbers in [0, 1) (a 64-bit LCG), for generated test data.
pub fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut x = seed;
    move || {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}
