//! The machinery shared by [`Gen`](crate::Gen) and
//! [`AsyncGen`](crate::AsyncGen): a boxed body and one poll of it.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::raw::{Enter, Frame, Id, Slot};

/// A generator's body and the bookkeeping of the protocol around it.
///
/// `pub` only so that the sealed [`Delegate`](crate::Delegate) trait can
/// name it; it is not reachable from outside the crate.
pub struct Raw<Y, R, S, B: ?Sized> {
    /// `None` once the body returned, panicked, or was closed.
    pub(crate) body: Option<Pin<Box<B>>>,
    pub(crate) id: Id<Y, S>,
    pub(crate) phase: Phase,
    _ret: PhantomData<fn() -> R>,
}

/// Where a body is in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Never polled.
    New,
    /// Suspended at one of its yields.
    AtYield,
    /// Polled, and not at a yield: pending on a foreign future (an async
    /// generator), or returned.
    Running,
}

/// The outcome of one poll of a body.
pub(crate) enum Step<Y, R> {
    Yielded(Y),
    Complete(R),
    /// Pending on something that is not a yield; the body is kept.
    Pending,
    /// A `Co` was awaited outside its generator; the body has been dropped.
    Misuse,
    /// There is no body.
    Finished,
}

impl<Y, R, S, B: ?Sized> Raw<Y, R, S, B> {
    #[inline]
    pub(crate) fn new(body: Pin<Box<B>>, id: Id<Y, S>) -> Self {
        Raw {
            body: Some(body),
            id,
            phase: Phase::New,
            _ret: PhantomData,
        }
    }

    /// The body was polled at least once.
    #[inline(always)]
    pub(crate) fn started(&self) -> bool {
        self.phase != Phase::New
    }

    /// The body is suspended at one of its yields (not at a foreign future).
    #[inline(always)]
    pub(crate) fn at_yield(&self) -> bool {
        self.phase == Phase::AtYield
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.body.is_none()
    }

    #[inline]
    pub(crate) fn close(&mut self) {
        if self.phase == Phase::AtYield {
            self.phase = Phase::Running;
        }
        self.body = None;
    }

    fn state_name(&self) -> &'static str {
        match (&self.body, self.phase) {
            (None, _) => "finished",
            (Some(_), Phase::New) => "not started",
            (Some(_), Phase::AtYield) => "suspended",
            (Some(_), Phase::Running) => "running",
        }
    }
}

impl<Y, R, S, B: ?Sized + Future<Output = R>> Raw<Y, R, S, B> {
    /// Polls the body once, with `input` in the slot (a value sent to the
    /// yield the body is suspended at, or nothing).
    ///
    /// If the body panics, it is dropped while unwinding and the generator
    /// is finished.
    #[inline(always)]
    pub(crate) fn poll_body(&mut self, input: Slot<Y, S>, cx: &mut Context<'_>) -> Step<Y, R> {
        // Not at a yield while it runs; also leaves `New` for good.
        self.phase = Phase::Running;
        let frame = Frame::new(&self.id, input);
        let poll = {
            let unwind = DropOnUnwind(&mut self.body);
            let Some(body) = unwind.0.as_mut() else {
                std::mem::forget(unwind);
                return Step::Finished;
            };
            let enter = Enter::new(&frame);
            let poll = body.as_mut().poll(cx);
            drop(enter);
            std::mem::forget(unwind);
            poll
        };
        if frame.misused() {
            self.close();
            return Step::Misuse;
        }
        match poll {
            Poll::Pending => match frame.slot.into_inner() {
                Slot::Yielded(y) => {
                    self.phase = Phase::AtYield;
                    Step::Yielded(y)
                }
                Slot::Empty | Slot::Sent(_) => Step::Pending,
            },
            Poll::Ready(r) => {
                self.close();
                Step::Complete(r)
            }
        }
    }
}

/// Drops a body whose poll is unwinding: a generator that panicked is
/// finished, as in Python.
struct DropOnUnwind<'a, B: ?Sized>(&'a mut Option<Pin<Box<B>>>);

impl<B: ?Sized> Drop for DropOnUnwind<'_, B> {
    #[inline]
    fn drop(&mut self) {
        *self.0 = None;
    }
}

impl<Y, R, S, B: ?Sized> fmt::Debug for Raw<Y, R, S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.state_name())
    }
}
