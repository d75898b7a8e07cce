//! Property tests: the primitives against simple models.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use proptest::prelude::*;
use sync_prims::{Event, Lock};

/// Loop sizes, smaller under miri (an interpreter, thousands of times slower).
const MAX_K: usize = if cfg!(miri) { 12 } else { 300 };
const SCALE: usize = if cfg!(miri) { 50 } else { 1 };

#[derive(Debug, Clone)]
enum Op {
    Set,
    Clear,
    /// `wait_timeout(0)` by the test thread: must return the model's flag.
    WaitNow,
    /// Start a new async waiter.
    NewWaiter,
    /// Poll every live waiter: each is ready iff the event was set when it
    /// began (its first poll) or a set happened since.
    PollAll,
    /// Drop the oldest live waiter.
    DropOldest,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Set),
        Just(Op::Clear),
        Just(Op::WaitNow),
        Just(Op::NewWaiter),
        Just(Op::PollAll),
        Just(Op::DropOldest),
    ]
}

proptest! {
    /// Random interleavings of set/clear/wait_timeout and async waiters
    /// against a model of Python's Event.
    #[test]
    fn event_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        let ev = Event::new();
        let mut flag = false;
        // A future is lazy: its wait begins at its first poll.
        struct W<'a> {
            fut: Pin<Box<sync_prims::futures::EventWait<'a>>>,
            started: bool,
            released: bool,
            done: bool,
        }
        let mut waiters: Vec<W<'_>> = Vec::new();
        let mut cx = Context::from_waker(Waker::noop());
        for op in ops {
            match op {
                Op::Set => {
                    ev.set();
                    flag = true;
                    for w in waiters.iter_mut().filter(|w| w.started) {
                        w.released = true;
                    }
                }
                Op::Clear => {
                    ev.clear();
                    flag = false;
                }
                Op::WaitNow => prop_assert_eq!(ev.wait_timeout(Duration::ZERO), flag),
                Op::NewWaiter => waiters.push(W {
                    fut: Box::pin(ev.wait_async()),
                    started: false,
                    released: false,
                    done: false,
                }),
                Op::PollAll => {
                    for w in waiters.iter_mut().filter(|w| !w.done) {
                        if !w.started {
                            w.started = true;
                            w.released = flag;
                        }
                        let ready = w.fut.as_mut().poll(&mut cx).is_ready();
                        prop_assert_eq!(ready, w.released, "a waiter completes iff a set reached it");
                        w.done = ready;
                    }
                }
                Op::DropOldest => {
                    if !waiters.is_empty() {
                        waiters.remove(0);
                    }
                }
            }
            prop_assert_eq!(ev.is_set(), flag);
        }
    }

    /// A counter incremented under one lock by N threads (blocking) and M
    /// tasks (async, on their own executor thread) ends exactly at the sum.
    #[test]
    fn lock_counter_threads_and_tasks(n in 1usize..4, m in 1usize..4, k in 1usize..MAX_K) {
        let lock = Arc::new(Lock::new(0usize));
        let mut handles = Vec::new();
        for _ in 0..n {
            let lock = lock.clone();
            handles.push(std::thread::spawn(move || {
                for _ in 0..k {
                    *lock.acquire() += 1;
                }
            }));
        }
        for _ in 0..m {
            let lock = lock.clone();
            handles.push(std::thread::spawn(move || {
                futures_executor::block_on(async {
                    for _ in 0..k {
                        let mut g = lock.acquire_async().await;
                        *g += 1;
                        g.release();
                    }
                })
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
        prop_assert_eq!(*lock.acquire(), (n + m) * k);
        prop_assert!(!lock.locked());
    }
}

/// Many tasks interleaved on ONE thread (a local pool) and threads, all on
/// one lock: the tasks hold the guard across an await point.
#[test]
fn lock_held_across_await_on_a_local_pool() {
    use futures_util::task::LocalSpawnExt;
    let lock = Arc::new(Lock::new(0usize));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let lock = lock.clone();
            std::thread::spawn(move || {
                for _ in 0..2000 / SCALE {
                    *lock.acquire() += 1;
                }
            })
        })
        .collect();
    let mut pool = futures_executor::LocalPool::new();
    for _ in 0..8 {
        let lock = lock.clone();
        pool.spawner()
            .spawn_local(async move {
                for _ in 0..250 / SCALE {
                    let mut g = lock.acquire_async().await;
                    YieldOnce(false).await; // other tasks run while we hold it
                    *g += 1;
                }
            })
            .unwrap();
    }
    pool.run();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*lock.acquire(), (2 * 2000 + 8 * 250) / SCALE);
}

/// A future that is pending once (waking itself), then ready.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}
