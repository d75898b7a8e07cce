//! Shared helpers for the cross-crate tests in this folder.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// A waker that counts how often it was woken, for polling futures by hand.
#[derive(Debug, Default)]
pub struct CountingWaker {
    wakes: AtomicUsize,
}

impl CountingWaker {
    /// A new counter and the [`Waker`] that feeds it.
    pub fn new() -> (Arc<CountingWaker>, Waker) {
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(counter.clone());
        (counter, waker)
    }

    /// How many times the waker was woken so far.
    pub fn wakes(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

/// The CPUs the calling thread may run on, in order, from
/// `/proc/thread-self/status` (Linux); `None` where that cannot be read.
pub fn thread_cpus() -> Option<Vec<usize>> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?
        .trim()
        .to_owned();
    let mut cpus = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().ok()?..=b.parse::<usize>().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

/// Pins the calling thread to `cpu` (Linux).
#[cfg(target_os = "linux")]
pub fn pin_to(cpu: usize) {
    assert!(cpu < libc::CPU_SETSIZE as usize);
    // SAFETY: all-zero is a valid `cpu_set_t` (the empty set).
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below `CPU_SETSIZE` (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid `cpu_set_t` of the size passed, only read;
    // pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(rc, 0, "cannot pin to CPU {cpu}");
}

/// Polls `wait` once with the task's own context; whether it was pending.
/// A waiting future is queued on what it waits for by its first poll, so a
/// task that then signals "queued" can only be ended by a wake-up.
pub async fn pending_once<F: Future>(mut wait: Pin<&mut F>) -> bool {
    std::future::poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx).is_pending())).await
}

/// How long a test waits for a task that must finish: far beyond any run,
/// so that a hang fails with a message instead of waiting for good.
pub const BOUND: Duration = Duration::from_secs(60);

/// The result of `g`, a task that must finish within [`BOUND`].
#[track_caller]
pub fn finished<T>(g: greenrt::Greenlet<T>) -> Result<T, greenrt::GreenletError> {
    assert!(
        g.join_timeout_blocking(BOUND),
        "a task did not finish within {BOUND:?}"
    );
    g.get_blocking().expect("nothing took the result before")
}

/// The calling thread's id in the kernel (Linux; 0 elsewhere), for
/// [`wait_until_asleep`].
pub fn thread_id() -> i32 {
    #[cfg(target_os = "linux")]
    // SAFETY: `gettid` has no preconditions and cannot fail.
    return unsafe { libc::gettid() };
    #[cfg(not(target_os = "linux"))]
    return 0;
}

/// Waits until thread `tid` of this process sleeps in the kernel (state
/// `S` in `/proc/self/task/TID/stat`), for `limit` at most; whether it
/// does. A thread that sends its id and then blocks in a wait is, once
/// asleep, almost surely queued in that wait: sync-prims spins (it never
/// sleeps) on its queues' locks, and only a contended lock of the
/// allocator on the way could put it to sleep first (the test then covers
/// less, but does not fail). Where there is no `/proc` to look in (not Linux), it
/// cannot tell, and says yes at once: a test then runs as if the thread
/// had queued, which it may not have yet.
pub fn wait_until_asleep(tid: i32, limit: Duration) -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    let path = format!("/proc/self/task/{tid}/stat");
    let deadline = Instant::now() + limit;
    loop {
        // The state is the first field after the command name, which is
        // in parentheses and may itself hold spaces or parentheses.
        let stat = std::fs::read_to_string(&path).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        if state == Some('S') {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::yield_now();
    }
}

#[cfg(all(test, target_os = "linux"))]
mod helper_tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc;

    #[test]
    fn a_spinning_thread_is_not_asleep_and_a_waiting_one_is() {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let spinner = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                tx.send(thread_id()).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        };
        let tid = rx.recv().unwrap();
        assert!(!wait_until_asleep(tid, Duration::from_millis(50)));
        stop.store(true, Ordering::Relaxed);
        spinner.join().unwrap();

        let (tx, rx) = mpsc::channel::<()>();
        let (tid_tx, tid_rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            tid_tx.send(thread_id()).unwrap();
            rx.recv()
        });
        let tid = tid_rx.recv().unwrap();
        assert!(wait_until_asleep(tid, Duration::from_secs(60)));
        tx.send(()).unwrap();
        assert_eq!(waiter.join().unwrap(), Ok(()));
    }
}
