//! Python's generator semantics, one test per row.

use std::cell::Cell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use coro::{Co, Gen, GenError, GenState};
use futures_util::stream::{FuturesUnordered, StreamExt};

/// Counts its drops.
struct Tracked(Rc<Cell<u32>>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

fn counter() -> Rc<Cell<u32>> {
    Rc::new(Cell::new(0))
}

/// Yields 1, 2, 3 and returns the sum of what it was sent.
fn summer() -> Gen<u32, u32, u32> {
    Gen::new(|co| async move {
        let mut sum = 0;
        for y in 1..=3 {
            sum += co.yield_(y).await;
        }
        sum
    })
}

#[test]
fn first_resume_must_be_start() {
    let mut g = summer();
    // Python: TypeError: can't send non-None value to a just-started generator.
    assert_eq!(g.send(10), Err(GenError::NotStarted));
    assert!(!g.is_started() && !g.is_complete());
    // The failed send changed nothing.
    assert_eq!(g.start(), Ok(GenState::Yielded(1)));
    assert_eq!(g.start(), Err(GenError::AlreadyStarted));
    assert_eq!(g.send(10), Ok(GenState::Yielded(2)));
}

/// Drives a generator that yields 1, 2 and 3 and returns the sum of the
/// values sent (10, 20 and 30).
fn yields_1_2_3_and_sums_the_sends(g: &mut Gen<u32, u32, u32>) {
    assert_eq!(g.start(), Ok(GenState::Yielded(1)));
    assert_eq!(g.send(10), Ok(GenState::Yielded(2)));
    assert_eq!(g.send(20), Ok(GenState::Yielded(3)));
    assert_eq!(g.send(30), Ok(GenState::Complete(60)));
}

#[test]
fn completion_carries_the_return_value() {
    let mut g = summer();
    // Python: StopIteration(60), after yields of 1, 2 and 3.
    yields_1_2_3_and_sums_the_sends(&mut g);
    assert!(g.is_complete());
}

#[test]
fn send_after_completion_is_finished() {
    let mut g: Gen<u32, &str> = Gen::new(|_co| async { "done" });
    assert_eq!(g.start(), Ok(GenState::Complete("done")));
    for _ in 0..3 {
        assert_eq!(g.send(()), Err(GenError::Finished));
        assert_eq!(g.start(), Err(GenError::Finished));
    }
}

#[test]
fn close_runs_destructors_exactly_once_and_later_resumes_are_finished() {
    let drops = counter();
    let held = Tracked(drops.clone());
    let mut g: Gen<u32> = Gen::new(move |co| async move {
        let _held = held;
        loop {
            co.yield_(7).await;
        }
    });
    assert_eq!(g.start(), Ok(GenState::Yielded(7)));
    assert_eq!(drops.get(), 0);
    g.close();
    assert_eq!(drops.get(), 1);
    assert!(g.is_complete());
    g.close();
    assert_eq!(g.send(()), Err(GenError::Finished));
    drop(g);
    assert_eq!(drops.get(), 1);
}

#[test]
fn close_before_start_drops_what_the_body_captured() {
    let drops = counter();
    let held = Tracked(drops.clone());
    let mut g: Gen<u32> = Gen::new(move |co| async move {
        let _held = held;
        co.yield_(1).await;
    });
    g.close();
    assert_eq!(drops.get(), 1);
    assert_eq!(g.start(), Err(GenError::Finished));
}

#[test]
fn throw_lands_at_the_yield_and_propagates_with_question_mark() {
    let drops = counter();
    let held = Tracked(drops.clone());
    let mut g: Gen<u32, Result<u32, String>, Result<u32, String>> =
        Gen::new(move |co| async move {
            let _held = held;
            let mut total = 0;
            loop {
                total += co.yield_(total).await?;
                if total > 100 {
                    return Ok(total);
                }
            }
        });
    assert_eq!(g.throw("early".into()), Err(GenError::NotStarted));
    assert_eq!(g.start(), Ok(GenState::Yielded(0)));
    assert_eq!(g.send(Ok(5)), Ok(GenState::Yielded(5)));
    assert_eq!(
        g.throw("boom".into()),
        Ok(GenState::Complete(Err("boom".into())))
    );
    // The body unwound its frame as it returned.
    assert_eq!(drops.get(), 1);
    assert_eq!(g.throw("again".into()), Err(GenError::Finished));
}

#[test]
fn a_thrown_error_can_be_handled_by_the_body() {
    let mut g: Gen<&str, u32, Result<u32, &str>> = Gen::new(|co| async move {
        let mut errors = 0;
        loop {
            match co.yield_("waiting").await {
                Ok(0) => return errors,
                Ok(_) => {}
                Err(_) => errors += 1,
            }
        }
    });
    g.start().unwrap();
    assert_eq!(g.throw("a"), Ok(GenState::Yielded("waiting")));
    assert_eq!(g.send(Ok(3)), Ok(GenState::Yielded("waiting")));
    assert_eq!(g.throw("b"), Ok(GenState::Yielded("waiting")));
    assert_eq!(g.send(Ok(0)), Ok(GenState::Complete(2)));
}

/// Yields `base`, `base + 1`, ... `count` times, collecting what it is sent;
/// returns the collected values.
fn recorder(base: u32, count: u32) -> Gen<u32, Vec<u32>, u32> {
    Gen::new(move |co| async move {
        let mut got = Vec::new();
        for i in 0..count {
            got.push(co.yield_(base + i).await);
        }
        got
    })
}

#[test]
fn yield_from_forwards_yields_and_sends_and_returns_the_inner_value() {
    let mut outer: Gen<u32, (Vec<u32>, u32), u32> = Gen::new(|co| async move {
        let before = co.yield_(0).await;
        let inner = co.yield_from(recorder(10, 3)).await;
        let after = co.yield_(99).await;
        (inner, before + after)
    });
    assert_eq!(outer.start(), Ok(GenState::Yielded(0)));
    assert_eq!(outer.send(1), Ok(GenState::Yielded(10)));
    assert_eq!(outer.send(100), Ok(GenState::Yielded(11)));
    assert_eq!(outer.send(101), Ok(GenState::Yielded(12)));
    assert_eq!(outer.send(102), Ok(GenState::Yielded(99)));
    assert_eq!(
        outer.send(2),
        Ok(GenState::Complete((vec![100, 101, 102], 3)))
    );
}

#[test]
fn yield_from_an_empty_generator_returns_at_once() {
    let mut outer: Gen<u32, Vec<u32>, u32> = Gen::new(|co| async move {
        let got = co.yield_from(recorder(0, 0)).await;
        co.yield_(5).await;
        got
    });
    assert_eq!(outer.start(), Ok(GenState::Yielded(5)));
    assert_eq!(outer.send(0), Ok(GenState::Complete(vec![])));
}

/// A chain of `depth` delegations: each level yields what the one below
/// yields, and returns one more than it (the innermost yields 1, returns
/// the value sent, and panics instead when `panics`).
fn chain(depth: u32, panics: bool) -> Gen<u32, u32, u32> {
    Gen::new(move |co| async move {
        if depth == 0 {
            let sent = co.yield_(1).await;
            assert!(!panics, "the innermost body fails on purpose");
            sent
        } else {
            co.yield_from(chain(depth - 1, panics)).await + 1
        }
    })
}

#[test]
fn yield_from_deeper_than_the_limit_is_an_error_not_a_stack_overflow() {
    use coro::MAX_DELEGATION_DEPTH as MAX;
    // On a stack the size of a spawned thread's, in any build: the limit
    // is what keeps it from overflowing.
    let run = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let mut ok = chain(MAX, false);
            assert_eq!(ok.start(), Ok(GenState::Yielded(1)));
            assert_eq!(ok.send(5), Ok(GenState::Complete(5 + MAX)));

            let mut deep = chain(MAX + 1, false);
            assert_eq!(deep.start(), Err(GenError::TooDeep));
            assert!(deep.is_complete());
            assert_eq!(deep.send(5), Err(GenError::Finished));

            // A panic inside the chain gives its levels back: the whole
            // depth is there again afterwards.
            let mut failing = chain(MAX, true);
            assert_eq!(failing.start(), Ok(GenState::Yielded(1)));
            assert!(catch_unwind(AssertUnwindSafe(|| failing.send(0))).is_err());
            let mut again = chain(MAX, false);
            assert_eq!(again.start(), Ok(GenState::Yielded(1)));
            assert_eq!(again.send(0), Ok(GenState::Complete(MAX)));
        })
        .unwrap();
    run.join().unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "miri's locals are not laid out on a stack")]
fn yield_from_whose_levels_take_much_stack_stops_before_it_overflows() {
    /// As `chain`, with a 4 KiB array on the stack of every level's poll.
    fn heavy(depth: u32) -> Gen<u32, u32, u32> {
        Gen::new(move |co| async move {
            let sum: u32 = std::hint::black_box([1u8; 4096])
                .iter()
                .map(|&b| u32::from(b))
                .sum();
            if depth == 0 {
                co.yield_(sum).await
            } else {
                co.yield_from(heavy(depth - 1)).await
            }
        })
    }
    // Well within the depth limit, but 400 levels of 4 KiB overflow a
    // spawned thread's 2 MiB in a debug build: the stack the chain uses
    // stops it first, in any build.
    let run = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let mut shallow = heavy(20);
            assert_eq!(shallow.start(), Ok(GenState::Yielded(4096)));
            assert_eq!(shallow.send(7), Ok(GenState::Complete(7)));
            let mut deep = heavy(400);
            assert_eq!(deep.start(), Err(GenError::TooDeep));
            assert!(deep.is_complete());
        })
        .unwrap();
    run.join().unwrap();
}

#[test]
fn nested_yield_from_three_deep() {
    fn level(depth: u32) -> Gen<u32, u32, u32> {
        Gen::new(move |co| async move {
            let mine = co.yield_(depth * 100).await;
            let below = if depth == 0 {
                0
            } else {
                co.yield_from(level(depth - 1)).await
            };
            let last = co.yield_(depth * 100 + 1).await;
            mine + below + last
        })
    }
    let mut g = level(3);
    let mut seen = Vec::new();
    let mut step = g.start();
    let mut n = 0;
    let total = loop {
        match step {
            Ok(GenState::Yielded(y)) => {
                seen.push(y);
                n += 1;
                step = g.send(n);
            }
            Ok(GenState::Complete(r)) => break r,
            Err(e) => panic!("unexpected {e}"),
        }
    };
    assert_eq!(seen, [300, 200, 100, 0, 1, 101, 201, 301]);
    // Every value sent reached the level that yielded: 1 + ... + 8.
    assert_eq!(total, 36);
}

#[test]
fn yield_from_a_started_generator_is_misuse() {
    let mut inner = recorder(0, 2);
    inner.start().unwrap();
    let mut outer: Gen<u32, Vec<u32>, u32> =
        Gen::new(move |co| async move { co.yield_from(inner).await });
    assert_eq!(outer.start(), Err(GenError::Misuse));
    assert_eq!(outer.send(1), Err(GenError::Finished));
}

#[test]
fn a_panic_in_the_body_reaches_the_resumer_and_finishes_the_generator() {
    let drops = counter();
    let held = Tracked(drops.clone());
    let mut g: Gen<u32, (), u32> = Gen::new(move |co| async move {
        let _held = held;
        let v = co.yield_(1).await;
        assert!(v < 10, "sent {v}");
        co.yield_(2).await;
    });
    g.start().unwrap();
    let caught = catch_unwind(AssertUnwindSafe(|| g.send(50)));
    let msg = caught.expect_err("the panic propagates");
    assert_eq!(
        msg.downcast_ref::<String>().map(String::as_str),
        Some("sent 50")
    );
    assert!(g.is_complete());
    assert_eq!(drops.get(), 1);
    assert_eq!(g.send(1), Err(GenError::Finished));
    drop(g);
    assert_eq!(drops.get(), 1);
}

#[test]
fn awaiting_a_pending_foreign_future_is_an_error_not_a_hang() {
    let drops = counter();
    let held = Tracked(drops.clone());
    let mut g: Gen<u32> = Gen::new(move |co| async move {
        let _held = held;
        co.yield_(1).await;
        std::future::pending::<()>().await;
        co.yield_(2).await;
    });
    assert_eq!(g.start(), Ok(GenState::Yielded(1)));
    assert_eq!(g.send(()), Err(GenError::Blocked));
    assert_eq!(drops.get(), 1, "the blocked body was dropped");
    assert_eq!(g.send(()), Err(GenError::Finished));
}

#[test]
fn ready_foreign_futures_are_fine_in_a_sync_generator() {
    async fn double(x: u32) -> u32 {
        x * 2
    }
    let g: Gen<u32> = Gen::new(|co| async move {
        for i in 0..3 {
            co.yield_(double(i).await).await;
        }
    });
    assert_eq!(g.collect::<Vec<_>>(), [0, 2, 4]);
}

/// Polls its future with a context of its own, as an executor or a
/// combinator with wakers of its own (`FuturesUnordered`) does.
struct OwnContext<F>(F);

impl<F: Future + Unpin> Future for OwnContext<F> {
    type Output = F::Output;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let mut own = std::task::Context::from_waker(std::task::Waker::noop());
        std::pin::Pin::new(&mut self.0).poll(&mut own)
    }
}

#[test]
fn a_yield_polled_under_a_context_made_in_a_sync_body_reaches_its_generator() {
    // A synchronous generator's frame travels in the context its resume
    // gives the body; a yield polled under another context still finds it.
    let mut g: Gen<u32, u32, u32> = Gen::new(|co| async move {
        let a = co.yield_(1).await;
        let b = OwnContext(co.yield_(a)).await;
        let c = co.yield_(a + b).await;
        a + b + c
    });
    assert_eq!(g.start(), Ok(GenState::Yielded(1)));
    assert_eq!(g.send(5), Ok(GenState::Yielded(5)));
    assert_eq!(g.send(7), Ok(GenState::Yielded(12)));
    assert_eq!(g.send(100), Ok(GenState::Complete(112)));
    assert_eq!(g.send(0), Err(GenError::Finished));
}

#[test]
fn every_yield_under_a_context_of_the_body_s_own_from_the_first() {
    // The first resume finds such a yield (and every later one publishes
    // the frame from the start).
    let g: Gen<u32> = Gen::new(|co| async move {
        for i in 0..4 {
            OwnContext(co.yield_(i)).await;
            co.yield_(10 + i).await;
        }
    });
    assert_eq!(g.collect::<Vec<_>>(), [0, 10, 1, 11, 2, 12, 3, 13]);
}

#[test]
fn yields_polled_by_futures_unordered_in_a_sync_body_flow_both_ways() {
    // `FuturesUnordered` polls its futures with wakers of its own, and
    // polls again only those that were woken.
    let mut g: Gen<u32, u32, u32> = Gen::new(|co| async move {
        let mut total = 0;
        for i in 1..=3 {
            let mut set = FuturesUnordered::new();
            set.push(co.yield_(i));
            total += set.next().await.expect("one yield in the set");
        }
        total
    });
    yields_1_2_3_and_sums_the_sends(&mut g);
}

#[test]
fn a_yield_from_under_a_context_of_the_body_s_own_forwards_both_ways() {
    let mut g: Gen<u32, Vec<u32>, u32> = Gen::new(|co| async move {
        let mut set = FuturesUnordered::new();
        set.push(co.yield_from(recorder(0, 2)));
        set.next().await.expect("one delegation in the set")
    });
    assert_eq!(g.start(), Ok(GenState::Yielded(0)));
    assert_eq!(g.send(7), Ok(GenState::Yielded(1)));
    assert_eq!(g.send(8), Ok(GenState::Complete(vec![7, 8])));
}

#[test]
fn a_yield_polled_on_another_thread_never_reaches_the_resumer_s_frame() {
    // The body lends its context's waker to a scoped thread, which polls a
    // yield with it while the resume runs: were the frame the waker
    // carries reached from there, values would move between threads
    // through it.
    let mut g: Gen<u32, bool> = Gen::new(|co| async move {
        let other_thread_panicked = std::future::poll_fn(|cx| {
            let waker = cx.waker();
            let co = &co;
            let joined = std::thread::scope(|s| {
                s.spawn(move || {
                    let mut y = std::pin::pin!(co.yield_(7));
                    let _ = y.as_mut().poll(&mut std::task::Context::from_waker(waker));
                })
                .join()
            });
            std::task::Poll::Ready(joined.is_err())
        })
        .await;
        co.yield_(1).await;
        other_thread_panicked
    });
    // Outside its generator's thread the yield is outside its generator:
    // it panics there, and the body goes on with its frame untouched.
    assert_eq!(g.start(), Ok(GenState::Yielded(1)));
    assert_eq!(g.send(()), Ok(GenState::Complete(true)));
}

/// A `Co` that outlived its generator: the body returned it, and the
/// generator is gone.
fn escaped_co() -> Co<u32> {
    let mut leaker: Gen<u32, Co<u32>> = Gen::new(|co| async move { co });
    let Ok(GenState::Complete(escaped)) = leaker.start() else {
        panic!("leaker returns its Co")
    };
    escaped
}

#[test]
fn another_generators_co_under_a_context_of_the_body_s_own_is_misuse() {
    let escaped = escaped_co();
    let mut other: Gen<u32> = Gen::new(move |co| async move {
        co.yield_(1).await;
        OwnContext(escaped.yield_(5)).await;
    });
    assert_eq!(other.start(), Ok(GenState::Yielded(1)));
    assert_eq!(other.send(()), Err(GenError::Misuse));
    assert!(other.is_complete());
}

#[test]
fn a_blocking_executor_inside_a_sync_body_panics_rather_than_hangs() {
    // `block_on` polls the yield until it is ready, which it can only be
    // once the generator is resumed, by its caller, on this same thread.
    let mut g: Gen<u32, u32, u32> = Gen::new(|co| async move {
        let a = co.yield_(1).await;
        futures_executor::block_on(co.yield_(a))
    });
    assert_eq!(g.start(), Ok(GenState::Yielded(1)));
    let err = catch_unwind(AssertUnwindSafe(|| g.send(5))).expect_err("block_on panics");
    let msg = err.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("blocking executor"), "{msg}");
    assert!(g.is_complete());
    assert_eq!(g.send(7), Err(GenError::Finished));
}

#[test]
fn a_blocking_executor_polling_two_generators_yields_in_turn_panics_rather_than_hangs() {
    // `join` polls the body's own yield and another generator's (a
    // misuse) in turn: neither can be ready until the generator is
    // resumed, which `block_on` never lets happen.
    let escaped = escaped_co();
    let mut g: Gen<u32> = Gen::new(move |co| async move {
        futures_executor::block_on(futures_util::future::join(co.yield_(1), escaped.yield_(2)));
    });
    let err = catch_unwind(AssertUnwindSafe(|| g.start())).expect_err("block_on panics");
    let msg = err.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("blocking executor"), "{msg}");
    assert!(g.is_complete());
}

/// Runs `f` on a thread of its own (with a spawned thread's stack) and
/// returns its panic's message; fails if `f` returns, or neither returns
/// nor panics within a bound (a hang).
fn panic_of(f: impl FnOnce() + Send + 'static) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let r = catch_unwind(AssertUnwindSafe(f));
            let _ = tx.send(r.err().map(|p| {
                p.downcast_ref::<&str>()
                    .map(|m| m.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default()
            }));
        })
        .unwrap();
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("a panic, not a hang")
        .expect("a panic")
}

#[test]
fn a_blocking_executor_on_a_yield_that_clashes_panics_rather_than_hangs() {
    // A value sent to a yield that was dropped before it took it: the next
    // yield finds it there (a misuse, which the resume would report), and
    // is polled by a blocking executor, which must be woken to poll again
    // and so reach the limit.
    let msg = panic_of(|| {
        use futures_util::FutureExt;
        let mut g = coro::AsyncGen::new(|co: Co<u32, u32>| async move {
            drop_unresumed_yield(co.yield_(1)).await;
            futures_executor::block_on(co.yield_(2))
        });
        assert_eq!(g.start().now_or_never(), Some(Ok(GenState::Yielded(1))));
        let _ = g.send(10).now_or_never();
    });
    assert!(msg.contains("blocking executor"), "{msg}");
    // The same in a synchronous generator whose frame is published.
    let msg = panic_of(|| {
        let mut g: Gen<u32, u32, u32> = Gen::new(|co| async move {
            OwnContext(co.yield_(0)).await;
            drop_unresumed_yield(co.yield_(1)).await;
            futures_executor::block_on(co.yield_(2))
        });
        assert_eq!(g.start(), Ok(GenState::Yielded(0)));
        assert_eq!(g.send(0), Ok(GenState::Yielded(1)));
        let _ = g.send(10);
    });
    assert!(msg.contains("blocking executor"), "{msg}");
}

/// As [`chain`], of asynchronous generators.
fn async_chain(depth: u32) -> coro::AsyncGen<u32, u32, u32> {
    coro::AsyncGen::new(move |co| async move {
        if depth == 0 {
            co.yield_(1).await
        } else {
            co.yield_from(async_chain(depth - 1)).await
        }
    })
}

#[test]
fn a_blocking_executor_on_a_delegation_too_deep_panics_rather_than_hangs() {
    // The frame of an asynchronous generator is found under any context:
    // the delegation goes down to the limit under the blocking executor's,
    // which must be woken to poll again.
    let msg = panic_of(|| {
        use futures_util::FutureExt;
        let mut g = coro::AsyncGen::new(|co: Co<u32, u32>| async move {
            futures_executor::block_on(co.yield_from(async_chain(coro::MAX_DELEGATION_DEPTH + 1)))
        });
        let _ = g.start().now_or_never();
    });
    assert!(msg.contains("blocking executor"), "{msg}");
}

#[test]
fn a_blocking_executor_that_also_resumes_another_generator_still_panics() {
    // At each of its polls, the future the blocking executor drives polls
    // the body's own yield and runs a new generator to its first yield:
    // those resumes, inside the body, must not start the count again.
    let msg = panic_of(|| {
        let mut g: Gen<u32> = Gen::new(|co| async move {
            let mut own = std::pin::pin!(co.yield_(1));
            futures_executor::block_on(std::future::poll_fn(|cx| {
                if own.as_mut().poll(cx).is_ready() {
                    return std::task::Poll::Ready(());
                }
                let mut other: coro::AsyncGen<u32> =
                    coro::AsyncGen::new(|co| async move { co.yield_(5).await });
                let started = futures_util::FutureExt::now_or_never(other.start());
                assert_eq!(started, Some(Ok(GenState::Yielded(5))));
                std::task::Poll::Pending
            }))
        });
        let _ = g.start();
    });
    assert!(msg.contains("blocking executor"), "{msg}");
}

#[test]
fn yields_polled_under_other_contexts_in_unrelated_generators_do_not_add_up() {
    // Each generator polls a yield once under a context of its own body's
    // (a "try": nothing is handed out), which counts one poll towards the
    // limit of a blocking executor; each resume that then yields starts
    // the count again, so that no number of generators reaches it.
    let n = if cfg!(miri) { 100 } else { 70_000 };
    for i in 0..n {
        let mut g = Gen::new_inline(|co: Co<u32, u32>| async move {
            let _ = futures_util::FutureExt::now_or_never(co.yield_(0));
            co.yield_(1).await;
        });
        assert_eq!(g.start(), Ok(GenState::Yielded(1)), "generator {i}");
    }
}

#[test]
fn yields_polled_under_other_contexts_in_generators_inside_a_body_do_not_add_up() {
    // As above, with every generator resumed inside one resume of another
    // generator's body: their polls once added up to the limit there (the
    // count started again only when a resume that no generator encloses
    // returned), and the resume panicked as if a blocking executor ran.
    let n = if cfg!(miri) { 100 } else { 70_000 };
    let mut outer: Gen<u32, u32> = Gen::new(|co| async move {
        for i in 0..n {
            let mut g = Gen::new_inline(|co: Co<u32, u32>| async move {
                let _ = futures_util::FutureExt::now_or_never(co.yield_(0));
                co.yield_(1).await;
            });
            assert_eq!(g.start(), Ok(GenState::Yielded(1)), "generator {i}");
        }
        co.yield_(7).await;
        n
    });
    assert_eq!(outer.start(), Ok(GenState::Yielded(7)));
    assert_eq!(outer.send(()), Ok(GenState::Complete(n)));
}

#[test]
fn yields_polled_under_other_contexts_in_generators_that_panic_do_not_add_up() {
    // As above, with every generator panicking after its poll (a panic
    // that its resumer catches), at the top and inside another body: a
    // resume that unwound once left its count behind, for the next.
    let n = if cfg!(miri) { 100 } else { 70_000 };
    let panicking = |i: u32| {
        let mut g = Gen::new_inline(|co: Co<u32, u32>| async move {
            let _ = futures_util::FutureExt::now_or_never(co.yield_(0));
            // Without the panic hook (its message, 70,000 times over).
            std::panic::resume_unwind(Box::new(i))
        });
        let payload = catch_unwind(AssertUnwindSafe(|| g.start())).unwrap_err();
        assert_eq!(payload.downcast_ref::<u32>(), Some(&i), "generator {i}");
    };
    (0..n).for_each(panicking);
    let mut outer: Gen<u32, u32> = Gen::new(|co| async move {
        (0..n).for_each(panicking);
        co.yield_(7).await;
        n
    });
    assert_eq!(outer.start(), Ok(GenState::Yielded(7)));
    assert_eq!(outer.send(()), Ok(GenState::Complete(n)));
}

#[test]
fn another_generators_co_is_misuse() {
    let mut outer: Gen<u32, Result<(), GenError>> = Gen::new(|co| async move {
        // The inner body awaits the outer generator's `Co`.
        let mut inner = Gen::new(|_inner_co: Co<u8>| async {
            co.yield_(1).await;
        });
        let got = inner.start();
        assert!(inner.is_complete());
        co.yield_(2).await;
        got.map(|_| ())
    });
    assert_eq!(outer.start(), Ok(GenState::Yielded(2)));
    assert_eq!(
        outer.send(()),
        Ok(GenState::Complete(Err(GenError::Misuse)))
    );
}

#[test]
fn an_escaped_co_in_another_generator_of_the_same_types_is_misuse() {
    let escaped = escaped_co();
    let mut other: Gen<u32> = Gen::new(move |_co| async move {
        escaped.yield_(5).await;
    });
    assert_eq!(other.start(), Err(GenError::Misuse));
}

#[test]
#[should_panic(expected = "outside the body of its own generator")]
fn an_escaped_co_awaited_outside_any_generator_panics() {
    let escaped = escaped_co();
    let mut y = std::pin::pin!(escaped.yield_(1));
    let _ = y
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
}

#[test]
fn iterator_yields_then_fuses() {
    let mut g: Gen<char> = Gen::new(|co| async move {
        for c in "abc".chars() {
            co.yield_(c).await;
        }
    });
    assert_eq!(g.next(), Some('a'));
    assert_eq!(g.by_ref().collect::<String>(), "bc");
    assert_eq!(g.next(), None);
    assert_eq!(g.next(), None);
}

#[test]
fn generators_nest_as_values_and_resume_each_other() {
    // A generator whose body drives another generator (not delegation).
    let mut outer: Gen<u32> = Gen::new(|co| async move {
        let inner: Gen<u32> = Gen::new(|co| async move {
            for i in 0..3 {
                co.yield_(i).await;
            }
        });
        for x in inner {
            co.yield_(x * 10).await;
        }
    });
    assert_eq!(outer.by_ref().collect::<Vec<_>>(), [0, 10, 20]);
}

#[test]
fn a_body_may_borrow_from_its_surroundings() {
    let words = vec!["a".to_string(), "bb".to_string()];
    let borrowed = &words;
    let lens: Gen<usize, (), (), dyn Future<Output = ()> + '_> = Gen::new(|co| async move {
        for w in borrowed {
            co.yield_(w.len()).await;
        }
    });
    assert_eq!(lens.collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn debug_shows_the_state() {
    let mut g = summer();
    assert!(format!("{g:?}").contains("not started"));
    g.start().unwrap();
    assert!(format!("{g:?}").contains("suspended"));
    g.close();
    assert!(format!("{g:?}").contains("finished"));
}

#[test]
fn debug_of_a_delegation_shows_its_state() {
    // Before its first poll, while it delegates, and once it returned (a
    // delegation in progress once read "not started").
    let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = seen.clone();
    let mut outer: Gen<u32> = Gen::new(move |co| async move {
        let inner: Gen<u32> = Gen::new(|co| async move { co.yield_(1).await });
        let mut from = std::pin::pin!(co.yield_from(inner));
        log.borrow_mut().push(format!("{from:?}"));
        std::future::poll_fn(|cx| {
            let poll = from.as_mut().poll(cx);
            log.borrow_mut().push(format!("{from:?}"));
            poll
        })
        .await;
    });
    assert_eq!(outer.start(), Ok(GenState::Yielded(1)));
    assert_eq!(outer.send(()), Ok(GenState::Complete(())));
    assert_eq!(
        *seen.borrow(),
        [
            "YieldFrom { inner: not started }",
            "YieldFrom { inner: delegating }",
            "YieldFrom { inner: finished }",
        ]
    );
}

#[test]
fn errors_display() {
    let all = [
        GenError::NotStarted,
        GenError::AlreadyStarted,
        GenError::Finished,
        GenError::Blocked,
        GenError::Misuse,
        GenError::Running,
        GenError::TooDeep,
    ];
    // Each says something of its own.
    let messages: std::collections::HashSet<String> = all.iter().map(|e| e.to_string()).collect();
    assert_eq!(messages.len(), all.len(), "{messages:?}");
    assert!(messages.iter().all(|m| !m.is_empty()));
}

#[test]
fn gen_state_accessors() {
    let y: GenState<u8, u16> = GenState::Yielded(1);
    let c: GenState<u8, u16> = GenState::Complete(2);
    assert_eq!(
        (y.yielded(), y.complete(), y.is_complete()),
        (Some(1), None, false)
    );
    assert_eq!(
        (c.yielded(), c.complete(), c.is_complete()),
        (None, Some(2), true)
    );
}

#[test]
fn send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    // A `Co` never makes a body non-Send, even for non-Send values.
    send_sync::<Co<Rc<u8>, Rc<u8>>>();
    send::<coro::SendGen<u32, String, u64>>();
    send::<coro::SendAsyncGen<u32>>();
    send::<coro::GenError>();
    let g: coro::SendGen<u32> = Gen::new_send(|co| async move {
        co.yield_(1).await;
        co.yield_(2).await;
    });
    let moved = std::thread::spawn(move || g.collect::<Vec<_>>())
        .join()
        .unwrap();
    assert_eq!(moved, [1, 2]);
}

#[test]
fn a_yield_beside_other_pending_futures_in_futures_unordered() {
    // `FuturesUnordered` polls a future that woke itself again in the same
    // poll while others are pending: a yield handing its value out is
    // polled twice before the body suspends, which is no blocking loop.
    let mut g: Gen<u32, u32, u32> = Gen::new(|co| async move {
        let mut total = 0;
        for i in 1..=3 {
            let mut set: FuturesUnordered<std::pin::Pin<Box<dyn Future<Output = u32> + '_>>> =
                FuturesUnordered::new();
            set.push(Box::pin(co.yield_(i)));
            set.push(Box::pin(std::future::pending()));
            total += set.next().await.expect("the yield completes");
        }
        total
    });
    yields_1_2_3_and_sums_the_sends(&mut g);
}

#[test]
fn a_panic_caught_around_yield_from_leaves_the_delegator_whole() {
    use futures_util::FutureExt;
    // Python: `try: yield from inner() except: ...` then `yield 99` works.
    let mut g: Gen<u32, &str, u32> = Gen::new(|co| async move {
        let inner: Gen<u32, (), u32> = Gen::new(|co| async move {
            co.yield_(1).await;
            panic!("inner failure on purpose");
        });
        let r = AssertUnwindSafe(co.yield_from(inner)).catch_unwind().await;
        co.yield_(99).await;
        if r.is_err() { "caught" } else { "not caught" }
    });
    assert_eq!(g.start(), Ok(GenState::Yielded(1)));
    assert_eq!(g.send(0), Ok(GenState::Yielded(99)));
    assert_eq!(g.send(0), Ok(GenState::Complete("caught")));
}

#[test]
fn a_delegation_whose_inner_body_panicked_is_finished_and_a_misuse_polled_again() {
    use futures_util::FutureExt;
    let inner: Gen<u32, (), u32> = Gen::new(|co| async move {
        co.yield_(1).await;
        panic!("inner failure on purpose");
    });
    let seen = std::rc::Rc::new(std::cell::RefCell::new(String::new()));
    let log = seen.clone();
    let mut g: Gen<u32, (), u32> = Gen::new(move |co| async move {
        let mut from = std::pin::pin!(co.yield_from(inner));
        assert!(
            AssertUnwindSafe(from.as_mut())
                .catch_unwind()
                .await
                .is_err()
        );
        // Kept past the panic, it is as the inner generator's own resume
        // would leave it: finished, its body dropped.
        *log.borrow_mut() = format!("{from:?}");
        // Polled again, a misuse (not the panic of a body resumed after
        // panicking).
        from.await;
    });
    assert_eq!(g.start(), Ok(GenState::Yielded(1)));
    assert_eq!(g.send(0), Err(GenError::Misuse));
    assert_eq!(*seen.borrow(), "YieldFrom { inner: finished }");
}

#[test]
fn two_yields_in_flight_at_once_are_a_misuse_not_a_lost_value() {
    // Two yields polled together (`join`): a generator hands out one value
    // at a time; the second is an error, not an overwrite.
    let mut g: Gen<u32, (u32, u32), u32> =
        Gen::new(|co| async move { futures_util::future::join(co.yield_(1), co.yield_(2)).await });
    assert_eq!(g.start(), Err(GenError::Misuse));
    assert!(g.is_complete());
}

/// Polls `yield_` once beside a future that is pending at its first poll
/// and ready at its second, then drops it, with its value handed out and
/// never resumed (the other branch of a `select` won).
async fn drop_unresumed_yield<F: Future + Unpin>(yield_: F) {
    use futures_util::future::{Either, select};
    let mut polled = false;
    let second = std::future::poll_fn(move |_| {
        if std::mem::replace(&mut polled, true) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    });
    let second = std::pin::pin!(second);
    let Either::Left(((), unresumed)) = select(second, yield_).await else {
        panic!("the other branch wins");
    };
    drop(unresumed);
}

#[test]
fn a_value_sent_to_a_dropped_yield_is_a_misuse_not_a_lost_value() {
    // The yield that the value was sent for is dropped before it takes it
    // (another branch of a `select` won): the next yield finds the value
    // untaken, which is an error, not a silent loss.
    let mut g: Gen<u32, (), u32> = Gen::new(|co| async move {
        drop_unresumed_yield(co.yield_(1)).await;
        co.yield_(3).await;
    });
    assert_eq!(g.start(), Ok(GenState::Yielded(1)));
    // The yield of 1 is gone: 10 is never taken.
    assert_eq!(g.send(10), Err(GenError::Misuse));
}

/// Pending for good, waking itself at every poll (as a busy sibling in a
/// combinator does).
fn restless() -> std::pin::Pin<Box<dyn Future<Output = u32>>> {
    Box::pin(std::future::poll_fn(|cx| {
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }))
}

#[test]
fn a_value_sent_while_a_combinator_polls_others_first_is_blocked_in_a_sync_body() {
    // `FuturesUnordered` returns after two futures that woke themselves:
    // at the send, two are queued ahead of the yield, which would take its
    // value only at the next poll. A synchronous resume polls its body
    // once per value: the generator is closed with `Blocked` (an
    // `AsyncGen` delivers the value at a later poll), never hangs, and
    // never reports the value taken.
    let mut g: Gen<u32, u32, u32> = Gen::new(|co| async move {
        // A yield under a context of the body's own first: the generator
        // publishes its frame from then on, so that the next yield in the
        // set hands its value out at its first poll.
        OwnContext(co.yield_(0)).await;
        let mut set: FuturesUnordered<std::pin::Pin<Box<dyn Future<Output = u32> + '_>>> =
            FuturesUnordered::new();
        set.push(Box::pin(co.yield_(1)));
        for _ in 0..3 {
            set.push(restless());
        }
        set.next().await.expect("the yield completes")
    });
    assert_eq!(g.start(), Ok(GenState::Yielded(0)));
    assert_eq!(g.send(0), Ok(GenState::Yielded(1)));
    assert_eq!(g.send(10), Err(GenError::Blocked));
    assert!(g.is_complete());
}

#[test]
fn a_yield_polled_again_in_the_same_resume_after_handing_out_is_a_misuse() {
    use std::task::Poll;
    // A loop that polls the yield again after another source had an item:
    // the value out may be the yield's own, or another yield's (which, with
    // a send type of no size, would leave one of them waiting for good).
    // A yield cannot tell, and the resume reports a misuse (documented on
    // `GenError::Misuse`): never a lost value, never a hang.
    let mut g: Gen<u32, u32, u32> = Gen::new(|co| async move {
        let mut pending_yield = co.yield_(1);
        let mut backlog = 3;
        std::future::poll_fn(|cx| {
            loop {
                if let Poll::Ready(v) = std::pin::Pin::new(&mut pending_yield).poll(cx) {
                    return Poll::Ready(v + backlog);
                }
                if backlog == 0 {
                    return Poll::Pending;
                }
                backlog -= 1;
            }
        })
        .await
    });
    assert_eq!(g.start(), Err(GenError::Misuse));
    assert!(g.is_complete());
}

#[test]
fn a_yield_in_a_combinator_polled_in_a_long_loop_is_no_blocking_executor() {
    use std::task::Poll;
    // The yield sits in a `FuturesUnordered`, which the loop polls many
    // times in one resume (a busy sibling source): each poll finds the
    // yield's own value still out and counts as a poll without progress,
    // but a loop of this length stays far below the count that reads as a
    // blocking executor (65,536; 64 under miri), which
    // `a_blocking_executor_inside_a_sync_body_panics_rather_than_hangs`
    // reaches.
    let mut g: Gen<u32, u32, u32> = Gen::new(|co| async move {
        let mut set = FuturesUnordered::new();
        set.push(co.yield_(1));
        // Under miri the crate's spin limit is low (64), as miri is slow.
        let mut backlog = if cfg!(miri) { 50 } else { 1000 };
        std::future::poll_fn(|cx| {
            loop {
                if let Poll::Ready(Some(v)) = set.poll_next_unpin(cx) {
                    return Poll::Ready(v);
                }
                if backlog == 0 {
                    return Poll::Pending;
                }
                backlog -= 1;
            }
        })
        .await
    });
    assert_eq!(g.start(), Ok(GenState::Yielded(1)));
    assert_eq!(g.send(7), Ok(GenState::Complete(7)));
}

#[test]
fn a_value_sent_that_no_yield_took_before_the_end_is_a_misuse() {
    // As `a_value_sent_to_a_dropped_yield_is_a_misuse_not_a_lost_value`,
    // but the body returns instead of yielding again: 10 is never taken.
    let mut g: Gen<u32, u32, u32> = Gen::new(|co| async move {
        drop_unresumed_yield(co.yield_(1)).await;
        5
    });
    assert_eq!(g.start(), Ok(GenState::Yielded(1)));
    assert_eq!(g.send(10), Err(GenError::Misuse));
    assert!(g.is_complete());
}

#[test]
fn a_value_handed_out_by_a_yield_the_body_then_left_is_a_misuse() {
    use futures_util::future::{ready, select};
    // The yield hands 1 out, the other branch wins, and the body returns:
    // the resume cannot give both 1 and the return value.
    let mut g: Gen<u32, u32, u32> = Gen::new(|co| async move {
        let _ = select(co.yield_(1), ready(())).await;
        5
    });
    assert_eq!(g.start(), Err(GenError::Misuse));
    assert!(g.is_complete());
}

#[test]
fn a_body_resuming_its_own_generator_behind_a_refcell_gets_a_borrow_error() {
    // Python's "generator already executing", with shared ownership (the
    // borrow checker refuses the same without it: see `Gen`'s docs).
    type Shared = Rc<std::cell::RefCell<Option<Gen<bool>>>>;
    let me: Shared = Rc::default();
    let inside = Rc::clone(&me);
    let g = Gen::new(move |co| async move {
        let refused = inside.try_borrow_mut().is_err();
        co.yield_(refused).await;
    });
    *me.borrow_mut() = Some(g);
    let first = me.borrow_mut().as_mut().map(Gen::start);
    assert_eq!(first, Some(Ok(GenState::Yielded(true))));
    // The body holds the cell that holds the generator: taken out, the
    // generator and its body go, and the cycle with them.
    drop(me.borrow_mut().take());
}

#[test]
fn a_yield_polled_again_after_it_returned_is_a_misuse() {
    // The yield would wait for a value that no resume sends it: in an
    // asynchronous generator, for good.
    let again = |co: Co<u32, u32>| async move {
        let mut y = std::pin::pin!(co.yield_(1));
        let a = (&mut y).await;
        let b = (&mut y).await;
        a + b
    };
    let mut g = Gen::new_inline(again);
    assert_eq!(g.start(), Ok(GenState::Yielded(1)));
    assert_eq!(g.send(5), Err(GenError::Misuse));
    assert!(g.is_complete());
    // Polled once each (the body awaits nothing else): `None` would be
    // the hang.
    use futures_util::FutureExt;
    let mut g = coro::AsyncGen::new(again);
    assert_eq!(g.start().now_or_never(), Some(Ok(GenState::Yielded(1))));
    assert_eq!(g.send(5).now_or_never(), Some(Err(GenError::Misuse)));
    assert!(g.is_complete());
}

#[test]
fn blocking_on_a_yield_that_already_returned_panics_rather_than_hangs() {
    // Run on a thread of its own, so that a hang fails the test.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use futures_util::FutureExt;
        // An asynchronous generator: its resume publishes its frame, which
        // the yield then finds under the blocking executor's context.
        let mut g = coro::AsyncGen::new(|co: Co<u32, u32>| async move {
            let mut y = std::pin::pin!(co.yield_(1));
            let a = (&mut y).await;
            // A blocking executor inside the body, on a yield that is done.
            a + futures_executor::block_on(&mut y)
        });
        assert_eq!(g.start().now_or_never(), Some(Ok(GenState::Yielded(1))));
        let sent = catch_unwind(AssertUnwindSafe(|| g.send(5).now_or_never()));
        let _ = tx.send((sent.is_err(), g.is_complete()));
    });
    let (panicked, complete) = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the resume returns");
    assert!(panicked, "the blocking executor is told, by a panic");
    assert!(complete);
}

/// Writes its name in a shared log when dropped.
struct Logged(&'static str, Rc<std::cell::RefCell<Vec<&'static str>>>);

impl Drop for Logged {
    fn drop(&mut self) {
        self.1.borrow_mut().push(self.0);
    }
}

#[test]
fn a_value_a_blocked_body_never_took_is_dropped_after_the_body() {
    // The body returns `Pending` after polling its yield once, before the
    // yield took the value sent: the resume closes the body (`Blocked`)
    // and then drops the value, as when a generator is closed. Once with
    // the frame carried in the context only, once published.
    for published in [false, true] {
        let log = Rc::new(std::cell::RefCell::new(Vec::new()));
        let in_body = log.clone();
        let mut g: Gen<u32, (), Logged> = Gen::new(move |co| async move {
            let _held = Logged("body", in_body);
            if published {
                drop(OwnContext(co.yield_(0)).await);
            }
            let mut y = std::pin::pin!(co.yield_(1));
            let mut first = true;
            std::future::poll_fn(|cx| {
                if std::mem::take(&mut first) {
                    let _ = y.as_mut().poll(cx);
                }
                std::task::Poll::<()>::Pending
            })
            .await;
        });
        if published {
            assert_eq!(g.start(), Ok(GenState::Yielded(0)));
            let taken = Logged("taken", log.clone());
            assert_eq!(g.send(taken), Ok(GenState::Yielded(1)));
        } else {
            assert_eq!(g.start(), Ok(GenState::Yielded(1)));
        }
        let sent = Logged("sent", log.clone());
        assert_eq!(g.send(sent), Err(GenError::Blocked));
        assert!(g.is_complete());
        let want: &[_] = if published {
            &["taken", "body", "sent"]
        } else {
            &["body", "sent"]
        };
        assert_eq!(*log.borrow(), want, "published: {published}");
    }
}
