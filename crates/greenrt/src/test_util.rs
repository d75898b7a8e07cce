//! Helpers of the crate's unit tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Wake, Waker};

/// The waker of a task of its own, which records that it was woken.
pub(crate) struct Flag(AtomicBool);

impl Flag {
    /// Whether the waker was woken.
    pub(crate) fn woken(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A new [`Flag`] and its waker.
pub(crate) fn flag() -> (Arc<Flag>, Waker) {
    let f = Arc::new(Flag(AtomicBool::new(false)));
    let w = Waker::from(f.clone());
    (f, w)
}
