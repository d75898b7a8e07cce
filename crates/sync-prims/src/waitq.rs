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

use std::sync::atomic::AtomicUsize;
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
    /// Its node in the queue while `WAITING` (see [`Fifo`]). Read and
    /// written only with the queue's mutex held, which orders every access:
    /// a plain std atomic (never a loom one), as it adds nothing to check.
    pos: AtomicUsize,
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
            pos: AtomicUsize::new(NIL),
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

/// No node.
const NIL: usize = usize::MAX;

/// The waiters in order, as a doubly linked list of nodes in one vector:
/// pushing at either end, popping the front and removing any waiter are
/// O(1). A queued slot keeps its node's index (`Slot::pos`).
#[derive(Debug)]
pub(crate) struct Fifo {
    nodes: Vec<Node>,
    head: usize,
    tail: usize,
    /// The first unused node, the others chained through `next`.
    free: usize,
    len: usize,
    /// A buffer for [`Fifo::take_all`], kept between calls.
    spare: Vec<Arc<Slot>>,
}

#[derive(Debug)]
struct Node {
    slot: Option<Arc<Slot>>,
    prev: usize,
    next: usize,
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
            tail: NIL,
            free: NIL,
            len: 0,
            spare: Vec::new(),
        }
    }

    /// Waiters queued.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues `slot` at the back, or at the front.
    pub(crate) fn push(&mut self, slot: Arc<Slot>, front: bool) {
        let (prev, next) = if front {
            (NIL, self.head)
        } else {
            (self.tail, NIL)
        };
        let node = Node {
            slot: Some(slot),
            prev,
            next,
        };
        let i = if self.free == NIL {
            self.nodes.push(node);
            self.nodes.len() - 1
        } else {
            let i = self.free;
            self.free = self.nodes[i].next;
            self.nodes[i] = node;
            i
        };
        if let Some(slot) = &self.nodes[i].slot {
            slot.pos.store(i, Ordering::Relaxed);
        }
        match prev {
            NIL => self.head = i,
            p => self.nodes[p].next = i,
        }
        match next {
            NIL => self.tail = i,
            n => self.nodes[n].prev = i,
        }
        self.len += 1;
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
            .get(i)
            .and_then(|n| n.slot.as_ref())
            .is_some_and(|s| Arc::ptr_eq(s, slot));
        if here {
            self.unlink(i);
        }
    }

    /// Takes every waiter off, in order. Hand the vector back with
    /// [`Fifo::give_back`] to reuse its buffer.
    pub(crate) fn take_all(&mut self) -> Vec<Arc<Slot>> {
        let mut all = std::mem::take(&mut self.spare);
        all.reserve(self.len);
        let mut i = self.head;
        while i != NIL {
            let node = &mut self.nodes[i];
            all.extend(node.slot.take());
            i = node.next;
        }
        self.reset();
        all
    }

    /// Keeps the buffer of a vector from [`Fifo::take_all`].
    pub(crate) fn give_back(&mut self, mut all: Vec<Arc<Slot>>) {
        all.clear();
        if all.capacity() > self.spare.capacity() {
            self.spare = all;
        }
    }

    fn unlink(&mut self, i: usize) -> Option<Arc<Slot>> {
        let node = &mut self.nodes[i];
        let (prev, next, slot) = (node.prev, node.next, node.slot.take());
        node.next = self.free;
        self.free = i;
        match prev {
            NIL => self.head = next,
            p => self.nodes[p].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n].prev = prev,
        }
        self.len -= 1;
        if self.len == 0 {
            self.reset();
        }
        slot
    }

    /// Empty, keeping the nodes' buffer.
    fn reset(&mut self) {
        self.nodes.clear();
        (self.head, self.tail, self.free, self.len) = (NIL, NIL, NIL, 0);
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
                        let all = fifo.take_all();
                        prop_assert_eq!(ids(&slots, all.iter().cloned()), Vec::from(std::mem::take(&mut model)));
                        fifo.give_back(all);
                    }
                }
                prop_assert_eq!(fifo.len(), model.len());
                prop_assert_eq!(fifo.is_empty(), model.is_empty());
            }
            let rest = fifo.take_all();
            prop_assert_eq!(ids(&slots, rest), Vec::from(model));
        }
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
        assert_eq!(ids(&s, fifo.take_all()), [1, 0, 2]);
        assert!(fifo.is_empty());
        assert!(fifo.pop_front().is_none());
    }
}
