//! The machinery shared by [`Gen`](crate::Gen) and
//! [`AsyncGen`](crate::AsyncGen): a boxed body and one poll of it.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::raw::{self, Enter, Frame, FrameWaker, Hide, Id, Slot, Spins};

/// A generator's body and the bookkeeping of the protocol around it.
///
/// `pub` only so that the sealed [`Delegate`](crate::Delegate) trait can
/// name it; it is not reachable from outside the crate.
pub struct Raw<Y, R, S, B: ?Sized> {
    /// `None` once the body returned, panicked, or was closed.
    pub(crate) body: Option<Pin<Box<B>>>,
    pub(crate) id: Id<Y, S>,
    pub(crate) phase: Phase,
    /// A synchronous resume publishes its frame in the thread-local, as
    /// well as in its context: set once one of the body's yields was
    /// polled under a context made inside the body.
    publish: bool,
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
    /// Pending on something that is not a yield, or before the yield it
    /// is at took the value sent (see `untaken`); the body is kept.
    Pending,
    /// A `Co` was awaited outside its generator; the body has been dropped.
    Misuse,
    /// A delegation went deeper than
    /// [`MAX_DELEGATION_DEPTH`](crate::MAX_DELEGATION_DEPTH); the body has
    /// been dropped.
    TooDeep,
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
            publish: false,
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
    /// yield the body is suspended at, or nothing), and with `cx` (an
    /// executor's, for an asynchronous generator) or else a context whose
    /// waker wakes nothing (for a synchronous one).
    ///
    /// The body's yields find the frame through the context's waker when
    /// it is a [`FrameWaker`] (always the case for a synchronous resume:
    /// the fast path), and through the thread-local otherwise (see the
    /// `raw` module for a synchronous body that makes contexts of its
    /// own).
    ///
    /// If the body panics, it is dropped while unwinding and the generator
    /// is finished.
    ///
    /// A value sent that the body returned `Pending` before taking goes to
    /// `untaken` (the body is still at its yield): an asynchronous resume
    /// offers it again at its next poll; a synchronous one, which polls
    /// its body once per value, drops it (its caller reports `Blocked`).
    #[inline(always)]
    pub(crate) fn poll_body(
        &mut self,
        input: Slot<Y, S>,
        cx: Option<&mut Context<'_>>,
        untaken: &mut Option<S>,
    ) -> Step<Y, R> {
        // A frame waker of an enclosing synchronous resume (one whose body
        // awaits this generator) would carry the wrong frame: replaced by
        // one of ours, which wakes nothing either.
        let cx = cx.filter(|cx| !raw::carries_frame(cx));
        let mut frame = Frame::new(&self.id, input, cx.is_none());
        let poll = {
            let unwind = Unwind {
                body: &mut self.body,
                phase: &mut self.phase,
            };
            let Some(body) = unwind.body.as_mut() else {
                std::mem::forget(unwind);
                return Step::Finished;
            };
            let poll = match cx {
                Some(cx) => {
                    let _restore = Spins::save().restore_on_drop();
                    raw::poll_async(&frame, body.as_mut(), cx)
                }
                // Not published in the thread-local: the frame's address
                // then stays within this call, and the compiler may keep it
                // in registers (a round trip of an inlined body costs about
                // half as much).
                None if !self.publish => {
                    let waker = FrameWaker::new(&frame);
                    let hide = Hide::new();
                    let poll = body.as_mut().poll(&mut Context::from_waker(waker.waker()));
                    if let Some(spins) = hide.missed() {
                        self.publish = true;
                        let after;
                        (after, frame) = after_miss(body.as_mut(), frame, poll, spins);
                        after
                    } else {
                        // Nothing was polled under another context, so
                        // nothing was counted (see `Hide::missed`).
                        poll
                    }
                }
                None => {
                    let poll;
                    (poll, frame) = poll_published(body.as_mut(), frame, Spins::save());
                    poll
                }
            };
            std::mem::forget(unwind);
            poll
        };
        self.settle(frame, poll, untaken)
    }

    /// Whether a synchronous resume may take [`poll_hidden`]: the body
    /// is suspended at a yield, and its frame is not published.
    ///
    /// [`poll_hidden`]: Raw::poll_hidden
    #[inline(always)]
    pub(crate) fn hidden_at_yield(&self) -> bool {
        // `phase == AtYield && !publish`, written so that the compiler
        // compares both bytes at once where it lays them side by side (a
        // round trip two instructions shorter).
        (u16::from(self.publish) << 8 | self.phase as u16) == Phase::AtYield as u16
    }

    /// [`poll_body`](Raw::poll_body) for a synchronous resume when
    /// [`hidden_at_yield`](Raw::hidden_at_yield): the common resume, with
    /// nothing checked that the state it is in decides, and anything but
    /// a value yielded returned at once, before the rest is settled. (With
    /// that rest out of line, as a cold call, the compiler kept the body's
    /// poll out of line in some programs: 143 instructions a round trip
    /// instead of 67, callgrind.)
    #[inline(always)]
    pub(crate) fn poll_hidden(
        &mut self,
        input: Slot<Y, S>,
        untaken: &mut Option<S>,
    ) -> Result<Y, Step<Y, R>> {
        debug_assert!(self.hidden_at_yield());
        let mut frame = Frame::new(&self.id, input, true);
        let poll = {
            let unwind = Unwind {
                body: &mut self.body,
                phase: &mut self.phase,
            };
            // (Always there at a yield.)
            let Some(body) = unwind.body.as_mut() else {
                std::mem::forget(unwind);
                return Err(Step::Finished);
            };
            // As the fast path of `poll_body` (written out again: as a
            // function of its own, which the compiler inlines all the
            // same, it measured slower for a body behind `dyn`).
            let waker = FrameWaker::new(&frame);
            let hide = Hide::new();
            let mut poll = body.as_mut().poll(&mut Context::from_waker(waker.waker()));
            if let Some(spins) = hide.missed() {
                self.publish = true;
                (poll, frame) = after_miss(body.as_mut(), frame, poll, spins);
            }
            std::mem::forget(unwind);
            poll
        };
        if poll.is_pending() && !frame.misused() {
            let slot = frame.slot.take();
            if let Slot::Yielded(y) = slot {
                // Still `AtYield`: nothing to write.
                return Ok(y);
            }
            frame.slot.set(slot);
        }
        Err(self.settle(frame, poll, untaken))
    }

    /// What a poll of the body comes to, given its frame after the poll.
    #[inline(always)]
    fn settle(&mut self, frame: Frame<Y, S>, poll: Poll<R>, untaken: &mut Option<S>) -> Step<Y, R> {
        if frame.misused() {
            self.finish();
            return if frame.too_deep() {
                Step::TooDeep
            } else {
                Step::Misuse
            };
        }
        match poll {
            Poll::Pending => {
                let slot = frame.slot.into_inner();
                // The common resume, tested on its own: measured faster
                // than as one arm of the `match` in
                // `pending_without_value`, though in the benchmark the
                // compiler still dispatches on the slot through a jump
                // table (the gain is in how it lays the code out).
                if let Slot::Yielded(y) = slot {
                    // Written only when it changes: from one yield to the
                    // next it stays `AtYield`, and a store less per resume
                    // is measurably faster.
                    if self.phase != Phase::AtYield {
                        self.phase = Phase::AtYield;
                    }
                    return Step::Yielded(y);
                }
                self.pending_without_value(slot, untaken)
            }
            Poll::Ready(r) => {
                self.finish();
                // A value handed out by a yield the body then left (the
                // other branch of a `select` won), or sent to one it
                // dropped: the resume can return only one thing, and a
                // value would be lost in silence.
                match frame.slot.into_inner() {
                    Slot::Empty => Step::Complete(r),
                    Slot::Sent(_) if raw::lossless::<S>() => Step::Complete(r),
                    Slot::Sent(_) | Slot::Yielded(_) | Slot::Clash => Step::Misuse,
                }
            }
        }
    }

    /// The rest of [`poll_body`](Raw::poll_body) for a body that returned
    /// `Pending`: `slot` is anything but `Yielded`, which the caller
    /// handles.
    #[inline(always)]
    fn pending_without_value(&mut self, slot: Slot<Y, S>, untaken: &mut Option<S>) -> Step<Y, R> {
        debug_assert!(!matches!(slot, Slot::Yielded(_)));
        match slot {
            Slot::Clash => {
                self.finish();
                Step::Misuse
            }
            Slot::Sent(s) => {
                // A combinator inside the body polled other futures first
                // (`FuturesUnordered` returns after two that woke
                // themselves): the body is still at its yield.
                *untaken = Some(s);
                Step::Pending
            }
            // (Never `Yielded`: see above.)
            Slot::Empty | Slot::Yielded(_) => {
                self.phase = Phase::Running;
                Step::Pending
            }
        }
    }

    /// The body returned or was found misused: drop it, and leave `New`
    /// for good.
    #[inline]
    fn finish(&mut self) {
        self.phase = Phase::Running;
        self.body = None;
    }
}

/// Polls a synchronous generator's body with its frame both in the context
/// and in the thread-local, where yields polled under contexts made inside
/// the body find it.
///
/// The frame is moved in and out: were its address passed to a function
/// that is not inlined, the caller's fast path could no longer keep it in
/// registers. The body is passed as `Pin<&mut B>`, not as the generator's
/// box: the generator's own fields then stay where the caller can keep
/// them in registers, and for a generator made and drained in one function
/// the compiler sees that `publish` stays false and that this is never
/// called, so that the checks of each resume fold away (the body's one
/// allocation stays).
///
/// `spins` is the count of `raw::suspend_foreign` as the resume found it,
/// put back once the body is polled (see `Spins::restore`).
#[inline(never)]
fn poll_published<Y, S, B: ?Sized + Future>(
    body: Pin<&mut B>,
    frame: Frame<Y, S>,
    spins: Spins,
) -> (Poll<B::Output>, Frame<Y, S>) {
    let poll = {
        // Dropped last, once the frame is no longer published.
        let _restore = spins.restore_on_drop();
        let waker = FrameWaker::new(&frame);
        let _enter = Enter::new(&frame);
        body.poll(&mut Context::from_waker(waker.waker()))
    };
    (poll, frame)
}

/// After a synchronous resume's poll in which a yield, polled under a
/// context of the body's own, looked for the frame and woke that context:
/// the body may go on with the frame published (a `Pending` it returns is
/// never final, and a yield that did find the frame is not polled again).
///
/// Out of line, with the frame moved in and out, as for
/// [`poll_published`]: the fast path it branches off stays small. `spins`
/// as for `poll_published`: whatever the miss counted is no part of a
/// loop once the resume returns.
#[cold]
#[inline(never)]
fn after_miss<Y, S, B: ?Sized + Future>(
    body: Pin<&mut B>,
    frame: Frame<Y, S>,
    poll: Poll<B::Output>,
    spins: Spins,
) -> (Poll<B::Output>, Frame<Y, S>) {
    if poll.is_pending() && !frame.has_yielded() && !frame.misused() {
        return poll_published(body, frame, spins);
    }
    spins.restore();
    (poll, frame)
}

/// Drops a body whose poll is unwinding: a generator that panicked is
/// finished, as in Python. Forgotten once the poll returns.
pub(crate) struct Unwind<'a, B: ?Sized> {
    pub(crate) body: &'a mut Option<Pin<Box<B>>>,
    pub(crate) phase: &'a mut Phase,
}

impl<B: ?Sized> Drop for Unwind<'_, B> {
    #[inline]
    fn drop(&mut self) {
        *self.phase = Phase::Running;
        *self.body = None;
    }
}

impl<Y, R, S, B: ?Sized> fmt::Debug for Raw<Y, R, S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.state_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_at_yield_is_at_yield_and_not_published() {
        let body: Pin<Box<dyn Future<Output = ()>>> = Box::pin(async {});
        let mut raw: Raw<u8, (), u8, dyn Future<Output = ()>> = Raw::new(body, Id::fresh());
        for phase in [Phase::New, Phase::AtYield, Phase::Running] {
            for publish in [false, true] {
                raw.phase = phase;
                raw.publish = publish;
                assert_eq!(
                    raw.hidden_at_yield(),
                    phase == Phase::AtYield && !publish,
                    "{phase:?}, publish {publish}"
                );
            }
        }
    }
}
