//! Synchronous generators: [`Gen`].

use std::fmt;
use std::future::Future;
use std::iter::FusedIterator;

use crate::co::{Co, Delegate};
use crate::core::{Raw, Step};
use crate::raw::{Id, Slot};
use crate::{GenError, GenState};

/// A generator: a body that yields values of type `Y`, receives values of
/// type `S` at each yield, and returns a value of type `R`.
///
/// The body is an `async` block given a [`Co`]; `co.yield_(y).await` is
/// Python's `yield y`. The body runs only inside [`start`](Gen::start),
/// [`send`](Gen::send), [`throw`](Gen::throw) and (for a generator that
/// takes no sends) [`Iterator::next`], on the caller's thread, up to its
/// next yield.
///
/// | Python                         | here                                   |
/// |--------------------------------|----------------------------------------|
/// | `g = f()` (a generator function) | [`Gen::new(\|co\| async move { .. })`](Gen::new) |
/// | `r = yield x`                  | `let r = co.yield_(x).await;`          |
/// | `next(g)` / `g.send(None)`     | [`g.start()`](Gen::start)              |
/// | `g.send(v)`                    | [`g.send(v)`](Gen::send)               |
/// | `StopIteration(value)`         | [`Ok(GenState::Complete(value))`](GenState::Complete) |
/// | `g.throw(e)`                   | [`g.throw(e)`](Gen::throw) (send type `Result<T, E>`) |
/// | `g.close()`                    | [`g.close()`](Gen::close)              |
/// | `yield from h`                 | [`co.yield_from(h).await`](Co::yield_from) |
/// | `for x in g`                   | `for x in g` (when `S` and `R` are `()`) |
///
/// The body is boxed once, when the generator is made; resumes allocate
/// nothing. `B` is the boxed body's type: a `dyn Future` that is `Send`
/// for [`Gen::new_send`] (see [`SendGen`]) and need not be for
/// [`Gen::new`].
///
/// A generator cannot be resumed from inside its own body (Python's
/// "generator already executing"): resuming takes `&mut self`, so a body
/// that could resume its own generator would have to borrow the place the
/// generator is kept in, for as long as the generator lives, and that
/// place could then never receive it. The borrow checker refuses:
///
/// ```compile_fail,E0506
/// use coro::Gen;
/// use std::future::Future;
///
/// // Python: `def f(): yield me.send(None)` raises "generator already
/// // executing" at run time.
/// let mut me: Option<Gen<u32, (), (), dyn Future<Output = ()> + '_>> = None;
/// let g = Gen::new(|co| {
///     let me = &mut me;
///     async move {
///         if let Some(me) = me {
///             let _ = me.send(()); // the generator that is running
///         }
///         co.yield_(1).await;
///     }
/// });
/// me = Some(g); // error[E0506]: cannot assign to `me` because it is borrowed
/// ```
///
/// The same body borrowing another generator's place compiles (a
/// generator may resume others), so it is the borrow of its own place
/// that the compiler refuses above:
///
/// ```
/// use coro::{Gen, GenState};
/// use std::future::Future;
///
/// let mut other: Option<Gen<u32, (), (), dyn Future<Output = ()> + '_>> = None;
/// let mut me: Option<Gen<u32, (), (), dyn Future<Output = ()> + '_>> = None;
/// let g = Gen::new(|co| {
///     let other = &mut other;
///     async move {
///         if let Some(other) = other {
///             let _ = other.send(());
///         }
///         co.yield_(1).await;
///     }
/// });
/// me = Some(g);
/// assert_eq!(me.as_mut().map(Gen::start), Some(Ok(GenState::Yielded(1))));
/// ```
///
/// Behind shared ownership
/// (`Rc<RefCell<Gen<..>>>`) the attempt is the `RefCell`'s borrow error
/// at run time, never a second resume of a running body.
pub struct Gen<Y, R = (), S = (), B: ?Sized = dyn Future<Output = R>> {
    raw: Raw<Y, R, S, B>,
}

/// A [`Gen`] whose body is `Send`, and which is therefore `Send` itself.
pub type SendGen<Y, R = (), S = ()> = Gen<Y, R, S, dyn Future<Output = R> + Send>;

impl<'a, Y, R, S> Gen<Y, R, S, dyn Future<Output = R> + 'a> {
    /// Makes a generator from a closure that receives the [`Co`] and
    /// returns the body. Nothing of the body runs until
    /// [`start`](Gen::start).
    ///
    /// ```
    /// use coro::{Gen, GenState};
    ///
    /// let mut g = Gen::new(|co| async move {
    ///     let a: i32 = co.yield_("first").await;
    ///     let b: i32 = co.yield_("second").await;
    ///     a + b
    /// });
    /// assert_eq!(g.start(), Ok(GenState::Yielded("first")));
    /// assert_eq!(g.send(1), Ok(GenState::Yielded("second")));
    /// assert_eq!(g.send(2), Ok(GenState::Complete(3)));
    /// ```
    #[inline]
    pub fn new<F, Fut>(producer: F) -> Self
    where
        F: FnOnce(Co<Y, S>) -> Fut,
        Fut: Future<Output = R> + 'a,
    {
        let id = Id::fresh();
        let body = Box::pin(producer(Co::new(id.clone())));
        Gen {
            raw: Raw::new(body, id),
        }
    }
}

impl<'a, Y, R, S> Gen<Y, R, S, dyn Future<Output = R> + Send + 'a> {
    /// Like [`Gen::new`], for a `Send` body: the generator can then be
    /// moved to (and resumed on) another thread.
    #[inline]
    pub fn new_send<F, Fut>(producer: F) -> Self
    where
        F: FnOnce(Co<Y, S>) -> Fut,
        Fut: Future<Output = R> + Send + 'a,
    {
        let id = Id::fresh();
        let body = Box::pin(producer(Co::new(id.clone())));
        Gen {
            raw: Raw::new(body, id),
        }
    }
}

impl<Y, R, S, F: Future<Output = R>> Gen<Y, R, S, F> {
    /// Like [`Gen::new`], but the body's type stays part of the
    /// generator's type instead of being erased to a `dyn Future`, so
    /// resuming calls the body directly and the compiler can inline it:
    /// the fastest generator, for hot loops, at the price of a type that
    /// cannot be named (`Gen<Y, R, S, impl Future>`).
    ///
    /// ```
    /// use coro::Gen;
    ///
    /// let squares = Gen::new_inline(|co| async move {
    ///     for i in 1..=3u32 {
    ///         co.yield_(i * i).await;
    ///     }
    /// });
    /// assert_eq!(squares.collect::<Vec<_>>(), [1, 4, 9]);
    /// ```
    #[inline]
    pub fn new_inline<P>(producer: P) -> Self
    where
        P: FnOnce(Co<Y, S>) -> F,
    {
        let id = Id::fresh();
        let body = Box::pin(producer(Co::new(id.clone())));
        Gen {
            raw: Raw::new(body, id),
        }
    }
}

impl<Y, R, S, B: ?Sized + Future<Output = R>> Gen<Y, R, S, B> {
    /// Runs the body to its first yield (Python's `next(g)`, or
    /// `g.send(None)` on a new generator).
    ///
    /// # Errors
    ///
    /// [`GenError::AlreadyStarted`], [`GenError::Finished`] after a close,
    /// and [`GenError::Blocked`], [`GenError::Misuse`] or
    /// [`GenError::TooDeep`] as for [`send`](Gen::send).
    //
    // Out of line: run once per generator, it would otherwise be a second
    // place in the caller that polls the body, and with two the compiler
    // may keep the body's poll out of line for `send` too (a round trip of
    // 6.0 ns instead of 3.0 in a program of its own).
    #[inline(never)]
    pub fn start(&mut self) -> Result<GenState<Y, R>, GenError> {
        if self.raw.started() && self.raw.body.is_some() {
            return Err(GenError::AlreadyStarted);
        }
        self.resume(Slot::Empty)
    }

    /// Resumes the body with `value`, which becomes the value of the
    /// `co.yield_(..).await` it is suspended at, and runs it to its next
    /// yield or to its end.
    ///
    /// # Errors
    ///
    /// - [`GenError::NotStarted`] before [`start`](Gen::start);
    /// - [`GenError::Finished`] after the body returned, panicked or was
    ///   closed;
    /// - [`GenError::Blocked`] if the body awaited a pending future that is
    ///   not a yield, [`GenError::Misuse`] if it awaited another generator's
    ///   [`Co`], [`GenError::TooDeep`] if its delegations went deeper than
    ///   [`MAX_DELEGATION_DEPTH`](crate::MAX_DELEGATION_DEPTH); each closes
    ///   the generator.
    ///
    /// # Panics
    ///
    /// A panic in the body propagates to the caller; the generator is then
    /// finished.
    #[inline(always)]
    pub fn send(&mut self, value: S) -> Result<GenState<Y, R>, GenError> {
        if self.raw.hidden_at_yield() {
            // A value the body did not take is dropped after the body (see
            // `resume`).
            let mut untaken = None;
            return match self.raw.poll_hidden(Slot::Sent(value), &mut untaken) {
                Ok(y) => Ok(GenState::Yielded(y)),
                Err(step) => self.outcome(step),
            };
        }
        self.send_other(value)
    }

    /// [`send`](Gen::send) in every state but the common one: before
    /// `start`, after the end, or with the frame published.
    #[inline(never)]
    fn send_other(&mut self, value: S) -> Result<GenState<Y, R>, GenError> {
        if !self.raw.started() && self.raw.body.is_some() {
            return Err(GenError::NotStarted);
        }
        self.resume(Slot::Sent(value))
    }

    #[inline(always)]
    fn resume(&mut self, input: Slot<Y, S>) -> Result<GenState<Y, R>, GenError> {
        // Dropped after `outcome` closed a body that did not take it: the
        // body's destructors run first, as when it is closed.
        let mut untaken = None;
        let step = self.raw.poll_body(input, None, &mut untaken);
        self.outcome(step)
    }

    /// What a resume that came to `step` returns.
    #[inline(always)]
    fn outcome(&mut self, step: Step<Y, R>) -> Result<GenState<Y, R>, GenError> {
        match step {
            Step::Yielded(y) => Ok(GenState::Yielded(y)),
            Step::Complete(r) => Ok(GenState::Complete(r)),
            Step::Finished => Err(GenError::Finished),
            Step::Misuse => Err(GenError::Misuse),
            Step::TooDeep => Err(GenError::TooDeep),
            // Also pending before the yield took the value (a combinator
            // in the body polled other futures first): a synchronous resume
            // polls its body once per value, so the value cannot be
            // delivered. Polling again here measurably slows every resume.
            Step::Pending => {
                // Nothing could ever wake the body.
                self.raw.close();
                Err(GenError::Blocked)
            }
        }
    }
}

impl<Y, R, S, B: ?Sized> Gen<Y, R, S, B> {
    /// Drops the body now, running the destructors of everything it holds
    /// (Python's `close()`). Later resumes return [`GenError::Finished`].
    /// Closing a finished generator does nothing.
    ///
    /// No resume of this generator runs while the body is dropped: a
    /// destructor in it that polls a yield of its generator (Python's
    /// `finally: yield`, for which `close` raises "generator ignored
    /// GeneratorExit") is a [`Co`] awaited outside its generator: a panic,
    /// or, inside the body of another generator, that one's misuse. (Under
    /// a context made inside the body of a synchronous generator, a yield
    /// of another generator cannot be told from one of that generator's
    /// own that missed its frame: it is ignored, and reported only if it
    /// is polled again.)
    pub fn close(&mut self) {
        self.raw.close();
    }

    /// Whether the body returned, panicked or was closed.
    pub fn is_complete(&self) -> bool {
        self.raw.is_complete()
    }

    /// Whether [`start`](Gen::start) was called.
    pub fn is_started(&self) -> bool {
        self.raw.started()
    }
}

impl<Y, R, T, E, B: ?Sized + Future<Output = R>> Gen<Y, R, Result<T, E>, B> {
    /// Resumes the body with `Err(error)` at the yield it is suspended at
    /// (Python's `throw`). A body that uses `?` on its yields then returns
    /// that error, which this call reports as
    /// [`GenState::Complete`]; a body that handles it goes on to its next
    /// yield.
    ///
    /// ```
    /// use coro::{Gen, GenState};
    ///
    /// let mut g = Gen::new(|co| async move {
    ///     let mut total = 0;
    ///     loop {
    ///         total += co.yield_(total).await?;
    ///     }
    ///     #[allow(unreachable_code)]
    ///     Ok::<(), String>(())
    /// });
    /// g.start().unwrap();
    /// assert_eq!(g.send(Ok(5)), Ok(GenState::Yielded(5)));
    /// assert_eq!(g.throw("stop".to_string()), Ok(GenState::Complete(Err("stop".to_string()))));
    /// assert!(g.is_complete());
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`send`](Gen::send): [`GenError::NotStarted`] before
    /// `start` (the body has no yield to receive the error yet).
    #[inline]
    pub fn throw(&mut self, error: E) -> Result<GenState<Y, R>, GenError> {
        self.send(Err(error))
    }
}

/// Each item is a yielded value; the iteration ends when the body
/// returns, and also when a resume fails (a [`GenError`], such as
/// [`GenError::Blocked`]): an `Iterator` has no room for the error, so a
/// caller that needs it resumes with [`start`](Gen::start) and
/// [`send`](Gen::send) instead.
impl<Y, B: ?Sized + Future<Output = ()>> Iterator for Gen<Y, (), (), B> {
    type Item = Y;

    #[inline]
    fn next(&mut self) -> Option<Y> {
        // `start` or `send(())`, through one call of the body's poll (which
        // the compiler may then inline).
        let input = if self.raw.started() {
            Slot::Sent(())
        } else {
            Slot::Empty
        };
        match self.resume(input) {
            Ok(GenState::Yielded(y)) => Some(y),
            _ => {
                self.raw.close();
                None
            }
        }
    }
}

impl<Y, B: ?Sized + Future<Output = ()>> FusedIterator for Gen<Y, (), (), B> {}

impl<Y, R, S, B: ?Sized> fmt::Debug for Gen<Y, R, S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gen").field("state", &self.raw).finish()
    }
}

impl<Y, R, S, B: ?Sized + Future<Output = R>> Delegate<Y, S> for Gen<Y, R, S, B> {
    type Return = R;
    type Body = B;

    fn into_raw(self) -> Raw<Y, R, S, B> {
        self.raw
    }
}
