//! Memory bounds under hostile answers: the client never holds more than about the response
//! limit, whatever the server sends. An allocator that counts what the calling thread holds
//! measures it (the blocking client does all its work on the caller's thread).

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use fotp::ErrorKind;
use support::{client_for, Reply, Server};

struct Counting;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    // `try_with`: the allocator also runs while thread-locals are being torn down.
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            let live = LIVE.with(|l| {
                l.set(l.get() + delta);
                l.get()
            });
            PEAK.with(|p| p.set(p.get().max(live)));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most this thread held at once while running `f`.
fn peak_bytes<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    TRACKING.with(|t| t.set(true));
    let out = f();
    TRACKING.with(|t| t.set(false));
    (out, PEAK.with(|p| p.get()).max(0) as usize)
}

const TOKEN: &str = "44cadc6071214b968b3b3bb1cb5a6c24";
const BOUND: usize = 3 * 1024 * 1024;

#[test]
fn hostile_bodies_stay_within_the_response_limit() {
    let cases: Vec<(&str, Reply, ErrorKind)> = vec![
        (
            "5 MiB body",
            Reply::Huge(5 * 1024 * 1024),
            ErrorKind::Decode,
        ),
        ("endless body", Reply::Endless, ErrorKind::Decode),
        (
            "50 MiB declared",
            Reply::Huge(50 * 1024 * 1024),
            ErrorKind::Decode,
        ),
    ];
    for (what, reply, kind) in cases {
        let reply = std::sync::Mutex::new(Some(reply));
        let server = Server::start(move |_, _| reply.lock().unwrap().take().unwrap());
        let client = client_for(&server, |b| b.retries(0).timeout(Duration::from_secs(10)));
        let (result, peak) = peak_bytes(|| client.query(TOKEN));
        let e = result.unwrap_err();
        assert_eq!(e.kind(), kind, "{what}: {e}");
        assert!(peak < BOUND, "{what}: the client held {peak} bytes at once");
    }
}

#[test]
fn the_measure_sees_a_large_answer() {
    // The allocator does count what the client reads: a body just under the limit shows up.
    let body = format!(
        r#"{{"code":"000000","data":{{"status":"2","mobile":"{}"}}}}"#,
        "1".repeat(900 * 1024)
    );
    let server = Server::start(move |_, _| Reply::json(200, &body));
    let client = client_for(&server, |b| b);
    let (result, peak) = peak_bytes(|| client.query(TOKEN));
    assert_eq!(result.unwrap().mobile.unwrap().len(), 900 * 1024);
    assert!(peak > 900 * 1024, "peak {peak}");
}
