//! Join edges: which wakers of a hub's tasks wait in the completion event of
//! another task of the same hub (see [`deadlock`](super::deadlock)).
//!
//! A slab, so that a join that starts or ends costs O(1) however many joins
//! are in flight: ten thousand tasks each awaiting a greenlet used to pay a
//! scan of every edge per completion.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The handle of one recorded edge.
///
/// Its flag is true while the edge counts a waker. Whoever holds the handle
/// on another thread (a `Greenlet` moved there) cannot reach the hub's
/// slab and clears the flag instead; such entries are swept later.
#[derive(Debug)]
pub(crate) struct Edge {
    slot: usize,
    live: Arc<AtomicBool>,
}

impl Edge {
    /// Stops counting the edge, from any thread.
    pub(crate) fn clear(&self) {
        self.live.store(false, Ordering::Release);
    }
}

/// The join edges of one hub.
#[derive(Debug, Default)]
pub(crate) struct Edges {
    /// Per slot: the awaiting task's id and the edge's flag.
    slots: Vec<Option<(u64, Arc<AtomicBool>)>>,
    /// Empty slots, reused first.
    free: Vec<usize>,
    /// Occupied slots after the last sweep: the next sweep comes when
    /// there are twice as many, so that its cost is spread over the adds
    /// that made it necessary.
    swept: usize,
}

/// Fewest occupied slots before a sweep is worth its scan.
const MIN_SWEEP: usize = 64;

impl Edges {
    /// Records an edge of task `waiter`.
    pub(crate) fn add(&mut self, waiter: u64) -> Edge {
        if self.occupied() >= (2 * self.swept).max(MIN_SWEEP) {
            self.sweep();
        }
        let live = Arc::new(AtomicBool::new(true));
        let entry = Some((waiter, live.clone()));
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = entry;
                slot
            }
            None => {
                self.slots.push(entry);
                self.slots.len() - 1
            }
        };
        Edge { slot, live }
    }

    /// Removes `edge`, cleared by the caller, if it is still here (a sweep
    /// may have taken it after it was cleared, and the slot may hold
    /// another edge since).
    pub(crate) fn remove(&mut self, edge: &Edge) {
        if let Some(entry) = self.slots.get_mut(edge.slot) {
            if entry
                .as_ref()
                .is_some_and(|(_, live)| Arc::ptr_eq(live, &edge.live))
            {
                *entry = None;
                self.free.push(edge.slot);
            }
        }
    }

    /// The awaiting task of each edge that still counts a waker.
    pub(crate) fn live(&self) -> impl Iterator<Item = u64> + '_ {
        self.slots
            .iter()
            .flatten()
            .filter(|(_, live)| live.load(Ordering::Acquire))
            .map(|(waiter, _)| *waiter)
    }

    /// Gives back the memory of a burst of joins once none is recorded (a
    /// handle of an edge removed already finds no slot, or a slot that is
    /// not its own, and does nothing).
    pub(crate) fn trim(&mut self) {
        if self.occupied() == 0 && self.slots.capacity() > super::BURST {
            *self = Edges::default();
        }
    }

    fn occupied(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Frees the slots of edges cleared from another thread.
    fn sweep(&mut self) {
        for (slot, entry) in self.slots.iter_mut().enumerate() {
            if entry
                .as_ref()
                .is_some_and(|(_, live)| !live.load(Ordering::Acquire))
            {
                *entry = None;
                self.free.push(slot);
            }
        }
        self.swept = self.occupied();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(
        miri,
        ignore = "thousands of entries: slow there, and no `unsafe` to check"
    )]
    fn a_burst_of_joins_gives_its_memory_back_and_old_handles_do_nothing() {
        let mut e = Edges::default();
        let burst: Vec<Edge> = (0..2000).map(|t| e.add(t)).collect();
        e.trim();
        assert!(e.slots.capacity() >= 2000, "kept while recorded");
        for edge in &burst {
            edge.clear();
            e.remove(edge);
        }
        e.trim();
        assert!(e.slots.capacity() <= 1024, "given back");
        let kept = e.add(7);
        for edge in &burst {
            e.remove(edge);
        }
        assert_eq!(
            e.live().collect::<Vec<_>>(),
            [7],
            "an old handle removed nothing"
        );
        kept.clear();
    }

    #[test]
    fn an_edge_is_counted_until_removed_and_its_slot_is_reused() {
        let mut e = Edges::default();
        let a = e.add(1);
        let b = e.add(2);
        assert_eq!(e.live().collect::<Vec<_>>(), [1, 2]);
        e.remove(&a);
        assert_eq!(e.live().collect::<Vec<_>>(), [2]);
        let c = e.add(3);
        assert_eq!(c.slot, a.slot);
        // Removing a stale handle leaves the slot's new edge alone.
        e.remove(&a);
        assert_eq!(e.live().collect::<Vec<_>>(), [3, 2]);
        e.remove(&b);
        e.remove(&c);
        assert_eq!(e.live().count(), 0);
        assert_eq!(e.occupied(), 0);
    }

    #[test]
    fn edges_cleared_elsewhere_stop_counting_and_are_swept() {
        let mut e = Edges::default();
        let remote: Vec<Edge> = (0..MIN_SWEEP as u64).map(|i| e.add(i)).collect();
        for r in &remote {
            r.clear();
        }
        assert_eq!(e.live().count(), 0);
        assert_eq!(e.occupied(), MIN_SWEEP);
        // The next add sweeps them and reuses a slot.
        let kept = e.add(7);
        assert_eq!(e.occupied(), 1);
        assert_eq!(e.live().collect::<Vec<_>>(), [7]);
        // A late removal of a swept edge leaves the new one alone.
        for r in &remote {
            e.remove(r);
        }
        assert_eq!(e.live().collect::<Vec<_>>(), [7]);
        e.remove(&kept);
        assert_eq!(e.occupied(), 0);
    }

    #[test]
    fn slots_stay_bounded_by_the_edges_in_flight() {
        let mut e = Edges::default();
        // Edges cleared from elsewhere and never removed (their handles
        // dropped on another thread) do not pile up.
        for i in 0..10_000 {
            let edge = e.add(i);
            edge.clear();
        }
        assert!(e.slots.len() <= 2 * MIN_SWEEP, "{} slots", e.slots.len());
    }
}
