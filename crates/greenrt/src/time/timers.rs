//! A hub's timers: an indexed binary heap over a slab of entries.
//!
//! Insert and cancel are O(log n) and cancel really removes the entry, so
//! a per-connection timeout that is armed and cancelled for every request
//! leaves nothing behind. Entries with the same deadline fire in insertion
//! order. A key carries its slot's generation, so a stale key (of an entry
//! that fired or was cancelled, its slot reused since) does nothing.

use std::task::Waker;
use std::time::Instant;

/// Identifies a timer entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerKey {
    idx: u32,
    generation: u32,
}

#[derive(Debug)]
struct Entry {
    /// Nanoseconds after `Timers::origin`.
    deadline: u64,
    seq: u32,
    waker: Option<Waker>,
    /// Position in `heap`, or `FREE`.
    pos: u32,
    generation: u32,
}

const FREE: u32 = u32::MAX;

/// The timers of one hub.
#[derive(Debug)]
pub(crate) struct Timers {
    /// Deadlines are kept as nanoseconds after this instant (the clock's
    /// origin: no deadline computed from the clock precedes it; an earlier
    /// one counts as due).
    origin: Instant,
    entries: Vec<Entry>,
    free: Vec<u32>,
    /// Entry indices, a min-heap by (deadline, seq).
    heap: Vec<u32>,
    /// Insertion counter: equal deadlines fire in insertion order (it wraps
    /// after 2^32 insertions, which can only reorder equal deadlines).
    seq: u32,
    /// The generation of entries made from now on: past every generation
    /// of the entries given back by [`trim`](Timers::trim), so that a key
    /// of theirs matches no new entry.
    base: u32,
}

impl Timers {
    pub(crate) fn new(origin: Instant) -> Self {
        Timers {
            origin,
            entries: Vec::new(),
            free: Vec::new(),
            heap: Vec::new(),
            seq: 0,
            base: 0,
        }
    }

    /// Gives back the memory of a burst of timers (their entries, about
    /// 48 bytes each) once none is armed.
    pub(crate) fn trim(&mut self) {
        if !self.heap.is_empty() || self.entries.capacity() <= crate::hub::BURST {
            return;
        }
        let newest = self.entries.iter().map(|e| e.generation).max();
        if let Some(g) = newest {
            self.base = self.base.max(g.wrapping_add(1));
        }
        self.entries = Vec::new();
        self.free = Vec::new();
        self.heap = Vec::new();
    }

    /// Whether a timer can be armed for `t`: the timers count time in
    /// nanoseconds from their origin, in 64 bits (about 584 years).
    pub(crate) fn holds(&self, t: Instant) -> bool {
        t.saturating_duration_since(self.origin).as_nanos() <= u128::from(u64::MAX)
    }

    fn to_nanos(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Arms a timer that wakes `waker` at `deadline`.
    pub(crate) fn insert(&mut self, deadline: Instant, waker: Waker) -> TimerKey {
        let deadline = self.to_nanos(deadline);
        self.seq = self.seq.wrapping_add(1);
        let pos = self.heap.len() as u32;
        let idx = match self.free.pop() {
            Some(i) => {
                let e = &mut self.entries[i as usize];
                e.deadline = deadline;
                e.seq = self.seq;
                e.waker = Some(waker);
                e.pos = pos;
                i
            }
            None => {
                self.entries.push(Entry {
                    deadline,
                    seq: self.seq,
                    waker: Some(waker),
                    pos,
                    generation: self.base,
                });
                (self.entries.len() - 1) as u32
            }
        };
        self.heap.push(idx);
        self.sift_up(pos as usize);
        TimerKey {
            idx,
            generation: self.entries[idx as usize].generation,
        }
    }

    fn live(&self, key: TimerKey) -> Option<&Entry> {
        self.entries
            .get(key.idx as usize)
            .filter(|e| e.generation == key.generation && e.pos != FREE)
    }

    /// Whether the timer is still armed (not fired, not cancelled).
    pub(crate) fn contains(&self, key: TimerKey) -> bool {
        self.live(key).is_some()
    }

    /// Replaces the waker of an armed timer (a re-poll from another task).
    ///
    /// Returns the waker it replaced, for the caller to drop once it no
    /// longer borrows the timers: a waker's drop may drop a task, and with
    /// it a sleep of this hub, which cancels its own timer.
    #[must_use = "the waker replaced is to be dropped after the borrow of the timers"]
    pub(crate) fn set_waker(&mut self, key: TimerKey, waker: &Waker) -> Option<Waker> {
        if self.live(key).is_some() {
            let e = &mut self.entries[key.idx as usize];
            match &mut e.waker {
                Some(w) if w.will_wake(waker) => {}
                slot => return slot.replace(waker.clone()),
            }
        }
        None
    }

    /// Disarms a timer; a stale key does nothing. Returns its waker, for
    /// the caller to drop once it no longer borrows the timers (see
    /// [`set_waker`](Timers::set_waker)).
    #[must_use = "the waker is to be dropped after the borrow of the timers"]
    pub(crate) fn cancel(&mut self, key: TimerKey) -> Option<Waker> {
        let e = self.live(key)?;
        let pos = e.pos as usize;
        self.remove_at(pos)
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.first().map(|&i| {
            self.origin + std::time::Duration::from_nanos(self.entries[i as usize].deadline)
        })
    }

    /// Removes every timer due at `now` and collects their wakers.
    pub(crate) fn take_due(&mut self, now: Instant, out: &mut Vec<Waker>) {
        let now = self.to_nanos(now);
        while let Some(&i) = self.heap.first() {
            if self.entries[i as usize].deadline > now {
                break;
            }
            if let Some(w) = self.remove_at(0) {
                out.push(w);
            }
        }
    }

    fn remove_at(&mut self, pos: usize) -> Option<Waker> {
        let idx = self.heap.swap_remove(pos);
        if pos < self.heap.len() {
            let moved = self.heap[pos];
            self.entries[moved as usize].pos = pos as u32;
            self.sift_down(pos);
            self.sift_up(pos);
        }
        let e = &mut self.entries[idx as usize];
        e.pos = FREE;
        e.generation = e.generation.wrapping_add(1);
        self.free.push(idx);
        e.waker.take()
    }

    fn less(&self, a: u32, b: u32) -> bool {
        let (a, b) = (&self.entries[a as usize], &self.entries[b as usize]);
        (a.deadline, a.seq) < (b.deadline, b.seq)
    }

    fn swap(&mut self, i: usize, j: usize) {
        self.heap.swap(i, j);
        let (a, b) = (self.heap[i], self.heap[j]);
        self.entries[a as usize].pos = i as u32;
        self.entries[b as usize].pos = j as u32;
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.less(self.heap[i], self.heap[parent]) {
                self.swap(i, parent);
                i = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if l < n && self.less(self.heap[l], self.heap[m]) {
                m = l;
            }
            if r < n && self.less(self.heap[r], self.heap[m]) {
                m = r;
            }
            if m == i {
                break;
            }
            self.swap(i, m);
            i = m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::flag;
    use proptest::prelude::*;
    use std::sync::Arc;
    use std::task::Wake;
    use std::time::Duration;

    #[test]
    #[cfg_attr(
        miri,
        ignore = "thousands of entries: slow there, and no `unsafe` to check"
    )]
    fn a_burst_of_timers_gives_its_memory_back_and_its_keys_stay_stale() {
        let t0 = Instant::now();
        let mut timers = Timers::new(t0);
        let keys: Vec<TimerKey> = (0..2000)
            .map(|i| timers.insert(t0 + Duration::from_secs(i), Waker::noop().clone()))
            .collect();
        timers.trim();
        assert!(timers.entries.capacity() >= 2000, "kept while armed");
        for &k in &keys {
            drop(timers.cancel(k));
        }
        timers.trim();
        assert!(timers.entries.capacity() <= 1024, "given back");
        // A key of the burst matches none of the timers armed since.
        let fresh: Vec<TimerKey> = (0..10)
            .map(|i| timers.insert(t0 + Duration::from_secs(i), Waker::noop().clone()))
            .collect();
        for &k in &keys {
            assert!(!timers.contains(k));
            assert!(timers.cancel(k).is_none());
        }
        assert_eq!(timers.len(), 10);
        assert!(fresh.iter().all(|&k| timers.contains(k)));
    }

    /// Wakers that record their tag in `log` when woken.
    struct Tagged(usize, Arc<std::sync::Mutex<Vec<usize>>>);
    impl Wake for Tagged {
        fn wake(self: Arc<Self>) {
            self.1.lock().unwrap().push(self.0);
        }
    }

    fn tagged(tag: usize, log: &Arc<std::sync::Mutex<Vec<usize>>>) -> Waker {
        Waker::from(Arc::new(Tagged(tag, log.clone())))
    }

    /// Wakes `out` in order, and returns the tags they recorded.
    fn fired(out: Vec<Waker>, log: &Arc<std::sync::Mutex<Vec<usize>>>) -> Vec<usize> {
        for w in out {
            w.wake();
        }
        std::mem::take(&mut *log.lock().unwrap())
    }

    #[test]
    fn fires_in_deadline_then_insertion_order() {
        let t0 = Instant::now();
        let mut t = Timers::new(t0);
        let at = |s| t0 + Duration::from_secs(s);
        let log = Arc::default();
        let ks = [
            t.insert(at(3), tagged(0, &log)),
            t.insert(at(1), tagged(1, &log)),
            t.insert(at(2), tagged(2, &log)),
            t.insert(at(1), tagged(3, &log)),
            t.insert(at(1), tagged(4, &log)),
        ];
        assert_eq!(t.next_deadline(), Some(at(1)));
        let mut out = Vec::new();
        t.take_due(at(1), &mut out);
        assert_eq!(fired(out, &log), [1, 3, 4]);
        assert!(t.contains(ks[0]) && t.contains(ks[2]) && !t.contains(ks[1]));
        let mut out = Vec::new();
        t.take_due(at(3), &mut out);
        assert_eq!(fired(out, &log), [2, 0]);
        assert!(t.is_empty());
    }

    #[test]
    fn cancel_removes_and_stale_keys_do_nothing() {
        let t0 = Instant::now();
        let mut t = Timers::new(t0);
        let (c, w) = flag();
        let k = t.insert(t0, w);
        // The waker comes back, for the caller to drop.
        assert!(t.cancel(k).is_some());
        assert!(t.is_empty());
        let (_, w2) = flag();
        let k2 = t.insert(t0, w2); // reuses the slot
        assert!(t.cancel(k).is_none()); // stale: must not remove k2
        assert!(t.contains(k2));
        let mut out = Vec::new();
        t.take_due(t0, &mut out);
        for w in out {
            w.wake();
        }
        assert!(!c.woken());
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: if cfg!(miri) { 4 } else { 256 },
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Any mix of inserts and cancels fires exactly the live entries,
        /// in (deadline, insertion) order.
        #[test]
        fn heap_matches_a_sorted_model(ops in proptest::collection::vec((0u64..50, any::<bool>()), 1..200)) {
            let t0 = Instant::now();
            let mut t = Timers::new(t0);
            let mut model: Vec<(u64, usize, TimerKey)> = Vec::new();
            let log = Arc::default();
            for (i, (d, cancel_one)) in ops.iter().enumerate() {
                let k = t.insert(t0 + Duration::from_millis(*d), tagged(i, &log));
                model.push((*d, i, k));
                if *cancel_one && model.len() > 1 {
                    let victim = model.remove((i * 7) % model.len());
                    drop(t.cancel(victim.2));
                }
            }
            prop_assert_eq!(t.len(), model.len());
            model.sort_by_key(|m| (m.0, m.1));
            // What fires, in the order it fires, by insertion index.
            let mut order = Vec::new();
            while let Some(next) = t.next_deadline() {
                let mut out = Vec::new();
                t.take_due(next, &mut out);
                order.extend(fired(out, &log));
            }
            let expect: Vec<usize> = model.iter().map(|m| m.1).collect();
            prop_assert_eq!(order, expect);
        }
    }
}
