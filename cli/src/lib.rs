//! The library half of the `fotp` command line: the local Flash OTP sandbox.
//!
//! The sandbox lives here (not in the binary) so that tests and `fotp demo` can start it
//! in-process on an ephemeral port:
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let sandbox = fotp_cli::sandbox::Sandbox::start(fotp_cli::sandbox::Options::default()).await?;
//! println!("FOTP_BASE_URL={}", sandbox.base_url());
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod sandbox;
