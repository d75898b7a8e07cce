//! TCP: [`TcpListener`] and [`TcpStream`].

use std::fmt;
use std::future::poll_fn;
use std::io::{self, IoSlice, Read};
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::ToSocketAddrs;
use crate::driver::{Direction, HubStopped, Io, IoShared};

/// The backlog of listening sockets (the kernel caps it at `somaxconn`).
const BACKLOG: i32 = 4096;

/// A TCP listener on a hub: [`accept`](TcpListener::accept) suspends the
/// task until a connection arrives.
///
/// ```
/// use futures_util::{AsyncReadExt, AsyncWriteExt};
/// use greenrt::net::{TcpListener, TcpStream};
///
/// greenrt::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let server = greenrt::spawn(async move {
///         let (mut conn, _) = listener.accept().await.unwrap();
///         let mut buf = [0; 5];
///         conn.read_exact(&mut buf).await.unwrap();
///         conn.write_all(&buf).await.unwrap();
///     });
///     let mut client = TcpStream::connect(addr).await.unwrap();
///     client.write_all(b"hello").await.unwrap();
///     let mut echo = [0; 5];
///     client.read_exact(&mut echo).await.unwrap();
///     assert_eq!(&echo, b"hello");
///     server.await.unwrap();
/// });
/// ```
pub struct TcpListener {
    io: Io<Socket>,
}

impl TcpListener {
    /// Binds a listener (`SO_REUSEADDR`, a backlog of 4096, non-blocking)
    /// on the current hub, to the first of `addr`'s addresses that can be
    /// bound (a name is looked up on the calling thread: see
    /// [`ToSocketAddrs`]).
    ///
    /// # Errors
    ///
    /// The system's, for each address tried (the last one is returned);
    /// and an error off any hub, where there is no reactor to register
    /// with: bind inside [`run`](crate::run) or a task (a listener made
    /// there may then be moved to other hubs, and is used from them while
    /// its own hub runs).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        super::each_addr(addr, |a| TcpListener::bind_with(a, false))
    }

    /// Like [`bind`](TcpListener::bind), with `SO_REUSEPORT` too: several
    /// listeners, one per hub, share the port and the kernel spreads the
    /// connections between them (the multi-core server's layout).
    pub fn bind_reuseport(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        super::each_addr(addr, |a| TcpListener::bind_with(a, true))
    }

    fn bind_with(addr: SocketAddr, reuseport: bool) -> io::Result<TcpListener> {
        let socket = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking().cloexec(),
            Some(Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        if reuseport {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&addr.into())?;
        socket.listen(BACKLOG)?;
        Ok(TcpListener {
            io: Io::new(socket)?,
        })
    }

    /// Takes a listener from the standard library (made non-blocking here),
    /// on the current hub. Its backlog stays what it was listened with:
    /// std's `bind` listens with 128, which a burst of connections
    /// overflows (they are then retried by the clients' systems, a second
    /// or more later); [`bind`](TcpListener::bind) listens with 4096.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener {
            io: Io::new(Socket::from(listener))?,
        })
    }

    /// Gives the listener back as the standard library's, taken out of
    /// its hub's reactor and still non-blocking: to move it to another hub
    /// (where [`from_std`](TcpListener::from_std) takes it again) or to a
    /// plain thread (after `set_nonblocking(false)`). Connections not yet
    /// accepted stay in its backlog.
    pub fn into_std(self) -> std::net::TcpListener {
        self.io.into_inner().into()
    }

    /// Waits for a connection.
    ///
    /// The stream is registered with the reactor of the hub this runs on;
    /// outside any hub (the listener moved to a plain thread), or on a hub
    /// that has no reactor, with the listener's.
    ///
    /// An error the system gives at once (out of descriptors: `EMFILE`,
    /// `ENFILE`) comes back at once, every time, until the cause goes: a
    /// loop that accepts again at once keeps a core busy (though it
    /// yields to the hub's other tasks every 128 operations, as every
    /// socket operation does). [`incoming`](TcpListener::incoming) pauses
    /// 10 ms after such an error.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        // Under a key of its own: tasks that share a listener and give up
        // waiting (a timeout) leave nothing behind.
        self.io
            .wait_io(Direction::Read, |s| self.accept_now(s))
            .await
            .and_then(|(a, reactor)| Self::accepted(a, reactor))
    }

    /// Polls for a connection (the building block of [`accept`](TcpListener::accept)).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        self.io
            .poll_io(cx, Direction::Read, |s| self.accept_now(s))
            .map(|r| r.and_then(|(a, reactor)| Self::accepted(a, reactor)))
    }

    /// Takes a connection, with the reactor its stream will be registered
    /// with: the current hub's, or else (outside any hub, or on a hub that
    /// has no reactor) the listener's. That reactor is chosen first, so
    /// that no connection is taken only to be dropped for want of one: on
    /// a plain thread after the listener's hub stopped, the error comes
    /// back and the connections stay in the backlog.
    fn accept_now(&self, s: &Socket) -> io::Result<((Socket, SockAddr), Arc<IoShared>)> {
        let reactor = match crate::driver::current_io() {
            Ok(here) => here,
            Err(_) if self.io.reactor().is_stopped() => return Err(io::Error::other(HubStopped)),
            Err(_) => self.io.reactor().clone(),
        };
        Ok((accept_nonblocking(s)?, reactor))
    }

    /// An accepted socket (see `accept_nonblocking`) as a stream on
    /// `reactor` (see `accept_now`).
    fn accepted(
        (socket, addr): (Socket, SockAddr),
        reactor: Arc<IoShared>,
    ) -> io::Result<(TcpStream, SocketAddr)> {
        let addr = addr
            .as_socket()
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        TcpStream::on_reactor(reactor, socket).map(|s| (s, addr))
    }

    /// The connections, as a stream (a [`coro::AsyncGen`]) that goes on
    /// after an error, as gevent's `StreamServer` does: it yields the error
    /// and accepts again. After one that is not about a single connection
    /// (out of descriptors or memory, say) it first waits 10 ms, so that
    /// it does not spin while the process is short of them. It ends only
    /// after an error that says the listener itself cannot accept
    /// (`InvalidInput`, `Unsupported`), or after the listener's hub has
    /// stopped. The stream is `Send`.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming {
            inner: coro::AsyncGen::new_send(move |co| async move {
                loop {
                    match self.accept().await {
                        Ok((s, _)) => {
                            co.yield_(Ok(s)).await;
                        }
                        Err(e) => {
                            let kind = e.kind();
                            let stopped = HubStopped::is(&e);
                            co.yield_(Err(e)).await;
                            match kind {
                                _ if stopped => return,
                                io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported => return,
                                io::ErrorKind::ConnectionAborted
                                | io::ErrorKind::ConnectionReset
                                | io::ErrorKind::Interrupted => {}
                                _ => crate::sleep(std::time::Duration::from_millis(10)).await,
                            }
                        }
                    }
                }
            }),
        }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(self.io.get().local_addr()?)
    }
}

super::descriptor!(TcpListener);

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}

/// The stream of [`TcpListener::incoming`].
pub struct Incoming<'a> {
    inner: coro::AsyncGen<
        io::Result<TcpStream>,
        (),
        (),
        dyn std::future::Future<Output = ()> + Send + 'a,
    >,
}

impl futures_core::Stream for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl fmt::Debug for Incoming<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming").finish_non_exhaustive()
    }
}

fn sock_addr(a: SockAddr) -> io::Result<SocketAddr> {
    a.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "not an IP socket address"))
}

/// A TCP connection on a hub. Reads and writes suspend the task, not the
/// thread. It implements `futures::io::AsyncRead`/`AsyncWrite` (also on
/// `&TcpStream`, so one task may read while another writes through a shared
/// reference), and [`into_split`](TcpStream::into_split) gives owned halves.
pub struct TcpStream {
    io: Io<Socket>,
    /// `SO_LINGER` was set to a time that is not zero: the close may wait
    /// (see [`set_linger`](TcpStream::set_linger)).
    lingers: AtomicBool,
}

impl TcpStream {
    fn from_socket(socket: Socket) -> io::Result<TcpStream> {
        socket.set_nonblocking(true)?;
        TcpStream::on_reactor(crate::driver::current_io()?, socket)
    }

    /// `socket`, non-blocking already, as a stream registered with
    /// `reactor`.
    fn on_reactor(reactor: Arc<IoShared>, socket: Socket) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: Io::with_reactor(reactor, socket)?,
            lingers: AtomicBool::new(false),
        })
    }

    /// Connects to `addr`, trying each address it stands for in turn (a
    /// name is looked up on the blocking pool, so that only this task
    /// waits for the answer: see [`ToSocketAddrs`]). Errors carry the
    /// OS's kind (`ConnectionRefused`, `TimedOut`, ...).
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for a in super::addr::resolve(addr).await? {
            match TcpStream::connect_one(a).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(super::no_address))
    }

    /// Connects to one address. Counted as one socket operation whether
    /// it waits or not (see `hub::budget`): a connection refused on the
    /// same machine fails at once, and a loop that retries until a server
    /// is up must still give way, or that server's task, on the same hub,
    /// would never run.
    async fn connect_one(addr: SocketAddr) -> io::Result<TcpStream> {
        poll_fn(|cx| crate::hub::budget::poll_proceed(cx)).await;
        let connected = TcpStream::connect_uncounted(addr).await;
        crate::hub::budget::spend();
        connected
    }

    /// [`connect_one`](TcpStream::connect_one) but for the count.
    async fn connect_uncounted(addr: SocketAddr) -> io::Result<TcpStream> {
        let socket = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking().cloexec(),
            Some(Protocol::TCP),
        )?;
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(e)
                if e.raw_os_error() == Some(EINPROGRESS)
                    || e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        let stream = TcpStream {
            io: Io::new(socket)?,
            lingers: AtomicBool::new(false),
        };
        // Connected (or failed) once the socket is writable.
        poll_fn(|cx| {
            let r = &stream.io;
            match r.registration().poll_ready(cx, Direction::Write) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Ready(Ok(seen)) => {
                    if let Some(e) = r.get().take_error()? {
                        return Poll::Ready(Err(e));
                    }
                    match r.get().peer_addr() {
                        Ok(_) => Poll::Ready(Ok(())),
                        Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                            // Woken before the handshake ended (or by a
                            // stale event): wait again.
                            r.registration().clear_all(seen, Direction::Write);
                            cx.waker().wake_by_ref();
                            Poll::Pending
                        }
                        Err(e) => Poll::Ready(Err(e)),
                    }
                }
            }
        })
        .await?;
        Ok(stream)
    }

    /// Takes a connected stream from the standard library.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        TcpStream::from_socket(Socket::from(stream))
    }

    /// Gives the stream back as the standard library's, taken out of its
    /// hub's reactor and still non-blocking: to move a connection to
    /// another hub (where [`from_std`](TcpStream::from_std) takes it
    /// again) or to a plain thread (after `set_nonblocking(false)`). Bytes
    /// not yet read stay in the socket. A task still waiting on the stream
    /// cannot exist: this takes it by value.
    pub fn into_std(mut self) -> std::net::TcpStream {
        self.io.take_inner().expect("present until drop").into()
    }

    /// Reads into `buf`; `Ok(0)` at end of stream.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read_priv(cx, buf)).await
    }

    /// Waits until the stream may be read without blocking: bytes arrived,
    /// the peer closed its side, or an error is pending. A task that waits
    /// for a client this way holds no read buffer meanwhile (a server with
    /// many idle connections saves one per connection).
    ///
    /// The readiness is the reactor's, and may be stale: a new stream
    /// starts readable, a read that filled its whole buffer leaves it
    /// readable, and another task may have read the bytes first. So read
    /// after it (a read that finds nothing clears the readiness and waits
    /// as usual) rather than wait on it again.
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_read_ready(cx)).await
    }

    /// Polls for the readiness [`readable`](TcpStream::readable) waits for;
    /// `cx` is woken when it comes.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io
            .registration()
            .poll_ready(cx, Direction::Read)
            .map_ok(|_| ())
    }

    /// Reads exactly `buf.len()` bytes (`UnexpectedEof` if the stream ends first).
    pub async fn read_exact(&self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read(buf).await? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => buf = &mut buf[n..],
            }
        }
        Ok(())
    }

    /// Writes some of `buf`; returns how much.
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write_priv(cx, buf)).await
    }

    /// Writes all of `buf`.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    /// Writes from several buffers in one system call (`writev`).
    pub async fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write_vectored_priv(cx, bufs)).await
    }

    /// Shuts down the read half, the write half (the peer reads end of
    /// stream) or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get().shutdown(how)
    }

    /// Sets `TCP_NODELAY` (no Nagle delay for small writes).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.get().set_tcp_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get().tcp_nodelay()
    }

    /// Sets `SO_LINGER`: with `Some(Duration::ZERO)`, closing the socket
    /// resets the connection at once (the peer reads an error, not an end
    /// of file), which is how a server aborts a response it cannot finish.
    /// With a longer time, the system's close waits until the bytes sent
    /// are acknowledged or the time is up, non-blocking socket or not: the
    /// stream's drop then ends the sending side at once (the peer reads
    /// the end of the stream after the data) and hands the close to a
    /// thread of the blocking pool (see [`spawn_blocking`](crate::spawn_blocking)),
    /// so that it holds no hub up. Each such close keeps a thread of the
    /// pool for up to that time, and waits for one while all are busy.
    pub fn set_linger(&self, linger: Option<std::time::Duration>) -> io::Result<()> {
        self.io.get().set_linger(linger)?;
        self.lingers
            .store(linger.is_some_and(|d| !d.is_zero()), Ordering::Relaxed);
        Ok(())
    }

    /// The `SO_LINGER` setting.
    pub fn linger(&self) -> io::Result<Option<std::time::Duration>> {
        self.io.get().linger()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(self.io.get().peer_addr()?)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(self.io.get().local_addr()?)
    }

    /// Splits into a read half and a write half that two tasks may own.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let s = Arc::new(self);
        (OwnedReadHalf(s.clone()), OwnedWriteHalf(s))
    }

    fn poll_read_priv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let want = buf.len();
        if want == 0 {
            // Nothing asked: nothing to wait for (as std's `read`), but
            // counted as an operation (see `hub::budget`).
            return crate::hub::budget::poll_at_once(cx).map(|()| Ok(0));
        }
        let s = self.io.get();
        self.io
            .registration()
            .poll_io_stream(cx, Direction::Read, want, || (&*s).read(buf))
    }

    fn poll_write_priv(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return crate::hub::budget::poll_at_once(cx).map(|()| Ok(0));
        }
        let s = self.io.get();
        self.io
            .registration()
            .poll_io_stream(cx, Direction::Write, buf.len(), || {
                s.send_with_flags(buf, SEND_FLAGS)
            })
    }

    fn poll_write_vectored_priv(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // At most the slices one system call takes (more is an error, not
        // a short write), from the first that is not empty; `want` counts
        // only those, so that a transfer of all of them is not taken for a
        // short one.
        let first = bufs
            .iter()
            .position(|b| !b.is_empty())
            .unwrap_or(bufs.len());
        let bufs = &bufs[first..];
        let bufs = &bufs[..bufs.len().min(MAX_IOV)];
        let want: usize = bufs.iter().map(|b| b.len()).sum();
        if want == 0 {
            return crate::hub::budget::poll_at_once(cx).map(|()| Ok(0));
        }
        let s = self.io.get();
        self.io
            .registration()
            .poll_io_stream(cx, Direction::Write, want, || {
                s.send_vectored_with_flags(bufs, SEND_FLAGS)
            })
    }
}

/// Flags of every send on a stream: on Linux, a peer that reset the
/// connection gives an `EPIPE` error, never the `SIGPIPE` signal that would
/// end a process which has not ignored it (as std's sockets do there).
#[cfg(target_os = "linux")]
const SEND_FLAGS: std::ffi::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(target_os = "linux"))]
const SEND_FLAGS: std::ffi::c_int = 0;

/// The most slices one `sendmsg` takes (`UIO_MAXIOV`).
const MAX_IOV: usize = 1024;

/// `EINPROGRESS`: a non-blocking connect has started.
#[cfg(target_os = "linux")]
const EINPROGRESS: i32 = 115;
/// `EINPROGRESS`: a non-blocking connect has started.
#[cfg(not(target_os = "linux"))]
const EINPROGRESS: i32 = 36;

super::descriptor!(TcpStream);

impl Drop for TcpStream {
    fn drop(&mut self) {
        if self.lingers.load(Ordering::Relaxed) {
            if let Some(socket) = self.io.take_inner() {
                // The end of the stream goes out now, after the data (this
                // never blocks): the peer sees it even while every thread
                // of the pool is busy and the close waits for one.
                let _ = socket.shutdown(Shutdown::Write);
                crate::blocking::detach(move || drop(socket));
            }
        }
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}

macro_rules! async_read_impl {
    ($ty:ty, |$s:ident| $get:expr) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                let $s = &*self;
                let s: &TcpStream = $get;
                s.poll_read_priv(cx, buf)
            }
        }
    };
}

macro_rules! async_write_impl {
    ($ty:ty, |$s:ident| $get:expr) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                let $s = &*self;
                let s: &TcpStream = $get;
                s.poll_write_priv(cx, buf)
            }
            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                let $s = &*self;
                let s: &TcpStream = $get;
                s.poll_write_vectored_priv(cx, bufs)
            }
            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(())) // nothing is buffered here
            }
            fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $s = &*self;
                let s: &TcpStream = $get;
                Poll::Ready(s.shutdown(Shutdown::Write))
            }
        }
    };
}

async_read_impl!(TcpStream, |s| s);
async_write_impl!(TcpStream, |s| s);
async_read_impl!(&TcpStream, |s| s);
async_write_impl!(&TcpStream, |s| s);
// Each half one direction: what splitting a stream is for.
async_read_impl!(OwnedReadHalf, |s| &s.0);
async_write_impl!(OwnedWriteHalf, |s| &s.0);

/// Accepts a connection as a non-blocking socket that is not inherited by
/// child processes (which would keep the connection open after it is
/// dropped): with one `accept4(SOCK_CLOEXEC | SOCK_NONBLOCK)` where there
/// is one, rather than an accept and two `fcntl`s.
fn accept_nonblocking(listener: &Socket) -> io::Result<(Socket, SockAddr)> {
    #[cfg(target_os = "linux")]
    {
        listener.accept4(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let (socket, addr) = listener.accept()?;
        socket.set_nonblocking(true)?;
        Ok((socket, addr))
    }
}

/// The read half of [`TcpStream::into_split`] (`AsyncRead`, and only
/// that).
///
/// ```
/// fn reads<R: futures_io::AsyncRead>() {}
/// reads::<greenrt::net::OwnedReadHalf>();
/// ```
///
/// ```compile_fail,E0277
/// fn writes<W: futures_io::AsyncWrite>() {}
/// writes::<greenrt::net::OwnedReadHalf>();
/// ```
#[derive(Debug)]
pub struct OwnedReadHalf(Arc<TcpStream>);

/// The write half of [`TcpStream::into_split`] (`AsyncWrite`, and only
/// that); closing it shuts down the write direction.
///
/// ```
/// fn writes<W: futures_io::AsyncWrite>() {}
/// writes::<greenrt::net::OwnedWriteHalf>();
/// ```
///
/// ```compile_fail,E0277
/// fn reads<R: futures_io::AsyncRead>() {}
/// reads::<greenrt::net::OwnedWriteHalf>();
/// ```
#[derive(Debug)]
pub struct OwnedWriteHalf(Arc<TcpStream>);

impl OwnedReadHalf {
    /// The stream both halves share, for its addresses and options. Like
    /// any `&TcpStream`, it also reads and writes: the half's own
    /// direction is a convention from there on.
    pub fn stream(&self) -> &TcpStream {
        &self.0
    }
}

impl OwnedWriteHalf {
    /// The stream both halves share, for its addresses and options (see
    /// [`OwnedReadHalf::stream`]).
    pub fn stream(&self) -> &TcpStream {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::Arc;
    use std::task::Context;

    use super::TcpListener;
    use crate::driver::Direction;
    use crate::test_util::flag;

    #[test]
    #[cfg_attr(miri, ignore = "sockets need the reactor, which miri cannot run")]
    fn a_connection_accepted_off_any_hub_is_kept() {
        use std::io::Read;
        crate::run(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            // Connected once it is in the backlog: the accept below takes it
            // at its first try.
            let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let accepted = std::thread::scope(|s| {
                s.spawn(|| futures_executor::block_on(listener.accept()))
                    .join()
                    .unwrap()
            });
            let (stream, peer) = accepted.expect("accepted off any hub");
            assert_eq!(peer, client.local_addr().unwrap());
            stream.write_all(b"kept").await.unwrap();
            drop(stream);
            let mut got = Vec::new();
            client.read_to_end(&mut got).unwrap();
            assert_eq!(got, b"kept");
        });
    }

    #[test]
    #[cfg_attr(miri, ignore = "sockets need the reactor, which miri cannot run")]
    fn accepts_given_up_leave_nothing_and_polls_stay_once_per_task() {
        crate::run(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let waiting = || listener.io.registration().waiting(Direction::Read);
            let tasks: Vec<_> = (0..100).map(|_| flag()).collect();
            for (_, waker) in &tasks {
                let mut accept = pin!(listener.accept());
                assert!(
                    accept
                        .as_mut()
                        .poll(&mut Context::from_waker(waker))
                        .is_pending()
                );
                assert_eq!(waiting(), 1);
            }
            assert_eq!(waiting(), 0);
            // Each flag is held by itself and its waker only.
            assert!(tasks.iter().all(|(t, _)| Arc::strong_count(t) == 2));
            // `poll_accept` has no future to drop: one entry per task.
            let mut cx = Context::from_waker(&tasks[0].1);
            assert!(listener.poll_accept(&mut cx).is_pending());
            assert!(listener.poll_accept(&mut cx).is_pending());
            assert_eq!(waiting(), 1);
        });
    }

    #[test]
    #[cfg_attr(miri, ignore = "sockets need the reactor, which miri cannot run")]
    fn a_wait_on_a_stopped_reactor_leaves_no_waker() {
        let listener = crate::run(async { TcpListener::bind("127.0.0.1:0").unwrap() });
        let waiting = || listener.io.registration().waiting(Direction::Read);
        crate::run(async {
            let (task, waker) = flag();
            let mut cx = Context::from_waker(&waker);
            let err = match listener.poll_accept(&mut cx) {
                std::task::Poll::Ready(Err(e)) => e,
                other => panic!("{:?}", other.map(|r| r.map(|_| ()))),
            };
            assert!(crate::driver::HubStopped::is(&err), "{err}");
            // No event will ever take a waker out of its list.
            assert_eq!(waiting(), 0);
            assert_eq!(Arc::strong_count(&task), 2);
        });
    }
}
