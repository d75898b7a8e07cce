//! The synchronisation primitives this crate is built from, swapped for
//! loom's model-checked versions under `cfg(loom)`.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU8, AtomicU32, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom::thread;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::thread;

use std::time::Duration;

/// Hands out the numbers of [`thread_token`].
static NEXT_TOKEN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

#[cfg(not(loom))]
std::thread_local! {
    static TOKEN: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

#[cfg(loom)]
loom::thread_local! {
    static TOKEN: std::cell::Cell<u32> = std::cell::Cell::new(0);
}

/// A number for the current thread, never 0, that no other thread has
/// (unless four billion threads asked for one first, after which numbers
/// repeat: it serves a fairness rule, never soundness).
pub(crate) fn thread_token() -> u32 {
    TOKEN.with(|t| {
        let mut token = t.get();
        if token == 0 {
            token = NEXT_TOKEN
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .max(1);
            t.set(token);
        }
        token
    })
}

/// Locks `m`, ignoring poisoning: no code of this crate panics while it
/// holds one of its internal mutexes, so their data is always consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Parks the current thread for at most `d`.
#[cfg(not(loom))]
pub(crate) fn park_timeout(d: Duration) {
    std::thread::park_timeout(d);
}

/// loom has no timed park; models never use timeouts, so yielding keeps the
/// code compiling with the same shape.
#[cfg(loom)]
pub(crate) fn park_timeout(_d: Duration) {
    loom::thread::yield_now();
}

/// Spins a little before a waiter parks: a hand-off that arrives within
/// [`SPIN_FOR`] then costs no system call on either side (a futex wake of a
/// parked thread takes several microseconds, more when its core sleeps).
///
/// It only spins (pause instructions, in rounds that double up to sixteen
/// pauses, checking the clock between rounds) and never yields the thread:
/// on a loaded machine a `yield` can hand the core away for a whole time
/// slice, which costs far more than the park it was meant to save.
#[derive(Debug)]
pub(crate) struct Spin {
    #[cfg(not(loom))]
    step: std::cell::Cell<u32>,
    #[cfg(not(loom))]
    start: std::cell::Cell<Option<std::time::Instant>>,
}

/// How long a waiter spins before it parks.
#[cfg(not(loom))]
const SPIN_FOR: Duration = Duration::from_micros(20);

impl Spin {
    pub(crate) fn new() -> Self {
        Spin {
            #[cfg(not(loom))]
            step: std::cell::Cell::new(0),
            #[cfg(not(loom))]
            start: std::cell::Cell::new(None),
        }
    }

    /// Spins once more; false once the waiter should park instead.
    pub(crate) fn spin(&self) -> bool {
        #[cfg(not(loom))]
        {
            let step = self.step.get();
            if step >= 4 {
                // Past the first, short rounds: bounded by time.
                let now = std::time::Instant::now();
                match self.start.get() {
                    None => self.start.set(Some(now)),
                    Some(t) if now.duration_since(t) >= SPIN_FOR => return false,
                    Some(_) => {}
                }
            }
            for _ in 0..1u32 << step.min(4) {
                std::hint::spin_loop();
            }
            self.step.set(step + 1);
            true
        }
        #[cfg(loom)]
        {
            false
        }
    }
}
