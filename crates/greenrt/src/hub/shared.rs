//! The part of a hub other threads see: its injector, its driver's
//! unparker, its load, and the probe the stall monitor reads.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;

use std::time::Duration;

use crate::driver::{Driver, IoShared, Unpark};
use crate::hub::BURST;
use crate::monitor::StallCallback;
use crate::task::raw::TaskRef;
use crate::time::{Clock, TimerKey};

static NEXT_HUB: AtomicU32 = AtomicU32::new(1);

/// Tasks handed to a hub from other threads (spawns and wake-ups).
#[derive(Default)]
struct Injector {
    queue: VecDeque<TaskRef>,
    /// Timers of this hub whose sleep was dropped or moved on another
    /// thread: the hub cancels them at its next round.
    dropped_timers: Vec<TimerKey>,
    /// The hub has shut down: nothing more is accepted.
    closed: bool,
}

/// The bit of [`Probe::seq`] set while the hub moves from one stretch of a
/// poll to the next (a kill from a task): the monitor skips such a read.
/// Sequence numbers stay far below it.
pub(crate) const BUSY: u64 = 1 << 63;

/// What the stall monitor reads while the hub runs (written by the hub with
/// plain stores, read by the monitor thread).
#[derive(Debug, Default)]
pub(crate) struct Probe {
    /// Odd while a task is being polled; bumped at every poll start and end,
    /// and around each destructor a poll runs (a kill from a task).
    pub(crate) seq: AtomicU64,
    /// What `seq` was when the hub last left its loop for code of a task:
    /// a poll, or a destructor run between polls. The destructors run
    /// inside a poll leave it alone: the hub gets control back only when
    /// the poll ends, however many it runs. Written before `seq`.
    pub(crate) outer: AtomicU64,
    /// The id of the task being polled.
    pub(crate) running: AtomicU64,
    /// The id of the task whose poll ran a destructor last (so that of
    /// the poll `outer` times, once `seq` moved past it). Written before
    /// `seq`, and only then: the polls that kill nothing pay nothing for
    /// it.
    pub(crate) poller: AtomicU64,
}

/// The shared half of a hub.
pub(crate) struct HubShared {
    pub(crate) uid: u32,
    pub(crate) name: Arc<str>,
    pub(crate) config: Arc<Config>,
    injector: Mutex<Injector>,
    injected: AtomicBool,
    /// The hub is parked (or about to): wakers must unpark it.
    sleeping: AtomicBool,
    unpark: Arc<dyn Unpark>,
    /// The hub's reactor, for sockets created on it.
    pub(crate) io: Option<Arc<IoShared>>,
    /// Live tasks, for least-loaded placement.
    pub(crate) load: AtomicUsize,
    /// Tasks waiting in the injector (new ones and wake-ups), written
    /// under its lock: a hub that does not take them in (busy with one
    /// long poll) looks loaded by them too.
    waiting: AtomicUsize,
    pub(crate) shutdown: AtomicBool,
    pub(crate) probe: Probe,
    /// Names of named tasks (for the monitor, `current()` and reports).
    pub(crate) names: Mutex<HashMap<u64, Arc<str>>>,
    pub(crate) owner: OnceLock<ThreadId>,
    /// Some other thread asked for a timer to be cancelled
    /// (`Injector::dropped_timers`): one load per round tells the hub.
    has_dropped_timers: AtomicBool,
    /// With a manual clock: its reading (nanoseconds since its origin) at
    /// the start of the hub's last round before it went to sleep (see
    /// `ManualClock::wait_until_idle`).
    idle_at: AtomicU64,
    /// Jobs of `spawn_blocking` made on this hub and not done yet: work
    /// in progress that the clock does not see (a manual clock's hub is
    /// not idle meanwhile, and does not move the clock on by itself).
    blocking_jobs: AtomicUsize,
}

impl std::fmt::Debug for HubShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubShared")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl HubShared {
    pub(crate) fn new(name: Arc<str>, config: Arc<Config>, driver: &Driver) -> Arc<Self> {
        let unpark = driver.park.unparker();
        let io = driver.io.clone();
        let clock = config.clock.clone();
        let shared = Arc::new(HubShared {
            uid: NEXT_HUB.fetch_add(1, Ordering::Relaxed),
            name,
            config,
            injector: Mutex::new(Injector::default()),
            injected: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            unpark,
            io,
            load: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            probe: Probe::default(),
            names: Mutex::new(HashMap::new()),
            owner: OnceLock::new(),
            has_dropped_timers: AtomicBool::new(false),
            idle_at: AtomicU64::new(u64::MAX),
            blocking_jobs: AtomicUsize::new(0),
        });
        // Attached as soon as made, before its thread runs: a manual clock
        // then knows of every hub that will use it (`wait_until_idle`).
        clock.attach(&shared);
        shared
    }

    /// Whether this hub cannot run until the hub `uid`, running on this
    /// thread, returns: it is that hub, or another hub of the same thread,
    /// whose loop is below that one on the stack (a hub started inside
    /// one of its tasks holds the thread until it returns) or has ended
    /// (and its tasks with it). A task of such a hub finishes only through
    /// work of hub `uid`, if at all, and a wait for it from there is a join
    /// edge (see `deadlock`).
    pub(crate) fn held_by(&self, uid: u32) -> bool {
        self.uid == uid || self.is_this_threads()
    }

    /// Whether this hub runs (or ran) on the calling thread.
    pub(crate) fn is_this_threads(&self) -> bool {
        self.owner.get() == Some(&std::thread::current().id())
    }

    /// Hands a scheduled task to the hub from another thread. Returns the
    /// task back if the hub has shut down.
    pub(crate) fn inject(&self, task: TaskRef) -> Result<(), TaskRef> {
        {
            let mut inj = self.injector.lock().unwrap_or_else(|e| e.into_inner());
            if inj.closed {
                return Err(task);
            }
            inj.queue.push_back(task);
            self.waiting.store(inj.queue.len(), Ordering::Relaxed);
        }
        self.injected.store(true, Ordering::SeqCst);
        self.notify();
        Ok(())
    }

    /// Wakes the hub if it sleeps.
    pub(crate) fn notify(&self) {
        // Only the first waker after the hub fell asleep pays for the unpark;
        // the hub sets the flag again the next time it goes to sleep.
        if self.sleeping.load(Ordering::SeqCst) && self.sleeping.swap(false, Ordering::SeqCst) {
            self.unpark.unpark();
        }
    }

    /// Wakes the hub whether or not it looks asleep (shutdown, clock moves).
    pub(crate) fn unpark(&self) {
        self.unpark.unpark();
    }

    /// Asks the hub, from another thread, to cancel its timer `key`.
    pub(crate) fn cancel_timer(&self, key: TimerKey) {
        {
            let mut inj = self.injector.lock().unwrap_or_else(|e| e.into_inner());
            if inj.closed {
                // The hub has ended, and its timers with it.
                return;
            }
            inj.dropped_timers.push(key);
        }
        // SeqCst, as `sleeping`: either the hub, about to park, sees this
        // in `prepare_sleep`, or `notify` sees it asleep and wakes it.
        self.has_dropped_timers.store(true, Ordering::SeqCst);
        // A sleeping hub looks again: its next timer, or a deadlock, may
        // have changed.
        self.notify();
    }

    /// Takes the timers other threads asked to cancel.
    pub(crate) fn take_dropped_timers(&self) -> Vec<TimerKey> {
        // Read before the swap: this runs at every round, and a plain load
        // costs no locked instruction when (as nearly always) there is none.
        if !self.has_dropped_timers.load(Ordering::Acquire)
            || !self.has_dropped_timers.swap(false, Ordering::AcqRel)
        {
            return Vec::new();
        }
        std::mem::take(
            &mut self
                .injector
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .dropped_timers,
        )
    }

    pub(crate) fn has_injected(&self) -> bool {
        self.injected.load(Ordering::SeqCst)
    }

    /// Takes everything injected so far.
    pub(crate) fn drain(&self, into: &mut VecDeque<TaskRef>) {
        if !self.injected.swap(false, Ordering::SeqCst) {
            return;
        }
        let mut inj = self.injector.lock().unwrap_or_else(|e| e.into_inner());
        into.append(&mut inj.queue);
        self.waiting.store(0, Ordering::Relaxed);
    }

    /// Gives back, as the hub idles, the memory of a burst of named tasks
    /// once most are gone, and of a burst of tasks sent from other threads
    /// (not at each take-in: a steady stream would grow the queue again
    /// and again).
    pub(crate) fn trim(&self) {
        if let Ok(mut names) = self.names.try_lock() {
            if names.capacity() > BURST && names.len() * 4 < names.capacity() {
                let keep = names.len() * 2;
                names.shrink_to(keep);
            }
        }
        if let Ok(mut inj) = self.injector.try_lock() {
            if inj.queue.is_empty() && inj.queue.capacity() > BURST {
                inj.queue = VecDeque::new();
            }
        }
    }

    /// How loaded the hub looks, for placement: its live tasks and those
    /// waiting to be taken in.
    pub(crate) fn placement_load(&self) -> usize {
        let load = self.load.load(Ordering::Relaxed);
        load.saturating_add(self.waiting.load(Ordering::Relaxed))
    }

    /// Refuses further injections and returns what is left.
    pub(crate) fn close(&self) -> VecDeque<TaskRef> {
        let mut inj = self.injector.lock().unwrap_or_else(|e| e.into_inner());
        inj.closed = true;
        self.waiting.store(0, Ordering::Relaxed);
        std::mem::take(&mut inj.queue)
    }

    /// Announces that the hub is about to park; returns false (and stays
    /// awake) if work arrived meanwhile.
    pub(crate) fn prepare_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        if self.injected.load(Ordering::SeqCst)
            || self.has_dropped_timers.load(Ordering::SeqCst)
            || self.shutdown.load(Ordering::SeqCst)
        {
            self.sleeping.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Records, as the hub goes to sleep (after the last look for work),
    /// the manual clock's reading at the start of the round that found
    /// nothing to do; `u64::MAX` once it wakes.
    pub(crate) fn note_idle_at(&self, clock_nanos: u64) {
        self.idle_at.store(clock_nanos, Ordering::SeqCst);
    }

    /// The hub sleeps, after a round that began at `clock_nanos` of its
    /// manual clock and found nothing to do: everything due then is done.
    pub(crate) fn idle_at(&self, clock_nanos: u64) -> bool {
        self.sleeping.load(Ordering::SeqCst)
            && self.idle_at.load(Ordering::SeqCst) == clock_nanos
            && !self.has_blocking_jobs()
    }

    /// Counts a job of `spawn_blocking` made on this hub, until the guard
    /// returned is dropped (once the job is done, and its waiting task
    /// told).
    pub(crate) fn blocking_job(self: &Arc<Self>) -> BlockingJob {
        self.blocking_jobs.fetch_add(1, Ordering::SeqCst);
        BlockingJob(self.clone())
    }

    /// Whether jobs of `spawn_blocking` made on this hub are not done.
    pub(crate) fn has_blocking_jobs(&self) -> bool {
        self.blocking_jobs.load(Ordering::SeqCst) > 0
    }

    pub(crate) fn woke(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }

    pub(crate) fn task_name(&self, id: u64) -> Option<Arc<str>> {
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }
}

/// A job of `spawn_blocking` counted in its hub's `blocking_jobs`.
pub(crate) struct BlockingJob(Arc<HubShared>);

impl Drop for BlockingJob {
    fn drop(&mut self) {
        // The last one done: a hub asleep with a manual clock may now be
        // idle, or move its clock on.
        if self.0.blocking_jobs.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.notify();
        }
    }
}

/// The settings a hub runs with (from the runtime's builder).
pub(crate) struct Config {
    pub(crate) clock: Clock,
    pub(crate) max_blocking_time: Option<Duration>,
    pub(crate) on_stall: Option<StallCallback>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            clock: Clock::Real,
            max_blocking_time: Some(Duration::from_millis(100)),
            on_stall: None,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("clock", &self.clock)
            .field("max_blocking_time", &self.max_blocking_time)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::{Driver, ThreadPark};
    use crate::task::raw::Task;

    #[test]
    #[cfg_attr(
        miri,
        ignore = "thousands of entries: slow there, and no `unsafe` to check"
    )]
    fn a_burst_of_names_and_of_injected_tasks_gives_its_memory_back() {
        let hub = HubShared::new(
            Arc::from("t"),
            Arc::new(Config::default()),
            &Driver {
                park: Box::new(ThreadPark::new()),
                io: None,
            },
        );
        let names = |hub: &HubShared| hub.names.lock().unwrap().capacity();
        for id in 0..2000 {
            hub.names.lock().unwrap().insert(id, Arc::from("n"));
        }
        hub.trim();
        assert!(names(&hub) >= 2000, "kept while the tasks live");
        hub.names.lock().unwrap().retain(|&id, _| id < 10);
        hub.trim();
        assert!(names(&hub) <= 1024, "given back: {}", names(&hub));
        assert_eq!(hub.names.lock().unwrap().len(), 10);

        for id in 0..2000 {
            let task = Task::new(id, None, hub.clone(), async {});
            assert!(hub.inject(task).is_ok());
        }
        let mut into = VecDeque::new();
        hub.drain(&mut into);
        assert_eq!(into.len(), 2000);
        hub.trim();
        let left = hub.injector.lock().unwrap().queue.capacity();
        assert!(left <= 1024, "given back: {left}");
    }
}
