//! `Runtime`: N hubs on N threads, so green tasks use every core; and
//! `run`, one hub on the current thread.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::affinity;
use crate::driver::Driver;
use crate::hub::deadlock::Deadlock;
use crate::hub::{Config, Hub, HubShared};
use crate::monitor::{StallCallback, StallReport};
use crate::task::Greenlet;
use crate::task::raw::{Task, TaskRef};
use crate::time::{Clock, ManualClock};

/// Runs `future` on a hub on the current thread, with every task it
/// spawns, until it completes: gevent's top-level `joinall`. Tasks still
/// running then are killed (their destructors run).
///
/// Stall detection is on (100 ms). A nested `run` inside a task works but
/// blocks the outer hub until it returns.
///
/// # Panics
///
/// If the root future can never complete (a [`Deadlock`]: gevent's
/// `LoopExit`), with a message naming the blocked tasks; [`try_run`]
/// returns it instead. A panic of the root future itself is propagated
/// (panics of spawned tasks are caught and reported on their `Greenlet`).
///
/// ```
/// use std::time::Duration;
///
/// let total = greenrt::run(async {
///     let tasks: Vec<_> = (1..=3u64)
///         .map(|i| greenrt::spawn(async move {
///             greenrt::sleep(Duration::from_millis(i)).await;
///             i
///         }))
///         .collect();
///     let mut sum = 0;
///     for t in tasks {
///         sum += t.await.unwrap();
///     }
///     sum
/// });
/// assert_eq!(total, 6);
/// ```
pub fn run<F: Future>(future: F) -> F::Output {
    match try_run(future) {
        Ok(v) => v,
        Err(d) => panic!("{d}"),
    }
}

/// Like [`run`], but returns a [`Deadlock`] instead of panicking when the
/// root future can never complete.
///
/// ```
/// let err = greenrt::try_run(async {
///     let stuck = greenrt::Builder::new()
///         .name("stuck")
///         .spawn(std::future::pending::<()>())
///         .unwrap();
///     stuck.await
/// })
/// .unwrap_err();
/// assert!(err.to_string().contains("'stuck'"));
/// ```
pub fn try_run<F: Future>(future: F) -> Result<F::Output, Deadlock> {
    run_with(Config::default(), future)
}

/// `future` on a hub of its own on the calling thread, with `config`.
fn run_with<F: Future>(config: Config, future: F) -> Result<F::Output, Deadlock> {
    let driver = Driver::new();
    let shared = HubShared::new(Arc::from("main"), Arc::new(config), &driver);
    Hub::new(shared, driver.park, None).block_on(future)
}

/// Builds a [`Runtime`]; from [`Runtime::builder`].
pub struct RuntimeBuilder {
    workers: Option<usize>,
    /// `None`: pin when the hubs have the process's CPUs to themselves.
    pin_workers: Option<bool>,
    batch_scheduling: bool,
    max_blocking_time: Option<Duration>,
    on_stall: Option<StallCallback>,
    clock: Clock,
}

impl Default for RuntimeBuilder {
    /// The settings of [`Runtime::builder`].
    fn default() -> RuntimeBuilder {
        Runtime::builder()
    }
}

impl fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("workers", &self.workers)
            .field("pin_workers", &self.pin_workers)
            .field("batch_scheduling", &self.batch_scheduling)
            .field("max_blocking_time", &self.max_blocking_time)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// The CPU the calling thread, a hub of a [`Runtime`], was pinned to
/// ([`RuntimeBuilder::pin_workers`]); `None` on any other thread, on hubs
/// that are not pinned, and where the system refused to pin.
///
/// A server with a listener per hub can use it to hand each hub the
/// connections whose packets its CPU processes (`SO_INCOMING_CPU`).
///
/// ```
/// let rt = greenrt::Runtime::builder().workers(1).pin_workers(false).build().unwrap();
/// assert_eq!(rt.spawn(async { greenrt::pinned_cpu() }).get_blocking(), Some(Ok(None)));
/// assert_eq!(greenrt::pinned_cpu(), None);
/// ```
pub fn pinned_cpu() -> Option<usize> {
    affinity::pinned_cpu()
}

/// The most worker hubs a runtime may have: far more threads than cores
/// only cost memory and switches, and a count beyond it is a mistake.
pub const MAX_WORKERS: usize = 4096;

impl RuntimeBuilder {
    /// The number of worker hubs (threads); default: the available cores.
    /// Zero, and more than [`MAX_WORKERS`], are refused by
    /// [`build`](Self::build).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// Pins hub `i` to the `i`-th CPU the building thread may run on
    /// (on a hub, the CPUs its own runtime was built with), cycling when
    /// there are more hubs than CPUs. Default: off.
    ///
    /// A pinned hub keeps its caches and never migrates, which serves
    /// socket-bound work better (about 10% more HTTP requests per second
    /// in this workspace's benchmarks) when the hubs have the machine's
    /// cores to themselves, and worse when other busy processes share
    /// them. Best effort: where the system refuses, the hub runs unpinned.
    /// Threads a task starts inherit its hub's CPU (those of greenrt's
    /// blocking pool and stall monitor do not).
    pub fn pin_workers(mut self, on: bool) -> Self {
        self.pin_workers = Some(on);
        self
    }

    /// Pins the hubs ([`pin_workers`](Self::pin_workers)) only if each
    /// can have a CPU of its own that the process is entitled to: the
    /// process may run on exactly as many CPUs as
    /// [`available_parallelism`](std::thread::available_parallelism)
    /// reports (no CPU quota below its affinity mask, as containers often
    /// have), and there are at least that many hubs.
    pub fn pin_workers_if_whole_machine(mut self) -> Self {
        self.pin_workers = None;
        self
    }

    /// Runs the hub threads under the system's batch scheduling policy
    /// (`SCHED_BATCH`, Linux only). Default: off.
    ///
    /// A batch thread that wakes does not preempt the thread running on
    /// its CPU; it waits for that thread to block or to use up its time
    /// slice, which the scheduler notices at a tick (a few milliseconds;
    /// tens of milliseconds on a kernel with 100 ticks a second). On a machine the hubs have to themselves
    /// nothing changes. Where their CPUs are shared with busy threads that
    /// work with them (a load generator, say), a hub then finds more ready
    /// sockets per wake-up and each request costs the machine less: in
    /// this workspace's HTTP benchmarks, 7-14% more requests per second,
    /// with p99 latency about the same. Where they are shared with unrelated
    /// CPU-bound programs, a woken hub may wait that long.
    ///
    /// Best effort: only a hub under the normal policy takes it (one
    /// whose runtime was built under a real-time or idle policy keeps
    /// that), and where the system refuses, the hub runs as before.
    /// Threads a task starts inherit it (those greenrt starts for its
    /// blocking pool and stall monitor do not). A runtime built inside a
    /// task of a batch hub follows its own setting, not that hub's.
    pub fn batch_scheduling(mut self, on: bool) -> Self {
        self.batch_scheduling = on;
        self
    }

    /// How long a task may run without yielding before the stall monitor
    /// reports it; `None` turns stall detection off. Default: 100 ms.
    ///
    /// A destructor that runs that long (of a task killed, or of a
    /// finished task's value) is reported by the name of the task it
    /// belongs to; a poll that runs that long is reported by the name of
    /// the task polled, also when most of it went to the destructors of
    /// tasks it killed, none of them that long.
    pub fn max_blocking_time(mut self, limit: impl Into<Option<Duration>>) -> Self {
        self.max_blocking_time = limit.into();
        self
    }

    /// Also hands each stall report to `callback` (called on the monitor
    /// thread; reports still go to stderr).
    pub fn on_stall(mut self, callback: impl Fn(&StallReport) + Send + Sync + 'static) -> Self {
        self.on_stall = Some(Arc::new(callback));
        self
    }

    /// Runs every hub of the runtime (and `block_on`) on a manual clock, for
    /// tests.
    pub fn clock(mut self, clock: ManualClock) -> Self {
        self.clock = Clock::Manual(clock);
        self
    }

    /// The CPU each hub of the runtime that [`build`](Self::build) would
    /// start on this thread is to be pinned to, in hub order (`None` for a
    /// hub that would not be pinned; empty for a worker count that `build`
    /// refuses). A hub
    /// is pinned once its thread starts, and stays unpinned if the system
    /// refuses (see [`pinned_cpu`]).
    ///
    /// A server with a listener per hub can name each listener's CPU with
    /// it before the hubs start (`SO_INCOMING_CPU`), so that connections
    /// that come before the hubs run are steered too.
    ///
    /// ```
    /// let builder = greenrt::Runtime::builder().workers(2);
    /// assert_eq!(builder.planned_cpus(), [None, None], "not pinned by default");
    /// let pinned = builder.pin_workers(true).planned_cpus();
    /// assert_eq!(pinned.len(), 2);
    /// ```
    pub fn planned_cpus(&self) -> Vec<Option<usize>> {
        let base = affinity::base();
        match self.hubs(&base) {
            Ok(n) => self.hub_cpus(&base, n),
            Err(_) => Vec::new(),
        }
    }

    /// How many hubs: as asked, or as many CPUs as `base` may use.
    fn hubs(&self, base: &affinity::Placement) -> io::Result<usize> {
        match self.workers {
            Some(0) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a runtime needs at least one worker",
            )),
            Some(n) if n > MAX_WORKERS => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a runtime has at most {MAX_WORKERS} workers, not {n}"),
            )),
            Some(n) => Ok(n),
            // As many as the thread that builds the runtime may use (on a
            // hub, as many as that hub's own runtime's builder).
            None => Ok(base.parallelism().unwrap_or(1)),
        }
    }

    /// Hub `i`'s CPU, when the hubs are pinned: the `i`-th CPU of `base`,
    /// cycling.
    fn hub_cpus(&self, base: &affinity::Placement, n: usize) -> Vec<Option<usize>> {
        let pin = self
            .pin_workers
            .unwrap_or_else(|| affinity::whole_machine(base, n));
        let cores = if pin {
            affinity::allowed_cpus(base)
        } else {
            Vec::new()
        };
        (0..n)
            .map(|i| (!cores.is_empty()).then(|| cores[i % cores.len()]))
            .collect()
    }

    /// [`run`](crate::run) with this builder's clock and stall settings:
    /// runs `future` on the calling thread, as a hub of its own, and
    /// starts no worker thread (the worker settings do not apply). For a
    /// test on a [`ManualClock`], or a program that tunes or silences the
    /// stall monitor, with no runtime to build.
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenrt::time::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// let done = greenrt::Runtime::builder().clock(clock.clone()).run(async {
    ///     greenrt::sleep(Duration::from_secs(3600)).await;
    ///     "an hour later"
    /// });
    /// assert_eq!(done, "an hour later");
    /// assert_eq!(clock.elapsed(), Duration::from_secs(3600));
    /// ```
    ///
    /// # Panics
    ///
    /// As [`run`](crate::run) does, when the future can never complete
    /// ([`try_run`](Self::try_run) returns the [`Deadlock`] instead); and
    /// for a zero [`max_blocking_time`](Self::max_blocking_time), which
    /// [`build`](Self::build) refuses with an error.
    pub fn run<F: Future>(self, future: F) -> F::Output {
        match self.try_run(future) {
            Ok(v) => v,
            Err(d) => panic!("{d}"),
        }
    }

    /// [`run`](Self::run), but a root future that can never complete is a
    /// [`Deadlock`] returned rather than a panic.
    ///
    /// # Panics
    ///
    /// For a zero [`max_blocking_time`](Self::max_blocking_time).
    pub fn try_run<F: Future>(self, future: F) -> Result<F::Output, Deadlock> {
        assert!(
            self.max_blocking_time != Some(Duration::ZERO),
            "max_blocking_time must be positive"
        );
        let config = Config {
            clock: self.clock,
            max_blocking_time: self.max_blocking_time,
            on_stall: self.on_stall,
        };
        run_with(config, future)
    }

    /// Starts the worker threads.
    pub fn build(self) -> io::Result<Runtime> {
        // Where this thread runs, or, on a hub, where that hub's runtime was
        // built: each hub starts from there (see `affinity`).
        let base = affinity::base();
        let n = self.hubs(&base)?;
        let cpus = self.hub_cpus(&base, n);
        if self.max_blocking_time == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "max_blocking_time must be positive",
            ));
        }
        let config = Arc::new(Config {
            clock: self.clock,
            max_blocking_time: self.max_blocking_time,
            on_stall: self.on_stall,
        });
        let mut parks = Vec::with_capacity(n);
        let mut hubs = Vec::with_capacity(n);
        for i in 0..n {
            let driver = Driver::new();
            hubs.push(HubShared::new(
                Arc::from(format!("hub-{i}")),
                config.clone(),
                &driver,
            ));
            parks.push(driver.park);
        }
        let handle = Handle {
            inner: Arc::new(RtInner {
                hubs,
                next: AtomicUsize::new(0),
                config,
            }),
        };
        let mut rt = Runtime {
            handle: handle.clone(),
            threads: Vec::with_capacity(n),
        };
        let batch = self.batch_scheduling;
        for (i, (park, core)) in parks.into_iter().zip(cpus).enumerate() {
            let shared = handle.inner.hubs[i].clone();
            let h = handle.clone();
            let t = thread::Builder::new()
                .name(format!("greenrt-hub-{i}"))
                .spawn(move || {
                    // Best effort (see `pin_workers` and `batch_scheduling`).
                    affinity::place_hub(base, core, batch);
                    Hub::new(shared, park, Some(h)).run_worker()
                })?;
            rt.threads.push(t);
        }
        Ok(rt)
    }
}

/// N hubs on N threads: green tasks on every core, which gevent cannot do.
///
/// [`spawn`](Runtime::spawn) places `Send` tasks on the least loaded hub;
/// inside a task, [`greenrt::spawn`](crate::spawn) keeps spawning on that
/// task's hub. [`block_on`](Runtime::block_on) runs a future on the calling
/// thread (as a hub of its own). Dropping the runtime kills what still
/// runs and joins its threads (dropped inside one of its own tasks, all
/// but that task's: its hub winds down once the task's poll returns).
///
/// ```
/// let rt = greenrt::Runtime::builder().workers(2).build().unwrap();
/// let tasks: Vec<_> = (0..4u64).map(|i| rt.spawn(async move { i * i })).collect();
/// let sum: u64 = rt.block_on(async {
///     let mut s = 0;
///     for t in tasks {
///         s += t.await.unwrap();
///     }
///     s
/// });
/// assert_eq!(sum, 14);
/// ```
pub struct Runtime {
    handle: Handle,
    threads: Vec<JoinHandle<()>>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.handle.inner.hubs.len())
            .finish()
    }
}

impl Runtime {
    /// A runtime with the default settings (one hub per core).
    pub fn new() -> io::Result<Runtime> {
        Runtime::builder().build()
    }

    /// A builder with the default settings.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            workers: None,
            pin_workers: Some(false),
            batch_scheduling: false,
            max_blocking_time: Some(Duration::from_millis(100)),
            on_stall: None,
            clock: Clock::Real,
        }
    }

    /// Runs `future` on the calling thread, as a hub of this runtime (with
    /// its clock and stall settings), until it completes; tasks it spawns
    /// with [`greenrt::spawn`](crate::spawn) run on this thread and are
    /// killed when it returns.
    ///
    /// # Panics
    ///
    /// On a [`Deadlock`] (see [`try_block_on`](Runtime::try_block_on)), or
    /// if `future` panics.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        match self.try_block_on(future) {
            Ok(v) => v,
            Err(d) => panic!("{d}"),
        }
    }

    /// Like [`block_on`](Runtime::block_on), returning a [`Deadlock`]
    /// instead of panicking.
    pub fn try_block_on<F: Future>(&self, future: F) -> Result<F::Output, Deadlock> {
        let driver = Driver::new();
        let shared = HubShared::new(
            Arc::from("block_on"),
            self.handle.inner.config.clone(),
            &driver,
        );
        Hub::new(shared, driver.park, Some(self.handle.clone())).block_on(future)
    }

    /// Spawns a `Send` task on the least loaded hub.
    pub fn spawn<F>(&self, future: F) -> Greenlet<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// Spawns a `Send` task on hub number `hub`; see [`Handle::spawn_on`].
    pub fn spawn_on<F>(&self, hub: usize, future: F) -> Greenlet<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn_on(hub, future)
    }

    /// A handle to spawn on this runtime from anywhere.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// The number of worker hubs.
    pub fn workers(&self) -> usize {
        self.handle.inner.hubs.len()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for h in &self.handle.inner.hubs {
            h.shutdown.store(true, Ordering::SeqCst);
            h.unpark();
        }
        let me = thread::current().id();
        for t in self.threads.drain(..) {
            // Dropped from one of its own hubs: that thread exits by itself.
            if t.thread().id() != me {
                drop(t.join());
            }
        }
    }
}

struct RtInner {
    hubs: Vec<Arc<HubShared>>,
    next: AtomicUsize,
    config: Arc<Config>,
}

/// Spawns onto a [`Runtime`] from any thread; cheap to clone.
#[derive(Clone)]
pub struct Handle {
    inner: Arc<RtInner>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("workers", &self.inner.hubs.len())
            .finish()
    }
}

impl Handle {
    /// The runtime of the current hub, if it belongs to one.
    pub fn try_current() -> Option<Handle> {
        crate::hub::with_current(|h| h.handle().cloned()).flatten()
    }

    /// Spawns a `Send` task on the least loaded hub of the runtime: the one
    /// with the fewest live tasks and tasks waiting to be taken in (so a
    /// hub held up by one long poll looks loaded by what it has not taken
    /// in yet). If the runtime has shut down, the task is dropped and its
    /// greenlet reports [`Killed`](crate::GreenletError::Killed).
    pub fn spawn<F>(&self, future: F) -> Greenlet<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_named(None, future)
    }

    /// Spawns a `Send` task on hub number `hub` (`0..workers`), for work
    /// that must run once per hub, such as one `SO_REUSEPORT` listener each.
    /// An index past the last hub wraps around.
    pub fn spawn_on<F>(&self, hub: usize, future: F) -> Greenlet<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_named_on(hub, None, future)
    }

    pub(crate) fn spawn_named_on<F>(
        &self,
        hub: usize,
        name: Option<Arc<str>>,
        future: F,
    ) -> Greenlet<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let hub = &self.inner.hubs[hub % self.inner.hubs.len()];
        self.spawn_at(hub, name, future)
    }

    /// The number of worker hubs.
    pub fn workers(&self) -> usize {
        self.inner.hubs.len()
    }

    pub(crate) fn spawn_named<F>(&self, name: Option<Arc<str>>, future: F) -> Greenlet<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_at(self.pick(), name, future)
    }

    fn spawn_at<F>(
        &self,
        hub: &Arc<HubShared>,
        name: Option<Arc<str>>,
        future: F,
    ) -> Greenlet<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let id = crate::hub::next_task_id();
        if let Some(n) = &name {
            hub.names
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, n.clone());
        }
        let task = Task::new(id, name, hub.clone(), future);
        let r: TaskRef = task.clone();
        if hub.inject(r).is_err() {
            hub.names
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            // SAFETY: the hub refused the task: it was never queued, so
            // never polled, and no hub has it.
            unsafe { task.abandon() };
        }
        Greenlet::new(task)
    }

    fn pick(&self) -> &Arc<HubShared> {
        let hubs = &self.inner.hubs;
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed) % hubs.len();
        let mut best = start;
        let mut best_load = usize::MAX;
        for k in 0..hubs.len() {
            let i = (start + k) % hubs.len();
            let load = hubs[i].placement_load();
            if load < best_load {
                best = i;
                best_load = load;
            }
        }
        &hubs[best]
    }
}
