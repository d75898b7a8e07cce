//! What the test binaries of this folder share.

use std::time::Duration;

use greenrt::{Greenlet, GreenletError};

/// How long a test waits for a task that must finish: far beyond any run,
/// so that a hang fails with a message instead of waiting for good.
pub(crate) const BOUND: Duration = Duration::from_secs(60);

/// The result of `g`, a task that must finish within [`BOUND`].
#[track_caller]
pub(crate) fn finished<T>(g: Greenlet<T>) -> Result<T, GreenletError> {
    joined(&g);
    g.get_blocking().expect("nothing took the result before")
}

/// Waits for `g`, a task that must finish within [`BOUND`].
#[track_caller]
pub(crate) fn joined<T>(g: &Greenlet<T>) {
    assert!(
        g.join_timeout_blocking(BOUND),
        "a task did not finish within {BOUND:?}"
    );
}

/// What `f` returns, run on a thread of its own: it must return within
/// [`BOUND`] (a hang fails the test instead of holding it for good; the
/// thread is then left behind). A panic of `f` is the test's.
#[track_caller]
#[allow(dead_code, reason = "not every test binary of this folder uses it")]
pub(crate) fn within_bound<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(BOUND) {
        Ok(v) => v,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(t.join().expect_err("it sent nothing: it panicked"))
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("did not return within {BOUND:?}")
        }
    }
}
