//! Hubs: one per thread, each with its run queue, registry, timers and driver.

pub(crate) mod budget;
pub(crate) mod deadlock;
mod edges;
mod local;
mod registry;
mod shared;

pub(crate) use self::edges::Edge;
pub(crate) use self::local::{Hub, ROOT_ID, next_task_id, schedule, with_current};
pub(crate) use self::shared::{BUSY, BlockingJob, Config, HubShared};

/// The capacity past which a hub's structure, once emptied (or nearly),
/// gives its memory back: below it, keeping it costs little and saves
/// growing it again.
pub(crate) const BURST: usize = 1024;

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::task::Waker;

/// Wakes each of `wakers`, also when one of them panics (a foreign waker
/// may): a waker taken from its list and never woken would leave its task
/// waiting for good. The first panic goes on once all are woken.
pub(crate) fn wake_each(wakers: impl IntoIterator<Item = Waker>) {
    each_then_panic(wakers, Waker::wake);
}

/// Calls `f` on each of `items`, also when a call panics; the first panic
/// goes on once every item had its call.
pub(crate) fn each_then_panic<T>(items: impl IntoIterator<Item = T>, mut f: impl FnMut(T)) {
    let mut panicked = None;
    for item in items {
        catch_first(&mut panicked, || f(item));
    }
    if let Some(p) = panicked {
        resume_unwind(p);
    }
}

/// Runs `f`, catching its panic: kept in `first` if it is the first, else
/// dropped (through [`drop_payload`](crate::task::raw::drop_payload), as
/// its own drop may panic too).
pub(crate) fn catch_first(first: &mut Option<Box<dyn Any + Send>>, f: impl FnOnce()) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
        match first {
            None => *first = Some(p),
            Some(_) => crate::task::raw::drop_payload(p),
        }
    }
}

/// Ends a join edge recorded on the hub `uid`: it stops counting at once,
/// from any thread, and leaves that hub's slab now when this runs on that
/// hub (else a later sweep takes it).
pub(crate) fn release_edge(uid: u32, edge: Edge) {
    edge.clear();
    with_current(|h| {
        if h.shared().uid == uid {
            h.remove_edge(&edge);
        }
    });
}

/// The uid of the current thread's hub, if any.
pub(crate) fn current_uid() -> Option<u32> {
    with_current(|h| h.shared().uid)
}

/// The hub and the task that `waker` belongs to, if it is the waker the
/// current hub polls its running task (or root future) with: the only
/// waker a join edge may count as that task's.
pub(crate) fn polled_by(waker: &Waker) -> Option<(u32, u64)> {
    with_current(|h| Some((h.shared().uid, h.running_with(waker)?))).flatten()
}

/// The join edge a wait keeps for its awaiting task (see `deadlock`): at
/// most one, as (hub uid, awaiting task, the edge).
#[derive(Default)]
pub(crate) struct JoinEdge(Option<(u32, u64, Edge)>);

impl JoinEdge {
    /// Keeps an edge for `want` (hub uid, awaiting task), recorded on the
    /// current hub, or none: an edge for anything else is released first.
    pub(crate) fn set(&mut self, want: Option<(u32, u64)>) {
        self.keep_only(want);
        if self.0.is_none() {
            self.0 = want.and_then(|(uid, task)| with_current(|h| (uid, task, h.add_edge(task))));
        }
    }

    /// Releases the edge unless it is the one for `want`.
    pub(crate) fn keep_only(&mut self, want: Option<(u32, u64)>) {
        if self.0.as_ref().map(|(uid, task, _)| (*uid, *task)) != want {
            self.clear();
        }
    }

    /// Releases the edge, if there is one.
    pub(crate) fn clear(&mut self) {
        if let Some((uid, _, edge)) = self.0.take() {
            release_edge(uid, edge);
        }
    }
}
