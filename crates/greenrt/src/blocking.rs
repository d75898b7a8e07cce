//! [`spawn_blocking`]: a pool of threads for blocking work (gevent's
//! threadpool), so that a blocking call does not stall a hub.
//!
//! The pool starts empty, grows by one thread whenever a job arrives and no
//! thread is idle (up to [`MAX_BLOCKING_THREADS`]; beyond that jobs queue),
//! and a thread idle for [`KEEP_ALIVE`] exits. A job goes to the thread
//! that has waited longest, so a steady trickle of jobs (one every
//! `KEEP_ALIVE / threads`) keeps the threads of an earlier burst, each of
//! them getting a job before its keep-alive runs out, until it stops.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use sync_prims::Event;

use crate::hub::BlockingJob;
use crate::task::Watch;
use crate::{Builder, Greenlet};

/// The most threads the pool runs at once.
pub const MAX_BLOCKING_THREADS: usize = 64;

/// How long an idle pool thread waits for work before it exits.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    tx: Sender<Job>,
    rx: Receiver<Job>,
    state: Mutex<State>,
    max_threads: usize,
    keep_alive: Duration,
}

/// What the pool knows of itself, changed only with its lock held.
#[derive(Default, Debug, PartialEq, Eq)]
struct State {
    /// Threads running (working, or waiting for work).
    threads: usize,
    /// Threads waiting for work.
    idle: usize,
    /// Jobs sent and not yet received by a thread.
    queued: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool::new(MAX_BLOCKING_THREADS, KEEP_ALIVE))
}

impl Pool {
    fn new(max_threads: usize, keep_alive: Duration) -> Pool {
        let (tx, rx) = crossbeam_channel::unbounded();
        Pool {
            tx,
            rx,
            state: Mutex::new(State::default()),
            max_threads,
            keep_alive,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn submit(&'static self, job: Job) {
        let spawn = {
            let mut s = self.state();
            s.queued += 1;
            // More jobs waiting than threads waiting for them: one more
            // thread, if the pool may grow.
            let spawn = s.queued > s.idle && s.threads < self.max_threads;
            if spawn {
                s.threads += 1;
            }
            spawn
        };
        // The channel is never closed (its receiver lives in the pool), so
        // a send cannot fail.
        let _ = self.tx.send(job);
        if spawn {
            let placement = crate::affinity::for_helper();
            let started = std::thread::Builder::new()
                .name("greenrt-blocking".into())
                .spawn(move || {
                    // Neither on the CPU nor under the policy of the hub
                    // that made it.
                    crate::affinity::apply(placement);
                    self.work()
                });
            if started.is_err() {
                // No thread could be made: the job waits for an existing
                // one, or, when there is none, runs here (blocking the
                // caller beats a job that never runs).
                let none_left = {
                    let mut s = self.state();
                    s.threads -= 1;
                    s.threads == 0
                };
                if none_left {
                    if let Ok(job) = self.rx.try_recv() {
                        self.state().queued -= 1;
                        job();
                    }
                }
            }
        }
    }

    fn work(&'static self) {
        loop {
            self.state().idle += 1;
            let got = self.rx.recv_timeout(self.keep_alive);
            let mut s = self.state();
            s.idle -= 1;
            match got {
                Ok(job) => {
                    s.queued -= 1;
                    drop(s);
                    // `f`'s own panic is caught inside the job; what may
                    // still panic is a drop (of `f`'s captures, or of a
                    // result nobody waits for any more) or a waker that
                    // `done` wakes. The thread goes on, and keeps its
                    // place in the count: one that ended here would count
                    // for good, and the pool could run out of threads.
                    if let Err(p) = catch_unwind(AssertUnwindSafe(job)) {
                        crate::task::raw::drop_payload(p);
                    }
                }
                // Idle for the whole keep-alive, and no job waiting for a
                // thread: this one goes. (A job sent meanwhile is counted
                // in `queued`, and this thread stays to take it.)
                Err(RecvTimeoutError::Timeout) if s.queued == 0 => {
                    s.threads -= 1;
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    s.threads -= 1;
                    return;
                }
            }
        }
    }
}

/// Runs blocking `f` on the pool and returns a [`Greenlet`] for its result,
/// spawned on the current hub: await it, `kill` it, or join it from a
/// thread. A job whose greenlet is killed before a thread takes it never
/// runs; one already running runs to its end, and its result is dropped.
/// A panic in `f` is reported on the greenlet.
///
/// ```
/// greenrt::run(async {
///     let size = greenrt::spawn_blocking(|| std::fs::metadata("Cargo.toml").map(|m| m.len()));
///     assert!(size.await.unwrap().unwrap() > 0);
/// });
/// ```
///
/// # Panics
///
/// When not called on a hub (inside [`run`](crate::run) or a
/// [`Runtime`](crate::Runtime)), like [`spawn`](crate::spawn); `f` is
/// then not run. [`Builder::spawn_blocking`] returns an error instead.
pub fn spawn_blocking<F, T>(f: F) -> Greenlet<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match Builder::new().spawn_blocking(f) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

/// Runs `f` on the pool with nobody waiting for it (a close that may
/// block), from any thread.
pub(crate) fn detach(f: impl FnOnce() + Send + 'static) {
    pool().submit(Box::new(f));
}

/// [`spawn_blocking`] with the options of `builder` (the name of the task
/// that waits for the job); an error off a hub, and `f` is then not run.
pub(crate) fn spawn_with<F, T>(builder: Builder, f: F) -> io::Result<Greenlet<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let done = Arc::new(Event::new());
    let slot = Arc::new(Mutex::new(None));
    // Off a hub there is nothing to count, and the spawn below fails.
    let claim = Claim::new(crate::hub::with_current(|h| h.shared().blocking_job()));
    // The waiting task first: off a hub this fails before the job is
    // submitted, so `f` never runs.
    let greenlet = {
        let (done, slot) = (done.clone(), slot.clone());
        let unclaimed = Unclaimed(claim.clone());
        builder.spawn(async move {
            let _unclaimed = unclaimed;
            done.wait_async().await;
            let r = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            match r {
                Some(Ok(v)) => v,
                Some(Err(p)) => resume_unwind(p),
                None => unreachable!("the job stores its result before it sets the event"),
            }
        })?
    };
    let waiting = Waiting {
        slot: Arc::downgrade(&slot),
        task: Some(greenlet.watch()),
    };
    pool().submit(job(f, waiting, done, claim));
    Ok(greenlet)
}

/// A job's claim to run, shared by the job and the task that waits for
/// it; whichever takes it first decides. A thread that starts the job
/// takes it, with the job's count on its hub (a hub with a manual clock
/// does not move it while the job runs, whose time is real), and ends the
/// count once `done` is set. The task's future, dropped before that (the
/// task was killed while the job waited for a thread), takes it too: the
/// job then never runs, and its hub stops counting it at once, not when
/// a thread of a busy pool gets to the job.
struct Claim(Mutex<ClaimState>);

enum ClaimState {
    /// Nobody took the claim: the job has not started.
    Open(Option<BlockingJob>),
    Taken,
}

impl Claim {
    fn new(counted: Option<BlockingJob>) -> Arc<Claim> {
        Arc::new(Claim(Mutex::new(ClaimState::Open(counted))))
    }

    /// The job's count, if this call is the first to take the claim.
    fn take(&self) -> Option<Option<BlockingJob>> {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *state, ClaimState::Taken) {
            ClaimState::Open(counted) => Some(counted),
            ClaimState::Taken => None,
        }
    }
}

/// Held by the waiting task's future: takes the claim when it is dropped,
/// so that a job not yet started never starts.
struct Unclaimed(Arc<Claim>);

impl Drop for Unclaimed {
    fn drop(&mut self) {
        // The count (if this took it) ends here: the job will not run.
        drop(self.0.take());
    }
}

/// The task that waits for a job, as the job sees it.
struct Waiting<T> {
    /// Where the result goes; gone with the task's future.
    slot: Weak<ResultSlot<T>>,
    /// The task itself: a kill from another thread only marks it, and its
    /// hub drops its future (and the slot with it) at its next turn.
    task: Option<Watch<T>>,
}

impl<T> Waiting<T> {
    /// The slot, unless the task was killed (or is gone): a job taken by a
    /// thread then is not run.
    fn slot(&self) -> Option<Arc<ResultSlot<T>>> {
        if self.task.as_ref().is_some_and(Watch::killed_or_ended) {
            return None;
        }
        self.slot.upgrade()
    }
}

/// The result of a job, for the task that waits for it.
type ResultSlot<T> = Mutex<Option<std::thread::Result<T>>>;

/// The pool's job for `f`: runs it, stores its result, and sets `done`;
/// or, when the waiting task was killed while the job waited for a thread
/// (from any thread: its slot may still be there, or its future dropped,
/// which took the claim), does nothing. The job's count on its hub, taken
/// with the claim, ends after `done` is set (so that a hub with a manual
/// clock is never seen idle between the two), or at once when the job
/// does not run.
fn job<F, T>(f: F, waiting: Waiting<T>, done: Arc<Event>, claim: Arc<Claim>) -> Job
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Box::new(move || {
        let Some(counted) = claim.take() else {
            return;
        };
        let Some(slot) = waiting.slot() else {
            return;
        };
        let r = catch_unwind(AssertUnwindSafe(f));
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        done.set();
        drop(counted);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Instant;

    /// Waits (bounded) until the pool's state satisfies `ok`.
    fn until(pool: &Pool, what: &str, ok: impl Fn(&State) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ok(&pool.state()) {
            assert!(Instant::now() < deadline, "{what}: {:?}", *pool.state());
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_job_whose_task_is_gone_does_not_run() {
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r2 = ran.clone();
        let slot: Arc<ResultSlot<()>> = Arc::new(Mutex::new(None));
        let done = Arc::new(Event::new());
        fn waiting<T>(slot: &Arc<ResultSlot<T>>) -> Waiting<T> {
            Waiting {
                slot: Arc::downgrade(slot),
                task: None,
            }
        }
        let j = job(
            move || r2.store(true, std::sync::atomic::Ordering::SeqCst),
            waiting(&slot),
            done.clone(),
            Claim::new(None),
        );
        drop(slot);
        j();
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
        assert!(!done.is_set());
        // With its task alive, the same job runs and reports.
        let slot: Arc<ResultSlot<u8>> = Arc::new(Mutex::new(None));
        job(|| 7, waiting(&slot), done.clone(), Claim::new(None))();
        assert!(done.is_set());
        assert!(matches!(*slot.lock().unwrap(), Some(Ok(7))));
    }

    #[cfg_attr(miri, ignore = "leaks its pool on purpose")]
    #[test]
    fn a_job_that_panics_past_its_catch_leaves_its_thread_in_the_pool() {
        let pool: &'static Pool = Box::leak(Box::new(Pool::new(1, Duration::from_secs(3600))));
        /// Panics when dropped: as a capture of `f`, or a result that
        /// nobody waits for any more, dropped after `f`'s own catch.
        struct PanicsOnDrop;
        impl Drop for PanicsOnDrop {
            fn drop(&mut self) {
                panic!("a drop after the job's catch");
            }
        }
        let bomb = PanicsOnDrop;
        pool.submit(Box::new(move || drop(bomb)));
        // The one thread the pool may have still takes the next job.
        let (tx, rx) = mpsc::channel();
        pool.submit(Box::new(move || tx.send("ran").unwrap()));
        assert_eq!(rx.recv_timeout(Duration::from_secs(60)), Ok("ran"));
        until(pool, "the thread waits for work", |s| {
            *s == State {
                threads: 1,
                idle: 1,
                queued: 0,
            }
        });
    }

    // The pool is leaked (its threads need it `'static`), which miri
    // reports; the pool has no `unsafe` code for miri to check.
    #[cfg_attr(miri, ignore = "leaks its pool on purpose")]
    #[test]
    fn jobs_beyond_the_threads_queue_and_the_pool_stays_usable_after_it_shrinks() {
        let pool: &'static Pool = Box::leak(Box::new(Pool::new(3, Duration::from_millis(50))));
        let gate = Arc::new(Event::new());
        let (started, starts) = mpsc::channel();
        let (done, dones) = mpsc::channel();
        for i in 0..8 {
            let (gate, started, done) = (gate.clone(), started.clone(), done.clone());
            pool.submit(Box::new(move || {
                started.send(i).unwrap();
                gate.wait();
                done.send(i).unwrap();
            }));
        }
        // Three run, five wait for a thread.
        for _ in 0..3 {
            starts.recv_timeout(Duration::from_secs(30)).unwrap();
        }
        assert_eq!(
            *pool.state(),
            State {
                threads: 3,
                idle: 0,
                queued: 5
            }
        );
        gate.set();
        let mut finished: Vec<i32> = (0..8)
            .map(|_| dones.recv_timeout(Duration::from_secs(30)).unwrap())
            .collect();
        finished.sort_unstable();
        assert_eq!(finished, (0..8).collect::<Vec<_>>());
        // Idle past the keep-alive, every thread goes: nothing is counted
        // as idle that is not there.
        until(pool, "the threads leave", |s| *s == State::default());
        // A job after that still runs, on a new thread.
        let (tx, rx) = mpsc::channel();
        pool.submit(Box::new(move || tx.send("ran").unwrap()));
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok("ran"));
    }
}
