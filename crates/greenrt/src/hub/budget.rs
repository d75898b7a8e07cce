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

/// Starts a poll of a task (or a root future) on this thread's hub, with
/// a full budget until the guard returned is dropped, which puts back the
/// budget of what encloses the poll (unlimited off a hub; a task's own
/// when a hub runs inside it), also when the poll unwinds.
#[inline]
pub(crate) fn start_poll() -> PollBudget {
    PollBudget {
        enclosing: LEFT.replace(PER_POLL),
    }
}

/// The budget of one poll, from [`start_poll`].
#[must_use = "the budget lasts as long as the guard"]
pub(crate) struct PollBudget {
    enclosing: u32,
}

impl Drop for PollBudget {
    #[inline]
    fn drop(&mut self) {
        LEFT.set(self.enclosing);
    }
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

/// For an operation that completes without waiting on the socket (a
/// transfer of no bytes): [`poll_proceed`], then [`spend`], so that a loop
/// of them gives way as a loop over a ready socket does.
#[inline]
pub(crate) fn poll_at_once(cx: &Context<'_>) -> Poll<()> {
    if poll_proceed(cx).is_pending() {
        return Poll::Pending;
    }
    spend();
    Poll::Ready(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn a_poll_completes_its_budget_then_yields_and_off_a_hub_never_and_polls_nest() {
        let cx = Context::from_waker(Waker::noop());
        for _ in 0..10 * PER_POLL {
            assert!(poll_proceed(&cx).is_ready(), "unlimited off a poll");
            spend();
        }
        let outer = start_poll();
        spend();
        {
            // A hub run inside the poll: its own polls have their own
            // budgets, and the outer one's is as it was after them.
            let inner = start_poll();
            for _ in 0..PER_POLL {
                assert!(poll_proceed(&cx).is_ready());
                spend();
            }
            assert!(poll_proceed(&cx).is_pending(), "spent");
            drop(inner);
        }
        for _ in 1..PER_POLL {
            assert!(poll_proceed(&cx).is_ready());
            spend();
        }
        assert!(poll_proceed(&cx).is_pending(), "the outer poll's spent");
        // A poll that unwinds puts the budget back too.
        let unwound = std::panic::catch_unwind(|| {
            let _inner = start_poll();
            panic!("a poll that fails on purpose");
        });
        assert!(unwound.is_err());
        assert!(poll_proceed(&cx).is_pending(), "still the outer poll's");
        drop(outer);
        assert!(poll_proceed(&cx).is_ready(), "unlimited again");
    }
}
