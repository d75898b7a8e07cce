//! `Greenlet<T>`: the handle of a spawned task (gevent's `Greenlet`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::hub;
use crate::task::raw::{self, Join};
use sync_prims::futures::EventWait;

/// Why a task produced no value.
#[derive(Debug)]
#[non_exhaustive]
pub enum GreenletError {
    /// The task panicked: the panic, with its message
    /// ([`Panicked::message`](sync_prims::Panicked::message)) and its
    /// payload, which `std::panic::resume_unwind(p.into_payload())`
    /// continues in the caller, as gevent's `get()` raises the task's
    /// exception again. The same type as a [`sync_prims::Thread`]'s panic,
    /// boxed: every task's result has room for this error, and the box
    /// keeps that room a pointer's.
    Panicked(Box<sync_prims::Panicked>),
    /// The task was killed (by [`Greenlet::kill`], or because its hub shut
    /// down) before it finished.
    Killed,
}

impl fmt::Display for GreenletError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GreenletError::Panicked(p) => write!(f, "task panicked: {}", p.message()),
            GreenletError::Killed => f.write_str("task was killed"),
        }
    }
}

impl std::error::Error for GreenletError {}

/// Two errors are equal when they are of one kind and, for panics, have
/// the same message (payloads cannot be compared): for tests that assert
/// on a task's outcome.
impl PartialEq for GreenletError {
    fn eq(&self, other: &GreenletError) -> bool {
        match (self, other) {
            (GreenletError::Panicked(a), GreenletError::Panicked(b)) => a.message() == b.message(),
            (GreenletError::Killed, GreenletError::Killed) => true,
            _ => false,
        }
    }
}

impl Eq for GreenletError {}

/// The handle of a spawned task: gevent's `Greenlet`.
///
/// Await it (from any task, on any hub) for the task's result, or block a
/// plain thread on it with [`join_blocking`](Greenlet::join_blocking). Both
/// wait on the task's completion [`Event`](sync_prims::Event).
///
/// Dropping a `Greenlet` detaches the task: it keeps running; its output is
/// dropped when it finishes. A task and its output are freed when both the
/// task has finished and its last `Greenlet` is gone (or the output was
/// taken): a task whose output holds its own `Greenlet` (received from a
/// channel, say) keeps itself, as an `Rc` cycle does.
///
/// # Panics
///
/// The result is handed out once (it is moved, not copied as gevent's
/// `get()` can be): awaiting a `Greenlet` again after an await completed,
/// or after [`try_get`](Greenlet::try_get) took the result, panics, as
/// polling a finished future may. [`ready`](Greenlet::ready) and
/// [`successful`](Greenlet::successful) can be asked any number of times.
pub struct Greenlet<T> {
    // Dropped first: it borrows the event inside `task`.
    wait: Option<Box<DoneWait<'static>>>,
    task: Arc<dyn Join<T>>,
}

/// Waits for a task's completion event; records the join edge (awaiting
/// task -> awaited task, both on one hub) that the deadlock diagnosis
/// follows.
pub(crate) struct DoneWait<'a> {
    header: &'a raw::Header,
    wait: Option<EventWait<'a>>,
    edge: hub::JoinEdge,
}

impl<'a> DoneWait<'a> {
    pub(crate) fn new(header: &'a raw::Header) -> Self {
        DoneWait {
            header,
            wait: None,
            edge: hub::JoinEdge::default(),
        }
    }

    fn clear(&mut self) {
        // The edge stops counting before the waker it counts leaves the
        // event: a deadlock check on the hub (which may run meanwhile when
        // this runs on another thread, the `Greenlet` moved there) must
        // never count more edges than there are wakers.
        self.edge.clear();
        self.wait = None;
    }
}

impl Future for DoneWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.header.is_complete() {
            this.clear();
            return Poll::Ready(());
        }
        let header = this.header;
        // The event is about to hold `cx`'s waker: an edge counts it only if
        // it is the waker of the task being polled, on the awaited task's
        // hub (or on a hub started inside it). Checked at every poll, as
        // the waker may change (the wait moved into a combinator, or to
        // another task or hub). An edge for the waker it replaces stops
        // counting first, as in `clear`.
        let want = hub::polled_by(cx.waker()).filter(|&(uid, _)| header.hub.held_by(uid));
        this.edge.keep_only(want);
        let wait = this.wait.get_or_insert_with(|| header.done.wait_async());
        if Pin::new(wait).poll(cx).is_ready() {
            this.clear();
            return Poll::Ready(());
        }
        this.edge.set(want);
        Poll::Pending
    }
}

impl Drop for DoneWait<'_> {
    fn drop(&mut self) {
        self.clear();
    }
}

// SAFETY: a `Greenlet` gives access to the output (`T`) and to the header
// (atomics and a thread-safe event); the future is never reached through it
// (see the invariant in `task::raw`). So it may move to, and be shared with,
// another thread exactly when `T` may. `DoneWait` holds a header borrow and
// two integers, all thread-safe.
unsafe impl<T: Send> Send for Greenlet<T> {}
// SAFETY: `&Greenlet` only reads the header (atomics, event) or takes
// nothing; taking the output needs `&mut self`.
unsafe impl<T: Send> Sync for Greenlet<T> {}

impl<T> Greenlet<T> {
    pub(crate) fn new(task: Arc<dyn Join<T>>) -> Self {
        Greenlet { wait: None, task }
    }

    /// A view of the task that tells whether it was killed (or ended),
    /// and keeps it alive no longer: for work done on its behalf elsewhere
    /// (a blocking job) that need not start then.
    pub(crate) fn watch(&self) -> Watch<T> {
        Watch(Arc::downgrade(&self.task))
    }

    /// The task's id, unique in the process.
    pub fn id(&self) -> u64 {
        self.task.header().id
    }

    /// The name given with [`Builder::name`](crate::Builder::name), if any.
    pub fn name(&self) -> Option<&str> {
        self.task.header().name.as_deref().map(|n| &**n)
    }

    /// True once the task has finished: returned, panicked or was killed.
    pub fn ready(&self) -> bool {
        self.task.header().is_complete()
    }

    /// True if the task finished with a value (not a panic, not killed).
    pub fn successful(&self) -> bool {
        let s = self.task.header().state.load(Ordering::Acquire);
        s & raw::COMPLETE != 0 && s & raw::SUCCESS != 0
    }

    /// Kills the task: gevent's `kill`.
    ///
    /// The task's future is dropped at its next suspension point, running
    /// its destructors; whoever awaits it gets [`GreenletError::Killed`].
    /// Called from a task on the same hub while the target is suspended, the
    /// future is dropped before `kill` returns. From elsewhere (another hub,
    /// a plain thread, or the task itself) the kill is delivered to its hub;
    /// wait for it with `.await` or [`join_blocking`](Greenlet::join_blocking).
    /// Killing a finished task does nothing.
    pub fn kill(&self) {
        kill_task(&self.task);
    }

    /// Blocks the calling thread until the task has finished.
    ///
    /// For plain OS threads. Called from a task, this blocks its whole hub
    /// (the stall monitor will say so); await the greenlet instead.
    ///
    /// # Panics
    ///
    /// If the task has not finished and its hub runs on the calling thread
    /// (the caller is one of its tasks, or a task of a hub started inside
    /// one): the hub could never run it, and the call would block for good.
    ///
    /// ```should_panic
    /// greenrt::run(async {
    ///     let g = greenrt::spawn(async { 1 });
    ///     g.join_blocking(); // panics: only this thread could run `g`
    /// });
    /// ```
    pub fn join_blocking(&self) {
        self.refuse_own_hub("join_blocking");
        self.task.header().done.wait();
    }

    /// Blocks the calling thread until the task has finished or `timeout`
    /// has passed; true if it finished.
    ///
    /// # Panics
    ///
    /// As [`join_blocking`](Greenlet::join_blocking) does, unless `timeout`
    /// is zero: on the task's own hub the call would block that hub for the
    /// whole timeout, and could only return false. (A zero timeout blocks
    /// nothing: it asks whether the task has finished, as
    /// [`ready`](Greenlet::ready) does.)
    ///
    /// ```should_panic
    /// use std::time::Duration;
    ///
    /// greenrt::run(async {
    ///     let g = greenrt::spawn(async { 1 });
    ///     g.join_timeout_blocking(Duration::from_secs(1)); // panics at once
    /// });
    /// ```
    pub fn join_timeout_blocking(&self, timeout: Duration) -> bool {
        if !timeout.is_zero() {
            self.refuse_own_hub("join_timeout_blocking");
        }
        self.task.header().done.wait_timeout(timeout) || self.ready()
    }

    /// Panics if the task has not finished and its hub runs on the calling
    /// thread, which a blocking join would keep from running it.
    fn refuse_own_hub(&self, what: &str) {
        let header = self.task.header();
        if !header.is_complete() && header.hub.is_this_threads() {
            panic!(
                "{what} on a task of this thread's own hub, which cannot run it \
                 meanwhile: await the greenlet instead"
            );
        }
    }

    /// The result, if the task has finished and it was not taken yet
    /// (by this method or by awaiting the greenlet).
    pub fn try_get(&mut self) -> Option<Result<T, GreenletError>> {
        self.task.take_output()
    }

    /// Blocks the calling thread until the task finishes, then returns its
    /// result: gevent's `get()` for plain threads.
    ///
    /// Returns `None` if the result was already taken.
    ///
    /// # Panics
    ///
    /// As [`join_blocking`](Greenlet::join_blocking) does.
    pub fn get_blocking(mut self) -> Option<Result<T, GreenletError>> {
        self.join_blocking();
        self.try_get()
    }

    pub(crate) fn header(&self) -> &raw::Header {
        self.task.header()
    }

    pub(crate) fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.wait.is_none() {
            if self.task.header().is_complete() {
                return Poll::Ready(());
            }
            let header: *const raw::Header = self.task.header();
            // SAFETY: the header lives inside the task allocation that
            // `self.task` keeps alive; `wait` is declared before `task`, so
            // it is dropped first, and it is cleared before `self` goes away,
            // so the borrow never outlives the header. The allocation is an
            // `Arc`'s and is never borrowed mutably, so a shared borrow of it
            // stays valid while the `Arc` itself moves.
            let header: &'static raw::Header = unsafe { &*header };
            self.wait = Some(Box::new(DoneWait::new(header)));
        }
        let wait = self.wait.as_mut().expect("set above");
        match Pin::new(&mut **wait).poll(cx) {
            Poll::Ready(()) => {
                self.wait = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// See [`Greenlet::watch`].
pub(crate) struct Watch<T>(Weak<dyn Join<T>>);

impl<T> Watch<T> {
    /// Whether a kill was asked (from any thread), or the task ended.
    pub(crate) fn killed_or_ended(&self) -> bool {
        self.0.upgrade().is_none_or(|task| {
            task.header().state.load(Ordering::Acquire) & (raw::KILLED | raw::COMPLETE) != 0
        })
    }
}

pub(crate) fn kill_task<T>(task: &Arc<dyn Join<T>>) {
    let header = task.header();
    if header.is_complete() {
        return;
    }
    if task.kill_local() {
        return;
    }
    header.state.fetch_or(raw::KILLED, Ordering::AcqRel);
    if header.try_schedule() {
        hub::schedule(task.clone().as_runnable());
    }
}

impl<T> Future for Greenlet<T> {
    type Output = Result<T, GreenletError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.poll_done(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => match self.task.take_output() {
                Some(out) => Poll::Ready(out),
                None => panic!("`Greenlet` polled after its result was taken"),
            },
        }
    }
}

impl<T> Drop for Greenlet<T> {
    fn drop(&mut self) {
        self.wait = None;
        let prev = self
            .task
            .header()
            .state
            .fetch_sub(raw::HANDLE, Ordering::AcqRel); // HANDLE is set while we live
        if prev & raw::COMPLETE != 0 {
            drop(self.task.take_output());
        }
    }
}

impl<T> fmt::Debug for Greenlet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Greenlet")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("ready", &self.ready())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::Poll;

    use sync_prims::Event;

    use crate::hub;

    fn live_edges() -> usize {
        hub::with_current(|h| h.live_edges()).expect("on a hub")
    }

    /// A stale edge would count a waker that is gone as one of the hub's
    /// own, and the deadlock diagnosis would then miss a wake-up that can
    /// still come from outside.
    #[test]
    fn a_greenlet_dropped_on_another_thread_leaves_no_join_edge_behind() {
        crate::run(async {
            let gate = Arc::new(Event::new());
            let g2 = gate.clone();
            let mut g = crate::spawn(async move { g2.wait_async().await });
            // One poll of the greenlet records the root's join edge.
            let pending = poll_fn(|cx| Poll::Ready(Pin::new(&mut g).poll(cx).is_pending())).await;
            assert!(pending);
            assert_eq!(live_edges(), 1);
            // Moved to another thread and dropped there: the edge goes too.
            std::thread::spawn(move || drop(g)).join().unwrap();
            assert_eq!(live_edges(), 0);
            gate.set();
        });
    }
}
