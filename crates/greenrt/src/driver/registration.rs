//! A socket's registration with its hub's reactor: readiness bits and the
//! wakers of one reader and one writer.
//!
//! # Readiness word
//!
//! | bits      | meaning                                                  |
//! |-----------|----------------------------------------------------------|
//! | `0b01`    | readable (or closed/errored: a read will not block)       |
//! | `0b10`    | writable (or closed/errored: a write will not block)      |
//! | `>> 2`    | tick: bumped by every event                              |
//!
//! An operation that finds its direction ready tries the system call; on
//! `WouldBlock` it clears that bit, but only if the tick is still the one it
//! saw, so an event that arrived meanwhile is never lost. A new source
//! starts ready both ways: the first read or write is tried at once, with
//! no trip through the reactor.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use polling::{Event, PollMode};

use super::reactor::IoShared;

const READABLE: usize = 0b01;
const WRITABLE: usize = 0b10;
const TICK_ONE: usize = 0b100;

/// Which way an operation goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

impl Direction {
    fn mask(self) -> usize {
        match self {
            Direction::Read => READABLE,
            Direction::Write => WRITABLE,
        }
    }
}

/// The readiness of one source, shared by its registration and the reactor.
#[derive(Debug)]
pub(crate) struct ScheduledIo {
    readiness: AtomicUsize,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl ScheduledIo {
    /// Called by the reactor for an event.
    pub(super) fn set_ready(&self, readable: bool, writable: bool) {
        let bits = if readable { READABLE } else { 0 } | if writable { WRITABLE } else { 0 };
        self.readiness.fetch_add(TICK_ONE, Ordering::AcqRel);
        self.readiness.fetch_or(bits, Ordering::AcqRel);
        if readable {
            self.reader.wake();
        }
        if writable {
            self.writer.wake();
        }
    }
}

/// A registered source. Deregister it with [`Registration::deregister`]
/// before its descriptor is closed (the owning socket type's `Drop` does).
#[derive(Debug)]
pub(crate) struct Registration {
    shared: Arc<IoShared>,
    key: usize,
    io: Arc<ScheduledIo>,
}

impl Registration {
    /// Registers `fd` with `shared`'s poller, edge-triggered, both ways.
    ///
    /// # Safety
    ///
    /// `fd` must stay open until [`deregister`](Registration::deregister)
    /// is called with it.
    pub(crate) unsafe fn new(
        shared: Arc<IoShared>,
        fd: BorrowedFd<'_>,
    ) -> io::Result<Registration> {
        let io = Arc::new(ScheduledIo {
            readiness: AtomicUsize::new(READABLE | WRITABLE),
            reader: AtomicWaker::new(),
            writer: AtomicWaker::new(),
        });
        let key = shared.insert(io.clone());
        // SAFETY: the caller keeps `fd` open until `deregister`, which
        // deletes it from this poller first (polling's contract for `add`).
        let added = unsafe {
            shared
                .poller
                .add_with_mode(fd.as_raw_fd(), Event::all(key), PollMode::Edge)
        };
        if let Err(e) = added {
            shared.remove(key);
            return Err(e);
        }
        Ok(Registration { shared, key, io })
    }

    /// Removes the source from the poller; call before closing `fd`.
    pub(crate) fn deregister(&self, fd: BorrowedFd<'_>) {
        // An error means the descriptor is not registered any more; either
        // way the key is free.
        let _ = self.shared.poller.delete(fd);
        self.shared.remove(self.key);
    }

    /// Ready when the direction is ready (returns the readiness seen).
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<usize> {
        let seen = self.io.readiness.load(Ordering::Acquire);
        if seen & dir.mask() != 0 {
            return Poll::Ready(seen);
        }
        match dir {
            Direction::Read => self.io.reader.register(cx.waker()),
            Direction::Write => self.io.writer.register(cx.waker()),
        }
        let seen = self.io.readiness.load(Ordering::Acquire);
        if seen & dir.mask() != 0 {
            Poll::Ready(seen)
        } else {
            Poll::Pending
        }
    }

    /// Clears `dir`'s bit if no event arrived since `seen` was read.
    pub(crate) fn clear(&self, seen: usize, dir: Direction) {
        let _ = self
            .io
            .readiness
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                (cur & !(READABLE | WRITABLE) == seen & !(READABLE | WRITABLE))
                    .then_some(cur & !dir.mask())
            });
    }

    /// Runs the non-blocking `op` when `dir` is ready, until it does not
    /// return `WouldBlock`.
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            let seen = match self.poll_ready(cx, dir) {
                Poll::Ready(s) => s,
                Poll::Pending => return Poll::Pending,
            };
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear(seen, dir),
                r => return Poll::Ready(r),
            }
        }
    }
}

impl Registration {
    /// Like [`poll_io`](Registration::poll_io) for a stream write of `want`
    /// bytes: a short write (some bytes, fewer than asked) means the send
    /// buffer was full at that instant, so write readiness is cleared at
    /// once and the next write waits for the kernel's next edge instead of
    /// paying for a system call that would only say `WouldBlock`. (Reads
    /// cannot do the same: a peer's FIN that came with the last bytes
    /// raises no further edge, and only a read returning 0 sees it.)
    pub(crate) fn poll_io_stream(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        want: usize,
        mut op: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            let seen = match self.poll_ready(cx, dir) {
                Poll::Ready(s) => s,
                Poll::Pending => return Poll::Pending,
            };
            match op() {
                Ok(n) if n > 0 && n < want => {
                    self.clear(seen, dir);
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear(seen, dir),
                r => return Poll::Ready(r),
            }
        }
    }
}

/// A non-blocking socket registered with a hub's reactor; deregistered
/// before the socket closes. Every green socket type wraps one.
#[derive(Debug)]
pub(crate) struct Io<T: AsFd> {
    registration: Registration,
    /// `Some` until drop.
    inner: Option<T>,
}

impl<T: AsFd> Io<T> {
    /// Registers `inner` (already non-blocking) with the current hub's
    /// reactor.
    pub(crate) fn new(inner: T) -> io::Result<Io<T>> {
        let shared = crate::driver::current_io()?;
        // SAFETY: `inner` is owned by the returned `Io`, whose `Drop`
        // deregisters it before dropping (closing) it.
        let registration = unsafe { Registration::new(shared, inner.as_fd())? };
        Ok(Io {
            registration,
            inner: Some(inner),
        })
    }

    pub(crate) fn get(&self) -> &T {
        self.inner.as_ref().expect("present until drop")
    }

    pub(crate) fn registration(&self) -> &Registration {
        &self.registration
    }

    /// `poll_io` on this socket.
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        let inner = self.get();
        self.registration.poll_io(cx, dir, || op(inner))
    }
}

impl<T: AsFd> Drop for Io<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            self.registration.deregister(inner.as_fd());
            drop(inner);
        }
    }
}
