//! The hand-off between a resumer and the body it polls: the only `unsafe`
//! in the crate.
//!
//! A resume (`send`, `start`, a stream's `poll_next`) puts a [`Slot`] on its
//! own stack and, for the duration of one `poll` of the body, records in a
//! thread-local which generator is running and where its slot is. A
//! [`Yield`](crate::futures::Yield) polled inside that body checks that it
//! belongs to the running generator and then moves values through the slot.
//! No allocation, no reference count, nothing shared between threads.
//!
//! # Invariant
//!
//! While [`ACTIVE`] holds `Active { id, slot, .. }` with `id != 0` on a
//! thread, `slot` points to a live `Slot<Y, S>` on that thread's stack,
//! where `Y` and `S` are the type parameters of the [`Id`] numbered `id`.
//!
//! It holds because:
//! - an id number is minted once, by [`Id::fresh`], for one `Id<Y, S>`;
//!   `Id` is invariant in `Y` and `S` and its clones keep the types, so
//!   every `Id` with that number has the same `Y` and `S`;
//! - [`ACTIVE`] is written only by [`Enter::new`], which takes an
//!   `&Id<Y, S>` and a `&'a Slot<Y, S>` of the same types, and by
//!   `Enter`'s `Drop`, which puts back the previous value; an `Enter`
//!   borrows its slot for its whole life and lives only as a local of one
//!   poll, so guards nest like the stack frames that own them (also when
//!   unwinding) and the slot outlives the guard that published it.

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

/// The values in transit between a resumer and its body: the value being
/// sent in and the value being yielded out.
pub(crate) struct Slot<Y, S> {
    pub(crate) sent: Cell<Option<S>>,
    pub(crate) yielded: Cell<Option<Y>>,
}

impl<Y, S> Slot<Y, S> {
    #[inline]
    pub(crate) fn new(sent: Option<S>) -> Self {
        Slot {
            sent: Cell::new(sent),
            yielded: Cell::new(None),
        }
    }
}

/// The identity of one generator, typed by what goes through its slot.
#[derive(Debug)]
pub(crate) struct Id<Y, S> {
    n: u64,
    // Invariant in `Y` and `S` (see the module docs), and `Send + Sync`
    // whatever they are: an `Id` is only a number.
    _types: PhantomData<fn(Y, S) -> (Y, S)>,
}

impl<Y, S> Clone for Id<Y, S> {
    #[inline]
    fn clone(&self) -> Self {
        Id {
            n: self.n,
            _types: PhantomData,
        }
    }
}

/// Ids are handed out in blocks so that making a generator touches the
/// shared counter once per `BLOCK` generators per thread.
const BLOCK: u64 = 1 << 16;
static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    static ACTIVE: Cell<Active> = const { Cell::new(Active::NONE) };
}

impl<Y, S> Id<Y, S> {
    /// A number no other `Id` has ever had (0 is never used).
    #[inline]
    pub(crate) fn fresh() -> Self {
        let n = IDS.with(|ids| {
            let (next, end) = ids.get();
            if next < end {
                ids.set((next + 1, end));
                next
            } else {
                let start = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
                ids.set((start + 1, start + BLOCK));
                start
            }
        });
        Id {
            n,
            _types: PhantomData,
        }
    }
}

#[derive(Clone, Copy)]
struct Active {
    id: u64,
    slot: *const (),
    misuse: bool,
}

impl Active {
    const NONE: Active = Active {
        id: 0,
        slot: ptr::null(),
        misuse: false,
    };
}

/// Publishes a slot as the running generator's slot until dropped.
pub(crate) struct Enter<'a> {
    prev: Active,
    _slot: PhantomData<&'a ()>,
}

impl<'a> Enter<'a> {
    #[inline]
    pub(crate) fn new<Y, S>(id: &Id<Y, S>, slot: &'a Slot<Y, S>) -> Self {
        let slot = ptr::from_ref(slot).cast::<()>();
        let prev = ACTIVE.replace(Active {
            id: id.n,
            slot,
            misuse: false,
        });
        Enter {
            prev,
            _slot: PhantomData,
        }
    }

    /// Whether, since this guard was made, a `Co` was awaited inside the
    /// body of a generator that is not its own (see [`misuse`]).
    #[inline]
    pub(crate) fn misused(&self) -> bool {
        ACTIVE.get().misuse
    }
}

impl Drop for Enter<'_> {
    #[inline]
    fn drop(&mut self) {
        ACTIVE.set(self.prev);
    }
}

/// Runs `f` on the slot of generator `id` if that generator is the one
/// running on this thread, and returns `None` otherwise.
#[inline]
pub(crate) fn with_slot<Y, S, T>(id: &Id<Y, S>, f: impl FnOnce(&Slot<Y, S>) -> T) -> Option<T> {
    let active = ACTIVE.get();
    if active.id != id.n {
        return None;
    }
    // SAFETY: `active.id == id.n != 0` (a running id is never 0, and `Id`s
    // are never 0), so by the module invariant `active.slot` points to a
    // live `Slot<Y, S>` with this `Id`'s `Y` and `S`, owned by a resume
    // frame below us on this thread's stack. The reference is handed only
    // to `f`, which runs inside the current poll, before that frame can
    // return; `Slot` is accessed only through shared references and
    // `Cell`s, so other references to it (reentrant ones included) are fine.
    let slot = unsafe { &*active.slot.cast::<Slot<Y, S>>() };
    Some(f(slot))
}

/// Records that a `Co` was awaited inside a generator that is not its own,
/// so that the innermost resumer reports `GenError::Misuse`.
///
/// # Panics
///
/// If no generator is running on this thread: the `Co` escaped its
/// generator and is being awaited by some other executor, and the only
/// alternative to a panic would be a future that never completes.
#[cold]
pub(crate) fn misuse() {
    let mut active = ACTIVE.get();
    assert!(
        active.id != 0,
        "a coro::Co was awaited outside the body of its own generator"
    );
    active.misuse = true;
    ACTIVE.set(active);
}
