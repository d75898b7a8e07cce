//! The queue of waiters shared by [`Lock`](crate::Lock) and
//! [`Event`](crate::Event): OS threads and async tasks in one FIFO.
//!
//! Every waiter owns a [`Slot`], shared with the queue through an `Arc`. The
//! slot's state moves only while the queue's mutex is held, so a waiter that
//! gives up (a timeout, a dropped future) can tell under that mutex whether it
//! was already picked:
//!
//! | state      | meaning                                                      |
//! |------------|--------------------------------------------------------------|
//! | `WAITING`  | in the queue, not picked yet                                 |
//! | `NOTIFIED` | taken off the queue and woken; must act (retry or pass on)   |
//! | `HANDOFF`  | taken off the queue and handed the lock: it is now the owner |
//!
//! Wake-ups (`Thread::unpark`, `Waker::wake`) run after the mutex is
//! released, so a waker that re-enters the primitive cannot deadlock.

use std::collections::VecDeque;
use std::task::Waker;
use std::time::Instant;

#[cfg(loom)]
use crate::sync::AtomicU32;
use crate::sync::{Arc, AtomicU8, Mutex, MutexGuard, Ordering, lock, thread};

pub(crate) const WAITING: u8 = 0;
pub(crate) const NOTIFIED: u8 = 1;
pub(crate) const HANDOFF: u8 = 2;

/// One waiter's record.
#[derive(Debug)]
pub(crate) struct Slot {
    state: AtomicU8,
    /// Times this waiter was woken to compete for a lock (models only).
    #[cfg(loom)]
    rounds: AtomicU32,
    /// When the waiter first queued; kept across re-queueing (fairness).
    #[cfg(not(loom))]
    since: Instant,
    waiter: Waiter,
}

#[derive(Debug)]
enum Waiter {
    Thread(thread::Thread),
    Task(Mutex<Waker>),
}

impl Slot {
    /// A slot for the current thread.
    pub(crate) fn thread() -> Arc<Slot> {
        Arc::new(Slot::with(Waiter::Thread(thread::current())))
    }

    /// A slot for a task woken through `waker`.
    pub(crate) fn task(waker: &Waker) -> Arc<Slot> {
        Arc::new(Slot::with(Waiter::Task(Mutex::new(waker.clone()))))
    }

    fn with(waiter: Waiter) -> Slot {
        Slot {
            state: AtomicU8::new(WAITING),
            #[cfg(loom)]
            rounds: AtomicU32::new(0),
            #[cfg(not(loom))]
            since: Instant::now(),
            waiter,
        }
    }

    /// The slot's state; `Acquire` pairs with the notifier's `Release`, so a
    /// waiter that sees `HANDOFF` also sees the data the previous owner wrote.
    pub(crate) fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// How long ago the waiter first queued.
    #[cfg(not(loom))]
    pub(crate) fn waited(&self) -> std::time::Duration {
        self.since.elapsed()
    }

    /// Times this waiter was woken to compete for the lock.
    #[cfg(loom)]
    pub(crate) fn rounds(&self) -> u32 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Replaces a task's waker when the future is polled with another one.
    /// The caller re-reads [`Slot::state`] afterwards: a notifier wakes the
    /// waker it finds after setting the state, so one of the two sees the other.
    pub(crate) fn set_waker(&self, waker: &Waker) {
        if let Waiter::Task(w) = &self.waiter {
            let mut w = lock(w);
            if !w.will_wake(waker) {
                w.clone_from(waker);
            }
        }
    }

    fn wake(&self) {
        match &self.waiter {
            Waiter::Thread(t) => t.unpark(),
            // Woken outside the lock: a waker that polls its task at once
            // may reach `set_waker`, which takes it.
            Waiter::Task(w) => {
                let waker = lock(w).clone();
                waker.wake();
            }
        }
    }
}

/// The FIFO of waiters. The primitive keeps a "queued" bit in its own state
/// word that is set exactly while this queue is non-empty (both change only
/// under this mutex), so its fast paths never touch the mutex.
#[derive(Debug, Default)]
pub(crate) struct WaitQueue {
    q: Mutex<VecDeque<Arc<Slot>>>,
}

/// The queue, locked.
pub(crate) type Queue<'a> = MutexGuard<'a, VecDeque<Arc<Slot>>>;

impl WaitQueue {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        WaitQueue {
            q: Mutex::new(VecDeque::new()),
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        WaitQueue {
            q: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn lock(&self) -> Queue<'_> {
        lock(&self.q)
    }
}

/// Queues `slot` (at the back, or at the front when it is re-queueing after
/// losing a race, so that it keeps its place) with its state reset.
pub(crate) fn push(q: &mut Queue<'_>, slot: &Arc<Slot>, front: bool) {
    slot.state.store(WAITING, Ordering::Relaxed);
    if front {
        q.push_front(slot.clone());
    } else {
        q.push_back(slot.clone());
    }
}

/// Takes `slot` off the queue if it is still waiting there; returns its state
/// as seen under the queue's lock.
pub(crate) fn cancel(q: &mut Queue<'_>, slot: &Arc<Slot>) -> u8 {
    let state = slot.state.load(Ordering::Acquire);
    if state == WAITING {
        if let Some(i) = q.iter().position(|s| Arc::ptr_eq(s, slot)) {
            q.remove(i);
        }
    }
    state
}

/// Marks a slot taken off the queue as `state` (`NOTIFIED` or `HANDOFF`).
/// The caller wakes it with [`wake`] once the queue's lock is released.
pub(crate) fn mark(slot: &Slot, state: u8) {
    #[cfg(loom)]
    if state == NOTIFIED {
        slot.rounds.fetch_add(1, Ordering::Relaxed);
    }
    slot.state.store(state, Ordering::Release);
}

/// Wakes a slot that [`mark`] picked.
pub(crate) fn wake(slot: &Slot) {
    slot.wake();
}

/// Blocks the current thread until `slot` leaves `WAITING`, or until
/// `deadline`; returns the state seen last (still `WAITING` on timeout).
pub(crate) fn park_until(slot: &Slot, deadline: Option<Instant>) -> u8 {
    loop {
        let state = slot.state();
        if state != WAITING {
            return state;
        }
        match deadline {
            None => thread::park(),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return WAITING;
                }
                crate::sync::park_timeout(d - now);
            }
        }
    }
}
