//! Time: the clock a hub reads, its timers, and the futures built on them.

mod clock;
mod sleep;
mod timers;

pub use self::clock::ManualClock;
pub use self::sleep::{Elapsed, Sleep, Timeout, sleep, sleep_until, timeout};

pub(crate) use self::clock::Clock;
pub(crate) use self::timers::{TimerKey, Timers};

/// The current time on the current hub's clock (the real time outside a
/// hub, or on a hub with the real clock).
pub fn now() -> std::time::Instant {
    crate::hub::with_current(|h| h.clock.now()).unwrap_or_else(std::time::Instant::now)
}
