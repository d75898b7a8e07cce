//! Timers on a test clock (no real sleeps order anything), and real sleeps
//! checked only as lower bounds.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use greenrt::time::ManualClock;
use greenrt::{Elapsed, Runtime, joinall, sleep, spawn, spawn_later, timeout, yield_now};

mod common;
use common::finished;

fn test_rt(clock: &ManualClock) -> Runtime {
    rt_of(1, clock)
}

fn rt_of(workers: usize, clock: &ManualClock) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .clock(clock.clone())
        .build()
        .unwrap()
}

const S: fn(u64) -> Duration = Duration::from_secs;

/// Taken by the tests that start sleep helpers (a sleep pending outside a
/// hub has a thread of its own) and by those that count them, so that a
/// count sees only its own test's helpers when the tests of this file run
/// as threads of one process.
static HELPERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn helpers_to_myself() -> std::sync::MutexGuard<'static, ()> {
    HELPERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sleeps `d` and counts the polls of the sleeping task: 2 (the first,
/// and the one its own timer causes) unless something else woke it, such
/// as a timer left behind by an earlier future, which an idle hub on a
/// `ManualClock` would reach first.
async fn sleep_counting_polls(d: Duration) -> usize {
    polls_of(sleep(d)).await
}

/// Awaits `s` and counts its polls.
async fn polls_of(s: greenrt::time::Sleep) -> usize {
    let mut s = std::pin::pin!(s);
    let mut polls = 0;
    std::future::poll_fn(|cx| {
        polls += 1;
        s.as_mut().poll(cx)
    })
    .await;
    polls
}

#[test]
fn sleeps_end_in_deadline_order_at_their_deadlines() {
    let clock = ManualClock::new();
    let rt = test_rt(&clock);
    let c = clock.clone();
    let log = rt.block_on(async move {
        let log = Rc::new(RefCell::new(Vec::new()));
        let gs: Vec<_> = [5u64, 2, 9, 2]
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let (log, c) = (log.clone(), c.clone());
                spawn(async move {
                    sleep(S(s)).await;
                    log.borrow_mut().push((i, c.elapsed()));
                })
            })
            .collect();
        joinall(&gs, None).await;
        Rc::try_unwrap(log).unwrap().into_inner()
    });
    assert_eq!(log, [(1, S(2)), (3, S(2)), (0, S(5)), (2, S(9))]);
}

#[test]
fn spawn_later_starts_after_its_delay() {
    let clock = ManualClock::new();
    let rt = test_rt(&clock);
    let c = clock.clone();
    let starts = rt.block_on(async move {
        let c1 = c.clone();
        let c2 = c.clone();
        let late = spawn_later(S(3), async move { c1.elapsed() });
        let early = spawn_later(S(1), async move { c2.elapsed() });
        (early.await.unwrap(), late.await.unwrap())
    });
    assert_eq!(starts, (S(1), S(3)));
}

#[test]
fn timeout_elapses_or_passes_the_value_through() {
    let clock = ManualClock::new();
    let rt = test_rt(&clock);
    let c = clock.clone();
    rt.block_on(async move {
        let r: Result<(), Elapsed> = timeout(S(1), sleep(S(2))).await;
        assert!(r.is_err());
        assert_eq!(r.unwrap_err().to_string(), "deadline elapsed");
        assert_eq!(c.elapsed(), S(1));
        assert_eq!(
            timeout(S(2), async {
                sleep(S(1)).await;
                4
            })
            .await,
            Ok(4)
        );
        assert_eq!(c.elapsed(), S(2));
        // The cancelled 2 s timer (due at 3 s) is gone: nothing wakes this
        // task before its own timer.
        assert_eq!(sleep_counting_polls(S(5)).await, 2);
        assert_eq!(c.elapsed(), S(7));
    });
}

#[test]
fn timeout_drops_the_inner_future_when_it_elapses() {
    struct Flag(Rc<RefCell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            *self.0.borrow_mut() = true;
        }
    }
    let clock = ManualClock::new();
    let rt = test_rt(&clock);
    rt.block_on(async {
        let dropped = Rc::new(RefCell::new(false));
        let d = dropped.clone();
        let r = timeout(S(1), async move {
            let _f = Flag(d);
            std::future::pending::<()>().await
        })
        .await;
        assert!(r.is_err());
        assert!(*dropped.borrow());
        // Also when the `Timeout` is kept (polled by reference, as in a
        // `select` loop): the future is dropped when it elapses, not later.
        let dropped = Rc::new(RefCell::new(false));
        let d = dropped.clone();
        let mut kept = std::pin::pin!(timeout(S(1), async move {
            let _f = Flag(d);
            std::future::pending::<()>().await
        }));
        assert!(kept.as_mut().await.is_err());
        assert!(*dropped.borrow(), "elapsed, with the future still alive");
        // Polled again, it says the same.
        assert!(kept.as_mut().await.is_err());
    });
}

#[test]
fn manual_clock_without_auto_advance_moves_only_when_told() {
    let clock = ManualClock::without_auto_advance();
    let rt = test_rt(&clock);
    let (tx, rx) = mpsc::channel::<()>();
    let g = rt.spawn(async move {
        let mut s = std::pin::pin!(sleep(S(10)));
        // Armed (first poll) before the test looks at the clock.
        let armed =
            std::future::poll_fn(|cx| std::task::Poll::Ready(s.as_mut().poll(cx).is_pending()))
                .await;
        assert!(armed);
        tx.send(()).unwrap();
        s.await;
    });
    rx.recv_timeout(common::BOUND).unwrap();
    // The hub has nothing to do but wait for its timer: a clock that moved
    // by itself would have moved before the hub went idle, and ended the
    // sleep.
    assert!(clock.wait_until_idle(S(60)), "the hub never went idle");
    assert_eq!(clock.elapsed(), Duration::ZERO);
    assert!(!g.ready(), "the sleep ended with the clock still");
    clock.advance(S(10));
    assert!(g.join_timeout_blocking(S(60)), "the sleep never ended");
    finished(g).unwrap();
    assert_eq!(clock.elapsed(), S(10));
}

#[test]
fn a_sleep_made_outside_a_hub_counts_on_the_clock_of_the_hub_that_polls_it() {
    // Made on the test's thread (where the clock is the real one), polled
    // on a hub whose manual clock stands an hour ahead of it: the timeout
    // is a minute of that clock, not a deadline long past.
    let clock = ManualClock::new();
    let rt = test_rt(&clock);
    rt.block_on(sleep(S(3600)));
    let r = rt.block_on(timeout(S(60), async { sleep(S(1)).await }));
    assert_eq!(r, Ok(()));
    assert_eq!(clock.elapsed(), S(3601));
    // A clock that stays behind the real one: moving it by the duration
    // ends the sleep.
    let clock = ManualClock::without_auto_advance();
    let rt = test_rt(&clock);
    let g = rt.spawn(sleep(S(5)));
    assert!(clock.wait_until_idle(S(60)), "the hub never went idle");
    clock.advance(S(5));
    assert!(g.join_timeout_blocking(S(60)), "the sleep never ended");
}

#[test]
fn many_timers_armed_and_cancelled_leave_nothing_behind() {
    let clock = ManualClock::new();
    let rt = test_rt(&clock);
    let c = clock.clone();
    rt.block_on(async move {
        for i in 0..if cfg!(miri) { 100 } else { 10_000u64 } {
            // A per-request timeout that never fires: the inner future is
            // pending once, so the timeout arms its timer, then cancels it.
            let once = async {
                yield_now().await;
                i
            };
            assert_eq!(timeout(S(60), once).await, Ok(i));
        }
        assert_eq!(c.elapsed(), Duration::ZERO);
        // Every timer was cancelled: none due at 60 s wakes this task
        // before its own at 100 s.
        assert_eq!(sleep_counting_polls(S(100)).await, 2);
        assert_eq!(c.elapsed(), S(100));
    });
}

#[test]
fn a_real_sleep_lasts_at_least_its_duration() {
    let t = Instant::now();
    greenrt::run(async {
        let gs: Vec<_> = (1..=3u64)
            .map(|i| spawn(sleep(Duration::from_millis(10 * i))))
            .collect();
        joinall(&gs, None).await;
    });
    assert!(t.elapsed() >= Duration::from_millis(30));
}

#[test]
fn a_sleep_already_due_lets_the_others_run_once() {
    let clock = ManualClock::new();
    let rt = test_rt(&clock);
    let c = clock.clone();
    rt.block_on(async move {
        // gevent's `sleep(0)`: the other task runs before the sleep ends.
        let ran = Rc::new(RefCell::new(false));
        let r = ran.clone();
        let other = spawn(async move { *r.borrow_mut() = true });
        sleep(Duration::ZERO).await;
        assert!(*ran.borrow(), "the other task ran during sleep(0)");
        other.await.unwrap();
        // One poll that yields, one that ends: no time passes.
        assert_eq!(sleep_counting_polls(Duration::ZERO).await, 2);
        // So does a sleep whose deadline passed before its first poll.
        let due = greenrt::time::sleep_until(c.now() - S(1));
        assert_eq!(polls_of(due).await, 2);
        assert_eq!(c.elapsed(), Duration::ZERO);
    });
    // Outside a hub as well.
    let _helpers = helpers_to_myself();
    assert_eq!(
        futures_executor::block_on(sleep_counting_polls(Duration::ZERO)),
        2
    );
}

#[test]
fn a_sleep_too_long_for_the_clock_never_ends_and_arms_no_timer() {
    let clock = ManualClock::new();
    let rt = test_rt(&clock);
    // Nothing else to wait for: a deadlock, found at once, not a timer
    // decades away (which an idle hub on this clock would skip to).
    let stuck = rt.try_block_on(timeout(Duration::MAX, std::future::pending::<()>()));
    assert!(stuck.is_err(), "{stuck:?}");
    assert_eq!(clock.elapsed(), Duration::ZERO);
    // Beside a timer that does end, it lets the other side win.
    let r = rt.block_on(async {
        let never = sleep(Duration::MAX);
        assert!(never.deadline() > Instant::now() + S(86400 * 365));
        timeout(S(3), never).await
    });
    assert!(r.is_err());
    assert_eq!(clock.elapsed(), S(3));
    // A deadline the clock's `Instant` holds but the timers do not (they
    // count about 584 years): never either, rather than 584 years on.
    let stuck = rt.try_block_on(sleep(S(1 << 40)));
    assert!(stuck.is_err(), "{stuck:?}");
    assert_eq!(clock.elapsed(), S(3));
    // And a clock moved as far as it goes ends no later timer at once.
    clock.advance(Duration::MAX);
    let stuck = rt.try_block_on(timeout(S(3600), std::future::pending::<()>()));
    assert!(stuck.is_err(), "{stuck:?}");
}

#[test]
fn sleep_outside_a_hub_works_on_another_executor() {
    let _helpers = helpers_to_myself();
    let t = Instant::now();
    futures_executor::block_on(sleep(Duration::from_millis(5)));
    assert!(t.elapsed() >= Duration::from_millis(5));
}

/// Threads of this process named `greenrt-sleep` (sleep helpers).
#[cfg(target_os = "linux")]
fn sleep_helpers() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.trim() == "greenrt-sleep")
                })
                .count()
        })
        .unwrap_or(0)
}

/// Whether every sleep helper has ended within ten seconds.
#[cfg(target_os = "linux")]
fn helpers_end() -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while sleep_helpers() > 0 {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

/// A waker that drops the sleep it holds when woken (as an executor that
/// cancels the task it wakes), then reports.
struct DropsItsSleep {
    sleep: std::sync::Mutex<Option<std::pin::Pin<Box<greenrt::time::Sleep>>>>,
    done: std::sync::Mutex<Option<mpsc::Sender<()>>>,
    /// The thread that polls the sleep.
    poller: std::thread::ThreadId,
    /// Woken by the sleep's own poll (due at once, it yields once), on the
    /// poller's thread: the sleep, locked by that poll, is left alone.
    inline: AtomicBool,
}

impl std::task::Wake for DropsItsSleep {
    fn wake(self: Arc<Self>) {
        if std::thread::current().id() == self.poller {
            self.inline.store(true, Ordering::SeqCst);
            return;
        }
        drop(self.sleep.lock().unwrap().take());
        if let Some(tx) = self.done.lock().unwrap().take() {
            let _ = tx.send(());
        }
    }
}

/// A waker that holds a sleep of the same hub, dropped with the waker's
/// last reference (as a task's waker drops the task, and its sleeps).
struct HoldsASleep {
    /// Held for its drop only.
    _sleep: std::sync::Mutex<greenrt::time::Sleep>,
    /// Counts the drops of such wakers.
    dropped: Arc<AtomicUsize>,
}

impl Drop for HoldsASleep {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

impl std::task::Wake for HoldsASleep {
    fn wake(self: Arc<Self>) {}
}

/// A sleep of an hour armed on the current hub, in a waker of its own.
fn waker_holding_an_armed_sleep(dropped: &Arc<AtomicUsize>) -> std::task::Waker {
    let mut held = sleep(S(3600));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(std::pin::Pin::new(&mut held).poll(&mut cx).is_pending());
    std::task::Waker::from(Arc::new(HoldsASleep {
        _sleep: std::sync::Mutex::new(held),
        dropped: dropped.clone(),
    }))
}

#[test]
fn a_timer_waker_whose_drop_drops_a_sleep_of_the_hub_is_dropped_after_the_timers() {
    // A waker dropped while the hub's timers were borrowed would panic
    // there (they are borrowed again to drop its sleep).
    let dropped = Arc::new(AtomicUsize::new(0));
    greenrt::run(async {
        // Cancelled: the timer's waker (the last reference) goes with it.
        let mut cancelled = sleep(S(3600));
        let waker = waker_holding_an_armed_sleep(&dropped);
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(
            std::pin::Pin::new(&mut cancelled)
                .poll(&mut cx)
                .is_pending()
        );
        drop(waker);
        assert_eq!(dropped.load(Ordering::SeqCst), 0, "the timer holds it");
        drop(cancelled);
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "cancelled, not dropped");
        // Polled again with another waker: the one it replaces goes.
        let mut replaced = sleep(S(3600));
        let waker = waker_holding_an_armed_sleep(&dropped);
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(std::pin::Pin::new(&mut replaced).poll(&mut cx).is_pending());
        drop(waker);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(std::pin::Pin::new(&mut replaced).poll(&mut cx).is_pending());
        assert_eq!(dropped.load(Ordering::SeqCst), 2, "replaced, not dropped");
        // The hub goes on with its timers.
        greenrt::time::sleep(Duration::from_millis(1)).await;
    });
}

#[test]
fn a_sleep_outside_a_hub_dropped_by_its_own_wake_up_ends_cleanly() {
    let _helpers = helpers_to_myself();
    // Short, but long enough to be pending at its first poll (longer each
    // try, for a slow or loaded machine, and miri).
    for ms in [1, 10, 100, 1000, 10_000] {
        let (tx, rx) = mpsc::channel();
        let holder = Arc::new(DropsItsSleep {
            sleep: std::sync::Mutex::new(Some(Box::pin(sleep(Duration::from_millis(ms))))),
            done: std::sync::Mutex::new(Some(tx)),
            poller: std::thread::current().id(),
            inline: AtomicBool::new(false),
        });
        let waker = std::task::Waker::from(holder.clone());
        let pending = {
            let mut held = holder.sleep.lock().unwrap();
            let nap = held.as_mut().unwrap();
            let mut cx = std::task::Context::from_waker(&waker);
            // Due at once, the sleep yields (woken inline), and has no
            // helper thread.
            std::future::Future::poll(nap.as_mut(), &mut cx).is_pending()
                && !holder.inline.load(Ordering::SeqCst)
        };
        drop((waker, holder));
        if !pending {
            continue;
        }
        // The helper thread wakes the waker, which drops the sleep there:
        // the sleep must not wait for the thread it is dropped on.
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the wake-up dropped its sleep and went on");
        return;
    }
    panic!("no sleep was pending at its first poll");
}

#[cfg(target_os = "linux")]
#[cfg_attr(
    miri,
    ignore = "counts threads in /proc, which miri's threads are not in"
)]
#[test]
fn a_cancelled_sleep_outside_a_hub_leaves_no_thread_behind() {
    let _helpers = helpers_to_myself();
    assert!(
        helpers_end(),
        "an earlier test's sleep helper is still there"
    );
    // An hour-long timeout around a future that is pending once: the
    // timeout's sleep starts its helper thread, then is dropped.
    let r = futures_executor::block_on(timeout(Duration::from_secs(3600), async {
        let mut first = true;
        std::future::poll_fn(|cx| {
            if std::mem::take(&mut first) {
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(7)
            }
        })
        .await
    }));
    assert_eq!(r, Ok(7));
    assert!(helpers_end(), "a sleep helper outlived its sleep");
}

#[cfg(target_os = "linux")]
#[cfg_attr(
    miri,
    ignore = "counts threads in /proc, which miri's threads are not in"
)]
#[test]
fn a_sleep_moved_onto_a_hub_leaves_no_thread_behind() {
    let _helpers = helpers_to_myself();
    assert!(
        helpers_end(),
        "an earlier test's sleep helper is still there"
    );
    // Polled once outside any hub (its helper thread starts), then on a
    // hub, whose timer takes over.
    let mut nap = Box::pin(sleep(Duration::from_secs(3600)));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(std::future::Future::poll(nap.as_mut(), &mut cx).is_pending());
    // The helper names itself once it runs.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sleep_helpers() == 0 {
        assert!(Instant::now() < deadline, "no helper started");
        std::thread::yield_now();
    }
    greenrt::run(async move {
        let woke = greenrt::timeout(Duration::from_millis(1), nap.as_mut()).await;
        assert!(woke.is_err());
    });
    assert!(helpers_end(), "the helper outlived the move onto a hub");
}

#[test]
fn a_clock_shared_by_two_hubs_wakes_both() {
    let clock = ManualClock::without_auto_advance();
    let rt = rt_of(2, &clock);
    let (tx, rx) = mpsc::channel();
    let gs: Vec<_> = (0..2)
        .map(|_| {
            let tx = tx.clone();
            rt.spawn(async move {
                let mut s = std::pin::pin!(sleep(S(5)));
                // Armed (first poll) before the clock may move.
                let armed = std::future::poll_fn(|cx| {
                    std::task::Poll::Ready(s.as_mut().poll(cx).is_pending())
                })
                .await;
                assert!(armed);
                tx.send(()).unwrap();
                s.await;
            })
        })
        .collect();
    let c = Arc::new(clock);
    rx.recv_timeout(common::BOUND).unwrap();
    rx.recv_timeout(common::BOUND).unwrap();
    c.advance(S(5));
    for g in gs {
        finished(g).unwrap();
    }
}

#[test]
fn wait_until_idle_sees_what_a_timer_set_off_on_another_hub() {
    // A timer on one hub wakes a task there, which sets an event that a
    // task on the other hub waits for: once the clock's hubs are idle after
    // the move, the whole chain has run.
    let clock = ManualClock::without_auto_advance();
    let rt = rt_of(2, &clock);
    let (ev, done) = (
        Arc::new(sync_prims::Event::new()),
        Arc::new(AtomicBool::new(false)),
    );
    let mut gs = Vec::new();
    for round in 1..=3u64 {
        ev.clear();
        let e = ev.clone();
        gs.push(rt.spawn_on(0, async move {
            sleep(S(1)).await;
            e.set();
        }));
        let (e, d) = (ev.clone(), done.clone());
        gs.push(rt.spawn_on(1, async move {
            e.wait_async().await;
            // Some more rounds of its hub before the mark.
            for _ in 0..if cfg!(miri) { 100 } else { 10_000 } {
                yield_now().await;
            }
            d.store(true, Ordering::SeqCst);
        }));
        assert!(clock.wait_until_idle(S(30)), "round {round}: never idle");
        assert!(!done.load(Ordering::SeqCst), "round {round}: ran early");
        clock.advance(S(1));
        assert!(clock.wait_until_idle(S(30)), "round {round}: never idle");
        assert!(done.swap(false, Ordering::SeqCst), "round {round}: not run");
    }
    for g in gs {
        finished(g).unwrap();
    }
}

#[test]
fn a_blocking_job_in_flight_keeps_a_manual_clock_where_it_is() {
    // Auto-advance: the hub has nothing to run but the job, whose time is
    // real; moving the clock to the timeout's deadline would end it first.
    let clock = ManualClock::new();
    let rt = test_rt(&clock);
    let c = clock.clone();
    let r = rt.block_on(async move {
        let job = greenrt::spawn_blocking(move || {
            // Real work for a while (a bounded count of turns): long after
            // the hub went idle, which moved the clock at once.
            let moved = (0..20_000).any(|_| {
                std::thread::yield_now();
                c.elapsed() > Duration::ZERO
            });
            !moved
        });
        timeout(S(5), job).await
    });
    assert_eq!(r, Ok(Ok(true)), "the clock moved while the job ran");
    assert_eq!(clock.elapsed(), Duration::ZERO);

    // Without auto-advance: a hub whose job runs is not idle, so that a
    // test moves the clock only once the job's task has gone on.
    let clock = ManualClock::without_auto_advance();
    let rt = test_rt(&clock);
    let release = Arc::new(sync_prims::Event::new());
    let r2 = release.clone();
    let g = rt.spawn(async move {
        let waited = greenrt::spawn_blocking(move || r2.wait_timeout(S(60))).await;
        sleep(S(5)).await;
        waited
    });
    assert!(
        !clock.wait_until_idle(Duration::from_millis(50)),
        "idle while its job runs"
    );
    release.set();
    assert!(clock.wait_until_idle(S(60)), "never idle after the job");
    clock.advance(S(5));
    assert_eq!(finished(g), Ok(Ok(true)));
    assert_eq!(clock.elapsed(), S(5));
}
