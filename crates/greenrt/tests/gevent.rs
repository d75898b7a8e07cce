//! gevent's semantics, one by one, on a single hub.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use greenrt::time::ManualClock;
use greenrt::{Builder, GreenletError, Runtime, joinall, killall, sleep, spawn, yield_now};

mod common;
use common::{BOUND, finished, joined, within_bound};

/// Task counts of the load tests (smaller under miri, which is slow).
const MANY: u64 = if cfg!(miri) { 300 } else { 100_000 };

fn test_rt(clock: &ManualClock) -> Runtime {
    Runtime::builder()
        .workers(1)
        .clock(clock.clone())
        .build()
        .unwrap()
}

#[test]
fn joinall_timeout_returns_exactly_the_finished_subset() {
    let clock = ManualClock::new();
    let rt = test_rt(&clock);
    let (done, elapsed) = rt.block_on(async {
        let gs: Vec<_> = [3u64, 1, 4, 2]
            .into_iter()
            .map(|s| spawn(async move { sleep(Duration::from_secs(s)).await }))
            .collect();
        let done = joinall(&gs, Some(Duration::from_millis(2500))).await;
        (done, greenrt::time::now())
    });
    assert_eq!(done, [1, 3]);
    assert_eq!(
        elapsed - (clock.now() - clock.elapsed()),
        Duration::from_millis(2500)
    );
}

#[test]
fn joinall_without_timeout_waits_for_all() {
    let clock = ManualClock::new();
    let rt = test_rt(&clock);
    let done = rt.block_on(async {
        let gs: Vec<_> = (1..=5u64)
            .map(|s| spawn(async move { sleep(Duration::from_secs(s)).await }))
            .collect();
        joinall(&gs, None).await
    });
    assert_eq!(done, [0, 1, 2, 3, 4]);
    assert_eq!(clock.elapsed(), Duration::from_secs(5));
}

#[test]
fn get_of_a_panicked_task_and_the_hub_goes_on() {
    let out = greenrt::run(async {
        let bad = spawn(async {
            yield_now().await;
            panic!("boom {}", 7);
        });
        let good = spawn(async { 5 });
        let bad_res = bad.await;
        (bad_res, good.await)
    });
    let Err(GreenletError::Panicked(p)) = out.0 else {
        panic!("not a panic: {:?}", out.0)
    };
    assert_eq!(p.message(), "boom 7");
    assert_eq!(out.1, Ok(5));
    // The payload is the task's own, to go on with (gevent's `get()`
    // raises the task's exception again); one that is not a string is
    // named as such in the message.
    let odd = greenrt::run(async { spawn(async { std::panic::panic_any(7u32) }).await });
    let Err(GreenletError::Panicked(p)) = odd else {
        panic!("not a panic: {odd:?}")
    };
    assert_eq!(p.message(), "a panic with a non-string payload");
    let resumed = std::panic::catch_unwind(|| std::panic::resume_unwind(p.into_payload()));
    assert_eq!(resumed.unwrap_err().downcast_ref::<u32>(), Some(&7));
}

#[test]
fn successful_and_ready_flags() {
    greenrt::run(async {
        let ok = spawn(async { 1 });
        let bad = spawn(async { panic!("x") });
        let slow = spawn(std::future::pending::<()>());
        assert!(!ok.ready() && !ok.successful());
        yield_now().await;
        assert!(ok.ready() && ok.successful());
        assert!(bad.ready() && !bad.successful());
        assert!(!slow.ready());
        slow.kill();
        assert!(slow.ready() && !slow.successful());
    });
}

struct SetOnDrop(Rc<Cell<bool>>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
// The awaiter keeps a shared borrow across its await; the root only takes
// shared borrows meanwhile (to call `kill`), so it cannot conflict.
#[allow(clippy::await_holding_refcell_ref)]
fn kill_runs_destructors_and_awaiters_get_killed() {
    greenrt::run(async {
        let dropped = Rc::new(Cell::new(false));
        let d = dropped.clone();
        let gs = Rc::new(RefCell::new(vec![spawn(async move {
            let _guard = SetOnDrop(d);
            std::future::pending::<u8>().await
        })]));
        let g2 = gs.clone();
        // An awaiter on the same hub, parked on the victim.
        let awaiter = spawn(async move {
            let done = {
                let b = g2.borrow();
                joinall(&b, None).await
            };
            let res = g2.borrow_mut()[0].try_get();
            (done, res)
        });
        yield_now().await; // the victim and the awaiter park
        assert!(!dropped.get());
        gs.borrow()[0].kill();
        assert!(
            dropped.get(),
            "kill drops the future, running its destructors"
        );
        assert_eq!(
            awaiter.await.unwrap(),
            (vec![0], Some(Err(GreenletError::Killed)))
        );
    });
}

#[test]
fn kill_of_a_parked_task_drops_it_before_kill_returns() {
    greenrt::run(async {
        let dropped = Rc::new(Cell::new(false));
        let d = dropped.clone();
        let g = spawn(async move {
            let _guard = SetOnDrop(d);
            sleep(Duration::from_secs(3600)).await;
        });
        yield_now().await;
        g.kill();
        assert!(dropped.get(), "destructors run at once on the same hub");
        assert_eq!(g.await, Err(GreenletError::Killed));
    });
}

#[test]
fn killall_waits_until_every_task_is_dead() {
    let r = greenrt::run(async {
        let gs = vec![spawn(std::future::pending::<u8>()), spawn(async { 9 })];
        yield_now().await;
        killall(&gs).await;
        let mut gs = gs;
        let b = gs.pop().unwrap().await;
        let a = gs.pop().unwrap().await;
        (a, b)
    });
    // Killing a finished task does nothing: its value stays.
    assert_eq!(r, (Err(GreenletError::Killed), Ok(9)));
}

#[test]
fn a_task_that_kills_itself_stops_at_its_next_suspension() {
    greenrt::run(async {
        let me: Rc<RefCell<Option<greenrt::Greenlet<()>>>> = Rc::new(RefCell::new(None));
        let steps = Rc::new(Cell::new(0));
        let (m, s) = (me.clone(), steps.clone());
        let g = spawn(async move {
            s.set(1);
            if let Some(g) = m.borrow().as_ref() {
                g.kill();
            }
            s.set(2); // still runs: the kill lands at the next suspension
            yield_now().await;
            s.set(3);
        });
        *me.borrow_mut() = Some(g);
        yield_now().await;
        yield_now().await;
        assert_eq!(steps.get(), 2);
        let g = me.borrow_mut().take().unwrap();
        assert_eq!(g.await, Err(GreenletError::Killed));
    });
}

#[test]
fn yield_now_is_round_robin() {
    let log = greenrt::run(async {
        let log = Rc::new(RefCell::new(Vec::new()));
        let gs: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|name| {
                let log = log.clone();
                spawn(async move {
                    for round in 0..3 {
                        log.borrow_mut().push(format!("{name}{round}"));
                        yield_now().await;
                    }
                })
            })
            .collect();
        joinall(&gs, None).await;
        Rc::try_unwrap(log).unwrap().into_inner()
    });
    assert_eq!(log, ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]);
}

#[test]
fn yield_now_lets_every_runnable_task_run_first() {
    greenrt::run(async {
        let count = Rc::new(Cell::new(0));
        for _ in 0..10 {
            let c = count.clone();
            drop(spawn(async move { c.set(c.get() + 1) }));
        }
        yield_now().await;
        assert_eq!(count.get(), 10);
    });
}

/// Task `t` waits for what `t_waits` makes; task `a` makes `t` runnable
/// with `wake_t` (from outside the hub, or with its clock), then yields.
/// Returns the order in which they went on.
fn yield_after<W: std::future::Future<Output = ()> + 'static>(
    clock: Option<ManualClock>,
    t_waits: impl FnOnce() -> W + 'static,
    wake_t: impl FnOnce() + 'static,
) -> Vec<&'static str> {
    let run = async move {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        let t = spawn(async move {
            t_waits().await;
            l.borrow_mut().push("t");
        });
        let l = log.clone();
        let a = spawn(async move {
            // `t`, spawned first, waits by now.
            wake_t();
            yield_now().await;
            l.borrow_mut().push("a");
        });
        joinall(&[t, a], None).await;
        Rc::try_unwrap(log).unwrap().into_inner()
    };
    match clock {
        Some(c) => test_rt(&c).block_on(run),
        None => greenrt::run(run),
    }
}

#[test]
fn yield_now_lets_a_task_woken_from_another_thread_run_first() {
    let event = std::sync::Arc::new(sync_prims::Event::new());
    let e = event.clone();
    let log = yield_after(
        None,
        move || async move { e.wait_async().await },
        // Set by a thread, which has ended before the yield.
        move || std::thread::spawn(move || event.set()).join().unwrap(),
    );
    assert_eq!(log, ["t", "a"]);
}

#[test]
fn yield_now_lets_a_task_whose_timer_is_due_run_first() {
    let clock = ManualClock::without_auto_advance();
    let c = clock.clone();
    let log = yield_after(
        Some(clock),
        || sleep(Duration::from_secs(10)),
        move || c.advance(Duration::from_secs(10)),
    );
    assert_eq!(log, ["t", "a"]);
}

#[test]
fn named_tasks_and_current() {
    greenrt::run(async {
        assert_eq!(greenrt::current().unwrap().id(), 0);
        let g = Builder::new()
            .name("fetch-3")
            .spawn(async {
                let me = greenrt::current().unwrap();
                (me.id(), me.name().map(str::to_owned), me.hub().to_owned())
            })
            .unwrap();
        let id = g.id();
        assert_eq!(g.name(), Some("fetch-3"));
        let (seen_id, name, hub) = g.await.unwrap();
        assert_eq!(seen_id, id);
        assert_eq!(name.as_deref(), Some("fetch-3"));
        assert_eq!(hub, "main");
    });
    assert!(greenrt::current().is_none());
}

#[test]
fn spawn_outside_a_hub_is_an_error_value() {
    let e = Builder::new().spawn(async {}).unwrap_err();
    assert!(e.to_string().contains("no greenrt hub"));
    assert!(
        Builder::new()
            .spawn_later(Duration::from_secs(1), async {})
            .is_err()
    );
}

#[test]
fn try_get_takes_the_result_once() {
    greenrt::run(async {
        let mut g = spawn(async { String::from("v") });
        assert_eq!(g.try_get(), None);
        yield_now().await;
        assert_eq!(g.try_get(), Some(Ok("v".to_string())));
        assert_eq!(g.try_get(), None);
    });
}

#[test]
fn detached_tasks_keep_running_and_drop_their_output() {
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    greenrt::run(async move {
        let inner = d.clone();
        drop(spawn(async move {
            yield_now().await;
            SetOnDrop(inner)
        }));
        yield_now().await;
        yield_now().await;
        assert!(
            d.get(),
            "the output of a detached task is dropped on its hub"
        );
    });
    assert!(dropped.get());
}

#[test]
fn tasks_left_when_run_returns_are_killed() {
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    greenrt::run(async move {
        drop(spawn(async move {
            let _g = SetOnDrop(d);
            std::future::pending::<()>().await;
        }));
        yield_now().await;
    });
    assert!(dropped.get());
}

#[test]
fn root_panic_propagates_after_teardown() {
    let r = std::panic::catch_unwind(|| {
        greenrt::run(async {
            drop(spawn(std::future::pending::<()>()));
            yield_now().await;
            panic!("root failed");
        })
    });
    let msg = r.unwrap_err();
    assert_eq!(msg.downcast_ref::<&str>(), Some(&"root failed"));
    // The thread can run a hub again.
    assert_eq!(greenrt::run(async { 3 }), 3);
}

/// Counts its drops; the first panics, with a payload whose own drop
/// panics too.
struct PanicsTwiceOnDrop(Rc<Cell<u32>>);

/// A panic payload that panics when it is dropped.
struct PanickingPayload;

impl Drop for PanickingPayload {
    fn drop(&mut self) {
        panic!("the payload's own drop");
    }
}

impl Drop for PanicsTwiceOnDrop {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
        if self.0.get() == 1 {
            std::panic::panic_any(PanickingPayload);
        }
    }
}

#[test]
fn a_task_whose_drop_panics_with_a_panicking_payload_is_dropped_once() {
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let outcome = greenrt::run(async move {
        let g = spawn(async move {
            // Memory of its own, which a second drop would free again.
            let (_bomb, data) = (PanicsTwiceOnDrop(d), vec![7u8; 64]);
            std::future::pending::<()>().await;
            data.len()
        });
        yield_now().await; // the task parks, its future pinned
        g.kill();
        g.await
    });
    assert_eq!(drops.get(), 1, "dropped once, when killed");
    assert_eq!(outcome, Err(GreenletError::Killed));
    // The same panic out of a future that completes: reported as its
    // panic, once.
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let outcome = greenrt::run(async move {
        spawn(async move {
            let bomb = PanicsTwiceOnDrop(d);
            yield_now().await;
            drop(bomb);
            1
        })
        .await
    });
    assert_eq!(drops.get(), 1);
    assert!(
        matches!(outcome, Err(GreenletError::Panicked(_))),
        "{outcome:?}"
    );
}

/// A value whose drop panics.
struct OutputDropPanics;

impl Drop for OutputDropPanics {
    fn drop(&mut self) {
        panic!("the output's drop");
    }
}

/// Ready at once with an [`OutputDropPanics`]; its own drop panics too.
struct FutureDropPanics;

impl std::future::Future for FutureDropPanics {
    type Output = OutputDropPanics;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<OutputDropPanics> {
        std::task::Poll::Ready(OutputDropPanics)
    }
}

impl Drop for FutureDropPanics {
    fn drop(&mut self) {
        panic!("the future's drop");
    }
}

#[test]
fn a_task_whose_future_and_lost_output_both_panic_when_dropped_still_completes() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    // The future's drop panics after it returned: its output, lost to
    // that panic, panics when dropped too.
    match finished(rt.spawn(FutureDropPanics)) {
        Err(GreenletError::Panicked(p)) => assert_eq!(p.message(), "the future's drop"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    // The hub goes on.
    assert_eq!(finished(rt.spawn(async { 5 })), Ok(5));
}

/// A waker that panics when woken.
struct PanickingWaker;

impl std::task::Wake for PanickingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        panic!("a foreign waker");
    }
}

#[test]
fn teardown_goes_on_past_a_panicking_waker_and_drops_every_task() {
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    // Holds the second task's greenlet past the hub's end: only teardown
    // can drop its future meanwhile.
    let (keep, kept) = std::sync::mpsc::channel();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        greenrt::run(async move {
            // Killed first at teardown (spawned first), its end wakes a
            // waker that panics...
            let mut first = spawn(std::future::pending::<()>());
            // ...and this one, killed after it, must still be dropped.
            keep.send(spawn(async move {
                let _g = SetOnDrop(d);
                std::future::pending::<()>().await;
            }))
            .unwrap();
            yield_now().await;
            let waker = std::task::Waker::from(std::sync::Arc::new(PanickingWaker));
            let polled = std::future::Future::poll(
                std::pin::Pin::new(&mut first),
                &mut std::task::Context::from_waker(&waker),
            );
            assert!(polled.is_pending());
            // Returned (in a tuple, not as a future to await), so that
            // its wait stays queued through teardown.
            (first,)
        })
    }));
    assert!(dropped.get(), "the second task was dropped at teardown");
    let second = kept.recv().unwrap();
    assert!(second.ready(), "and completed");
    let p = r.expect_err("the waker's panic goes on once teardown is done");
    assert_eq!(p.downcast_ref::<&str>(), Some(&"a foreign waker"));
    // The thread can run a hub again.
    assert_eq!(greenrt::run(async { 3 }), 3);
}

#[test]
fn nested_run_restores_the_outer_hub() {
    greenrt::run(async {
        let outer = greenrt::current().unwrap().hub().to_owned();
        let inner = greenrt::run(async { spawn(async { 2 }).await.unwrap() });
        assert_eq!(inner, 2);
        assert_eq!(greenrt::current().unwrap().hub(), outer);
        assert_eq!(spawn(async { 1 }).await, Ok(1));
    });
}

#[test]
fn a_hundred_thousand_tasks_spawned_and_joined() {
    let sum = greenrt::run(async {
        let gs: Vec<_> = (0..MANY).map(|i| spawn(async move { i })).collect();
        let mut sum = 0;
        for g in gs {
            sum += g.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, (0..MANY).sum::<u64>());
}

#[test]
fn a_hundred_thousand_parked_tasks_are_killed_at_exit() {
    let alive = Rc::new(Cell::new(0usize));
    let a = alive.clone();
    greenrt::run(async move {
        struct Live(Rc<Cell<usize>>);
        impl Drop for Live {
            fn drop(&mut self) {
                self.0.set(self.0.get() - 1);
            }
        }
        for _ in 0..MANY {
            a.set(a.get() + 1);
            let l = Live(a.clone());
            drop(spawn(async move {
                let _l = l;
                sleep(Duration::from_secs(3600)).await;
            }));
        }
        yield_now().await;
    });
    assert_eq!(alive.get(), 0);
}

#[test]
fn public_types_are_send_and_sync_where_expected() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<greenrt::Greenlet<u32>>();
    send_sync::<Runtime>();
    send_sync::<greenrt::Handle>();
    send_sync::<greenrt::futures::Sleep>();
    send_sync::<greenrt::futures::Timeout<greenrt::futures::Sleep>>();
    send_sync::<greenrt::GreenletError>();
    send_sync::<greenrt::Deadlock>();
    send_sync::<greenrt::StallReport>();
    send_sync::<ManualClock>();
    // Streams, which tasks of a `Runtime` hold across their awaits.
    fn send<T: Send>() {}
    send::<greenrt::IWait<'static>>();
    send::<greenrt::net::Incoming<'static>>();
}

/// Runs a hub of its own when dropped, and keeps what it returned.
struct RunsAHubWhenDropped(Rc<Cell<u32>>);

impl Drop for RunsAHubWhenDropped {
    fn drop(&mut self) {
        self.0
            .set(greenrt::run(async { spawn(async { 7 }).await.unwrap() }));
    }
}

#[test]
fn a_destructor_run_by_a_kill_may_run_a_hub_of_its_own() {
    let got = Rc::new(Cell::new(0));
    let g2 = got.clone();
    let r = greenrt::run(async move {
        let g = spawn(async move {
            let _d = RunsAHubWhenDropped(g2);
            std::future::pending::<()>().await
        });
        yield_now().await;
        // Suspended, on this hub: the destructor runs inside `kill`.
        g.kill();
        assert_eq!(got.get(), 7);
        g.await
    });
    assert_eq!(r, Err(GreenletError::Killed));
}

/// When dropped, spawns a task that holds the next link, while `left`.
struct Respawns {
    left: u32,
    spawned: Rc<RefCell<Vec<greenrt::Greenlet<()>>>>,
    dropped: Rc<Cell<usize>>,
}

impl Drop for Respawns {
    fn drop(&mut self) {
        self.dropped.set(self.dropped.get() + 1);
        if self.left > 0 {
            let next = Respawns {
                left: self.left - 1,
                spawned: self.spawned.clone(),
                dropped: self.dropped.clone(),
            };
            let g = spawn(async move {
                let _next = next;
                std::future::pending::<()>().await
            });
            self.spawned.borrow_mut().push(g);
        }
    }
}

#[cfg_attr(miri, ignore = "the last link's future is leaked on purpose")]
#[test]
fn tasks_that_destructors_keep_spawning_at_exit_all_end() {
    let spawned = Rc::new(RefCell::new(Vec::new()));
    let dropped = Rc::new(Cell::new(0));
    let first = Respawns {
        left: 1000,
        spawned: spawned.clone(),
        dropped: dropped.clone(),
    };
    greenrt::run(async move {
        drop(spawn(async move {
            let _first = first;
            std::future::pending::<()>().await
        }));
        yield_now().await;
    });
    let spawned = spawned.take();
    // The hub's teardown kills what destructors spawn, round after round,
    // and stops the chain after a bounded number of rounds ...
    assert!((2..1000).contains(&spawned.len()), "{}", spawned.len());
    // ... where the last link's future is leaked, not dropped: each link
    // but that one was dropped, as was the first task's.
    assert_eq!(dropped.get(), spawned.len());
    // Every task of the chain ended, killed, the last one too.
    for mut g in spawned {
        assert!(g.ready());
        assert_eq!(g.try_get(), Some(Err(GreenletError::Killed)));
    }
}

/// When dropped, spawns a task (that never ends by itself) on the current
/// hub and hands over its greenlet.
struct SpawnsWhenDropped(std::sync::Arc<std::sync::Mutex<Option<greenrt::Greenlet<()>>>>);

impl Drop for SpawnsWhenDropped {
    fn drop(&mut self) {
        let g = spawn(std::future::pending::<()>());
        *self.0.lock().unwrap() = Some(g);
    }
}

#[test]
fn a_task_spawned_at_shutdown_by_a_task_never_taken_in_ends_too() {
    use std::sync::{Arc, Mutex};
    use sync_prims::Event;
    let rt = Runtime::builder().workers(2).build().unwrap();
    let h = rt.handle();
    // Hub 0's thread is held ...
    let (held, hold) = (Arc::new(Event::new()), Arc::new(Event::new()));
    let (held2, hold2) = (held.clone(), hold.clone());
    let hog = rt.spawn_on(0, async move {
        held2.set();
        hold2.wait();
    });
    assert!(held.wait_timeout(BOUND));
    // ... while a task is sent to it, which waits in its injector ...
    let spawned = Arc::new(Mutex::new(None));
    let guard = SpawnsWhenDropped(spawned.clone());
    let untaken = h.spawn_on(0, async move {
        let _guard = guard;
        std::future::pending::<()>().await
    });
    // ... until the runtime is dropped: hub 0 is told to stop before hub 1,
    // which refuses tasks once it has closed.
    let dropper = std::thread::spawn(move || drop(rt));
    let deadline = std::time::Instant::now() + BOUND;
    let closed = std::iter::from_fn(|| (std::time::Instant::now() < deadline).then_some(()))
        .any(|()| h.spawn_on(1, async {}).get_blocking() == Some(Err(GreenletError::Killed)));
    assert!(closed, "hub 1 closed within {BOUND:?}");
    hold.set();
    dropper.join().unwrap();
    joined(&hog);
    assert_eq!(finished(untaken), Err(GreenletError::Killed));
    // What the untaken task's destructor spawned was killed as well.
    let g = spawned
        .lock()
        .unwrap()
        .take()
        .expect("the destructor spawned");
    assert_eq!(finished(g), Err(GreenletError::Killed));
}

#[test]
fn join_blocking_on_a_task_the_calling_thread_must_run_panics() {
    let message = |r: std::thread::Result<()>| -> String {
        let p = r.unwrap_err();
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap()
    };
    // A task of the caller's hub, and one of the hub a nested run holds.
    let own = within_bound(|| {
        std::panic::catch_unwind(|| greenrt::run(async { spawn(async { 1 }).join_blocking() }))
    });
    assert!(message(own).contains("join_blocking"));
    let held = within_bound(|| {
        std::panic::catch_unwind(|| {
            greenrt::run(async {
                let g = spawn(async { 1 });
                greenrt::run(async move { drop(g.get_blocking()) })
            })
        })
    });
    assert!(message(held).contains("join_blocking"));
    // With a timeout too, rather than block the hub for all of it.
    let timed = within_bound(|| {
        std::panic::catch_unwind(|| {
            greenrt::run(async {
                spawn(async { 1 }).join_timeout_blocking(std::time::Duration::from_secs(3600));
            })
        })
    });
    assert!(message(timed).contains("join_timeout_blocking"));
    // A zero timeout blocks nothing: the question is answered.
    greenrt::run(async {
        let g = spawn(async { 1 });
        assert!(!g.join_timeout_blocking(std::time::Duration::ZERO));
    });
    // One that has finished is joined at once.
    greenrt::run(async {
        let g = spawn(async { 1 });
        yield_now().await;
        assert!(g.join_timeout_blocking(std::time::Duration::ZERO));
        g.join_blocking();
        assert_eq!(g.get_blocking(), Some(Ok(1)));
    });
}

#[test]
fn what_the_destructors_of_a_deadlocked_root_spawn_ends_too() {
    let spawned = std::sync::Arc::new(std::sync::Mutex::new(None));
    let guard = SpawnsWhenDropped(spawned.clone());
    let r = greenrt::try_run(async move {
        let _guard = guard;
        std::future::pending::<()>().await
    });
    assert!(r.is_err(), "a deadlock");
    // The root was dropped with its hub still running: what it spawned
    // then was killed with the other tasks.
    let g = spawned
        .lock()
        .unwrap()
        .take()
        .expect("the destructor spawned");
    assert!(g.ready());
    assert_eq!(finished(g), Err(GreenletError::Killed));
}
