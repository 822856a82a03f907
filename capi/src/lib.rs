//! The C library of fotp: re-exports the `#[no_mangle]` functions of `fotp::ffi` (compiled with
//! the `capi` feature), so that they are exported from libfotp.so and libfotp.a.

pub use fotp_core::ffi::*;
