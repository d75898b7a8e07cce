//! The hub: a run queue, a registry of live tasks, timers and a driver, on
//! one OS thread (gevent's `Hub`).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, RawWakerVTable, Wake, Waker};
use std::time::Duration;

use crossbeam_utils::Backoff;

use crate::driver::Park;
use crate::hub::budget::PollBudget;
use crate::hub::deadlock::{self, Deadlock};
use crate::hub::edges::{Edge, Edges};
use crate::hub::registry::Registry;
use crate::hub::{BURST, BUSY, HubShared};
use crate::runtime::Handle;
use crate::task::Greenlet;
use crate::task::raw::{self, NO_SLOT, Runnable, Task, TaskRef};
use crate::time::{Clock, Timers};

/// How long the root's hub idles with nothing to run before it looks for a
/// deadlock.
const QUIET: Duration = Duration::from_millis(10);

/// The longest the root's hub idles between two looks for a deadlock: a
/// waker held outside the hub may be dropped without a wake-up, which
/// nothing tells the hub of, so it looks again, less and less often.
const RECHECK: Duration = Duration::from_secs(1);

/// The most rounds of kills a hub's teardown makes (see `Hub::teardown`).
const TEARDOWN_ROUNDS: usize = 64;

/// The id the root future of `block_on` goes by (in reports and join edges).
pub(crate) const ROOT_ID: u64 = 0;

/// `Hub::running_waker` between polls.
const NO_WAKER: (*const (), *const RawWakerVTable) = (std::ptr::null(), std::ptr::null());

static NEXT_TASK: AtomicU64 = AtomicU64::new(1);

/// Ids a hub takes from `NEXT_TASK` at a time.
const ID_BLOCK: u64 = 1024;

/// A fresh task id, unique in the process.
pub(crate) fn next_task_id() -> u64 {
    NEXT_TASK.fetch_add(1, Ordering::Relaxed)
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Hub>>> = const { RefCell::new(None) };
}

/// Runs `f` with the hub of the current thread, if any.
///
/// The thread-local is not borrowed while `f` runs: `f` may run a task's
/// destructor (a kill), or a waker, which may start a hub of its own
/// (`run` nested in a destructor).
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&Hub) -> R) -> Option<R> {
    let hub = CURRENT.with(|c| c.try_borrow().ok().and_then(|c| c.clone()))?;
    Some(f(&hub))
}

/// Puts a task that was just marked `SCHEDULED` on its hub's queue: the local
/// queue when called on the hub's thread, else its injector.
pub(crate) fn schedule(task: TaskRef) {
    let task = match with_current(|h| {
        if Arc::ptr_eq(&h.shared, &task.header().hub) {
            if h.running.get() == task.header().id {
                // A task that queues itself again while it runs
                // (`yield_now`, `sleep(ZERO)`) goes behind every task that
                // is runnable by now, including those woken from other
                // threads and those whose timers are due, which the
                // round would otherwise take in only after it. A timer's
                // waker that panics does so at the end of the round, as
                // it would have there, not in this task's poll.
                h.take_injected();
                let mut first = h.waker_panic.take();
                super::catch_first(&mut first, || h.fire_timers());
                h.waker_panic.set(first);
            }
            h.queue.borrow_mut().push_back(task.clone());
            true
        } else {
            false
        }
    }) {
        Some(true) => return,
        _ => task,
    };
    let hub = task.header().hub.clone();
    // A closed hub refuses the task: it has killed every task it had (and a
    // finished task is never scheduled), so this is a late wake-up of a
    // task that is complete by now; dropping the reference is all there is
    // to do.
    drop(hub.inject(task));
}

/// The hub-local state; lives in an `Rc` in the thread-local `CURRENT`.
pub(crate) struct Hub {
    shared: Arc<HubShared>,
    pub(crate) queue: RefCell<VecDeque<TaskRef>>,
    registry: RefCell<Registry>,
    pub(crate) timers: RefCell<Timers>,
    pub(crate) clock: Clock,
    park: RefCell<Box<dyn Park>>,
    seq: Cell<u64>,
    running: Cell<u64>,
    /// The waker the running task (or root future) is polled with, as its
    /// data and vtable pointers; null between polls.
    running_waker: Cell<(*const (), *const RawWakerVTable)>,
    /// The panic of a timer's waker fired for a task that queued itself
    /// again (see `schedule`), to go on at the end of the round.
    waker_panic: Cell<Option<Box<dyn Any + Send>>>,
    /// Join edges (see `edges.rs`): for each waker of an awaiting task (by
    /// id) that sits in the completion event of a task of this hub, a flag
    /// that is true while it does; recorded by `DoneWait` and by `iwait`'s
    /// `Waits`, ended by `hub::release_edge` (from another thread, only the
    /// flag: a sweep takes the slot).
    edges: RefCell<Edges>,
    handle: Option<Handle>,
    polls: Cell<u64>,
    /// The driver parked (and so polled I/O) since the last round began.
    just_parked: Cell<bool>,
    /// With a manual clock, its reading at the start of the last round.
    round_at: Cell<u64>,
    ids: Cell<(u64, u64)>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

/// The waker of `block_on`'s root future.
struct RootWake {
    woken: AtomicBool,
    hub: Arc<HubShared>,
}

impl Wake for RootWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.hub.notify();
    }
}

/// Restores the previous current hub when `block_on`/`run_worker` ends,
/// even by a panic.
struct Enter {
    prev: Option<Rc<Hub>>,
}

impl Drop for Enter {
    fn drop(&mut self) {
        let prev = self.prev.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

impl Hub {
    pub(crate) fn new(
        shared: Arc<HubShared>,
        park: Box<dyn Park>,
        handle: Option<Handle>,
    ) -> Rc<Hub> {
        let _ = shared.owner.set(std::thread::current().id());
        let clock = shared.config.clock.clone();
        if shared.config.max_blocking_time.is_some() {
            crate::monitor::watch(&shared);
        }
        Rc::new(Hub {
            shared,
            queue: RefCell::new(VecDeque::new()),
            registry: RefCell::new(Registry::default()),
            timers: RefCell::new(Timers::new(clock.origin())),
            clock,
            park: RefCell::new(park),
            seq: Cell::new(0),
            running: Cell::new(ROOT_ID),
            running_waker: Cell::new(NO_WAKER),
            waker_panic: Cell::new(None),
            edges: RefCell::new(Edges::default()),
            handle,
            polls: Cell::new(0),
            just_parked: Cell::new(false),
            round_at: Cell::new(u64::MAX),
            ids: Cell::new((0, 0)),
        })
    }

    pub(crate) fn shared(&self) -> &Arc<HubShared> {
        &self.shared
    }

    pub(crate) fn handle(&self) -> Option<&Handle> {
        self.handle.as_ref()
    }

    /// The id of the task being polled (`ROOT_ID` for the root future).
    pub(crate) fn running_id(&self) -> u64 {
        self.running.get()
    }

    /// The id of the task being polled, if `waker` is the one it is polled
    /// with (not a waker of a combinator inside it, such as
    /// `FuturesUnordered`'s): a join edge may then count `waker` as that
    /// task's (see `deadlock`).
    pub(crate) fn running_with(&self, waker: &Waker) -> Option<u64> {
        let (data, vtable) = self.running_waker.get();
        (std::ptr::eq(waker.data(), data) && std::ptr::eq(waker.vtable(), vtable))
            .then(|| self.running.get())
    }

    fn enter(self: &Rc<Self>) -> Enter {
        let prev = CURRENT.with(|c| c.borrow_mut().replace(self.clone()));
        Enter { prev }
    }

    /// Spawns a task on this hub (the caller is on the hub's thread).
    pub(crate) fn spawn<F>(&self, name: Option<Arc<str>>, future: F) -> Greenlet<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let id = self.take_id();
        if let Some(n) = &name {
            self.shared
                .names
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, n.clone());
        }
        let task = Task::new(id, name, self.shared.clone(), future);
        let r: TaskRef = task.clone();
        self.register(&r);
        self.queue.borrow_mut().push_back(r);
        Greenlet::new(task)
    }

    /// A task id from this hub's block (one shared atomic add per block).
    fn take_id(&self) -> u64 {
        let (next, end) = self.ids.get();
        if next < end {
            self.ids.set((next + 1, end));
            return next;
        }
        let start = NEXT_TASK.fetch_add(ID_BLOCK, Ordering::Relaxed);
        self.ids.set((start + 1, start + ID_BLOCK));
        start
    }

    fn register(&self, task: &TaskRef) {
        let mut reg = self.registry.borrow_mut();
        let slot = reg.insert(task.clone());
        task.header().slot.store(slot, Ordering::Relaxed);
        self.shared.load.store(reg.len(), Ordering::Relaxed);
    }

    /// Called by a task when it completes (hub thread).
    pub(crate) fn task_finished(&self, header: &raw::Header) {
        // Hub-thread-only field: a load and a store, no read-modify-write.
        let slot = header.slot.load(Ordering::Relaxed);
        header.slot.store(NO_SLOT, Ordering::Relaxed);
        if slot != NO_SLOT {
            let removed = {
                let mut reg = self.registry.borrow_mut();
                let removed = reg.remove(slot);
                self.shared.load.store(reg.len(), Ordering::Relaxed);
                removed
            };
            drop(removed);
        }
        if header.name.is_some() {
            self.shared
                .names
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&header.id);
        }
        // Join edges need no cleanup here: a task's `DoneWait`s remove
        // theirs when they complete or are dropped with its future.
    }

    /// Records a join edge of task `waiter`.
    pub(crate) fn add_edge(&self, waiter: u64) -> Edge {
        self.edges.borrow_mut().add(waiter)
    }

    /// Join edges that still count a waker.
    #[cfg(test)]
    pub(crate) fn live_edges(&self) -> usize {
        self.edges.borrow().live().count()
    }

    /// Removes a join edge of this hub.
    pub(crate) fn remove_edge(&self, edge: &Edge) {
        self.edges.borrow_mut().remove(edge);
    }

    /// Starts a poll of a task: see [`begin`](Hub::begin).
    #[inline]
    pub(crate) fn enter_poll(&self, header: &raw::Header, waker: &Waker) -> PollBudget {
        self.begin(header.id, waker)
    }

    /// Marks task `id` as the one polled (until [`leave_poll`]), and gives
    /// the poll its budget of socket operations, which lasts as long as
    /// the guard returned (also when the poll unwinds).
    ///
    /// [`leave_poll`]: Hub::leave_poll
    #[inline]
    fn begin(&self, id: u64, waker: &Waker) -> PollBudget {
        self.enter_outer();
        self.set_running(id, (waker.data(), waker.vtable()), 1);
        super::budget::start_poll()
    }

    /// Marks task `id`, polled with the waker `waker` (or `NO_WAKER`), as
    /// the one running, for the stall monitor, `current()` and joins, and
    /// moves the poll's number on by `step` (odd while a poll runs).
    #[inline]
    fn set_running(&self, id: u64, waker: (*const (), *const RawWakerVTable), step: u64) {
        let s = self.seq.get() + step;
        self.seq.set(s);
        self.running.set(id);
        self.running_waker.set(waker);
        // Release: a monitor that reads this id sees the end of the poll
        // before (its `seq`), and so can tell that the id is not the one
        // of the poll it was watching.
        self.shared.probe.running.store(id, Ordering::Release);
        self.shared.probe.seq.store(s, Ordering::Release);
    }

    /// Tells the stall monitor that the hub leaves its loop for a task's
    /// code: the poll about to begin (the next `seq`, odd), whatever it
    /// runs, is timed as one.
    #[inline]
    fn enter_outer(&self) {
        self.shared
            .probe
            .outer
            .store(self.seq.get() + 1, Ordering::Relaxed);
    }

    /// Runs `f`, the destructor of task `id`'s future run outside its
    /// poll (a kill, or the end of a poll that finished it), as that
    /// task's for the stall monitor and `current()`; then puts back what
    /// ran before: nothing, or the poll of the task that killed it.
    pub(crate) fn as_task<R>(&self, id: u64, f: impl FnOnce() -> R) -> R {
        let before = (self.running.get(), self.running_waker.get());
        if self.seq.get() % 2 == 0 {
            // Between polls (a kill from another thread, the end of a
            // poll): a stretch of its own, which the destructor's task
            // owns, also for the destructors it runs in turn.
            self.enter_outer();
            self.shared.probe.poller.store(id, Ordering::Relaxed);
            self.set_running(id, NO_WAKER, 1);
            let r = f();
            self.set_running(before.0, before.1, 1);
            return r;
        }
        // Inside a poll (a kill from a task) the number stays odd: the
        // monitor sees the destructor as a stretch of its own, then the
        // rest of the killer's poll as another, and times the killer's
        // whole poll as well (by `outer`, which stays).
        let poller = (!before.1.1.is_null()).then_some(before.0);
        self.switch_stretch(id, NO_WAKER, poller);
        let r = f();
        self.switch_stretch(before.0, before.1, None);
        r
    }

    /// [`set_running`](Hub::set_running) from one stretch of a poll to
    /// the next (odd to odd), with `poller` (the id of the task polled,
    /// when this is the first destructor a poll runs) published too. The
    /// monitor reads a stretch's data between two reads of `seq`, and
    /// takes it for that stretch's if both are the same: `seq` is marked
    /// [`BUSY`] before the data change (a fence keeps the new data from
    /// being seen before the mark), so that no read can pair the old
    /// number with the new data. Off the hot path: only kills from a task
    /// come here.
    fn switch_stretch(
        &self,
        id: u64,
        waker: (*const (), *const RawWakerVTable),
        poller: Option<u64>,
    ) {
        let probe = &self.shared.probe;
        probe.seq.store(self.seq.get() | BUSY, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        if let Some(p) = poller {
            probe.poller.store(p, Ordering::Relaxed);
        }
        self.set_running(id, waker, 2);
    }

    #[inline]
    pub(crate) fn leave_poll(&self) {
        let s = self.seq.get() + 1;
        self.seq.set(s);
        self.running.set(ROOT_ID);
        self.running_waker.set(NO_WAKER);
        self.shared.probe.seq.store(s, Ordering::Release);
        self.polls.set(self.polls.get() + 1);
    }

    /// One round: takes injected tasks, fires due timers, then runs the
    /// tasks that are runnable now (those scheduled during the round run in
    /// the next one). `root_polled`: the root future was polled just
    /// before, and is busy too. Returns how many tasks it polled.
    fn tick(&self, root_polled: bool) -> usize {
        if let Some(nanos) = self.clock.manual_nanos() {
            self.round_at.set(nanos);
        }
        self.take_injected();
        self.fire_timers();
        let parked = self.just_parked.replace(false);
        if !parked && (root_polled || !self.queue.borrow().is_empty()) {
            // Busy since the last park (tasks to run, or a root that keeps
            // waking itself, as a `yield_now` loop does): the driver has
            // not looked at I/O since, so let it now (right after a park
            // it just did).
            let mut park = self.park.borrow_mut();
            if park.has_wake_sources() {
                park.poll_ready();
            }
        }
        let n = self.queue.borrow().len();
        for _ in 0..n {
            let Some(t) = self.queue.borrow_mut().pop_front() else {
                break;
            };
            t.run(self);
        }
        self.trim();
        if let Some(p) = self.waker_panic.take() {
            resume_unwind(p);
        }
        n
    }

    /// Moves the tasks injected from other threads to the run queue.
    fn take_injected(&self) {
        if self.shared.has_injected() {
            let mut fresh = VecDeque::new();
            self.shared.drain(&mut fresh);
            for t in &fresh {
                if t.header().slot.load(Ordering::Relaxed) == NO_SLOT && !t.header().is_complete() {
                    self.register(t);
                }
            }
            self.queue.borrow_mut().append(&mut fresh);
        }
    }

    /// Gives back the memory of a burst (100,000 spawns, timers or joins)
    /// once it is over: a look at a few capacities per round.
    fn trim(&self) {
        let mut q = self.queue.borrow_mut();
        if q.is_empty() && q.capacity() > BURST {
            q.shrink_to(64);
        }
        drop(q);
        self.registry.borrow_mut().trim();
        self.timers.borrow_mut().trim();
        self.edges.borrow_mut().trim();
    }

    fn fire_timers(&self) {
        for key in self.shared.take_dropped_timers() {
            // Dropped after the borrow (see `Timers::cancel`).
            let waker = self.timers.borrow_mut().cancel(key);
            drop(waker);
        }
        if self.timers.borrow().is_empty() {
            return;
        }
        let now = self.clock.now();
        let mut due = Vec::new();
        self.timers.borrow_mut().take_due(now, &mut due);
        super::wake_each(due);
    }

    /// How long the hub may sleep: `None` for "until woken".
    fn sleep_time(&self) -> Option<std::time::Duration> {
        let next = self.timers.borrow().next_deadline()?;
        let now = self.clock.now();
        Some(next.saturating_duration_since(now))
    }

    /// Sleeps until something may be runnable, for at most `cap`. With a
    /// manual clock that advances by itself, jumps to the next timer
    /// instead.
    fn idle(&self, root: Option<&RootWake>, cap: Option<Duration>) {
        if !self.queue.borrow().is_empty() {
            return;
        }
        // Nothing to run: what other threads share with the hub gives back
        // the memory of a burst too (behind locks, so not every round).
        self.shared.trim();
        // Not while blocking jobs of this hub run: their time is real.
        if self.clock.auto_advance() && !self.shared.has_blocking_jobs() {
            if let Some(next) = self.timers.borrow().next_deadline() {
                if !self.shared.has_injected() {
                    // I/O that is ready now comes before the jump: a read
                    // whose bytes are there must not time out first.
                    if self.park.borrow().has_wake_sources() {
                        self.park.borrow_mut().poll_ready();
                        if !self.queue.borrow().is_empty()
                            || self.shared.has_injected()
                            || root.is_some_and(|r| r.woken.load(Ordering::SeqCst))
                        {
                            return;
                        }
                    }
                    self.clock.advance_to(next);
                    return;
                }
            }
        }
        // Work from other threads often comes in bursts: look again a few
        // times (spinning, then yielding the thread) before paying for a
        // park and the unpark that ends it. A hub with sockets goes straight
        // to the reactor's wait instead, which sees both I/O and wake-ups
        // (spinning there would only delay the I/O).
        let backoff = Backoff::new();
        let spin = !self.park.borrow().has_wake_sources();
        while spin && !backoff.is_completed() {
            if self.shared.has_injected() || root.is_some_and(|r| r.woken.load(Ordering::SeqCst)) {
                return;
            }
            backoff.snooze();
        }
        if !self.shared.prepare_sleep() {
            return;
        }
        if root.is_some_and(|r| r.woken.load(Ordering::SeqCst)) {
            self.shared.woke();
            return;
        }
        // Published only once nothing is left to do: a wake-up from now on
        // finds the hub asleep and clears `sleeping` (see `idle_at`).
        let manual = self.clock.is_manual();
        if manual {
            self.shared.note_idle_at(self.round_at.get());
        }
        let timeout = if manual { None } else { self.sleep_time() };
        let timeout = match (timeout, cap) {
            (Some(t), Some(c)) => Some(t.min(c)),
            (t, c) => t.or(c),
        };
        self.park.borrow_mut().park(timeout);
        self.just_parked.set(true);
        if manual {
            self.shared.note_idle_at(u64::MAX);
        }
        self.shared.woke();
    }

    /// Drives `future` to completion on this thread, with every task it
    /// spawns; kills the tasks left when it completes.
    pub(crate) fn block_on<F: Future>(self: &Rc<Self>, future: F) -> Result<F::Output, Deadlock> {
        let _enter = self.enter();
        let root = Arc::new(RootWake {
            woken: AtomicBool::new(true),
            hub: self.shared.clone(),
        });
        let waker = Waker::from(root.clone());
        let mut cx = Context::from_waker(&waker);
        // In an `Option`, so that it is dropped before the teardown.
        let mut future = pin!(Some(future));
        // Once the hub has idled with nothing to run: how long it idles
        // before its next look for a deadlock.
        let mut quiet: Option<Duration> = None;
        let result = catch_unwind(AssertUnwindSafe(|| {
            loop {
                let root_polled = root.woken.swap(false, Ordering::SeqCst);
                if root_polled {
                    let budget = self.begin(ROOT_ID, &waker);
                    let r = (future.as_mut().as_pin_mut())
                        .expect("polled until it is ready")
                        .poll(&mut cx);
                    drop(budget);
                    self.leave_poll();
                    if let Poll::Ready(v) = r {
                        return Ok(v);
                    }
                }
                let ran = self.tick(root_polled);
                if root_polled || ran > 0 {
                    quiet = None;
                }
                if ran == 0 && !root.woken.load(Ordering::SeqCst) && self.queue.borrow().is_empty()
                {
                    // The diagnosis looks at every task: it runs once the
                    // hub has been quiet for a while, not at every idle (a
                    // root woken often from another thread would pay a
                    // scan of all tasks each time).
                    if quiet.is_some() {
                        if let Some(d) = self.find_deadlock(&root) {
                            return Err(d);
                        }
                    }
                    self.idle(Some(&root), Some(quiet.unwrap_or(QUIET)));
                    quiet = Some(quiet.map_or(QUIET, |wait| (wait * 2).min(RECHECK)));
                }
            }
        }));
        // A root poll that unwound did not say it ended: the destructors
        // run from here on are not part of it.
        if self.seq.get() % 2 == 1 {
            self.leave_poll();
        }
        // The root future goes first, with the hub still running: what its
        // destructors spawn (it may be pending still, after a deadlock) is
        // killed with the other tasks. Its drop is the root's, for the
        // stall monitor.
        let mut later = None;
        self.as_task(ROOT_ID, || {
            super::catch_first(&mut later, || future.set(None));
        });
        if let Some(t) = self.teardown() {
            super::catch_first(&mut later, || resume_unwind(t));
        }
        // The root's own panic, if any, goes on rather than one of the
        // destructors' or the teardown's.
        match (result, later) {
            (Err(p), later) => {
                if let Some(t) = later {
                    raw::drop_payload(t);
                }
                resume_unwind(p)
            }
            (Ok(_), Some(t)) => resume_unwind(t),
            (Ok(r), None) => r,
        }
    }

    /// Runs the hub of a runtime worker until the runtime shuts down.
    ///
    /// A panic out of a round (a foreign waker that panics when the hub
    /// wakes it, for a task's end, a timer or I/O: tasks' own panics are
    /// caught where they are polled) is reported on standard error, and
    /// the hub goes on: ending it would leave its tasks, and every task
    /// later sent to it, waiting for good. Every wake-up of the round was
    /// made before the panic went on (see `wake_each`).
    pub(crate) fn run_worker(self: &Rc<Self>) {
        let _enter = self.enter();
        while !self.shared.shutdown.load(Ordering::Acquire) {
            let round = catch_unwind(AssertUnwindSafe(|| {
                let ran = self.tick(false);
                if ran == 0 && self.queue.borrow().is_empty() {
                    self.idle(None, None);
                }
            }));
            if let Err(p) = round {
                // Neither the report (stderr may be closed) nor the drop of
                // the payload (a `Panicked`'s never panics) may unwind past
                // the teardown below.
                let p = sync_prims::Panicked::from_payload(p);
                let _ = writeln!(
                    std::io::stderr(),
                    "greenrt: hub '{}': a waker panicked: {} (the hub goes on)",
                    self.shared.name,
                    p.message()
                );
            }
        }
        if let Some(p) = self.teardown() {
            resume_unwind(p);
        }
    }

    /// Closes the injector, then kills every task still alive.
    ///
    /// A task's end wakes whatever waits for it, and a foreign waker may
    /// panic (as may a destructor run here): teardown goes on past such
    /// panics, so that every future the hub polled is dropped on its
    /// thread, and returns the first once it is done.
    fn teardown(&self) -> Option<Box<dyn Any + Send>> {
        let mut panicked = None;
        // The injector closes first: a task sent in and never taken in
        // (spawned from another thread; one of the registry woken from
        // there is killed as one of the registry) is killed in the first
        // round, and what its destructor spawns here, in the next.
        let mut untaken: Vec<TaskRef> = (self.shared.close().into_iter())
            .filter(|t| t.header().slot.load(Ordering::Relaxed) == NO_SLOT)
            .collect();
        // Destructors may spawn or wake tasks: repeat until nothing is left
        // (bounded, so that a destructor that always spawns cannot hang us).
        for _ in 0..TEARDOWN_ROUNDS {
            let mut tasks: Vec<TaskRef> = self.registry.borrow().iter().cloned().collect();
            tasks.append(&mut untaken);
            self.queue.borrow_mut().clear();
            if tasks.is_empty() {
                break;
            }
            for t in tasks {
                super::catch_first(&mut panicked, || t.kill_now(self));
            }
        }
        // Past the bound, what destructors spawned in the last round (never
        // polled: teardown polls nothing, and each round killed every task
        // there was before it) ends as killed, its future leaked: whoever
        // waits for it is told, and no destructor runs to spawn again.
        let left: Vec<TaskRef> = self.registry.borrow().iter().cloned().collect();
        for t in left {
            // SAFETY: `t` was never polled: only `tick` polls tasks, and
            // teardown runs none; each round killed every task of the
            // registry at its start (`kill_now` ends a task, or finds it
            // complete), and the injector is closed, so what is left was
            // spawned, here, during the last round.
            super::catch_first(&mut panicked, || unsafe { t.kill_leaking(self) });
        }
        self.queue.borrow_mut().clear();
        super::catch_first(&mut panicked, || {
            let timers = std::mem::replace(
                &mut *self.timers.borrow_mut(),
                Timers::new(self.clock.origin()),
            );
            drop(timers);
        });
        self.clock.detach(&self.shared);
        crate::monitor::unwatch(&self.shared);
        panicked
    }

    fn find_deadlock(&self, root: &Arc<RootWake>) -> Option<Deadlock> {
        if !self.timers.borrow().is_empty()
            || self.shared.has_injected()
            || self.park.borrow().has_wake_sources()
        {
            return None;
        }
        // Join edges that still hold a waker, per awaiting task.
        let mut edges: HashMap<u64, u32> = HashMap::new();
        for waiter in self.edges.borrow().live() {
            *edges.entry(waiter).or_insert(0) += 1;
        }
        let registry = self.registry.borrow();
        let found = deadlock::check(&self.shared, root_refs(root), &registry, &edges)?;
        // A wake-up from another thread sets its flag (the root's, or a
        // task's place in the injector), then drops its reference: if the
        // count above missed the reference, the flag is seen here.
        std::sync::atomic::fence(Ordering::Acquire);
        if root.woken.load(Ordering::SeqCst) || self.shared.has_injected() {
            return None;
        }
        Some(found)
    }

    /// Names a task for reports: its name, or `#id` and its future's type.
    pub(crate) fn describe(task: &dyn Runnable) -> String {
        let h = task.header();
        match &h.name {
            Some(n) => format!("'{n}' (#{})", h.id),
            None => format!("#{} ({})", h.id, task.type_name()),
        }
    }
}

/// References to the root waker beyond the two `block_on` holds.
fn root_refs(root: &Arc<RootWake>) -> usize {
    Arc::strong_count(root).saturating_sub(2)
}
