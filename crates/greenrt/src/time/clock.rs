//! Clock sources: the real one, and a manual one for tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::hub::HubShared;

/// The clock a hub reads.
#[derive(Debug, Clone, Default)]
pub(crate) enum Clock {
    /// `Instant::now()`.
    #[default]
    Real,
    /// A clock that moves only when told to.
    Manual(ManualClock),
}

impl Clock {
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        match self {
            Clock::Real => Instant::now(),
            Clock::Manual(m) => m.now(),
        }
    }

    /// No deadline computed from this clock precedes its origin.
    pub(crate) fn origin(&self) -> Instant {
        static REAL_ORIGIN: OnceLock<Instant> = OnceLock::new();
        match self {
            Clock::Real => *REAL_ORIGIN.get_or_init(Instant::now),
            Clock::Manual(m) => m.inner.base,
        }
    }

    /// A manual clock's reading, in nanoseconds since its origin.
    #[inline]
    pub(crate) fn manual_nanos(&self) -> Option<u64> {
        match self {
            Clock::Real => None,
            Clock::Manual(m) => Some(m.nanos()),
        }
    }

    pub(crate) fn is_manual(&self) -> bool {
        matches!(self, Clock::Manual(_))
    }

    pub(crate) fn auto_advance(&self) -> bool {
        matches!(self, Clock::Manual(m) if m.inner.auto)
    }

    pub(crate) fn advance_to(&self, t: Instant) {
        if let Clock::Manual(m) = self {
            m.advance_to(t);
        }
    }

    pub(crate) fn attach(&self, hub: &Arc<HubShared>) {
        if let Clock::Manual(m) = self {
            m.inner
                .hubs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Arc::downgrade(hub));
        }
    }

    pub(crate) fn detach(&self, hub: &Arc<HubShared>) {
        if let Clock::Manual(m) = self {
            let me = Arc::downgrade(hub);
            m.inner
                .hubs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|h| !h.ptr_eq(&me) && h.strong_count() > 0);
        }
    }
}

/// A clock for tests: time stands still until [`advance`](Self::advance)
/// moves it, so timer tests run instantly and in a fixed order.
///
/// Made with [`ManualClock::new`], a hub that has nothing to run jumps the
/// clock straight to its next timer (like a paused clock that skips idle
/// time), so `sleep(Duration::from_secs(3600))` returns at once with the
/// clock one hour later; not while a
/// [`spawn_blocking`](crate::spawn_blocking) job made on it runs, whose
/// time is real. A task waiting on a socket is waiting on real time too,
/// but the hub cannot tell: with a timer armed (a `timeout` around a
/// read), it jumps the clock to that timer rather than wait for the bytes,
/// and the read times out at once. Tests of sockets with timeouts use
/// [`ManualClock::without_auto_advance`], which never moves by
/// itself: only `advance`, from the test (any thread), moves it and wakes
/// the hubs that use it.
///
/// Give it to a runtime with
/// [`RuntimeBuilder::clock`](crate::RuntimeBuilder::clock). Auto-advance is
/// meant for one busy hub (the `block_on` thread's): an idle worker hub with
/// a timer moves the shared clock too, even while another hub still runs.
///
/// ```
/// use std::time::Duration;
/// use greenrt::time::ManualClock;
///
/// let clock = ManualClock::new();
/// let rt = greenrt::Runtime::builder().workers(1).clock(clock.clone()).build().unwrap();
/// rt.block_on(async {
///     greenrt::sleep(Duration::from_secs(3600)).await;
/// });
/// assert_eq!(clock.elapsed(), Duration::from_secs(3600));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Debug)]
struct ManualInner {
    base: Instant,
    /// Nanoseconds since `base`.
    offset: AtomicU64,
    auto: bool,
    hubs: Mutex<Vec<Weak<HubShared>>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl ManualClock {
    /// A manual clock that idle hubs advance to their next timer.
    pub fn new() -> Self {
        Self::with_auto(true)
    }

    /// A manual clock that only [`advance`](Self::advance) moves.
    pub fn without_auto_advance() -> Self {
        Self::with_auto(false)
    }

    fn with_auto(auto: bool) -> Self {
        ManualClock {
            inner: Arc::new(ManualInner {
                base: Instant::now(),
                offset: AtomicU64::new(0),
                auto,
                hubs: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The clock's current time.
    pub fn now(&self) -> Instant {
        self.inner.base + Duration::from_nanos(self.nanos())
    }

    /// How far the clock has moved since it was made.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.nanos())
    }

    /// Moves the clock forward by `d` and wakes the hubs that use it, which
    /// then fire the timers that came due. The clock stops about 584 years
    /// after it was made (`u64::MAX` nanoseconds), past which no timer is
    /// armed: a sleep that would end there never ends.
    pub fn advance(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .inner
            .offset
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |o| {
                Some(o.saturating_add(nanos))
            });
        self.wake_hubs();
    }

    /// Waits until every hub that uses this clock has done what was due at
    /// the clock's current time and sleeps (waiting for I/O, a wake-up or
    /// a later timer) with no [`spawn_blocking`](crate::spawn_blocking)
    /// job of its own running, for at most `limit` of real time; returns
    /// whether they all did.
    ///
    /// A test calls it after [`advance`](Self::advance), to know that the
    /// timers that came due have fired and the tasks they woke have run,
    /// before it looks at what they did or moves the clock again (two
    /// moves in a row may otherwise reach a hub as one). Work from outside
    /// the runtime that a hub has not yet been told of (bytes still on
    /// their way to a socket) is not seen: wait for it on the test's own
    /// terms first. Meant for [`ManualClock::without_auto_advance`]; a
    /// clock that advances by itself lets hubs sleep only once they have
    /// no timers left.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::time::Duration;
    /// use greenrt::time::ManualClock;
    ///
    /// let clock = ManualClock::without_auto_advance();
    /// let rt = greenrt::Runtime::builder().workers(1).clock(clock.clone()).build().unwrap();
    /// let rang = Arc::new(AtomicBool::new(false));
    /// let r = rang.clone();
    /// let _g = rt.spawn(async move {
    ///     greenrt::sleep(Duration::from_secs(5)).await;
    ///     r.store(true, Ordering::SeqCst);
    /// });
    /// assert!(clock.wait_until_idle(Duration::from_secs(30)));
    /// assert!(!rang.load(Ordering::SeqCst));
    /// clock.advance(Duration::from_secs(5));
    /// assert!(clock.wait_until_idle(Duration::from_secs(30)));
    /// assert!(rang.load(Ordering::SeqCst));
    /// ```
    pub fn wait_until_idle(&self, limit: Duration) -> bool {
        let start = Instant::now();
        loop {
            let now = self.nanos();
            if self.hubs().iter().all(|h| h.idle_at(now)) {
                return true;
            }
            if start.elapsed() >= limit {
                return false;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Moves the clock forward to `t` if it is behind (never back): hubs
    /// that advance it to their next timers at once do not add up their
    /// steps and overshoot.
    fn advance_to(&self, t: Instant) {
        let nanos = t.saturating_duration_since(self.inner.base).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        if self.inner.offset.fetch_max(nanos, Ordering::AcqRel) < nanos {
            self.wake_hubs();
        }
    }

    fn wake_hubs(&self) {
        for h in self.hubs() {
            h.unpark();
        }
    }

    /// Nanoseconds since the clock was made.
    fn nanos(&self) -> u64 {
        self.inner.offset.load(Ordering::Acquire)
    }

    /// The live hubs that use this clock (taken out of the lock, which
    /// their own threads take too).
    fn hubs(&self) -> Vec<Arc<HubShared>> {
        let hubs = self.inner.hubs.lock().unwrap_or_else(|e| e.into_inner());
        hubs.iter().filter_map(Weak::upgrade).collect()
    }
}
