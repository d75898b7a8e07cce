//! Waiting on many greenlets: `joinall`, `killall`, `iwait`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use coro::AsyncGen;

use crate::task::{DoneWait, Greenlet};
use crate::time::{Sleep, sleep};

/// Waits until every greenlet has finished, or `timeout` has passed:
/// gevent's `joinall`. Returns the indices (into `greenlets`, ascending) of
/// those that finished in time. The results stay in the greenlets.
///
/// ```
/// use std::time::Duration;
/// use greenrt::{joinall, sleep, spawn};
///
/// greenrt::run(async {
///     let gs = vec![
///         spawn(async { sleep(Duration::from_millis(1)).await }),
///         spawn(async { sleep(Duration::from_secs(600)).await }),
///     ];
///     let done = joinall(&gs, Some(Duration::from_millis(50))).await;
///     assert_eq!(done, [0]);
/// });
/// ```
pub async fn joinall<T>(greenlets: &[Greenlet<T>], timeout: Option<Duration>) -> Vec<usize> {
    let mut deadline = timeout.map(sleep);
    for g in greenlets {
        if g.ready() {
            continue;
        }
        let done = DoneWait::new(g.header());
        let finished = match deadline.as_mut() {
            None => {
                done.await;
                true
            }
            Some(s) => DoneOrSleep { done, sleep: s }.await,
        };
        if !finished {
            break;
        }
    }
    finished_indices(greenlets)
}

fn finished_indices<T>(greenlets: &[Greenlet<T>]) -> Vec<usize> {
    greenlets
        .iter()
        .enumerate()
        .filter(|(_, g)| g.ready())
        .map(|(i, _)| i)
        .collect()
}

/// True when the task finished, false when the sleep ended first.
struct DoneOrSleep<'a, 'b> {
    done: DoneWait<'a>,
    sleep: &'b mut Sleep,
}

impl Future for DoneOrSleep<'_, '_> {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        if Pin::new(&mut self.done).poll(cx).is_ready() {
            return Poll::Ready(true);
        }
        match Pin::new(&mut *self.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(false),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Kills every greenlet and waits until they have all finished (gevent's
/// `killall` with `block=True`).
///
/// ```
/// greenrt::run(async {
///     let gs = vec![greenrt::spawn(std::future::pending::<()>())];
///     greenrt::killall(&gs).await;
///     assert!(gs[0].ready() && !gs[0].successful());
/// });
/// ```
pub async fn killall<T>(greenlets: &[Greenlet<T>]) {
    for g in greenlets {
        g.kill();
    }
    for g in greenlets {
        DoneWait::new(g.header()).await;
    }
}

/// The stream of [`iwait`]: indices of finished greenlets, in completion
/// order.
pub type IWait<'a> = AsyncGen<usize, (), (), dyn Future<Output = ()> + 'a>;

/// Yields the index of each greenlet as it finishes, in completion order:
/// gevent's `iwait`. A [`Stream`](futures_core::Stream) built on a coro
/// async generator. Greenlets that finished while the stream was not
/// polled are yielded in the order they finished, however late it is
/// polled again.
///
/// ```
/// use std::time::Duration;
/// use greenrt::{iwait, sleep, spawn};
/// use futures_core::Stream;
///
/// greenrt::run(async {
///     let gs: Vec<_> = [30u64, 10, 20]
///         .into_iter()
///         .map(|ms| spawn(async move { sleep(Duration::from_millis(ms)).await }))
///         .collect();
///     let mut order = Vec::new();
///     let mut s = std::pin::pin!(iwait(&gs));
///     while let Some(i) = std::future::poll_fn(|cx| s.as_mut().poll_next(cx)).await {
///         order.push(i);
///     }
///     assert_eq!(order, [1, 2, 0]);
/// });
/// ```
pub fn iwait<T>(greenlets: &[Greenlet<T>]) -> IWait<'_> {
    AsyncGen::new(move |co| async move {
        let mut waits: Vec<(usize, DoneWait<'_>)> = greenlets
            .iter()
            .enumerate()
            .map(|(i, g)| (i, DoneWait::new(g.header())))
            .collect();
        while !waits.is_empty() {
            let done = AnyDone { waits: &mut waits }.await;
            for i in done {
                co.yield_(i).await;
            }
        }
    })
}

/// Resolves with the indices whose wait completed (removing them).
struct AnyDone<'a, 'b> {
    waits: &'b mut Vec<(usize, DoneWait<'a>)>,
}

impl Future for AnyDone<'_, '_> {
    type Output = Vec<usize>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<usize>> {
        let mut done = Vec::new();
        self.waits.retain_mut(|(i, w)| {
            if Pin::new(&mut *w).poll(cx).is_ready() {
                done.push((w.finished(), *i));
                false
            } else {
                true
            }
        });
        if done.is_empty() {
            Poll::Pending
        } else {
            done.sort_unstable();
            Poll::Ready(done.into_iter().map(|(_, i)| i).collect())
        }
    }
}
