//! greenrt's `iwait` (a coro async generator) and `joinall` over greenlets,
//! on a manual clock: completion order without real sleeps.

use std::future::poll_fn;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_core::Stream;
use greenrt::time::ManualClock;
use greenrt::{Runtime, iwait, sleep, spawn};

fn test_rt(clock: &ManualClock) -> Runtime {
    Runtime::builder()
        .workers(1)
        .clock(clock.clone())
        .build()
        .unwrap()
}

async fn collect<S: Stream<Item = usize>>(s: S) -> Vec<usize> {
    let mut s = pin!(s);
    let mut out = Vec::new();
    while let Some(i) = poll_fn(|cx| s.as_mut().poll_next(cx)).await {
        out.push(i);
    }
    out
}

#[test]
fn iwait_yields_in_completion_order() {
    let clock = ManualClock::new();
    let rt = test_rt(&clock);
    let order = rt.block_on(async {
        let gs: Vec<_> = [4u64, 1, 3, 2, 5]
            .into_iter()
            .map(|s| spawn(async move { sleep(Duration::from_secs(s)).await }))
            .collect();
        collect(iwait(&gs)).await
    });
    assert_eq!(order, [1, 3, 2, 0, 4]);
    assert_eq!(clock.elapsed(), Duration::from_secs(5));
}

#[test]
fn iwait_includes_failed_and_already_finished_tasks() {
    let clock = ManualClock::new();
    let rt = test_rt(&clock);
    let (order, results) = rt.block_on(async {
        let mut gs = vec![
            spawn(async {
                sleep(Duration::from_secs(2)).await;
                0u8
            }),
            spawn(async { panic!("task 1 fails") }),
            spawn(async { 2u8 }),
        ];
        greenrt::yield_now().await; // tasks 1 and 2 finish now
        let order = collect(iwait(&gs)).await;
        let results: Vec<_> = gs
            .iter_mut()
            .map(|g| g.try_get().unwrap().is_ok())
            .collect();
        (order, results)
    });
    // 1 and 2 were finished when iwait started (in the order they ran),
    // then 0.
    assert_eq!(order, [1, 2, 0]);
    assert_eq!(results, [true, false, true]);
}

#[test]
fn a_slow_reader_of_iwait_still_gets_completion_order() {
    let clock = ManualClock::new();
    let rt = test_rt(&clock);
    let order = rt.block_on(async {
        let gs: Vec<_> = [30u64, 10, 20]
            .into_iter()
            .map(|s| spawn(async move { sleep(Duration::from_secs(s)).await }))
            .collect();
        let mut s = pin!(iwait(&gs));
        let first = poll_fn(|cx| s.as_mut().poll_next(cx)).await;
        // Away long enough for both others to finish, 20 before 30.
        sleep(Duration::from_secs(50)).await;
        let mut order = vec![first.unwrap()];
        while let Some(i) = poll_fn(|cx| s.as_mut().poll_next(cx)).await {
            order.push(i);
        }
        order
    });
    assert_eq!(order, [1, 2, 0]);
}

#[test]
fn iwait_of_nothing_ends_at_once() {
    let order = greenrt::run(async {
        let gs: Vec<greenrt::Greenlet<()>> = Vec::new();
        collect(iwait(&gs)).await
    });
    assert!(order.is_empty());
}

#[test]
fn dropping_iwait_early_leaves_the_rest_awaitable() {
    let clock = ManualClock::new();
    let rt = test_rt(&clock);
    rt.block_on(async {
        let gs: Vec<_> = (1..=3u64)
            .map(|s| spawn(async move { sleep(Duration::from_secs(s)).await }))
            .collect();
        {
            let mut s = pin!(iwait(&gs));
            let first = poll_fn(|cx| s.as_mut().poll_next(cx)).await;
            assert_eq!(first, Some(0));
        } // the generator and its pending waits are dropped here
        // The remaining tasks still complete and can be awaited.
        for g in gs {
            g.await.unwrap();
        }
    });
}

#[test]
fn a_task_of_a_runtime_holds_iwait_across_its_awaits() {
    // `Runtime::spawn` takes `Send` futures only: this compiles only if
    // the stream is `Send`, whatever the greenlets' output.
    let clock = ManualClock::new();
    let rt = test_rt(&clock);
    let gs: Vec<_> = [3u64, 1, 2]
        .into_iter()
        .map(|s| rt.spawn(async move { sleep(Duration::from_secs(s)).await }))
        .collect();
    let order = rt.spawn(async move { collect(iwait(&gs)).await });
    assert_eq!(tests::finished(order), Ok(vec![1, 2, 0]));
}

#[test]
fn greenlets_finishing_on_another_hub_while_iwait_looks_come_in_their_order() {
    // Hub 0 runs the greenlets, one at a time, so the order of `log` is
    // the order they finished in; a task of hub 1 reads `iwait`, whose
    // first poll looks at each of them while hub 0 finishes them (greenlet
    // 0 among the first, after the look found it pending). Repeated,
    // within a bound, since the two threads' pace decides what one round
    // covers; on code that returned what its first look found complete
    // before what finished during that look, most runs failed.
    const N: usize = 10_000;
    let rt = Runtime::builder().workers(2).build().unwrap();
    for round in 0..20 {
        let gate = Arc::new(sync_prims::Event::new());
        let log = Arc::new(Mutex::new(Vec::with_capacity(N)));
        let gs: Vec<_> = (0..N)
            .map(|i| {
                let (gate, log) = (gate.clone(), log.clone());
                rt.spawn_on(0, async move {
                    gate.wait_async().await;
                    // Interleaved: 0, 5, 10, ... finish first.
                    for _ in 0..(N - i) % 5 {
                        greenrt::yield_now().await;
                    }
                    log.lock().unwrap().push(i);
                })
            })
            .collect();
        let order = rt.spawn_on(1, async move {
            let mut s = pin!(iwait(&gs));
            gate.set();
            let mut out = Vec::with_capacity(N);
            while let Some(i) = poll_fn(|cx| s.as_mut().poll_next(cx)).await {
                out.push(i);
            }
            out
        });
        let order = tests::finished(order).unwrap();
        let log = log.lock().unwrap();
        if let Some(k) = order.iter().zip(log.iter()).position(|(a, b)| a != b) {
            panic!(
                "round {round}: iwait gave {:?} at {k}, where they finished as {:?}",
                &order[k..(k + 3).min(N)],
                &log[k..(k + 3).min(N)]
            );
        }
        assert_eq!(order.len(), N);
    }
}
