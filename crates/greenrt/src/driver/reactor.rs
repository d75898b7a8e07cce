//! The I/O driver of a hub: one `mio` poll (epoll on Linux, kqueue on
//! macOS) whose wait is the hub's park, so that an idle hub sleeps in one
//! system call until a socket is ready, its nearest timer is due, or
//! another thread schedules work on it (the poll's waker).
//!
//! Sockets are registered once, edge-triggered, for both directions; a
//! readiness event sets the socket's ready bits and wakes the task waiting
//! in that direction (see [`ScheduledIo`]). No re-arming system call is made
//! per operation, and a wait is exactly one system call (the timeout is
//! rounded up to a millisecond, which the hub's timers tolerate: they fire
//! at or after their deadline).

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use mio::{Events, Poll, Registry, Token, Waker};

use super::registration::ScheduledIo;
use super::{Park, Unpark};

/// A hub's reactor; the hub owns it as its [`Park`].
pub(crate) struct Reactor {
    poll: Poll,
    shared: Arc<IoShared>,
    events: Events,
    /// The sources of the last wait's events, in their order (`None` for
    /// the wake-up's and for sources gone since), taken under the lock and
    /// woken after it; kept for its capacity.
    ready: Vec<Option<Arc<ScheduledIo>>>,
}

/// The token of the waker's events (no source has it: keys are slab
/// indices, far below).
const WAKE: Token = Token(usize::MAX);

/// The part of a reactor that sockets and other threads hold.
pub(crate) struct IoShared {
    /// The poll's registry (a descriptor of its own) and waker (an
    /// eventfd): given back when the reactor is dropped, rather than kept
    /// open for as long as a `Greenlet`, `Handle` or socket of the hub
    /// lives.
    os: RwLock<Option<Os>>,
    sources: Mutex<Slab>,
    /// Registered sources (the deadlock check and leak tests read it).
    count: AtomicUsize,
    /// The reactor was dropped (its hub ended): nothing waits on the poll
    /// any more, and its sources' operations fail instead of waiting.
    stopped: AtomicBool,
}

/// What of the poll other threads use.
struct Os {
    registry: Registry,
    waker: Waker,
}

/// Registered sources by key; freed keys are reused.
#[derive(Default)]
struct Slab {
    entries: Vec<Option<Arc<ScheduledIo>>>,
    free: Vec<usize>,
}

impl std::fmt::Debug for IoShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoShared")
            .field("sources", &self.sources())
            .finish_non_exhaustive()
    }
}

impl Reactor {
    /// A new reactor and the handle sockets register with.
    pub(crate) fn new() -> io::Result<(Reactor, Arc<IoShared>)> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Waker::new(&registry, WAKE)?;
        let shared = Arc::new(IoShared {
            os: RwLock::new(Some(Os { registry, waker })),
            sources: Mutex::new(Slab::default()),
            count: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
        });
        let reactor = Reactor {
            poll,
            shared: shared.clone(),
            events: Events::with_capacity(1024),
            ready: Vec::new(),
        };
        Ok((reactor, shared))
    }

    /// Turns the events of the last wait into readiness and wake-ups.
    ///
    /// The wake-ups are made outside the lock of the sources: a waker may
    /// drop or make a socket of this reactor (a foreign executor's, which
    /// drops its task when woken after it shut down), and that takes the
    /// lock.
    fn dispatch(&mut self) {
        if self.events.is_empty() {
            return;
        }
        {
            let sources = self
                .shared
                .sources
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            self.ready.extend(self.events.iter().map(|ev| {
                if ev.token() == WAKE {
                    return None;
                }
                sources.entries.get(ev.token().0).cloned().flatten()
            }));
        }
        // Every event is dispatched, also when a waker panics: an edge-
        // triggered event not turned into readiness would never come again.
        let ready = self.events.iter().zip(self.ready.drain(..));
        crate::hub::each_then_panic(ready, |(ev, io)| {
            if let Some(io) = io {
                io.set_ready(ev);
            }
        });
    }
}

impl Drop for Reactor {
    /// Sockets may outlive their hub (moved to another, or kept after
    /// `block_on`): their waiters are woken, and find the reactor stopped.
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Woken outside the lock: a wake-up may drop a socket, whose
        // deregistration takes it.
        let sources: Vec<Arc<ScheduledIo>> = self
            .shared
            .sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .iter()
            .flatten()
            .cloned()
            .collect();
        // Every source's waiters are woken, also when a waker panics; the
        // first panic goes on once all are, unless this drop is part of an
        // unwinding already (a second panic would abort).
        let woken = catch_unwind(AssertUnwindSafe(|| {
            crate::hub::each_then_panic(sources, |io| io.wake_all());
        }));
        // Nothing waits on the poll now: its registry and waker go.
        let os = self
            .shared
            .os
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop(os);
        if let Err(p) = woken {
            if std::thread::panicking() {
                crate::task::raw::drop_payload(p);
            } else {
                resume_unwind(p);
            }
        }
    }
}

impl Park for Reactor {
    fn park(&mut self, timeout: Option<Duration>) {
        self.events.clear();
        // An interrupted wait (EINTR) is a spurious return, which `park` allows.
        let _ = self.poll.poll(&mut self.events, timeout);
        self.dispatch();
    }

    fn poll_ready(&mut self) {
        self.park(Some(Duration::ZERO));
    }

    fn unparker(&self) -> Arc<dyn Unpark> {
        self.shared.clone()
    }

    fn has_wake_sources(&self) -> bool {
        self.shared.sources() > 0
    }
}

impl Unpark for IoShared {
    fn unpark(&self) {
        // Fails only if the poll is gone, and then nobody waits on it.
        if let Some(os) = &*self.os.read().unwrap_or_else(|e| e.into_inner()) {
            let _ = os.waker.wake();
        }
    }
}

impl IoShared {
    /// Registers `source` for `token` with the poll; an error once the
    /// reactor is gone.
    pub(super) fn register(
        &self,
        source: &mut impl mio::event::Source,
        token: Token,
        interest: mio::Interest,
    ) -> io::Result<()> {
        match &*self.os.read().unwrap_or_else(|e| e.into_inner()) {
            Some(os) => os.registry.register(source, token, interest),
            None => Err(io::Error::other(super::HubStopped)),
        }
    }

    /// Takes `source` off the poll (nothing to do once the reactor is
    /// gone, and the poll with it).
    pub(super) fn deregister(&self, source: &mut impl mio::event::Source) {
        if let Some(os) = &*self.os.read().unwrap_or_else(|e| e.into_inner()) {
            // An error means the descriptor is not registered any more.
            let _ = os.registry.deregister(source);
        }
    }

    /// Whether the reactor was dropped.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// How many sources are registered.
    pub(crate) fn sources(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Reserves a key for `io`.
    pub(super) fn insert(&self, io: Arc<ScheduledIo>) -> usize {
        let mut s = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let key = match s.free.pop() {
            Some(k) => {
                s.entries[k] = Some(io);
                k
            }
            None => {
                s.entries.push(Some(io));
                s.entries.len() - 1
            }
        };
        self.count.fetch_add(1, Ordering::Relaxed);
        key
    }

    /// Frees `key`. An event still in flight for it finds an empty entry
    /// (or, once reused, sets a spurious readiness, which operations absorb).
    pub(super) fn remove(&self, key: usize) {
        let mut s = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = s.entries.get_mut(key) {
            if e.take().is_some() {
                s.free.push(key);
                self.count.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}
