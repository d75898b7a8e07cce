//! The hand-off between a resumer and the body it polls: the only `unsafe`
//! in the crate.
//!
//! A resume (`send`, `start`, a stream's `poll_next`) puts a [`Frame`] on
//! its own stack: the running generator's id and the [`Slot`] that values
//! pass through. For the duration of one `poll` of the body, the frame is
//! where the body's yields can find it:
//!
//! - a synchronous resume polls the body with a context made from a
//!   [`FrameWaker`], whose data is the frame (the fast path: the frame's
//!   address goes nowhere else, so the compiler may keep it in registers),
//!   and sets a thread-local, [`ACTIVE`], to the mark [`HIDDEN`];
//! - an asynchronous one polls it with its executor's context, and
//!   [`ACTIVE`] points at the frame.
//!
//! A [`Yield`](crate::futures::Yield) polled inside the body looks in its
//! context first, then in the thread-local, checks that the frame belongs
//! to its own generator, and then moves values through the slot. No
//! allocation, no reference count, nothing shared between threads.
//!
//! A yield of a synchronous generator polled under a context made inside
//! its body (a nested executor, `FuturesUnordered`) finds neither: it
//! turns the mark into [`MISSED`], wakes its context (so that whatever
//! polls it polls it again) and stays pending. The resume sees the mark
//! when it puts [`ACTIVE`] back, polls the body again with its frame
//! published in [`ACTIVE`] (if the body has not yielded meanwhile), and
//! publishes it on every later resume of that generator: such a body costs
//! the thread-local and one extra poll once, and the others nothing but
//! the setting of the mark.
//!
//! # Invariant
//!
//! [`ACTIVE`] points either to one of the marks [`NO_FRAME`], [`HIDDEN`]
//! and [`MISSED`] (whose ids, 0 and the two largest, no [`Id`] has) or
//! to (the `id` field at
//! the start of) a live `Frame<Y, S>` on that thread's stack; a waker
//! with the [`FRAME_WAKER`] vtable exists only
//! inside a [`FrameWaker`], which borrows the frame its data points to. A
//! frame's `id` field holds (possibly marked [`MISUSED`], and then maybe
//! [`TOO_DEEP`]) the number of an
//! [`Id`] whose type parameters are that frame's `Y` and `S`, and its
//! `thread` field the [`thread_token`] of the thread whose stack it is on.
//! The frame of a [`FrameWaker`] is used only on that thread: a `&Waker`
//! may be sent to another thread while the resume runs (to a scoped thread
//! inside the body), and there the context counts as one that carries no
//! frame ([`carried_frame`]).
//!
//! It holds because:
//! - an id number is minted once, by [`Id::fresh`], for one `Id<Y, S>`;
//!   `Id` is invariant in `Y` and `S` and its clones keep the types, so
//!   every `Id` with that number has the same `Y` and `S`;
//! - a frame's id is set only by [`Frame::new`] and [`Delegating`] (which
//!   puts back what it replaced), both from an `&Id<Y, S>` of the frame's
//!   own types, and by [`misuse`], [`mark_carried`],
//!   [`Frame::mark_misused`] and [`Frame::mark_too_deep`], which only mark
//!   it; its thread only by
//!   [`Frame::new`], on the thread that makes it (a frame never leaves
//!   that thread: it lives in the resume's stack frame, or is moved by
//!   value within that call); the frame of a context is read or written
//!   only after [`carried_frame`] found that thread to be the current one;
//! - [`ACTIVE`] is set to a frame only by [`Enter::new`], which borrows
//!   its `Frame` for the guard's whole life; to a mark by [`Hide::new`]
//!   and by [`misuse`] (which only turns [`HIDDEN`] into [`MISSED`]); and
//!   back to the previous value by the guards' `Drop` and
//!   [`Hide::missed`]; guards live only as locals of one poll, so they
//!   nest like the stack frames that own them (also when unwinding), and a
//!   frame outlives the guard that published it;
//! - [`FRAME_WAKER`] is private, used only by [`FrameWaker::new`], and its
//!   clone makes a no-op waker (which carries no frame), so no other waker
//!   with that vtable can exist; a `FrameWaker` hands out its waker only by
//!   reference, for at most its own life.

use std::cell::Cell;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

/// The value in transit between a resumer and its body: one cell, so that
/// a round trip reads and writes one discriminant.
#[derive(Default)]
pub(crate) enum Slot<Y, S> {
    #[default]
    Empty,
    /// Sent by the resumer, for the yield the body is suspended at.
    Sent(S),
    /// Yielded by the body, for the resumer.
    Yielded(Y),
    /// A yield found a value already in the slot, which it would have
    /// overwritten: a misuse, for the resumer to report.
    Clash,
}

/// A function type that makes a `PhantomData` invariant in `Y` and `S`
/// while staying `Send + Sync`.
type Invariant<Y, S> = fn(Y, S) -> (Y, S);

/// The identity of one generator, typed by what goes through its slot.
#[derive(Debug)]
pub(crate) struct Id<Y, S> {
    n: u64,
    // Invariant in `Y` and `S` (see the module docs), and `Send + Sync`
    // whatever they are: an `Id` is only a number.
    _types: PhantomData<Invariant<Y, S>>,
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

/// What [`ACTIVE`] points to while no generator runs: an id that no
/// [`Id`] has, so that the check of a yield needs no null test. Never
/// written (nor are the other marks). Each mark is a static of its own
/// with a value of its own, so that their addresses differ: statics of
/// equal contents could be folded into one by a linker that merges
/// identical read-only data.
static NO_FRAME_MARK: u64 = 0;

/// What [`ACTIVE`] points to while a synchronous resume runs whose frame
/// travels only in its context: a yield that finds it is polled under a
/// context made inside the body.
static HIDDEN_MARK: u64 = u64::MAX;

/// What a yield that found [`HIDDEN`] leaves in [`ACTIVE`], for the resume
/// to see.
static MISSED_MARK: u64 = u64::MAX - 1;

/// The address of [`NO_FRAME_MARK`].
const NO_FRAME: *const u64 = &raw const NO_FRAME_MARK;
/// The address of [`HIDDEN_MARK`].
const HIDDEN: *const u64 = &raw const HIDDEN_MARK;
/// The address of [`MISSED_MARK`].
const MISSED: *const u64 = &raw const MISSED_MARK;

thread_local! {
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
    static END_ID: Cell<u64> = const { Cell::new(0) };
    /// The running generator's frame (its `id` field), or [`NO_FRAME`].
    static ACTIVE: Cell<*const u64> = const { Cell::new(NO_FRAME) };
    /// The waker of the context the frame in [`ACTIVE`] was published
    /// with (by [`Enter`]), or null.
    static RESUME: Cell<*const Waker> = const { Cell::new(ptr::null()) };
    /// How many polls in a row of futures of a `Co` (of any generator)
    /// under a context of a body's own made no progress (see
    /// [`suspend_foreign`]), in the resume running on this thread (see
    /// [`Spins`]). Kept here rather than in each future, which would grow.
    static SPINS: Cell<u32> = const { Cell::new(0) };
}

/// The bit of a frame's id that records a misuse. Ids stay below it, so a
/// marked id matches no `Id` and the running generator's own yields stop
/// reaching its slot: it is about to be closed anyway.
const MISUSED: u64 = 1 << 63;

/// The bit of a frame's id that says why it is marked [`MISUSED`]: a
/// delegation went deeper than [`MAX_DELEGATION_DEPTH`]. Ids stay below it
/// too.
///
/// [`MAX_DELEGATION_DEPTH`]: crate::MAX_DELEGATION_DEPTH
const TOO_DEEP: u64 = 1 << 62;

impl<Y, S> Id<Y, S> {
    /// A number no other `Id` has ever had (0 is never used).
    #[inline]
    pub(crate) fn fresh() -> Self {
        let next = NEXT_ID.get();
        let n = if next < END_ID.get() {
            next
        } else {
            let start = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
            assert!(start < TOO_DEEP - BLOCK, "generator ids exhausted");
            END_ID.set(start + BLOCK);
            start
        };
        NEXT_ID.set(n + 1);
        Id {
            n,
            _types: PhantomData,
        }
    }
}

/// Where a frame's `thread` field lies from its start, for every `Y` and
/// `S` (the fields of a `repr(C)` struct before it do not depend on them).
const THREAD_OFFSET: usize = std::mem::offset_of!(Frame<(), ()>, thread);

/// What a resume puts on its stack: which generator is running, and the
/// slot its values pass through.
#[repr(C)]
pub(crate) struct Frame<Y, S> {
    // First, so that a pointer to the frame is a pointer to its id
    // whatever `Y` and `S` are.
    id: Cell<u64>,
    // Second (so at a fixed offset whatever `Y` and `S` are), and never
    // written after `new`: the only field read before the check that the
    // frame is on the current thread.
    thread: *const u8,
    pub(crate) slot: Cell<Slot<Y, S>>,
    /// Made by a synchronous resume, whose context carries the frame;
    /// else by an asynchronous one, which publishes the waker of its
    /// context in [`RESUME`]. Either resume polls the body once per value
    /// sent (or per wake-up of its own context): a yield suspended under
    /// another context wakes that context, so that whatever made it polls
    /// the yield again on the next resume.
    ///
    /// A flag, not the waker: a pointer field here, though never read on
    /// the synchronous path, measurably slows its round trip.
    sync: bool,
}

impl<Y, S> Frame<Y, S> {
    /// A frame for a synchronous resume, which polls the body under a
    /// context made from a [`FrameWaker`] of this frame, or (`sync`
    /// false) for an asynchronous one, which polls it under an executor's
    /// context and publishes both with [`Enter`].
    #[inline(always)]
    pub(crate) fn new(id: &Id<Y, S>, slot: Slot<Y, S>, sync: bool) -> Self {
        Frame {
            id: Cell::new(id.n),
            thread: thread_token(),
            slot: Cell::new(slot),
            sync,
        }
    }

    /// Whether a future of a `Co` that suspends under `cx` (with the
    /// frame found) must call [`suspend_foreign`]: `cx` is not the context
    /// the resume polls the body with, but one made inside the body (by
    /// `FuturesUnordered`, say), which the resume never wakes. The
    /// resume's own context is not woken: the resume returns when its
    /// body yields.
    #[inline(always)]
    pub(crate) fn foreign(&self, cx: &Context<'_>) -> bool {
        // A context that carries a frame, found to be on this thread when
        // this frame was looked up (see `carried_frame`), is the resume's.
        // Asked first: on a synchronous resume's fast path, the compiler
        // knows the answer without reading the frame.
        if carries_frame(cx) {
            return false;
        }
        self.sync || !is_resume_context(cx)
    }

    /// Whether the body put a value in the slot.
    pub(crate) fn has_yielded(&self) -> bool {
        let slot = self.slot.take();
        let yielded = matches!(slot, Slot::Yielded(_));
        self.slot.set(slot);
        yielded
    }

    /// Whether a `Co` was awaited inside a generator that is not its own
    /// while this frame was running (see [`misuse`]), or a future of its
    /// own was polled again after it completed (see
    /// [`mark_misused`](Frame::mark_misused)).
    #[inline(always)]
    pub(crate) fn misused(&self) -> bool {
        self.id.get() & MISUSED != 0
    }

    /// Whether the misuse recorded is a delegation too deep (see
    /// [`mark_too_deep`](Frame::mark_too_deep)).
    pub(crate) fn too_deep(&self) -> bool {
        self.id.get() & TOO_DEEP != 0
    }

    /// Records that a future of this frame's generator was misused (a
    /// yield polled again after it returned): the resume closes the
    /// generator and reports it.
    #[inline(always)]
    pub(crate) fn mark_misused(&self) {
        self.id.set(self.id.get() | MISUSED);
    }

    /// Records that a delegation under this frame went deeper than
    /// [`MAX_DELEGATION_DEPTH`](crate::MAX_DELEGATION_DEPTH): the resume
    /// closes the generator and reports it.
    pub(crate) fn mark_too_deep(&self) {
        self.id.set(self.id.get() | MISUSED | TOO_DEEP);
    }
}

/// Makes an inner generator the running one for a frame until dropped (for
/// `yield_from`, whose inner generator yields through its delegator's
/// slot); then puts the delegator's id back, keeping a misuse mark made in
/// between, also when the inner body panics.
pub(crate) struct Delegating<'f, Y, S> {
    frame: &'f Frame<Y, S>,
    outer: u64,
}

impl<'f, Y, S> Delegating<'f, Y, S> {
    #[inline(always)]
    pub(crate) fn new(frame: &'f Frame<Y, S>, inner: &Id<Y, S>) -> Self {
        Delegating {
            frame,
            outer: frame.id.replace(inner.n),
        }
    }
}

impl<Y, S> Drop for Delegating<'_, Y, S> {
    #[inline(always)]
    fn drop(&mut self) {
        let marks = self.frame.id.get() & (MISUSED | TOO_DEEP);
        self.frame.id.set(self.outer | marks);
    }
}

/// Publishes a frame as the running generator's until dropped, and the
/// waker of the context it is polled under.
pub(crate) struct Enter<'a> {
    prev: *const u64,
    prev_resume: *const Waker,
    _frame: PhantomData<&'a ()>,
}

impl<'a> Enter<'a> {
    /// Publishes `frame`, a synchronous resume's, for the yields of a body
    /// polled under a context that carries it too.
    #[inline(always)]
    pub(crate) fn new<Y, S>(frame: &'a Frame<Y, S>) -> Self {
        // SAFETY: a null waker is never read.
        unsafe { Enter::with_resume(frame, ptr::null()) }
    }

    /// Publishes `frame`, an asynchronous resume's, for the yields of a
    /// body polled under an executor's context (which carries no frame),
    /// whose waker is `resume`.
    ///
    /// # Safety
    ///
    /// `resume` is null or points to a waker that outlives the guard (the
    /// context's, which the caller borrows for longer).
    #[inline(always)]
    pub(crate) unsafe fn with_resume<Y, S>(frame: &'a Frame<Y, S>, resume: *const Waker) -> Self {
        // A pointer to the whole frame (so that it may be used to reach the
        // slot), typed as a pointer to its first field, the id.
        let prev = ACTIVE.replace(ptr::from_ref(frame).cast::<u64>());
        let prev_resume = RESUME.replace(resume);
        Enter {
            prev,
            prev_resume,
            _frame: PhantomData,
        }
    }
}

impl Drop for Enter<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        ACTIVE.set(self.prev);
        RESUME.set(self.prev_resume);
    }
}

/// Polls `body` under `cx`, an executor's context, with `frame` (an
/// asynchronous resume's) published for its yields.
#[inline(always)]
pub(crate) fn poll_async<Y, S, B: ?Sized + Future>(
    frame: &Frame<Y, S>,
    body: Pin<&mut B>,
    cx: &mut Context<'_>,
) -> Poll<B::Output> {
    let resume: *const Waker = cx.waker();
    // SAFETY: `cx`, and so its waker, is borrowed for this whole call,
    // longer than the guard lives.
    let _enter = unsafe { Enter::with_resume(frame, resume) };
    body.poll(cx)
}

/// Whether `cx` is the context the running asynchronous resume polls its
/// body with (its waker would wake the same task), as published by its
/// [`Enter`]. Out of line: the fast path of a synchronous generator's
/// yields, which never calls it, is then as small as it can be, and its
/// body likelier to be inlined into its resume.
#[inline(never)]
fn is_resume_context(cx: &Context<'_>) -> bool {
    let resume = RESUME.get();
    if resume.is_null() {
        return false;
    }
    // SAFETY: a non-null `RESUME` was set by `Enter::with_resume` from a
    // waker that outlives the guard, and is put back when the guard is
    // dropped; guards live only as locals of one poll and nest like the
    // stack frames that own them, so the waker is live (and a thread-local
    // is this thread's).
    cx.waker().will_wake(unsafe { &*resume })
}

/// Sets [`ACTIVE`] to [`HIDDEN`] until dropped or [`missed`](Hide::missed):
/// what a synchronous resume that does not publish its frame runs under.
pub(crate) struct Hide {
    prev: *const u64,
    /// The count of [`suspend_foreign`] when the resume began, for the
    /// resume to put back if it takes the slow path.
    spins: Spins,
}

impl Hide {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        Hide {
            prev: ACTIVE.replace(HIDDEN),
            spins: Spins::save(),
        }
    }

    /// Puts back the previous value, and says whether a yield polled
    /// under a context other than the resume's looked for the frame
    /// meanwhile (see [`misuse`]): if so, the count of
    /// [`suspend_foreign`] when the resume began, for it to put back when
    /// it returns. (A resume in which no yield missed its frame counted
    /// nothing: every poll counted is of a yield that found no frame,
    /// or found a published one.)
    #[inline(always)]
    pub(crate) fn missed(self) -> Option<Spins> {
        let this = ManuallyDrop::new(self);
        ptr::eq(ACTIVE.replace(this.prev), MISSED).then_some(this.spins)
    }
}

/// Run only when the resume unwinds (it otherwise ends with
/// [`missed`](Hide::missed)): puts back what was replaced, and the count of
/// [`suspend_foreign`] as the resume found it, as a resume that returns
/// does.
impl Drop for Hide {
    #[inline(always)]
    fn drop(&mut self) {
        ACTIVE.set(self.prev);
        self.spins.restore();
    }
}

/// The vtable of the wakers made by [`FrameWaker`]: they wake nothing (a
/// synchronous generator is only ever resumed by its owner), and their
/// data is the frame of the resume that made them.
static FRAME_WAKER: RawWakerVTable = RawWakerVTable::new(clone_noop, ignore, ignore, ignore);

fn clone_noop(_: *const ()) -> RawWaker {
    // A clone may outlive the frame, so it is a plain no-op waker, which
    // knows of no frame.
    let noop = Waker::noop();
    RawWaker::new(noop.data(), noop.vtable())
}

fn ignore(_: *const ()) {}

/// A waker that carries a frame to the yields polled with it, so that they
/// find it without the thread-local: what a synchronous resume polls its
/// body with.
pub(crate) struct FrameWaker<'a> {
    // Never dropped: dropping it would do nothing but an indirect call.
    waker: ManuallyDrop<Waker>,
    _frame: PhantomData<&'a ()>,
}

impl<'a> FrameWaker<'a> {
    #[inline(always)]
    pub(crate) fn new<Y, S>(frame: &'a Frame<Y, S>) -> Self {
        let data = ptr::from_ref(frame).cast::<()>();
        // SAFETY: the vtable's functions never use the data pointer (its
        // clone is the no-op waker, the others do nothing), so they are
        // fine on any thread and for any lifetime of `data`.
        let waker = unsafe { Waker::from_raw(RawWaker::new(data, &FRAME_WAKER)) };
        FrameWaker {
            waker: ManuallyDrop::new(waker),
            _frame: PhantomData,
        }
    }

    #[inline(always)]
    pub(crate) fn waker(&self) -> &Waker {
        &self.waker
    }
}

/// Whether `cx` was made from a [`FrameWaker`] (so that it carries the
/// frame of some synchronous resume).
#[inline(always)]
pub(crate) fn carries_frame(cx: &Context<'_>) -> bool {
    ptr::eq(cx.waker().vtable(), &FRAME_WAKER)
}

/// What tells threads apart: the address of one of the current thread's
/// thread-locals. Two threads alive at once never share it, and a frame's
/// thread is alive for as long as the frame.
#[inline(always)]
fn thread_token() -> *const u8 {
    ACTIVE.with(|active| ptr::from_ref(active).cast())
}

/// The frame `cx` carries (a pointer to its `id` field), if `cx` was made
/// from a [`FrameWaker`].
///
/// # Panics
///
/// If that frame is on another thread: the body lent its context's waker
/// to a thread that polls a `Co`'s future with it (a scoped thread, say)
/// while the resume runs. There the `Co` is outside its generator, and
/// reaching the frame would move values between threads through its
/// cells. The check panics rather than returning `None`, so that the
/// callers' fast path stays the only way a frame waker's data flows.
#[inline(always)]
pub(crate) fn carried_frame(cx: &Context<'_>) -> Option<*const u64> {
    if !carries_frame(cx) {
        return None;
    }
    let id = cx.waker().data().cast::<u64>();
    // SAFETY: a waker with the `FRAME_WAKER` vtable exists only inside a
    // `FrameWaker`, which borrows the frame its data points to (made from
    // a reference to the whole frame, `repr(C)`, whose second field is the
    // thread, at `THREAD_OFFSET` whatever `Y` and `S` are: the fields
    // before it are the same), and `cx` is borrowed for this call, so the
    // frame is live. While a `FrameWaker` borrows the frame, the frame is
    // written only through its cells (the id, the slot), never its thread
    // field, and another thread can hold the waker only within that borrow
    // (a `&Waker` does not outlive the poll it was lent in; a clone is the
    // no-op waker): reading the thread field from any thread races with
    // nothing.
    let thread = unsafe { id.byte_add(THREAD_OFFSET).cast::<*const u8>().read() };
    if !ptr::eq(thread, thread_token()) {
        other_thread();
    }
    Some(id)
}

/// The running frame, if it belongs to generator `id`: the one `cx`
/// carries if it was made by a [`FrameWaker`], or else the one published
/// in the thread-local (for a body polled by an executor, as an
/// `AsyncGen`'s is, or a yield polled under a context of the body's own
/// once its resume published its frame).
///
/// The reference lives as long as the borrow of `id`, which the crate's
/// futures hold only for one poll of theirs, inside the poll of the
/// frame's body.
#[inline(always)]
pub(crate) fn frame<'i, Y, S>(id: &'i Id<Y, S>, cx: &Context<'_>) -> Option<&'i Frame<Y, S>> {
    let active = carried_frame(cx).unwrap_or_else(|| ACTIVE.get());
    // SAFETY: `carried_frame` gives the id of a live frame on this thread
    // (the one of the `FrameWaker` that `cx`, borrowed for this call, was
    // made from). Otherwise, by the module invariant `ACTIVE` points
    // either to a mark (in a static) or to the `id` cell of a live frame on
    // this thread's stack, below us. All are readable `u64`s (a `Cell<u64>`
    // is one), written only on this thread.
    let running = unsafe { active.read() };
    if running != id.n {
        return None;
    }
    // SAFETY: `running == id.n`, and `id.n` is neither an id of the marks
    // (0 and the two largest) nor marked (as `Id::fresh` never
    // makes those: its ids stay below `TOO_DEEP`), so by the
    // module invariant the frame is a `Frame<Y, S>` with this `Id`'s `Y`
    // and `S`; `id` is its first field (`repr(C)`), so the pointer, which
    // was made from a reference to the whole frame, is the frame's. The
    // frame outlives the current poll of its body, and the callers use the
    // reference only inside it (while they borrow `id`, which is theirs); a
    // `Frame` is used only through shared references and `Cell`s, so other
    // references to it (reentrant ones included) are fine.
    Some(unsafe { &*active.cast::<Frame<Y, S>>() })
}

/// Whether losing a value of `S` loses nothing: it has no size and no
/// destructor (`()`, which `Stream` and `Iterator` resumes send).
#[inline(always)]
pub(crate) const fn lossless<S>() -> bool {
    std::mem::size_of::<S>() == 0 && !std::mem::needs_drop::<S>()
}

/// What a future of a `Co` does when [`frame`] did not find its
/// generator's frame (before [`suspend_foreign`], and returning
/// `Pending`).
///
/// Under a context made inside a synchronous body whose frame is not
/// published ([`ACTIVE`] is [`HIDDEN`]), the frame may well be its own:
/// leaves [`MISSED`] for the resume, which polls the body again with its
/// frame published, and returns `true` (a miss).
///
/// Otherwise, returns `false` and records that a `Co` was awaited inside a generator that is
/// not its own, so that the innermost resumer reports `GenError::Misuse`:
/// the resume whose frame `cx` carries, or else the one published in the
/// thread-local.
///
/// # Panics
///
/// If neither `cx` nor the thread-local knows of a running generator: the
/// `Co` escaped its generator and is being awaited by some other executor,
/// and the only alternative to a panic would be a future that never
/// completes.
fn misuse(cx: &Context<'_>) -> bool {
    let active = carried_frame(cx).unwrap_or_else(|| ACTIVE.get());
    if ptr::eq(active, NO_FRAME) {
        escaped();
    }
    if ptr::eq(active, HIDDEN) || ptr::eq(active, MISSED) {
        ACTIVE.set(MISSED);
        return true;
    }
    // SAFETY: `carried_frame` (for the frame of a `FrameWaker` alive while
    // `cx` is borrowed) and, by the module invariant, an `ACTIVE` other
    // than a mark both point to the `id` cell of a live frame on this
    // thread's stack, below us, made from a reference to the whole frame.
    let id = unsafe { &*active.cast::<Cell<u64>>() };
    id.set(id.get() | MISUSED);
    false
}

/// What a future of a `Co` does when [`frame`] did not find its
/// generator's frame: [`mark_carried`], or else [`not_found_elsewhere`];
/// then `Pending`.
///
/// Under a context that carries a frame, the misuse is recorded here;
/// only other contexts are passed to a function that is not inlined, so
/// that the frame's address (the data of a [`FrameWaker`]) goes nowhere
/// and the compiler may still keep the frame in registers.
#[inline(always)]
pub(crate) fn not_found<T>(cx: &Context<'_>) -> Poll<T> {
    if !mark_carried(cx) {
        not_found_elsewhere(cx);
    }
    Poll::Pending
}

/// The part of [`not_found`] for a context that carries a frame: records
/// the misuse in it, and says whether it did so (the future then returns
/// `Pending`): inline, before the rest of `not_found` out of line.
#[inline(always)]
fn mark_carried(cx: &Context<'_>) -> bool {
    let Some(id) = carried_frame(cx) else {
        return false;
    };
    // SAFETY: `carried_frame` gives a pointer, made from a reference to
    // the whole frame, to the id cell (the first field) of a live frame
    // on this thread: that of the `FrameWaker` `cx` was made from, which
    // lives while `cx` is borrowed.
    let id = unsafe { &*id.cast::<Cell<u64>>() };
    id.set(id.get() | MISUSED);
    true
}

/// The part of [`not_found`] for a context that carries no frame of this
/// thread: [`misuse`], then [`suspend_foreign`].
///
/// After a miss, so that whatever made `cx` polls the future again; after
/// a misuse too, since what made `cx` may be a blocking executor inside
/// the body, whose loop only the count of [`suspend_foreign`] can end (the
/// resume that would report the misuse never gets control back). Under
/// any other context, the wake-up is one spurious wake-up of a resume
/// about to report the misuse.
#[cold]
#[inline(never)]
fn not_found_elsewhere(cx: &Context<'_>) {
    misuse(cx);
    suspend_foreign(cx, false);
}

/// How many times in a row a future of a `Co` may be polled under a
/// context of the body's own without progress before it is taken for a
/// blocking loop. A combinator polls a future that woke itself again soon,
/// but not endlessly (`FuturesUnordered` at most twice per poll of its
/// own before it returns); a body may poll such a combinator in a loop,
/// once per item of another source, so the limit is far above any such
/// loop's length, while a blocking executor reaches it within a
/// millisecond. (Kept low under miri, which runs each poll thousands of
/// times slower.)
const SPIN_LIMIT: u32 = if cfg!(miri) { 64 } else { 1 << 16 };

/// What a future of a synchronous generator's `Co` does when it suspends
/// under a context made inside the body (see [`Frame::foreign`] and
/// [`misuse`]): wakes that context, since a combinator with wakers of its
/// own (`FuturesUnordered`) polls again only what was woken, and the
/// resume polls the body only once per value sent. `progress` says
/// whether this poll handed a value out; the polls in a row that made none
/// are counted in [`SPINS`], whichever generator's they are: a blocking
/// executor polling two yields in turn (`join`), of one generator or of
/// two (a misuse), or a yield and a delegation, must reach the limit too.
/// Each resume that may have counted puts the count back as it found it
/// when it returns (see [`Spins::restore`]): the polls of one resume never
/// add to those of another, also when one runs inside the other's body,
/// and a blocking loop inside a body still reaches the limit when it
/// resumes other generators.
///
/// # Panics
///
/// If the future is polled again and again with nothing sent and nothing
/// handed out ([`SPIN_LIMIT`] times): whatever polls it does so in a loop
/// without letting the body suspend (a blocking executor, `block_on`,
/// inside the body), so the generator can never be resumed, and the only
/// alternative to a panic would be a hang.
///
/// Returns nothing; its callers (and those of [`not_found_elsewhere`],
/// which calls it) return `Pending` themselves, so that the compiler sees
/// that such a poll returns `Pending`. Were the `Poll` returned from here,
/// a body's code after a `Ready` would stay reachable after this call
/// (which may write to whatever a context made known to it), and the
/// reads of the resume's frame that follow could no longer be folded: a
/// generator made and drained in one function would then keep the checks
/// of each resume (see `poll_published` in `core`, for the other half of
/// this).
#[cold]
#[inline(never)]
pub(crate) fn suspend_foreign(cx: &Context<'_>, progress: bool) {
    let spins = if progress { 0 } else { SPINS.get() + 1 };
    if spins > SPIN_LIMIT {
        SPINS.set(0);
        blocked();
    }
    SPINS.set(spins);
    cx.waker().wake_by_ref();
}

/// The count of [`suspend_foreign`] as a resume found it when it began.
#[derive(Clone, Copy)]
pub(crate) struct Spins(u32);

impl Spins {
    /// The count now, before a resume polls its body.
    #[inline(always)]
    pub(crate) fn save() -> Spins {
        Spins(SPINS.get())
    }

    /// Puts the count back as the resume found it, once it polled its body
    /// and is about to return to its caller (with a value, an error, or
    /// `Pending` for its executor), or unwinds: no blocking executor
    /// inside its body polls in a loop then, so the polls counted in it
    /// are no part of one, and those of an enclosing body go on from where
    /// they were. Zero when no generator encloses the resume: nothing
    /// counted before it can be part of a loop either.
    #[inline]
    pub(crate) fn restore(self) {
        let outermost = ptr::eq(ACTIVE.get(), NO_FRAME);
        SPINS.set(if outermost { 0 } else { self.0 });
    }

    /// [`restore`](Spins::restore) when the guard returned is dropped: at
    /// the end of the poll it is made for, whether it returns or unwinds.
    #[inline]
    pub(crate) fn restore_on_drop(self) -> RestoreSpins {
        RestoreSpins(self)
    }
}

/// See [`Spins::restore_on_drop`].
pub(crate) struct RestoreSpins(Spins);

impl Drop for RestoreSpins {
    #[inline]
    fn drop(&mut self) {
        self.0.restore();
    }
}

/// The panic of [`suspend_foreign`].
#[cold]
#[inline(never)]
fn blocked() -> ! {
    panic!(
        "a coro::Co's future was polled again before its generator was resumed: \
         a blocking executor inside a generator's body cannot suspend it"
    )
}

/// The panic of [`carried_frame`].
#[cold]
#[inline(never)]
fn other_thread() -> ! {
    panic!(
        "a coro::Co's future was polled on another thread than its generator's resume, \
         with that resume's context"
    )
}

/// The panic of [`misuse`] outside any generator.
#[cold]
#[inline(never)]
fn escaped() -> ! {
    panic!("a coro::Co was awaited outside the body of its own generator")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lookup of a yield polled under a context that carries no frame
    /// (an executor's): through the thread-local.
    fn with_frame<Y, S, T>(id: &Id<Y, S>, f: impl FnOnce(&Frame<Y, S>) -> T) -> Option<T> {
        let cx = Context::from_waker(Waker::noop());
        frame(id, &cx).map(f)
    }

    #[test]
    fn the_marks_are_told_apart() {
        assert!(
            !ptr::eq(NO_FRAME, HIDDEN) && !ptr::eq(HIDDEN, MISSED) && !ptr::eq(NO_FRAME, MISSED)
        );
    }

    #[test]
    fn ids_are_unique_across_threads_and_never_zero() {
        let per_thread: Vec<Vec<u64>> = (0..4)
            .map(|_| std::thread::spawn(|| (0..1000).map(|_| Id::<(), ()>::fresh().n).collect()))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let mut all: Vec<u64> = per_thread.into_iter().flatten().collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
        assert!(
            all.iter()
                .all(|&id| id != 0 && id & (MISUSED | TOO_DEEP) == 0)
        );
    }

    #[test]
    fn frames_nest_and_only_their_own_id_reaches_them() {
        let (a, b) = (Id::<u8, u16>::fresh(), Id::<u8, u16>::fresh());
        assert_eq!(with_frame(&a, |_| ()), None, "no frame is running");
        let outer = Frame::new(&a, Slot::Sent(1), false);
        {
            let _enter = Enter::new(&outer);
            assert_eq!(with_frame(&b, |_| ()), None);
            let inner = Frame::new(&b, Slot::Sent(2), false);
            {
                let _enter = Enter::new(&inner);
                assert_eq!(
                    with_frame(&a, |_| ()),
                    None,
                    "the inner frame hides the outer"
                );
                let got = with_frame(&b, |f| matches!(f.slot.take(), Slot::Sent(2)));
                assert_eq!(got, Some(true));
            }
            let got = with_frame(&a, |f| matches!(f.slot.take(), Slot::Sent(1)));
            assert_eq!(
                got,
                Some(true),
                "leaving the inner frame restores the outer"
            );
            assert!(!misuse(&Context::from_waker(Waker::noop())));
            assert!(outer.misused());
            assert_eq!(with_frame(&a, |_| ()), None, "a marked frame matches no id");
        }
        assert_eq!(with_frame(&a, |_| ()), None);
    }

    #[test]
    fn a_frame_waker_carries_its_frame_and_its_clones_do_not() {
        let (a, b) = (Id::<u8, u16>::fresh(), Id::<u8, u16>::fresh());
        let outer = Frame::new(&a, Slot::Sent(1), false);
        let _enter = Enter::new(&outer);
        let inner = Frame::new(&b, Slot::Sent(2), false);
        let waker = FrameWaker::new(&inner);
        let cx = Context::from_waker(waker.waker());
        assert!(carries_frame(&cx));
        // The context's frame is found, not the published one.
        assert!(frame(&a, &cx).is_none());
        let got = frame(&b, &cx).map(|f| matches!(f.slot.take(), Slot::Sent(2)));
        assert_eq!(got, Some(true));
        // A clone may outlive the frame: it carries none, and the lookup
        // falls back to the thread-local.
        let clone = cx.waker().clone();
        let cx = Context::from_waker(&clone);
        assert!(!carries_frame(&cx));
        assert!(frame(&b, &cx).is_none());
        let got = frame(&a, &cx).map(|f| matches!(f.slot.take(), Slot::Sent(1)));
        assert_eq!(got, Some(true));
        clone.wake_by_ref();
        clone.wake();
    }

    #[test]
    fn misuse_marks_the_frame_of_the_context_before_the_published_one() {
        let (a, b) = (Id::<u8, u16>::fresh(), Id::<u8, u16>::fresh());
        let outer = Frame::new(&a, Slot::Empty, false);
        let _enter = Enter::new(&outer);
        let inner = Frame::new(&b, Slot::Empty, true);
        let waker = FrameWaker::new(&inner);
        assert!(!misuse(&Context::from_waker(waker.waker())));
        assert!(inner.misused());
        assert!(!outer.misused());
    }

    #[test]
    fn a_lookup_under_another_context_during_a_hidden_resume_is_a_miss() {
        let a = Id::<u8, u16>::fresh();
        let outer = Frame::new(&a, Slot::Empty, false);
        let _enter = Enter::new(&outer);
        let foreign = Context::from_waker(Waker::noop());
        let hide = Hide::new();
        assert!(frame(&a, &foreign).is_none(), "the outer frame is hidden");
        // A nested resume that sees no miss leaves the mark as it was.
        assert!(Hide::new().missed().is_none());
        assert!(misuse(&foreign), "a miss, not a misuse");
        // A nested resume sees only its own misses.
        assert!(Hide::new().missed().is_none());
        assert!(misuse(&foreign), "still a miss");
        assert!(hide.missed().is_some());
        assert!(!outer.misused());
        // The outer frame is published again.
        assert!(frame(&a, &foreign).is_some());
        assert!(Hide::new().missed().is_none());
        drop(Hide::new());
        assert!(frame(&a, &foreign).is_some());
    }

    #[test]
    fn suspending_under_another_context_wakes_it_and_panics_if_spun() {
        use std::sync::Arc;
        use std::sync::atomic::AtomicUsize;
        use std::task::Wake;
        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let cx = Context::from_waker(&waker);
        for _ in 0..SPIN_LIMIT {
            suspend_foreign(&cx, false);
        }
        // Progress starts the count again.
        suspend_foreign(&cx, true);
        for _ in 0..SPIN_LIMIT {
            suspend_foreign(&cx, false);
        }
        let woken = 2 * SPIN_LIMIT as usize + 1;
        assert_eq!(count.0.load(Ordering::Relaxed), woken);
        let spun = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            suspend_foreign(&cx, false);
        }));
        assert!(spun.is_err());
        assert_eq!(count.0.load(Ordering::Relaxed), woken);
    }

    #[test]
    fn a_resume_puts_the_count_back_as_it_found_it() {
        let cx = Context::from_waker(Waker::noop());
        // Inside a generator's body: an enclosing count goes on from where
        // it was, whatever the nested resume counted.
        let a = Id::<u8, u16>::fresh();
        let outer = Frame::new(&a, Slot::Empty, false);
        let enter = Enter::new(&outer);
        suspend_foreign(&cx, false);
        let nested = Spins::save();
        for _ in 0..3 {
            suspend_foreign(&cx, false);
        }
        nested.restore();
        assert_eq!(SPINS.get(), 1);
        drop(enter);
        // Outside any: nothing counted before can be part of a loop.
        let outermost = Spins::save();
        suspend_foreign(&cx, false);
        outermost.restore();
        assert_eq!(SPINS.get(), 0);
    }

    #[test]
    #[should_panic(expected = "outside the body of its own generator")]
    fn misuse_outside_any_frame_panics() {
        misuse(&Context::from_waker(Waker::noop()));
    }
}
