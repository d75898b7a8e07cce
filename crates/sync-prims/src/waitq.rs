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
//!
//! The queue is a [`Fifo`]: a waiter that gives up leaves it in O(1), however
//! many wait (a server's connections all wait on one shutdown event, and
//! each leaves it when it closes).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::AtomicU32 as AtomicU32Std;
use std::task::Waker;
use std::time::Instant;

use crate::sync::{Arc, AtomicU8, AtomicU32, Mutex, MutexGuard, Ordering, lock, thread};

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
    /// When the waiter first queued ([`now_nanos`]); kept across
    /// re-queueing (fairness). Eight bytes rather than an `Instant`'s
    /// sixteen: a slot is allocated for every waiting task.
    #[cfg(not(loom))]
    since: u64,
    /// For a `Lock`'s task waiter, the [`thread_token`] of the thread that
    /// last polled it (see [`Slot::polled_here`]); 0 otherwise.
    ///
    /// [`thread_token`]: crate::sync::thread_token
    polled_on: AtomicU32,
    /// Its node in the queue while `WAITING` (see [`Fifo`]). Read and
    /// written only with the queue's mutex held, which orders every access:
    /// a plain std atomic (never a loom one), as it adds nothing to check.
    pos: AtomicU32Std,
    waiter: Waiter,
}

#[derive(Debug)]
enum Waiter {
    Thread(thread::Thread),
    Task(Mutex<Waker>),
}

/// Nanoseconds since the first call in this process: a slot's `since`.
#[cfg(not(loom))]
fn now_nanos() -> u64 {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let nanos = BASE.get_or_init(Instant::now).elapsed().as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX)
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

    /// A slot for a task woken through `waker`, which knows the thread
    /// that polls it (see [`Slot::polled_here`]).
    pub(crate) fn task_on_this_thread(waker: &Waker) -> Arc<Slot> {
        let slot = Slot::task(waker);
        slot.polled_on
            .store(crate::sync::thread_token(), Ordering::Relaxed);
        slot
    }

    fn with(waiter: Waiter) -> Slot {
        Slot {
            state: AtomicU8::new(WAITING),
            #[cfg(loom)]
            rounds: AtomicU32::new(0),
            #[cfg(not(loom))]
            since: now_nanos(),
            polled_on: AtomicU32::new(0),
            pos: AtomicU32Std::new(NIL),
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
        std::time::Duration::from_nanos(now_nanos().saturating_sub(self.since))
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
        // Relaxed: a stale reading only moves a hand-off earlier or later.
        if self.polled_on.load(Ordering::Relaxed) != 0 {
            self.polled_on
                .store(crate::sync::thread_token(), Ordering::Relaxed);
        }
    }

    /// Whether this is a task made with [`Slot::task_on_this_thread`] and
    /// last polled on the current thread: one that cannot run before the
    /// code running on this thread suspends.
    pub(crate) fn polled_here(&self) -> bool {
        let on = self.polled_on.load(Ordering::Relaxed);
        on != 0 && on == crate::sync::thread_token()
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
    q: Mutex<Fifo>,
}

/// The queue, locked.
pub(crate) type Queue<'a> = MutexGuard<'a, Fifo>;

impl WaitQueue {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        WaitQueue {
            q: Mutex::new(Fifo::new()),
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        WaitQueue {
            q: Mutex::new(Fifo::new()),
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
    q.push(slot.clone(), front);
}

/// Takes `slot` off the queue if it is still waiting there; returns its state
/// as seen under the queue's lock.
pub(crate) fn cancel(q: &mut Queue<'_>, slot: &Arc<Slot>) -> u8 {
    let state = slot.state.load(Ordering::Acquire);
    if state == WAITING {
        q.remove(slot);
    }
    state
}

/// Marks a slot taken off the queue as `state` (`NOTIFIED` or `HANDOFF`).
/// The caller wakes it with [`wake_catching`] once the queue's lock is
/// released.
pub(crate) fn mark(slot: &Slot, state: u8) {
    #[cfg(loom)]
    if state == NOTIFIED {
        slot.rounds.fetch_add(1, Ordering::Relaxed);
    }
    slot.state.store(state, Ordering::Release);
}

/// Wakes a slot that [`mark`] picked and drops the caller's reference to
/// it, catching a panic of the waker's wake and of its drop apart (a drop
/// that panicked while the wake's panic unwound would abort the process).
/// The first panic caught goes to `first` if it is empty; the others are
/// dropped.
pub(crate) fn wake_catching(slot: Arc<Slot>, first: &mut Option<Box<dyn Any + Send>>) {
    let woken = catch_unwind(AssertUnwindSafe(|| slot.wake()));
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(slot)));
    for p in [woken.err(), dropped.err()].into_iter().flatten() {
        match first {
            None => *first = Some(p),
            Some(_) => drop_payload(p),
        }
    }
}

/// Resumes the panic of a waker caught while waking others, unless the
/// thread is unwinding already (a second panic would abort the process):
/// then its payload is dropped.
pub(crate) fn pass_on(p: Box<dyn Any + Send>) {
    if std::thread::panicking() {
        drop_payload(p);
    } else {
        resume_unwind(p);
    }
}

/// Drops a panic payload that is not passed on, whose own destructor may
/// panic in turn: the payload of that panic is dropped the same way, up to
/// a few levels; past them, the last one is leaked. A panic out of here
/// would leave the waiters after it unwoken.
pub(crate) fn drop_payload(mut p: Box<dyn Any + Send>) {
    for _ in 0..8 {
        match catch_unwind(AssertUnwindSafe(move || drop(p))) {
            Ok(()) => return,
            Err(next) => p = next,
        }
    }
    std::mem::forget(p);
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

/// No node.
const NIL: u32 = u32::MAX;

/// The waiters in order, as a circular doubly linked list of nodes in one
/// vector: pushing at either end, popping the front and removing any
/// waiter are O(1). A queued slot keeps its node's index (`Slot::pos`).
///
/// As small as the `VecDeque` it replaced (it sits in every `Event`, so
/// in every greenrt task): the tail is the head's `prev`, indices are
/// `u32`, and the length is not kept.
#[derive(Debug)]
pub(crate) struct Fifo {
    nodes: Vec<Node>,
    head: u32,
    /// The first unused node, the others chained through `next`.
    free: u32,
}

#[derive(Debug)]
struct Node {
    slot: Option<Arc<Slot>>,
    prev: u32,
    next: u32,
}

impl Default for Fifo {
    fn default() -> Self {
        Fifo::new()
    }
}

impl Fifo {
    pub(crate) const fn new() -> Self {
        Fifo {
            nodes: Vec::new(),
            head: NIL,
            free: NIL,
        }
    }

    /// Waiters queued (a walk: for tests, which loom builds leave out).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn len(&self) -> usize {
        self.iter_indices().count()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head == NIL
    }

    /// Queues `slot` at the back, or at the front.
    pub(crate) fn push(&mut self, slot: Arc<Slot>, front: bool) {
        let i = match self.free {
            NIL => {
                // A queue of four billion waiters would need far more
                // memory than any machine has.
                let i = u32::try_from(self.nodes.len())
                    .ok()
                    .filter(|&i| i != NIL)
                    .expect("fewer than 2^32 - 1 waiters");
                self.nodes.push(Node {
                    slot: None,
                    prev: NIL,
                    next: NIL,
                });
                i
            }
            i => {
                self.free = self.nodes[i as usize].next;
                i
            }
        };
        slot.pos.store(i, Ordering::Relaxed);
        let (prev, next) = match self.head {
            NIL => (i, i),
            h => (self.nodes[h as usize].prev, h),
        };
        self.nodes[i as usize] = Node {
            slot: Some(slot),
            prev,
            next,
        };
        self.nodes[prev as usize].next = i;
        self.nodes[next as usize].prev = i;
        if front || self.head == NIL {
            self.head = i;
        }
    }

    /// Takes the first waiter off.
    pub(crate) fn pop_front(&mut self) -> Option<Arc<Slot>> {
        match self.head {
            NIL => None,
            i => self.unlink(i),
        }
    }

    /// Takes `slot` off if it is queued here.
    pub(crate) fn remove(&mut self, slot: &Arc<Slot>) {
        let i = slot.pos.load(Ordering::Relaxed);
        let here = self
            .nodes
            .get(i as usize)
            .and_then(|n| n.slot.as_ref())
            .is_some_and(|s| Arc::ptr_eq(s, slot));
        if here {
            self.unlink(i);
        }
    }

    /// Takes every waiter off, in order, leaving this queue empty. The
    /// returned queue's buffer can be handed back with
    /// [`Fifo::give_back`].
    pub(crate) fn take_all(&mut self) -> Fifo {
        std::mem::take(self)
    }

    /// The waiters, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Slot>> + '_ {
        self.iter_indices()
            .filter_map(|i| self.nodes[i as usize].slot.as_ref())
    }

    /// The waiters of a queue from [`Fifo::take_all`], in order (each
    /// taken out of it).
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Arc<Slot>> + '_ {
        std::iter::from_fn(move || self.pop_front())
    }

    /// Keeps the buffer of a drained queue, if this one is empty and has a
    /// smaller one.
    pub(crate) fn give_back(&mut self, mut old: Fifo) {
        if self.is_empty() && old.nodes.capacity() > self.nodes.capacity() {
            old.nodes.clear();
            self.nodes = old.nodes;
            self.free = NIL;
        }
    }

    fn iter_indices(&self) -> impl Iterator<Item = u32> + '_ {
        let mut at = self.head;
        std::iter::from_fn(move || {
            let i = at;
            if i == NIL {
                return None;
            }
            let next = self.nodes[i as usize].next;
            at = if next == self.head { NIL } else { next };
            Some(i)
        })
    }

    fn unlink(&mut self, i: u32) -> Option<Arc<Slot>> {
        let node = &mut self.nodes[i as usize];
        let (prev, next, slot) = (node.prev, node.next, node.slot.take());
        node.next = self.free;
        self.free = i;
        if next == i {
            // The only one.
            self.nodes.clear();
            (self.head, self.free) = (NIL, NIL);
            return slot;
        }
        self.nodes[prev as usize].next = next;
        self.nodes[next as usize].prev = prev;
        if self.head == i {
            self.head = next;
        }
        slot
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Push(bool),
        Pop,
        /// Removes the n-th slot ever made (queued or not).
        Remove(usize),
        TakeAll,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => any::<bool>().prop_map(Op::Push),
            1 => Just(Op::Pop),
            2 => (0usize..64).prop_map(Op::Remove),
            1 => Just(Op::TakeAll),
        ]
    }

    fn ids(slots: &[Arc<Slot>], of: impl IntoIterator<Item = Arc<Slot>>) -> Vec<usize> {
        of.into_iter()
            .map(|s| slots.iter().position(|t| Arc::ptr_eq(t, &s)).unwrap())
            .collect()
    }

    proptest! {
        /// The list behaves as a `VecDeque` with removal by identity.
        #[test]
        fn the_fifo_matches_a_deque(ops in proptest::collection::vec(op(), 0..200)) {
            let mut fifo = Fifo::new();
            let mut model: VecDeque<usize> = VecDeque::new();
            let mut slots: Vec<Arc<Slot>> = Vec::new();
            for op in ops {
                match op {
                    Op::Push(front) => {
                        let slot = Slot::thread();
                        slots.push(slot.clone());
                        fifo.push(slot, front);
                        if front {
                            model.push_front(slots.len() - 1);
                        } else {
                            model.push_back(slots.len() - 1);
                        }
                    }
                    Op::Pop => {
                        let got = fifo.pop_front().map(|s| ids(&slots, [s])[0]);
                        prop_assert_eq!(got, model.pop_front());
                    }
                    Op::Remove(n) => {
                        if let Some(slot) = slots.get(n) {
                            fifo.remove(slot);
                            model.retain(|&i| i != n);
                        }
                    }
                    Op::TakeAll => {
                        let mut all = fifo.take_all();
                        prop_assert_eq!(ids(&slots, all.drain()), Vec::from(std::mem::take(&mut model)));
                        fifo.give_back(all);
                    }
                }
                prop_assert_eq!(fifo.len(), model.len());
                prop_assert_eq!(fifo.is_empty(), model.is_empty());
            }
            let mut rest = fifo.take_all();
            prop_assert_eq!(ids(&slots, rest.drain()), Vec::from(model));
        }
    }

    #[test]
    fn the_fifo_is_no_larger_than_a_deque() {
        // It sits in every `Event`, and so in every greenrt task.
        assert!(std::mem::size_of::<Fifo>() <= std::mem::size_of::<VecDeque<Arc<Slot>>>());
        assert_eq!(std::mem::size_of::<Node>(), 16);
    }

    #[test]
    fn a_removed_slot_leaves_its_neighbours_linked() {
        let mut fifo = Fifo::new();
        let s: Vec<_> = (0..4).map(|_| Slot::thread()).collect();
        for slot in &s {
            fifo.push(slot.clone(), false);
        }
        fifo.remove(&s[1]);
        fifo.remove(&s[1]);
        fifo.remove(&s[3]);
        fifo.push(s[1].clone(), true);
        assert_eq!(ids(&s, fifo.take_all().drain()), [1, 0, 2]);
        assert!(fifo.is_empty());
        assert!(fifo.pop_front().is_none());
    }
}
