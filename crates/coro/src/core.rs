//! The machinery shared by [`Gen`](crate::Gen) and
//! [`AsyncGen`](crate::AsyncGen): a boxed body and one poll of it.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::raw::{Enter, Id, Slot};

/// A generator's body and the bookkeeping of the protocol around it.
///
/// `pub` only so that the sealed [`Delegate`](crate::Delegate) trait can
/// name it; it is not reachable from outside the crate.
pub struct Raw<Y, R, S, B: ?Sized> {
    /// `None` once the body returned, panicked, or was closed.
    pub(crate) body: Option<Pin<Box<B>>>,
    pub(crate) id: Id<Y, S>,
    /// The body was polled at least once.
    pub(crate) started: bool,
    /// The body is suspended at one of its yields (not at a foreign future).
    pub(crate) at_yield: bool,
    _ret: PhantomData<fn() -> R>,
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
            started: false,
            at_yield: false,
            _ret: PhantomData,
        }
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.body.is_none()
    }

    pub(crate) fn close(&mut self) {
        self.at_yield = false;
        self.body = None;
    }

    fn state_name(&self) -> &'static str {
        match (&self.body, self.started, self.at_yield) {
            (None, ..) => "finished",
            (Some(_), false, _) => "not started",
            (Some(_), true, true) => "suspended",
            (Some(_), true, false) => "running",
        }
    }
}

impl<Y, R, S, B: ?Sized + Future<Output = R>> Raw<Y, R, S, B> {
    /// Polls the body once, with `input` waiting in the slot for the yield
    /// the body is suspended at.
    ///
    /// The body is taken out of `self` for the poll: if it panics, it is
    /// dropped while unwinding and the generator is finished.
    #[inline]
    pub(crate) fn poll_body(&mut self, input: Option<S>, cx: &mut Context<'_>) -> Step<Y, R> {
        let Some(mut body) = self.body.take() else {
            return Step::Finished;
        };
        self.started = true;
        self.at_yield = false;
        let slot = Slot::new(input);
        let enter = Enter::new(&self.id, &slot);
        let poll = body.as_mut().poll(cx);
        let misused = enter.misused();
        drop(enter);
        match poll {
            Poll::Ready(r) => Step::Complete(r),
            Poll::Pending => match slot.yielded.take() {
                Some(y) => {
                    self.body = Some(body);
                    self.at_yield = true;
                    Step::Yielded(y)
                }
                None if misused => Step::Misuse,
                None => {
                    self.body = Some(body);
                    Step::Pending
                }
            },
        }
    }
}

impl<Y, R, S, B: ?Sized> fmt::Debug for Raw<Y, R, S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.state_name())
    }
}
