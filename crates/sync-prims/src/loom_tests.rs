//! loom models: every interleaving of small scenarios, with at most
//! `LOOM_MAX_PREEMPTIONS` preemptions (set by `cargo xtask ci`).
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --release -p sync-prims --lib loom`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use crate::{Event, Lock};

/// A counter that the lock under test guards, in a loom cell: loom fails
/// the model when two accesses are not ordered by a happens-before edge,
/// so a lock that let two owners in at once, or handed over without
/// `Release`/`Acquire`, fails it. (The lock's own `T` sits in a std cell,
/// which loom does not track.)
struct Guarded {
    lock: Lock,
    count: loom::cell::UnsafeCell<u64>,
}

// SAFETY: `count` is touched only by `bump` and `get`, under `lock`:
// exactly the claim the models check.
unsafe impl Sync for Guarded {}

impl Guarded {
    fn new() -> Arc<Guarded> {
        Arc::new(Guarded {
            lock: Lock::new(()),
            count: loom::cell::UnsafeCell::new(0),
        })
    }

    /// Adds one, holding the lock.
    fn bump(&self) {
        let _g = self.lock.acquire();
        // SAFETY: under the lock (see the `Sync` impl).
        self.count.with_mut(|c| unsafe { *c += 1 });
    }

    /// Adds one from a task, holding the lock.
    async fn bump_async(&self) {
        let _g = self.lock.acquire_async().await;
        // SAFETY: under the lock (see the `Sync` impl).
        self.count.with_mut(|c| unsafe { *c += 1 });
    }

    fn get(&self) -> u64 {
        let _g = self.lock.acquire();
        // SAFETY: under the lock (see the `Sync` impl).
        self.count.with(|c| unsafe { *c })
    }
}

#[test]
fn loom_lock_hand_off_between_two_threads() {
    loom::model(|| {
        let g = Guarded::new();
        let other = {
            let g = g.clone();
            thread::spawn(move || g.bump())
        };
        g.bump();
        other.join().unwrap();
        assert_eq!(g.get(), 2);
        assert!(!g.lock.locked());
    });
}

#[test]
fn loom_lock_three_threads_two_rounds() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(|| {
        let g = Guarded::new();
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let g = g.clone();
                thread::spawn(move || {
                    for _ in 0..2 {
                        g.bump();
                    }
                })
            })
            .collect();
        g.bump();
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(g.get(), 5);
    });
}

/// A task bumps the counter once while this thread bumps it `bumps`
/// times; every bump lands, and the lock ends free.
fn task_beside_bumps(bumps: u64) {
    let g = Guarded::new();
    let task = {
        let g = g.clone();
        thread::spawn(move || loom::future::block_on(g.bump_async()))
    };
    for _ in 0..bumps {
        g.bump();
    }
    task.join().unwrap();
    assert_eq!(g.get(), bumps + 1);
    assert!(!g.lock.locked());
}

#[test]
fn loom_lock_async_waiter_and_thread() {
    loom::model(|| task_beside_bumps(1));
}

/// The owner releases and at once takes the lock again, ahead of a task
/// it woke: the task, having lost a race, is handed the lock at the next
/// release (`HANDOFF`) and takes it without competing.
#[test]
fn loom_lock_hand_off_to_a_task() {
    let before = crate::lock::TASK_HANDOFFS.with(std::cell::Cell::get);
    loom::model(|| task_beside_bumps(2));
    let after = crate::lock::TASK_HANDOFFS.with(std::cell::Cell::get);
    assert!(after > before, "no run handed the lock to the task");
}

/// Two tasks of one thread and a plain thread bump the counter: a task
/// that releases while the other waits hands it the lock (it could not
/// come for it before the releaser suspends).
#[test]
fn loom_lock_two_tasks_of_one_thread_beside_a_thread() {
    let before = crate::lock::SAME_THREAD_HANDOFFS.with(std::cell::Cell::get);
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(|| {
        let g = Guarded::new();
        let tasks = {
            let g = g.clone();
            thread::spawn(move || {
                loom::future::block_on(futures_util::future::join(g.bump_async(), g.bump_async()))
            })
        };
        g.bump();
        tasks.join().unwrap();
        assert_eq!(g.get(), 3);
        assert!(!g.lock.locked());
    });
    let after = crate::lock::SAME_THREAD_HANDOFFS.with(std::cell::Cell::get);
    assert!(
        after > before,
        "no run handed the lock to a task of its thread"
    );
}

#[test]
fn loom_lock_dropped_async_waiter_passes_wake_up_on() {
    loom::model(|| {
        let lock = Arc::new(Lock::new(()));
        let held = lock.acquire();
        // A task polls once (queues or takes the lock), then is dropped.
        let quitter = {
            let lock = lock.clone();
            thread::spawn(move || {
                let mut fut = lock.acquire_async();
                let mut cx = Context::from_waker(Waker::noop());
                if let Poll::Ready(g) = Pin::new(&mut fut).poll(&mut cx) {
                    drop(g);
                }
                drop(fut);
            })
        };
        // A thread must get the lock whatever the quitter did.
        let stayer = {
            let lock = lock.clone();
            thread::spawn(move || drop(lock.acquire()))
        };
        drop(held);
        quitter.join().unwrap();
        stayer.join().unwrap();
        assert!(!lock.locked());
        assert!(lock.try_acquire().is_some());
    });
}

#[test]
fn loom_event_set_before_wait() {
    loom::model(|| {
        let ev = Arc::new(Event::new());
        ev.set();
        let t = {
            let ev = ev.clone();
            thread::spawn(move || ev.wait())
        };
        t.join().unwrap();
        assert!(ev.is_set());
    });
}

#[test]
fn loom_event_set_after_wait_wakes_thread_and_task() {
    loom::model(|| {
        let ev = Arc::new(Event::new());
        let data = Arc::new(AtomicUsize::new(0));
        let t = {
            let (ev, data) = (ev.clone(), data.clone());
            thread::spawn(move || {
                ev.wait();
                assert_eq!(
                    data.load(Ordering::Relaxed),
                    1,
                    "set publishes earlier writes"
                );
            })
        };
        let task = {
            let ev = ev.clone();
            thread::spawn(move || loom::future::block_on(ev.wait_async()))
        };
        data.store(1, Ordering::Relaxed);
        ev.set();
        t.join().unwrap();
        task.join().unwrap();
    });
}

#[test]
fn loom_event_set_clear_race_still_releases_waiter() {
    loom::model(|| {
        let ev = Arc::new(Event::new());
        let t = {
            let ev = ev.clone();
            thread::spawn(move || ev.wait())
        };
        let setter = {
            let ev = ev.clone();
            thread::spawn(move || {
                ev.set();
                ev.clear();
            })
        };
        setter.join().unwrap();
        // Whether the waiter queued before the set or saw the flag, it returns;
        // if it started after the clear it would block, so set again to be sure
        // every interleaving ends (a second set must be harmless).
        ev.set();
        t.join().unwrap();
    });
}

#[test]
fn loom_event_a_waiter_queued_before_set_and_clear_is_released() {
    loom::model(|| {
        let ev = Arc::new(Event::new());
        let mut queued = ev.wait_async();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut queued).poll(&mut cx).is_pending());
        let setter = {
            let ev = ev.clone();
            thread::spawn(move || {
                ev.set();
                ev.clear();
            })
        };
        // A thread waiting meanwhile, queued or not by the time of the set.
        let other = {
            let ev = ev.clone();
            thread::spawn(move || {
                let mut w = ev.wait_async();
                let mut cx = Context::from_waker(Waker::noop());
                let _ = Pin::new(&mut w).poll(&mut cx);
            })
        };
        setter.join().unwrap();
        other.join().unwrap();
        assert!(
            Pin::new(&mut queued).poll(&mut cx).is_ready(),
            "the set came after this waiter queued"
        );
        assert!(!ev.is_set());
    });
}

#[test]
fn loom_event_a_wait_begun_after_set_and_clear_is_not_released_by_that_set() {
    loom::model(|| {
        let ev = Arc::new(Event::new());
        // A waiter, so that the set has someone to wake (or, if it comes
        // late, one that the last set below releases).
        let first = {
            let ev = ev.clone();
            thread::spawn(move || ev.wait())
        };
        let setter = {
            let ev = ev.clone();
            thread::spawn(move || ev.set())
        };
        // Sees the set, clears, and only then starts to wait: the flag is
        // never set during this wait, so nothing may release it.
        while !ev.is_set() {
            thread::yield_now();
        }
        ev.clear();
        let mut late = ev.wait_async();
        let mut cx = Context::from_waker(Waker::noop());
        let first_poll = Pin::new(&mut late).poll(&mut cx);
        setter.join().unwrap();
        assert!(!ev.is_set(), "nothing sets the flag after the clear");
        assert!(first_poll.is_pending());
        assert!(
            Pin::new(&mut late).poll(&mut cx).is_pending(),
            "released by a set that came before it began"
        );
        drop(late);
        ev.set();
        first.join().unwrap();
    });
}

#[test]
fn loom_event_dropped_async_waiter_leaves_consistent_state() {
    loom::model(|| {
        let ev = Arc::new(Event::new());
        let t = {
            let ev = ev.clone();
            thread::spawn(move || {
                let mut fut = ev.wait_async();
                let mut cx = Context::from_waker(Waker::noop());
                let _ = Pin::new(&mut fut).poll(&mut cx);
            })
        };
        ev.set();
        t.join().unwrap();
        assert!(ev.waiters.lock().is_empty());
        assert!(ev.is_set());
        ev.clear();
        assert!(!ev.is_set());
    });
}
