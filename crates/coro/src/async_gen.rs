//! Asynchronous generators: [`AsyncGen`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::{FusedStream, Stream};

use crate::co::{Co, Delegate};
use crate::core::{Raw, Step};
use crate::raw::{Id, Slot};
use crate::{GenError, GenState};

/// An asynchronous generator: the protocol of [`Gen`](crate::Gen), where
/// resuming is `async` and the body may await any future (timers, sockets,
/// channels) between its yields (Python's `async def` with `yield`).
///
/// [`start`](AsyncGen::start) and [`send`](AsyncGen::send) return futures
/// that complete when the body yields or returns. An `AsyncGen<Y, (), ()>`
/// is a [`Stream`] of its yields, which ends when the body returns, and
/// also where a resume would have returned an error
/// ([`GenError::Misuse`], [`GenError::TooDeep`]): resume with
/// [`send`](AsyncGen::send), or poll with
/// [`try_poll_next`](AsyncGen::try_poll_next), to see those.
///
/// `B` is the boxed body's type: `Send` for [`AsyncGen::new_send`] (see
/// [`SendAsyncGen`], which is then `Send` itself), not necessarily for
/// [`AsyncGen::new`].
///
/// ```
/// use coro::{AsyncGen, GenState};
/// use futures_executor::block_on;
///
/// let mut g = AsyncGen::new(|co| async move {
///     let mut total = 0;
///     for _ in 0..3 {
///         // Any future can be awaited between yields.
///         let n: u32 = async { 10 }.await;
///         total += co.yield_(n).await;
///     }
///     total
/// });
/// block_on(async {
///     assert_eq!(g.start().await, Ok(GenState::Yielded(10)));
///     assert_eq!(g.send(1).await, Ok(GenState::Yielded(10)));
///     assert_eq!(g.send(2).await, Ok(GenState::Yielded(10)));
///     assert_eq!(g.send(3).await, Ok(GenState::Complete(6)));
/// });
/// ```
pub struct AsyncGen<Y, R = (), S = (), B: ?Sized = dyn Future<Output = R>> {
    raw: Raw<Y, R, S, B>,
}

/// An [`AsyncGen`] whose body is `Send`, and which is therefore `Send`
/// itself (as are its [`Resume`] futures and its stream).
pub type SendAsyncGen<Y, R = (), S = ()> = AsyncGen<Y, R, S, dyn Future<Output = R> + Send>;

impl<'a, Y, R, S> AsyncGen<Y, R, S, dyn Future<Output = R> + 'a> {
    /// Makes an asynchronous generator from a closure that receives the
    /// [`Co`] and returns the body. Nothing of the body runs until the
    /// first resume.
    #[inline]
    pub fn new<F, Fut>(producer: F) -> Self
    where
        F: FnOnce(Co<Y, S>) -> Fut,
        Fut: Future<Output = R> + 'a,
    {
        let id = Id::fresh();
        let body = Box::pin(producer(Co::new(id.clone())));
        AsyncGen {
            raw: Raw::new(body, id),
        }
    }
}

impl<'a, Y, R, S> AsyncGen<Y, R, S, dyn Future<Output = R> + Send + 'a> {
    /// Like [`AsyncGen::new`], for a `Send` body; the generator is then
    /// `Send`, so it can be held across `.await`s in multi-threaded
    /// runtimes.
    ///
    /// ```
    /// use coro::SendAsyncGen;
    ///
    /// fn assert_send<T: Send>(_: &T) {}
    /// let g: SendAsyncGen<u32> = SendAsyncGen::new_send(|co| async move {
    ///     co.yield_(1).await;
    /// });
    /// assert_send(&g);
    /// ```
    #[inline]
    pub fn new_send<F, Fut>(producer: F) -> Self
    where
        F: FnOnce(Co<Y, S>) -> Fut,
        Fut: Future<Output = R> + Send + 'a,
    {
        let id = Id::fresh();
        let body = Box::pin(producer(Co::new(id.clone())));
        AsyncGen {
            raw: Raw::new(body, id),
        }
    }
}

impl<Y, R, S, B: ?Sized + Future<Output = R>> AsyncGen<Y, R, S, B> {
    /// Runs the body to its first yield. The future's errors are those of
    /// [`Gen::start`](crate::Gen::start), except that
    /// [`GenError::Blocked`] never happens: a pending future in the body
    /// makes this future pending too.
    ///
    /// After a resume that was dropped while the body waited on a future
    /// (see [`send`](AsyncGen::send)), `start` runs the body on from there
    /// to its next yield, sending nothing.
    pub fn start(&mut self) -> Resume<'_, Y, R, S, B> {
        let early = if self.raw.at_yield() && self.raw.body.is_some() {
            Some(GenError::AlreadyStarted)
        } else {
            None
        };
        Resume {
            owner: self,
            input: None,
            early,
            begun: false,
            failed: false,
        }
    }

    /// Resumes the body with `value` and runs it to its next yield or its
    /// end. The future's errors are those of
    /// [`Gen::send`](crate::Gen::send), except that
    /// [`GenError::Blocked`] never happens.
    ///
    /// Dropping the future before it completes cancels the resume where
    /// it is: if the body had not received `value` yet, it is still at its
    /// yield and `value` is dropped; if it had, and was waiting on another
    /// future, it stays between two yields. A `send` then has no yield to
    /// deliver to and returns [`GenError::Running`];
    /// [`start`](AsyncGen::start) runs the body on to its next yield.
    ///
    /// A value of no size (`()`) is the exception. A yield that a
    /// `select!` in the body dropped leaves it behind, losing nothing, so
    /// a resume dropped while the body still held the value cannot tell
    /// whether the body is at that yield (a combinator had not polled it
    /// yet) or past it: the generator stays at its yield. A `send(())`
    /// then runs the body on from wherever it is, its `()` taken by that
    /// yield or dropped by the next one (nothing is lost either way), and
    /// `start` returns [`GenError::AlreadyStarted`].
    pub fn send(&mut self, value: S) -> Resume<'_, Y, R, S, B> {
        let early = if self.raw.body.is_none() {
            None
        } else if !self.raw.started() {
            Some(GenError::NotStarted)
        } else if !self.raw.at_yield() {
            Some(GenError::Running)
        } else {
            None
        };
        Resume {
            owner: self,
            input: Some(value),
            early,
            begun: false,
            failed: false,
        }
    }
}

impl<Y, R, T, E, B: ?Sized + Future<Output = R>> AsyncGen<Y, R, Result<T, E>, B> {
    /// Resumes the body with `Err(error)` at its yield (Python's
    /// `athrow`); see [`Gen::throw`](crate::Gen::throw).
    pub fn throw(&mut self, error: E) -> Resume<'_, Y, R, Result<T, E>, B> {
        self.send(Err(error))
    }
}

impl<Y, R, S, B: ?Sized> AsyncGen<Y, R, S, B> {
    /// Drops the body now, running its destructors (Python's `aclose()`,
    /// without running the body further). Later resumes return
    /// [`GenError::Finished`].
    pub fn close(&mut self) {
        self.raw.close();
    }

    /// Whether the body returned, panicked or was closed.
    pub fn is_complete(&self) -> bool {
        self.raw.is_complete()
    }

    /// Whether the body has been resumed at least once.
    pub fn is_started(&self) -> bool {
        self.raw.started()
    }
}

impl<Y, B: ?Sized + Future<Output = ()>> AsyncGen<Y, (), (), B> {
    /// Polls for the next yield as [`Stream::poll_next`] does, but with the
    /// error a resume would have returned ([`GenError::Misuse`],
    /// [`GenError::TooDeep`]) as `Some(Err(_))`, once, where the stream
    /// just ends: for a consumer that must tell a body that failed from
    /// one that returned (a streamed answer that would otherwise pass a
    /// truncated body off as whole). After the error, or the end, `None`.
    ///
    /// ```
    /// use coro::{AsyncGen, GenError};
    /// use futures_executor::block_on;
    /// use std::future::poll_fn;
    ///
    /// let mut inner = AsyncGen::new(|co| async move { co.yield_(2).await });
    /// block_on(inner.start()).unwrap();
    /// let mut g = AsyncGen::new(|co| async move {
    ///     co.yield_(1).await;
    ///     // Delegating to a generator already started is a misuse.
    ///     co.yield_from(inner).await;
    /// });
    /// block_on(async {
    ///     assert_eq!(poll_fn(|cx| g.try_poll_next(cx)).await, Some(Ok(1)));
    ///     assert_eq!(poll_fn(|cx| g.try_poll_next(cx)).await, Some(Err(GenError::Misuse)));
    ///     assert_eq!(poll_fn(|cx| g.try_poll_next(cx)).await, None);
    /// });
    /// ```
    pub fn try_poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Y, GenError>>> {
        let raw = &mut self.raw;
        // Send `()` only to a body waiting at a yield; a body waiting on
        // another future (a previous poll returned `Pending`) just goes on.
        let input = if raw.at_yield() {
            Slot::Sent(())
        } else {
            Slot::Empty
        };
        // A `()` the body did not take goes again next time (the body is
        // still at its yield).
        let failed = match raw.poll_body(input, Some(cx), &mut None) {
            Step::Yielded(y) => return Poll::Ready(Some(Ok(y))),
            Step::Pending => return Poll::Pending,
            Step::Complete(()) | Step::Finished => None,
            Step::Misuse => Some(GenError::Misuse),
            Step::TooDeep => Some(GenError::TooDeep),
        };
        raw.close();
        Poll::Ready(failed.map(Err))
    }
}

impl<Y, B: ?Sized + Future<Output = ()>> Stream for AsyncGen<Y, (), (), B> {
    type Item = Y;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Y>> {
        match self.get_mut().try_poll_next(cx) {
            Poll::Ready(Some(Ok(y))) => Poll::Ready(Some(y)),
            Poll::Ready(Some(Err(_)) | None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<Y, B: ?Sized + Future<Output = ()>> FusedStream for AsyncGen<Y, (), (), B> {
    fn is_terminated(&self) -> bool {
        self.raw.is_complete()
    }
}

impl<Y, R, S, B: ?Sized> fmt::Debug for AsyncGen<Y, R, S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncGen")
            .field("state", &self.raw)
            .finish()
    }
}

impl<Y, R, S, B: ?Sized + Future<Output = R>> Delegate<Y, S> for AsyncGen<Y, R, S, B> {
    type Return = R;
    type Body = B;

    fn into_raw(self) -> Raw<Y, R, S, B> {
        self.raw
    }
}

/// The future of [`AsyncGen::start`], [`AsyncGen::send`] and
/// [`AsyncGen::throw`].
#[must_use = "a resume does nothing unless awaited"]
pub struct Resume<'g, Y, R, S, B: ?Sized> {
    owner: &'g mut AsyncGen<Y, R, S, B>,
    input: Option<S>,
    early: Option<GenError>,
    begun: bool,
    /// It answered with its early error.
    failed: bool,
}

// `Resume` never pins its fields.
impl<Y, R, S, B: ?Sized> Unpin for Resume<'_, Y, R, S, B> {}

impl<Y, R, S, B: ?Sized + Future<Output = R>> Future for Resume<'_, Y, R, S, B> {
    type Output = Result<GenState<Y, R>, GenError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(e) = this.early.take() {
            this.begun = true;
            // Polled again, it must not send the value after all (the
            // generator stays as it was).
            this.input = None;
            this.failed = true;
            return Poll::Ready(Err(e));
        }
        if this.failed {
            return Poll::Ready(Err(GenError::Finished));
        }
        if this.begun && this.input.is_none() && this.owner.raw.at_yield() {
            // Polled again after completing.
            return Poll::Ready(Err(GenError::Finished));
        }
        this.begun = true;
        let input = this.input.take().map_or(Slot::Empty, Slot::Sent);
        // A value the body did not take yet comes back to `input`: the
        // body is still at its yield, and the value goes again when the
        // body's combinator, which woke this context, has it polled.
        match this.owner.raw.poll_body(input, Some(cx), &mut this.input) {
            Step::Yielded(y) => Poll::Ready(Ok(GenState::Yielded(y))),
            Step::Complete(r) => Poll::Ready(Ok(GenState::Complete(r))),
            Step::Pending => Poll::Pending,
            Step::Finished => Poll::Ready(Err(GenError::Finished)),
            Step::Misuse => Poll::Ready(Err(GenError::Misuse)),
            Step::TooDeep => Poll::Ready(Err(GenError::TooDeep)),
        }
    }
}

impl<Y, R, S, B: ?Sized> fmt::Debug for Resume<'_, Y, R, S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resume")
            .field("gen", &self.owner.raw)
            .field("begun", &self.begun)
            .finish()
    }
}
