//! `yield_now`: gevent's `sleep(0)`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Gives the hub to the other tasks: gevent's `sleep(0)`. Every task that
/// is runnable when `yield_now` is called runs before the caller resumes:
/// those queued on the hub, those woken from other threads, and those
/// whose timers are due. A task whose socket became ready meanwhile is
/// seen at the hub's next look at its reactor, once per round, and may
/// come after the caller.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// let log = Rc::new(RefCell::new(Vec::new()));
/// greenrt::run({
///     let log = log.clone();
///     async move {
///         let l = log.clone();
///         let other = greenrt::spawn(async move { l.borrow_mut().push("other") });
///         greenrt::yield_now().await;
///         log.borrow_mut().push("root");
///         other.await.unwrap();
///     }
/// });
/// assert_eq!(*log.borrow(), ["other", "root"]);
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        // Re-queued at the back of the run queue: everything ahead runs first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
