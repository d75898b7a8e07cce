//! Stall and deadlock diagnosis: each is triggered, and the report must
//! name the task.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use greenrt::{Builder, Runtime, StallReport, joinall, spawn, try_run, yield_now};
use sync_prims::Event;

mod common;
use common::{finished, joined};

/// How long a stall goes on after its first report, in the tests that
/// check it is reported once: five times the longest limit they set.
const STALL_GOES_ON: Duration = Duration::from_millis(100);

/// A runtime of one hub whose stalls past 20 ms are reported on the
/// channel returned with it.
fn watched_hub() -> (Runtime, mpsc::Receiver<StallReport>) {
    let (tx, rx) = mpsc::channel::<StallReport>();
    let tx = std::sync::Mutex::new(tx);
    let rt = Runtime::builder()
        .workers(1)
        .max_blocking_time(Duration::from_millis(20))
        .on_stall(move |r| drop(tx.lock().unwrap().send(r.clone())))
        .build()
        .unwrap();
    (rt, rx)
}

#[test]
fn a_task_that_does_not_yield_is_named_by_the_stall_monitor() {
    let (rt, rx) = watched_hub();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let spinner = Builder::new()
        .name("spinner")
        .spawn_in(&rt.handle(), async move {
            // Spins without yielding until the test has seen the report.
            while !s.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            "done"
        });
    let report = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the monitor reports the stall");
    // The stall goes on for five times its limit after the report: a
    // monitor that reported it again would have done so by then.
    std::thread::sleep(STALL_GOES_ON);
    stop.store(true, Ordering::Release);
    assert_eq!(report.task_name(), Some("spinner"));
    assert_eq!(report.task_id(), spinner.id());
    assert_eq!(report.hub(), "hub-0");
    assert!(report.elapsed() >= Duration::from_millis(20));
    let text = report.to_string();
    assert!(
        text.contains("'spinner'") && text.contains("hub-0"),
        "{text}"
    );
    assert_eq!(finished(spinner), Ok("done"));
    // Reported once per stall: nothing else arrives for this one.
    assert!(rx.try_recv().is_err());
}

/// Spins in its destructor until told to stop.
struct SpinsWhenDropped(Arc<AtomicBool>);

impl Drop for SpinsWhenDropped {
    fn drop(&mut self) {
        while !self.0.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
    }
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

#[test]
fn a_destructor_run_by_a_kill_is_named_by_the_stall_monitor() {
    let (rt, rx) = watched_hub();
    let (started, start) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let held = SpinsWhenDropped(stop.clone());
    // Stops the spin also when the test fails, before the runtime (which
    // waits for its hub) is dropped.
    let _stop_at_the_end = StopOnDrop(stop.clone());
    let victim = Builder::new()
        .name("victim")
        .spawn_in(&rt.handle(), async move {
            let _held = held;
            started.send(()).unwrap();
            std::future::pending::<()>().await
        });
    start
        .recv_timeout(Duration::from_secs(30))
        .expect("the task runs");
    // Killed from this thread: the hub drops the future, whose destructor
    // spins until the test has seen the report.
    let id = victim.id();
    let killer = std::thread::spawn(move || victim.kill());
    let report = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the monitor reports the stall");
    stop.store(true, Ordering::Release);
    killer.join().unwrap();
    assert_eq!(report.task_name(), Some("victim"));
    assert_eq!(report.task_id(), id);
}

/// Waits for the first report whose task is not named in `passed_over`,
/// for at most 30 seconds, then sets `stop`.
fn first_report_but(
    rx: mpsc::Receiver<StallReport>,
    passed_over: &'static [&'static str],
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Option<StallReport>> {
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let report = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(r) if r.task_name().is_some_and(|n| passed_over.contains(&n)) => continue,
                other => break other.ok(),
            }
        };
        stop.store(true, Ordering::Release);
        report
    })
}

/// The root kills a task of its hub, whose destructor spins until the
/// stall is reported, after `work` of its own in the same poll: the
/// report names the task killed. The root's own poll may be reported
/// first (when `work` is long, or under miri's pace), and is passed over.
fn a_destructor_run_by_the_root_is_named(work: Duration) {
    let (rt, rx) = watched_hub();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_at_the_end = StopOnDrop(stop.clone());
    let watcher = first_report_but(rx, &["main"], stop.clone());
    let held = SpinsWhenDropped(stop.clone());
    let id = rt.block_on(async move {
        let victim = Builder::new()
            .name("victim")
            .spawn(async move {
                let _held = held;
                std::future::pending::<()>().await
            })
            .expect("on a hub");
        yield_now().await; // the victim holds its value by now
        drop(SpinsForAWhile(work, Arc::default()));
        let id = victim.id();
        // Dropped here, in this poll of the root: it spins.
        victim.kill();
        id
    });
    let report = watcher
        .join()
        .unwrap()
        .expect("the monitor reports the stall");
    assert_eq!(report.task_name(), Some("victim"));
    assert_eq!(report.task_id(), id);
}

#[test]
fn a_destructor_run_by_a_kill_from_a_task_is_named_by_the_stall_monitor() {
    a_destructor_run_by_the_root_is_named(Duration::ZERO);
}

#[test]
fn a_destructor_stuck_after_its_killer_worked_a_while_is_named() {
    // The killer's poll is timed from its start, the destructor from the
    // kill: the first to reach the limit is the poll (reported as the
    // root's), which must not keep the destructor, stuck, from being
    // reported by its own name. Half the limit of work is long enough for
    // the monitor to see the poll run.
    a_destructor_run_by_the_root_is_named(Duration::from_millis(10));
}

#[test]
fn a_destructor_run_after_the_root_panicked_is_named_by_the_stall_monitor() {
    let (rt, rx) = watched_hub();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_at_the_end = StopOnDrop(stop.clone());
    // The root's own poll may be reported first, and is passed over.
    let watcher = first_report_but(rx, &["main"], stop.clone());
    let held = SpinsWhenDropped(stop.clone());
    let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async move {
            Builder::new()
                .name("left")
                .spawn(async move {
                    let _held = held;
                    std::future::pending::<()>().await
                })
                .expect("on a hub");
            yield_now().await; // the task holds its value by now
            // Half the limit of work, long enough for the monitor to see
            // this poll run, then a panic. The hub tears down: the task is
            // killed, and its destructor spins, after this poll, which the
            // monitor must not take for a part of it.
            drop(SpinsForAWhile(Duration::from_millis(10), Arc::default()));
            // Unwinds without the panic hook, whose printing (of a
            // backtrace, say) would make the poll longer than the limit.
            std::panic::resume_unwind(Box::new("the root fails"));
        })
    }));
    assert!(ended.is_err());
    let report = watcher
        .join()
        .unwrap()
        .expect("the monitor reports the stall");
    assert_eq!(report.task_name(), Some("left"));
}

#[test]
fn a_destructor_that_kills_others_as_it_runs_is_named_by_the_stall_monitor() {
    // Killed from another thread, between polls: its destructor's stretch
    // is its own, also while it runs the destructors of the tasks it
    // kills in turn (whose own stretches are short, or passed over here
    // when a slow machine makes one a stall).
    let (rt, rx) = watched_hub();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_at_the_end = StopOnDrop(stop.clone());

    /// Kills its tasks one by one when dropped, with a little work before
    /// each kill, until its flag is set (then kills the rest at once, and
    /// waits for the flag if there were too few).
    struct KillsWhenDropped(Vec<greenrt::Greenlet<()>>, Arc<AtomicBool>);
    impl Drop for KillsWhenDropped {
        fn drop(&mut self) {
            for g in &self.0 {
                drop(SpinsForAWhile(Duration::from_millis(1), self.1.clone()));
                g.kill();
            }
            drop(SpinsWhenDropped(self.1.clone()));
        }
    }

    let (started, start) = mpsc::channel();
    let s = stop.clone();
    let outer = Builder::new()
        .name("outer")
        .spawn_in(&rt.handle(), async move {
            let victims = victims(200, &s, true);
            yield_now().await; // every victim holds its value by now
            let _kills = KillsWhenDropped(victims, s);
            started.send(()).unwrap();
            std::future::pending::<()>().await
        });
    start
        .recv_timeout(Duration::from_secs(30))
        .expect("the task runs");
    let watcher = first_report_but(rx, &["victim"], stop.clone());
    let id = outer.id();
    outer.kill();
    let report = watcher
        .join()
        .unwrap()
        .expect("the monitor reports the stall");
    assert_eq!(report.task_name(), Some("outer"), "{report}");
    assert_eq!(report.task_id(), id);
}

#[test]
fn a_slow_destructor_of_the_root_future_is_named_by_the_stall_monitor() {
    // The root's future is dropped after its last poll, with what it
    // holds: that drop is the root's.
    let (rt, rx) = watched_hub();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_at_the_end = StopOnDrop(stop.clone());
    let watcher = first_report_but(rx, &[], stop.clone());
    /// Ready at once, holding its value until dropped.
    struct Holds(#[expect(dead_code, reason = "held for its destructor")] SpinsWhenDropped);
    impl std::future::Future for Holds {
        type Output = ();
        fn poll(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<()> {
            std::task::Poll::Ready(())
        }
    }
    rt.block_on(Holds(SpinsWhenDropped(stop.clone())));
    let report = watcher
        .join()
        .unwrap()
        .expect("the monitor reports the stall");
    assert_eq!(report.task_name(), Some("main"));
}

/// Spins for a while (or until its flag is set) when dropped.
struct SpinsForAWhile(Duration, Arc<AtomicBool>);

/// `n` tasks on the current hub, named "victim" if `named`, pending for
/// good, each holding a [`SpinsForAWhile`] of 1 ms (or until `stop` is
/// set), which a kill drops. (The hog test's stay unnamed: named, its run
/// under miri did not see its report within its deadline.)
fn victims(n: usize, stop: &Arc<AtomicBool>, named: bool) -> Vec<greenrt::Greenlet<()>> {
    (0..n)
        .map(|_| {
            let held = SpinsForAWhile(Duration::from_millis(1), stop.clone());
            let body = async move {
                let _held = held;
                std::future::pending::<()>().await
            };
            if named {
                Builder::new().name("victim").spawn(body).expect("on a hub")
            } else {
                spawn(body)
            }
        })
        .collect()
}

impl Drop for SpinsForAWhile {
    fn drop(&mut self) {
        let t = std::time::Instant::now();
        while t.elapsed() < self.0 && !self.1.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
    }
}

#[test]
fn a_task_that_kills_others_as_it_runs_is_named_by_the_stall_monitor() {
    // Each kill runs its victim's destructor inside the killer's poll, a
    // stretch of its own for the monitor: the killer's poll, made of
    // stretches far below the limit, is a stall all the same, and the
    // killer's (though its victims' destructors take most of the time).
    let (rt, rx) = watched_hub();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_at_the_end = StopOnDrop(stop.clone());
    let s = stop.clone();
    let killing = Arc::new(AtomicBool::new(false));
    let k = killing.clone();
    let hog = Builder::new()
        .name("hog")
        .spawn_in(&rt.handle(), async move {
            let victims = victims(500, &s, false);
            yield_now().await; // every victim holds its value by now
            // Until the test has seen a report (or the victims run out):
            // a little work, then a kill, and again.
            let mut killed = 0;
            for victim in &victims {
                drop(SpinsForAWhile(Duration::from_micros(200), s.clone()));
                if s.load(Ordering::Acquire) {
                    break;
                }
                victim.kill();
                killed += 1;
                k.store(true, Ordering::Release);
            }
            killed
        });
    // A victim's destructor slow enough to be a stall of its own (under
    // miri's pace) is reported too, and so is the hog's first poll, which
    // spawns the victims, if it is that slow: both are passed over here.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let report = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(r) if r.task_name() != Some("hog") || !killing.load(Ordering::Acquire) => continue,
            other => break other,
        }
    };
    stop.store(true, Ordering::Release);
    let report = report.expect("the monitor reports the stall, naming the killer");
    assert_eq!(report.task_id(), hog.id());
    assert!(report.elapsed() >= Duration::from_millis(20));
    assert!(finished(hog).unwrap() > 0, "the hog killed as it ran");
}

/// Reports of one 200 ms stall, with the limit first set to 10 ms and then
/// to `limit`.
fn reports_of_a_stall(limit: Option<Duration>) -> usize {
    let (tx, rx) = mpsc::channel::<StallReport>();
    let tx = std::sync::Mutex::new(tx);
    let rt = Runtime::builder()
        .workers(1)
        .max_blocking_time(Duration::from_millis(10))
        .max_blocking_time(limit)
        .on_stall(move |r| drop(tx.lock().unwrap().send(r.clone())))
        .build()
        .unwrap();
    // A task that blocks its hub for twenty times the first limit (a real
    // sleep on purpose: it is the stall under test, not an ordering
    // device).
    let g = rt.spawn(async { std::thread::sleep(Duration::from_millis(200)) });
    joined(&g);
    drop(rt);
    rx.try_iter().count()
}

#[test]
fn stall_detection_can_be_turned_off() {
    // The same stall is reported under a limit (so the check below can
    // fail), and not once the limit is taken off.
    assert!(reports_of_a_stall(Some(Duration::from_millis(10))) >= 1);
    assert_eq!(reports_of_a_stall(None), 0);
}

#[test]
fn zero_max_blocking_time_is_refused() {
    let e = Runtime::builder()
        .max_blocking_time(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let e = Runtime::builder().workers(0).build().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    for n in [greenrt::MAX_WORKERS + 1, usize::MAX] {
        let e = Runtime::builder().workers(n).build().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{n}");
    }
}

#[test]
fn deadlock_names_the_blocked_tasks() {
    let err = try_run(async {
        let a = Builder::new()
            .name("fetch-1")
            .spawn(std::future::pending::<()>())
            .unwrap();
        let b = Builder::new()
            .name("fetch-2")
            .spawn(std::future::pending::<()>())
            .unwrap();
        joinall(&[a, b], None).await
    })
    .unwrap_err();
    let blocked = err.blocked().join(" | ");
    assert!(blocked.contains("'main'"), "{blocked}");
    assert!(blocked.contains("'fetch-1'"), "{blocked}");
    assert!(blocked.contains("'fetch-2'"), "{blocked}");
    assert_eq!(err.hub(), "main");
    assert!(err.to_string().contains("would block forever"));
}

#[test]
fn deadlock_through_a_chain_of_joins() {
    let err = try_run(async {
        let inner = Builder::new()
            .name("inner")
            .spawn(std::future::pending::<u8>())
            .unwrap();
        let outer = Builder::new().name("outer").spawn(inner).unwrap();
        yield_now().await;
        outer.await
    })
    .unwrap_err();
    let blocked = err.blocked().join(" | ");
    assert!(
        blocked.contains("'inner'") && blocked.contains("'outer'"),
        "{blocked}"
    );
}

#[test]
fn run_panics_with_the_deadlock_message() {
    let r = std::panic::catch_unwind(|| greenrt::run(std::future::pending::<()>()));
    let p = r.unwrap_err();
    let msg = p.downcast_ref::<String>().unwrap();
    assert!(
        msg.contains("would block forever") && msg.contains("'main'"),
        "{msg}"
    );
}

#[test]
fn an_unnamed_blocked_task_is_named_by_its_future_type() {
    async fn wait_forever() {
        std::future::pending::<()>().await
    }
    let err = try_run(async {
        let g = spawn(wait_forever());
        g.await
    })
    .unwrap_err();
    assert!(
        err.blocked().iter().any(|b| b.contains("wait_forever")),
        "{:?}",
        err.blocked()
    );
}

#[test]
fn a_wait_another_thread_can_end_is_not_a_deadlock() {
    let ev = Arc::new(Event::new());
    let (tx, rx) = mpsc::channel::<()>();
    let e = ev.clone();
    let setter = std::thread::spawn(move || {
        rx.recv().unwrap();
        e.set();
    });
    let r = try_run(async move {
        let e2 = ev.clone();
        let g = spawn(async move { e2.wait_async().await });
        yield_now().await; // the task now waits on the event
        tx.send(()).unwrap();
        g.await
    });
    assert_eq!(r, Ok(Ok(())));
    setter.join().unwrap();
}

#[test]
fn a_waker_dropped_outside_without_a_wake_up_leaves_a_deadlock_found() {
    // The root hands its waker to a thread, which drops it without waking
    // it: from then on nothing can wake the root. The hub, which saw the
    // waker held outside when it last looked, must look again.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (give, take) = mpsc::channel::<std::task::Waker>();
        let holder = std::thread::spawn(move || {
            let waker = take.recv().unwrap();
            // A lower bound, not an order the outcome depends on: past the
            // hub's first look (after 10 ms), so that it saw the waker.
            std::thread::sleep(Duration::from_millis(50));
            drop(waker);
        });
        let r = try_run(std::future::poll_fn(move |cx| {
            let _ = give.send(cx.waker().clone());
            std::task::Poll::<()>::Pending
        }));
        holder.join().unwrap();
        let _ = tx.send(r.is_err());
    });
    assert_deadlock(&rx);
}

#[test]
fn a_pending_timer_is_not_a_deadlock() {
    let r = try_run(async {
        greenrt::sleep(Duration::from_millis(1)).await;
        1
    });
    assert_eq!(r, Ok(1));
}

#[test]
fn deadlock_while_iterating_iwait() {
    use futures_core::Stream;
    let err = try_run(async {
        let gs = vec![
            Builder::new().name("quick").spawn(async {}).unwrap(),
            Builder::new()
                .name("never")
                .spawn(std::future::pending::<()>())
                .unwrap(),
        ];
        let mut s = std::pin::pin!(greenrt::iwait(&gs));
        let mut seen = Vec::new();
        while let Some(i) = std::future::poll_fn(|cx| s.as_mut().poll_next(cx)).await {
            seen.push(i);
        }
        seen
    })
    .unwrap_err();
    let blocked = err.blocked().join(" | ");
    assert!(
        blocked.contains("'never'") && !blocked.contains("'quick'"),
        "{blocked}"
    );
}

#[test]
fn an_iwait_read_to_its_last_greenlet_and_kept_leaves_a_deadlock_found() {
    use futures_core::Stream;
    // Read exactly as many times as there are greenlets, and kept: it
    // holds nothing that could wake the task, so a deadlock after it is
    // still found.
    let err = common::within_bound(|| {
        try_run(async {
            let gs = vec![spawn(async {}), spawn(async {})];
            let mut s = std::pin::pin!(greenrt::iwait(&gs));
            for _ in 0..gs.len() {
                std::future::poll_fn(|cx| s.as_mut().poll_next(cx)).await;
            }
            let stuck = Builder::new()
                .name("stuck")
                .spawn(std::future::pending::<()>())
                .unwrap();
            // (The stream lives on, to the end of the block.)
            let _ = stuck.await;
        })
        .map_err(|e| e.blocked().join(" | "))
    });
    let blocked = err.expect_err("a deadlock");
    assert!(blocked.contains("'stuck'"), "{blocked}");
}

#[test]
fn deadlock_of_a_task_iterating_iwait_names_it() {
    use futures_core::Stream;
    let err = try_run(async {
        let reader = Builder::new()
            .name("reader")
            .spawn(async {
                let gs: Vec<_> = (0..3)
                    .map(|i| {
                        Builder::new()
                            .name(format!("never-{i}"))
                            .spawn(std::future::pending::<()>())
                            .unwrap()
                    })
                    .collect();
                let mut s = std::pin::pin!(greenrt::iwait(&gs));
                std::future::poll_fn(|cx| s.as_mut().poll_next(cx)).await
            })
            .unwrap();
        reader.await
    })
    .unwrap_err();
    let blocked = err.blocked().join(" | ");
    for name in ["'reader'", "'never-0'", "'never-1'", "'never-2'"] {
        assert!(blocked.contains(name), "{name}: {blocked}");
    }
}

#[test]
fn block_on_in_a_runtime_reports_a_deadlock_of_its_own_tasks() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let err = rt
        .try_block_on(async {
            let g = Builder::new()
                .name("local-stuck")
                .spawn(std::future::pending::<()>())
                .unwrap();
            g.await
        })
        .unwrap_err();
    assert_eq!(err.hub(), "block_on");
    assert!(err.blocked().iter().any(|b| b.contains("'local-stuck'")));
    // The runtime is still usable afterwards.
    assert_eq!(rt.block_on(async { 5 }), 5);
}

#[test]
fn each_stall_is_reported_once() {
    let (tx, rx) = mpsc::channel::<StallReport>();
    let tx = std::sync::Mutex::new(tx);
    let rt = Runtime::builder()
        .workers(1)
        .max_blocking_time(Duration::from_millis(10))
        .on_stall(move |r| drop(tx.lock().unwrap().send(r.clone())))
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    // Two stalls of the same task, separated by a yield.
    let g = Builder::new()
        .name("twice")
        .spawn_in(&rt.handle(), async move {
            for round in 0..2 {
                while !s.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
                if round == 0 {
                    s.store(false, Ordering::Release);
                    yield_now().await;
                }
            }
        });
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("first stall");
    // Each stall goes on after its report (see `STALL_GOES_ON`).
    std::thread::sleep(STALL_GOES_ON);
    stop.store(true, Ordering::Release);
    let second = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("second stall");
    std::thread::sleep(STALL_GOES_ON);
    stop.store(true, Ordering::Release);
    finished(g).unwrap();
    assert_eq!(first.task_name(), Some("twice"));
    assert_eq!(second.task_name(), Some("twice"));
    assert!(rx.try_recv().is_err());
}

#[test]
fn a_sleep_moved_to_another_hub_leaves_no_timer_behind() {
    // On a thread of its own: a timer left behind would hide the deadlock
    // for an hour, and the test fails on the channel's bound instead.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = Runtime::builder().workers(1).build().unwrap();
        let r = try_run(async move {
            // Armed here, on the root's hub...
            let s = armed_for_an_hour().await;
            // ...then moved to a worker of another runtime and dropped there.
            rt.spawn_on(0, async move { drop(s) }).await.unwrap();
            std::future::pending::<()>().await
        });
        let _ = tx.send(r.is_err());
    });
    assert_deadlock(&rx);
}

/// An hour-long sleep, polled once here (so armed on this hub).
async fn armed_for_an_hour() -> std::pin::Pin<Box<greenrt::time::Sleep>> {
    let mut s = Box::pin(greenrt::sleep(Duration::from_secs(3600)));
    let pending =
        std::future::poll_fn(|cx| std::task::Poll::Ready(s.as_mut().poll(cx).is_pending())).await;
    assert!(pending);
    s
}

/// That `rx` says, within its bound, that the hub found a deadlock.
fn assert_deadlock(rx: &mpsc::Receiver<bool>) {
    let deadlock = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the hub found the deadlock");
    assert!(deadlock);
}

#[test]
fn a_sleep_moved_off_its_hub_leaves_no_timer_behind() {
    // As above, with the sleep then polled on a plain thread, which waits
    // with a helper thread of its own.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = try_run(async move {
            let mut s = armed_for_an_hour().await;
            let moved = std::thread::spawn(move || {
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                let pending = s.as_mut().poll(&mut cx).is_pending();
                drop(s);
                pending
            });
            assert!(moved.join().unwrap());
            std::future::pending::<()>().await
        });
        let _ = tx.send(r.is_err());
    });
    assert_deadlock(&rx);
}

#[test]
fn a_task_woken_by_iwait_that_then_waits_elsewhere_is_not_a_deadlock() {
    use futures_core::Stream;
    let gate = Arc::new(Event::new());
    let outside = Arc::new(Event::new());
    let (waiting_tx, waiting) = mpsc::channel();
    let (result_tx, result) = mpsc::channel();
    let (g, o) = (gate.clone(), outside.clone());
    std::thread::spawn(move || {
        let r = try_run(async move {
            let gs = vec![spawn(async {}), spawn(async move { g.wait_async().await })];
            let mut s = std::pin::pin!(greenrt::iwait(&gs));
            let first = std::future::poll_fn(|cx| s.as_mut().poll_next(cx)).await;
            assert_eq!(first, Some(0));
            // The second greenlet ends while the root waits on an event
            // only another thread sets: no deadlock, whatever the root's
            // waker in the iwait's keeping says.
            waiting_tx.send(()).unwrap();
            o.wait_async().await;
        });
        let _ = result_tx.send(r.is_ok());
    });
    waiting.recv_timeout(Duration::from_secs(60)).unwrap();
    gate.set();
    // A wrong diagnosis comes within the hub's quiet time (10 ms); the
    // right answer is no answer until the event is set.
    assert!(
        result.recv_timeout(Duration::from_millis(500)).is_err(),
        "a deadlock was reported while another thread could still wake the root"
    );
    outside.set();
    assert_eq!(result.recv_timeout(Duration::from_secs(60)), Ok(true));
}

/// Runs `root` on a hub of its own thread, after which it waits (in the
/// way the caller chose) for greenlets that never end and for `outside`;
/// checks that no deadlock is reported until `outside` is set.
fn no_deadlock_until_set(
    root: impl FnOnce(Arc<Event>) -> std::pin::Pin<Box<dyn Future<Output = ()>>> + Send + 'static,
) {
    let outside = Arc::new(Event::new());
    let (result_tx, result) = mpsc::channel();
    let o = outside.clone();
    std::thread::spawn(move || {
        let _ = result_tx.send(try_run(root(o)).is_ok());
    });
    // A wrong diagnosis comes within the hub's quiet time (10 ms); the
    // right answer is no answer until the event is set.
    assert!(
        result.recv_timeout(Duration::from_millis(500)).is_err(),
        "a deadlock was reported while another thread could still wake the root"
    );
    outside.set();
    assert_eq!(result.recv_timeout(Duration::from_secs(60)), Ok(true));
}

#[test]
fn greenlets_awaited_under_a_combinators_wakers_are_not_a_deadlock() {
    use futures_util::StreamExt;
    use futures_util::stream::FuturesUnordered;
    // `FuturesUnordered` polls each greenlet with a waker of its own; the
    // root's waker is held once, by the combinator, and once by the event.
    no_deadlock_until_set(|outside| {
        Box::pin(async move {
            let mut all: FuturesUnordered<_> = (0..2)
                .map(|_| spawn(std::future::pending::<()>()))
                .collect();
            let first = all.next();
            let stop = outside.wait_async();
            futures_util::pin_mut!(first, stop);
            futures_util::future::select(first, stop).await;
        })
    });
}

#[test]
fn iwaits_polled_under_a_combinators_wakers_are_not_a_deadlock() {
    use futures_util::StreamExt;
    use futures_util::stream::FuturesUnordered;
    no_deadlock_until_set(|outside| {
        Box::pin(async move {
            let gs: Vec<_> = (0..2)
                .map(|_| spawn(std::future::pending::<()>()))
                .collect();
            let mut all: FuturesUnordered<_> = gs
                .chunks(1)
                .map(|g| greenrt::iwait(g).into_future())
                .collect();
            let first = all.next();
            let stop = outside.wait_async();
            futures_util::pin_mut!(first, stop);
            futures_util::future::select(first, stop).await;
        })
    });
}

#[test]
fn a_nested_run_waiting_for_a_task_of_the_hub_it_holds_is_a_deadlock() {
    use futures_core::Stream;
    // The outer hub's task can run only once the nested run returns: an
    // await, a `joinall` and an `iwait` of it from there wait for good.
    let errs = common::within_bound(|| {
        try_run(async {
            let g = Builder::new()
                .name("outer-task")
                .spawn(async { 1 })
                .unwrap();
            let awaited = try_run(async { (&mut { g }).await }).map(drop);
            let g = Builder::new()
                .name("outer-task")
                .spawn(async { 1 })
                .unwrap();
            let joined = try_run(async { joinall(std::slice::from_ref(&g), None).await }).map(drop);
            let iwaited = try_run(async {
                let mut s = std::pin::pin!(greenrt::iwait(std::slice::from_ref(&g)));
                std::future::poll_fn(|cx| s.as_mut().poll_next(cx)).await
            })
            .map(drop);
            [awaited, joined, iwaited]
        })
        .expect("the outer run ends")
    });
    for e in errs {
        let e = e.expect_err("a deadlock");
        assert_eq!(e.blocked().len(), 1, "{e}");
        assert!(e.blocked()[0].contains("'main'"), "{e}");
    }
}

#[test]
fn a_runtimes_block_on_inside_its_task_waiting_for_a_task_of_that_hub_is_a_deadlock() {
    let rt = Arc::new(Runtime::builder().workers(1).build().unwrap());
    let rt2 = rt.clone();
    let g = rt.spawn(async move {
        let local = Builder::new().name("held").spawn(async { 1 }).unwrap();
        rt2.try_block_on(local).map(drop)
    });
    let e = finished(g).unwrap().expect_err("a deadlock");
    assert_eq!(e.hub(), "block_on");
}

#[test]
fn the_drop_of_a_detached_tasks_output_is_named_by_the_stall_monitor() {
    let (rt, rx) = watched_hub();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_at_the_end = StopOnDrop(stop.clone());
    // The hub's own poll may be reported first, under miri's pace, and is
    // passed over.
    let watcher = first_report_but(rx, &["main"], stop.clone());
    let s = stop.clone();
    let go = Arc::new(Event::new());
    let g2 = go.clone();
    let g = Builder::new()
        .name("output")
        .spawn_in(&rt.handle(), async move {
            g2.wait_async().await;
            SpinsWhenDropped(s)
        });
    let id = g.id();
    // Nobody takes the output: the hub drops it, and its destructor spins
    // until the test has seen the report.
    drop(g);
    go.set();
    let report = watcher
        .join()
        .unwrap()
        .expect("the monitor reports the stall");
    assert_eq!(report.task_name(), Some("output"));
    assert_eq!(report.task_id(), id);
}

#[test]
fn a_builders_run_applies_its_stall_settings_on_the_calling_thread() {
    let reported = Arc::new(Event::new());
    let r2 = reported.clone();
    let (tx, rx) = mpsc::channel::<StallReport>();
    let tx = std::sync::Mutex::new(tx);
    let caller = std::thread::current().id();
    let (hub, on_caller) = Runtime::builder()
        .max_blocking_time(Duration::from_millis(20))
        .on_stall(move |r| {
            // The root's own poll may be reported too, under miri's pace.
            if r.task_name() == Some("spinner") {
                drop(tx.lock().unwrap().send(r.clone()));
                r2.set();
            }
        })
        .run(async {
            let spinner = Builder::new()
                .name("spinner")
                .spawn(async move {
                    // Spins without yielding until the callback was called.
                    reported.wait_timeout(Duration::from_secs(60))
                })
                .unwrap();
            let seen = spinner.await.unwrap();
            (seen, std::thread::current().id() == caller)
        });
    assert!(hub, "the report never came");
    assert!(on_caller, "the hub ran on another thread");
    let report = rx
        .try_recv()
        .expect("the report was sent before the event was set");
    assert_eq!(
        (report.task_name(), report.hub()),
        (Some("spinner"), "main")
    );
    // And its deadlocks are values with `try_run`.
    let stuck = Runtime::builder().try_run(std::future::pending::<()>());
    assert!(stuck.is_err());
}

#[test]
fn a_callback_whose_panic_cannot_be_dropped_leaves_the_monitor_running() {
    /// A panic payload whose own destructor panics.
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("the payload's destructor panics");
            }
        }
    }
    let (first, again) = (Arc::new(Event::new()), Arc::new(Event::new()));
    let (f2, a2) = (first.clone(), again.clone());
    let rt = Runtime::builder()
        .workers(1)
        .max_blocking_time(Duration::from_millis(20))
        .on_stall(move |_| {
            if f2.is_set() {
                a2.set();
            } else {
                f2.set();
                std::panic::panic_any(PanicsOnDrop);
            }
        })
        .build()
        .unwrap();
    // Each task holds its hub until the callback was called (the monitor
    // is shared by the process: a monitor thread that died would report
    // no stall again, and the second wait would run out).
    let stalls = |e: Arc<Event>| rt.spawn(async move { e.wait_timeout(Duration::from_secs(60)) });
    assert_eq!(
        finished(stalls(first)),
        Ok(true),
        "the first stall was reported"
    );
    assert_eq!(
        finished(stalls(again)),
        Ok(true),
        "a stall after the callback's panic was reported"
    );
}
