//! Runs blocking calls on a bounded pool of worker threads and reports each finished one on a
//! file descriptor, for callers that wait in an event loop rather than in a blocked thread.
//!
//! Why: a Go goroutine blocked in a C call holds an OS thread and its scheduler slot (P); past
//! ~20 µs the Go runtime takes the P back and hands it to another thread, and with many
//! goroutines in C calls it spends its time handing Ps and threads around (issue 17: 16
//! goroutines made fewer calls per second than 4). A binding can instead start the call here
//! and park the caller in its own event loop (Go's network poller) until [`Offload::fd`] is
//! readable. The C functions are in `src/ffi/offload.rs`; this module knows nothing of C.
//!
//! - Bounded: at most `max_threads` workers; further jobs wait in a queue, in order.
//! - Elastic: a worker starts when a job finds no idle one, and exits after `IDLE_EXIT` idle.
//! - Shut down cleanly: dropping the [`Offload`] runs the jobs already queued, then waits until
//!   every worker has exited.
//! - Fork-aware: workers are threads, which a forked child does not have; an `Offload` made
//!   before `fork` refuses new jobs in the child ([`Offload::spawn`] fails) and is dropped there
//!   without waiting for the parent's workers or taking locks they may have held.

use std::collections::VecDeque;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long a worker with nothing to do waits for a job before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A pool of worker threads whose finished jobs are reported on a file descriptor. See the
/// module documentation.
pub struct Offload {
    shared: Arc<Shared>,
    /// The fork generation this pool (and its workers) belongs to (`crate::fork`: no getpid()
    /// per call).
    generation: u64,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a worker exits.
    exited: Condvar,
    max_threads: usize,
    done: Mutex<Done>,
    signal: Signal,
}

#[derive(Default)]
struct State {
    /// Jobs no worker was free for, oldest first.
    queue: VecDeque<(u64, Job)>,
    /// Workers parked with nothing to do; a job is handed to one directly.
    idle: Vec<Arc<Slot>>,
    threads: usize,
    /// The workers not known to have exited, joined by Drop.
    handles: Vec<std::thread::JoinHandle<()>>,
    closing: bool,
}

/// A worker's mailbox: the submitter puts the job here and unparks the worker, so that waking
/// a worker is one unpark (no shared condition variable whose waiters contend for one lock).
struct Slot {
    job: Mutex<Option<(u64, Job)>>,
    thread: std::thread::Thread,
}

/// Finished jobs not yet collected, and whether the descriptor is readable for them.
#[derive(Default)]
struct Done {
    tags: Vec<u64>,
    signalled: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Jobs run outside the locks and their panics are caught: a poisoned lock only means a
    // panic between two statements of this module, after which the state is still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Offload {
    /// A pool of at most `max_threads` workers (at least 1); none is started yet.
    pub fn new(max_threads: usize) -> io::Result<Offload> {
        Ok(Offload {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                exited: Condvar::new(),
                max_threads: max_threads.max(1),
                done: Mutex::new(Done::default()),
                signal: Signal::new()?,
            }),
            generation: crate::fork::generation(),
        })
    }

    /// The descriptor that is readable while finished jobs wait to be collected with
    /// [`Offload::drain`]. Owned by the pool: valid until it is dropped. Wait for it with an
    /// edge-triggered poller only after draining until `drain` returned fewer tags than asked.
    #[cfg(unix)]
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.shared.signal.fd()
    }

    /// Runs `job` on a worker; once it has returned (or panicked), `tag` is reported by
    /// [`Offload::drain`]. Fails when the pool was made before a `fork` (in the child) or no
    /// worker thread can be started.
    pub fn spawn(&self, tag: u64, job: impl FnOnce() + Send + 'static) -> io::Result<()> {
        if self.forked() {
            return Err(io::Error::other(
                "this worker pool was created before fork(); create a new one in the child",
            ));
        }
        let job: Job = Box::new(job);
        let mut st = lock(&self.shared.state);
        if let Some(slot) = st.idle.pop() {
            drop(st);
            *lock(&slot.job) = Some((tag, job));
            slot.thread.unpark();
            return Ok(());
        }
        if st.threads >= self.shared.max_threads {
            st.queue.push_back((tag, job)); // the first worker to finish takes it
            return Ok(());
        }
        st.threads += 1;
        drop(st);
        let shared = Arc::clone(&self.shared);
        let started = std::thread::Builder::new()
            .name("fotp-offload".into())
            .spawn(move || shared.work_loop(tag, job));
        let mut st = lock(&self.shared.state);
        match started {
            Ok(h) => {
                // Handles of workers that left after idling are dropped here (they are done).
                st.handles.retain(|h| !h.is_finished());
                st.handles.push(h);
                Ok(())
            }
            Err(e) => {
                st.threads -= 1;
                self.shared.exited.notify_all();
                Err(e)
            }
        }
    }

    /// Moves up to `out.len()` tags of finished jobs to `out`, oldest first, and returns how
    /// many. When it returns fewer than `out.len()`, none is left and the descriptor is not
    /// readable again until the next job finishes.
    pub fn drain(&self, out: &mut [u64]) -> usize {
        if self.forked() {
            // A forked child: no job of this pool ever runs here, and a worker of the parent
            // may have held the lock at the fork.
            return 0;
        }
        let mut done = lock(&self.shared.done);
        let n = out.len().min(done.tags.len());
        for (slot, tag) in out.iter_mut().zip(done.tags.drain(..n)) {
            *slot = tag;
        }
        if done.tags.is_empty() && done.signalled {
            // Cleared under the lock that `finish` raises under: the byte goes with the last
            // tag, and the next finish raises a new one. (Cleared before taking the lock, a
            // byte raised in between outlived its tag: the descriptor stayed readable with
            // nothing to drain, and a level-triggered poller spun.)
            self.shared.signal.clear();
            done.signalled = false;
        }
        n
    }

    /// Whether this is a forked child of the process that made the pool.
    fn forked(&self) -> bool {
        crate::fork::generation() != self.generation
    }

    /// Workers running now.
    #[cfg(test)]
    fn threads(&self) -> usize {
        lock(&self.shared.state).threads
    }
}

impl Drop for Offload {
    fn drop(&mut self) {
        if self.forked() {
            // A forked child: the workers are the parent's; their locks may be held forever.
            return;
        }
        let mut st = lock(&self.shared.state);
        st.closing = true;
        for slot in st.idle.drain(..) {
            slot.thread.unpark();
        }
        while st.threads > 0 {
            st = self
                .shared
                .exited
                .wait(st)
                .unwrap_or_else(|p| p.into_inner());
        }
        // Joined, so that no thread of this pool is left when drop returns.
        let handles = std::mem::take(&mut st.handles);
        drop(st);
        for h in handles {
            let _ = h.join();
        }
    }
}

impl Shared {
    fn work_loop(&self, tag: u64, job: Job) {
        let slot = Arc::new(Slot {
            job: Mutex::new(None),
            thread: std::thread::current(),
        });
        let mut next = Some((tag, job));
        while let Some((tag, job)) = next.take() {
            // A panicking job still counts as finished: its caller must not wait forever.
            let _ = catch_unwind(AssertUnwindSafe(job));
            self.finish(tag);
            next = self.next_job(&slot);
        }
        let mut st = lock(&self.state);
        st.threads -= 1;
        self.exited.notify_all();
    }

    /// The next job for the worker owning `slot`: a queued one, or one handed to it while it
    /// was parked; None when it should exit (closing, or idle for `IDLE_EXIT`).
    fn next_job(&self, slot: &Arc<Slot>) -> Option<(u64, Job)> {
        let mut st = lock(&self.state);
        if let Some(j) = st.queue.pop_front() {
            return Some(j);
        }
        if st.closing {
            return None;
        }
        st.idle.push(Arc::clone(slot));
        drop(st);
        let deadline = std::time::Instant::now() + IDLE_EXIT;
        loop {
            if let Some(j) = lock(&slot.job).take() {
                return Some(j);
            }
            let now = std::time::Instant::now();
            let mut st = lock(&self.state);
            match st.idle.iter().position(|s| Arc::ptr_eq(s, slot)) {
                Some(i) if st.closing || now >= deadline => {
                    st.idle.swap_remove(i);
                    return None;
                }
                Some(_) => {
                    drop(st);
                    std::thread::park_timeout(deadline.saturating_duration_since(now));
                }
                // Unlisted by Drop: no job can come any more (Drop excludes spawn), but one
                // handed over just before may be in the slot.
                None if st.closing => {
                    drop(st);
                    return lock(&slot.job).take();
                }
                // Unlisted by a submitter, which is putting a job in the slot and unparks
                // this thread after (a park after an unpark returns at once).
                None => {
                    drop(st);
                    std::thread::park();
                }
            }
        }
    }

    fn finish(&self, tag: u64) {
        let mut done = lock(&self.done);
        done.tags.push(tag);
        if !done.signalled {
            done.signalled = true;
            self.signal.raise();
        }
    }
}

/// A readable-or-not descriptor: one end of a socket pair (std only, no `unsafe`). Raising
/// writes a byte, clearing reads everything written; [`Done::signalled`] keeps it to one byte.
#[cfg(unix)]
struct Signal {
    rx: std::os::unix::net::UnixStream,
    tx: std::os::unix::net::UnixStream,
}

#[cfg(unix)]
impl Signal {
    fn new() -> io::Result<Signal> {
        let (rx, tx) = std::os::unix::net::UnixStream::pair()?;
        rx.set_nonblocking(true)?;
        tx.set_nonblocking(true)?;
        Ok(Signal { rx, tx })
    }

    fn fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.rx)
    }

    fn raise(&self) {
        use std::io::Write;
        // At most one byte is ever unread, so the socket buffer cannot be full; EINTR is
        // retried by write_all.
        let _ = (&self.tx).write_all(&[1]);
    }

    fn clear(&self) {
        use std::io::Read;
        // One byte: raised and cleared under the `done` lock (see Offload::drain).
        let mut buf = [0u8; 64];
        while let Ok(64) = (&self.rx).read(&mut buf) {}
    }
}

/// Without Unix descriptors there is nothing to wait on: [`Offload::new`] fails.
#[cfg(not(unix))]
struct Signal;

#[cfg(not(unix))]
impl Signal {
    fn new() -> io::Result<Signal> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the worker pool needs Unix file descriptors",
        ))
    }
    fn raise(&self) {}
    fn clear(&self) {}
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    fn readable(o: &Offload) -> bool {
        let mut buf = [std::mem::MaybeUninit::uninit(); 1];
        // Peek without consuming (a non-blocking recv with MSG_PEEK).
        socket2::SockRef::from(&o.shared.signal.rx)
            .peek(&mut buf)
            .is_ok()
    }

    fn drain_all(o: &Offload, want: usize) -> Vec<u64> {
        let start = Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u64; 4];
        while got.len() < want {
            let n = o.drain(&mut buf);
            got.extend_from_slice(&buf[..n]);
            if n == 0 {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "jobs never finished"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        got
    }

    #[test]
    fn runs_every_job_and_reports_its_tag_once() {
        let o = Offload::new(4).unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        for tag in 0..100u64 {
            let ran = Arc::clone(&ran);
            o.spawn(tag, move || {
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
        let mut got = drain_all(&o, 100);
        got.sort_unstable();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert_eq!(ran.load(Ordering::SeqCst), 100);
        assert!(
            !readable(&o),
            "drained: the descriptor must not stay readable"
        );
        assert!(o.threads() <= 4);
    }

    #[test]
    fn the_descriptor_is_readable_while_a_tag_waits() {
        let o = Offload::new(1).unwrap();
        assert!(!readable(&o));
        o.spawn(7, || {}).unwrap();
        let start = Instant::now();
        while !readable(&o) {
            assert!(start.elapsed() < Duration::from_secs(20));
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut buf = [0u64; 1];
        assert_eq!(o.drain(&mut buf), 1);
        assert_eq!(buf[0], 7);
        assert!(!readable(&o));
    }

    /// A job finishing while `drain` runs must not leave the descriptor readable once its tag
    /// is taken: a level-triggered poller (poll, epoll without EPOLLET) would then spin on an
    /// empty pool forever. The drainer spins so that finishes land inside `drain` often.
    #[test]
    fn a_job_finishing_during_drain_leaves_no_stray_wakeup() {
        let o = Offload::new(1).unwrap();
        let mut buf = [0u64; 4];
        for round in 0..3000u64 {
            o.spawn(round, || {}).unwrap();
            let start = Instant::now();
            while o.drain(&mut buf) == 0 {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "job never finished"
                );
            }
            assert_eq!(buf[0], round);
            assert!(
                !readable(&o),
                "round {round}: the descriptor stayed readable with nothing to drain"
            );
        }
    }

    /// In a forked child, drain answers at once: a parent's worker may have held the lock of
    /// the finished tags at the fork, and no job of this pool ever finishes here.
    #[test]
    fn drain_in_a_forked_child_never_waits_for_the_parents_lock() {
        let o = Offload::new(1).unwrap();
        let hold = |held: &dyn Fn()| {
            let _guard = lock(&o.shared.done);
            held();
        };
        let answer = crate::fork::testing::in_child(Some(&hold), || {
            let mut buf = [0u64; 4];
            o.drain(&mut buf).to_string()
        });
        assert_eq!(answer.as_deref(), Ok("0"));
    }

    #[test]
    fn never_more_workers_than_the_bound() {
        let o = Offload::new(3).unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        for tag in 0..30 {
            let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
            o.spawn(tag, move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
                running.fetch_sub(1, Ordering::SeqCst);
            })
            .unwrap();
        }
        drain_all(&o, 30);
        assert!(peak.load(Ordering::SeqCst) <= 3);
        assert!(o.threads() <= 3);
    }

    #[test]
    fn a_panicking_job_is_still_reported() {
        let o = Offload::new(2).unwrap();
        o.spawn(1, || panic!("job panics")).unwrap();
        o.spawn(2, || {}).unwrap();
        let mut got = drain_all(&o, 2);
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
    }

    #[test]
    fn drop_runs_queued_jobs_and_waits_for_the_workers() {
        let o = Offload::new(1).unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        for tag in 0..5 {
            let ran = Arc::clone(&ran);
            o.spawn(tag, move || {
                std::thread::sleep(Duration::from_millis(5));
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
        let weak = Arc::downgrade(&o.shared);
        drop(o);
        assert_eq!(ran.load(Ordering::SeqCst), 5);
        // Every worker has left its loop; the last one may still be dropping its handle.
        let start = Instant::now();
        while weak.strong_count() > 0 {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "a worker never exited"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
