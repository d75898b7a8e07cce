//! A socket's registration with its hub's reactor: readiness bits and the
//! wakers of the tasks waiting to read and to write.
//!
//! Every task that waits in one direction is woken by the next event there
//! (a `UdpSocket` or `TcpListener` shared by several tasks, each in
//! `recv_from` or `accept`): each retries, one gets the datagram or the
//! connection, the others wait again.
//!
//! The futures of the sockets that many tasks share by design (a
//! listener's `accept`, a `UdpSocket`'s) wait under a key of their own
//! ([`Wait`]) and take their waker out when they are dropped before the
//! event (a timeout, a `select`), so that waiters which gave up cannot
//! pile up, each holding its task, while no event comes. Any other waiter
//! (a `TcpStream`'s, whose reads and writes each have one task at a time,
//! or one registered through a `poll_*` method, which has no future to
//! drop) is kept once per task and stays until the next event, which wakes
//! it once, spuriously.
//!
//! # Readiness word
//!
//! | bits      | meaning                                                    |
//! |-----------|------------------------------------------------------------|
//! | `0b0001`  | readable: a read may not block                             |
//! | `0b0010`  | writable: a write may not block                            |
//! | `0b0100`  | read closed (peer's FIN, or an error): reads never block again |
//! | `0b1000`  | write closed (reset or error): writes never block again    |
//! | `0b1_0000`| urgent data came (TCP's out-of-band byte): a short read no longer tells a drained buffer |
//! | `>> 5`    | tick: bumped by every event                                |
//!
//! An operation that finds its direction ready tries the system call; on
//! `WouldBlock`, or on a short transfer (fewer bytes than asked: the buffer
//! was drained or filled), it clears that direction's bit, but only if the
//! tick is still the one it saw, so an event that arrived meanwhile is
//! never lost. The closed bits are never cleared: a FIN that came in the
//! same edge as the last bytes is still seen by the next read. Nor is the
//! urgent bit: a read stops at the urgent mark, short with bytes still
//! queued, so once a peer sent urgent data only `WouldBlock` clears the
//! socket's readiness. A new source starts ready both ways: the first read
//! or write is tried at once, with no trip through the reactor.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use mio::unix::SourceFd;
use mio::{Interest, Token};

use super::reactor::IoShared;

const READABLE: usize = 0b0001;
const WRITABLE: usize = 0b0010;
const READ_CLOSED: usize = 0b0100;
const WRITE_CLOSED: usize = 0b1000;
const URGENT: usize = 0b1_0000;
const BITS: usize = 0b1_1111;
const TICK_ONE: usize = 0b10_0000;

/// The error of an operation on a socket whose hub has stopped.
#[derive(Debug)]
pub(crate) struct HubStopped;

impl std::fmt::Display for HubStopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "the hub this socket was made on has stopped: a socket works while that hub runs",
        )
    }
}

impl std::error::Error for HubStopped {}

impl HubStopped {
    /// Whether `e` is this error.
    pub(crate) fn is(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|inner| inner.is::<HubStopped>())
    }
}

/// Which way an operation goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

impl Direction {
    /// The bits that make this direction ready.
    fn mask(self) -> usize {
        match self {
            Direction::Read => READABLE | READ_CLOSED,
            Direction::Write => WRITABLE | WRITE_CLOSED,
        }
    }

    /// The bit an operation clears when it used up the readiness.
    fn ready_bit(self) -> usize {
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
    reader: Waiters,
    writer: Waiters,
}

/// The wakers of the futures waiting in one direction: one per [`Wait`],
/// and one per task for the waiters without a key.
#[derive(Debug, Default)]
struct Waiters {
    list: Mutex<WakerList>,
    /// How many times the list was woken with wakers in it (and emptied);
    /// written under the lock. A [`Wait`] that registered before the last wake-up has
    /// nothing left in the list to take out.
    wakes: AtomicU64,
}

/// One waker inline (the common case: one reader, one writer), the others
/// beside it; each with the key of its [`Wait`], or [`NO_KEY`]. `first` is
/// empty only when the list is.
#[derive(Debug, Default)]
struct WakerList {
    first: Option<(u64, Waker)>,
    more: Vec<(u64, Waker)>,
    /// The last key handed out.
    keys: u64,
}

/// The key of a waiter without a [`Wait`].
const NO_KEY: u64 = 0;

/// A future's wait in one direction of a socket: the waker it registers
/// has a key of its own, and is taken out of the list when the `Wait` is
/// dropped (see the module docs).
#[derive(Debug)]
pub(crate) struct Wait<'a> {
    registration: &'a Registration,
    dir: Direction,
    key: u64,
    /// [`Waiters::wakes`] when the waker was last registered.
    wakes: u64,
}

impl Wait<'_> {
    /// `poll_io` under this wait's key.
    pub(crate) fn poll_io<R>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        let (registration, dir) = (self.registration, self.dir);
        registration.poll_io_until(cx, dir, Some(self), op, |_| false)
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if self.key != NO_KEY {
            self.registration
                .waiters(self.dir)
                .forget(self.key, self.wakes);
        }
    }
}

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, WakerList> {
        self.list.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `waker`: under `wait`'s key (given one if it has none yet),
    /// replacing that key's waker; without a wait, unless a waker of the
    /// same task is there without a key.
    fn register(&self, waker: &Waker, wait: Option<&mut Wait<'_>>) {
        let mut guard = self.lock();
        let l = &mut *guard;
        let key = match wait {
            Some(wait) => {
                if wait.key == NO_KEY {
                    l.keys += 1;
                    wait.key = l.keys;
                }
                wait.wakes = self.wakes.load(Ordering::Relaxed);
                wait.key
            }
            None => NO_KEY,
        };
        // The entry this waker replaces or joins: the key's own, or a
        // keyless one of the same task.
        let same = |(k, w): &(u64, Waker)| *k == key && (key != NO_KEY || w.will_wake(waker));
        let found = match &mut l.first {
            None => {
                l.first = Some((key, waker.clone()));
                return;
            }
            Some(e) if same(e) => Some(e),
            Some(_) => l.more.iter_mut().find(|e| same(e)),
        };
        let replaced = match found {
            Some((_, w)) if !w.will_wake(waker) => Some(std::mem::replace(w, waker.clone())),
            Some(_) => None,
            None => {
                l.more.push((key, waker.clone()));
                None
            }
        };
        // Dropped outside the lock: a waker's drop may drop its task, and
        // with it a `Wait` of this list, whose drop takes the lock.
        drop(guard);
        drop(replaced);
    }

    /// Takes out the waker of a [`Wait`] that registered under `key` when
    /// the list had been woken `wakes` times, if it is still there.
    fn forget(&self, key: u64, wakes: u64) {
        // Woken since (the common end of a wait): the list no longer has
        // it, and no lock is needed to know.
        if self.wakes.load(Ordering::Relaxed) != wakes {
            return;
        }
        let mut l = self.lock();
        if self.wakes.load(Ordering::Relaxed) != wakes {
            return;
        }
        let removed = if l.first.as_ref().is_some_and(|(k, _)| *k == key) {
            // `first` is empty only when the list is.
            let more = l.more.pop();
            std::mem::replace(&mut l.first, more)
        } else {
            l.more
                .iter()
                .position(|(k, _)| *k == key)
                .map(|i| l.more.swap_remove(i))
        };
        // Dropped outside the lock, as in `register`.
        drop(l);
        drop(removed);
    }

    /// Wakes every waiter, outside the lock.
    fn wake(&self) {
        let (first, more) = {
            // Taking `more` whole leaves an empty `Vec`, which holds no
            // allocation; one that is already empty costs nothing to take.
            let mut l = self.lock();
            if l.first.is_none() {
                // Empty (`first` is empty only when the list is): no wait
                // has an entry to lose, and the count stays.
                return;
            }
            // Written only under the lock: no read-modify-write needed.
            let wakes = self.wakes.load(Ordering::Relaxed);
            self.wakes.store(wakes + 1, Ordering::Relaxed);
            (l.first.take(), std::mem::take(&mut l.more))
        };
        crate::hub::wake_each(first.into_iter().chain(more).map(|(_, w)| w));
    }

    /// How many wakers the list holds (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        let l = self.lock();
        usize::from(l.first.is_some()) + l.more.len()
    }
}

impl ScheduledIo {
    /// A source with `readiness` and no waiters.
    fn new(readiness: usize) -> ScheduledIo {
        ScheduledIo {
            readiness: AtomicUsize::new(readiness),
            reader: Waiters::default(),
            writer: Waiters::default(),
        }
    }

    /// Called when the reactor stops: wakes both waiters, which then find
    /// it stopped.
    pub(super) fn wake_all(&self) {
        self.wake(true, true);
    }

    /// Wakes the reader's waiters, the writer's or both; both also when a
    /// waker of the first panics (the first panic goes on once both are
    /// woken): a waiter of an edge-triggered event left unwoken would wait
    /// for good.
    fn wake(&self, read: bool, write: bool) {
        let both = [read.then_some(&self.reader), write.then_some(&self.writer)];
        crate::hub::each_then_panic(both.into_iter().flatten(), Waiters::wake);
    }

    /// Called by the reactor for an event.
    pub(super) fn set_ready(&self, ev: &mio::event::Event) {
        let error = ev.is_error();
        let mut bits = 0;
        if ev.is_readable() {
            bits |= READABLE;
        }
        if ev.is_writable() {
            bits |= WRITABLE;
        }
        if ev.is_read_closed() || error {
            bits |= READABLE | READ_CLOSED;
        }
        if ev.is_write_closed() || error {
            bits |= WRITABLE | WRITE_CLOSED;
        }
        if ev.is_priority() {
            bits |= READABLE | URGENT;
        }
        self.readiness.fetch_add(TICK_ONE, Ordering::AcqRel);
        self.readiness.fetch_or(bits, Ordering::AcqRel);
        self.wake(
            bits & (READABLE | READ_CLOSED) != 0,
            bits & (WRITABLE | WRITE_CLOSED) != 0,
        );
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
    /// Registers `fd` with `shared`'s poll, edge-triggered, both ways.
    /// Deregister it before `fd` closes.
    pub(crate) fn new(shared: Arc<IoShared>, fd: BorrowedFd<'_>) -> io::Result<Registration> {
        let io = Arc::new(ScheduledIo::new(READABLE | WRITABLE));
        let key = shared.insert(io.clone());
        let raw = fd.as_raw_fd();
        // Urgent data too where the system tells it (see `URGENT`).
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let interest = Interest::READABLE | Interest::WRITABLE | Interest::PRIORITY;
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let interest = Interest::READABLE | Interest::WRITABLE;
        let added = shared.register(&mut SourceFd(&raw), Token(key), interest);
        if let Err(e) = added {
            shared.remove(key);
            return Err(e);
        }
        Ok(Registration { shared, key, io })
    }

    /// Removes the source from the poll; call before closing `fd`.
    pub(crate) fn deregister(&self, fd: BorrowedFd<'_>) {
        self.shared.deregister(&mut SourceFd(&fd.as_raw_fd()));
        self.shared.remove(self.key);
    }

    /// A wait in `dir` for a future of a socket type, which takes its
    /// waker out if dropped before the event.
    pub(crate) fn wait(&self, dir: Direction) -> Wait<'_> {
        Wait {
            registration: self,
            dir,
            key: NO_KEY,
            wakes: 0,
        }
    }

    fn waiters(&self, dir: Direction) -> &Waiters {
        match dir {
            Direction::Read => &self.io.reader,
            Direction::Write => &self.io.writer,
        }
    }

    /// How many wakers wait in `dir` (for tests).
    #[cfg(test)]
    pub(crate) fn waiting(&self, dir: Direction) -> usize {
        self.waiters(dir).len()
    }

    /// Ready when the direction is ready (returns the readiness seen); an
    /// error once the reactor the socket is registered with has stopped
    /// (its hub ended), since no readiness would ever come. A waker
    /// registered here has no [`Wait`]: it stays until the next event.
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
    ) -> Poll<io::Result<usize>> {
        // Once the task spent its poll's budget, a readiness ready at once
        // would let a loop of "the operation says Pending, so wait for
        // readiness" go round for good: it waits for the next poll too.
        if crate::hub::budget::poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        self.poll_ready_as(cx, dir, None)
    }

    /// `poll_ready`, registering under `wait`'s key if there is one.
    fn poll_ready_as(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        wait: Option<&mut Wait<'_>>,
    ) -> Poll<io::Result<usize>> {
        let seen = self.io.readiness.load(Ordering::Acquire);
        if seen & dir.mask() != 0 {
            return Poll::Ready(Ok(seen));
        }
        // No event will ever take a waker out of the list of a stopped
        // reactor's socket: none is put in.
        if self.shared.is_stopped() {
            return Poll::Ready(Err(io::Error::other(HubStopped)));
        }
        self.waiters(dir).register(cx.waker(), wait);
        let seen = self.io.readiness.load(Ordering::Acquire);
        if seen & dir.mask() != 0 {
            Poll::Ready(Ok(seen))
        } else if self.shared.is_stopped() {
            // Stopped meanwhile, perhaps after its last wake-up: the list
            // is emptied here instead.
            self.waiters(dir).wake();
            Poll::Ready(Err(io::Error::other(HubStopped)))
        } else {
            Poll::Pending
        }
    }

    /// Clears `dir`'s ready bit (never a closed bit) if no event arrived
    /// since `seen` was read.
    pub(crate) fn clear(&self, seen: usize, dir: Direction) {
        self.clear_bits(seen, dir.ready_bit());
    }

    /// Clears `dir`'s ready and closed bits if no event arrived since `seen`
    /// was read: for a socket still connecting, whose closed bit can only
    /// be stale (an event meant for the socket this one's slot had before,
    /// dispatched as it was freed): its handshake's own failure is another
    /// event, and an error the socket holds.
    pub(crate) fn clear_all(&self, seen: usize, dir: Direction) {
        self.clear_bits(seen, dir.mask());
    }

    /// Clears `bits` unless an event came after `seen`.
    fn clear_bits(&self, seen: usize, bits: usize) {
        let _ = self
            .io
            .readiness
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                (cur & !BITS == seen & !BITS).then_some(cur & !bits)
            });
    }

    /// Runs the non-blocking `op` when `dir` is ready, until it does not
    /// return `WouldBlock`.
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.poll_io_until(cx, dir, None, op, |_| false)
    }

    /// Like [`poll_io`](Registration::poll_io) for a stream read or write
    /// of `want` bytes: a short transfer (some bytes, fewer than asked)
    /// means the socket's buffer was drained (or filled) at that instant,
    /// so the direction's readiness is cleared at once and the next
    /// operation waits for the kernel's next edge instead of paying for a
    /// system call that would only say `WouldBlock`. A peer's FIN that came
    /// with the last bytes is not lost: its event set the sticky closed
    /// bit, which keeps the direction ready. Nor are bytes past an urgent
    /// mark, where a read stops short: once urgent data came, only
    /// `WouldBlock` clears (see `URGENT`).
    pub(crate) fn poll_io_stream(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        want: usize,
        op: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        self.poll_io_until(cx, dir, None, op, |&n| n > 0 && n < want)
    }

    /// The loop of both (and of [`Wait`]'s): run `op` while ready; clear
    /// readiness on `WouldBlock` (and retry), or on a result `drained` says
    /// used up the readiness (and return it).
    fn poll_io_until<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        mut wait: Option<&mut Wait<'_>>,
        mut op: impl FnMut() -> io::Result<R>,
        drained: impl Fn(&R) -> bool,
    ) -> Poll<io::Result<R>> {
        // A task that spent its poll's budget yields here, whatever the
        // socket's readiness: see `hub::budget`.
        if crate::hub::budget::poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        loop {
            let seen = match self.poll_ready_as(cx, dir, wait.as_deref_mut()) {
                Poll::Ready(Ok(s)) => s,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            match op() {
                // Would block: the direction is neither ready nor closed nor
                // failed, so its closed bit goes too. (An error event sets
                // it on any socket, and a UDP socket reports its error, a
                // refused datagram, once: kept, the bit would keep the
                // direction ready for operations that only say
                // `WouldBlock`.) A short transfer, by contrast, keeps it: a
                // FIN that came with the last bytes is still to be read.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.clear_bits(seen, dir.mask());
                }
                // A signal came first: nothing was done, try again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(r) => {
                    if drained(&r) && seen & URGENT == 0 {
                        self.clear(seen, dir);
                    }
                    crate::hub::budget::spend();
                    return Poll::Ready(Ok(r));
                }
                Err(e) => {
                    crate::hub::budget::spend();
                    return Poll::Ready(Err(e));
                }
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
        Io::with_reactor(crate::driver::current_io()?, inner)
    }

    /// Registers `inner` (already non-blocking) with the reactor of
    /// `shared`.
    pub(crate) fn with_reactor(shared: Arc<IoShared>, inner: T) -> io::Result<Io<T>> {
        // `inner` is owned by the returned `Io`, whose `Drop` deregisters
        // it before dropping (closing) it.
        let registration = Registration::new(shared, inner.as_fd())?;
        Ok(Io {
            registration,
            inner: Some(inner),
        })
    }

    /// The reactor the socket is registered with.
    pub(crate) fn reactor(&self) -> &Arc<IoShared> {
        &self.registration.shared
    }

    pub(crate) fn get(&self) -> &T {
        self.inner.as_ref().expect("present until drop")
    }

    /// Deregisters the socket and gives it back (still non-blocking).
    pub(crate) fn into_inner(mut self) -> T {
        self.take_inner().expect("present until drop")
    }

    /// Deregisters the socket and takes it out, for an owner that closes
    /// it in a way of its own; `None` once taken. Nothing may use this
    /// `Io` afterwards but its drop.
    pub(crate) fn take_inner(&mut self) -> Option<T> {
        let inner = self.inner.take()?;
        self.registration.deregister(inner.as_fd());
        Some(inner)
    }

    pub(crate) fn registration(&self) -> &Registration {
        &self.registration
    }

    /// Runs the non-blocking `op` on this socket when `dir` is ready, as
    /// [`poll_io`](Io::poll_io) does, under a [`Wait`] of its own: for the
    /// futures of sockets that many tasks share.
    pub(crate) async fn wait_io<R>(
        &self,
        dir: Direction,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        let inner = self.get();
        let mut wait = self.registration.wait(dir);
        std::future::poll_fn(|cx| wait.poll_io(cx, || op(inner))).await
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
        drop(self.take_inner());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::flag;

    /// A registration with no descriptor behind it: its waiter lists only.
    fn lists() -> Registration {
        let (_reactor, shared) = super::super::Reactor::new().unwrap();
        let io = Arc::new(ScheduledIo::new(0));
        Registration {
            shared,
            key: usize::MAX,
            io,
        }
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "a reactor is an epoll instance, which miri cannot make"
    )]
    fn keyed_waits_leave_when_dropped_and_keyless_ones_once_per_task() {
        let r = lists();
        let w = r.waiters(Direction::Read);
        // Keyless: once per task, kept until the next event.
        let (a, wa) = flag();
        w.register(&wa, None);
        w.register(&wa.clone(), None);
        assert_eq!(w.len(), 1);
        // Two waits of one task are two entries; each leaves when dropped,
        // the other staying.
        let (b, wb) = flag();
        let mut first = r.wait(Direction::Read);
        let mut second = r.wait(Direction::Read);
        w.register(&wb, Some(&mut first));
        w.register(&wb, Some(&mut second));
        // A wait registered again keeps one entry.
        w.register(&wb, Some(&mut first));
        assert_eq!(w.len(), 3);
        drop(first);
        assert_eq!(w.len(), 2);
        // An event wakes every waiter left and empties the list; a wait
        // dropped after it (the common end) finds nothing to take out and
        // takes out nothing registered since.
        w.wake();
        assert!(a.woken() && b.woken());
        assert_eq!(w.len(), 0);
        let (c, wc) = flag();
        let mut third = r.wait(Direction::Read);
        w.register(&wc, Some(&mut third));
        drop(second);
        assert_eq!(w.len(), 1);
        drop(third);
        assert_eq!(w.len(), 0);
        assert!(!c.woken());
        drop(wc);
        assert_eq!(Arc::strong_count(&c), 1, "the list let the waker go");
        // When the first entry leaves, another takes its place: a wait
        // that registers again still has one entry, which its drop takes.
        // A wait woken, then registered again, leaves with its drop.
        let (_, wz) = flag();
        let mut z = r.wait(Direction::Read);
        w.register(&wz, Some(&mut z));
        w.wake();
        w.register(&wz, Some(&mut z));
        assert_eq!(w.len(), 1);
        drop(z);
        assert_eq!(w.len(), 0);
        let ((_, wx), (_, wy)) = (flag(), flag());
        let (mut x, mut y) = (r.wait(Direction::Read), r.wait(Direction::Read));
        w.register(&wx, Some(&mut x));
        w.register(&wy, Some(&mut y));
        drop(x);
        w.register(&wy, Some(&mut y));
        assert_eq!(w.len(), 1);
        drop(y);
        assert_eq!(w.len(), 0);
        // Many waits that give up leave nothing behind.
        for _ in 0..1000 {
            let (_, wd) = flag();
            let mut wait = r.wait(Direction::Read);
            w.register(&wd, Some(&mut wait));
        }
        assert_eq!(w.len(), 0);
    }
}
