//! Waiting on many greenlets: `joinall`, `killall`, `iwait`.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use coro::AsyncGen;
use futures_core::{FusedStream, Stream};
use sync_prims::futures::EventWait;

use crate::hub;
use crate::task::raw::Header;
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
/// // A clock that an idle hub moves to its next timer: the example takes
/// // no real time, and a busy machine cannot reorder its timers.
/// let clock = greenrt::time::ManualClock::new();
/// let rt = greenrt::Runtime::builder().workers(1).clock(clock.clone()).build().unwrap();
/// rt.block_on(async {
///     let gs = vec![
///         spawn(async { sleep(Duration::from_millis(1)).await }),
///         spawn(async { sleep(Duration::from_secs(600)).await }),
///     ];
///     let done = joinall(&gs, Some(Duration::from_millis(50))).await;
///     assert_eq!(done, [0]);
/// });
/// assert_eq!(clock.elapsed(), Duration::from_millis(50));
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
/// order. It is `Send`, so a task of a [`Runtime`](crate::Runtime) may
/// hold it across its awaits.
pub struct IWait<'a> {
    inner: AsyncGen<usize, (), (), dyn Future<Output = ()> + Send + 'a>,
}

impl Stream for IWait<'_> {
    type Item = usize;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<usize>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl FusedStream for IWait<'_> {
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

impl fmt::Debug for IWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IWait")
            .field("terminated", &self.inner.is_terminated())
            .finish_non_exhaustive()
    }
}

/// Yields the index of each greenlet as it finishes, in completion order:
/// gevent's `iwait`. A [`Stream`] built on a coro async generator.
/// Greenlets that finished while the stream was not polled are yielded in
/// the order they finished, however late it is polled again (greenlets of
/// two hubs that finish at the same moment, one found while the other is
/// still being marked finished, may come in either order). Each
/// completion costs O(1), however many greenlets are waited for.
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
    // Only the headers go into the body, so that the stream is `Send`
    // whatever `T` is.
    let headers: Vec<&Header> = greenlets.iter().map(Greenlet::header).collect();
    IWait {
        inner: AsyncGen::new_send(move |co| async move {
            let mut waits = Waits::new(headers);
            while !waits.is_empty() {
                let done = poll_fn(|cx| waits.poll_done(cx)).await;
                for i in done {
                    co.yield_(i).await;
                }
            }
        }),
    }
}

/// The waits of [`iwait`], one per greenlet.
///
/// Each greenlet's completion event holds a waker of its own that names the
/// wait, so a completion costs O(1): only the waits named since the last
/// poll are polled again, never all of them.
///
/// The awaiting task's waker is held once, by `ready`. When every greenlet
/// still waited for belongs to the hub the task runs on, that waker can
/// only be woken by their completions: one join edge records it for the
/// deadlock diagnosis.
struct Waits<'a> {
    headers: Vec<&'a Header>,
    /// Per greenlet: its event wait and the waker that names it, until it
    /// finished.
    waits: Vec<Option<(EventWait<'a>, Waker)>>,
    left: usize,
    ready: Arc<Ready>,
    started: bool,
    /// (uid of the hub last polled on, how many greenlets left are of a
    /// hub that may run meanwhile: not that hub, nor one it holds, see
    /// `HubShared::held_by`).
    foreign: Option<(u32, usize)>,
    edge: hub::JoinEdge,
}

/// The waits named by their wakers since the last poll, and the awaiting
/// task's waker.
///
/// The waker is kept when it is woken (not taken, as an `AtomicWaker`
/// would): the join edge counts it until the waits end, whether or not the
/// task polls them again first.
#[derive(Default)]
struct Ready(Mutex<ReadyState>);

#[derive(Default)]
struct ReadyState {
    named: Vec<usize>,
    waker: Option<Waker>,
}

impl Ready {
    fn lock(&self) -> std::sync::MutexGuard<'_, ReadyState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The waker of wait `index`.
struct Named {
    index: usize,
    ready: Arc<Ready>,
}

impl Wake for Named {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Woken outside the lock, from a clone: a waker that polls its
        // task at once may register again.
        let waker = {
            let mut r = self.ready.lock();
            r.named.push(self.index);
            r.waker.clone()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<'a> Waits<'a> {
    fn new(headers: Vec<&'a Header>) -> Self {
        Waits {
            waits: headers.iter().map(|_| None).collect(),
            left: headers.len(),
            headers,
            ready: Arc::default(),
            started: false,
            foreign: None,
            edge: hub::JoinEdge::default(),
        }
    }

    fn is_empty(&self) -> bool {
        self.left == 0
    }

    /// The greenlets found finished by this poll, in completion order.
    fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<Vec<usize>> {
        // An edge for the waker about to be replaced stops counting first,
        // so that a deadlock check never counts more edges than wakers (the
        // edge for this one is made once the waits are polled).
        self.edge.keep_only(hub::polled_by(cx.waker()));
        // Registered, and the named waits taken, under one lock: a
        // completion from here on names its wait again and wakes the task.
        let named = {
            let mut r = self.ready.lock();
            if !r.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                r.waker = Some(cx.waker().clone());
            }
            std::mem::take(&mut r.named)
        };
        let mut done = Vec::new();
        if !self.started {
            self.started = true;
            for i in 0..self.headers.len() {
                self.poll_one(i, true, &mut done);
            }
        } else {
            for i in named {
                self.poll_one(i, false, &mut done);
            }
        }
        // Greenlets of other hubs that finished while the waits above were
        // polled, named meanwhile: polled now, before the batch is sorted,
        // so that none that finished before one found above comes after
        // it. Each wait is named once, so this ends.
        loop {
            let named = std::mem::take(&mut self.ready.lock().named);
            if named.is_empty() {
                break;
            }
            for i in named {
                self.poll_one(i, false, &mut done);
            }
        }
        self.left -= done.len();
        if self.left == 0 {
            // Nothing left to wake the task: its waker goes, as its edge
            // does (below), so that the waits, kept after their last
            // greenlet (a stream read exactly as many times), hold no
            // waker the deadlock check cannot account for.
            self.ready.lock().waker = None;
        }
        if let Some((uid, foreign)) = self.foreign {
            // Counted on that hub's thread (`held_by` depends on it): kept
            // up to date there, counted again elsewhere.
            self.foreign = (hub::current_uid() == Some(uid)).then(|| {
                let gone = done
                    .iter()
                    .filter(|&&(_, i)| !self.headers[i].hub.held_by(uid));
                (uid, foreign - gone.count())
            });
        }
        self.update_edge(cx.waker());
        if done.is_empty() {
            Poll::Pending
        } else {
            done.sort_unstable();
            Poll::Ready(done.into_iter().map(|(_, i)| i).collect())
        }
    }

    /// Polls wait `i` (made at the first poll), adding `(finished, i)` to
    /// `done` when its greenlet has finished.
    fn poll_one(&mut self, i: usize, first: bool, done: &mut Vec<(u64, usize)>) {
        let header = self.headers[i];
        if !first && self.waits[i].is_none() {
            // Named twice, or already finished.
            return;
        }
        let finished = header.is_complete() || {
            let (wait, waker) = self.waits[i].get_or_insert_with(|| {
                let named = Named {
                    index: i,
                    ready: self.ready.clone(),
                };
                (header.done.wait_async(), Waker::from(Arc::new(named)))
            });
            Pin::new(wait)
                .poll(&mut Context::from_waker(waker))
                .is_ready()
        };
        if finished {
            self.waits[i] = None;
            done.push((header.finished.load(Ordering::Acquire), i));
        }
    }

    /// Keeps one join edge for the awaiting task while every greenlet left
    /// is of its hub, and none otherwise.
    fn update_edge(&mut self, waker: &Waker) {
        let want = hub::polled_by(waker).and_then(|(uid, task)| {
            if self.foreign.is_none_or(|(u, _)| u != uid) {
                // First poll on this hub: O(n) once, then kept up to date.
                let foreign = (self.headers.iter().zip(&self.waits))
                    .filter(|(header, w)| w.is_some() && !header.hub.held_by(uid))
                    .count();
                self.foreign = Some((uid, foreign));
            }
            let local = self.left > 0 && self.foreign == Some((uid, 0));
            local.then_some((uid, task))
        });
        self.edge.set(want);
    }
}

impl Drop for Waits<'_> {
    fn drop(&mut self) {
        self.edge.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::sync::Arc;
    use std::task::Poll;

    use sync_prims::Event;

    use super::*;
    use crate::hub;

    fn live_edges() -> usize {
        hub::with_current(|h| h.live_edges()).expect("on a hub")
    }

    /// One poll of `waits`, without waiting.
    async fn poll_once(waits: &mut Waits<'_>) -> Poll<Vec<usize>> {
        poll_fn(|cx| Poll::Ready(waits.poll_done(cx))).await
    }

    #[test]
    fn a_completion_wakes_only_its_own_wait() {
        crate::run(async {
            let gates: Vec<Arc<Event>> = (0..100).map(|_| Arc::new(Event::new())).collect();
            let gs: Vec<_> = gates
                .iter()
                .map(|g| {
                    let g = g.clone();
                    crate::spawn(async move { g.wait_async().await })
                })
                .collect();
            let mut waits = Waits::new(gs.iter().map(Greenlet::header).collect());
            assert_eq!(poll_once(&mut waits).await, Poll::Pending);
            // Every greenlet is of this hub: one edge for the root.
            assert_eq!(live_edges(), 1);
            gates[37].set();
            crate::joinall(&gs[37..38], None).await;
            // The root's waker is still held, for the edge that counts it
            // (woken, it is not taken away).
            assert!(waits.ready.lock().waker.is_some());
            assert_eq!(live_edges(), 1);
            // Only its own wait was named, and only it is polled again.
            assert_eq!(waits.ready.lock().named, [37]);
            assert_eq!(poll_once(&mut waits).await, Poll::Ready(vec![37]));
            assert!(waits.ready.lock().named.is_empty());
            assert_eq!(poll_once(&mut waits).await, Poll::Pending);
            for gate in &gates {
                gate.set();
            }
            crate::joinall(&gs, None).await;
            let Poll::Ready(mut rest) = poll_once(&mut waits).await else {
                panic!("the others finished")
            };
            rest.sort_unstable();
            assert_eq!(rest, (0..100).filter(|&i| i != 37).collect::<Vec<_>>());
            assert!(waits.is_empty());
            assert_eq!(live_edges(), 0);
        });
    }

    #[test]
    fn dropping_the_waits_removes_their_edge() {
        crate::run(async {
            let gate = Arc::new(Event::new());
            let g2 = gate.clone();
            let gs = [crate::spawn(async move { g2.wait_async().await })];
            let mut waits = Waits::new(gs.iter().map(Greenlet::header).collect());
            assert_eq!(poll_once(&mut waits).await, Poll::Pending);
            assert_eq!(live_edges(), 1);
            drop(waits);
            assert_eq!(live_edges(), 0);
            gate.set();
        });
    }

    #[test]
    fn a_greenlet_of_another_hub_leaves_the_awaiting_task_unaccounted() {
        // It can finish whatever this hub does: its waker must not be
        // counted as one only this hub's tasks could wake.
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let gate = Arc::new(Event::new());
        let g2 = gate.clone();
        let far = rt.spawn_on(0, async move { g2.wait_async().await });
        crate::run(async {
            let near_gate = Arc::new(Event::new());
            let n2 = near_gate.clone();
            let near = crate::spawn(async move { n2.wait_async().await });
            let gs = [near, far];
            let mut waits = Waits::new(gs.iter().map(Greenlet::header).collect());
            assert_eq!(poll_once(&mut waits).await, Poll::Pending);
            assert_eq!(live_edges(), 0);
            gate.set();
            // Once only greenlets of this hub are left, the edge is recorded.
            assert_eq!(poll_fn(|cx| waits.poll_done(cx)).await, [1]);
            assert_eq!(live_edges(), 1);
            near_gate.set();
        });
    }

    #[test]
    fn waits_moved_to_another_hubs_thread_and_back_count_again() {
        // `far` is of a runtime's hub, `near` of the hub a nested run holds:
        // from that nested hub, only `far` can finish meanwhile.
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let (gate, near_gate) = (Arc::new(Event::new()), Arc::new(Event::new()));
        let g2 = gate.clone();
        let far = rt.spawn_on(0, async move { g2.wait_async().await });
        crate::run(async {
            let n2 = near_gate.clone();
            let near = crate::spawn(async move { n2.wait_async().await });
            // 'static, so that the waits may visit the runtime's thread.
            static GS: std::sync::OnceLock<[Greenlet<()>; 2]> = std::sync::OnceLock::new();
            let gs = GS.get_or_init(|| [near, far]);
            crate::run(async {
                let mut waits = Waits::new(gs.iter().map(Greenlet::header).collect());
                assert_eq!(poll_once(&mut waits).await, Poll::Pending);
                assert_eq!(live_edges(), 0, "`far` may finish");
                gate.set();
                gs[1].join_blocking();
                // Polled on `far`'s own thread, by no hub's task, where
                // `far`'s hub counts as held: it must not be counted there.
                let (waits, found) = rt
                    .spawn_on(0, async move {
                        let mut cx = Context::from_waker(Waker::noop());
                        let found = waits.poll_done(&mut cx);
                        (waits, found)
                    })
                    .get_blocking()
                    .unwrap()
                    .unwrap();
                let mut waits = waits;
                assert_eq!(found, Poll::Ready(vec![1]));
                // Back on the nested hub, only `near` is left, which only
                // the hub it holds could finish: an edge.
                assert_eq!(poll_once(&mut waits).await, Poll::Pending);
                assert_eq!(live_edges(), 1);
            });
            near_gate.set();
            crate::joinall(&gs[..1], None).await;
        });
    }
}
