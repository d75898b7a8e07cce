//! How an idle hub sleeps and how other threads wake it.
//!
//! A hub with nothing runnable calls [`Park::park`] once, with the time left
//! until its nearest timer as the timeout; another thread that schedules
//! work on the hub calls [`Unpark::unpark`]. Two drivers: the I/O
//! [`Reactor`], every hub's by default, whose `park` is one `mio` poll
//! (turning readiness into wake-ups before it returns), whose `unpark` is
//! the poll's waker, and where
//! [`Park::has_wake_sources`] reports registered sources so that the
//! deadlock diagnosis knows I/O may still wake a task (a busy hub calls
//! [`Park::poll_ready`] between rounds while the driver has sources); and
//! [`ThreadPark`], where the hub's thread parks, used under miri and when
//! the reactor cannot be made.

mod reactor;
mod registration;
mod thread;

pub(crate) use self::reactor::{IoShared, Reactor};
pub(crate) use self::registration::{Direction, HubStopped, Io};
pub(crate) use self::thread::ThreadPark;

use std::io;
use std::sync::Arc;
use std::time::Duration;

/// A hub's driver: the reactor when one can be made (sockets then work on
/// the hub), else a plain thread park.
pub(crate) struct Driver {
    pub(crate) park: Box<dyn Park>,
    pub(crate) io: Option<Arc<IoShared>>,
}

impl Driver {
    pub(crate) fn new() -> Driver {
        // miri cannot run a `mio` poll: its hubs park their thread instead.
        if cfg!(miri) {
            return Driver {
                park: Box::new(ThreadPark::new()),
                io: None,
            };
        }
        match Reactor::new() {
            Ok((reactor, io)) => Driver {
                park: Box::new(reactor),
                io: Some(io),
            },
            // Out of descriptors, say: the hub still runs tasks and timers;
            // creating a socket on it reports the problem.
            Err(_) => Driver {
                park: Box::new(ThreadPark::new()),
                io: None,
            },
        }
    }
}

/// The reactor of the current hub, for a socket being created.
pub(crate) fn current_io() -> io::Result<Arc<IoShared>> {
    match crate::hub::with_current(|h| h.shared().io.clone()) {
        Some(Some(io)) => Ok(io),
        Some(None) => Err(io::Error::other(
            "this hub has no reactor (the system refused to create an epoll/kqueue instance)",
        )),
        None => Err(io::Error::other(
            "greenrt sockets are created on a hub: inside greenrt::run, a Runtime, or a task",
        )),
    }
}

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
