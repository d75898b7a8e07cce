//! A task's budget of socket operations per poll.
//!
//! A socket that is always ready (a peer that writes faster than the task
//! reads, a listener out of descriptors that fails every `accept` at once)
//! lets an operation complete at every call: a task looping over it would
//! never suspend, so a `timeout` around the loop could not fire, a `kill`
//! could not land, and the other tasks of its hub would not run. Each poll
//! of a task on a hub may complete [`PER_POLL`] socket operations; the
//! next one wakes the task and returns `Pending` (a `yield_now`), and the
//! task resumes it behind every task runnable by then. So does a wait for
//! a socket's readiness once the budget is spent (it spends none itself):
//! a loop that takes an operation's `Pending` for "not ready" and waits
//! for readiness, which is there at once, would otherwise go round within
//! one poll for good.
//!
//! Off a hub, and between polls, the budget is unlimited: an executor of
//! another kind keeps its own rules.

use std::cell::Cell;
use std::task::{Context, Poll};

/// The socket operations one poll of a task may complete without
/// suspending: enough for a connection to read, parse and answer a deep
/// pipeline in one poll, few enough that a task looping over a ready
/// socket gives way within microseconds.
pub(crate) const PER_POLL: u32 = 128;

/// What the budget is off a hub's poll: never spent.
const UNLIMITED: u32 = u32::MAX;

thread_local! {
    static LEFT: Cell<u32> = const { Cell::new(UNLIMITED) };
}

/// Starts a poll of a task (or a root future) on this thread's hub.
#[inline]
pub(crate) fn start_poll() {
    LEFT.set(PER_POLL);
}

/// Ends that poll: the budget is unlimited again.
#[inline]
pub(crate) fn end_poll() {
    LEFT.set(UNLIMITED);
}

/// Whether the running task may complete one more socket operation; if
/// not, wakes it (so that it runs again next round) and says `Pending`.
/// Call before the operation; [`spend`] once it completed.
#[inline]
pub(crate) fn poll_proceed(cx: &Context<'_>) -> Poll<()> {
    if LEFT.get() == 0 {
        cx.waker().wake_by_ref();
        return Poll::Pending;
    }
    Poll::Ready(())
}

/// Counts one completed socket operation.
#[inline]
pub(crate) fn spend() {
    let left = LEFT.get();
    if left != UNLIMITED {
        LEFT.set(left.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn a_poll_completes_its_budget_then_yields_and_off_a_hub_never() {
        let cx = Context::from_waker(Waker::noop());
        for _ in 0..10 * PER_POLL {
            assert!(poll_proceed(&cx).is_ready(), "unlimited off a poll");
            spend();
        }
        start_poll();
        for _ in 0..PER_POLL {
            assert!(poll_proceed(&cx).is_ready());
            spend();
        }
        assert!(poll_proceed(&cx).is_pending(), "spent");
        end_poll();
        assert!(poll_proceed(&cx).is_ready());
    }
}
