//! [`spawn_blocking`]: a pool of threads for blocking work (gevent's
//! threadpool), so that a blocking call does not stall a hub.
//!
//! The pool starts empty, grows by one thread whenever a job arrives and no
//! thread is idle (up to [`MAX_BLOCKING_THREADS`]; beyond that jobs queue),
//! and a thread idle for [`KEEP_ALIVE`] exits.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use sync_prims::Event;

use crate::Greenlet;

/// The most threads the pool runs at once.
pub const MAX_BLOCKING_THREADS: usize = 64;

/// How long an idle pool thread waits for work before it exits.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    tx: Sender<Job>,
    rx: Receiver<Job>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    threads: usize,
    /// Idle threads not yet promised a job.
    idle: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::unbounded();
        Pool {
            tx,
            rx,
            state: Mutex::new(State::default()),
        }
    })
}

impl Pool {
    fn submit(&'static self, job: Job) {
        let spawn = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if s.idle > 0 {
                s.idle -= 1;
                false
            } else if s.threads < MAX_BLOCKING_THREADS {
                s.threads += 1;
                true
            } else {
                false
            }
        };
        // The channel is never closed (the pool is static), so a send
        // cannot fail.
        let _ = self.tx.send(job);
        if spawn {
            let started = std::thread::Builder::new()
                .name("greenrt-blocking".into())
                .spawn(move || {
                    // Not on the CPU of the hub that made it.
                    crate::affinity::unpin_current();
                    self.work()
                });
            if started.is_err() {
                // No thread could be made: the job waits for an existing
                // one, or, when there is none, runs here (blocking the
                // caller beats a job that never runs).
                let none_left = {
                    let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    s.threads -= 1;
                    s.threads == 0
                };
                if none_left {
                    if let Ok(job) = self.rx.try_recv() {
                        job();
                    }
                }
            }
        }
    }

    fn work(&'static self) {
        loop {
            match self.rx.recv_timeout(KEEP_ALIVE) {
                Ok(job) => {
                    job();
                    self.state.lock().unwrap_or_else(|e| e.into_inner()).idle += 1;
                }
                Err(RecvTimeoutError::Timeout) => {
                    let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    if s.idle > 0 {
                        s.idle -= 1;
                        s.threads -= 1;
                        return;
                    }
                    // A job was promised to an idle thread: stay for it.
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

/// Runs blocking `f` on the pool and returns a [`Greenlet`] for its result,
/// spawned on the current hub: await it, `kill` it (the job still runs to
/// its end, its result is dropped), or join it from a thread. A panic in
/// `f` is reported on the greenlet.
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
/// then not run.
pub fn spawn_blocking<F, T>(f: F) -> Greenlet<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let done = Arc::new(Event::new());
    let slot = Arc::new(Mutex::new(None));
    // The waiting task first: off a hub this panics before the job is
    // submitted, so `f` never runs.
    let greenlet = {
        let (done, slot) = (done.clone(), slot.clone());
        crate::spawn(async move {
            done.wait_async().await;
            let r = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            match r {
                Some(Ok(v)) => v,
                Some(Err(p)) => resume_unwind(p),
                None => unreachable!("the job stores its result before it sets the event"),
            }
        })
    };
    pool().submit(Box::new(move || {
        let r = catch_unwind(AssertUnwindSafe(f));
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        done.set();
    }));
    greenlet
}
