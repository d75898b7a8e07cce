//! greenrt with sync-prims: green tasks and plain threads waiting on the
//! same `Event` and `Lock`, across hubs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use greenrt::{Runtime, spawn, yield_now};
use sync_prims::{Event, Lock};

#[test]
fn a_plain_thread_wakes_a_green_task_queued_on_an_event() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let ev = Arc::new(Event::new());
    let queued = Arc::new(Event::new());
    let (e, q) = (ev.clone(), queued.clone());
    let g = rt.spawn(async move {
        let mut wait = std::pin::pin!(e.wait_async());
        // The first poll queues the task on `ev` (still clear): only a
        // wake-up from the other thread can end the wait.
        let first = tests::pending_once(wait.as_mut()).await;
        assert!(first);
        q.set();
        wait.await;
        "woken"
    });
    assert!(queued.wait_timeout(tests::BOUND), "the task never queued");
    ev.set();
    assert_eq!(tests::finished(g), Ok("woken"));
}

#[test]
fn threads_and_tasks_wait_on_one_event() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let ev = Arc::new(Event::new());
    // Each task queues itself on `ev` (still clear) with one poll, then
    // counts itself in: only `set` can end the waits.
    let queued = Arc::new((AtomicU64::new(0), Event::new()));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (e, q) = (ev.clone(), queued.clone());
            rt.spawn(async move {
                let mut wait = std::pin::pin!(e.wait_async());
                let first = tests::pending_once(wait.as_mut()).await;
                assert!(first);
                if q.0.fetch_add(1, Ordering::SeqCst) == 49 {
                    q.1.set();
                }
                wait.await;
                i
            })
        })
        .collect();
    assert!(
        queued.1.wait_timeout(Duration::from_secs(60)),
        "tasks queued"
    );
    // Then the threads, each asleep in its wait before the event is set.
    let (tx, rx) = mpsc::channel();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (e, tx) = (ev.clone(), tx.clone());
            std::thread::spawn(move || {
                tx.send(tests::thread_id()).unwrap();
                e.wait();
            })
        })
        .collect();
    for tid in rx.iter().take(4) {
        assert!(
            tests::wait_until_asleep(tid, Duration::from_secs(60)),
            "thread {tid} waits"
        );
    }
    ev.set();
    for t in threads {
        t.join().unwrap();
    }
    let sum: i32 = tasks.into_iter().map(|g| tests::finished(g).unwrap()).sum();
    assert_eq!(sum, (0..50).sum());
}

#[test]
fn a_lock_held_across_awaits_by_tasks_on_two_hubs() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let lock = Arc::new(Lock::new(0u64));
    let in_section = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (l, inside) = (lock.clone(), in_section.clone());
            rt.spawn(async move {
                for _ in 0..50 {
                    let mut g = l.acquire_async().await;
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "mutual exclusion");
                    yield_now().await; // hold it across a suspension
                    *g += 1;
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in tasks {
        tests::finished(t).unwrap();
    }
    assert_eq!(*lock.acquire(), 400);
}

#[test]
fn join_blocking_from_a_thread_and_await_from_a_task_see_the_same_end() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let go = Arc::new(Event::new());
    let g1 = go.clone();
    let target = Arc::new(rt.spawn(async move {
        g1.wait_async().await;
    }));
    let t = target.clone();
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        tx.send(tests::thread_id()).unwrap();
        t.join_blocking();
        t.ready()
    });
    // The thread is queued on the target's end before the target may end.
    let tid = rx.recv_timeout(tests::BOUND).unwrap();
    assert!(tests::wait_until_asleep(tid, Duration::from_secs(60)));
    let t = target.clone();
    let watcher = rt.block_on(async move {
        let w = spawn(async move {
            // Awaiting through a shared reference: greenlets are joinable
            // with joinall from any hub.
            greenrt::joinall(std::slice::from_ref(&*t), None).await
        });
        yield_now().await;
        go.set();
        w.await.unwrap()
    });
    assert_eq!(watcher, [0]);
    assert!(thread.join().unwrap());
    assert!(target.join_timeout_blocking(Duration::from_secs(0)));
}
