//! The task cell: header, future and output in one allocation.
//!
//! A task is one `Arc<Task<F>>`. The same allocation is seen as a
//! [`TaskRef`] (`Arc<dyn Runnable>`) by the hub's run queue and registry, as
//! a `Waker` (through [`std::task::Wake`]) by whatever the future waits on,
//! and as an `Arc<dyn Join<T>>` by its [`Greenlet`](crate::Greenlet).
//!
//! # Invariant
//!
//! The future, and an output whose type is not `Send`, are touched only on
//! the thread of the task's hub: the hub polls and drops the future, and the
//! output leaves the cell only through the `Greenlet`, which is `Send` only
//! when the output is. That is what makes the `unsafe impl Send/Sync` below
//! sound for futures that are not `Send` (`Rc`, `RefCell`). Every access to
//! the `stage` cell is either on the hub thread while the `RUNNING` bit is
//! held (poll, drop of the future, writing the output), or a one-time take
//! of the output after `COMPLETE` was observed with `Acquire`.
//!
//! # State word
//!
//! | bit          | meaning                                                        |
//! |--------------|----------------------------------------------------------------|
//! | `SCHEDULED`  | the task sits in a run queue or an injector (at most once)     |
//! | `RUNNING`    | the hub is polling it, or tearing it down                      |
//! | `COMPLETE`   | the future is gone; `stage` holds the output until it is taken |
//! | `KILLED`     | `kill()` was asked; the hub drops the future at its next turn  |
//! | `HANDLE`     | the `Greenlet` is alive and will take the output               |
//! | `SUCCESS`    | completed with a value (not a panic, not killed)               |

use std::any::Any;
use std::cell::UnsafeCell;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use crate::hub::{self, Hub, HubShared};
use crate::task::GreenletError;
use sync_prims::Event;
use sync_prims::Panicked;

pub(crate) const SCHEDULED: u32 = 1;
pub(crate) const RUNNING: u32 = 1 << 1;
pub(crate) const COMPLETE: u32 = 1 << 2;
pub(crate) const KILLED: u32 = 1 << 3;
pub(crate) const HANDLE: u32 = 1 << 4;
pub(crate) const SUCCESS: u32 = 1 << 5;

/// Registry slot of a task that is not (or no longer) in its hub's registry.
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// The completion count of the process: a task that finishes takes the
/// next number, so that the order in which tasks finished can be told
/// later (`iwait`), whichever hub ran them.
static FINISHED: AtomicU64 = AtomicU64::new(0);

/// The part of a task every view shares.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) state: AtomicU32,
    /// Index in the hub's registry; read and written on the hub thread only.
    pub(crate) slot: AtomicU32,
    pub(crate) id: u64,
    /// Boxed to keep the header small for the (common) unnamed task.
    pub(crate) name: Option<Box<Arc<str>>>,
    pub(crate) hub: Arc<HubShared>,
    /// Set once the task is complete: the completion signal for awaiting
    /// tasks and for blocked threads alike.
    pub(crate) done: Event,
    /// When the task finished, as a number of the process's completion
    /// count (0 until then); published with `COMPLETE`.
    pub(crate) finished: AtomicU64,
}

impl Header {
    /// Marks the task scheduled; true if the caller must enqueue it.
    #[inline]
    pub(crate) fn try_schedule(&self) -> bool {
        let s = self.state.load(Ordering::Acquire);
        if s & (SCHEDULED | COMPLETE) != 0 {
            return false;
        }
        self.state.fetch_or(SCHEDULED, Ordering::AcqRel) & (SCHEDULED | COMPLETE) == 0
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.state.load(Ordering::Acquire) & COMPLETE != 0
    }
}

enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, GreenletError>),
    Consumed,
}

/// A task: header plus the future, later its output, in one allocation.
pub(crate) struct Task<F: Future> {
    header: Header,
    stage: UnsafeCell<Stage<F>>,
}

// SAFETY: see the module invariant: the future (which need not be `Send`) is
// polled and dropped only on the hub thread `owner`, under the `RUNNING` bit;
// `Drop` leaks it rather than drop it elsewhere. The output is handed across
// threads only through `Greenlet<T>`, which is `Send` only if `T: Send`. The
// header is made of atomics, an `Arc`, an immutable name and a thread-safe
// event.
unsafe impl<F: Future> Send for Task<F> {}
// SAFETY: as for `Send`: shared access from other threads touches only the
// header; the `stage` cell is guarded by the state word as documented above.
unsafe impl<F: Future> Sync for Task<F> {}

impl<F: Future> std::fmt::Debug for Task<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

/// The hub's view of a task.
pub(crate) type TaskRef = Arc<dyn Runnable>;

/// What the hub needs from a task, whatever its future type.
pub(crate) trait Runnable: Send + Sync + 'static {
    fn header(&self) -> &Header;
    /// Polls the task once (or tears it down if it was killed). Hub thread only.
    fn run(self: Arc<Self>, hub: &Hub);
    /// Drops the future now and completes the task as killed. Hub thread only.
    fn kill_now(&self, hub: &Hub);
    /// Completes the task as killed without dropping its future, which is
    /// leaked: the last resort of a hub's teardown for tasks that
    /// destructors keep spawning. Hub thread only.
    ///
    /// # Safety
    ///
    /// The task was never polled: its future was never pinned, so it may
    /// be moved out and forgotten.
    unsafe fn kill_leaking(&self, hub: &Hub);
    /// The future's type, for diagnostics.
    fn type_name(&self) -> &'static str;
}

/// The `Greenlet`'s view of a task.
pub(crate) trait Join<T>: Send + Sync {
    fn header(&self) -> &Header;
    /// Takes the output; only after `COMPLETE` was observed, and only once.
    fn take_output(&self) -> Option<Result<T, GreenletError>>;
    /// Kills the task now if the caller is on its hub and it is idle;
    /// returns false if the caller must schedule it instead.
    fn kill_local(&self) -> bool;
    /// This task as a `Runnable`, to schedule it.
    fn as_runnable(self: Arc<Self>) -> TaskRef;
}

impl<F> Task<F>
where
    F: Future + 'static,
    F::Output: 'static,
{
    /// A new task, already marked `SCHEDULED` (the caller queues it).
    pub(crate) fn new(
        id: u64,
        name: Option<Arc<str>>,
        hub: Arc<HubShared>,
        future: F,
    ) -> Arc<Self> {
        Arc::new(Task {
            header: Header {
                state: AtomicU32::new(HANDLE | SCHEDULED),
                slot: AtomicU32::new(NO_SLOT),
                id,
                name: name.map(Box::new),
                hub,
                done: Event::new(),
                finished: AtomicU64::new(0),
            },
            stage: UnsafeCell::new(Stage::Running(future)),
        })
    }

    /// Marks the task killed and takes `RUNNING`, for a kill done now on
    /// the hub's thread: true if the task is to be finished here; false
    /// if it is complete already (the bit is given back) or running.
    fn claim_for_kill(&self) -> bool {
        let prev = self
            .header
            .state
            .fetch_or(RUNNING | KILLED, Ordering::AcqRel);
        if prev & (RUNNING | COMPLETE) != 0 {
            if prev & RUNNING == 0 {
                // Already complete: nothing to drop; undo our RUNNING bit.
                self.header.state.fetch_and(!RUNNING, Ordering::Release);
            }
            return false;
        }
        true
    }

    /// Runs `drop`, a destructor of the task's (its future's, its
    /// output's), catching its panic: as the task's on its hub, for the
    /// stall monitor.
    fn drop_caught(
        &self,
        hub: Option<&Hub>,
        drop: impl FnOnce(),
    ) -> Result<(), Box<dyn Any + Send>> {
        let caught = || catch_unwind(AssertUnwindSafe(drop));
        match hub {
            Some(hub) => hub.as_task(self.header.id, caught),
            None => caught(),
        }
    }

    /// Moves the future out and forgets it (leaked): `finish` then finds no
    /// future to drop. The last resort for tasks that destructors keep
    /// spawning (see `kill_leaking` and `abandon`).
    ///
    /// # Safety
    ///
    /// The caller holds `RUNNING` (so touches `stage` alone), and the task
    /// was never polled.
    unsafe fn leak_future(&self) {
        // SAFETY: exclusive access to `stage` (the caller's contract).
        // Never polled, the future was never pinned: moving it out and
        // forgetting it is sound, as in `Drop`.
        std::mem::forget(unsafe { std::ptr::replace(self.stage.get(), Stage::Consumed) });
    }

    /// Drops the future (catching a panic in its destructor) and stores the
    /// output, then publishes completion.
    ///
    /// Caller: the hub thread, holding the `RUNNING` bit.
    fn finish(&self, hub: Option<&Hub>, output: Result<F::Output, GreenletError>) {
        let stage = self.stage.get();
        // SAFETY: we are on the hub thread and hold `RUNNING` (caller
        // contract; or, from `abandon`, the future is `Send` and was never
        // published to a hub), so nothing else reads or writes `stage`.
        let running = matches!(unsafe { &*stage }, Stage::Running(_));
        let mut output = output;
        if running {
            // Run once, at once (as the killed task's, for the monitor).
            // SAFETY: as above. The future is pinned in this allocation, so
            // it is dropped in place and never moved; the stage is marked
            // consumed at once, before anything else that may panic, so
            // that an unwinding drop cannot leave a dropped future behind
            // to be dropped again.
            let res = self.drop_caught(hub, || unsafe { std::ptr::drop_in_place(stage) });
            // SAFETY: as above; the old stage was dropped in place (also
            // when its destructor panicked: the rest of it was dropped
            // while unwinding), so `write` leaks nothing.
            unsafe { std::ptr::write(stage, Stage::Consumed) };
            if let Err(p) = res {
                if output.is_ok() {
                    let panicked = Panicked::from_payload(p);
                    let lost = std::mem::replace(
                        &mut output,
                        Err(GreenletError::Panicked(Box::new(panicked))),
                    );
                    // The value returned, lost to the panic: its own
                    // destructor may panic too, which must not keep the
                    // task from completing.
                    if let Err(p) = self.drop_caught(hub, move || drop(lost)) {
                        drop_payload(p);
                    }
                } else {
                    drop_payload(p);
                }
            }
        }
        let ok = output.is_ok();
        // Before `COMPLETE` (released below): whoever sees the task complete
        // sees its number.
        let n = FINISHED.fetch_add(1, Ordering::Relaxed) + 1;
        self.header.finished.store(n, Ordering::Relaxed);
        // SAFETY: as above; the stage is `Consumed` (a task finishes only
        // once, under `RUNNING`, so it was `Running` until just above), so
        // `write` leaks nothing.
        unsafe { std::ptr::write(stage, Stage::Finished(output)) };
        // RUNNING is set and COMPLETE, SUCCESS are clear (a task finishes
        // once, under RUNNING): one add clears the first and sets the others.
        let add = COMPLETE + if ok { SUCCESS } else { 0 } - RUNNING;
        let prev = self.header.state.fetch_add(add, Ordering::AcqRel);
        debug_assert!(prev & RUNNING != 0 && prev & (COMPLETE | SUCCESS) == 0);
        if prev & HANDLE == 0 {
            // The Greenlet is gone and will not take the output: drop it here,
            // on the hub thread, where a non-`Send` output may be dropped.
            // SAFETY: COMPLETE is published but no Greenlet exists to take
            // the output, so we are the only one touching `stage`.
            let out = unsafe { std::ptr::replace(stage, Stage::Consumed) };
            // As the task's, for the stall monitor, like its future's.
            let on_hub = hub.filter(|_| std::mem::needs_drop::<F::Output>());
            if let Err(p) = self.drop_caught(on_hub, move || drop(out)) {
                drop_payload(p);
            }
        }
        if let Some(hub) = hub {
            hub.task_finished(&self.header);
        }
        self.header.done.set();
    }
}

impl<F> Task<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    /// Completes a task that never started because its hub had shut down:
    /// drops the (`Send`) future on the calling thread.
    ///
    /// A destructor run so may spawn again onto a hub that shut down (a
    /// supervisor restarting its worker), whose destructor runs inside it,
    /// one stack frame deeper each time: past [`ABANDON_DEPTH`] such drops
    /// nested on one thread, the future is not dropped but leaked, so that
    /// a destructor that always spawns cannot overflow the stack (as a
    /// hub's teardown leaks what destructors keep spawning). The task is
    /// complete when this returns, either way.
    ///
    /// # Safety
    ///
    /// The task was never queued (its hub refused it), so never polled,
    /// and no hub will touch it.
    pub(crate) unsafe fn abandon(&self) {
        let prev = self.header.state.fetch_or(RUNNING, Ordering::AcqRel);
        if prev & (RUNNING | COMPLETE) != 0 {
            return;
        }
        let depth = ABANDONING.get();
        if depth >= ABANDON_DEPTH {
            // SAFETY: `RUNNING` is ours, and the task no hub's, so nothing
            // else touches `stage`; never polled (the caller's contract).
            unsafe { self.leak_future() };
            self.finish(None, Err(GreenletError::Killed));
            return;
        }
        /// Puts the count back, also when a waker woken by `finish`
        /// panics.
        struct Out(usize);
        impl Drop for Out {
            fn drop(&mut self) {
                ABANDONING.set(self.0);
            }
        }
        ABANDONING.set(depth + 1);
        let _out = Out(depth);
        self.finish(None, Err(GreenletError::Killed));
    }
}

/// How many drops of refused tasks' futures may nest on one thread (see
/// [`Task::abandon`]).
pub(crate) const ABANDON_DEPTH: usize = 32;

thread_local! {
    /// How many drops of refused tasks' futures this thread is inside.
    static ABANDONING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl<F> Runnable for Task<F>
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn header(&self) -> &Header {
        &self.header
    }

    fn run(self: Arc<Self>, hub: &Hub) {
        debug_assert!(
            self.header.hub.is_this_threads(),
            "a task runs on its hub's thread only"
        );
        let s = self.header.state.load(Ordering::Acquire);
        if s & (COMPLETE | RUNNING) != 0 {
            // Killed while it sat in the queue: nothing left to run.
            return;
        }
        // A queued task has SCHEDULED set and RUNNING clear, and only this
        // thread changes either now (other threads may only add KILLED), so
        // one add trades the first for the second (SCHEDULED is bit 0,
        // RUNNING bit 1): a single `xadd`, not a compare-and-swap loop.
        let prev = self
            .header
            .state
            .fetch_add(RUNNING - SCHEDULED, Ordering::AcqRel);
        debug_assert!(prev & SCHEDULED != 0 && prev & (RUNNING | COMPLETE) == 0);
        if prev & KILLED != 0 {
            self.finish(Some(hub), Err(GreenletError::Killed));
            return;
        }
        // SAFETY: `Arc::as_ptr(&self)` points at this live task, of which
        // `self` owns a strong reference until the end of this function. The
        // `Arc` rebuilt from it is never dropped (`ManuallyDrop`), so the
        // count stays balanced; the waker is only lent to the future through
        // `cx` for this poll, and clones made from it take references of
        // their own. This saves a reference-count round trip per poll.
        let waker = ManuallyDrop::new(Waker::from(unsafe { Arc::from_raw(Arc::as_ptr(&self)) }));
        let mut cx = Context::from_waker(&waker);
        let stage = self.stage.get();
        let budget = hub.enter_poll(&self.header, &waker);
        // SAFETY: hub thread, `RUNNING` held: exclusive access to `stage`.
        // The future lives in the `Arc` allocation and is never moved (it is
        // dropped in place), so pinning it is sound.
        let res = catch_unwind(AssertUnwindSafe(|| unsafe {
            match &mut *stage {
                Stage::Running(f) => Pin::new_unchecked(f).poll(&mut cx),
                _ => unreachable!("a task that is not complete holds its future"),
            }
        }));
        drop(budget);
        hub.leave_poll();
        match res {
            Ok(Poll::Pending) => {
                // RUNNING is set: subtracting it clears it in one `xadd`.
                let prev = self.header.state.fetch_sub(RUNNING, Ordering::AcqRel);
                if prev & KILLED != 0 {
                    // Killed while it ran (by itself or by another thread):
                    // tear it down now, at its suspension point.
                    self.kill_now(hub);
                }
            }
            Ok(Poll::Ready(v)) => self.finish(Some(hub), Ok(v)),
            Err(p) => {
                self.finish(
                    Some(hub),
                    Err(GreenletError::Panicked(Box::new(Panicked::from_payload(p)))),
                );
            }
        }
    }

    fn kill_now(&self, hub: &Hub) {
        if self.claim_for_kill() {
            self.finish(Some(hub), Err(GreenletError::Killed));
        }
    }

    /// # Safety
    ///
    /// The trait's: the task was never polled, which the block below
    /// relies on.
    unsafe fn kill_leaking(&self, hub: &Hub) {
        if !self.claim_for_kill() {
            return;
        }
        // SAFETY: hub thread, `RUNNING` held; never polled (the caller's
        // contract).
        unsafe { self.leak_future() };
        self.finish(Some(hub), Err(GreenletError::Killed));
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<F>()
    }
}

impl<F> Join<F::Output> for Task<F>
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn header(&self) -> &Header {
        &self.header
    }

    fn take_output(&self) -> Option<Result<F::Output, GreenletError>> {
        if self.header.state.load(Ordering::Acquire) & COMPLETE == 0 {
            return None;
        }
        // SAFETY: COMPLETE was observed with Acquire (the hub wrote the output
        // before publishing it with Release). Only the Greenlet calls this,
        // with exclusive access to itself, and there is one Greenlet; the hub
        // no longer touches `stage` after COMPLETE while the Greenlet lives
        // (HANDLE set). So this is the only access.
        match unsafe { std::ptr::replace(self.stage.get(), Stage::Consumed) } {
            Stage::Finished(out) => Some(out),
            _ => None,
        }
    }

    fn kill_local(&self) -> bool {
        let on_hub = hub::with_current(|h| {
            Arc::ptr_eq(h.shared(), &self.header.hub).then(|| self.kill_now(h))
        });
        matches!(on_hub, Some(Some(())))
    }

    fn as_runnable(self: Arc<Self>) -> TaskRef {
        self
    }
}

impl<F> Wake for Task<F>
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn wake(self: Arc<Self>) {
        if self.header.try_schedule() {
            hub::schedule(self);
        }
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.header.try_schedule() {
            hub::schedule(self.clone());
        }
    }
}

impl<F: Future> Drop for Task<F> {
    fn drop(&mut self) {
        if let Stage::Running(_) = self.stage.get_mut() {
            if !self.header.hub.is_this_threads() {
                // A future that was never polled, so never pinned: the
                // hub's teardown (which a worker hub reaches also after a
                // panic out of a round, and `block_on` also when it
                // unwinds, and which goes on past panics) ends on the
                // hub's thread every task it holds, dropping or leaking
                // its future, but for one a destructor spawns after its
                // rounds (as it drops its timers), which it never polls.
                // Moving such a future and leaking it, rather than
                // dropping a possibly non-`Send` value on the wrong
                // thread, is sound.
                let stage = std::mem::replace(self.stage.get_mut(), Stage::Consumed);
                std::mem::forget(stage);
            }
        }
    }
}

/// Drops a panic payload, whose own destructor may panic in turn, as a
/// [`Panicked`] drops it: that panic is caught (a few levels deep). A
/// panic out of here would leave a task half finished.
pub(crate) fn drop_payload(p: Box<dyn Any + Send>) {
    drop(Panicked::from_payload(p));
}
