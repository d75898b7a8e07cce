//! Several hubs: cross-hub spawn and wake, plain threads joining green
//! tasks, kills from other threads, and the cross-thread wake path under
//! random schedules.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use greenrt::{GreenletError, Handle, Runtime, spawn, yield_now};
use proptest::prelude::*;
use sync_prims::Event;

mod common;
use common::{finished, joined};

#[test]
fn rt_spawn_spreads_tasks_over_the_hubs() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let barrier = Arc::new(Meeting::default());
    // Two tasks that can only finish if they run at the same time, on two
    // different hubs (each blocks its hub thread on the meeting).
    let gs: Vec<_> = (0..2)
        .map(|_| {
            let b = barrier.clone();
            rt.spawn(async move {
                assert!(b.meet(), "the other task never ran alongside");
                greenrt::current().unwrap().hub().to_owned()
            })
        })
        .collect();
    let hubs: Vec<String> = gs.into_iter().map(|g| finished(g).unwrap()).collect();
    assert_ne!(hubs[0], hubs[1]);
}

#[test]
fn rt_spawn_counts_the_tasks_a_blocked_hub_has_not_taken_in() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    // Hub 0's thread blocked by its one task, until the test is done.
    let (held, release) = (Arc::new(Event::new()), Arc::new(Event::new()));
    let (h, r) = (held.clone(), release.clone());
    let hog = rt.spawn_on(0, async move {
        h.set();
        r.wait_timeout(Duration::from_secs(60));
        greenrt::current().unwrap().hub().to_owned()
    });
    assert!(
        held.wait_timeout(Duration::from_secs(60)),
        "the hog never ran"
    );
    // Hub 1 holds five waiting tasks: by live tasks alone (five against
    // one), the blocked hub looks the less loaded.
    let (started, starts) = std::sync::mpsc::channel();
    let waiting: Vec<_> = (0..5)
        .map(|_| {
            let (r, started) = (release.clone(), started.clone());
            rt.spawn_on(1, async move {
                started.send(()).unwrap();
                r.wait_async().await;
            })
        })
        .collect();
    for _ in 0..5 {
        starts
            .recv_timeout(Duration::from_secs(60))
            .expect("hub 1 runs its tasks");
    }
    // Hub 0 cannot take these in: each one left waiting there counts
    // against it, as each one hub 1 has not finished counts against hub
    // 1. However fast hub 1 takes them in, hub 0 gets no more than half
    // of them and the difference of live tasks (by live tasks alone, it
    // got every one).
    let gs: Vec<_> = (0..100)
        .map(|_| rt.spawn(async { greenrt::current().unwrap().hub().to_owned() }))
        .collect();
    release.set();
    let blocked = finished(hog).unwrap();
    let on_blocked = gs
        .into_iter()
        .map(|g| finished(g).unwrap())
        .filter(|hub| *hub == blocked)
        .count();
    assert!(
        on_blocked <= 55,
        "{on_blocked} of 100 went to the blocked hub"
    );
    for g in waiting {
        finished(g).unwrap();
    }
}

#[test]
fn a_thread_joins_a_green_task() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let ev = Arc::new(Event::new());
    let e = ev.clone();
    let g = rt.spawn(async move {
        e.wait_async().await;
        7
    });
    assert!(
        !g.join_timeout_blocking(Duration::from_millis(10)),
        "not finished before the event"
    );
    ev.set();
    g.join_blocking();
    assert!(g.ready() && g.successful());
    assert_eq!(g.get_blocking(), Some(Ok(7)));
}

#[test]
fn cross_hub_wake_through_a_greenlet_and_an_event() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (ev, queued) = (Arc::new(Event::new()), Arc::new(Event::new()));
    let (e, q) = (ev.clone(), queued.clone());
    // A task on one hub queues itself on an event; a task on the other hub
    // sets it once it is queued; the root on the block_on hub awaits both
    // greenlets.
    let waiter = rt.spawn_on(0, async move {
        let mut wait = std::pin::pin!(e.wait_async());
        let first =
            std::future::poll_fn(|cx| std::task::Poll::Ready(wait.as_mut().poll(cx).is_pending()))
                .await;
        assert!(first);
        q.set();
        wait.await;
        greenrt::current().unwrap().hub().to_owned()
    });
    let e = ev.clone();
    let setter = rt.spawn_on(1, async move {
        queued.wait_async().await;
        e.set();
        greenrt::current().unwrap().hub().to_owned()
    });
    let hubs = rt.block_on(async move { (waiter.await.unwrap(), setter.await.unwrap()) });
    assert_eq!(hubs, ("hub-0".to_owned(), "hub-1".to_owned()));
}

#[test]
fn spawning_from_inside_a_task_onto_the_runtime_and_locally() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let n = rt.block_on(async {
        let h = Handle::try_current().expect("block_on belongs to the runtime");
        let remote: Vec<_> = (0..100u64).map(|i| h.spawn(async move { i })).collect();
        let local = spawn(async { 1000u64 });
        let mut sum = local.await.unwrap();
        for g in remote {
            sum += g.await.unwrap();
        }
        sum
    });
    assert_eq!(n, 1000 + (0..100u64).sum::<u64>());
}

#[test]
fn kill_from_a_plain_thread_drops_the_task_on_its_hub() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let started = Arc::new(Event::new());
    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let (d, s) = (dropped.clone(), started.clone());
    let g = rt.spawn(async move {
        let _f = Flag(d);
        s.set();
        std::future::pending::<()>().await
    });
    assert!(
        started.wait_timeout(common::BOUND),
        "the task never started"
    );
    g.kill();
    joined(&g);
    assert!(dropped.load(Ordering::SeqCst));
    assert_eq!(g.get_blocking(), Some(Err(GreenletError::Killed)));
}

#[test]
fn dropping_the_runtime_kills_what_still_runs() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let gs: Vec<_> = (0..10)
        .map(|_| rt.spawn(std::future::pending::<()>()))
        .collect();
    let handle = rt.handle();
    drop(rt);
    for g in gs {
        assert_eq!(finished(g), Err(GreenletError::Killed));
    }
    // Spawning on a runtime that is gone gives a killed greenlet, not a hang.
    assert_eq!(
        finished(handle.spawn(async { 1 })),
        Err(GreenletError::Killed)
    );
}

/// A supervisor's restart: dropped, it spawns its task again (holding a
/// new one), up to `left` more times.
struct Respawn {
    handle: Handle,
    left: usize,
    /// Destructors run, and the deepest they nested.
    dropped: Arc<AtomicUsize>,
    deepest: Arc<AtomicUsize>,
}

thread_local! {
    static NESTED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Drop for Respawn {
    fn drop(&mut self) {
        let depth = NESTED.get() + 1;
        NESTED.set(depth);
        self.dropped.fetch_add(1, Ordering::SeqCst);
        self.deepest.fetch_max(depth, Ordering::SeqCst);
        if self.left > 0 {
            let next = Respawn {
                handle: self.handle.clone(),
                left: self.left - 1,
                dropped: self.dropped.clone(),
                deepest: self.deepest.clone(),
            };
            let g = self.handle.spawn(async move {
                let _next = next;
                std::future::pending::<()>().await
            });
            assert_eq!(g.get_blocking(), Some(Err(GreenletError::Killed)));
        }
        NESTED.set(depth - 1);
    }
}

#[test]
#[cfg_attr(miri, ignore = "leaks the future past the bound, by design")]
fn a_destructor_that_respawns_onto_a_runtime_that_is_gone_cannot_overflow_the_stack() {
    common::within_bound(|| {
        let rt = Runtime::builder().workers(1).build().unwrap();
        let handle = rt.handle();
        drop(rt);
        let (dropped, deepest) = (Arc::default(), Arc::default());
        let first = Respawn {
            handle: handle.clone(),
            left: 1_000_000,
            dropped: Arc::clone(&dropped),
            deepest: Arc::clone(&deepest),
        };
        let g = handle.spawn(async move {
            let _first = first;
            std::future::pending::<()>().await
        });
        // Each refused task is killed at once, its future dropped inside
        // the drop of the one before, to a bounded depth; past it, leaked.
        assert_eq!(finished(g), Err(GreenletError::Killed));
        let (dropped, deepest) = (
            dropped.load(Ordering::SeqCst),
            deepest.load(Ordering::SeqCst),
        );
        assert_eq!(dropped, deepest, "each drop nested in the one before");
        assert!((2..=64).contains(&deepest), "nested {deepest} deep");
    });
}

#[test]
fn a_cpu_bound_batch_runs_on_both_hubs() {
    // Not a timing assertion: each task records the hub that ran it, and a
    // barrier that needs two simultaneous tasks proves both hubs work at once.
    let rt = Runtime::builder().workers(2).build().unwrap();
    let seen = Arc::new(Mutex::new(std::collections::HashSet::new()));
    let barrier = Arc::new(Meeting::default());
    let gs: Vec<_> = (0..8)
        .map(|i| {
            let (seen, barrier) = (seen.clone(), barrier.clone());
            rt.spawn(async move {
                if i < 2 {
                    assert!(barrier.meet(), "the other task never ran alongside");
                }
                let mut x = 0u64;
                for k in 0..10_000u64 {
                    x = x.wrapping_mul(31).wrapping_add(k);
                }
                seen.lock()
                    .unwrap()
                    .insert(greenrt::current().unwrap().hub().to_owned());
                x
            })
        })
        .collect();
    for g in gs {
        finished(g).unwrap();
    }
    assert_eq!(seen.lock().unwrap().len(), 2);
}

/// A latch whose waker is handed to another thread.
struct Latch {
    state: Mutex<(bool, Option<Waker>)>,
}

struct LatchWait(Arc<Latch>);

impl Future for LatchWait {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.0.state.lock().unwrap();
        if s.0 {
            Poll::Ready(())
        } else {
            s.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

impl Latch {
    fn open(&self) {
        let w = {
            let mut s = self.state.lock().unwrap();
            s.0 = true;
            s.1.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 2 } else { 24 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// However wake-ups from foreign threads interleave with the hubs (woken
    /// before the task parks, while it runs, after; several times; from
    /// several threads), every task completes: no wake-up is lost.
    #[test]
    fn cross_thread_wakes_are_never_lost(
        workers in 1usize..3,
        tasks in 1usize..24,
        threads in 1usize..4,
        rounds in 1usize..4,
        order in proptest::collection::vec(any::<u16>(), 24),
    ) {
        let rt = Runtime::builder().workers(workers).build().unwrap();
        let latches: Vec<Vec<Arc<Latch>>> = (0..tasks)
            .map(|_| (0..rounds).map(|_| Arc::new(Latch { state: Mutex::new((false, None)) })).collect())
            .collect();
        let done = Arc::new(AtomicUsize::new(0));
        let gs: Vec<_> = latches
            .iter()
            .map(|ls| {
                let ls = ls.clone();
                let done = done.clone();
                rt.spawn(async move {
                    for l in ls {
                        LatchWait(l).await;
                        yield_now().await;
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        // Threads open the latches in a random order.
        let mut all: Vec<(usize, Arc<Latch>)> = latches
            .iter()
            .flat_map(|ls| ls.iter().cloned())
            .enumerate()
            .collect();
        all.sort_by_key(|(i, _)| order[i % order.len()] as usize * 64 + i);
        let chunks: Vec<Vec<Arc<Latch>>> = (0..threads)
            .map(|t| all.iter().skip(t).step_by(threads).map(|(_, l)| l.clone()).collect())
            .collect();
        let hs: Vec<_> = chunks
            .into_iter()
            .map(|c| std::thread::spawn(move || c.into_iter().for_each(|l| l.open())))
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        for g in gs {
            prop_assert!(g.join_timeout_blocking(Duration::from_secs(30)), "a wake-up was lost");
        }
        prop_assert_eq!(done.load(Ordering::SeqCst), tasks);
    }
}

/// A waker that panics when woken.
struct Panics;

impl std::task::Wake for Panics {
    fn wake(self: Arc<Self>) {
        panic!("this waker panics");
    }
}

#[test]
fn a_worker_hub_outlives_a_waker_that_panics_at_a_tasks_end() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let ev = Arc::new(Event::new());
    let e = ev.clone();
    let mut g = rt.spawn_on(0, async move {
        e.wait_async().await;
        1
    });
    let panics = Waker::from(Arc::new(Panics));
    assert!(
        Pin::new(&mut g)
            .poll(&mut Context::from_waker(&panics))
            .is_pending()
    );
    // The task ends on the worker, whose wake-ups of its end include
    // `panics`; this thread, waiting too, is woken all the same.
    ev.set();
    assert!(g.join_timeout_blocking(Duration::from_secs(60)));
    assert_eq!(g.try_get(), Some(Ok(1)));
    // The hub goes on.
    let mut next = rt.spawn_on(0, async { 2 });
    assert!(next.join_timeout_blocking(Duration::from_secs(60)));
    assert_eq!(next.try_get(), Some(Ok(2)));
}

/// A runtime of one hub on a clock that moves only when told (so that
/// timers due at once fire in one round), and the clock.
fn one_hub_on_a_still_clock() -> (greenrt::time::ManualClock, Runtime) {
    let clock = greenrt::time::ManualClock::without_auto_advance();
    let rt = Runtime::builder()
        .workers(1)
        .clock(clock.clone())
        .build()
        .unwrap();
    (clock, rt)
}

/// A sleep until `at`, armed on the current hub with a waker that panics.
fn armed_with_a_panicking_waker(at: std::time::Instant) -> Pin<Box<greenrt::time::Sleep>> {
    let mut timer = Box::pin(greenrt::time::sleep_until(at));
    let panics = Waker::from(Arc::new(Panics));
    assert!(
        timer
            .as_mut()
            .poll(&mut Context::from_waker(&panics))
            .is_pending()
    );
    timer
}

#[test]
fn a_timer_whose_waker_panics_loses_no_other_wake_up() {
    let (clock, rt) = one_hub_on_a_still_clock();
    let armed = Arc::new(Event::new());
    let a = armed.clone();
    let mut g = rt.spawn_on(0, async move {
        let at = greenrt::time::now() + Duration::from_secs(3600);
        // Two timers due at once, the first with a waker that panics.
        let _first = armed_with_a_panicking_waker(at);
        let mut second = Box::pin(greenrt::time::sleep_until(at));
        let pending =
            std::future::poll_fn(|cx| Poll::Ready(second.as_mut().poll(cx).is_pending())).await;
        assert!(pending);
        a.set();
        second.await;
        3
    });
    assert!(
        armed.wait_timeout(common::BOUND),
        "the timer was never armed"
    );
    clock.advance(Duration::from_secs(3600));
    assert!(g.join_timeout_blocking(Duration::from_secs(60)));
    assert_eq!(g.try_get(), Some(Ok(3)));
    let mut next = rt.spawn_on(0, async { 4 });
    assert!(next.join_timeout_blocking(Duration::from_secs(60)));
    assert_eq!(next.try_get(), Some(Ok(4)));
}

#[test]
fn a_yield_that_fires_a_timer_whose_waker_panics_is_not_lost() {
    // The task that yields takes in the timers due by then, one of whose
    // wakers panics: the panic goes on at the end of the round (reported,
    // and the hub goes on), and the task that yielded is still queued.
    let (clock, rt) = one_hub_on_a_still_clock();
    let (armed, moved) = (Arc::new(Event::new()), Arc::new(Event::new()));
    let (a, m) = (armed.clone(), moved.clone());
    let mut g = rt.spawn_on(0, async move {
        let at = greenrt::time::now() + Duration::from_secs(3600);
        let timer = armed_with_a_panicking_waker(at);
        a.set();
        // Waits (blocking the hub, briefly) until the clock has moved, so
        // that the yield below finds the timer due.
        assert!(
            m.wait_timeout(Duration::from_secs(60)),
            "the clock never moved"
        );
        yield_now().await;
        drop(timer);
        5
    });
    assert!(armed.wait_timeout(Duration::from_secs(60)));
    clock.advance(Duration::from_secs(3600));
    moved.set();
    assert!(
        g.join_timeout_blocking(Duration::from_secs(60)),
        "the yield was lost"
    );
    assert_eq!(g.try_get(), Some(Ok(5)));
}

/// Two tasks meeting: each blocks its hub thread until the other arrives.
/// Bounded: two tasks on one hub fail the test (the first gives up after
/// 60 s) rather than hang it.
#[derive(Default)]
struct Meeting {
    arrived: Mutex<usize>,
    cv: Condvar,
}

impl Meeting {
    /// Arrives, and waits for the other; whether it came.
    fn meet(&self) -> bool {
        let mut n = self.arrived.lock().unwrap();
        *n += 1;
        self.cv.notify_all();
        let (n, _) = self
            .cv
            .wait_timeout_while(n, Duration::from_secs(60), |n| *n < 2)
            .unwrap();
        *n >= 2
    }
}
