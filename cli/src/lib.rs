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
pub mod text;

/// Test support: heap bytes allocated and not freed by the current thread, so that a unit
/// test can measure a structure's memory while other tests run on other threads.
#[cfg(test)]
pub(crate) mod alloc_count {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    struct Counting;

    thread_local! {
        // const and without destructor: usable from inside the allocator.
        static LIVE: Cell<i64> = const { Cell::new(0) };
    }

    fn add(n: i64) {
        let _ = LIVE.try_with(|c| c.set(c.get() + n));
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            add(l.size() as i64);
            System.alloc(l)
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            add(-(l.size() as i64));
            System.dealloc(p, l)
        }
        unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
            add(l.size() as i64);
            System.alloc_zeroed(l)
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            add(new as i64 - l.size() as i64);
            System.realloc(p, l, new)
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;

    pub(crate) fn live_bytes() -> i64 {
        LIVE.with(|c| c.get())
    }
}
