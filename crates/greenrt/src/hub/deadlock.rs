//! Deadlock diagnosis: gevent's `LoopExit: This operation would block
//! forever`.
//!
//! See [`Deadlock`] for when the hub can know.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::hub::HubShared;
use crate::hub::local::{Hub, ROOT_ID};
use crate::hub::registry::Registry;
use crate::task::raw::HANDLE;

/// The root future of [`run`](crate::run) waits for something that can
/// never happen: every task of its hub is blocked and nothing can wake any
/// of them.
///
/// # When the hub can know
///
/// The root future of `run`/`block_on` is pending, and the hub has:
/// no runnable task, nothing injected from other threads, no pending timer,
/// no source in its driver (I/O), and no waker of any of its tasks (or of
/// the root) held anywhere except where the hub accounts for it. The hub
/// looks once a first idle (of at most 10 ms) found nothing to run, as the
/// look visits every task, and again while it stays idle, less and less
/// often (a second apart at most): a waker held outside may be dropped
/// without a wake-up, which nothing tells the hub of.
///
/// A waker is accounted for when it is the reference the registry, a
/// `Greenlet` handle, or the hub's own `block_on` holds, or when it waits in
/// the completion event of another task *of the same hub* (a join: awaiting
/// a `Greenlet`, `joinall`, `iwait`) and is the waker the task was polled
/// with. A task of a hub of the same thread that this hub was started
/// inside (`run` nested in a task) counts as one of the same hub: its hub
/// cannot run before this one returns. A join polled under a combinator's
/// own wakers (`FuturesUnordered`, and so `join_all` of many futures)
/// leaves the combinator's waker in the event, which wakes the task
/// through a clone the hub does not follow: such a join counts as a wait
/// from outside. Any other clone of a waker (stored in a sync-prims
/// `Event` or `Lock`, a channel, another hub's task, a plain thread) may
/// be woken from outside, so the hub does not claim a deadlock and sleeps
/// instead. The diagnosis therefore never fires while a wake-up is still
/// possible, and misses deadlocks that go through such primitives (two
/// tasks waiting on each other through an `Event` only they can set).
/// A `Greenlet` moved to a plain thread that would `kill()` it is not seen:
/// do not rely on a foreign kill to end an otherwise dead wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadlock {
    hub: Arc<str>,
    blocked: Vec<String>,
}

impl Deadlock {
    /// The blocked tasks, the root future first (`'main'`), then each task
    /// as `'name' (#id)` or `#id (future type)`.
    pub fn blocked(&self) -> &[String] {
        &self.blocked
    }

    /// The name of the hub.
    pub fn hub(&self) -> &str {
        &self.hub
    }
}

impl fmt::Display for Deadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "this operation would block forever: on hub '{}', nothing can wake the blocked tasks: {}",
            self.hub,
            self.blocked.join(", ")
        )
    }
}

impl std::error::Error for Deadlock {}

/// Returns the deadlock if no waker of the root (`root_refs` references
/// beyond `block_on`'s own) or of any live task can be reached from outside.
/// The caller has checked the run queue, injector, timers and driver.
pub(crate) fn check(
    shared: &HubShared,
    root_refs: usize,
    registry: &Registry,
    edges: &HashMap<u64, u32>,
) -> Option<Deadlock> {
    let edge = |id: u64| edges.get(&id).copied().unwrap_or(0) as usize;
    if root_refs > edge(ROOT_ID) {
        return None;
    }
    for t in registry.iter() {
        let h = t.header();
        let handle = usize::from(h.state.load(Ordering::Acquire) & HANDLE != 0);
        let known = 1 + handle + edge(h.id);
        if Arc::strong_count(t) > known {
            return None;
        }
    }
    let mut blocked = vec!["'main' (the root future)".to_string()];
    blocked.extend(registry.iter().map(|t| Hub::describe(&**t)));
    Some(Deadlock {
        hub: shared.name.clone(),
        blocked,
    })
}
