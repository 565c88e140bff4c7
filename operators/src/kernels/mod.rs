//! Pure array kernels, no timely: expression evaluation and spherical geometry.

pub mod angular;
pub mod eval;
