//! The live tasks of a hub, in slots that do not move: removing a task
//! touches no other task (a swap-remove would write to the header of the
//! task it moves, a cache miss per completion in a burst).

use crate::task::raw::TaskRef;

/// A slab of live tasks.
#[derive(Default)]
pub(crate) struct Registry {
    slots: Vec<Option<TaskRef>>,
    free: Vec<u32>,
    live: usize,
}

impl Registry {
    /// Stores a task; returns its slot.
    pub(crate) fn insert(&mut self, task: TaskRef) -> u32 {
        self.live += 1;
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(task);
                i
            }
            None => {
                self.slots.push(Some(task));
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Takes the task out of its slot.
    pub(crate) fn remove(&mut self, slot: u32) -> Option<TaskRef> {
        let t = self.slots.get_mut(slot as usize)?.take()?;
        self.live -= 1;
        self.free.push(slot);
        Some(t)
    }

    pub(crate) fn len(&self) -> usize {
        self.live
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &TaskRef> {
        self.slots.iter().flatten()
    }

    /// Gives the memory of a past burst back once no task is left.
    pub(crate) fn trim(&mut self) {
        if self.live == 0 && self.slots.capacity() > super::BURST {
            self.slots = Vec::new();
            self.free = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::ThreadPark;
    use crate::hub::{Config, HubShared};
    use crate::task::raw::Task;
    use std::sync::Arc;

    #[test]
    fn slots_are_stable_and_reused() {
        let park = ThreadPark::new();
        let hub = HubShared::new(
            Arc::from("t"),
            Arc::new(Config::default()),
            &crate::driver::Driver {
                park: Box::new(park),
                io: None,
            },
        );
        let mk = |i| -> TaskRef { Task::new(i, None, hub.clone(), async {}) };
        let mut r = Registry::default();
        let (a, b, c) = (r.insert(mk(1)), r.insert(mk(2)), r.insert(mk(3)));
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(r.remove(b).map(|t| t.header().id), Some(2));
        assert!(r.remove(b).is_none());
        assert_eq!(r.len(), 2);
        assert_eq!(r.iter().map(|t| t.header().id).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(r.insert(mk(4)), 1);
        for s in [0, 1, 2] {
            drop(r.remove(s));
        }
        assert_eq!(r.len(), 0);
    }
}
