//! The server: a greenrt [`Runtime`] with one hub per worker, one
//! `SO_REUSEPORT` listener per hub, one green task per connection.
//!
//! A connection owns one read buffer and one write buffer, reused for every
//! request. Each read is parsed for every complete (pipelined) request in
//! it; the handlers run in order and all their responses go out in one
//! write. Files and streams are sent in chunks through the same write
//! buffer. One timer per connection enforces the header-read timeout (408)
//! and the keep-alive idle timeout; it is re-armed only when it fires early,
//! so a busy connection touches no timer at all.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{SocketAddr, ToSocketAddrs};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_core::future::LocalBoxFuture;
use greenrt::net::{TcpListener, TcpStream};
use greenrt::time::ManualClock;
use greenrt::{Greenlet, Handle, Runtime, RuntimeBuilder};
use sync_prims::Event;

use crate::body::ChunkedEncoder;
use crate::body_stream::{Feeder, pipe};
use crate::conn::{BodyRead, Conn, Framing, Next, ReadBuf};
use crate::date::{refresh_date, set_ticked};
use crate::error::Error;
use crate::files::StaticFiles;
use crate::limits::Limits;
use crate::locality::{self, Counted, Follow, Loads};
use crate::method::{Method, Version};
use crate::request::Request;
use crate::response::{Body, FileBody, Response, StreamBody};
use crate::router::Router;
use crate::spare;
use crate::status::StatusCode;

/// Bytes asked of each read (more when a large request needs them).
const READ_CHUNK: usize = 4096;
/// The write buffer is flushed once it holds this much (of a batch of
/// answers, a file or a stream), and written in pieces of at most this
/// size, each bounded by the write timeout.
const FLUSH_AT: usize = 64 * 1024;

thread_local! {
    /// The storage of a read buffer, between two waits for a client: an
    /// idle connection gives it back before it waits (for the socket to be
    /// readable, not in a read), and takes it, or this, to read.
    static SPARE_RBUF: spare::Slot<Vec<u8>> = const { Cell::new(None) };
    /// A write buffer between two batches of answers. A connection takes
    /// it when it has something to answer and gives it back once the
    /// answers are sent: the connections of a hub write into the same
    /// memory one after another, which stays in the processor's cache, and
    /// an idle connection holds no write buffer.
    static SPARE_WBUF: spare::Slot<Vec<u8>> = const { Cell::new(None) };
}

/// This thread's spare write buffer, or a new one.
fn take_wbuf() -> Vec<u8> {
    spare::take(&SPARE_WBUF).unwrap_or_else(|| Vec::with_capacity(READ_CHUNK))
}

/// Makes the storage of `rbuf` this thread's spare, if `rbuf` holds no
/// bytes and its storage is not larger than a batch of small requests
/// needs (it is then freed).
fn give_back_rbuf(rbuf: &mut ReadBuf) {
    if let Some(storage) = rbuf.take_storage() {
        if storage.len() <= FLUSH_AT {
            spare::keep(&SPARE_RBUF, storage);
        }
    }
}

/// Gives `rbuf` this thread's spare storage if it has none.
fn take_rbuf(rbuf: &mut ReadBuf) {
    if !rbuf.has_storage() {
        if let Some(storage) = spare::take(&SPARE_RBUF) {
            rbuf.give_storage(storage);
        }
    }
}

/// Makes `wbuf`, empty, this thread's spare (unless large answers grew it
/// past [`FLUSH_AT`]: it is then freed), and leaves the connection without
/// one.
fn give_back_wbuf(wbuf: &mut Vec<u8>) {
    let mut buf = std::mem::take(wbuf);
    if buf.capacity() > FLUSH_AT {
        return;
    }
    buf.clear();
    spare::keep(&SPARE_WBUF, buf);
}

/// What answers requests: any `Fn(Request) -> impl Future<Output =
/// Response>` (an `async fn` or closure), a [`Router`], a [`StaticFiles`].
///
/// The handler is shared by every hub, so it is `Send + Sync`; its futures
/// run on the hub of their connection and never move, so they need not be
/// `Send` (they may hold `Rc`s across `.await`s).
pub trait Handler: Send + Sync + 'static {
    /// The future of one response.
    type Future: Future<Output = Response> + 'static;

    /// Starts answering `request`.
    fn call(&self, request: Request) -> Self::Future;
}

impl<F, Fut> Handler for F
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + 'static,
{
    type Future = Fut;

    fn call(&self, request: Request) -> Fut {
        self(request)
    }
}

impl Handler for Router {
    type Future = LocalBoxFuture<'static, Response>;

    fn call(&self, request: Request) -> Self::Future {
        self.handle(request)
    }
}

impl Handler for StaticFiles {
    type Future = crate::files::Serve;

    fn call(&self, request: Request) -> Self::Future {
        self.serve_off_hub(&request, request.path_raw())
    }
}

/// One line of the access log, handed to the function given to
/// [`Server::access_log`] after each response is sent.
///
/// Its `Display` is the line the `minihttp` command prints:
/// `127.0.0.1:50312 "GET /index.html HTTP/1.1" 200 1337 0.211ms`.
#[derive(Clone, Copy, Debug)]
pub struct LogEntry<'a> {
    /// The client's address.
    pub client: SocketAddr,
    /// The request method (`-` for a request whose request line could not
    /// be parsed).
    pub method: &'a str,
    /// The request target as received (`-` for a request whose request
    /// line could not be parsed).
    pub target: &'a str,
    /// The protocol version the request was read as (`HTTP/1.2` and later
    /// minor versions are read as `HTTP/1.1`).
    pub version: &'a str,
    /// The response status.
    pub status: StatusCode,
    /// Body bytes sent, or queued to go out with the answers of the same
    /// batch. For an answer cut short while its body was being sent (the
    /// client went away, the body failed, a shutdown's drain timeout ran
    /// out), those of the writes that were done before (not those of the
    /// write that failed or was dropped, which may have gone out in part).
    pub bytes: u64,
    /// From the request being read to the response being written.
    pub elapsed: Duration,
}

impl fmt::Display for LogEntry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} \"{} {} {}\" {} {} {:.3}ms",
            self.client,
            self.method,
            self.target.escape_debug(),
            self.version,
            self.status.as_u16(),
            self.bytes,
            self.elapsed.as_secs_f64() * 1e3
        )
    }
}

type LogFn = Arc<dyn Fn(&LogEntry<'_>) + Send + Sync>;

/// An HTTP/1.1 server, bound and not yet serving.
///
/// ```no_run
/// use minihttp::{Request, Response, Server};
///
/// Server::bind("127.0.0.1:8080")?
///     .workers(4)
///     .serve(|req: Request| async move {
///         Response::text(format!("Hello, {}!", req.path()))
///     })?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// [`spawn`](Server::spawn) serves on background threads instead and
/// returns a [`ServerHandle`] for a graceful [`shutdown`](ServerHandle::shutdown):
///
/// ```
/// use minihttp::{Response, Server};
///
/// let server = Server::bind("127.0.0.1:0")?
///     .workers(1)
///     .spawn(|_req| async { Response::text("hi") })?;
/// let addr = server.local_addr();
/// # let mut s = std::net::TcpStream::connect(addr)?;
/// # use std::io::{Read, Write};
/// # s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
/// # let mut text = String::new();
/// # s.read_to_string(&mut text)?;
/// # assert!(text.starts_with("HTTP/1.1 200 OK") && text.ends_with("hi"));
/// server.shutdown()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Server {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    workers: usize,
    limits: Limits,
    drain_timeout: Duration,
    log: Option<LogFn>,
    shutdown: Arc<Event>,
    stream_bodies: bool,
    /// `None`: pin when the hubs have the machine's CPUs to themselves.
    pin: Option<bool>,
    batch: bool,
    locality: bool,
    clock: Option<ManualClock>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("workers", &self.workers)
            .field("limits", &self.limits)
            .field("drain_timeout", &self.drain_timeout)
            .field("stream_bodies", &self.stream_bodies)
            .field("pin", &self.pin)
            .field("batch", &self.batch)
            .field("locality", &self.locality)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds the listening socket now, so that a taken port is reported
    /// here: an error of kind `AddrInUse` whose message names the address.
    /// Port 0 picks a free port ([`local_addr`](Server::local_addr)).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Server> {
        let mut last = None;
        for a in addr.to_socket_addrs()? {
            match bind_std(a, true) {
                Ok(listener) => {
                    let addr = listener.local_addr()?;
                    return Ok(Server {
                        listener,
                        addr,
                        workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
                        limits: Limits::default(),
                        drain_timeout: Duration::from_secs(10),
                        log: None,
                        shutdown: Arc::new(Event::new()),
                        stream_bodies: false,
                        pin: None,
                        batch: false,
                        locality: true,
                        clock: None,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no address to bind to")
        }))
    }

    /// The number of hubs (threads), each with its own listener. Default:
    /// one per core. At least 1.
    pub fn workers(mut self, n: usize) -> Server {
        self.workers = n.max(1);
        self
    }

    /// Pins each hub's thread to a CPU of its own
    /// ([`RuntimeBuilder::pin_workers`](greenrt::RuntimeBuilder::pin_workers)).
    /// Default: on when there is a hub for every CPU the process may use
    /// and is entitled to (the default number of workers, outside a
    /// container's CPU quota:
    /// [`pin_workers_if_whole_machine`](greenrt::RuntimeBuilder::pin_workers_if_whole_machine)),
    /// off otherwise. About 10% more requests per second under load when
    /// the server has the machine to itself; turn it off when other busy
    /// processes (or other servers) share its cores.
    pub fn pin_workers(mut self, on: bool) -> Server {
        self.pin = Some(on);
        self
    }

    /// Runs the hubs' threads under the system's batch scheduling policy
    /// ([`RuntimeBuilder::batch_scheduling`](greenrt::RuntimeBuilder::batch_scheduling),
    /// Linux only). Default: off.
    ///
    /// A woken batch thread does not preempt the thread running on its
    /// CPU; it waits for that thread to block or to use up its time slice,
    /// which the scheduler notices at a tick (a few milliseconds; tens of
    /// milliseconds on a kernel with 100 ticks a second). On cores the server has to itself nothing
    /// changes. Where its cores are shared with busy threads that work
    /// with it (a load generator on the same machine, or a proxy), a hub
    /// finds more requests per wake-up and each costs the machine less:
    /// with `wrk` on the same two cores, 7-14% more requests per second
    /// in this workspace's benchmarks, with p99 latency about the same. Where
    /// they are shared with unrelated CPU-bound programs, a request may
    /// wait that long. Threads that handlers start inherit the policy.
    pub fn batch_scheduling(mut self, on: bool) -> Server {
        self.batch = on;
        self
    }

    /// Serves each connection on the hub pinned to the CPU that processes
    /// its packets, where the hubs are pinned ([`pin_workers`](Server::pin_workers)),
    /// while keeping the hubs' shares even. Default: on. Linux only
    /// (elsewhere, and with this off, the kernel spreads connections over
    /// the hubs' listeners by hash).
    ///
    /// Each hub's listener asks for the connections whose handshake its CPU
    /// processes (`SO_INCOMING_CPU`, which Linux honours among
    /// `SO_REUSEPORT` listeners since 6.1): the CPU of the network card's
    /// receive queue that the client's packets arrive on or, for a client
    /// on the same machine, the client's own CPU. The hub then serves the
    /// connection where its data already is, and the client's packets wake
    /// a thread on their own CPU instead of another's. A connection whose
    /// packets are later processed on another hub's CPU (a client on the
    /// same machine whose thread moved) moves to that hub: once in 32 idle
    /// waits after an answer it looks where its last packet was processed,
    /// and it moves when it finds the same other hub's CPU twice in a row.
    /// A moved connection costs its socket's removal from one hub's reactor
    /// and its addition to the other's.
    ///
    /// The hubs' shares stay even: a hub that holds more than the least
    /// loaded one by the larger of 8 connections and a quarter hands new
    /// connections to it, and no connection moves where that would make
    /// the shares uneven or go past [`Limits::max_connections_per_hub`]. A
    /// hub that hands a connection over (its CPU receives more handshakes
    /// than its share: a network card with one receive queue, say) or
    /// reaches that cap stops asking for its CPU's connections for good, as
    /// does one that does not run on the CPU planned for it: the kernel
    /// spreads them by hash again.
    ///
    /// What it does for a load generator on the same machine is in
    /// `BENCHMARKS.md` (the `--no-locality` rows); for clients on other
    /// machines it is not measured here.
    pub fn connection_locality(mut self, on: bool) -> Server {
        self.locality = on;
        self
    }

    /// Runs the server's hubs on a [`ManualClock`], which moves only when
    /// told to: the timeouts of [`Limits`] (and the drain timeout) then
    /// count its time, so that a test of them need not wait for real time
    /// to pass. Use one made with
    /// [`ManualClock::without_auto_advance`]: a clock that idle hubs
    /// advance by themselves would run every timeout out at once.
    pub fn clock(mut self, clock: ManualClock) -> Server {
        self.clock = Some(clock);
        self
    }

    /// Sets the limits on requests and the timeouts of connections
    /// ([`Limits::default`] unless set).
    pub fn limits(mut self, limits: Limits) -> Server {
        self.limits = limits;
        self
    }

    /// How long a shutdown waits for in-flight requests before it closes
    /// their connections anyway. Default: 10 s. Within it, a connection
    /// whose answer closed it while its client still sent lingers up to a
    /// second, so that those bytes do not reset the answer away.
    pub fn drain_timeout(mut self, d: Duration) -> Server {
        self.drain_timeout = d;
        self
    }

    /// Streams request bodies (off by default: bodies are buffered up to
    /// [`Limits::max_body`] before the handler runs).
    ///
    /// When on, a request with a body reaches the handler as soon as its
    /// head is read; the handler reads the body incrementally with
    /// [`Request::body_stream`] (a [`BodyStream`](crate::BodyStream):
    /// chunks, a `Stream`, or `futures_io::AsyncRead`), and
    /// [`Request::body`] is empty. The connection reads the socket only as
    /// the handler asks for bytes; `Expect: 100-continue` is answered when
    /// it first does. The body limit (413), bad framing (400), the
    /// header-read timeout for each pause and the minimum body rate (408)
    /// still apply: the handler's
    /// read fails and the client gets that error instead of the handler's
    /// response. A body the handler leaves unread is discarded before the
    /// next request on the connection: about 256 KiB of it at most (of
    /// body, chunk framing aside), for at most
    /// [`Limits::header_read_timeout`] in all, whatever the minimum rate
    /// would allow. A longer or slower rest (or a client that still waits
    /// for `100 Continue`) closes the connection instead, lingering, so
    /// that the answer is not lost.
    ///
    /// ```
    /// use minihttp::{Request, Response, Server};
    /// use std::io::{Read, Write};
    ///
    /// let server = Server::bind("127.0.0.1:0")?
    ///     .workers(1)
    ///     .stream_bodies(true)
    ///     .spawn(|mut req: Request| async move {
    ///         let mut body = req.body_stream();
    ///         let mut total = 0;
    ///         while let Ok(Some(chunk)) = body.next_chunk().await {
    ///             total += chunk.len();
    ///         }
    ///         Response::text(total.to_string())
    ///     })?;
    /// let mut s = std::net::TcpStream::connect(server.local_addr())?;
    /// s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n")?;
    /// s.write_all(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")?;
    /// let mut text = String::new();
    /// s.read_to_string(&mut text)?;
    /// assert!(text.ends_with("\r\n\r\n11"));
    /// server.shutdown()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stream_bodies(mut self, on: bool) -> Server {
        self.stream_bodies = on;
        self
    }

    /// Calls `f` with a [`LogEntry`] after each response (the access log).
    /// Off by default; when on, each request costs a clock read and a copy
    /// of its target. A panic in `f` loses that line, not the connection.
    pub fn access_log(mut self, f: impl Fn(&LogEntry<'_>) + Send + Sync + 'static) -> Server {
        self.log = Some(Arc::new(f));
        self
    }

    /// The event that shuts this server down gracefully once set (from any
    /// thread or task): stop accepting, close idle connections, finish
    /// in-flight requests for up to the [drain timeout](Server::drain_timeout),
    /// then [`serve`](Server::serve) returns.
    pub fn shutdown_event(&self) -> Arc<Event> {
        self.shutdown.clone()
    }

    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves on this thread until the [shutdown event](Server::shutdown_event)
    /// is set and the in-flight requests are done. A hub that cannot start
    /// serving (out of descriptors for its reactor, say) stops the server,
    /// and its error is returned.
    pub fn serve<H: Handler>(self, handler: H) -> io::Result<()> {
        let (listeners, shared) = self.prepare(handler)?;
        run(listeners, &shared)
    }

    /// Serves on background threads; the handle shuts the server down.
    ///
    /// Returns once every hub serves (its listener accepting, and taking
    /// its share of connections), so that the first connections made
    /// after it are spread as later ones are; or the error that kept the
    /// server from starting (its runtime could not be built, a hub could
    /// not register its listener), once what did start has stopped.
    pub fn spawn<H: Handler>(self, handler: H) -> io::Result<ServerHandle> {
        let addr = self.addr;
        let shutdown = self.shutdown.clone();
        let (listeners, shared) = self.prepare(handler)?;
        let started = shared.clone();
        let thread = std::thread::Builder::new()
            .name("minihttp".into())
            .spawn(move || {
                let r = run(listeners, &shared);
                // Also when a hub never started (the runtime could not be
                // built, say): `spawn` returns.
                shared.serving.set();
                r
            })?;
        started.serving.wait();
        if started.start_failed.load(Ordering::Acquire)
            || started.starting.load(Ordering::Acquire) > 0
        {
            let r = thread.join().unwrap_or_else(|p| Err(thread_panicked(p)));
            return Err(r
                .err()
                .unwrap_or_else(|| io::Error::other("the server stopped before it served")));
        }
        Ok(ServerHandle {
            addr,
            shutdown,
            thread: Some(thread),
        })
    }

    /// One listener per hub (the first is the one bound by `bind`), and
    /// what the hubs share.
    fn prepare<H: Handler>(
        self,
        handler: H,
    ) -> io::Result<(Vec<std::net::TcpListener>, Arc<Shared<H>>)> {
        let mut listeners = Vec::with_capacity(self.workers);
        listeners.push(self.listener);
        for _ in 1..self.workers {
            listeners.push(bind_std(self.addr, false)?);
        }
        // Each listener names the CPU its hub will be pinned to (see
        // `locality`) before the hubs start, so that the connections that
        // come first are steered as well.
        let planned = if self.locality && self.workers > 1 {
            runtime_builder(self.workers, self.pin, self.batch).planned_cpus()
        } else {
            Vec::new()
        };
        let cpus: Vec<Option<usize>> = listeners
            .iter()
            .enumerate()
            .map(|(i, listener)| {
                let cpu = planned.get(i).copied().flatten();
                cpu.filter(|&cpu| locality::steer(listener, cpu))
            })
            .collect();
        let loads = Loads::new(&cpus, self.limits.max_connections_per_hub);
        let shared = Arc::new(Shared {
            handler,
            limits: self.limits,
            drain_timeout: self.drain_timeout,
            log: self.log,
            shutdown: self.shutdown,
            stream_bodies: self.stream_bodies,
            pin: self.pin,
            batch: self.batch,
            loads,
            clock: self.clock,
            starting: AtomicUsize::new(listeners.len()),
            serving: Event::new(),
            start_failed: AtomicBool::new(false),
        });
        Ok((listeners, shared))
    }
}

/// A server running on background threads ([`Server::spawn`]).
///
/// Dropping the handle shuts the server down too, as
/// [`shutdown`](ServerHandle::shutdown) does: the drop blocks the calling
/// thread until the requests in flight have finished (for up to the drain
/// timeout, 10 seconds unless set) and the server's threads have ended.
/// Inside a green task, that blocks the task's whole hub: set the
/// [`shutdown_event`](ServerHandle::shutdown_event) there instead, and
/// drop the handle on a plain thread (or leave the drop to
/// [`greenrt::spawn_blocking`]).
#[derive(Debug)]
#[must_use = "dropping the handle shuts the server down"]
pub struct ServerHandle {
    addr: SocketAddr,
    shutdown: Arc<Event>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl ServerHandle {
    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The event that starts a graceful shutdown when set (the one
    /// [`shutdown`](ServerHandle::shutdown) sets).
    pub fn shutdown_event(&self) -> &Arc<Event> {
        &self.shutdown
    }

    /// Shuts down gracefully: stops accepting, closes idle keep-alive
    /// connections, lets in-flight requests finish for up to the drain
    /// timeout, and returns once the server's threads have ended.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop()
    }

    /// Waits until the server has stopped (its
    /// [`shutdown_event`](ServerHandle::shutdown_event) set elsewhere: by
    /// a signal handler, say) and its in-flight requests are done; its
    /// result. Unlike [`shutdown`](ServerHandle::shutdown), it does not
    /// stop the server itself.
    pub fn join(mut self) -> io::Result<()> {
        self.join_thread()
    }

    fn stop(&mut self) -> io::Result<()> {
        self.shutdown.set();
        self.join_thread()
    }

    fn join_thread(&mut self) -> io::Result<()> {
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|p| Err(thread_panicked(p))),
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// A listening socket with `SO_REUSEADDR` and (on Unix) `SO_REUSEPORT`.
///
/// The first socket (`first`) is bound before `SO_REUSEPORT` is set, so
/// that a port held by anyone, another `SO_REUSEPORT` server included, is
/// an error instead of a silently shared port; the flag is set before
/// `listen`, so the hubs' further sockets join it.
fn bind_std(addr: SocketAddr, first: bool) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    if !first {
        socket.set_reuse_port(true)?;
    }
    if let Err(e) = socket.bind(&addr.into()) {
        let msg = match e.kind() {
            io::ErrorKind::AddrInUse => format!("address {addr} is already in use"),
            io::ErrorKind::PermissionDenied => format!("no permission to bind {addr}"),
            _ => format!("cannot bind {addr}: {e}"),
        };
        return Err(io::Error::new(e.kind(), msg));
    }
    #[cfg(unix)]
    if first {
        socket.set_reuse_port(true)?;
    }
    socket.listen(4096)?;
    Ok(socket.into())
}

/// What every hub shares.
struct Shared<H> {
    handler: H,
    limits: Limits,
    drain_timeout: Duration,
    log: Option<LogFn>,
    shutdown: Arc<Event>,
    stream_bodies: bool,
    /// Whether the hubs' threads are pinned to CPUs; `None`: when they
    /// have the machine's CPUs to themselves.
    pin: Option<bool>,
    /// Whether the hubs' threads take the batch scheduling policy.
    batch: bool,
    /// Each hub's connections, for the balance of steered hubs, and the
    /// CPU of each hub whose listener asks for that CPU's connections (see
    /// `locality`).
    loads: Arc<Loads>,
    clock: Option<ManualClock>,
    /// Hubs that have not started serving yet (see [`Starting`]).
    starting: AtomicUsize,
    /// Set once every hub serves, or the server has ended: what
    /// [`Server::spawn`] waits for before it returns.
    serving: Event,
    /// A hub could not start serving (and stopped the server).
    start_failed: AtomicBool,
}

/// Counts a hub as started when it serves, or when it ends before (an
/// error), so that [`Server::spawn`] never waits for good.
struct Starting<'a> {
    starting: &'a AtomicUsize,
    serving: &'a Event,
    failed: &'a AtomicBool,
    shutdown: &'a Event,
    counted: bool,
}

impl<'a> Starting<'a> {
    fn new<H>(shared: &'a Shared<H>) -> Self {
        Starting {
            starting: &shared.starting,
            serving: &shared.serving,
            failed: &shared.start_failed,
            shutdown: &shared.shutdown,
            counted: false,
        }
    }

    /// The hub serves: the last one to get here lets `spawn` return.
    fn serves(&mut self) {
        if !std::mem::replace(&mut self.counted, true)
            && self.starting.fetch_sub(1, Ordering::AcqRel) == 1
        {
            self.serving.set();
        }
    }
}

impl Drop for Starting<'_> {
    /// A hub that ends before it serves (an error, a panic) stops the
    /// server: serving on fewer hubs than asked is not the server that was
    /// started, and `spawn` (or the command's user) learns of it now
    /// rather than at shutdown.
    fn drop(&mut self) {
        if !self.counted {
            self.failed.store(true, Ordering::Release);
            self.shutdown.set();
        }
        self.serves();
    }
}

/// The runtime of `hubs` hubs, pinned as `pin` says (`None`: when they
/// have the machine to themselves).
fn runtime_builder(hubs: usize, pin: Option<bool>, batch: bool) -> RuntimeBuilder {
    let rt = Runtime::builder().workers(hubs).batch_scheduling(batch);
    match pin {
        Some(on) => rt.pin_workers(on),
        None => rt.pin_workers_if_whole_machine(),
    }
}

/// Runs the hubs until shutdown.
fn run<H: Handler>(
    listeners: Vec<std::net::TcpListener>,
    shared: &Arc<Shared<H>>,
) -> io::Result<()> {
    let rt = runtime_builder(listeners.len(), shared.pin, shared.batch);
    let rt = match &shared.clock {
        Some(clock) => rt.clock(clock.clone()),
        None => rt,
    }
    .build()?;
    let hubs: Vec<Greenlet<io::Result<()>>> = listeners
        .into_iter()
        .enumerate()
        .map(|(i, listener)| {
            let shared = shared.clone();
            rt.spawn_on(i, async move {
                // The hub's own task need not be Send: connections are
                // spawned on it and stay there.
                match greenrt::spawn(hub_main(i, listener, shared)).await {
                    Ok(r) => r,
                    Err(e) => Err(io::Error::other(e.to_string())),
                }
            })
        })
        .collect();
    let mut result = Ok(());
    for hub in hubs {
        let r = match hub.get_blocking() {
            Some(Ok(r)) => r,
            Some(Err(e)) => Err(io::Error::other(e.to_string())),
            None => Ok(()),
        };
        if result.is_ok() {
            result = r;
        }
    }
    // Kills the connections still open past the drain timeout.
    drop(rt);
    result
}

/// One hub's connection count, and the hub task waiting on it.
struct HubState {
    live: Cell<usize>,
    waiter: Cell<Option<Waker>>,
    /// The connections waiting idle, about oldest first (see
    /// [`IdleMark::enter`]), each with the number of its idle wait; an
    /// entry whose number is no longer its connection's, or whose
    /// connection no longer waits idle, is stale. At the cap, the oldest
    /// idle connection closes to make room for a new one.
    idle: RefCell<VecDeque<(u64, Rc<IdleMark>)>>,
    /// Connections told to close to make room that have not closed yet:
    /// while there is one, no other connection is taken over the cap.
    evicting: Cell<usize>,
}

/// A connection's place among its hub's idle ones.
#[derive(Default)]
struct IdleMark {
    /// The number of its current (or last) idle wait.
    wait: Cell<u64>,
    /// Waiting idle: nothing of a request in hand.
    idle: Cell<bool>,
    /// Told to close, to make room.
    evicted: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl IdleMark {
    /// The connection starts an idle wait on `hub`: at the back of the
    /// queue when it starts to be idle (after an answer, or new), at the
    /// front when it goes on being idle after empty lines (which would
    /// otherwise keep a connection last in line for good).
    fn enter(self: &Rc<Self>, hub: &HubState, goes_on: bool) {
        let n = self.wait.get() + 1;
        self.wait.set(n);
        self.idle.set(true);
        let mut q = hub.idle.borrow_mut();
        if goes_on {
            q.push_front((n, self.clone()));
        } else {
            q.push_back((n, self.clone()));
        }
        // Stale entries go when they outnumber the connections.
        if q.len() > 2 * hub.live.get() + 16 {
            q.retain(|(n, m)| m.evictable(*n));
        }
        drop(q);
        // An acceptor waiting at the cap may now take a connection in
        // this one's place.
        if let Some(w) = hub.waiter.take() {
            w.wake();
        }
    }

    /// The connection's idle wait ended.
    fn leave(&self) {
        self.idle.set(false);
        self.waker.set(None);
    }

    /// Whether the entry of idle wait `n` stands for a connection that
    /// waits idle and may be told to close.
    fn evictable(&self, n: u64) -> bool {
        self.wait.get() == n && self.idle.get() && !self.evicted.get()
    }
}

impl HubState {
    /// Whether a connection waits idle (stale entries in front go).
    fn has_idle(&self) -> bool {
        let mut q = self.idle.borrow_mut();
        while let Some((n, m)) = q.front() {
            if m.evictable(*n) {
                return true;
            }
            q.pop_front();
        }
        false
    }

    /// Whether a new connection is to wait in the backlog: the hub is at
    /// its cap, and no idle connection can make room (or one already is).
    fn full(&self, cap: usize) -> bool {
        self.live.get() >= cap && (self.evicting.get() > 0 || !self.has_idle())
    }

    /// Tells the connection idle for the longest to close, and wakes it.
    fn evict_oldest(&self) {
        if !self.has_idle() {
            return;
        }
        let Some((_, m)) = self.idle.borrow_mut().pop_front() else {
            return;
        };
        m.evicted.set(true);
        self.evicting.set(self.evicting.get() + 1);
        if let Some(w) = m.waker.take() {
            w.wake();
        }
    }

    /// Waits until `ok(live connections)`.
    async fn wait_until(&self, ok: impl Fn(usize) -> bool) {
        poll_fn(|cx| {
            if ok(self.live.get()) {
                Poll::Ready(())
            } else {
                self.waiter.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }
}

/// Counts a connection while it lives (also when its task is killed):
/// in its hub's state, and in the server's [`Loads`] (already counted when
/// the hub was chosen).
struct Live(Rc<HubState>, Counted, Rc<IdleMark>);

impl Live {
    fn new(hub: &Rc<HubState>, counted: Counted) -> Live {
        hub.live.set(hub.live.get() + 1);
        Live(hub.clone(), counted, Rc::default())
    }

    /// The number of the hub serving the connection.
    fn hub(&self) -> usize {
        self.1.hub()
    }

    /// The connection's place among its hub's idle ones.
    fn mark(&self) -> &Rc<IdleMark> {
        &self.2
    }
}

impl Drop for Live {
    /// Also leaves the idle wait the connection may be in (its task may be
    /// killed there), and no longer counts as closing to make room.
    fn drop(&mut self) {
        self.2.leave();
        if self.2.evicted.get() {
            self.0.evicting.set(self.0.evicting.get() - 1);
        }
        self.0.live.set(self.0.live.get() - 1);
        if let Some(w) = self.0.waiter.take() {
            w.wake();
        }
    }
}

thread_local! {
    /// The state of the hub running on this thread, with the address of
    /// its server's [`Shared`]: where a connection handed over from
    /// another hub is counted.
    static HUB: RefCell<Option<(usize, Rc<HubState>)>> = const { RefCell::new(None) };
}

/// The key of a server's hubs in [`HUB`].
fn server_key<H>(shared: &Arc<Shared<H>>) -> usize {
    Arc::as_ptr(shared).cast::<()>() as usize
}

/// Moves a connection accepted on this hub to hub `to` of the same
/// server, to be served there. It closes if `to` has stopped meanwhile (a
/// shutdown). `answered`: a request was answered on it already.
fn hand_over<H: Handler>(
    handle: &Handle,
    to: usize,
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared<H>>,
    answered: bool,
) {
    let counted = shared.loads.count(to);
    let stream = stream.into_std();
    let shared = shared.clone();
    drop(handle.spawn_on(to, async move {
        let key = server_key(&shared);
        let hub = HUB.with_borrow(|h| {
            h.as_ref()
                .filter(|(k, _)| *k == key)
                .map(|(_, h)| h.clone())
        });
        let Some(hub) = hub else {
            return;
        };
        let Ok(stream) = TcpStream::from_std(stream) else {
            return;
        };
        let live = Live::new(&hub, counted);
        drop(greenrt::spawn(serve_conn(
            stream, peer, shared, live, answered,
        )));
    }));
}

/// One hub: accept until shutdown (at most the per-hub cap of connections
/// at once), then wait for the connections to finish, up to the drain
/// timeout.
async fn hub_main<H: Handler>(
    index: usize,
    listener: std::net::TcpListener,
    shared: Arc<Shared<H>>,
) -> io::Result<()> {
    let mut starting = Starting::new(&shared);
    // A hub that takes its CPU's connections (see `locality`) hands some
    // over when it holds more than its share; it stops taking them when
    // it runs elsewhere than planned (its pinning was refused, or its
    // runtime was built on a thread placed otherwise), holds more than its
    // share, or is full.
    let handle = Handle::try_current();
    let mut steered = false;
    if let Some(cpu) = shared.loads.cpu(index) {
        steered = handle.is_some() && greenrt::pinned_cpu() == Some(cpu);
        if !steered {
            locality::unsteer(&listener);
            shared.loads.lose_cpu(index);
        }
    }
    let balance = steered;
    // Out of descriptors for its reactor, say: the hub ends before it
    // serves, which stops the server (see `Starting`).
    let listener = TcpListener::from_std(listener)?;
    // The Date header of this hub's responses, refreshed once a second.
    set_ticked(true);
    refresh_date();
    let ticker = greenrt::spawn(async {
        loop {
            let next = refresh_date();
            greenrt::sleep(next + Duration::from_millis(1)).await;
        }
    });
    let hub = Rc::new(HubState {
        live: Cell::new(0),
        waiter: Cell::new(None),
        idle: RefCell::new(VecDeque::new()),
        evicting: Cell::new(0),
    });
    HUB.set(Some((server_key(&shared), hub.clone())));
    shared.loads.set_open(index, true);
    starting.serves();
    let cap = shared.limits.max_connections_per_hub.max(1);
    let event = shared.shutdown.clone();
    let mut stop = pin!(event.wait_async());
    loop {
        if steered && hub.live.get() >= cap {
            locality::unsteer(&listener);
            steered = false;
        }
        enum Wake {
            Conn(io::Result<(TcpStream, SocketAddr)>),
            Stop,
        }
        let wake = {
            let mut accept = pin!(listener.accept());
            poll_fn(|cx| {
                if stop.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Wake::Stop);
                }
                // At the cap, a connection is taken only in place of an
                // idle one (which closes); without one, further connections
                // wait in the backlog.
                if hub.full(cap) {
                    hub.waiter.set(Some(cx.waker().clone()));
                    return Poll::Pending;
                }
                accept.as_mut().poll(cx).map(Wake::Conn)
            })
            .await
        };
        match wake {
            Wake::Stop => break,
            Wake::Conn(Ok((stream, peer))) => {
                let to = match &handle {
                    Some(handle) if balance => shared.loads.elsewhere(index).map(|to| (handle, to)),
                    _ => None,
                };
                match to {
                    Some((handle, to)) => {
                        if steered {
                            locality::unsteer(&listener);
                            steered = false;
                        }
                        hand_over(handle, to, stream, peer, &shared, false);
                    }
                    None => {
                        if hub.live.get() >= cap {
                            hub.evict_oldest();
                        }
                        let live = Live::new(&hub, shared.loads.count(index));
                        drop(greenrt::spawn(serve_conn(
                            stream,
                            peer,
                            shared.clone(),
                            live,
                            false,
                        )));
                    }
                }
            }
            Wake::Conn(Err(e)) => {
                // Out of descriptors: as at the cap, the connection idle
                // the longest makes room, and the next accept waits until
                // it has closed (else idle keep-alive connections would
                // hold every descriptor until their idle timeout, and new
                // clients wait in the backlog meanwhile).
                if out_of_descriptors(&e) && hub.evicting.get() == 0 && hub.has_idle() {
                    hub.evict_oldest();
                    let stopped = poll_fn(|cx| {
                        if stop.as_mut().poll(cx).is_ready() {
                            return Poll::Ready(true);
                        }
                        if hub.evicting.get() == 0 {
                            return Poll::Ready(false);
                        }
                        hub.waiter.set(Some(cx.waker().clone()));
                        Poll::Pending
                    })
                    .await;
                    if stopped {
                        break;
                    }
                    continue;
                }
                // Out of descriptors with no idle connection to close, or
                // a connection reset before it was accepted: let the
                // moment pass, then go on accepting.
                let mut pause = pin!(greenrt::sleep(Duration::from_millis(10)));
                let stopped = poll_fn(|cx| {
                    if stop.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(true);
                    }
                    pause.as_mut().poll(cx).map(|()| false)
                })
                .await;
                if stopped {
                    break;
                }
            }
        }
    }
    // Stop accepting: this hub's share of the port closes now, and other
    // hubs hand it no more connections.
    shared.loads.set_open(index, false);
    drop(listener);
    let _ = greenrt::timeout(shared.drain_timeout, hub.wait_until(|n| n == 0)).await;
    HUB.set(None);
    ticker.kill();
    set_ticked(false);
    Ok(())
}

/// Whether an accept failed for want of descriptors (of the process or
/// of the system), which closing a connection gives back.
fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// What ended a wait for bytes.
enum Wake {
    Read(io::Result<usize>),
    /// Nothing to read on an idle connection: wait for the socket to be
    /// readable instead.
    Idle,
    /// The socket became readable while the connection was idle.
    Readable(io::Result<()>),
    Timer,
    Stop,
    /// Idle, told to close to make room for a new connection.
    Evicted,
}

/// One connection, from accept to close.
async fn serve_conn<H: Handler>(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared<H>>,
    live: Live,
    mut answered: bool,
) {
    let _ = stream.set_nodelay(true);
    let limits = &shared.limits;
    let mut conn = Conn::new(limits.clone());
    conn.set_stream_bodies(shared.stream_bodies);
    let mut rbuf = ReadBuf::new();
    // Taken for each batch of answers (see `SPARE_WBUF`).
    let mut wbuf: Vec<u8> = Vec::new();
    let mut stop = pin!(shared.shutdown.wait_async());
    let mark = live.mark();
    // The handler's future on the common path (see below): made in place,
    // in this task's state.
    let mut answer: Pin<&mut Option<H::Future>> = pin!(None);
    let mut timer = pin!(greenrt::time::sleep(limits.idle_timeout));
    // When the request being read started to arrive (header-read timeout).
    let mut head_started: Option<Instant> = None;
    // When the body being read was first waited for (minimum body rate).
    let mut body_started: Option<Instant> = None;
    // When the rest of a body answered early began to be discarded.
    let mut drain_started: Option<Instant> = None;
    // When the connection last went idle (idle timeout): kept through
    // bytes that start no request (empty lines), so that a trickle of
    // them cannot hold the connection open.
    let mut idle_started: Option<Instant> = None;
    // `answered`, whether a request was answered: until then the
    // connection's quiet time is bounded by the header-read timeout, not
    // the idle one, so that connections that never send a byte cannot
    // hold the server's connection slots for long.
    // Whether the connection ends on an error answer while the client may
    // still be sending (closing with unread bytes would reset the
    // connection and could destroy the answer).
    let mut linger = false;
    // Where the connection's packets are processed (see `locality`), on a
    // steered hub; the runtime and the hub the connection moves to.
    let follows = shared.loads.cpu(live.hub()).is_some();
    let mut follow = Follow::default();
    let mut move_to = None;
    'conn: loop {
        if wbuf.capacity() == 0 {
            wbuf = take_wbuf();
        }
        // Answer every complete request in the buffer, into one write.
        loop {
            match conn.poll_request(&mut rbuf) {
                // The common path: no streamed body, no access log. The
                // handler's future lives in `answer`, and nothing else of
                // the request is kept across the await: a task state no
                // larger than it must be, and no large future moved in and
                // out of it per request.
                Ok(Next::Request(req)) if shared.log.is_none() && !conn.is_streaming_body() => {
                    // The answer goes straight from the handler's future
                    // into this slot: a `Response` is large, and every move
                    // of it is a copy.
                    let mut slot = None;
                    match guarded(|| shared.handler.call(req)) {
                        Some(fut) => {
                            answer.set(Some(fut));
                            let ready = poll_fn(|cx| {
                                Poll::Ready(poll_answer(answer.as_mut(), cx, &mut slot).is_ready())
                            })
                            .await;
                            if !ready {
                                // Not ready: the answers already made go out
                                // first, rather than wait behind this one.
                                if flush(&stream, &mut wbuf, limits.write_timeout)
                                    .await
                                    .is_err()
                                {
                                    break 'conn;
                                }
                                poll_fn(|cx| poll_answer(answer.as_mut(), cx, &mut slot)).await;
                            }
                            quietly(|| answer.set(None));
                        }
                        None => slot = Some(Response::error(StatusCode::INTERNAL_SERVER_ERROR)),
                    }
                    let response = slot
                        .get_or_insert_with(|| Response::error(StatusCode::INTERNAL_SERVER_ERROR));
                    let start = wbuf.len();
                    // No log to tell of the bytes sent of a body cut short.
                    let progress = Cell::new(0);
                    // An answer in memory is sent with the batch: no future
                    // to poll for it.
                    let sent = match send_response(
                        &shared, &mut conn, &rbuf, response, &mut wbuf, &stream, &progress,
                    ) {
                        SendBody::Done(sent) => sent,
                        SendBody::Boxed(body) => body.await,
                    };
                    match sent {
                        Ok(_) => {}
                        Err(Failed::Unsent) => {
                            conn.replace_with_error(start, &mut wbuf);
                        }
                        Err(failed) => {
                            linger |= failed.lingers();
                            break 'conn;
                        }
                    }
                }
                Ok(Next::Request(req)) => {
                    match respond(&shared, &mut conn, req, peer, &mut wbuf, &stream, &mut rbuf)
                        .await
                    {
                        Ok(close_lingering) => linger |= close_lingering,
                        Err(failed) => {
                            linger |= failed.lingers();
                            break 'conn;
                        }
                    }
                }
                Ok(Next::Continue) => {
                    conn.encode_continue(&mut wbuf);
                    break;
                }
                Ok(Next::NeedMore | Next::Close) => break,
                Err(e) => {
                    let line = conn.failed_request_line(&rbuf);
                    let framing = conn.encode_error(&e, &mut wbuf);
                    log_error(&shared, peer, line, e.status(), framing);
                    linger = true;
                    break;
                }
            }
            // A request was answered (every other outcome left the loop).
            // The next head's time counts from its own first byte, not from
            // this one's, and so does the next idle time.
            head_started = None;
            body_started = None;
            drain_started = None;
            idle_started = None;
            answered = true;
            // A batch of answers is bounded: a client that pipelines many
            // requests and reads nothing holds at most this much here (and
            // waits on the write timeout).
            if wbuf.len() >= FLUSH_AT
                && flush(&stream, &mut wbuf, limits.write_timeout)
                    .await
                    .is_err()
            {
                break 'conn;
            }
        }
        if !wbuf.is_empty()
            && flush(&stream, &mut wbuf, limits.write_timeout)
                .await
                .is_err()
        {
            break;
        }
        give_back_wbuf(&mut wbuf);
        if conn.is_done() {
            // Pipelined bytes left unread (read, or still in the socket:
            // a client that said it would close may send more all the
            // same, another request or a CRLF after a body), or a client
            // that may still send some: closing now would reset the
            // connection, and could destroy the answers just sent.
            // (No peek when it lingers anyway.)
            linger = linger || !rbuf.is_empty() || conn.closed_early() || unread_input(&stream);
            break;
        }
        let mid = conn.is_mid_request(&rbuf);
        let body = conn.is_reading_body();
        if !body {
            body_started = None;
        }
        if !conn.is_discarding_body() {
            drain_started = None;
        }
        if !mid {
            head_started = None;
            if shared.shutdown.is_set() && !unread_input(&stream) {
                // Shutting down and nothing in flight here. (Bytes the
                // client sent already, pipelined behind an answer begun
                // before the shutdown, which did not say it closes, are a
                // request arriving, read and answered as such: left
                // unread, they would reset the connection at its close,
                // and the reset could destroy the end of that answer on
                // its way.)
                break;
            }
        }
        // Wait for more bytes, the timer, or (when idle) the shutdown.
        let mut watch_stop = !shared.shutdown.is_set();
        // The deadline of this wait, fixed at its first pending read (the
        // last activity), kept when an early timer fires.
        let mut due = None;
        // Idle (nothing of a request received), a connection waits for the
        // socket to be readable without a read buffer (see `SPARE_RBUF`),
        // then reads; and so does one whose read (after a readiness that
        // was stale) would block.
        let may_idle = !mid && !body && rbuf.is_empty();
        // Only right after an answer: an idle deadline in force (empty
        // lines trickled in since) stays with this task.
        // Not while shutting down: the other hub may have stopped already.
        if may_idle && follows && idle_started.is_none() && !shared.shutdown.is_set() {
            if let Some(to) = follow.idle(&stream, live.hub(), &shared.loads) {
                if let Some(handle) = Handle::try_current() {
                    give_back_rbuf(&mut rbuf);
                    move_to = Some((handle, to));
                    break 'conn;
                }
            }
        }
        let mut idle = may_idle;
        if idle {
            give_back_rbuf(&mut rbuf);
        }
        if may_idle {
            // An idle time already running: empty lines came since.
            mark.enter(&live.0, idle_started.is_some());
        }
        loop {
            if !idle {
                take_rbuf(&mut rbuf);
            }
            let wake = {
                let mut read = pin!((!idle).then(|| stream.read(rbuf.spare(READ_CHUNK))));
                poll_fn(|cx| {
                    // Told to close before anything else: bytes that came
                    // meanwhile are a request the client will send again,
                    // as on any keep-alive connection that closes.
                    if may_idle && mark.evicted.get() {
                        return Poll::Ready(Wake::Evicted);
                    }
                    match read.as_mut().as_pin_mut() {
                        Some(read) => match read.poll(cx) {
                            Poll::Ready(r) => return Poll::Ready(Wake::Read(r)),
                            Poll::Pending if may_idle => return Poll::Ready(Wake::Idle),
                            Poll::Pending => {}
                        },
                        None => {
                            if let Poll::Ready(r) = stream.poll_read_ready(cx) {
                                return Poll::Ready(Wake::Readable(r));
                            }
                        }
                    }
                    if watch_stop && stop.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Wake::Stop);
                    }
                    if may_idle {
                        let waker = mark.waker.take();
                        mark.waker.set(Some(match waker {
                            Some(w) if w.will_wake(cx.waker()) => w,
                            _ => cx.waker().clone(),
                        }));
                    }
                    // The clock is read only when the socket has nothing.
                    if due.is_none() {
                        let now = greenrt::time::now();
                        let d = if body {
                            // A body may take long, but neither stall nor
                            // trickle.
                            let started = *body_started.get_or_insert(now);
                            let d = body_wait_deadline(limits, now, started, conn.body_received());
                            if conn.is_discarding_body() {
                                // The rest of a body nobody reads: for one
                                // header-read timeout at most, whatever
                                // the minimum rate would allow.
                                let from = *drain_started.get_or_insert(now);
                                d.min(after(from, limits.header_read_timeout))
                            } else {
                                d
                            }
                        } else if mid {
                            after(*head_started.get_or_insert(now), limits.header_read_timeout)
                        } else {
                            let limit = if answered {
                                limits.idle_timeout
                            } else {
                                limits.header_read_timeout
                            };
                            after(*idle_started.get_or_insert(now), limit)
                        };
                        // A timer set for a later time, or already fired,
                        // is moved; an earlier one is kept and checked
                        // when it fires.
                        if timer.deadline() > d || timer.deadline() <= now {
                            timer.as_mut().reset(d);
                        }
                        due = Some(d);
                    }
                    timer.as_mut().poll(cx).map(|()| Wake::Timer)
                })
                .await
            };
            match wake {
                Wake::Read(Ok(0)) => {
                    conn.read_eof();
                    break;
                }
                Wake::Read(Ok(n)) => {
                    rbuf.filled(n);
                    break;
                }
                Wake::Read(Err(_)) | Wake::Readable(Err(_)) => break 'conn,
                Wake::Idle => {
                    idle = true;
                    give_back_rbuf(&mut rbuf);
                }
                Wake::Readable(Ok(())) => idle = false,
                Wake::Evicted => break 'conn,
                Wake::Stop => {
                    // Bytes already sent are a request arriving, as above.
                    if !mid && !unread_input(&stream) {
                        break 'conn;
                    }
                    // A request is arriving: let it finish (the drain
                    // timeout bounds it).
                    watch_stop = false;
                }
                Wake::Timer => {
                    let deadline = due.unwrap_or_else(greenrt::time::now);
                    if greenrt::time::now() >= deadline {
                        // A request answered early, whose body was being
                        // discarded, has had its answer: no 408 after it,
                        // but a lingering close, so that a reset does not
                        // destroy that answer.
                        if conn.is_discarding_body() {
                            linger = true;
                        } else if mid {
                            let error = conn.timeout_error(&rbuf);
                            let line = conn.failed_request_line(&rbuf);
                            let framing = conn.encode_error(&error, &mut wbuf);
                            log_error(&shared, peer, line, error.status(), framing);
                            if flush(&stream, &mut wbuf, limits.write_timeout)
                                .await
                                .is_ok()
                            {
                                linger = true;
                            }
                        }
                        break 'conn;
                    }
                    timer.as_mut().reset(deadline);
                }
            }
        }
        mark.leave();
    }
    if linger {
        linger_close(&stream, &mut rbuf).await;
    } else if let Some((handle, to)) = move_to {
        // Nothing of a request is in hand: the other hub starts afresh.
        drop(live);
        hand_over(&handle, to, stream, peer, &shared, answered);
    }
}

/// Whether the client sent bytes that are not read yet, without waiting
/// (a peek: they stay to be read).
fn unread_input(stream: &TcpStream) -> bool {
    let mut byte = [std::mem::MaybeUninit::uninit()];
    matches!(socket2::SockRef::from(stream).peek(&mut byte), Ok(n) if n > 0)
}

/// At a shutdown: whether the client sent another request before this
/// connection saw it, pipelined behind the one being answered, on a
/// connection that may carry it. Such a request is in flight too, and its
/// answer, not this one, tells the client that the connection ends.
///
/// The requests sent before are counted once, when the connection first
/// sees the shutdown: the heads read already (by the blank lines that end
/// them), and one more if bytes wait in the socket (sent while a handler
/// ran; they are not read to be counted). Each answer that keeps the
/// connection spends one: a client that goes on sending gets its close
/// with the last of them, not at the drain timeout.
fn answer_follows(conn: &mut Conn, rbuf: &ReadBuf, stream: &TcpStream) -> bool {
    // No peek once the requests counted are answered.
    if !conn.keep_alive() || conn.is_reading_body() || conn.sent_before_shutdown == Some(0) {
        return false;
    }
    let waiting = unread_input(stream);
    let follows = conn.is_mid_request(rbuf) || waiting;
    let left = conn
        .sent_before_shutdown
        .get_or_insert_with(|| heads_in(rbuf.data()).saturating_add(u32::from(waiting)));
    if *left == 0 || !follows {
        return false;
    }
    *left -= 1;
    true
}

/// The ends of request heads in `bytes`: an empty line after a line
/// (`\n\n` or `\n\r\n`). Empty lines between requests count too: an
/// answer more is the worst of it.
fn heads_in(bytes: &[u8]) -> u32 {
    let ends = bytes.iter().enumerate().filter(|&(i, &b)| {
        let rest = &bytes[i + 1..];
        b == b'\n' && (rest.starts_with(b"\n") || rest.starts_with(b"\r\n"))
    });
    u32::try_from(ends.count()).unwrap_or(u32::MAX)
}

/// Closes after an error answer: ends the sending side, then reads and
/// drops what the client still sends, for at most `LINGER_TIME` and
/// `LINGER_BYTES`, so that the answer is not lost to a reset.
async fn linger_close(stream: &TcpStream, rbuf: &mut ReadBuf) {
    const LINGER_TIME: Duration = Duration::from_secs(1);
    const LINGER_BYTES: usize = crate::conn::DRAIN_MAX as usize;
    if stream.shutdown(std::net::Shutdown::Write).is_err() {
        return;
    }
    let drain = async {
        let mut dropped = 0;
        while dropped < LINGER_BYTES {
            rbuf.consume(rbuf.len());
            match stream.read(rbuf.spare(READ_CHUNK)).await {
                Ok(0) | Err(_) => break,
                Ok(n) => dropped += n,
            }
        }
    };
    let _ = greenrt::timeout(LINGER_TIME, drain).await;
}

/// What the access log says of a request, kept from its head to its
/// answer's end.
struct Logged {
    client: SocketAddr,
    method: Method,
    target: String,
    version: Version,
    start: Instant,
}

impl Logged {
    /// The log line of the request, answered `status` with `bytes` of body.
    fn entry(&self, status: StatusCode, bytes: u64) -> LogEntry<'_> {
        LogEntry {
            client: self.client,
            method: self.method.as_str(),
            target: &self.target,
            version: self.version.as_str(),
            status,
            bytes,
            elapsed: self.start.elapsed(),
        }
    }
}

/// The log line of an answer whose body is being sent, written if the
/// sending is dropped before it ends (the connection's task ended: a
/// shutdown whose drain ran out). Forgotten once the body ends, whose line
/// is then logged as usual.
struct CutShort<'a, H> {
    shared: &'a Shared<H>,
    logged: &'a Logged,
    status: StatusCode,
    /// The body bytes flushed so far.
    progress: &'a Cell<u64>,
}

impl<H> Drop for CutShort<'_, H> {
    fn drop(&mut self) {
        let entry = self.logged.entry(self.status, self.progress.get());
        log_entry(self.shared, &entry);
    }
}

/// Logs a response to a request that could not be parsed.
/// Logs the error answer to a request that failed: with its request line
/// where it is known (see `Conn::failed_request_line`), else `-`s.
fn log_error<H>(
    shared: &Shared<H>,
    peer: SocketAddr,
    line: Option<[String; 3]>,
    status: StatusCode,
    framing: Framing,
) {
    if shared.log.is_none() {
        return;
    }
    let [method, target, version] = line
        .as_ref()
        .map_or(["-"; 3], |l| l.each_ref().map(String::as_str));
    log_entry(
        shared,
        &LogEntry {
            client: peer,
            method,
            target,
            version,
            status,
            bytes: body_len(framing),
            elapsed: Duration::ZERO,
        },
    );
}

/// The body bytes an answer in memory was encoded with, from its framing
/// (none for the answer to a `HEAD` request).
fn body_len(framing: Framing) -> u64 {
    match framing {
        Framing::Length(n) => n,
        Framing::None | Framing::Chunked | Framing::UntilClose => 0,
    }
}

/// Calls the access log, if there is one. A log that panics loses its
/// line, not the connection.
fn log_entry<H>(shared: &Shared<H>, entry: &LogEntry<'_>) {
    if let Some(log) = &shared.log {
        let _ = guarded(|| log(entry));
    }
}

/// Runs the handler for `req` (a panic answers 500), encodes the response
/// into `wbuf`, and sends a file or stream body through it. An error means
/// the connection must close; `Ok(true)`, that the connection ends with a
/// lingering close: a streamed request body failed and its error was
/// answered, or it was left unread and the answer closes the connection.
/// A body that failed before any of its answer was sent is answered 500
/// instead (and the log says so).
async fn respond<H: Handler>(
    shared: &Shared<H>,
    conn: &mut Conn,
    mut req: Request,
    peer: SocketAddr,
    wbuf: &mut Vec<u8>,
    stream: &TcpStream,
    rbuf: &mut ReadBuf,
) -> Result<bool, Failed> {
    let logged = shared.log.as_ref().map(|_| Logged {
        client: peer,
        method: req.method().clone(),
        target: req.target().to_owned(),
        version: req.version(),
        start: Instant::now(),
    });
    // A streamed body: the handler reads it through a pipe that this
    // task fills while it polls the handler (no task, no allocation for
    // requests without one).
    let feeder = if conn.is_streaming_body() {
        let (feeder, body) = pipe(conn.body_remaining());
        req.extra_mut().stream = Some(body);
        Some(feeder)
    } else {
        None
    };
    let mut body_error = None;
    let response = match guarded(|| shared.handler.call(req)) {
        Some(fut) => {
            let mut slot = pin!(Some(fut));
            let mut fut = slot.as_mut().as_pin_mut().expect("set just above");
            let response = match &feeder {
                None => {
                    let first = poll_fn(|cx| Poll::Ready(poll_guarded(fut.as_mut(), cx))).await;
                    match first {
                        Poll::Ready(r) => r,
                        Poll::Pending => {
                            // As on the common path: the answers already
                            // made go out before this one is waited for.
                            flush_body(stream, wbuf, shared.limits.write_timeout, 0).await?;
                            poll_fn(|cx| poll_guarded(fut.as_mut(), cx)).await
                        }
                    }
                }
                Some(feeder) => {
                    let (r, e) = Box::pin(pump(
                        fut.as_mut(),
                        feeder,
                        conn,
                        rbuf,
                        wbuf,
                        stream,
                        &shared.limits,
                    ))
                    .await
                    .map_err(|_| Failed::Write(0))?;
                    body_error = e;
                    r
                }
            };
            quietly(|| slot.set(None));
            response
        }
        None => Response::error(StatusCode::INTERNAL_SERVER_ERROR),
    };
    if let Some(feeder) = feeder {
        feeder.close();
    }
    if let Some(e) = body_error {
        // The body could not be read: its error is the answer.
        conn.note_failed_head(rbuf);
        let framing = conn.encode_error(&e, wbuf);
        if let Some(l) = &logged {
            log_entry(shared, &l.entry(e.status(), body_len(framing)));
        }
        return Ok(true);
    }
    // A body left unread on a connection that now closes: close lingering,
    // or the unread bytes could reset the connection and destroy the answer.
    let unread = conn.is_streaming_body();
    let mut response = response;
    let start = wbuf.len();
    let progress = Cell::new(0);
    let mut sent = match send_response(shared, conn, rbuf, &mut response, wbuf, stream, &progress) {
        SendBody::Done(sent) => sent,
        SendBody::Boxed(body) => {
            // A body sent over time may be cut short by the end of this
            // task (a shutdown whose drain ran out): its line is logged
            // then, with the bytes flushed so far.
            let cut = logged.as_ref().map(|logged| CutShort {
                shared,
                logged,
                status: response.status(),
                progress: &progress,
            });
            let sent = body.await;
            std::mem::forget(cut);
            sent
        }
    };
    // Mended by `send_response`: the status the client gets.
    let mut status = response.status();
    if let Err(Failed::Unsent) = sent {
        let framing = conn.replace_with_error(start, wbuf);
        status = StatusCode::INTERNAL_SERVER_ERROR;
        sent = Ok(body_len(framing));
    }
    let linger = unread && conn.is_done();
    if let Some(l) = &logged {
        log_entry(shared, &l.entry(status, sent.unwrap_or_else(Failed::sent)));
    }
    sent.map(|_| linger)
}

/// Encodes a handler's answer into `wbuf` and sends a body that is not in
/// memory. Returns the body bytes sent or encoded.
///
/// The answer is first mended for a final answer ([`mend_final`]).
/// Not `async`: for a body in memory (nearly every answer) it returns
/// [`SendBody::Done`], which callers take without polling, and the rare,
/// large futures of files and streams are boxed. Inlined: it is on every
/// request's path. The answer is lent rather than moved in: a `Response`
/// is large, and every move of it is a copy.
#[inline(always)]
fn send_response<'a, H>(
    shared: &'a Shared<H>,
    conn: &mut Conn,
    rbuf: &ReadBuf,
    response: &mut Response,
    wbuf: &'a mut Vec<u8>,
    stream: &'a TcpStream,
    progress: &'a Cell<u64>,
) -> SendBody<'a> {
    mend_final(response);
    if shared.shutdown.is_set() && !answer_follows(conn, rbuf, stream) {
        // Shutting down: tell the client this connection ends here.
        let _ = response.headers_mut().insert("connection", "close");
    }
    let framing = conn.encode_response(response, wbuf);
    if framing == Framing::None {
        return SendBody::Done(Ok(0));
    }
    if let Some(bytes) = response.body().as_bytes() {
        // In memory, and encoded with the head: nothing to take out.
        return SendBody::Done(Ok(bytes.len() as u64));
    }
    match response.take_body() {
        Body::File(f) => SendBody::Boxed(Box::pin(send_file(
            f,
            wbuf,
            stream,
            shared.limits.write_timeout,
            progress,
        ))),
        Body::Stream(s) => SendBody::Boxed(Box::pin(send_stream(
            s,
            framing,
            wbuf,
            stream,
            shared.limits.write_timeout,
            progress,
        ))),
        b => SendBody::Done(Ok(b.len().unwrap_or(0))),
    }
}

/// A handler's answer as it can be sent as a final answer: a 1xx is never
/// one (a client would keep waiting for it), so it becomes a 500; a 205
/// carries no content (RFC 9110 section 15.3.6) and, unlike a 204, is
/// framed (`Content-Length: 0`).
#[inline]
fn mend_final(response: &mut Response) {
    let status = response.status();
    if status.is_informational() {
        *response = Response::error(StatusCode::INTERNAL_SERVER_ERROR);
    } else if status == StatusCode::RESET_CONTENT {
        response.set_body(Body::Empty);
    }
}

/// How sending an answer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failed {
    /// The connection failed (a write error or timeout): it closes, after
    /// this many body bytes went to the socket.
    Write(u64),
    /// The body could not be produced, and nothing of its answer has been
    /// sent: the answer is still in the write buffer, where it can be
    /// replaced.
    Unsent,
    /// The body failed after part of its answer (this many body bytes)
    /// was sent: the connection closes, and the client sees a short body
    /// (chunked or counted: it tells by itself). The close lingers, so
    /// that a request pipelined behind, left unread, does not reset the
    /// connection and destroy the answers still on their way.
    Partial(u64),
    /// As `Partial`, for a body sent until the close, which an orderly
    /// close would pass off as whole: the connection is reset instead (see
    /// `CutResets`).
    Cut(u64),
}

impl Failed {
    /// Whether the connection closes lingering after this failure (see
    /// `Partial`): not after a write that failed (no answer can go out
    /// any more), nor after a body sent until the close (reset on purpose).
    fn lingers(self) -> bool {
        matches!(self, Failed::Partial(_))
    }

    /// Body bytes that went to the socket before the failure.
    fn sent(self) -> u64 {
        match self {
            Failed::Write(n) | Failed::Partial(n) | Failed::Cut(n) => n,
            Failed::Unsent => 0,
        }
    }
}

/// What [`send_response`] leaves to do: nothing (the body bytes encoded),
/// or a file or stream to send, to await.
enum SendBody<'a> {
    Done(Result<u64, Failed>),
    Boxed(Pin<Box<dyn Future<Output = Result<u64, Failed>> + 'a>>),
}

/// Runs `drop`, which drops what a handler made (its future, a body's
/// stream), with a panic caught: the answer is made, and a destructor
/// that panics must not take it, and the connection, with it.
pub(crate) fn quietly(drop: impl FnOnce()) {
    let _ = guarded(drop);
}

/// Runs `f`, the handler's code, with a panic caught: `None` then. The
/// panic's payload is dropped here, a panic of its own destructor caught
/// too (see [`sync_prims::Panicked`]): escaping, it would take the
/// connection, and the 500 that answers the first panic, with it.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(p) => {
            drop(sync_prims::Panicked::from_payload(p));
            None
        }
    }
}

/// Polls a handler's future; a panic answers 500.
fn poll_guarded<F: Future<Output = Response>>(
    fut: Pin<&mut F>,
    cx: &mut std::task::Context<'_>,
) -> Poll<Response> {
    match guarded(|| fut.poll(cx)) {
        Some(p) => p,
        None => Poll::Ready(Response::error(StatusCode::INTERNAL_SERVER_ERROR)),
    }
}

/// Runs a handler whose request body is streamed: whenever it waits for
/// body bytes, decodes the next ones from `rbuf` into the pipe, reading
/// the socket (while still polling the handler) when `rbuf` has none and
/// sending `100 Continue` when the client waits for it. Each pause is
/// bounded by the header-read timeout, and the whole by the minimum body
/// rate (from the first wait for body bytes). Returns the handler's response and
/// the body's error, if it failed; an I/O error closes the connection.
async fn pump<F: Future<Output = Response>>(
    mut fut: Pin<&mut F>,
    feeder: &Feeder,
    conn: &mut Conn,
    rbuf: &mut ReadBuf,
    wbuf: &mut Vec<u8>,
    stream: &TcpStream,
    limits: &Limits,
) -> io::Result<(Response, Option<Error>)> {
    enum Wake {
        Read(io::Result<usize>),
        Answer(Response),
        Timer,
    }
    let mut failed: Option<Error> = None;
    let mut timer = pin!(greenrt::time::sleep(limits.header_read_timeout));
    // When the body was first waited for (minimum body rate), moved on by
    // the handler's time between reads: the time the handler takes before
    // it reads, or between two reads (the server reads nothing meanwhile,
    // and holds the client back), or a client waiting for its `100
    // Continue`, is not the client's.
    let mut started: Option<Instant> = None;
    // When the handler was last handed bytes.
    let mut handed: Option<Instant> = None;
    /// What the handler did when polled.
    enum Step {
        Answered(Response),
        WantsBody,
        /// Waits for something else, with earlier answers still unsent.
        Waits,
    }
    loop {
        // Run the handler until it answers or waits for body bytes.
        let step = poll_fn(|cx| match poll_guarded(fut.as_mut(), cx) {
            Poll::Ready(r) => Poll::Ready(Step::Answered(r)),
            Poll::Pending if failed.is_none() && feeder.wants(cx.waker()) => {
                Poll::Ready(Step::WantsBody)
            }
            Poll::Pending if !wbuf.is_empty() => Poll::Ready(Step::Waits),
            Poll::Pending => Poll::Pending,
        })
        .await;
        match step {
            Step::Answered(r) => return Ok((r, failed)),
            Step::WantsBody => {}
            Step::Waits => {
                // The answers already made go out first, rather than wait
                // behind this one.
                flush(stream, wbuf, limits.write_timeout).await?;
                continue;
            }
        }
        // Feed it: what the buffer holds, else what the socket brings.
        loop {
            match feeder.fill(|out| conn.poll_body(rbuf, out)) {
                Ok(BodyRead::Data) => {
                    feeder.wake_reader();
                    if started.is_some() {
                        handed = Some(greenrt::time::now());
                    }
                    break;
                }
                Ok(BodyRead::Done) => {
                    feeder.finish(Ok(()));
                    break;
                }
                Ok(BodyRead::Continue) => {
                    // Earlier answers in `wbuf` go first.
                    conn.encode_continue(wbuf);
                    flush(stream, wbuf, limits.write_timeout).await?;
                }
                Ok(BodyRead::NeedMore) => {
                    // Earlier answers go out before the wait for the body:
                    // the client may wait for them before it sends more.
                    flush(stream, wbuf, limits.write_timeout).await?;
                    // The pause's deadline, fixed when the socket first has
                    // nothing (and no later than the minimum rate allows);
                    // the timer is moved only when it would fire late, and
                    // checked against it when it fires early.
                    let mut due = None;
                    let now = greenrt::time::now();
                    let first_wait = match (started, handed.take()) {
                        (None, _) => now,
                        // The time since the handler was handed bytes was
                        // its own: the client's clock moves on by it.
                        (Some(s), Some(h)) => {
                            s.checked_add(now.saturating_duration_since(h)).unwrap_or(s)
                        }
                        (Some(s), None) => s,
                    };
                    started = Some(first_wait);
                    let received = conn.body_received();
                    let wake = loop {
                        let wake = {
                            let mut read = pin!(stream.read(rbuf.spare(READ_CHUNK)));
                            poll_fn(|cx| {
                                if let Poll::Ready(r) = read.as_mut().poll(cx) {
                                    return Poll::Ready(Wake::Read(r));
                                }
                                // The handler may answer without the rest.
                                if let Poll::Ready(r) = poll_guarded(fut.as_mut(), cx) {
                                    return Poll::Ready(Wake::Answer(r));
                                }
                                if due.is_none() {
                                    let now = greenrt::time::now();
                                    let d = body_wait_deadline(limits, now, first_wait, received);
                                    if timer.deadline() > d || timer.deadline() <= now {
                                        timer.as_mut().reset(d);
                                    }
                                    due = Some(d);
                                }
                                timer.as_mut().poll(cx).map(|()| Wake::Timer)
                            })
                            .await
                        };
                        if let (Wake::Timer, Some(d)) = (&wake, due) {
                            if greenrt::time::now() < d {
                                timer.as_mut().reset(d);
                                continue;
                            }
                        }
                        break wake;
                    };
                    match wake {
                        Wake::Read(Ok(0)) => conn.read_eof(),
                        Wake::Read(Ok(n)) => rbuf.filled(n),
                        Wake::Read(Err(e)) => return Err(e),
                        Wake::Answer(r) => return Ok((r, failed)),
                        Wake::Timer => {
                            let e = Error::timeout();
                            failed = Some(e);
                            feeder.finish(Err(e));
                            break;
                        }
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    feeder.finish(Err(e));
                    break;
                }
            }
        }
    }
}

/// Polls the handler's future in `answer` (a 500 if there is none), and
/// puts its answer in `out` when it is ready: written there from the
/// future's output, not passed back through the calls and the await.
fn poll_answer<F: Future<Output = Response>>(
    answer: Pin<&mut Option<F>>,
    cx: &mut Context<'_>,
    out: &mut Option<Response>,
) -> Poll<()> {
    let Some(fut) = answer.as_pin_mut() else {
        *out = Some(Response::error(StatusCode::INTERNAL_SERVER_ERROR));
        return Poll::Ready(());
    };
    let polled = guarded(|| match fut.poll(cx) {
        Poll::Ready(r) => {
            *out = Some(r);
            true
        }
        Poll::Pending => false,
    });
    match polled {
        Some(true) => Poll::Ready(()),
        Some(false) => Poll::Pending,
        None => {
            *out = Some(Response::error(StatusCode::INTERNAL_SERVER_ERROR));
            Poll::Ready(())
        }
    }
}

/// Writes all of `buf` and empties it (nothing to do when it is empty),
/// in pieces of at most `FLUSH_AT` bytes; when the socket cannot take a
/// piece at once, waits at most `limit` for it (no timer at all when it
/// can). The limit is on a client that stops taking bytes, not on the whole
/// of a large answer to a slow but steady one.
async fn flush(stream: &TcpStream, buf: &mut Vec<u8>, limit: Duration) -> io::Result<()> {
    for piece in buf.chunks(FLUSH_AT) {
        let mut write = pin!(stream.write_all(piece));
        if let Poll::Ready(r) = poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
            r?;
            continue;
        }
        match greenrt::timeout(limit, write).await {
            Ok(r) => r?,
            Err(_) => return Err(io::ErrorKind::TimedOut.into()),
        }
    }
    buf.clear();
    Ok(())
}

/// [`flush`] on the way to a body's end: a failure is [`Failed::Write`],
/// after `sent` body bytes went to the socket.
async fn flush_body(
    stream: &TcpStream,
    buf: &mut Vec<u8>,
    limit: Duration,
    sent: u64,
) -> Result<(), Failed> {
    flush(stream, buf, limit)
        .await
        .map_err(|_| Failed::Write(sent))
}

/// The latest a body first waited for at `started` may finish arriving,
/// `received` bytes into it: `header_read_timeout` plus one second per
/// `min_body_rate` bytes (`None` when the rate is not checked).
fn body_deadline(limits: &Limits, started: Instant, received: u64) -> Option<Instant> {
    let rate = limits.min_body_rate;
    if rate == 0 {
        return None;
    }
    // Below a second's worth of nanoseconds: `Duration::new` cannot carry.
    let nanos = u128::from(received % rate) * 1_000_000_000 / u128::from(rate);
    let earned = Duration::new(received / rate, nanos as u32);
    Some(after(after(started, limits.header_read_timeout), earned))
}

/// The deadline of a wait for body bytes that starts at `now`: the pause
/// allowed, and no later than [`body_deadline`] allows the whole.
fn body_wait_deadline(limits: &Limits, now: Instant, started: Instant, received: u64) -> Instant {
    let pause = after(now, limits.header_read_timeout);
    body_deadline(limits, started, received).map_or(pause, |total| pause.min(total))
}

/// `now + d`, or a time 30 years on when that is past what an `Instant`
/// holds (a timeout of `Duration::MAX` means "none").
fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(30 * 365 * 86_400)))
        .unwrap_or(now)
}

/// Sends the file region through `wbuf`, flushing as it fills; `progress`
/// holds the body bytes flushed so far.
async fn send_file(
    body: FileBody,
    wbuf: &mut Vec<u8>,
    stream: &TcpStream,
    limit: Duration,
    progress: &Cell<u64>,
) -> Result<u64, Failed> {
    let FileBody {
        mut file,
        offset,
        len,
    } = body;
    // Until the first flush, a failure of the file leaves its whole answer
    // in `wbuf`.
    let mut failed = Failed::Unsent;
    file.seek(SeekFrom::Start(offset)).map_err(|_| failed)?;
    let mut left = len;
    while left > 0 {
        let start = wbuf.len();
        let want = left.min(FLUSH_AT as u64) as usize;
        wbuf.resize(start + want, 0);
        let n = loop {
            match file.read(&mut wbuf[start..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r,
            }
        };
        let n = n.unwrap_or(0);
        wbuf.truncate(start + n);
        if n == 0 {
            // Unreadable, or shrunk: the promised length cannot be kept.
            return Err(failed);
        }
        left -= n as u64;
        if wbuf.len() >= FLUSH_AT {
            flush_body(stream, wbuf, limit, failed.sent()).await?;
            failed = Failed::Partial(len - left);
            progress.set(len - left);
        }
    }
    Ok(len)
}

/// A streamed body's sender yields to the hub's other tasks once every
/// this many chunks (as greenrt's budget of socket operations per poll
/// makes it after as many writes).
const CHUNKS_PER_TURN: u32 = 128;

/// Sends a stream's chunks through `wbuf` (chunked, raw until close, or
/// raw with a promised length), flushing whenever the stream has nothing
/// ready; `progress` holds the body bytes flushed so far.
async fn send_stream(
    mut body: StreamBody,
    framing: Framing,
    wbuf: &mut Vec<u8>,
    stream: &TcpStream,
    limit: Duration,
    progress: &Cell<u64>,
) -> Result<u64, Failed> {
    let mut sent = 0u64;
    let mut chunks = 0u32;
    // Until the first flush, a failure of the stream leaves its whole
    // answer in `wbuf`; then, body bytes out in flushes.
    let mut flushed = None;
    // A stream that failed (an error or a panic), or broke its promised
    // length: the response cannot be finished.
    let until_close = framing == Framing::UntilClose;
    let failed = |flushed: Option<u64>| match flushed {
        None => Failed::Unsent,
        Some(out) if until_close => Failed::Cut(out),
        Some(out) => Failed::Partial(out),
    };
    // Once part of it may be out, a body sent until close and cut short
    // (the stream failed, a write timed out, or a shutdown's drain ran out
    // and dropped this task) would look complete at an orderly close: the
    // connection is reset instead, so that no client takes it for a whole
    // body (a short chunked or counted body tells by itself).
    let mut cut = CutResets {
        stream,
        armed: false,
    };
    loop {
        let next = match poll_fn(|cx| Poll::Ready(body.poll_chunk(cx))).await {
            Poll::Ready(c) => c,
            // Every promised byte is out: the answer is whole, and a stream
            // not ready to end (a channel whose sender lives on) is not
            // waited for; one ready with more breaks its promise (below).
            Poll::Pending if matches!(framing, Framing::Length(n) if sent == n) => break,
            Poll::Pending => {
                if !wbuf.is_empty() {
                    cut.armed = until_close;
                    flush_body(stream, wbuf, limit, flushed.unwrap_or(0)).await?;
                    flushed = Some(sent);
                    progress.set(sent);
                }
                poll_fn(|cx| body.poll_chunk(cx)).await
            }
        };
        let Some(chunk) = next.map_err(|_| failed(flushed))? else {
            break;
        };
        // A write spends the task's budget of socket operations, but one
        // comes only every `FLUSH_AT` bytes (or never, for empty chunks):
        // a stream of small chunks always ready would keep the hub's
        // other connections waiting. It gives way now and then.
        chunks += 1;
        if chunks == CHUNKS_PER_TURN {
            chunks = 0;
            greenrt::yield_now().await;
        }
        if chunk.is_empty() {
            continue;
        }
        sent += chunk.len() as u64;
        match framing {
            Framing::Chunked => ChunkedEncoder::encode_chunk(&chunk, wbuf),
            Framing::Length(n) if sent > n => return Err(failed(flushed)),
            _ => wbuf.extend_from_slice(&chunk),
        }
        if wbuf.len() >= FLUSH_AT {
            cut.armed = until_close;
            flush_body(stream, wbuf, limit, flushed.unwrap_or(0)).await?;
            flushed = Some(sent);
            progress.set(sent);
        }
    }
    match framing {
        Framing::Chunked => ChunkedEncoder::finish(wbuf),
        Framing::Length(n) if sent != n => return Err(failed(flushed)),
        _ => {}
    }
    if until_close {
        // The rest goes out here, while a cut still resets: such a body
        // ends only with its connection.
        cut.armed = true;
        flush_body(stream, wbuf, limit, flushed.unwrap_or(0)).await?;
        progress.set(sent);
    }
    cut.armed = false;
    Ok(sent)
}

/// The error for a server thread that panicked, with the panic's message
/// (its payload dropped without a second panic: see `Panicked`).
fn thread_panicked(payload: Box<dyn std::any::Any + Send>) -> io::Error {
    let p = sync_prims::Panicked::from_payload(payload);
    io::Error::other(format!("the server thread panicked: {}", p.message()))
}

/// Resets its connection when dropped armed: see `send_stream`.
struct CutResets<'a> {
    stream: &'a TcpStream,
    armed: bool,
}

impl Drop for CutResets<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.stream.set_linger(Some(Duration::ZERO));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_thread_panic_is_told_with_its_message() {
        let p = std::thread::spawn(|| panic!("out of luck"))
            .join()
            .unwrap_err();
        let e = thread_panicked(p);
        assert_eq!(e.to_string(), "the server thread panicked: out of luck");
    }

    #[test]
    fn a_body_earns_a_second_per_min_body_rate_bytes() {
        let t0 = Instant::now();
        let limits = Limits {
            header_read_timeout: Duration::from_secs(10),
            min_body_rate: 500,
            ..Limits::default()
        };
        let at = |received| body_deadline(&limits, t0, received).map(|d| d - t0);
        assert_eq!(at(0), Some(Duration::from_secs(10)));
        assert_eq!(at(250), Some(Duration::from_millis(10_500)));
        assert_eq!(at(1_000_001), Some(Duration::new(2_010, 2_000_000)));
        let off = Limits {
            min_body_rate: 0,
            ..limits.clone()
        };
        assert_eq!(body_deadline(&off, t0, 1 << 40), None);
        // Extremes saturate instead of panicking.
        for rate in [1, 3, u64::MAX] {
            let huge = Limits {
                header_read_timeout: Duration::MAX,
                min_body_rate: rate,
                ..limits.clone()
            };
            assert!(body_deadline(&huge, t0, u64::MAX).is_some_and(|d| d > t0));
        }
    }
}
