//! sync-prims used the way the upper layers use it: a guard that moves
//! between threads, and an event set by a plain thread that wakes a task.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll};

use sync_prims::{Event, Lock};
use tests::CountingWaker;

#[test]
fn guard_taken_on_one_thread_is_released_on_another() {
    let lock = Lock::new(0);
    let (tx, rx) = mpsc::channel();
    let mut guard = lock.acquire();
    *guard += 1;
    std::thread::scope(|s| {
        // Python's Lock is not owner-bound: the held lock moves to a thread
        // that releases it.
        s.spawn(move || drop(rx.recv().unwrap()));
        tx.send(guard).unwrap_or_else(|_| panic!("receiver alive"));
    });
    assert!(!lock.locked(), "released by the other thread");
    assert_eq!(*lock.acquire(), 1);
}

#[test]
fn event_set_by_a_thread_wakes_a_polled_task() {
    let ev = Arc::new(Event::new());
    let (count, waker) = CountingWaker::new();
    let mut wait = Box::pin(ev.wait_async());
    let mut cx = Context::from_waker(&waker);
    assert!(wait.as_mut().poll(&mut cx).is_pending());
    let setter = {
        let ev = ev.clone();
        std::thread::spawn(move || ev.set())
    };
    setter.join().unwrap();
    assert_eq!(count.wakes(), 1);
    assert_eq!(Pin::new(&mut wait).poll(&mut cx), Poll::Ready(()));
}

#[test]
fn block_on_a_lock_held_by_a_thread() {
    let lock = Arc::new(Lock::new(Vec::new()));
    let gate = Arc::new(Event::new());
    let g = lock.acquire();
    let task = {
        let (lock, gate) = (lock.clone(), gate.clone());
        std::thread::spawn(move || {
            futures_executor::block_on(async {
                let mut acquire = std::pin::pin!(lock.acquire_async());
                // The first poll queues the task behind the thread's guard;
                // only then may the thread let go.
                let first = std::future::poll_fn(|cx| {
                    std::task::Poll::Ready(acquire.as_mut().poll(cx).is_pending())
                })
                .await;
                assert!(first, "the thread holds the lock");
                gate.set();
                acquire.await.push("task");
            })
        })
    };
    assert!(
        gate.wait_timeout(tests::BOUND),
        "the task never took its turn"
    );
    drop(g);
    task.join().unwrap();
    assert_eq!(*lock.acquire(), ["task"]);
}
