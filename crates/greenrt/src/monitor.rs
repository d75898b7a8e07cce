//! Stall detection: gevent's monitor thread.
//!
//! Each hub publishes, with plain stores, a poll sequence number (odd while
//! a task is polled, moved on also around each destructor that a poll runs
//! by killing a task), the number at which the hub last handed control to
//! a task (the start of the poll running, which those destructors leave
//! alone) and the id of the task it polls. One monitor thread per process
//! samples every watched hub a few times per `max_blocking_time`; a hub
//! whose odd sequence number has not moved for `max_blocking_time` is stuck
//! in one poll or destructor, and one whose poll has run that long is
//! stuck too (a task that kills others as it goes, each destructor short):
//! the task of the stretch (for a stretch) or the task polled (for a whole
//! poll) is reported once for that stall, on stderr and to the runtime's
//! callback. The hot path pays four plain stores per poll
//! and no clock read.

use std::fmt;
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::hub::{BUSY, HubShared, ROOT_ID};

/// The callback of `RuntimeBuilder::on_stall`.
pub(crate) type StallCallback = Arc<dyn Fn(&StallReport) + Send + Sync>;

/// A task ran longer than `max_blocking_time` without yielding.
#[derive(Debug, Clone)]
pub struct StallReport {
    hub: Arc<str>,
    task_id: u64,
    task_name: Option<Arc<str>>,
    elapsed: Duration,
    limit: Duration,
}

impl StallReport {
    /// The hub the task blocks.
    pub fn hub(&self) -> &str {
        &self.hub
    }

    /// The task's id (0 for the root future of `run`/`block_on`).
    pub fn task_id(&self) -> u64 {
        self.task_id
    }

    /// The task's name, if it has one (`"main"` for the root future).
    pub fn task_name(&self) -> Option<&str> {
        self.task_name.as_deref()
    }

    /// How long the task had run without yielding when it was reported (a
    /// lower bound: the monitor samples).
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The `max_blocking_time` it exceeded.
    pub fn limit(&self) -> Duration {
        self.limit
    }
}

impl fmt::Display for StallReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.task_name {
            Some(n) => write!(f, "task '{n}' (#{})", self.task_id)?,
            None => write!(f, "task #{}", self.task_id)?,
        }
        write!(
            f,
            " on hub '{}' has run for {} ms without yielding (max_blocking_time {} ms); the other tasks of this hub are starved",
            self.hub,
            self.elapsed.as_millis(),
            self.limit.as_millis()
        )
    }
}

struct Watched {
    hub: Weak<HubShared>,
    /// The sequence number seen last, since when, and whether that stretch
    /// was reported.
    last_seq: u64,
    since: Instant,
    reported: bool,
    /// The same for the whole poll (the hub's `outer` number); 0: none.
    last_outer: u64,
    outer_since: Instant,
    outer_reported: bool,
}

struct Monitor {
    hubs: Mutex<Vec<Watched>>,
    thread: Thread,
    /// Set when the last hub is gone: the thread exits.
    stop: AtomicBool,
    /// The thread is in a stall callback (which might itself shut a
    /// runtime down: then nobody joins the thread, it exits by itself).
    in_callback: AtomicBool,
}

/// The monitor thread lives while at least one hub is watched, and is
/// joined when the last one goes (so a program, or a test under miri, never
/// ends with it still running).
struct Running {
    monitor: Arc<Monitor>,
    join: JoinHandle<()>,
}

static MONITOR: Mutex<Option<Running>> = Mutex::new(None);

/// Starts watching a hub (with `max_blocking_time` set).
pub(crate) fn watch(hub: &Arc<HubShared>) {
    let mut g = MONITOR.lock().unwrap_or_else(|e| e.into_inner());
    if g.is_none() {
        let (tx, rx) = std::sync::mpsc::channel::<Arc<Monitor>>();
        let placement = crate::affinity::for_helper();
        let spawned = thread::Builder::new()
            .name("greenrt-monitor".into())
            .spawn(move || {
                crate::affinity::apply(placement);
                if let Ok(m) = rx.recv() {
                    run(&m);
                }
            });
        // Without a monitor thread (none could be started) stalls go
        // unreported; the hub runs as usual.
        let Ok(join) = spawned else { return };
        let monitor = Arc::new(Monitor {
            hubs: Mutex::new(Vec::new()),
            thread: join.thread().clone(),
            stop: AtomicBool::new(false),
            in_callback: AtomicBool::new(false),
        });
        if tx.send(monitor.clone()).is_err() {
            return;
        }
        *g = Some(Running { monitor, join });
    }
    if let Some(r) = &*g {
        r.monitor
            .hubs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Watched {
                hub: Arc::downgrade(hub),
                last_seq: 0,
                since: Instant::now(),
                reported: false,
                last_outer: 0,
                outer_since: Instant::now(),
                outer_reported: false,
            });
        r.monitor.thread.unpark();
    }
}

/// Stops watching a hub; stops the monitor thread after the last one.
pub(crate) fn unwatch(hub: &Arc<HubShared>) {
    let stopped = {
        let mut g = MONITOR.lock().unwrap_or_else(|e| e.into_inner());
        let Some(r) = &*g else { return };
        let me = Arc::downgrade(hub);
        let empty = {
            let mut hubs = r.monitor.hubs.lock().unwrap_or_else(|e| e.into_inner());
            hubs.retain(|w| !w.hub.ptr_eq(&me) && w.hub.strong_count() > 0);
            hubs.is_empty()
        };
        if empty { g.take() } else { None }
    };
    if let Some(r) = stopped {
        r.monitor.stop.store(true, Ordering::SeqCst);
        r.monitor.thread.unpark();
        let on_monitor = thread::current().id() == r.join.thread().id();
        if !on_monitor && !r.monitor.in_callback.load(Ordering::SeqCst) {
            drop(r.join.join());
        }
    }
}

fn run(m: &Monitor) {
    loop {
        let tick = {
            let mut hubs = m.hubs.lock().unwrap_or_else(|e| e.into_inner());
            hubs.retain(|w| w.hub.strong_count() > 0);
            hubs.iter()
                .filter_map(|w| w.hub.upgrade()?.config.max_blocking_time)
                .min()
                .map(|d| (d / 4).clamp(Duration::from_millis(1), Duration::from_millis(50)))
        };
        if m.stop.load(Ordering::SeqCst) {
            return;
        }
        match tick {
            Some(t) => thread::park_timeout(t),
            None => thread::park(),
        }
        if m.stop.load(Ordering::SeqCst) {
            return;
        }
        let mut reports = Vec::new();
        {
            let mut hubs = m.hubs.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            for w in hubs.iter_mut() {
                let Some(hub) = w.hub.upgrade() else { continue };
                let Some(limit) = hub.config.max_blocking_time else {
                    continue;
                };
                // Read as a seqlock: `running`, `outer` and `poller` (all
                // written before `seq`, and when a poll moves from one
                // stretch to the next, after `seq` is marked `BUSY`)
                // belong to stretch `seq` only if it read the same, not
                // busy, before and after them.
                let seq = hub.probe.seq.load(Ordering::Acquire);
                let running = hub.probe.running.load(Ordering::Relaxed);
                let outer = hub.probe.outer.load(Ordering::Relaxed);
                let poller = hub.probe.poller.load(Ordering::Relaxed);
                std::sync::atomic::fence(Ordering::Acquire);
                if seq & BUSY != 0 || hub.probe.seq.load(Ordering::Relaxed) != seq {
                    // At a boundary: looked at again next time (a poll
                    // killing task after task is still the same poll).
                    continue;
                }
                if seq % 2 == 0 {
                    // Between polls: nothing is stuck.
                    w.last_seq = seq;
                    w.since = now;
                    w.reported = false;
                    w.last_outer = 0;
                    continue;
                }
                if seq != w.last_seq {
                    w.last_seq = seq;
                    w.since = now;
                    w.reported = false;
                }
                if outer != w.last_outer {
                    w.last_outer = outer;
                    w.outer_since = now;
                    w.outer_reported = false;
                }
                // One stretch stuck (a poll, or a destructor it runs), or
                // a whole poll made of short stretches: each reported once.
                // A whole poll is named by the task polled, not by a
                // destructor it happens to run; a report that names the
                // task polled while its own code runs covers both.
                let polled = if seq == outer { running } else { poller };
                let stuck = if !w.reported && now.duration_since(w.since) >= limit {
                    Some((now.duration_since(w.since), running))
                } else if !w.outer_reported && now.duration_since(w.outer_since) >= limit {
                    Some((now.duration_since(w.outer_since), polled))
                } else {
                    None
                };
                if let Some((elapsed, named)) = stuck {
                    if named == running {
                        w.reported = true;
                    }
                    if named == polled {
                        w.outer_reported = true;
                    }
                    let task_name = if named == ROOT_ID {
                        Some(Arc::from("main"))
                    } else {
                        hub.task_name(named)
                    };
                    reports.push((
                        hub.clone(),
                        StallReport {
                            hub: hub.name.clone(),
                            task_id: named,
                            task_name,
                            elapsed,
                            limit,
                        },
                    ));
                }
            }
        }
        for (hub, r) in reports {
            // Not `eprintln!`, which panics when stderr is closed (a pipe
            // whose reader left): the reports after it, and the callback,
            // would be lost with the monitor.
            let _ = writeln!(std::io::stderr(), "greenrt: {r}");
            if let Some(cb) = &hub.config.on_stall {
                m.in_callback.store(true, Ordering::SeqCst);
                if m.stop.load(Ordering::SeqCst) {
                    m.in_callback.store(false, Ordering::SeqCst);
                    return;
                }
                // A panicking callback must not take the monitor down, nor
                // a payload whose destructor panics in turn.
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| cb(&r))) {
                    crate::task::raw::drop_payload(p);
                }
                m.in_callback.store(false, Ordering::SeqCst);
            }
        }
    }
}
