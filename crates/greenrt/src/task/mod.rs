//! Tasks: the task cell, its `Greenlet` handle, and how tasks are spawned.

mod builder;
mod greenlet;
pub(crate) mod raw;
mod yield_now;

pub use self::builder::{Builder, TaskInfo, current, spawn, spawn_later};
pub use self::greenlet::{Greenlet, GreenletError};
pub use self::yield_now::{YieldNow, yield_now};

pub(crate) use self::greenlet::{DoneWait, Watch};
