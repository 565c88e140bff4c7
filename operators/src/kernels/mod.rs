//! Pure array kernels, no timely: expression evaluation, spherical geometry and HEALPix.

pub mod angular;
pub mod eval;
pub mod healpix;
