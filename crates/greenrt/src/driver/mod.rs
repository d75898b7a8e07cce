//! How an idle hub sleeps and how other threads wake it.
//!
//! A hub with nothing runnable calls [`Park::park`] once, with the time left
//! until its nearest timer as the timeout; another thread that schedules
//! work on the hub calls [`Unpark::unpark`]. Today the only driver is
//! [`ThreadPark`] (the hub's thread parks). The I/O reactor replaces it: its
//! `park` is one `polling` wait (turning readiness into wake-ups before it
//! returns), its `unpark` is the poller's notifier, and
//! [`Park::has_wake_sources`] reports registered sources so that the
//! deadlock diagnosis knows I/O may still wake a task. A busy hub calls
//! [`Park::poll_ready`] between rounds while the driver has sources.

mod thread;

pub(crate) use self::thread::ThreadPark;

use std::sync::Arc;
use std::time::Duration;

/// The blocking side of a hub's driver; owned by the hub's thread.
pub(crate) trait Park: Send + 'static {
    /// Blocks until [`Unpark::unpark`] is called (or was called since the
    /// last `park`), `timeout` passes, or (for a reactor) an event arrives.
    /// Spurious returns are allowed; `Some(Duration::ZERO)` only polls.
    fn park(&mut self, timeout: Option<Duration>);

    /// Turns events that are ready now into wake-ups, without blocking.
    /// Called between rounds while the hub stays busy (so that a hub that
    /// never idles still sees I/O); a driver without sources does nothing.
    fn poll_ready(&mut self) {}

    /// The handle other threads use to end a `park`.
    fn unparker(&self) -> Arc<dyn Unpark>;

    /// Whether something the driver watches could still wake a task (a
    /// reactor's registered sources). A hub whose driver says no, and that
    /// has no timers and nothing runnable, may be deadlocked.
    fn has_wake_sources(&self) -> bool {
        false
    }
}

/// The waking side of a hub's driver; shared with every thread.
pub(crate) trait Unpark: Send + Sync + 'static {
    /// Ends the current or next [`Park::park`] of the hub.
    fn unpark(&self);
}
