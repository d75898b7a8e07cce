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
