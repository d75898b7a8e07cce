//! The body's side of the protocol: [`Co`], its yields and delegation.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::core::{Phase, Raw, Unwind};
use crate::raw::{self, Id, Slot};

/// The handle a generator's body yields through: Python's `yield`
/// expression, given to the body when the generator is made.
///
/// `co.yield_(y).await` suspends the body, hands `y` to the resumer, and
/// evaluates to the value of the next [`send`](crate::Gen::send).
/// `co.yield_from(inner).await` runs another generator in place (Python's
/// `yield from`).
///
/// A `Co` is `Send` and `Sync` whatever `Y` and `S` are, so it never stops
/// a body from being `Send`: values only ever pass through it on the
/// thread that resumes the generator.
///
/// # Panics
///
/// Awaiting a `Co`'s futures outside the body of its own generator is a
/// mistake. Inside another generator's body it makes that generator's
/// resume return [`GenError::Misuse`](crate::GenError::Misuse); outside
/// of any generator (for instance after the `Co` was moved out of the body
/// and handed to an executor) the poll panics, since the future could
/// otherwise never complete. So does a poll on another thread than the
/// resume's, with the context the resume gave the body (lent to a scoped
/// thread, say): values never cross threads through a generator.
///
/// A yield may be polled under a context made inside the body, as a
/// combinator with wakers of its own (`FuturesUnordered`) does: it still
/// reaches its generator, and values flow both ways. In a synchronous
/// [`Gen`](crate::Gen) such a yield wakes that context when it suspends,
/// so that the combinator polls it again on the next resume; the first
/// time it happens the resume polls the body once more, and the generator
/// is then resumed a little more slowly (its frame is published in a
/// thread-local as well as in the context). The fast path is a yield
/// polled with the context the resume gives the body, which is how
/// `.await`, `join!`, `select!` and [`yield_from`](Co::yield_from) poll
/// it.
///
/// A blocking executor inside the body (`block_on(co.yield_(x))`) can
/// never let the generator suspend, since the value it waits for is sent
/// by the caller of this very resume: once such a loop has polled the
/// yield 65,536 times in a row with nothing sent (far more than any
/// combinator does in one resume; a body that polls a combinator holding
/// a yield in a loop of more turns than that, within one resume, is taken
/// for one), the yield panics rather than hang.
pub struct Co<Y, S = ()> {
    id: Id<Y, S>,
}

impl<Y, S> Co<Y, S> {
    #[inline]
    pub(crate) fn new(id: Id<Y, S>) -> Self {
        Co { id }
    }

    /// Suspends the body, handing `value` to the resumer; evaluates to the
    /// value sent by the next resume (Python's `r = yield value`).
    #[inline]
    pub fn yield_(&self, value: Y) -> Yield<'_, Y, S> {
        Yield {
            id: self.id.clone(),
            stage: Stage::Holding(value),
            _co: PhantomData,
        }
    }

    /// Runs `inner` to completion in place of this body (Python's
    /// `yield from`): each value `inner` yields is yielded by this
    /// generator, each value sent to this generator is sent to `inner`, and
    /// the expression evaluates to `inner`'s return value.
    ///
    /// Values go straight between the resumer and the innermost body,
    /// never copied from level to level. Each resume still passes through
    /// every level, on the thread's stack (as Python's `yield from`
    /// does): its cost grows with the depth, and a chain deeper than
    /// [`MAX_DELEGATION_DEPTH`] closes the generator with
    /// [`GenError::TooDeep`](crate::GenError::TooDeep) rather than overflow
    /// the stack.
    ///
    /// `inner` must not have been started (Python's `yield from` sends the
    /// first `None` itself; here the first resume of `inner` is its
    /// `start`). A started or finished `inner` makes the resume of this
    /// generator return [`GenError::Misuse`](crate::GenError::Misuse).
    #[inline]
    pub fn yield_from<G: Delegate<Y, S>>(
        &self,
        inner: G,
    ) -> YieldFrom<'_, Y, S, G::Return, G::Body> {
        let inner = inner.into_raw();
        let fresh = !inner.started() && inner.body.is_some();
        YieldFrom {
            id: &self.id,
            inner,
            fresh,
        }
    }
}

impl<Y, S> fmt::Debug for Co<Y, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Co").finish_non_exhaustive()
    }
}

mod sealed {
    pub trait Sealed {}
}

impl<Y, R, S, B: ?Sized> sealed::Sealed for crate::Gen<Y, R, S, B> {}
impl<Y, R, S, B: ?Sized> sealed::Sealed for crate::AsyncGen<Y, R, S, B> {}

/// A generator that [`Co::yield_from`] can delegate to: a [`Gen`](crate::Gen)
/// or an [`AsyncGen`](crate::AsyncGen) with the same yield and send types.
///
/// This trait is sealed.
pub trait Delegate<Y, S>: sealed::Sealed + Sized {
    /// What the generator returns, and so what `yield_from` evaluates to.
    type Return;
    /// The generator's boxed body.
    #[doc(hidden)]
    type Body: ?Sized + Future<Output = Self::Return>;
    #[doc(hidden)]
    fn into_raw(self) -> Raw<Y, Self::Return, S, Self::Body>;
}

/// The future of [`Co::yield_`].
#[must_use = "a yield does nothing unless awaited"]
pub struct Yield<'a, Y, S> {
    // A copy rather than a reference: one load less per poll.
    id: Id<Y, S>,
    stage: Stage<Y>,
    _co: PhantomData<&'a Co<Y, S>>,
}

/// Where a [`Yield`] is.
enum Stage<Y> {
    /// The value is yet to be handed out.
    Holding(Y),
    /// The value was handed out; the next resume sends the result.
    Out,
}

// `Yield` never pins its fields.
impl<Y, S> Unpin for Yield<'_, Y, S> {}

impl<Y, S> Future for Yield<'_, Y, S> {
    type Output = S;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<S> {
        let this = self.get_mut();
        let Some(frame) = raw::frame(&this.id, cx) else {
            return raw::not_found(cx);
        };
        // Set when a yield whose value is out finds another's value there,
        // or nothing.
        let (mut other_out, mut nothing) = (false, false);
        let progress = match std::mem::replace(&mut this.stage, Stage::Out) {
            // First poll: hand the value out and suspend.
            Stage::Holding(y) => {
                match frame.slot.replace(Slot::Yielded(y)) {
                    Slot::Empty => true,
                    // A `()` (or another value of no size and no drop) left
                    // by a yield that `select!` dropped loses nothing: the
                    // resumes of a `Stream` or an `Iterator` send them.
                    Slot::Sent(_) if raw::lossless::<S>() => true,
                    // Another yield of this generator has a value out (two
                    // polled together, by `join!`), or a value sent was
                    // left untaken (its yield was dropped, by `select!`):
                    // a value would be lost. The resume reports a misuse;
                    // the yield stays pending, as below (which wakes a
                    // context of the body's own, a blocking executor's
                    // say, so that it polls again rather than wait for
                    // good for a resume).
                    _ => {
                        frame.slot.set(Slot::Clash);
                        false
                    }
                }
            }
            // Resumed: take what was sent.
            Stage::Out => match frame.slot.take() {
                Slot::Sent(s) => return Poll::Ready(s),
                other => {
                    other_out = matches!(other, Slot::Yielded(_));
                    nothing = matches!(other, Slot::Empty);
                    frame.slot.set(other);
                    false
                }
            },
        };
        if frame.foreign(cx) {
            raw::suspend_foreign(cx, progress);
            return Poll::Pending;
        }
        if other_out {
            // Under the resume's own context, a value handed out in this
            // resume is another yield's (this one's was taken when the
            // last resume ended): two polled together, the other first,
            // which for a send type of no size could not tell that the
            // value sent was this one's. The resume reports a misuse,
            // where this yield would otherwise wait for good for a value
            // never sent. (Under another context, as a blocking
            // executor's, the value may be this yield's own, not yet
            // taken: that is the foreign case above.)
            frame.slot.set(Slot::Clash);
        } else if nothing {
            // Under the resume's own context, with nothing sent: a resume
            // sends a value to a body at a yield (and none only to a body
            // that is not), so this yield took its value already and
            // returned, and is polled again. It would wait for good for a
            // value no resume sends it (an asynchronous resume's body
            // waiting on nothing that wakes it): the resume reports a
            // misuse, as for a `yield_from` polled again.
            frame.mark_misused();
        }
        Poll::Pending
    }
}

impl<Y, S> fmt::Debug for Yield<'_, Y, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Yield")
            .field("suspended", &matches!(self.stage, Stage::Out))
            .finish_non_exhaustive()
    }
}

/// How deep a chain of [`Co::yield_from`] may go on one thread, counting
/// the delegations of every generator that thread is resuming. Each level
/// polls the next on the thread's stack, so an unbounded chain (a
/// recursive generator over deep data) would overflow it, which aborts
/// the process; past this depth the resume returns
/// [`GenError::TooDeep`](crate::GenError::TooDeep) instead (Python's
/// `RecursionError`). Deep enough for any structure a program means to
/// delegate through, small enough for the 2 MiB stack of a spawned thread
/// when the bodies' frames are small (a level of a body with no large
/// locals takes about 1.2 KiB of it in a debug build, 0.2 KiB optimized).
///
/// A chain whose levels take more is stopped by the stack it uses
/// instead: past 1 MiB of the thread's stack below its first level (a
/// body with a 4 KiB array on its stack reaches that in about 120 levels
/// of a debug build), the resume returns `TooDeep` too. A thread with
/// less than that to spare when it resumes the chain can still overflow.
///
/// The bound is on polling. A chain made whole before it runs (each
/// generator given the next when it is made, rather than making it in its
/// body) is also dropped level by level, on the stack, like any deeply
/// nested `Box`: about 12,000 levels overflow a 2 MiB stack there (in a
/// debug build), whatever this bound.
///
/// ```
/// use coro::{Gen, GenError, GenState, MAX_DELEGATION_DEPTH};
///
/// fn chain(depth: u32) -> Gen<u32> {
///     Gen::new(move |co| async move {
///         if depth == 0 {
///             co.yield_(1).await;
///         } else {
///             co.yield_from(chain(depth - 1)).await;
///         }
///     })
/// }
/// assert_eq!(chain(10).start(), Ok(GenState::Yielded(1)));
/// let mut too_deep = chain(MAX_DELEGATION_DEPTH + 1);
/// assert_eq!(too_deep.start(), Err(GenError::TooDeep));
/// assert!(too_deep.is_complete());
/// ```
pub const MAX_DELEGATION_DEPTH: u32 = 500;

/// How much of its thread's stack a chain of delegations may use, from
/// its first level to its deepest (see [`MAX_DELEGATION_DEPTH`]).
const MAX_DELEGATION_STACK: usize = 1 << 20;

thread_local! {
    /// The delegations this thread is polling through, nested.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// Where on the stack the outermost of them was entered.
    static BASE: Cell<usize> = const { Cell::new(0) };
}

/// One level of delegation being polled, counted in [`DEPTH`] until
/// dropped (also while unwinding).
struct Level;

impl Level {
    /// A level more, unless that would pass [`MAX_DELEGATION_DEPTH`] or
    /// [`MAX_DELEGATION_STACK`].
    #[inline]
    fn enter() -> Option<Level> {
        // An address on the stack, here: only compared, never used.
        let marker = 0u8;
        let here = std::ptr::from_ref(&marker).addr();
        let n = DEPTH.get();
        if n == 0 {
            BASE.set(here);
        } else if n >= MAX_DELEGATION_DEPTH
            // Miri gives each local an address of its own choosing.
            || (!cfg!(miri) && BASE.get().abs_diff(here) > MAX_DELEGATION_STACK)
        {
            return None;
        }
        DEPTH.set(n + 1);
        Some(Level)
    }
}

impl Drop for Level {
    fn drop(&mut self) {
        DEPTH.set(DEPTH.get() - 1);
    }
}

/// The future of [`Co::yield_from`].
#[must_use = "a delegation does nothing unless awaited"]
pub struct YieldFrom<'a, Y, S, R, B: ?Sized> {
    id: &'a Id<Y, S>,
    inner: Raw<Y, R, S, B>,
    fresh: bool,
}

impl<Y, S, R, B: ?Sized + Future<Output = R>> Future for YieldFrom<'_, Y, S, R, B> {
    type Output = R;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        let this = self.get_mut();
        if !this.fresh || this.inner.body.is_none() {
            return raw::not_found(cx);
        }
        let Some(frame) = raw::frame(this.id, cx) else {
            return raw::not_found(cx);
        };
        // The inner body runs in our resumer's frame under its own id: both
        // generators have the same `Y` and `S`, so its yields reach the
        // resumer directly. The outer id is put back also when the inner
        // body panics: the panic may be caught inside the outer body,
        // whose yields must then reach the frame again.
        let Some(_level) = Level::enter() else {
            // The resume closes the generator, and drops this chain.
            frame.mark_too_deep();
            // As a yield that stays pending: a context of the body's own
            // is woken, so that a blocking executor polls again (and
            // stops at the limit of `suspend_foreign`) rather than wait
            // for good.
            if frame.foreign(cx) {
                raw::suspend_foreign(cx, false);
            }
            return Poll::Pending;
        };
        let poll = {
            // A panic of the inner body finishes the inner generator, as
            // its own resume would (and the delegation with it): dropped
            // once the outer id is back.
            let unwind = Unwind {
                body: &mut this.inner.body,
                phase: &mut this.inner.phase,
            };
            let _restore = raw::Delegating::new(frame, &this.inner.id);
            let Some(body) = unwind.body.as_mut() else {
                std::mem::forget(unwind);
                return raw::not_found(cx);
            };
            let poll = body.as_mut().poll(cx);
            std::mem::forget(unwind);
            poll
        };
        if poll.is_ready() {
            this.inner.body = None;
        }
        // For `Debug` only: the inner generator is never resumed on its own.
        this.inner.phase = Phase::Running;
        poll
    }
}

impl<Y, S, R, B: ?Sized> fmt::Debug for YieldFrom<'_, Y, S, R, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("YieldFrom");
        if self.fresh && self.inner.started() && !self.inner.is_complete() {
            d.field("inner", &format_args!("delegating"));
        } else {
            d.field("inner", &self.inner);
        }
        d.finish()
    }
}
