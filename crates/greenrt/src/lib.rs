//! A gevent-style green-thread runtime on async/await.
//!
//! gevent's model, kept: a *hub* per thread runs many green tasks
//! ([`spawn`] returns a [`Greenlet`]), a task gives the hub to the others
//! only where it waits ([`sleep`], [`yield_now`], awaiting a greenlet or an
//! event), [`joinall`] waits for a set of tasks with a timeout and returns
//! the ones that finished, [`Greenlet::kill`] ends a task.
//!
//! gevent's two limits, removed: a [`Runtime`] runs one hub per core, so
//! green tasks use every core; and a monitor thread names the task that
//! hogs a hub (stall detection, on by default), while [`run`] says which
//! tasks are stuck when nothing can ever wake them (deadlock diagnosis,
//! gevent's `LoopExit`).
//!
//! ```
//! use std::time::Duration;
//! use greenrt::{joinall, sleep, spawn};
//!
//! greenrt::run(async {
//!     // As in the notes' gevent lesson: three tasks that sleep 1, 2 and 3 units.
//!     let tasks: Vec<_> = (1..=3u64)
//!         .map(|n| spawn(async move {
//!             sleep(Duration::from_millis(n * 5)).await;
//!             n
//!         }))
//!         .collect();
//!     // They sleep at the same time: joinall returns after ~15 ms, not 30.
//!     let finished = joinall(&tasks, None).await;
//!     assert_eq!(finished, [0, 1, 2]);
//!     let mut sum = 0;
//!     for t in tasks {
//!         sum += t.await.unwrap(); // gevent's g.get()
//!     }
//!     assert_eq!(sum, 6);
//! });
//! ```
//!
//! Tasks spawned on the current hub need not be `Send` (gevent code shares
//! state freely; here `Rc` and `RefCell` work); [`Runtime::spawn`] takes
//! `Send` tasks and spreads them over the hubs. A task's completion is a
//! [`sync_prims::Event`], so a plain thread can wait for a green task with
//! [`Greenlet::join_blocking`]. [`iwait`] is a [`coro`] async generator.

mod affinity;
mod blocking;
mod driver;
mod hub;
mod join;
mod monitor;
pub mod net;
mod runtime;
mod task;
#[cfg(test)]
mod test_util;
pub mod time;

pub use crate::blocking::{KEEP_ALIVE, MAX_BLOCKING_THREADS, spawn_blocking};
pub use crate::hub::deadlock::Deadlock;
pub use crate::join::{IWait, iwait, joinall, killall};
pub use crate::monitor::StallReport;
pub use crate::runtime::{Handle, MAX_WORKERS, Runtime, RuntimeBuilder, pinned_cpu, run, try_run};
pub use crate::task::{
    Builder, Greenlet, GreenletError, TaskInfo, current, spawn, spawn_later, yield_now,
};
pub use crate::time::{Elapsed, sleep, timeout};

/// The named future types returned by this crate's functions.
pub mod futures {
    pub use crate::task::YieldNow;
    pub use crate::time::{Sleep, Timeout};
}

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
