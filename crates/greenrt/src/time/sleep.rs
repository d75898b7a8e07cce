//! `sleep`, `timeout`: gevent's `sleep(d)` and `Timeout`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::hub::{HubShared, with_current};
use crate::time::TimerKey;

/// Waits until `duration` has passed on the current hub's clock: gevent's
/// `sleep(d)`. Only the calling task waits; the hub runs the others.
///
/// The deadline is fixed when `sleep` is called. Called outside a hub
/// (say, for the argument of [`Runtime::block_on`](crate::Runtime::block_on)),
/// the sleep counts on the real clock, unless a hub with a
/// [`ManualClock`](crate::time::ManualClock) polls it first: its duration
/// then counts from that clock's time at that poll. A sleep whose deadline
/// has passed when it is first polled (`sleep(Duration::ZERO)`, as
/// gevent's `sleep(0)`) still lets the others run once, as
/// [`yield_now`](crate::yield_now) does, before it ends. A duration too
/// long for the clock to hold a deadline (`Duration::MAX`) never ends
/// and arms no timer: a hub left with nothing else to wait for reports a
/// [`Deadlock`](crate::Deadlock) rather than wait for good. Outside a
/// hub (in another executor) the wait still works, on a helper thread
/// per sleep.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let t = Instant::now();
/// greenrt::run(greenrt::sleep(Duration::from_millis(10)));
/// assert!(t.elapsed() >= Duration::from_millis(10));
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    let (now, on_hub) = match with_current(|h| h.clock.now()) {
        Some(now) => (now, true),
        None => (Instant::now(), false),
    };
    let (deadline, reg) = ends(now, duration);
    Sleep {
        deadline,
        reg,
        rebase: (!on_hub).then_some(duration),
    }
}

/// The deadline `duration` after `now`, and the registration a sleep
/// starts with: none yet, or never, for a deadline the clock cannot hold
/// (reported 30 years on).
fn ends(now: Instant, duration: Duration) -> (Instant, Reg) {
    match now.checked_add(duration) {
        Some(deadline) => (deadline, Reg::None),
        None => (now + NEVER_REPORTED, Reg::Never),
    }
}

/// What [`Sleep::deadline`] reports, from the sleep's start, for a sleep
/// that never ends: no timer is armed for it.
const NEVER_REPORTED: Duration = Duration::from_secs(86400 * 365 * 30);

/// Waits until `deadline` on the current hub's clock.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        reg: Reg::None,
        rebase: None,
    }
}

/// The future of [`sleep`] and [`sleep_until`].
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    reg: Reg,
    /// Made by `sleep(d)` outside a hub: `d`, until the first poll, which
    /// on a hub with a manual clock counts it from that clock's time (the
    /// real time the deadline was read from means nothing there).
    rebase: Option<Duration>,
}

enum Reg {
    None,
    /// Found past its deadline at its first poll, and yielded once.
    Yielded,
    /// A deadline the clock cannot hold: never ends, arms nothing.
    Never,
    /// Armed on the hub `uid`.
    Hub {
        uid: u32,
        hub: Weak<HubShared>,
        key: TimerKey,
    },
    /// Armed on a helper thread (outside any hub).
    Thread(Box<HelperSleep>),
}

/// A sleep outside any hub: a helper thread wakes the task at the deadline.
struct HelperSleep {
    state: Arc<Mutex<HelperState>>,
    thread: std::thread::JoinHandle<()>,
}

/// What a sleep outside any hub shares with its helper thread.
#[derive(Default)]
struct HelperState {
    /// The deadline passed.
    fired: bool,
    /// The waker to wake then.
    waker: Option<Waker>,
    /// The sleep was dropped or reset: the helper leaves at once.
    cancelled: bool,
}

impl Sleep {
    /// When the sleep ends (30 years on, for a sleep that never ends). A
    /// sleep made outside a hub reports its deadline on the real clock
    /// until a hub with a manual clock first polls it.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline (gevent's `Timeout.start` again); the sleep is
    /// re-armed at its next poll.
    pub fn reset(&mut self, deadline: Instant) {
        self.cancel();
        self.deadline = deadline;
        self.rebase = None;
    }

    fn cancel(&mut self) {
        let reg = std::mem::replace(&mut self.reg, Reg::None);
        if let Reg::Thread(h) = reg {
            // Told to leave, and woken from its wait: no thread outlives
            // its sleep (a cancelled hour-long timeout would otherwise keep
            // one for the hour).
            h.state.lock().unwrap_or_else(|e| e.into_inner()).cancelled = true;
            // The helper itself may drop the sleep, from its wake-up (a
            // waker that drops the task it wakes): it is about to end, and
            // cannot wait for itself.
            if h.thread.thread().id() != std::thread::current().id() {
                h.thread.thread().unpark();
                drop(h.thread.join());
            }
            return;
        }
        if let Reg::Hub { uid, hub, key } = reg {
            let here = with_current(|h| {
                let here = h.shared().uid == uid;
                if here {
                    // Dropped after the borrow (see `Timers::cancel`).
                    let waker = h.timers.borrow_mut().cancel(key);
                    drop(waker);
                }
                here
            });
            if here != Some(true) {
                // Dropped or moved on another thread: its hub cancels it
                // (an entry left to its deadline would hold the task's
                // waker, and keep the hub from ever finding a deadlock).
                if let Some(hub) = hub.upgrade() {
                    hub.cancel_timer(key);
                }
            }
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(d) = self.rebase.take() {
            if let Some(Some(now)) = with_current(|h| h.clock.is_manual().then(|| h.clock.now())) {
                (self.deadline, self.reg) = ends(now, d);
            }
        }
        let deadline = self.deadline;
        let this = &mut *self;
        match this.reg {
            Reg::Never => return Poll::Pending,
            Reg::Yielded => {
                this.reg = Reg::None;
                return Poll::Ready(());
            }
            _ => {}
        }
        let on_hub = with_current(|h| {
            let uid = h.shared().uid;
            match this.reg {
                Reg::Hub { uid: u, key, .. } if u == uid => {
                    let mut timers = h.timers.borrow_mut();
                    if timers.contains(key) {
                        let replaced = timers.set_waker(key, cx.waker());
                        // Dropped after the borrow (see `Timers::set_waker`).
                        drop(timers);
                        drop(replaced);
                        return Poll::Pending;
                    }
                    this.reg = Reg::None;
                    Poll::Ready(())
                }
                _ => {
                    // Armed on another hub before: that timer goes. Polled
                    // outside any hub before: the hub's timer takes over,
                    // and the helper thread leaves now rather than at the
                    // deadline.
                    this.cancel();
                    if h.clock.now() >= deadline {
                        return this.yield_once(cx);
                    }
                    let mut timers = h.timers.borrow_mut();
                    if !timers.holds(deadline) {
                        // Past what the clock can count to (a manual
                        // clock moved centuries on, say): never.
                        this.reg = Reg::Never;
                        return Poll::Pending;
                    }
                    let key = timers.insert(deadline, cx.waker().clone());
                    drop(timers);
                    this.reg = Reg::Hub {
                        uid,
                        hub: Arc::downgrade(h.shared()),
                        key,
                    };
                    Poll::Pending
                }
            }
        });
        match on_hub {
            Some(p) => p,
            None => self.poll_thread(cx),
        }
    }
}

impl Sleep {
    /// A sleep past its deadline at its first poll: lets the others run
    /// once, and ends at the next poll.
    fn yield_once(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.reg = Reg::Yielded;
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn poll_thread(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return match self.reg {
                // Armed before: its wait is over.
                Reg::Thread(_) | Reg::Hub { .. } => Poll::Ready(()),
                _ => self.yield_once(cx),
            };
        }
        match &self.reg {
            Reg::Thread(h) => {
                let mut g = h.state.lock().unwrap_or_else(|e| e.into_inner());
                if g.fired {
                    return Poll::Ready(());
                }
                g.waker = Some(cx.waker().clone());
                Poll::Pending
            }
            _ => {
                // Armed on a hub before: that hub's timer goes.
                self.cancel();
                let state = Arc::new(Mutex::new(HelperState {
                    waker: Some(cx.waker().clone()),
                    ..HelperState::default()
                }));
                let s = state.clone();
                let deadline = self.deadline;
                let placement = crate::affinity::for_helper();
                let spawned = std::thread::Builder::new()
                    .name("greenrt-sleep".into())
                    .spawn(move || {
                        crate::affinity::apply(placement);
                        loop {
                            if s.lock().unwrap_or_else(|e| e.into_inner()).cancelled {
                                return;
                            }
                            let now = Instant::now();
                            if now >= deadline {
                                break;
                            }
                            // Unparked early when the sleep is cancelled.
                            std::thread::park_timeout(deadline - now);
                        }
                        let w = {
                            let mut g = s.lock().unwrap_or_else(|e| e.into_inner());
                            g.fired = true;
                            g.waker.take()
                        };
                        if let Some(w) = w {
                            w.wake();
                        }
                    });
                match spawned {
                    Ok(thread) => {
                        self.reg = Reg::Thread(Box::new(HelperSleep { state, thread }));
                        Poll::Pending
                    }
                    Err(_) => without_helper(self.deadline, cx),
                }
            }
        }
    }
}

/// How long a sleep polled outside a hub, when no helper thread can be
/// made, blocks its executor per poll.
const SLICE: Duration = Duration::from_millis(1);

/// A poll of a sleep outside a hub when no helper thread can be made: it
/// waits on the polling thread, a [`SLICE`] at a time, and lets the
/// executor poll again (the other side of a `timeout` may be ready
/// first), rather than hold it for the whole sleep.
fn without_helper(deadline: Instant, cx: &mut Context<'_>) -> Poll<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    std::thread::sleep(left.min(SLICE));
    if Instant::now() >= deadline {
        return Poll::Ready(());
    }
    cx.waker().wake_by_ref();
    Poll::Pending
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// The deadline of [`timeout`] passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// Runs `future` with a deadline: gevent's `Timeout`. Returns its output,
/// or [`Elapsed`] if `duration` passes first; the future is then dropped,
/// its destructors run, before `Elapsed` is returned (also when the
/// [`Timeout`] itself is kept, as in a `select` loop; polled again, it
/// returns `Elapsed` again).
///
/// ```
/// use std::time::Duration;
/// use greenrt::{sleep, timeout};
///
/// greenrt::run(async {
///     assert_eq!(timeout(Duration::from_secs(5), async { 7 }).await, Ok(7));
///     assert!(timeout(Duration::from_millis(1), sleep(Duration::from_secs(60))).await.is_err());
/// });
/// ```
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future: Some(future),
        sleep: sleep(duration),
    }
}

/// The future of [`timeout`].
#[must_use = "futures do nothing unless awaited"]
pub struct Timeout<F> {
    /// `None` once the deadline elapsed.
    future: Option<F>,
    sleep: Sleep,
}

impl<F> Timeout<F> {
    /// The wrapped future; `None` once the deadline elapsed (it was
    /// dropped then).
    pub fn into_inner(self) -> Option<F> {
        // `Timeout` has no destructor of its own: moving out is fine.
        self.future
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of `future`: it is never moved out of a
        // pinned `Timeout` (`into_inner` takes `self` by value, which needs
        // `Unpin` once pinned), only dropped in place (below), and
        // `Timeout` has no `Drop` impl.
        let this = unsafe { self.get_unchecked_mut() };
        let Some(future) = this.future.as_mut() else {
            return Poll::Ready(Err(Elapsed(())));
        };
        // SAFETY: see above; `future` stays where it is until it is
        // dropped.
        let fut = unsafe { Pin::new_unchecked(future) };
        if let Poll::Ready(v) = fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(&mut this.sleep).poll(cx) {
            Poll::Ready(()) => {
                // Dropped where it lies, as pinning allows.
                this.future = None;
                Poll::Ready(Err(Elapsed(())))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("deadline", &self.sleep.deadline)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::flag;

    #[test]
    fn without_a_helper_thread_a_sleep_holds_its_executor_a_slice_at_a_time() {
        // On a thread of its own: a poll that held it for the whole hour
        // fails the test instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (woken, waker) = flag();
            let mut cx = Context::from_waker(&waker);
            let hour = without_helper(Instant::now() + Duration::from_secs(3600), &mut cx);
            let past = without_helper(Instant::now(), &mut cx);
            let _ = tx.send((hour.is_pending(), woken.woken(), past));
        });
        let (pending, woken, past) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a poll held its executor for the whole sleep");
        assert!(pending && woken, "pending, and polled again");
        assert_eq!(past, Poll::Ready(()));
    }
}
