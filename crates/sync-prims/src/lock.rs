//! [`Lock`]: a mutual-exclusion lock that threads block on and tasks await.

use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::sync::{Arc, AtomicU8, Ordering, Spin};
use crate::waitq::{self, HANDOFF, NOTIFIED, Queue, Slot, WAITING, WaitQueue};

/// The lock is held.
const LOCKED: u8 = 0b01;
/// The wait queue is non-empty: releasing must take the slow path.
const QUEUED: u8 = 0b10;

/// A waiter queued this long is handed the lock directly at the next
/// release instead of competing for it (the fairness rule).
#[cfg(not(loom))]
pub(crate) const FAIR_AFTER: Duration = Duration::from_micros(500);

/// A mutual-exclusion lock, Python's `threading.Lock`, usable from OS
/// threads and async tasks at the same time.
///
/// A thread calls [`acquire`](Lock::acquire), which blocks it; a task awaits
/// [`acquire_async`](Lock::acquire_async), which suspends only the task. Both
/// wait in one FIFO queue and are woken in turn. The [`LockGuard`] releases
/// the lock when dropped (Python's `with lock:`) or by
/// [`LockGuard::release`] (Python's `lock.release()`). Like Python's Lock,
/// the guard is not tied to the thread that took it: it may be sent to
/// another thread, and held across an `.await` in a multi-threaded executor.
///
/// # State word
///
/// | bits     | state                                                  |
/// |----------|--------------------------------------------------------|
/// | `0b00`   | free, nobody waiting                                   |
/// | `0b01`   | held, nobody waiting: release is one compare-exchange  |
/// | `0b11`   | held, waiters queued: release wakes the queue's head   |
/// | `0b10`   | free, waiters queued (a woken waiter is on its way)    |
///
/// A panic while the guard is held releases the lock as the guard drops;
/// the lock is not poisoned (as in Python and `parking_lot`): the value is
/// what the panicking code left.
///
/// # Fairness
///
/// A released lock goes to whoever takes it first (a running thread may
/// take it back before a woken waiter is scheduled): that keeps throughput
/// high under contention. To stop a waiter from starving, the head of the
/// queue keeps its place when it loses such a race (a woken waiter that
/// finds the lock taken queues again at the front), and once it has waited
/// for more than half a millisecond the first release that finds it queued
/// hands the lock to it directly, without a race. Releases that happen
/// while it is awake and on its way back to the queue (a few microseconds)
/// do not see it. A task waiter last polled on the releasing thread is
/// handed the lock at once instead: on a single-threaded executor it
/// cannot come back before the code releasing suspends, and that code,
/// taking the lock back again and again without suspending, would keep it
/// from the task for good. (On a work-stealing executor it may be polled
/// elsewhere at once; the hand-off then only keeps others from taking the
/// lock first.) A future handed the lock owns it: a thread that keeps such
/// a future pending without polling it, and then blocks in
/// [`acquire`](Lock::acquire), waits for good.
///
/// A release whose waking of the head's waker panics passes that panic on
/// to the code releasing (the lock is released all the same). The head, if
/// only woken to compete, may never come for the lock: its wake-up goes on
/// to the next waiter. If it was handed the lock, it keeps it until its
/// future is polled or dropped.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use sync_prims::Lock;
///
/// let total = Arc::new(Lock::new(0));
/// let workers: Vec<_> = (0..4)
///     .map(|_| {
///         let total = total.clone();
///         std::thread::spawn(move || {
///             for _ in 0..1000 {
///                 *total.acquire() += 1;
///             }
///         })
///     })
///     .collect();
/// for w in workers {
///     w.join().unwrap();
/// }
/// assert_eq!(*total.acquire(), 4000);
/// ```
///
/// From a task, the same lock:
///
/// ```
/// use sync_prims::Lock;
///
/// let lock = Lock::new(Vec::new());
/// futures_executor::block_on(async {
///     let mut v = lock.acquire_async().await;
///     v.push(1);
///     v.release();
/// });
/// assert_eq!(lock.into_inner(), [1]);
/// ```
pub struct Lock<T: ?Sized = ()> {
    pub(crate) state: AtomicU8,
    pub(crate) waiters: WaitQueue,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `data` to one guard at a time (the
// LOCKED bit is set by exactly one successful compare-exchange and cleared
// only by that guard's release), so sharing a `Lock` between threads only
// ever moves the `T` between them: `T: Send` suffices, as for `Mutex`.
unsafe impl<T: ?Sized + Send> Sync for Lock<T> {}
// SAFETY: a `Lock` owns its `T`; sending the lock sends the value.
unsafe impl<T: ?Sized + Send> Send for Lock<T> {}

impl<T> Lock<T> {
    /// A new, unlocked lock holding `value`.
    #[cfg(not(loom))]
    pub const fn new(value: T) -> Self {
        Lock {
            state: AtomicU8::new(0),
            waiters: WaitQueue::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// A new, unlocked lock holding `value`.
    #[cfg(loom)]
    pub fn new(value: T) -> Self {
        Lock {
            state: AtomicU8::new(0),
            waiters: WaitQueue::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock, returning its value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Lock<T> {
    /// Takes the lock, blocking the current thread until it is free.
    ///
    /// Do not call this from an async task (it would block the executor's
    /// thread): use [`acquire_async`](Lock::acquire_async) there. Nor on a
    /// thread that holds a pending [`acquire_async`](Lock::acquire_async)
    /// future of this lock it will not poll meanwhile: a release may have
    /// handed the lock to that future (see the fairness rules on
    /// [`Lock`]).
    pub fn acquire(&self) -> LockGuard<'_, T> {
        if !self.try_lock_fast() {
            let took = self.lock_slow(None);
            debug_assert!(took, "an acquire without deadline cannot time out");
        }
        LockGuard::new(self)
    }

    /// Takes the lock if it is free right now.
    pub fn try_acquire(&self) -> Option<LockGuard<'_, T>> {
        self.try_lock().then(|| LockGuard::new(self))
    }

    /// Takes the lock, blocking for about `timeout` at most (a short spin of
    /// some microseconds comes first, whatever the timeout); `None` when it
    /// could not be taken in that time (it may have come free and been
    /// taken by another thread first).
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<LockGuard<'_, T>> {
        if self.try_lock_fast() {
            return Some(LockGuard::new(self));
        }
        if timeout.is_zero() {
            // Python's `acquire(timeout=0)`: one try, no spinning, no queue.
            return self.try_acquire();
        }
        // A timeout too large for `Instant` means "no deadline".
        let deadline = Instant::now().checked_add(timeout);
        self.lock_slow(deadline).then(|| LockGuard::new(self))
    }

    /// Takes the lock from an async task: the returned future resolves to
    /// the guard, suspending the task (not the thread) while it waits.
    ///
    /// Dropping the future before it completes is safe at any point: it
    /// leaves the queue, and a wake-up it had been given passes on to the
    /// next waiter (or, if it had been handed the lock, the lock is
    /// released). That drop then wakes a waiter as a release does, and
    /// like a release passes on a panic of that waiter's waker.
    pub fn acquire_async(&self) -> LockAcquire<'_, T> {
        LockAcquire {
            lock: self,
            slot: None,
        }
    }

    /// Whether the lock is held right now (Python's `lock.locked()`).
    pub fn locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCKED != 0
    }

    /// The value, through an exclusive borrow of the lock: no locking needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    fn try_lock_fast(&self) -> bool {
        self.state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Takes the lock whenever it is free, queued waiters or not.
    fn try_lock(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & LOCKED != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                s,
                s | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// With the queue locked: takes the lock if it is free, else queues `slot`.
    fn lock_or_queue(&self, q: &mut Queue<'_>, slot: &Arc<Slot>, front: bool) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let (new, order) = if s & LOCKED == 0 {
                (s | LOCKED, Ordering::Acquire)
            } else {
                (s | QUEUED, Ordering::Relaxed)
            };
            match self
                .state
                .compare_exchange_weak(s, new, order, Ordering::Relaxed)
            {
                Ok(_) if new & LOCKED != s & LOCKED => return true,
                Ok(_) => {
                    waitq::push(q, slot, front);
                    return false;
                }
                Err(now) => s = now,
            }
        }
    }

    /// With the queue locked, after taking a waiter off it: clears the
    /// QUEUED bit when the queue became empty.
    fn dequeued(&self, q: &Queue<'_>) {
        if q.is_empty() {
            self.state.fetch_and(!QUEUED, Ordering::Relaxed);
        }
    }

    /// Blocks until the lock is taken (true) or `deadline` passes (false).
    fn lock_slow(&self, deadline: Option<Instant>) -> bool {
        let mut spin = Spin::new();
        let mut slot: Option<Arc<Slot>> = None;
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s & LOCKED == 0 {
                if self.try_lock() {
                    return true;
                }
                continue;
            }
            if s & QUEUED == 0 && spin.spin() {
                continue;
            }
            let front = slot.is_some();
            let me = slot.get_or_insert_with(Slot::thread);
            if self.lock_or_queue(&mut self.waiters.lock(), me, front) {
                return true;
            }
            match waitq::park_until(me, deadline) {
                HANDOFF => return true,
                NOTIFIED => spin = Spin::new(),
                _ => {
                    // Timed out; the state is re-read under the queue lock.
                    let mut q = self.waiters.lock();
                    match waitq::cancel(&mut q, me) {
                        WAITING => {
                            self.dequeued(&q);
                            return false;
                        }
                        HANDOFF => return true,
                        _ => {
                            // Woken just as the deadline passed: the lock was
                            // released for us to take; if someone else took it,
                            // their release wakes the next waiter.
                            drop(q);
                            return self.try_lock();
                        }
                    }
                }
            }
        }
    }

    /// Releases the lock.
    fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_slow();
        }
    }

    fn unlock_slow(&self) {
        let mut q = self.waiters.lock();
        let Some(head) = q.pop_front() else {
            // The last waiter gave up between our failed exchange and here.
            self.state.fetch_and(!LOCKED, Ordering::Release);
            return;
        };
        let here = head.polled_here();
        #[cfg(loom)]
        if here {
            SAME_THREAD_HANDOFFS.with(|n| n.set(n.get() + 1));
        }
        let handoff = here || Self::be_fair(&head);
        if handoff {
            // The lock stays held: ownership moves to `head`, which has
            // waited long, or is a task of this very thread, which could
            // only come for the lock once the code releasing it suspends:
            // by then that code may have taken it back, again and again,
            // and a woken waiter left the queue, where the rule above
            // looks for it.
            self.dequeued(&q);
            waitq::mark(&head, HANDOFF);
        } else {
            let clear = if q.is_empty() {
                LOCKED | QUEUED
            } else {
                LOCKED
            };
            self.state.fetch_and(!clear, Ordering::Release);
            waitq::mark(&head, NOTIFIED);
        }
        drop(q);
        let mut caught = None;
        waitq::wake_catching(head, &mut caught);
        let Some(p) = caught else { return };
        if !handoff {
            // A waiter whose wake-up failed may never come for the lock:
            // the wake-up goes on to the next one, as when a woken waiter
            // gives up. One handed the lock keeps it: the guard its future
            // may still return is the only one.
            let next = catch_unwind(AssertUnwindSafe(|| self.pass_wake_up_on()));
            if let Err(q) = next {
                waitq::drop_payload(q);
            }
        }
        waitq::pass_on(p);
    }

    /// Wakes the next waiter for a woken one that will not come for the
    /// lock: taking and releasing the lock does it, and a lock taken back
    /// meanwhile wakes it when released.
    fn pass_wake_up_on(&self) {
        if self.try_lock() {
            self.unlock();
        }
    }

    #[cfg(not(loom))]
    fn be_fair(head: &Slot) -> bool {
        head.waited() >= FAIR_AFTER
    }

    /// Models hand off to a waiter that lost one race, so that both release
    /// paths are explored deterministically.
    #[cfg(loom)]
    fn be_fair(head: &Slot) -> bool {
        head.rounds() >= 1
    }
}

impl<T: Default> Default for Lock<T> {
    fn default() -> Self {
        Lock::new(T::default())
    }
}

impl<T> From<T> for Lock<T> {
    fn from(value: T) -> Self {
        Lock::new(value)
    }
}

/// Shows the value when the lock is free with nobody waiting, else
/// `<locked>`. A free lock with waiters is one being passed to them:
/// taking it and releasing it here would wake the next waiter, or hand it
/// the lock (a task of this thread, that is, which then holds it while
/// this thread goes on), so a debug print is left out of it.
impl<T: ?Sized + fmt::Debug> fmt::Debug for Lock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Lock");
        if self.try_lock_fast() {
            let guard = LockGuard::new(self);
            d.field("data", &&*guard);
            // A waiter that queued meanwhile is woken by this release, as
            // by any other; a panic of its waker is not the printer's.
            if let Err(p) = catch_unwind(AssertUnwindSafe(move || drop(guard))) {
                waitq::drop_payload(p);
            }
        } else {
            d.field("data", &format_args!("<locked>"));
        }
        d.finish_non_exhaustive()
    }
}

/// Access to a [`Lock`]'s value; the lock is released when the guard is
/// dropped or [`released`](LockGuard::release).
///
/// A release that wakes a task whose waker panics passes that panic on to
/// the releaser, the lock already given up; unless the guard is dropped by
/// a panic, where the waker's panic is dropped rather than abort the
/// process.
///
/// `Send` when `T: Send`: the guard may be released on another thread than
/// the one that acquired it, as Python's Lock allows.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a, T: ?Sized> {
    lock: &'a Lock<T>,
    /// Sharing a guard shares `&T`, so the guard is `Sync` only for `T: Sync`.
    _marker: PhantomData<&'a mut T>,
}

impl<'a, T: ?Sized> LockGuard<'a, T> {
    fn new(lock: &'a Lock<T>) -> Self {
        LockGuard {
            lock,
            _marker: PhantomData,
        }
    }

    /// Releases the lock now (Python's `lock.release()`).
    pub fn release(self) {
        drop(self);
    }
}

impl<T: ?Sized> Deref for LockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a guard exists only while its lock is held (it is created
        // right after the LOCKED bit was taken and clears it on drop), so no
        // other reference to the data exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for LockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only borrow
        // through this guard.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for LockGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for LockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for LockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

#[cfg(loom)]
std::thread_local! {
    /// Times a task took the lock handed to it (models only: they check
    /// that the path is explored). Per OS thread, which is the test's:
    /// loom runs a model's threads on the thread that calls it.
    pub(crate) static TASK_HANDOFFS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Times a release handed the lock to a task of its own thread
    /// (models only, as above).
    pub(crate) static SAME_THREAD_HANDOFFS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The future of [`Lock::acquire_async`].
///
/// Dropping it gives up its place in the queue, and passes on a wake-up
/// or the lock itself if either reached it first. Leaking it instead
/// (`mem::forget`) after it queued leaves its place taken: a release may
/// hand the lock to it, and the lock then stays held for good.
#[must_use = "futures do nothing unless awaited"]
pub struct LockAcquire<'a, T: ?Sized> {
    lock: &'a Lock<T>,
    /// Present once the future has queued.
    slot: Option<Arc<Slot>>,
}

impl<'a, T: ?Sized> Future for LockAcquire<'a, T> {
    type Output = LockGuard<'a, T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LockGuard<'a, T>> {
        let this = self.get_mut();
        let lock = this.lock;
        if let Some(slot) = &this.slot {
            let mut state = slot.state();
            if state == WAITING {
                slot.set_waker(cx.waker());
                state = slot.state();
            }
            match state {
                WAITING => return Poll::Pending,
                HANDOFF => {
                    #[cfg(loom)]
                    TASK_HANDOFFS.with(|n| n.set(n.get() + 1));
                    this.slot = None;
                    return Poll::Ready(LockGuard::new(lock));
                }
                _ => {} // NOTIFIED: compete for the lock below.
            }
        } else if lock.try_lock_fast() {
            return Poll::Ready(LockGuard::new(lock));
        }
        if lock.try_lock() {
            this.slot = None;
            return Poll::Ready(LockGuard::new(lock));
        }
        let front = this.slot.is_some();
        let slot = this
            .slot
            .get_or_insert_with(|| Slot::task_on_this_thread(cx.waker()));
        if front {
            slot.set_waker(cx.waker());
        }
        if lock.lock_or_queue(&mut lock.waiters.lock(), slot, front) {
            this.slot = None;
            return Poll::Ready(LockGuard::new(lock));
        }
        Poll::Pending
    }
}

impl<T: ?Sized> Drop for LockAcquire<'_, T> {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else { return };
        let lock = self.lock;
        let mut q = lock.waiters.lock();
        match waitq::cancel(&mut q, &slot) {
            WAITING => lock.dequeued(&q),
            HANDOFF => {
                // We were made the owner: release to the next waiter.
                drop(q);
                lock.unlock();
            }
            _ => {
                // We were woken to take the lock: pass the wake-up on.
                drop(q);
                lock.pass_wake_up_on();
            }
        }
    }
}

impl<T: ?Sized> fmt::Debug for LockAcquire<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockAcquire")
            .field("queued", &self.slot.is_some())
            .finish_non_exhaustive()
    }
}
