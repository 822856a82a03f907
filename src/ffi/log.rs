//! The process-wide logger of the C library: forwards the core's `fotp::*` events (see the
//! `fotp::logging` rustdoc for targets, levels and fields) to a C callback.

use std::cell::UnsafeCell;
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::OnceLock;

use ::log::kv::{Key, Value, VisitSource};
use ::log::{LevelFilter, Log, Metadata, Record};

use super::{boundary, fotp_client, lossy_cstring, try_ref, FfiResult};
use crate::error::{Error, ErrorKind};

/// No events (the logger is removed by a NULL callback, not by this level).
pub const FOTP_LOG_OFF: c_int = 0;
/// Failures the library recovers from badly or not at all.
pub const FOTP_LOG_ERROR: c_int = 1;
/// Failures the library works around (a tracker store failing, polling instead).
pub const FOTP_LOG_WARN: c_int = 2;
/// One event per HTTP attempt, per settled callback, per refused callback.
pub const FOTP_LOG_INFO: c_int = 3;
/// Details: polls of a wait, code reservations.
pub const FOTP_LOG_DEBUG: c_int = 4;
/// Everything.
pub const FOTP_LOG_TRACE: c_int = 5;

/// A logger callback: `level` is a FOTP_LOG_* constant, `target` the area ("fotp::http",
/// "fotp::tracker", "fotp::callback"), `message` one line of text that repeats the event's
/// fields. Both strings live only during the call.
pub type fotp_log_fn = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        level: c_int,
        target: *const c_char,
        message: *const c_char,
    ),
>;

/// A logger callback receiving the event's fields as well: `n` pairs, `keys[i]` and `values[i]`
/// (values are decimal for numbers). All strings and both arrays live only during the call.
pub type fotp_log_fields_fn = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        level: c_int,
        target: *const c_char,
        message: *const c_char,
        n: usize,
        keys: *const *const c_char,
        values: *const *const c_char,
    ),
>;

#[derive(Clone, Copy)]
enum Callback {
    Plain(unsafe extern "C" fn(*mut c_void, c_int, *const c_char, *const c_char)),
    Fields(
        unsafe extern "C" fn(
            *mut c_void,
            c_int,
            *const c_char,
            *const c_char,
            usize,
            *const *const c_char,
            *const *const c_char,
        ),
    ),
}

#[derive(Clone, Copy)]
struct Sink {
    callback: Callback,
    user: *mut c_void,
    level: LevelFilter,
}

// SAFETY: the caller of fotp_set_logger promises the callback may be called from any thread with
// `user` (the header says so); the library never dereferences `user`.
unsafe impl Send for Sink {}
// SAFETY: as above; a Sink is never mutated after it is built.
unsafe impl Sync for Sink {}

/// The current sink, copied out under the lock: callbacks run after the lock is released, so a
/// callback may call any fotp function, fotp_set_logger() included.
static SINK: SinkCell = SinkCell {
    lock: UnsafeCell::new(libc::PTHREAD_RWLOCK_INITIALIZER),
    sink: UnsafeCell::new(None),
};

/// A pthread rwlock rather than `std::sync::RwLock`: the same cost, and thread checkers
/// (helgrind) see it, so the logger's tests run with no suppression for this module.
struct SinkCell {
    lock: UnsafeCell<libc::pthread_rwlock_t>,
    sink: UnsafeCell<Option<Sink>>,
}

// SAFETY: `sink` is only read under the read lock and written under the write lock.
unsafe impl Sync for SinkCell {}

impl SinkCell {
    fn get(&self) -> Option<Sink> {
        // SAFETY: a statically initialised rwlock; `sink` read under its read lock. The lock
        // cannot fail here (no recursion on the write side: nothing runs while it is held).
        unsafe {
            libc::pthread_rwlock_rdlock(self.lock.get());
            let s = *self.sink.get();
            libc::pthread_rwlock_unlock(self.lock.get());
            s
        }
    }

    /// Runs `f` on the sink under the write lock; `f` must not log or call back into C.
    fn update<R>(&self, f: impl FnOnce(&mut Option<Sink>) -> R) -> R {
        // SAFETY: as in `get`, writing under the write lock. `f` cannot unwind here: the callers
        // only assign values.
        unsafe {
            libc::pthread_rwlock_wrlock(self.lock.get());
            let r = f(&mut *self.sink.get());
            libc::pthread_rwlock_unlock(self.lock.get());
            r
        }
    }
}
/// Whether this library's dispatcher is the `log` logger of this library's copy of `log`.
static INSTALLED: OnceLock<bool> = OnceLock::new();

struct Dispatch;
static DISPATCH: Dispatch = Dispatch;

impl Log for Dispatch {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // Only fotp's own events: ureq's are not the library's to publish, and ureq logs while
        // holding its pool lock, where a callback calling back into fotp would deadlock.
        // (The level was checked at the event site; the sink's own level is checked in log().)
        metadata.target().starts_with("fotp::")
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let Some(sink) = SINK.get() else { return };
        if record.level() > sink.level {
            return;
        }
        let level = record.level() as usize as c_int;
        let target = lossy_cstring(record.target());
        let message = lossy_cstring(&record.args().to_string());
        match sink.callback {
            // SAFETY: a callback the caller registered, called as the header documents.
            Callback::Plain(f) => unsafe { f(sink.user, level, target.as_ptr(), message.as_ptr()) },
            Callback::Fields(f) => {
                let mut fields = Fields::default();
                let _ = record.key_values().visit(&mut fields);
                let keys: Vec<*const c_char> = fields.keys.iter().map(|k| k.as_ptr()).collect();
                let values: Vec<*const c_char> = fields.values.iter().map(|v| v.as_ptr()).collect();
                // SAFETY: as above; the arrays hold `keys.len()` pointers that outlive the call.
                unsafe {
                    f(
                        sink.user,
                        level,
                        target.as_ptr(),
                        message.as_ptr(),
                        keys.len(),
                        keys.as_ptr(),
                        values.as_ptr(),
                    )
                }
            }
        }
    }

    fn flush(&self) {}
}

#[derive(Default)]
struct Fields {
    keys: Vec<CString>,
    values: Vec<CString>,
}

impl<'kvs> VisitSource<'kvs> for Fields {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), ::log::kv::Error> {
        self.keys.push(lossy_cstring(key.as_str()));
        self.values.push(lossy_cstring(&value.to_string()));
        Ok(())
    }
}

/// The level every event site checks, lock-free, before formatting anything (an atomic).
///
/// Never inlined: thread checkers see every store of it in this one frame (the loads are in
/// `fotp::logging::enabled`; tests/c/logging-helgrind.supp).
#[inline(never)]
fn store_max_level(level: LevelFilter) {
    ::log::set_max_level(level);
}

fn level_filter(level: c_int) -> Result<LevelFilter, Error> {
    Ok(match level {
        FOTP_LOG_OFF => LevelFilter::Off,
        FOTP_LOG_ERROR => LevelFilter::Error,
        FOTP_LOG_WARN => LevelFilter::Warn,
        FOTP_LOG_INFO => LevelFilter::Info,
        FOTP_LOG_DEBUG => LevelFilter::Debug,
        FOTP_LOG_TRACE => LevelFilter::Trace,
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "argument `level` is {level}, not a log level (FOTP_LOG_OFF {FOTP_LOG_OFF} to \
                     FOTP_LOG_TRACE {FOTP_LOG_TRACE})"
                ),
            ))
        }
    })
}

/// Replaces the sink (None removes it) and sets the level every event is checked against before
/// anything is formatted.
fn install(sink: Option<Sink>) -> FfiResult {
    let ours = *INSTALLED.get_or_init(|| ::log::set_logger(&DISPATCH).is_ok());
    if !ours && sink.is_some() {
        return Err(Error::new(
            ErrorKind::Config,
            "another `log` logger is installed in this process (a Rust program linking the fotp \
             crate): fotp's events go to it",
        ));
    }
    let max = sink.as_ref().map_or(LevelFilter::Off, |s| s.level);
    SINK.update(|current| {
        *current = sink;
        // Under the lock, so the level and the sink of concurrent calls stay paired.
        if ours {
            store_max_level(max);
        }
    });
    Ok(())
}

/// The body of both setters: `None` removes the logger (whatever `level` is).
fn set(level: c_int, callback: Option<Callback>, user: *mut c_void) -> FfiResult {
    let sink = match callback {
        Some(callback) => Some(Sink {
            callback,
            user,
            level: level_filter(level)?,
        }),
        None => None,
    };
    install(sink)
}

/// Sets the process-wide logger: `cb` receives the library's events of `level` (a FOTP_LOG_*
/// constant) and more severe, with `user` as its first argument. A NULL `cb` removes the logger
/// (`level` is then ignored); the default is none.
///
/// Thread-safe and callable at any time, also from inside the callback. `cb` may be called from
/// any thread that calls into fotp, concurrently; it may call fotp functions (the library holds
/// no lock while it runs). After replacement or removal, a call already running on another
/// thread may still deliver one event to the previous callback: keep `user` valid until such
/// calls returned. When logging is off, an event costs one atomic load, nothing is formatted.
/// Events never carry a secret, signature, OTP code or full mobile number.
/// Errors: FOTP_ERROR_INVALID_ARGUMENT (a level outside FOTP_LOG_OFF..FOTP_LOG_TRACE).
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_set_logger(
    level: c_int,
    cb: fotp_log_fn,
    user: *mut c_void,
) -> *mut super::fotp_error {
    boundary(|| set(level, cb.map(Callback::Plain), user))
}

/// Like fotp_set_logger(), with a callback that also receives each event's fields as key/value
/// strings (for bindings that log structured records). The two share one logger: setting either
/// replaces the other.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_set_logger_fields(
    level: c_int,
    cb: fotp_log_fields_fn,
    user: *mut c_void,
) -> *mut super::fotp_error {
    boundary(|| set(level, cb.map(Callback::Fields), user))
}

/// Changes the level of the current logger, keeping its callback (nothing happens without one).
/// Errors: FOTP_ERROR_INVALID_ARGUMENT (a level outside FOTP_LOG_OFF..FOTP_LOG_TRACE).
#[must_use]
#[no_mangle]
pub extern "C" fn fotp_set_log_level(level: c_int) -> *mut super::fotp_error {
    boundary(|| -> FfiResult {
        let level = level_filter(level)?;
        let ours = *INSTALLED.get().unwrap_or(&false);
        SINK.update(|current| {
            if let Some(s) = current {
                s.level = level;
                if ours {
                    store_max_level(level);
                }
            }
        });
        Ok(())
    })
}

/// The number naming `client` in log events (the "client" field); clients made from it by
/// fotp_client_with_timeout() and fotp_client_with_cancel() share it. 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn fotp_client_log_id(client: *const fotp_client) -> u64 {
    boundary(|| {
        // SAFETY: NULL or a live client (caller's contract).
        unsafe { try_ref(client, "client") }.map_or(0, |c| c.client().log_id())
    })
}
