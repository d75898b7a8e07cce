//! `AsyncGen`: the protocol with async resumes, and as a `Stream`.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use coro::{AsyncGen, Co, GenError, GenState, SendAsyncGen};
use futures_core::{FusedStream, Stream};
use futures_executor::block_on;

/// A one-shot channel whose receiving end is a future, completed from
/// whichever thread sends.
struct Slot<T> {
    state: Mutex<(Option<T>, Option<Waker>)>,
}

struct Sender<T>(Arc<Slot<T>>);
struct Receiver<T>(Arc<Slot<T>>);

fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new((None, None)),
    });
    (Sender(slot.clone()), Receiver(slot))
}

impl<T> Sender<T> {
    /// Sends once the receiver has been polled and is pending (its waker is
    /// there), so that only the wake-up from this thread can end its wait.
    /// Bounded: a receiver never awaited fails the test after 60 s.
    fn send_once_awaited(self, value: T) {
        let start = std::time::Instant::now();
        while self.0.state.lock().unwrap().1.is_none() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "never awaited"
            );
            std::thread::yield_now();
        }
        self.send(value);
    }

    fn send(self, value: T) {
        let waker = {
            let mut state = self.0.state.lock().unwrap();
            state.0 = Some(value);
            state.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut state = self.0.state.lock().unwrap();
        match state.0.take() {
            Some(v) => Poll::Ready(v),
            None => {
                state.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// A waker that records that it was woken.
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Flag {
    fn take(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }
}

async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

async fn collect<S: Stream + Unpin>(mut s: S) -> Vec<S::Item> {
    let mut v = Vec::new();
    while let Some(x) = next(&mut s).await {
        v.push(x);
    }
    v
}

#[test]
fn a_stream_of_yields() {
    let g: AsyncGen<u32> = AsyncGen::new(|co| async move {
        for i in 0..5 {
            co.yield_(i * i).await;
        }
    });
    assert_eq!(block_on(collect(g)), [0, 1, 4, 9, 16]);
}

#[test]
fn a_stream_whose_body_awaits_futures_completed_on_another_thread() {
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..4).map(|_| oneshot::<String>()).unzip();
    let g: SendAsyncGen<String> = AsyncGen::new_send(|co| async move {
        for rx in receivers {
            let got = rx.await;
            co.yield_(got.to_uppercase()).await;
        }
    });
    let producer = std::thread::spawn(move || {
        for (i, tx) in senders.into_iter().enumerate() {
            tx.send_once_awaited(format!("item{i}"));
        }
    });
    let got = block_on(collect(g));
    producer.join().unwrap();
    assert_eq!(got, ["ITEM0", "ITEM1", "ITEM2", "ITEM3"]);
}

#[test]
fn a_hand_polled_resume_is_pending_until_its_future_is_woken() {
    let (tx, rx) = oneshot::<u32>();
    let mut g: AsyncGen<u32, u32, u32> = AsyncGen::new(|co| async move {
        let v = rx.await;
        let back = co.yield_(v + 1).await;
        back * 2
    });
    let flag = Arc::new(Flag::default());
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    {
        let mut start = pin!(g.start());
        assert!(start.as_mut().poll(&mut cx).is_pending());
        assert!(!flag.take());
        std::thread::spawn(move || tx.send(41)).join().unwrap();
        assert!(
            flag.take(),
            "completing the awaited future wakes the resume"
        );
        assert_eq!(
            start.as_mut().poll(&mut cx),
            Poll::Ready(Ok(GenState::Yielded(42)))
        );
    }
    let mut send = pin!(g.send(5));
    assert_eq!(
        send.as_mut().poll(&mut cx),
        Poll::Ready(Ok(GenState::Complete(10)))
    );
}

#[test]
fn the_protocol_errors_are_the_same_as_for_gen() {
    let mut g: AsyncGen<u8, &str, u8> = AsyncGen::new(|co| async move {
        co.yield_(1).await;
        "end"
    });
    block_on(async {
        assert_eq!(g.send(0).await, Err(GenError::NotStarted));
        assert_eq!(g.start().await, Ok(GenState::Yielded(1)));
        assert_eq!(g.start().await, Err(GenError::AlreadyStarted));
        assert_eq!(g.send(0).await, Ok(GenState::Complete("end")));
        assert_eq!(g.send(0).await, Err(GenError::Finished));
    });
    assert!(g.is_complete());
}

#[test]
fn throw_and_close() {
    let mut g: AsyncGen<u8, Result<(), String>, Result<u8, String>> =
        AsyncGen::new(|co| async move {
            loop {
                co.yield_(0).await?;
            }
        });
    block_on(async {
        g.start().await.unwrap();
        assert_eq!(
            g.throw("x".into()).await,
            Ok(GenState::Complete(Err("x".into())))
        );
    });
    let mut h: AsyncGen<u8> = AsyncGen::new(|co| async move {
        co.yield_(1).await;
    });
    block_on(async {
        h.start().await.unwrap();
        h.close();
        assert_eq!(h.send(()).await, Err(GenError::Finished));
    });
}

#[test]
fn a_send_made_and_dropped_unpolled_changes_nothing() {
    let mut g: AsyncGen<u32, u32, u32> = AsyncGen::new(|co| async move {
        let a = co.yield_(1).await;
        a * 10
    });
    block_on(async {
        assert_eq!(g.start().await, Ok(GenState::Yielded(1)));
        // Made and dropped without a poll: the value never reached the body.
        drop(g.send(5));
        assert_eq!(g.send(6).await, Ok(GenState::Complete(60)));
    });
}

#[test]
fn a_send_after_a_resume_cancelled_between_two_yields_is_refused_not_lost() {
    let (tx, rx) = oneshot::<u32>();
    let mut g: AsyncGen<u32, Vec<u32>, u32> = AsyncGen::new(|co| async move {
        let mut got = vec![co.yield_(1).await];
        let v = rx.await;
        got.push(co.yield_(v).await);
        got
    });
    let mut cx = Context::from_waker(Waker::noop());
    block_on(async { assert_eq!(g.start().await, Ok(GenState::Yielded(1))) });
    {
        let mut send = pin!(g.send(2));
        assert!(send.as_mut().poll(&mut cx).is_pending());
        // Dropped while the body, which took 2, waits on `rx`.
    }
    tx.send(7);
    block_on(async {
        // No yield is waiting for a value: refused, not silently dropped.
        assert_eq!(g.send(3).await, Err(GenError::Running));
        // `start` runs the body on to its next yield.
        assert_eq!(g.start().await, Ok(GenState::Yielded(7)));
        assert_eq!(g.start().await, Err(GenError::AlreadyStarted));
        assert_eq!(g.send(4).await, Ok(GenState::Complete(vec![2, 4])));
    });
}

/// A body that hands out 0 at a yield that a `select!` drops at the next
/// resume (or, `skip_every_other_poll`, that a combinator polls only every
/// other time), then yields what `rx` brings.
fn yield_beside(rx: Receiver<u32>, skip_every_other_poll: bool) -> AsyncGen<u32> {
    AsyncGen::new(move |co| async move {
        if skip_every_other_poll {
            // A combinator that polls the yield only every other time it is
            // polled: a resume may end before the yield took its `()`.
            let mut at = co.yield_(0);
            let mut skip = false;
            poll_fn(|cx| {
                if std::mem::replace(&mut skip, false) {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                let p = Pin::new(&mut at).poll(cx);
                skip = p.is_pending();
                p
            })
            .await;
        } else {
            use futures_util::future::{Either, select};
            // The other side ends at the next resume, before the yield
            // takes what it sends: the yield is dropped with its `()`.
            let mut polled = false;
            let other = pin!(poll_fn(move |cx| {
                if std::mem::replace(&mut polled, true) {
                    Poll::Ready(())
                } else {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            }));
            let Either::Left(((), dropped)) = select(other, co.yield_(0)).await else {
                panic!("the yield ended before the other side")
            };
            drop(dropped);
        }
        let v = rx.await;
        co.yield_(v).await;
    })
}

#[test]
fn a_resume_of_no_size_cancelled_before_or_after_the_yield_let_go_is_run_on_by_send() {
    // Past the yield (a `select!` dropped it), or still at it (a
    // combinator had not polled it yet): the generator cannot tell, stays
    // at its yield, and a `send(())` runs the body on from where it is.
    for skip in [false, true] {
        let (tx, rx) = oneshot::<u32>();
        let mut g = yield_beside(rx, skip);
        let mut cx = Context::from_waker(Waker::noop());
        block_on(async { assert_eq!(g.start().await, Ok(GenState::Yielded(0))) });
        {
            let mut send = pin!(g.send(()));
            assert!(send.as_mut().poll(&mut cx).is_pending());
            // Dropped before the yield took the `()`, or after it was
            // dropped itself.
        }
        assert_eq!(format!("{g:?}"), "AsyncGen { state: suspended }");
        tx.send(7);
        block_on(async {
            assert_eq!(g.start().await, Err(GenError::AlreadyStarted), "{skip}");
            assert_eq!(g.send(()).await, Ok(GenState::Yielded(7)), "{skip}");
            assert_eq!(g.send(()).await, Ok(GenState::Complete(())), "{skip}");
        });
    }
}

#[test]
fn yield_from_an_async_generator_that_awaits() {
    let (tx, rx) = oneshot::<u32>();
    let inner: AsyncGen<u32, u32, u32> = AsyncGen::new(|co| async move {
        let a = co.yield_(1).await;
        let b = rx.await;
        let c = co.yield_(2).await;
        a + b + c
    });
    let mut outer: AsyncGen<u32, u32, u32> = AsyncGen::new(|co| async move {
        let r = co.yield_from(inner).await;
        co.yield_(r).await
    });
    let sender = std::thread::spawn(move || tx.send_once_awaited(100));
    block_on(async {
        assert_eq!(outer.start().await, Ok(GenState::Yielded(1)));
        assert_eq!(outer.send(10).await, Ok(GenState::Yielded(2)));
        assert_eq!(outer.send(1000).await, Ok(GenState::Yielded(1110)));
        assert_eq!(outer.send(9).await, Ok(GenState::Complete(9)));
    });
    sender.join().unwrap();
}

#[test]
fn a_sync_generator_may_delegate_to_an_async_one_that_never_waits() {
    let inner: AsyncGen<u8, u8> = AsyncGen::new(|co| async move {
        co.yield_(1).await;
        2
    });
    let outer: coro::Gen<u8> = coro::Gen::new(|co| async move {
        let r = co.yield_from(inner).await;
        co.yield_(r).await;
    });
    assert_eq!(outer.collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn a_sync_generator_may_resume_an_async_one_that_never_waits() {
    // The async generator's resumes are polled with the sync generator's
    // context; its body's yields must still reach its own frame.
    let outer: coro::Gen<u32> = coro::Gen::new(|co| async move {
        let mut inner: AsyncGen<u32, u32, u32> = AsyncGen::new(|co| async move {
            let a = co.yield_(1).await;
            let b = co.yield_(a + 1).await;
            a + b
        });
        let mut seen = Vec::new();
        let mut step = inner.start().await;
        let mut sent = 10;
        while let Ok(GenState::Yielded(y)) = step {
            seen.push(y);
            co.yield_(y).await;
            step = inner.send(sent).await;
            sent += 10;
        }
        assert_eq!(seen, [1, 11]);
        if let Ok(GenState::Complete(r)) = step {
            co.yield_(r).await;
        }
    });
    assert_eq!(outer.collect::<Vec<_>>(), [1, 11, 30]);
}

#[test]
fn an_async_body_may_poll_its_yields_under_a_context_of_its_own() {
    /// Polls its future with a context of its own, as a combinator with
    /// wakers of its own (`FuturesUnordered`) does.
    struct OwnContext<F>(F);
    impl<F: Future + Unpin> Future for OwnContext<F> {
        type Output = F::Output;
        fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<F::Output> {
            let mut own = Context::from_waker(Waker::noop());
            Pin::new(&mut self.0).poll(&mut own)
        }
    }
    let mut g: AsyncGen<u32, u32, u32> = AsyncGen::new(|co| async move {
        let a = OwnContext(co.yield_(1)).await;
        let b = co.yield_(a).await;
        a + b
    });
    block_on(async {
        assert_eq!(g.start().await, Ok(GenState::Yielded(1)));
        assert_eq!(g.send(5).await, Ok(GenState::Yielded(5)));
        assert_eq!(g.send(7).await, Ok(GenState::Complete(12)));
    });
}

#[test]
fn the_stream_is_fused() {
    let mut g: AsyncGen<u8> = AsyncGen::new(|co| async move {
        co.yield_(1).await;
    });
    assert!(!g.is_terminated());
    block_on(async {
        assert_eq!(next(&mut g).await, Some(1));
        assert_eq!(next(&mut g).await, None);
        assert_eq!(next(&mut g).await, None);
    });
    assert!(g.is_terminated());
}

/// A generator `depth` delegations deep, yielding once at the bottom.
fn nested(depth: u32) -> AsyncGen<u8> {
    AsyncGen::new(move |co| async move {
        if depth == 0 {
            co.yield_(1).await;
        } else {
            co.yield_from(nested(depth - 1)).await;
        }
    })
}

#[test]
fn a_stream_polled_with_try_poll_next_reports_how_its_body_failed() {
    // A stream just ends where a resume would have failed; `try_poll_next`
    // says why, once, so that a body that failed is not taken for one
    // that returned.
    let too_deep = coro::MAX_DELEGATION_DEPTH + 1;
    let mut g: AsyncGen<u8> = AsyncGen::new(move |co| async move {
        co.yield_(0).await;
        co.yield_from(nested(too_deep)).await;
        co.yield_(2).await;
    });
    block_on(async {
        assert_eq!(poll_fn(|cx| g.try_poll_next(cx)).await, Some(Ok(0)));
        assert_eq!(
            poll_fn(|cx| g.try_poll_next(cx)).await,
            Some(Err(GenError::TooDeep))
        );
        assert_eq!(poll_fn(|cx| g.try_poll_next(cx)).await, None);
        assert_eq!(next(&mut g).await, None);
    });
    assert!(g.is_terminated());
    // One that returns just ends, as a stream does.
    let mut g = nested(3);
    block_on(async {
        assert_eq!(poll_fn(|cx| g.try_poll_next(cx)).await, Some(Ok(1)));
        assert_eq!(poll_fn(|cx| g.try_poll_next(cx)).await, None);
    });
}

#[test]
fn another_generators_co_is_misuse() {
    let mut outer: AsyncGen<u8, Result<(), GenError>> = AsyncGen::new(|co| async move {
        let mut inner = AsyncGen::new(|_inner: Co<u16>| async {
            co.yield_(1).await;
        });
        let got = inner.start().await;
        co.yield_(2).await;
        got.map(|_| ())
    });
    block_on(async {
        assert_eq!(outer.start().await, Ok(GenState::Yielded(2)));
        assert_eq!(
            outer.send(()).await,
            Ok(GenState::Complete(Err(GenError::Misuse)))
        );
    });
}

#[test]
fn a_send_stream_runs_on_another_thread() {
    let g: SendAsyncGen<u64> = AsyncGen::new_send(|co| async move {
        let mut a = 0u64;
        let mut b = 1u64;
        for _ in 0..10 {
            co.yield_(a).await;
            (a, b) = (b, a + b);
        }
    });
    let got = std::thread::spawn(move || block_on(collect(g)))
        .join()
        .unwrap();
    assert_eq!(got, [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]);
}

#[test]
fn debug_output() {
    let mut g: AsyncGen<u8> = AsyncGen::new(|co| async move {
        co.yield_(1).await;
    });
    assert!(format!("{g:?}").contains("not started"));
    let r = g.start();
    assert!(format!("{r:?}").contains("Resume"));
}

#[test]
fn yields_polled_by_futures_unordered_in_an_async_body_flow_both_ways() {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let mut g: AsyncGen<u32, u32, u32> = AsyncGen::new(|co| async move {
        let mut total = 0;
        for i in 1..=3 {
            let mut set: FuturesUnordered<Pin<Box<dyn Future<Output = u32> + '_>>> =
                FuturesUnordered::new();
            set.push(Box::pin(co.yield_(i)));
            set.push(Box::pin(std::future::pending()));
            total += set.next().await.expect("the yield completes");
        }
        total
    });
    // Polled by hand, so that a resume that hangs fails the test instead.
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    let mut resume =
        |r: Pin<&mut dyn Future<Output = Result<GenState<u32, u32>, GenError>>>| match r
            .poll(&mut cx)
        {
            Poll::Ready(r) => r,
            Poll::Pending => panic!("a resume of a body that only yields is pending"),
        };
    assert_eq!(resume(pin!(g.start())), Ok(GenState::Yielded(1)));
    assert_eq!(resume(pin!(g.send(10))), Ok(GenState::Yielded(2)));
    assert_eq!(resume(pin!(g.send(20))), Ok(GenState::Yielded(3)));
    assert_eq!(resume(pin!(g.send(30))), Ok(GenState::Complete(60)));
}

#[test]
fn two_yields_in_flight_at_once_are_a_misuse_not_a_hang() {
    let mut g: AsyncGen<u32, (u32, u32), u32> =
        AsyncGen::new(
            |co| async move { futures_util::future::join(co.yield_(1), co.yield_(2)).await },
        );
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    assert_eq!(
        pin!(g.start()).poll(&mut cx),
        Poll::Ready(Err(GenError::Misuse))
    );
}

#[test]
fn a_resume_polled_again_after_its_early_error_sends_nothing() {
    let mut g: AsyncGen<u32, (), u32> = AsyncGen::new(|co| async move {
        let s = co.yield_(1).await;
        assert_eq!(s, 7, "only the value sent after start arrives");
    });
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    {
        let mut early = pin!(g.send(5));
        assert_eq!(
            early.as_mut().poll(&mut cx),
            Poll::Ready(Err(GenError::NotStarted))
        );
        // Polled again (outside the `Future` contract): no value goes in.
        assert_eq!(
            early.as_mut().poll(&mut cx),
            Poll::Ready(Err(GenError::Finished))
        );
    }
    assert_eq!(
        pin!(g.start()).poll(&mut cx),
        Poll::Ready(Ok(GenState::Yielded(1)))
    );
    assert_eq!(
        pin!(g.send(7)).poll(&mut cx),
        Poll::Ready(Ok(GenState::Complete(())))
    );
}

#[test]
fn two_yields_in_flight_with_nothing_sent_are_a_misuse_not_a_hang() {
    // `S = ()`: the second yield, made ready in the second resume, would
    // take the `()` sent for the first; the first would then wait for good.
    let mut g: AsyncGen<u32> = AsyncGen::new(|co| async move {
        // Pending at its first poll, ready at its second.
        let mut polled = false;
        let later = std::future::poll_fn(move |_| {
            if std::mem::replace(&mut polled, true) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        let second = async {
            later.await;
            co.yield_(7).await;
        };
        futures_util::future::join(second, co.yield_(0)).await;
    });
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    assert_eq!(
        pin!(g.start()).poll(&mut cx),
        Poll::Ready(Ok(GenState::Yielded(0)))
    );
    assert_eq!(
        pin!(g.send(())).poll(&mut cx),
        Poll::Ready(Err(GenError::Misuse))
    );
}

#[test]
fn a_blocking_executor_inside_an_async_body_panics_rather_than_hangs() {
    let mut g: AsyncGen<u32, u32, u32> =
        AsyncGen::new(|co| async move { futures_executor::block_on(co.yield_(1)) });
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    let start = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = pin!(g.start()).poll(&mut cx);
    }));
    let msg = start.expect_err("block_on panics");
    let msg = msg
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| msg.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(msg.contains("blocking executor"), "{msg}");
}

#[test]
fn a_value_sent_while_a_combinator_polls_others_first_is_not_lost() {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let mut g: AsyncGen<u32, u32, u32> = AsyncGen::new(|co| async move {
        let mut set: FuturesUnordered<Pin<Box<dyn Future<Output = u32> + '_>>> =
            FuturesUnordered::new();
        set.push(Box::pin(co.yield_(1)));
        for _ in 0..3 {
            set.push(Box::pin(poll_fn(|cx| {
                cx.waker().wake_by_ref();
                Poll::<u32>::Pending
            })));
        }
        set.next().await.expect("the yield completes")
    });
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    assert_eq!(
        pin!(g.start()).poll(&mut cx),
        Poll::Ready(Ok(GenState::Yielded(1)))
    );
    // Polled as an executor would after the combinator woke it: the value
    // reaches the yield at a later poll of the same resume.
    let mut send = pin!(g.send(10));
    let mut polls = 0;
    let done = loop {
        polls += 1;
        assert!(polls <= 16, "the value never reached its yield");
        if let Poll::Ready(r) = send.as_mut().poll(&mut cx) {
            break r;
        }
    };
    assert_eq!(done, Ok(GenState::Complete(10)));
}

#[test]
fn a_stream_whose_yield_a_select_drops_goes_on() {
    use futures_util::StreamExt;
    use futures_util::future::{Either, select};
    // `()` left by a dropped yield loses nothing: the stream goes on.
    let g: AsyncGen<u32> = AsyncGen::new(|co| async move {
        for i in 0..3 {
            let mut polled = false;
            let other = poll_fn(move |cx| {
                if std::mem::replace(&mut polled, true) {
                    Poll::Ready(())
                } else {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            });
            let other = pin!(other);
            // The other side ends at its second poll, before the yield
            // is resumed: the yield is dropped with its value out.
            let Either::Left(((), dropped)) = select(other, co.yield_(i)).await else {
                panic!("the yield ended before the other side")
            };
            drop(dropped);
        }
        co.yield_(99).await;
    });
    let items: Vec<u32> = block_on(g.collect());
    assert_eq!(items, [0, 1, 2, 99]);
}

#[test]
fn a_blocking_executor_in_an_async_body_panics_rather_than_hangs() {
    // Under an asynchronous resume, whose frame is published: another
    // generator's `Co` (a misuse), and the body's own yield beside a
    // delegation (two ids in turn), each polled by `block_on` in the body.
    let mut leaker: coro::Gen<u32, Co<u32>> = coro::Gen::new(|co| async move { co });
    let Ok(GenState::Complete(escaped)) = leaker.start() else {
        panic!("the leaker returns its Co")
    };
    let bodies: Vec<AsyncGen<u32>> = vec![
        AsyncGen::new(move |_co| async move {
            block_on(escaped.yield_(5));
        }),
        AsyncGen::new(|co| async move {
            let inner = coro::Gen::new(|c: Co<u32>| async move {
                c.yield_(2).await;
            });
            block_on(futures_util::future::join(
                co.yield_(1),
                co.yield_from(inner),
            ));
        }),
    ];
    for mut g in bodies {
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut start = pin!(g.start());
            // By hand: an executor around this one would make `block_on`
            // in the body panic as nested, whatever the generator does.
            start
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_ready()
        }));
        let err = polled.expect_err("block_on panics");
        let msg = err.downcast_ref::<&str>().copied().unwrap_or_default();
        assert!(msg.contains("blocking executor"), "{msg}");
    }
}

#[test]
fn misuses_reported_one_after_another_are_never_taken_for_a_blocking_loop() {
    // More of them in a row than the polls without progress that read as
    // a blocking executor in a body (65,536; 64 under miri).
    let rounds = if cfg!(miri) { 100 } else { 70_000 };
    let mut leaker: coro::Gen<u32, Co<u32>> = coro::Gen::new(|co| async move { co });
    let Ok(GenState::Complete(escaped)) = leaker.start() else {
        panic!("the leaker returns its Co")
    };
    let escaped = Arc::new(escaped);
    for _ in 0..rounds {
        let other = escaped.clone();
        let mut g: AsyncGen<u32> = AsyncGen::new(move |_co| async move {
            other.yield_(5).await;
        });
        assert_eq!(block_on(g.start()), Err(GenError::Misuse));
    }
}
