//! What a resume returns.

use std::fmt;

/// What a resumed generator did: suspended at a yield, or returned.
///
/// Python's `send` returns the yielded value or raises `StopIteration`
/// carrying the return value; here both are values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GenState<Y, R> {
    /// The body is suspended at `co.yield_(y)`.
    Yielded(Y),
    /// The body returned (Python's `StopIteration.value`); the generator is
    /// finished.
    Complete(R),
}

impl<Y, R> GenState<Y, R> {
    /// The yielded value, if the body yielded.
    pub fn yielded(self) -> Option<Y> {
        match self {
            GenState::Yielded(y) => Some(y),
            GenState::Complete(_) => None,
        }
    }

    /// The return value, if the body returned.
    pub fn complete(self) -> Option<R> {
        match self {
            GenState::Yielded(_) => None,
            GenState::Complete(r) => Some(r),
        }
    }

    /// Whether the body returned.
    pub fn is_complete(&self) -> bool {
        matches!(self, GenState::Complete(_))
    }
}

/// Why a generator could not be resumed.
///
/// After [`Blocked`](GenError::Blocked), [`Misuse`](GenError::Misuse) and
/// [`TooDeep`](GenError::TooDeep) the generator is closed: its body has
/// been dropped and later resumes return [`Finished`](GenError::Finished).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GenError {
    /// `send` (or `throw`) before `start`: Python's "can't send non-None
    /// value to a just-started generator". The generator is unchanged.
    NotStarted,
    /// `start` on a generator that was already started. The generator is
    /// unchanged.
    AlreadyStarted,
    /// The generator returned, was closed, or panicked: Python's
    /// `StopIteration` on a finished generator.
    Finished,
    /// The body of a synchronous [`Gen`](crate::Gen) awaited a future that
    /// is not one of its own yields and that was not ready, or returned
    /// before the yield it is at took the value sent (a combinator in it,
    /// `FuturesUnordered`, polled other futures first). A synchronous
    /// resume polls its body once per value, and nothing would ever wake
    /// it, so instead of hanging the generator is closed. Use an
    /// [`AsyncGen`](crate::AsyncGen) for bodies that wait on I/O, timers
    /// or such combinators.
    Blocked,
    /// The body awaited the [`Co`](crate::Co) of another generator,
    /// passed `yield_from` a generator that was already started or
    /// finished, or would have lost a value: two of its yields had values
    /// out at once (polled together, by `join!`), a value sent was never
    /// taken (its yield was dropped, by `select!`, before the next yield
    /// or the body's end), or a value handed out was left behind (the body
    /// returned with a yield's value still out, the other branch of a
    /// `select!` having won).
    ///
    /// A yield polled again in the same resume after it handed its value
    /// out (a loop that polls `&mut yield` again once another branch is
    /// ready) cannot tell its own value, still out, from another yield's,
    /// and also counts as two values out: let the body suspend, or await
    /// the yield alone, once it has handed its value out. A yield (or a
    /// `yield_from`) polled again after it completed is a misuse too: it
    /// would wait for a value no resume sends it.
    Misuse,
    /// `send` (or `throw`) to an [`AsyncGen`](crate::AsyncGen) whose
    /// body is between two yields: an earlier resume was dropped while the
    /// body waited on a future, so no yield is there to receive the value
    /// (Python's "asynchronous generator is already running"). The value
    /// is dropped and the generator is unchanged;
    /// [`start`](crate::AsyncGen::start) runs the body on to its next
    /// yield.
    Running,
    /// A chain of [`yield_from`](crate::Co::yield_from) went deeper than
    /// [`MAX_DELEGATION_DEPTH`](crate::MAX_DELEGATION_DEPTH) on one thread,
    /// or used more than 1 MiB of its stack (Python's `RecursionError`):
    /// each level is polled on the thread's stack, which would otherwise
    /// overflow and abort the process.
    TooDeep,
}

impl fmt::Display for GenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GenError::NotStarted => "generator not started: call start() before send()",
            GenError::AlreadyStarted => "generator already started",
            GenError::Finished => "generator finished",
            GenError::Blocked => "generator body awaited a pending future that is not a yield",
            GenError::Misuse => {
                "generator body awaited another generator's Co, delegated to a started generator, \
                 or would have lost a value between two of its yields"
            }
            GenError::Running => {
                "generator body is between two yields after a dropped resume: start() runs it on"
            }
            GenError::TooDeep => "yield_from chain deeper than MAX_DELEGATION_DEPTH",
        })
    }
}

impl std::error::Error for GenError {}
