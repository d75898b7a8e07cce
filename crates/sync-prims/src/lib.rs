//! `Lock`, `Event` and `Thread` in the style of Python's `threading`
//! module, where one instance serves OS threads and async tasks alike.
//!
//! A thread blocks on [`Lock::acquire`] or [`Event::wait`]; a task awaits
//! [`Lock::acquire_async`] or [`Event::wait_async`], which suspend only the
//! task. Both kinds of waiter queue together on the same primitive and are
//! woken in turn, so a runtime's tasks and the plain threads around it can
//! share a lock or signal each other through an event without an adapter.
//!
//! | Python                        | here                                   |
//! |-------------------------------|----------------------------------------|
//! | `threading.Lock()`            | [`Lock::new(())`](Lock::new) (or `Lock::new(data)`) |
//! | `lock.acquire()` / `with lock`| [`Lock::acquire`] → [`LockGuard`]       |
//! | `lock.acquire(timeout=t)`     | [`Lock::acquire_timeout`]               |
//! | `lock.acquire(False)`         | [`Lock::try_acquire`]                   |
//! | `lock.release()`              | [`LockGuard::release`] (or drop)        |
//! | `lock.locked()`               | [`Lock::locked`]                        |
//! | `threading.Event()`           | [`Event::new`]                          |
//! | `set`/`clear`/`is_set`        | [`Event::set`]/[`Event::clear`]/[`Event::is_set`] |
//! | `event.wait(timeout)`         | [`Event::wait`], [`Event::wait_timeout`] |
//! | `threading.Thread(target=f)`  | [`Thread::spawn`], [`Thread::builder`]  |
//! | subclass with `run()`         | [`Run`] + [`Thread::start`]             |
//! | `t.join(timeout)`, `is_alive` | [`Thread::join_timeout`], [`Thread::is_alive`] |
//!
//! # Guarantees
//!
//! - No lost wake-ups and no spurious returns: a wait returns only once its
//!   condition held; a timed wait reports failure only after its timeout.
//! - Cancel safety: dropping a pending [`LockAcquire`](futures::LockAcquire) or
//!   [`EventWait`](futures::EventWait) leaves the primitive consistent, and a
//!   wake-up it had been given passes on to another waiter.
//! - Fairness: a lock waiter cannot starve. Waiters queue in order; once
//!   the head of the queue has waited for more than half a millisecond,
//!   the first release that finds it queued hands it the lock; a task
//!   waiter at the head, last polled on the releasing thread, is handed it
//!   at once (see [`Lock`]).
//!
//! # Example
//!
//! The lecture notes' two classics at once: threads adding to a total under
//! a lock, and a task waiting for an event that a thread sets.
//!
//! ```
//! use std::sync::Arc;
//! use sync_prims::{Event, Lock, Thread};
//!
//! let total = Arc::new(Lock::new(0u64));
//! let go = Arc::new(Event::new());
//! let workers: Vec<_> = (0..3)
//!     .map(|i| {
//!         let (total, go) = (total.clone(), go.clone());
//!         Thread::builder()
//!             .name(format!("adder-{i}"))
//!             .spawn(move || {
//!                 go.wait();
//!                 for _ in 0..1000 {
//!                     *total.acquire() += 1;
//!                 }
//!             })
//!             .unwrap()
//!     })
//!     .collect();
//! go.set();
//! futures_executor::block_on(async {
//!     go.wait_async().await; // already set: returns at once
//!     *total.acquire_async().await += 1;
//! });
//! for w in workers {
//!     w.join().unwrap();
//! }
//! assert_eq!(*total.acquire(), 3001);
//! ```

mod event;
mod lock;
mod sync;
mod thread;
mod waitq;

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(all(test, not(loom)))]
mod tests;

pub use event::Event;
pub use lock::{Lock, LockGuard};
pub use thread::{Builder, Panicked, Run, Thread};

/// The named futures returned by the `*_async` methods.
pub mod futures {
    pub use crate::event::EventWait;
    pub use crate::lock::LockAcquire;
}

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
