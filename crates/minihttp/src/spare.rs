//! Per-thread spares: the one value of a kind that a hub thread keeps
//! between two uses (a dropped request's parts, a connection's read
//! storage, a write buffer), so that the next use allocates nothing.

use std::cell::Cell;
use std::thread::LocalKey;

/// Where a thread keeps its spare of one kind (a `thread_local!`).
pub(crate) type Slot<T> = Cell<Option<T>>;

/// Takes this thread's spare out of `slot`, if there is one.
#[inline]
pub(crate) fn take<T>(slot: &'static LocalKey<Slot<T>>) -> Option<T> {
    slot.try_with(Cell::take).ok().flatten()
}

/// Makes `value` this thread's spare in `slot`; a spare it replaces is
/// freed, and so is `value` during the thread's teardown, when the slot
/// may be gone.
#[inline]
pub(crate) fn keep<T>(slot: &'static LocalKey<Slot<T>>, value: T) {
    let _ = slot.try_with(|spare| spare.set(Some(value)));
}
