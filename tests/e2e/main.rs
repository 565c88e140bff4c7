//! The end-to-end test binary: SQL over a generated multi-file catalog, through the library
//! and the `starflow` binary, checked against brute force over the same files.

mod aggregate;
