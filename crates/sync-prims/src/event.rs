//! [`Event`]: a latched flag that threads block on and tasks await.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::sync::{Arc, AtomicU8, Ordering, Spin};
use crate::waitq::{self, NOTIFIED, Queue, Slot, WAITING, WaitQueue};

/// The flag is set.
const SET: u8 = 0b01;
/// The wait queue is non-empty: `set` must wake it.
const QUEUED: u8 = 0b10;

/// A latched flag, Python's `threading.Event`: [`set`](Event::set) wakes
/// every waiter, thread or task, and later waits return at once until
/// [`clear`](Event::clear).
///
/// A waiter returns only once the event was set after (or before) it began
/// waiting: a `set` immediately followed by `clear` still releases every
/// waiter queued at the time of the `set`, as in Python. A wait that has
/// only just begun (a thread's first microseconds of looking at the flag,
/// before it queues) may miss such a pulse and wait for the next `set`, as
/// a Python thread may that is still taking the event's inner lock.
///
/// # State word
///
/// | bits   | state                                           |
/// |--------|-------------------------------------------------|
/// | `0b00` | clear, nobody waiting                           |
/// | `0b10` | clear, waiters queued                           |
/// | `0b01` | set (nobody can be queued: they would return)   |
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use sync_prims::Event;
///
/// let ready = Arc::new(Event::new());
/// let waiter = {
///     let ready = ready.clone();
///     std::thread::spawn(move || {
///         ready.wait();
///         "woken"
///     })
/// };
/// ready.set();
/// assert_eq!(waiter.join().unwrap(), "woken");
/// assert!(ready.is_set());
/// ```
///
/// A task awaits the same event with [`wait_async`](Event::wait_async):
///
/// ```
/// use sync_prims::Event;
///
/// let done = Event::new();
/// done.set();
/// futures_executor::block_on(done.wait_async());
/// ```
pub struct Event {
    pub(crate) state: AtomicU8,
    pub(crate) waiters: WaitQueue,
}

impl Event {
    /// A new event, not set.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Event {
            state: AtomicU8::new(0),
            waiters: WaitQueue::new(),
        }
    }

    /// A new event, not set.
    #[cfg(loom)]
    pub fn new() -> Self {
        Event {
            state: AtomicU8::new(0),
            waiters: WaitQueue::new(),
        }
    }

    /// Sets the flag and wakes every waiter.
    ///
    /// Every waiter is woken even if a task's waker panics; the first such
    /// panic then reaches the caller, unless the thread is already
    /// unwinding (`set` called by a drop during a panic), where it is
    /// dropped rather than abort the process.
    pub fn set(&self) {
        // Nobody queued: set the flag, unless a waiter queues meanwhile.
        // The first exchange guesses the common state (clear, nobody
        // queued) rather than reading it: a waiter that cleared the flag
        // last holds its cache line, and a read first would fetch the line
        // once to read it and again to write it.
        let mut s = 0;
        while s & QUEUED == 0 {
            match self
                .state
                .compare_exchange_weak(s, s | SET, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(now) => s = now,
            }
        }
        self.set_and_wake_all();
    }

    /// Clears the flag: later waits block until the next [`set`](Event::set).
    pub fn clear(&self) {
        self.state.fetch_and(!SET, Ordering::AcqRel);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.state.load(Ordering::Acquire) & SET != 0
    }

    /// Blocks the current thread until the event is set.
    pub fn wait(&self) {
        let woken = self.wait_until(None);
        debug_assert!(woken, "a wait without deadline cannot time out");
    }

    /// Blocks for about `timeout` at most (a short spin of some
    /// microseconds comes first, whatever the timeout); true when the event
    /// was set (Python's return value), false only once the timeout passed
    /// with it unset.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        // A zero timeout only looks (no spinning, no queue).
        self.is_set()
            || (!timeout.is_zero() && self.wait_until(Instant::now().checked_add(timeout)))
    }

    /// Waits from an async task: the future resolves once the event is set,
    /// suspending the task (not the thread). Dropping it leaves the event
    /// consistent.
    pub fn wait_async(&self) -> EventWait<'_> {
        EventWait {
            event: self,
            slot: None,
        }
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let spin = Spin::new();
        loop {
            if self.is_set() {
                return true;
            }
            if !spin.spin() {
                break;
            }
        }
        let me = Slot::thread();
        if !self.queue(&mut self.waiters.lock(), &me) {
            return true;
        }
        if waitq::park_until(&me, deadline) == NOTIFIED {
            return true;
        }
        let mut q = self.waiters.lock();
        if waitq::cancel(&mut q, &me) == WAITING {
            self.dequeued(&q);
            drop(q);
            // Set between the deadline and here: report what is true now.
            self.is_set()
        } else {
            true
        }
    }

    /// With the queue locked: queues `slot` unless the event is set (false).
    fn queue(&self, q: &mut Queue<'_>, slot: &Arc<Slot>) -> bool {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & SET != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                s,
                s | QUEUED,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    waitq::push(q, slot, false);
                    return true;
                }
                Err(now) => s = now,
            }
        }
    }

    fn dequeued(&self, q: &Queue<'_>) {
        if q.is_empty() {
            self.state.fetch_and(!QUEUED, Ordering::Relaxed);
        }
    }

    /// Sets the flag with the queue locked, and wakes exactly the waiters
    /// queued before: a waiter queues only with the queue locked and the
    /// flag clear, so none can join between the flag and the wake-ups (were
    /// the flag set first, a `clear` and a new wait could slip in between,
    /// and that wait would return although the flag was never set during
    /// it).
    fn set_and_wake_all(&self) {
        let mut q = self.waiters.lock();
        // Every waiter is taken below: the queue is empty from here.
        self.state.swap(SET, Ordering::AcqRel);
        let mut woken = q.take_all();
        for slot in woken.iter() {
            waitq::mark(slot, NOTIFIED);
        }
        drop(q);
        // Every waiter is woken even if a task's waker panics, when woken
        // or when dropped with the last reference to its slot: a waiter
        // marked notified and never woken would wait for good. The first
        // panic goes on once all are woken, unless the thread is unwinding
        // already (a guard that sets the event as it drops).
        let mut panicked = None;
        for slot in woken.drain() {
            waitq::wake_catching(slot, &mut panicked);
        }
        if let Some(p) = panicked {
            waitq::pass_on(p);
        }
        // Give the queue its buffer back, so that the next set does not
        // allocate.
        self.waiters.lock().give_back(woken);
    }
}

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("is_set", &self.is_set())
            .finish_non_exhaustive()
    }
}

/// The future of [`Event::wait_async`].
#[must_use = "futures do nothing unless awaited"]
pub struct EventWait<'a> {
    event: &'a Event,
    /// Present once the future has queued.
    slot: Option<Arc<Slot>>,
}

impl EventWait<'_> {
    /// Leaves the queue if still in it.
    fn leave(&mut self) {
        if let Some(slot) = self.slot.take() {
            if slot.state() == WAITING {
                let mut q = self.event.waiters.lock();
                if waitq::cancel(&mut q, &slot) == WAITING {
                    self.event.dequeued(&q);
                }
            }
        }
    }
}

impl Future for EventWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let event = this.event;
        match &this.slot {
            Some(slot) => {
                if slot.state() == WAITING {
                    slot.set_waker(cx.waker());
                    if slot.state() == WAITING && !event.is_set() {
                        return Poll::Pending;
                    }
                }
                this.leave();
                Poll::Ready(())
            }
            None => {
                if event.is_set() {
                    return Poll::Ready(());
                }
                let slot = Slot::task(cx.waker());
                if event.queue(&mut event.waiters.lock(), &slot) {
                    this.slot = Some(slot);
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            }
        }
    }
}

impl Drop for EventWait<'_> {
    fn drop(&mut self) {
        self.leave();
    }
}

impl fmt::Debug for EventWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWait")
            .field("queued", &self.slot.is_some())
            .finish_non_exhaustive()
    }
}
