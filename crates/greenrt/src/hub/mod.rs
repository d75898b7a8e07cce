//! Hubs: one per thread, each with its run queue, registry, timers and driver.

pub(crate) mod deadlock;
mod edges;
mod local;
mod registry;
mod shared;

pub(crate) use self::edges::Edge;
pub(crate) use self::local::{Hub, ROOT_ID, next_task_id, schedule, with_current};
pub(crate) use self::shared::{Config, HubShared};

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::task::Waker;

/// Wakes each of `wakers`, also when one of them panics (a foreign waker
/// may): a waker taken from its list and never woken would leave its task
/// waiting for good. The first panic goes on once all are woken.
pub(crate) fn wake_each(wakers: impl IntoIterator<Item = Waker>) {
    let mut panicked = None;
    for w in wakers {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| w.wake())) {
            panicked.get_or_insert(p);
        }
    }
    if let Some(p) = panicked {
        resume_unwind(p);
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
