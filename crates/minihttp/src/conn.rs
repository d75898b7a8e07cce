//! One connection's protocol state, without I/O: bytes in, requests out;
//! responses in, bytes out. The read side and the write side are separate
//! states, and whether the connection persists is decided from the pair.

use std::collections::VecDeque;

use crate::body::{BodyKind, Decoder};
use crate::date::{DATE_LINE_LEN, ok_head};
use crate::error::{Error, Kind};
use crate::head::{Parsed, leading_empty_lines, parse_head};
use crate::limits::Limits;
use crate::method::{Version, eq_lower};
use crate::request::Request;
use crate::response::Response;
use crate::status::StatusCode;

/// The value of the `Server` header the server adds when a response has none.
pub const SERVER_NAME: &str = concat!("minihttp/", env!("CARGO_PKG_VERSION"));

/// The `Server` field line the server adds when a response has none.
const SERVER_LINE: &[u8] =
    concat!("server: minihttp/", env!("CARGO_PKG_VERSION"), "\r\n").as_bytes();

/// The interim response sent when a client waits on `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A reusable read buffer: bytes received but not yet consumed.
///
/// Read from the socket into [`spare`](ReadBuf::spare), record the count
/// with [`filled`](ReadBuf::filled), let [`Conn::poll_request`] consume.
/// The storage is allocated and zeroed once, reused across requests, and
/// compacted only when the free tail runs short.
#[derive(Clone, Debug, Default)]
pub struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    /// The least a [`ReadBuf`] allocates at its first [`spare`](ReadBuf::spare).
    pub const DEFAULT_CAPACITY: usize = 4 * 1024;

    /// An empty buffer; the first [`spare`](ReadBuf::spare) allocates.
    pub const fn new() -> ReadBuf {
        ReadBuf {
            buf: Vec::new(),
            start: 0,
            end: 0,
        }
    }

    /// The bytes not yet consumed.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Number of bytes not yet consumed.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether every received byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Drops `n` bytes from the front (at most [`len`](ReadBuf::len)).
    pub fn consume(&mut self, n: usize) {
        self.start += n.min(self.len());
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Free space after the data to read into, at least `min` bytes
    /// (moving the data to the front or growing the storage as needed).
    pub fn spare(&mut self, min: usize) -> &mut [u8] {
        let min = min.max(1);
        if self.buf.len() - self.end < min {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < min {
                let want = (self.end + min)
                    .max(ReadBuf::DEFAULT_CAPACITY)
                    .max(self.buf.len() * 2);
                self.buf.resize(want, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were written at the start of the last
    /// [`spare`](ReadBuf::spare) slice.
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Gives the storage away when every byte in it was consumed (for a
    /// caller that keeps spare storage between connections), leaving the
    /// buffer without any.
    pub(crate) fn take_storage(&mut self) -> Option<Vec<u8>> {
        if !self.is_empty() || self.buf.is_empty() {
            return None;
        }
        self.start = 0;
        self.end = 0;
        Some(std::mem::take(&mut self.buf))
    }

    /// Whether the buffer has storage (without, the next read allocates
    /// some, unless [`give_storage`](ReadBuf::give_storage) gives it some).
    pub(crate) fn has_storage(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Uses `storage` (from [`take_storage`](ReadBuf::take_storage)) if
    /// the buffer has none.
    pub(crate) fn give_storage(&mut self, storage: Vec<u8>) {
        if self.buf.is_empty() {
            self.buf = storage;
        }
    }

    /// Appends bytes (tests, or data that arrived by other means).
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.spare(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.filled(bytes.len());
    }
}

/// What [`Conn::poll_request`] found.
#[derive(Debug)]
pub enum Next {
    /// A request: complete, body included, or, when the connection
    /// [streams bodies](Conn::set_stream_bodies), its head, with the body
    /// to read through [`Conn::poll_body`]. Answer it with
    /// [`Conn::encode_response`] (responses go out in request order).
    Request(Request),
    /// Write [`CONTINUE`] (the client waits on `Expect: 100-continue`), then
    /// read more and poll again.
    Continue,
    /// Read more bytes into the buffer and poll again.
    NeedMore,
    /// No more requests will be read on this connection: answer the ones
    /// handed out, then close.
    Close,
}

/// What [`Conn::poll_body`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyRead {
    /// Body bytes were appended; more follow.
    Data,
    /// The body is complete (its last bytes, if any, were appended).
    Done,
    /// Write [`CONTINUE`] (the client waits on `Expect: 100-continue`), then
    /// read more and poll again.
    Continue,
    /// Read more bytes into the buffer and poll again.
    NeedMore,
}

/// How a response body follows its head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body bytes at all (HEAD, 1xx, 204, 304).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked ([`ChunkedEncoder`](crate::ChunkedEncoder)), for a body of
    /// unknown length to an HTTP/1.1 client.
    Chunked,
    /// Raw bytes until the connection closes, for a body of unknown length
    /// to an HTTP/1.0 client.
    UntilClose,
}

/// The read side.
#[derive(Debug)]
enum ReadState {
    /// Waiting for (the rest of) a request head.
    Head,
    /// Reading the body of `request`.
    Body(Box<PendingBody>),
    /// The request was handed out after its head; its body is read with
    /// `poll_body`.
    Stream(Box<Streaming>),
    /// The request was answered before its streamed body was read to the
    /// end: the rest is discarded before the next head.
    Drain(Box<Streaming>),
    /// No more requests: one asked to close, the peer closed, or an error.
    Closed,
}

#[derive(Debug)]
struct PendingBody {
    request: Request,
    decoder: Decoder,
    keep_alive: bool,
    expect_continue: bool,
}

#[derive(Debug)]
struct Streaming {
    decoder: Decoder,
    keep_alive: bool,
    /// `100 Continue` is owed and not yet sent.
    expect_continue: bool,
    /// The body bytes decoded when the discarding began (in `Drain`).
    drain_from: u64,
}

impl Streaming {
    /// The state that discards the rest of this body, counted from here.
    fn drained(mut self: Box<Self>) -> ReadState {
        self.drain_from = self.decoder.decoded();
        ReadState::Drain(self)
    }
}

/// The most body bytes (decoded: chunk framing aside) discarded after an
/// early answer before the connection closes instead; also the most a
/// lingering close drops. A client that sends a large body nobody reads
/// costs little, whatever `max_body` allows a handler that does read.
pub(crate) const DRAIN_MAX: u64 = 256 * 1024;

/// What answering one handed-out request needs to know.
#[derive(Clone, Copy, Debug)]
struct Owed {
    version: Version,
    head: bool,
    keep_alive: bool,
}

/// The write side.
#[derive(Debug)]
enum WriteState {
    /// Responses can be written; `owed` lists the requests handed out and
    /// not yet answered, oldest first.
    Open,
    /// A response ended the connection; nothing more may be written.
    Closed,
}

/// The protocol state of one connection, without I/O.
///
/// The server loop reads bytes into a [`ReadBuf`], calls
/// [`poll_request`](Conn::poll_request) until it says [`Next::NeedMore`],
/// runs the handler for each [`Next::Request`], encodes each response with
/// [`encode_response`](Conn::encode_response) into one reused write buffer
/// (so pipelined responses go out in one write), and closes when
/// [`is_done`](Conn::is_done) says so.
///
/// ```
/// use minihttp::{Conn, Limits, Next, ReadBuf, Response};
/// let mut conn = Conn::new(Limits::default());
/// let mut buf = ReadBuf::new();
/// buf.extend_from_slice(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
/// let mut out = Vec::new();
/// while let Next::Request(req) = conn.poll_request(&mut buf).unwrap() {
///     conn.encode_response(&Response::text(req.path().into_owned()), &mut out);
/// }
/// assert!(conn.is_done());
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
/// assert!(text.ends_with("\r\n\r\n/b") && text.contains("connection: close\r\n"));
/// ```
#[derive(Debug)]
pub struct Conn {
    limits: Limits,
    read: ReadState,
    write: WriteState,
    owed: VecDeque<Owed>,
    /// The request the last response answered, if that response was
    /// written (not after a close): see [`Conn::replace_with_error`].
    last: Option<Owed>,
    eof: bool,
    /// A request error is waiting for [`Conn::encode_error`].
    failed: bool,
    /// The request that failed (its head, which starts as a `HEAD` request's
    /// does, or the body of a `HEAD` request) gets an answer without
    /// content.
    failed_head: bool,
    /// The method, target and version of the request that failed, where
    /// they were known (for the access log: see
    /// [`Conn::failed_request_line`]).
    failed_line: Option<Box<[String; 3]>>,
    /// A response closed the connection where its client had asked for
    /// none: see [`Conn::closed_early`].
    closed_early: bool,
    /// Requests with a body are handed out after their heads.
    stream_bodies: bool,
    /// After a partial head: how many bytes of it are known not to end it.
    scanned: usize,
    /// Bytes of empty lines dropped before the request being waited for.
    empty_lines: usize,
    /// After a partial head: whether its request line is complete.
    line_done: bool,
    /// The server's, at a shutdown: how many more requests, sent before
    /// this connection saw it, are still to be answered (counted then).
    pub(crate) sent_before_shutdown: Option<u32>,
    /// Calls of `parse_head`, for tests of the re-parse policy.
    #[cfg(test)]
    parses: usize,
}

impl Conn {
    /// A fresh connection with these limits.
    pub fn new(limits: Limits) -> Conn {
        Conn {
            limits,
            read: ReadState::Head,
            write: WriteState::Open,
            owed: VecDeque::new(),
            last: None,
            eof: false,
            failed: false,
            failed_head: false,
            failed_line: None,
            closed_early: false,
            stream_bodies: false,
            scanned: 0,
            empty_lines: 0,
            line_done: false,
            sent_before_shutdown: None,
            #[cfg(test)]
            parses: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Streams request bodies (off by default): a request with a body is
    /// handed out as soon as its head is read, and its body is read with
    /// [`poll_body`](Conn::poll_body), `100 Continue` included. Answering
    /// the request before its body was read to the end discards the rest
    /// before the next request, up to 256 KiB of body (counted once
    /// decoded); a rest declared longer, or a client that still waits for
    /// `100 Continue`, closes the connection instead, and so does a rest
    /// that goes past it ([`closed_early`](Conn::closed_early) then says to
    /// close lingering).
    ///
    /// ```
    /// use minihttp::{BodyRead, Conn, Limits, Next, ReadBuf, Response};
    /// let mut conn = Conn::new(Limits::default());
    /// conn.set_stream_bodies(true);
    /// let mut buf = ReadBuf::new();
    /// buf.extend_from_slice(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc");
    /// let Ok(Next::Request(req)) = conn.poll_request(&mut buf) else { panic!() };
    /// assert!(req.body().is_empty() && conn.is_reading_body());
    /// let mut body = Vec::new();
    /// assert_eq!(conn.poll_body(&mut buf, &mut body), Ok(BodyRead::Data));
    /// assert_eq!(conn.poll_body(&mut buf, &mut body), Ok(BodyRead::NeedMore));
    /// buf.extend_from_slice(b"def");
    /// assert_eq!(conn.poll_body(&mut buf, &mut body), Ok(BodyRead::Done));
    /// assert_eq!(body, b"abcdef");
    /// conn.encode_response(&Response::text("6"), &mut Vec::new());
    /// ```
    pub fn set_stream_bodies(&mut self, on: bool) {
        self.stream_bodies = on;
    }

    /// Whether request bodies are streamed ([`set_stream_bodies`](Conn::set_stream_bodies)).
    pub fn streams_bodies(&self) -> bool {
        self.stream_bodies
    }

    /// Records that the peer closed its sending side: no more bytes will
    /// arrive, so a partial request becomes an error instead of `NeedMore`.
    pub fn read_eof(&mut self) {
        self.eof = true;
    }

    /// Whether a request head is partly received or a body is being read
    /// (the header-read timeout applies); false while idle between requests.
    pub fn is_mid_request(&self, buf: &ReadBuf) -> bool {
        match self.read {
            ReadState::Head => leading_empty_lines(buf.data()) < buf.len(),
            ReadState::Body(_) | ReadState::Stream(_) | ReadState::Drain(_) => true,
            ReadState::Closed => false,
        }
    }

    /// The error to answer a request that stopped arriving with (its head
    /// or its body not received in time), for
    /// [`encode_error`](Conn::encode_error), which is to come next (this
    /// notes whether the request is a `HEAD`, whose answer has no
    /// content): [`Error::timeout`] (408),
    /// unless the part of a head received already breaks a rule. That
    /// rule's error is the answer then, the one the bytes get when they
    /// arrive at once: a head is parsed again only once it may be complete
    /// (or over a limit), so a malformed byte in a later piece of a head
    /// that never ends is seen only here.
    ///
    /// ```
    /// use minihttp::{Conn, Limits, Next, ReadBuf};
    ///
    /// let mut conn = Conn::new(Limits::default());
    /// let mut buf = ReadBuf::new();
    /// buf.extend_from_slice(b"GET / HTTP/1.1\r\nHo");
    /// assert!(matches!(conn.poll_request(&mut buf), Ok(Next::NeedMore)));
    /// buf.extend_from_slice(b"st : a");
    /// assert!(matches!(conn.poll_request(&mut buf), Ok(Next::NeedMore)));
    /// // No more bytes come: a space before the colon is malformed.
    /// assert_eq!(conn.timeout_error(&buf).status().as_u16(), 400);
    ///
    /// let mut conn = Conn::new(Limits::default());
    /// let mut buf = ReadBuf::new();
    /// buf.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a");
    /// assert!(matches!(conn.poll_request(&mut buf), Ok(Next::NeedMore)));
    /// assert_eq!(conn.timeout_error(&buf).status().as_u16(), 408);
    /// ```
    pub fn timeout_error(&mut self, buf: &ReadBuf) -> Error {
        // Whether the request is a `HEAD`, whose error answer has no
        // content.
        self.note_failed_head(buf);
        if matches!(self.read, ReadState::Head) {
            if let Err(e) = parse_head(buf.data(), &self.limits) {
                return e;
            }
        }
        Error::timeout()
    }

    /// Whether a request head has been read and its body is being read
    /// (buffered, streamed, or discarded after an early answer).
    pub fn is_reading_body(&self) -> bool {
        matches!(
            self.read,
            ReadState::Body(_) | ReadState::Stream(_) | ReadState::Drain(_)
        )
    }

    /// Bytes of the body being read (buffered, streamed or discarded)
    /// received so far, after chunked decoding; 0 when none is read.
    pub fn body_received(&self) -> u64 {
        match &self.read {
            ReadState::Body(pending) => pending.decoder.decoded(),
            ReadState::Stream(s) | ReadState::Drain(s) => s.decoder.decoded(),
            ReadState::Head | ReadState::Closed => 0,
        }
    }

    /// Whether the rest of a body is being read and discarded, after its
    /// request was answered without reading it all.
    pub fn is_discarding_body(&self) -> bool {
        matches!(self.read, ReadState::Drain(_))
    }

    /// Whether a streamed body is being read: a request was handed out
    /// after its head and [`poll_body`](Conn::poll_body) has not said
    /// [`Done`](BodyRead::Done) yet.
    pub fn is_streaming_body(&self) -> bool {
        matches!(self.read, ReadState::Stream(_))
    }

    /// The `Content-Length` still to come of the body being streamed
    /// (`None` for a chunked body or when none is streamed).
    pub fn body_remaining(&self) -> Option<u64> {
        match &self.read {
            ReadState::Stream(s) => s.decoder.remaining_hint(),
            _ => None,
        }
    }

    /// Decodes body bytes of the streamed request from `buf` into `out`,
    /// consuming them. With an unread body and an `Expect: 100-continue`
    /// request, the first call that finds no bytes says
    /// [`Continue`](BodyRead::Continue) (unless earlier requests are still
    /// unanswered, as for buffered bodies). Without a streamed body, says
    /// [`Done`](BodyRead::Done).
    ///
    /// An error (413 over [`Limits::max_body`], 400 bad chunk framing or
    /// end of input) closes the read side like a
    /// [`poll_request`](Conn::poll_request) error: answer it with
    /// [`encode_error`](Conn::encode_error) in place of the request's
    /// response.
    pub fn poll_body(&mut self, buf: &mut ReadBuf, out: &mut Vec<u8>) -> Result<BodyRead, Error> {
        let ReadState::Stream(s) = &mut self.read else {
            return Ok(BodyRead::Done);
        };
        let before = out.len();
        // The error answer of a `HEAD` request (the last one handed out)
        // has no content.
        let head = self.owed.back().is_some_and(|o| o.head);
        let (used, done) = match s.decoder.decode_into(buf.data(), out) {
            Ok(r) => r,
            Err(e) => {
                self.read = ReadState::Closed;
                self.failed = true;
                self.failed_head = head;
                return Err(e);
            }
        };
        buf.consume(used);
        if used > 0 {
            // The client sends the body without waiting: no interim answer.
            s.expect_continue = false;
        }
        if done {
            // The answer is still owed: it closes if the request said so.
            self.read = if s.keep_alive {
                ReadState::Head
            } else {
                ReadState::Closed
            };
            return Ok(BodyRead::Done);
        }
        if out.len() > before {
            return Ok(BodyRead::Data);
        }
        if self.eof {
            self.read = ReadState::Closed;
            self.failed = true;
            self.failed_head = head;
            return Err(Error::new(Kind::Incomplete));
        }
        // This request's own answer is the only one owed: the interim
        // answer goes out in order.
        // Once: cleared when it goes out. While answers are owed before
        // it, the client still waits (an early answer then closes).
        let send_continue = s.expect_continue && self.owed.len() <= 1;
        if send_continue {
            s.expect_continue = false;
        }
        Ok(if send_continue {
            BodyRead::Continue
        } else {
            BodyRead::NeedMore
        })
    }

    /// Parses the next request out of `buf`, consuming its bytes.
    ///
    /// While a streamed body (see [`set_stream_bodies`](Conn::set_stream_bodies))
    /// is read and its request not answered, the next request waits: this
    /// says [`Next::NeedMore`], and the body is read with
    /// [`poll_body`](Conn::poll_body).
    ///
    /// An error means the request cannot be answered normally: the read side
    /// is closed; answer the requests already handed out, then the error
    /// with [`encode_error`](Conn::encode_error), then close.
    pub fn poll_request(&mut self, buf: &mut ReadBuf) -> Result<Next, Error> {
        let result = self.poll_inner(buf);
        if result.is_err() {
            self.read = ReadState::Closed;
            self.failed = true;
        }
        result
    }

    fn poll_inner(&mut self, buf: &mut ReadBuf) -> Result<Next, Error> {
        loop {
            // Take the state out; every path below puts one back.
            match std::mem::replace(&mut self.read, ReadState::Closed) {
                ReadState::Closed => return Ok(Next::Close),
                ReadState::Head => {
                    // Empty lines between requests are allowed and dropped
                    // (RFC 9112 section 2.2).
                    let skip = leading_empty_lines(buf.data());
                    if skip > 0 {
                        buf.consume(skip);
                        self.scanned = 0;
                        // A few are allowed; a stream of them is no
                        // request, and would cost a parse per read for as
                        // long as the idle time lasts.
                        self.empty_lines += skip;
                        if self.empty_lines > self.limits.max_request_line {
                            return Err(Error::new(Kind::Malformed));
                        }
                    }
                    if buf.is_empty() {
                        if self.eof {
                            return Ok(Next::Close);
                        }
                        self.read = ReadState::Head;
                        return Ok(Next::NeedMore);
                    }
                    if self.scanned > 0 && !self.eof && !self.worth_parsing(buf.data()) {
                        self.read = ReadState::Head;
                        return Ok(Next::NeedMore);
                    }
                    #[cfg(test)]
                    {
                        self.parses += 1;
                    }
                    let parsed = parse_head(buf.data(), &self.limits);
                    if parsed.is_err() {
                        self.failed_head = starts_as_head(buf);
                        self.failed_line =
                            request_line(buf, self.limits.max_request_line).map(Box::new);
                    }
                    let head = match parsed? {
                        Parsed::Partial if self.eof => {
                            self.failed_head = starts_as_head(buf);
                            self.failed_line =
                                request_line(buf, self.limits.max_request_line).map(Box::new);
                            return Err(Error::new(Kind::Incomplete));
                        }
                        Parsed::Partial => {
                            self.scanned = buf.len();
                            self.line_done = buf.data().contains(&b'\n');
                            self.read = ReadState::Head;
                            return Ok(Next::NeedMore);
                        }
                        Parsed::Complete(head) => head,
                    };
                    self.scanned = 0;
                    self.empty_lines = 0;
                    buf.consume(head.len());
                    let (kind, keep_alive, expect_continue) =
                        (head.body(), head.keep_alive(), head.expect_continue());
                    let mut request = head.into_request();
                    if kind == BodyKind::Empty {
                        self.hand_out(&request, keep_alive);
                        return Ok(Next::Request(request));
                    }
                    if self.stream_bodies {
                        self.hand_out(&request, keep_alive);
                        self.read = ReadState::Stream(Box::new(Streaming {
                            decoder: Decoder::new(kind, self.limits.max_body, self.limits.max_head),
                            keep_alive,
                            // Body bytes came with the head: the client did
                            // not wait for `100 Continue`, and an answer
                            // given without reading them need not close.
                            expect_continue: expect_continue && buf.is_empty(),
                            drain_from: 0,
                        }));
                        return Ok(Next::Request(request));
                    }
                    if let BodyKind::Length(n) = kind {
                        // Reserve what is declared, up to a bound: a declared
                        // length costs nothing until its bytes arrive.
                        request.extra_mut().body.reserve(n.min(64 * 1024) as usize);
                    }
                    self.read = ReadState::Body(Box::new(PendingBody {
                        request,
                        decoder: Decoder::new(kind, self.limits.max_body, self.limits.max_head),
                        keep_alive,
                        expect_continue,
                    }));
                }
                ReadState::Body(mut pending) => {
                    let p = &mut *pending;
                    let decoded = p
                        .decoder
                        .decode_into(buf.data(), &mut p.request.extra_mut().body);
                    let (used, done) = match decoded {
                        Ok(r) => r,
                        Err(e) => {
                            // The error answer of a `HEAD` request has no
                            // content.
                            self.failed_head = p.request.method().is_head();
                            self.failed_line = Some(Box::new(line_of(&p.request)));
                            return Err(e);
                        }
                    };
                    buf.consume(used);
                    if used > 0 {
                        // The client sends the body without waiting: no
                        // interim answer (as for a streamed body).
                        p.expect_continue = false;
                    }
                    if done {
                        let PendingBody {
                            request,
                            keep_alive,
                            ..
                        } = *pending;
                        self.hand_out(&request, keep_alive);
                        return Ok(Next::Request(request));
                    }
                    if self.eof {
                        self.failed_head = p.request.method().is_head();
                        self.failed_line = Some(Box::new(line_of(&p.request)));
                        return Err(Error::new(Kind::Incomplete));
                    }
                    // Ask for the body once, when it is needed and not there;
                    // with responses still owed, those come first (asked at
                    // a poll after them, or the client sends the body
                    // anyway after its timeout).
                    let send_continue = p.expect_continue && self.owed.is_empty();
                    if send_continue {
                        p.expect_continue = false;
                    }
                    self.read = ReadState::Body(pending);
                    return Ok(if send_continue {
                        Next::Continue
                    } else {
                        Next::NeedMore
                    });
                }
                // A streamed body whose request is not answered yet (the
                // answer makes it `Drain`): it is read with `poll_body`,
                // and no request comes before its end.
                ReadState::Stream(s) => {
                    self.read = ReadState::Stream(s);
                    return Ok(Next::NeedMore);
                }
                ReadState::Drain(mut s) => {
                    let mut used = 0;
                    let done = loop {
                        match s.decoder.decode(&buf.data()[used..]) {
                            Ok(step) => {
                                used += step.consumed;
                                if step.done || step.consumed == 0 {
                                    break step.done;
                                }
                            }
                            Err(_) => {
                                buf.consume(used);
                                return Ok(Next::Close);
                            }
                        }
                    };
                    buf.consume(used);
                    if done {
                        if !s.keep_alive {
                            return Ok(Next::Close);
                        }
                        self.read = ReadState::Head;
                        continue;
                    }
                    if self.eof {
                        return Ok(Next::Close);
                    }
                    if s.decoder.decoded() - s.drain_from > DRAIN_MAX {
                        // More than is worth discarding: close, lingering
                        // (the client is still sending).
                        self.closed_early = true;
                        return Ok(Next::Close);
                    }
                    self.read = ReadState::Drain(s);
                    return Ok(Next::NeedMore);
                }
            }
        }
    }

    /// After a `Partial`, whether the bytes that arrived since can change
    /// the answer: they end the head (an empty line), hold a CR that no LF
    /// follows (an error wherever it is), or the data is now over a limit.
    /// Re-parsing only then keeps a client that sends its head a byte at a
    /// time from costing quadratic time.
    fn worth_parsing(&mut self, data: &[u8]) -> bool {
        // Resume a few bytes back: the terminator may straddle the boundary.
        let from = self.scanned.saturating_sub(3).min(data.len());
        for (i, &b) in data[from..].iter().enumerate() {
            let at = from + i;
            match b {
                b'\n' => {
                    self.line_done = true;
                    match (data.get(at + 1), data.get(at + 2)) {
                        (Some(b'\n'), _) | (Some(b'\r'), Some(b'\n')) => return true,
                        _ => {}
                    }
                }
                b'\r' if data.get(at + 1).is_some_and(|&n| n != b'\n') => return true,
                _ => {}
            }
        }
        self.scanned = data.len();
        // A line of the limit's length may still end with the CR of its
        // CRLF; one byte more, or any byte but a CR, is over it.
        let line_limit = self
            .limits
            .max_request_line
            .saturating_add(usize::from(data.last() == Some(&b'\r')));
        data.len() > self.limits.max_head || (!self.line_done && data.len() > line_limit)
    }

    /// Records that `request` is handed out (it is then owed an answer).
    /// By reference: the request itself is moved once, to the caller.
    ///
    /// Called with the state taken out (`Closed`, which owns nothing): the
    /// new one is written over it without a call to drop it.
    fn hand_out(&mut self, request: &Request, keep_alive: bool) {
        debug_assert!(matches!(self.read, ReadState::Closed));
        let next = if keep_alive {
            ReadState::Head
        } else {
            ReadState::Closed
        };
        std::mem::forget(std::mem::replace(&mut self.read, next));
        self.owed.push_back(Owed {
            version: request.version(),
            head: request.method().is_head(),
            keep_alive,
        });
    }

    /// Writes the interim `100 Continue` into `out`.
    pub fn encode_continue(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(CONTINUE);
    }

    /// Appends `response` to `out` as the answer to the oldest request not
    /// yet answered: status line, `Date`, `Server`, framing and
    /// `Connection` fields, the response's fields, and, for an in-memory
    /// body, the body itself (never for HEAD, 1xx, 204 or 304).
    ///
    /// Framing fields set by the handler are not copied: `Content-Length`
    /// is kept only on a 304, or an answer to HEAD other than 1xx, 204
    /// and 205, with an empty body (where it describes the
    /// representation), `Transfer-Encoding` never, and a
    /// `Connection` field is only read for `close`; nor is a `Date` field
    /// (the server writes its own). A final answer must not be 1xx, and a
    /// 205 must have an empty body: the server answers 500 for the one and
    /// empties the other before calling this. Returns how the body is
    /// framed, which tells the server how to send a body that is not in
    /// memory. After a response that closes, nothing more is written and
    /// [`is_done`](Conn::is_done) is true; nor is anything written (and
    /// [`Framing::None`] returned) when no request is owed an answer.
    pub fn encode_response(&mut self, response: &Response, out: &mut Vec<u8>) -> Framing {
        let owed = match self.owed.pop_front() {
            Some(owed) if !matches!(self.write, WriteState::Closed) => owed,
            // Closed, or no request to answer.
            _ => {
                self.last = None;
                return Framing::None;
            }
        };
        self.last = Some(owed);
        // The answer to a request whose streamed body was not read to the
        // end: the rest is discarded before the next request, unless the
        // client still waits for `100 Continue` (it may never send the
        // body; RFC 9110 section 10.1.1) or declared more of it than is
        // worth discarding (`DRAIN_MAX`): then the connection closes.
        let mut unread_close = false;
        if self.owed.is_empty() {
            if let ReadState::Stream(s) = &self.read {
                if s.expect_continue || s.decoder.remaining_hint().is_some_and(|r| r > DRAIN_MAX) {
                    unread_close = true;
                    self.read = ReadState::Closed;
                } else if let ReadState::Stream(s) =
                    std::mem::replace(&mut self.read, ReadState::Closed)
                {
                    self.read = s.drained();
                }
            }
        }
        let status = response.status();
        let body_len = response.body().len();
        let framing = framing_for(owed, status, body_len);
        // A handler's own Content-Length survives only where it describes
        // the representation without framing a body: HEAD, 304.
        // Never on a 1xx or 204 (RFC 9110 section 8.6), nor on a 205,
        // which has no representation: its answer to GET says
        // `Content-Length: 0`, and so must its answer to HEAD.
        let may_keep_length = body_len == Some(0)
            && (status == StatusCode::NOT_MODIFIED
                || (owed.head && !status.forbids_body() && status != StatusCode::RESET_CONTENT));

        // The status line and `Date` (fixed-size lines from the per-thread
        // cache; for 200, one piece).
        let head = ok_head();
        if status == StatusCode::OK {
            out.extend_from_slice(&head);
        } else {
            out.extend_from_slice(b"HTTP/1.1 ");
            out.extend_from_slice(&status.digits());
            out.push(b' ');
            out.extend_from_slice(status.reason().as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&head[head.len() - DATE_LINE_LEN..]);
        }
        // The handler's fields but the framing ones, in one pass that also
        // notes a `Server` field, a kept `Content-Length` and a
        // `Connection: close`.
        let (mut has_server, mut kept_length, mut wants_close) = (false, false, false);
        response.headers().for_each(|name, value| {
            let field = name.as_bytes();
            match name.len() {
                // The server's own `Date` line is already written: one only.
                4 if eq_lower(field, b"date") => return,
                17 if eq_lower(field, b"transfer-encoding") => return,
                10 if eq_lower(field, b"connection") => {
                    wants_close |= value
                        .split(',')
                        .any(|t| eq_lower(t.trim().as_bytes(), b"close"));
                    return;
                }
                14 if eq_lower(field, b"content-length") => {
                    // Kept once, and only as a length: a second field or
                    // one that is not a number would make the message
                    // ambiguous.
                    let number = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
                    if !may_keep_length || kept_length || !number {
                        return;
                    }
                    kept_length = true;
                }
                6 if eq_lower(field, b"server") => has_server = true,
                _ => {}
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        });
        if !has_server {
            out.extend_from_slice(SERVER_LINE);
        }
        match framing {
            Framing::Length(n) => push_length_line(n, out),
            Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
            Framing::None if owed.head && !status.forbids_body() && !kept_length => {
                // HEAD: the length a GET would have.
                if let Some(n) = body_len {
                    push_length_line(n, out);
                }
            }
            Framing::None | Framing::UntilClose => {}
        }
        let close = !owed.keep_alive
            || unread_close
            || wants_close
            || framing == Framing::UntilClose
            || (matches!(self.read, ReadState::Closed) && self.owed.is_empty() && !self.failed);
        if close {
            out.extend_from_slice(b"connection: close\r\n");
        } else if owed.version == Version::Http10 {
            out.extend_from_slice(b"connection: keep-alive\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if let (Framing::Length(_), Some(bytes)) = (framing, response.body().as_bytes()) {
            out.extend_from_slice(bytes);
        }
        if close {
            // A client that asked for no close may have sent more requests
            // behind this one.
            self.closed_early |= owed.keep_alive && !self.eof;
            self.write = WriteState::Closed;
            self.read = ReadState::Closed;
            self.owed.clear();
        }
        framing
    }

    /// Before [`Conn::encode_error`] for a request that failed (its head
    /// did not parse, or it or its body did not arrive in time): notes
    /// whether it is a `HEAD` request (for a head, whether its bytes so far
    /// start as one's), whose error answer then has no content (RFC 9110,
    /// section 9.3.2). Once the read side is closed, what the error that
    /// closed it noted stands.
    pub(crate) fn note_failed_head(&mut self, buf: &ReadBuf) {
        self.failed_head = match &self.read {
            ReadState::Head => starts_as_head(buf),
            ReadState::Body(p) => p.request.method().is_head(),
            ReadState::Stream(_) | ReadState::Drain(_) => self.owed.back().is_some_and(|o| o.head),
            ReadState::Closed => self.failed_head,
        };
    }

    /// For the access log of a request that failed (before
    /// [`Conn::encode_error`]): its method, target and version, where they
    /// are known: from the request whose body failed or timed out, or from
    /// a request line that arrived whole (a head refused for a field, a
    /// body too large, a head that timed out after its first line), as
    /// sent. `None` for a head whose request line is itself bad or
    /// incomplete.
    pub(crate) fn failed_request_line(&self, buf: &ReadBuf) -> Option<[String; 3]> {
        if let Some(line) = &self.failed_line {
            return Some((**line).clone());
        }
        match &self.read {
            ReadState::Body(p) => Some(line_of(&p.request)),
            ReadState::Head => request_line(buf, self.limits.max_request_line),
            _ => None,
        }
    }

    /// Appends the response to a request error (status from
    /// [`Error::status`], a short text body, `Connection: close` when the
    /// error [closes the connection](Error::closes_connection)). Returns
    /// how its body is framed, as [`encode_response`](Conn::encode_response)
    /// does: [`Framing::None`] for the answer to a `HEAD` request, which
    /// has no content.
    pub fn encode_error(&mut self, error: &Error, out: &mut Vec<u8>) -> Framing {
        let mut response = Response::error(error.status());
        if error.closes_connection() {
            // A constant, valid field: cannot fail.
            let _ = response.headers_mut().insert("connection", "close");
            self.read = ReadState::Closed;
            self.failed = false;
            // The failed request was never handed out: answer it now.
            self.owed.push_front(Owed {
                version: Version::Http11,
                head: std::mem::take(&mut self.failed_head),
                keep_alive: false,
            });
        }
        self.encode_response(&response, out)
    }

    /// Replaces the response last encoded, which starts at `out[start..]`
    /// and of which nothing has been sent, with a `500 Internal Server
    /// Error` that closes the connection: its body could not be produced
    /// (a file that could not be read, a stream that failed first).
    ///
    /// The answers encoded before it, in `out[..start]`, are kept, so that
    /// nothing already answered is lost. Does nothing if that response
    /// wrote nothing (the connection was closed before it). Returns how
    /// the 500's body is framed, as
    /// [`encode_response`](Conn::encode_response) does
    /// ([`Framing::None`] when nothing was replaced).
    ///
    /// ```
    /// use minihttp::{Conn, Limits, Next, ReadBuf, Response};
    /// let mut conn = Conn::new(Limits::default());
    /// let mut buf = ReadBuf::new();
    /// buf.extend_from_slice(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    /// let mut out = Vec::new();
    /// let Next::Request(_) = conn.poll_request(&mut buf).unwrap() else { panic!() };
    /// conn.encode_response(&Response::text("a"), &mut out);
    /// let Next::Request(_) = conn.poll_request(&mut buf).unwrap() else { panic!() };
    /// // The body of /b turns out to be unreadable, before anything is sent.
    /// let start = out.len();
    /// conn.encode_response(&Response::text("b"), &mut out);
    /// conn.replace_with_error(start, &mut out);
    /// let text = String::from_utf8(out).unwrap();
    /// assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
    /// assert!(text[start..].starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
    /// assert!(text[start..].contains("connection: close\r\n"));
    /// assert!(conn.is_done());
    /// ```
    pub fn replace_with_error(&mut self, start: usize, out: &mut Vec<u8>) -> Framing {
        // Nothing to replace if the last response wrote nothing (the write
        // side was closed already).
        let Some(last) = self.last else {
            return Framing::None;
        };
        out.truncate(start);
        self.owed.push_front(last);
        // The replaced response may be the one that closed the write side.
        self.write = WriteState::Open;
        let mut response = Response::error(StatusCode::INTERNAL_SERVER_ERROR);
        // A constant, valid field: cannot fail.
        let _ = response.headers_mut().insert("connection", "close");
        self.encode_response(&response, out)
    }

    /// Whether the connection should be closed once the write buffer is
    /// flushed: a response closed it, or the read side is finished and every
    /// request handed out has been answered.
    pub fn is_done(&self) -> bool {
        matches!(self.write, WriteState::Closed)
            || (matches!(self.read, ReadState::Closed) && self.owed.is_empty())
    }

    /// Whether a response closed the connection although its client had
    /// not asked for a close (a handler's `Connection: close`, a shutdown)
    /// nor ended its side: the client may have sent more requests
    /// meanwhile, and closing with them unread makes the system reset the
    /// connection, which can destroy the end of the answer. Such a
    /// connection is best closed lingering: end the sending side, then read
    /// and drop what comes, for a while (RFC 9112, section 9.6).
    pub fn closed_early(&self) -> bool {
        self.closed_early
    }

    /// Whether the connection may carry another request after the responses
    /// owed so far: the read side expects one and no response closed it.
    pub fn keep_alive(&self) -> bool {
        !matches!(self.read, ReadState::Closed) && matches!(self.write, WriteState::Open)
    }

    /// Requests handed out and not yet answered.
    pub fn pending_responses(&self) -> usize {
        self.owed.len()
    }
}

/// A request's method, target and version, for the access log.
fn line_of(request: &Request) -> [String; 3] {
    [
        request.method().as_str().to_string(),
        request.target().to_string(),
        request.version().to_string(),
    ]
}

/// The method, target and version of the request line at the start of
/// `buf` (after empty lines), if one arrived whole, within `limit` bytes,
/// and as the parser reads one: a method of token characters, a target of
/// visible characters, and `HTTP/1.0` or `HTTP/1.1` (a later `HTTP/1.x`
/// read as `HTTP/1.1`). Nothing else of what a client sent is logged.
fn request_line(buf: &ReadBuf, limit: usize) -> Option<[String; 3]> {
    let data = buf.data();
    let data = &data[leading_empty_lines(data)..];
    let end = data
        .iter()
        .take(limit.saturating_add(1))
        .position(|&b| b == b'\n')?;
    let line = &data[..end];
    let line = std::str::from_utf8(line.strip_suffix(b"\r").unwrap_or(line)).ok()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let version = match version.as_bytes() {
        b"HTTP/1.0" => "HTTP/1.0",
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'1'..=b'9'] => "HTTP/1.1",
        _ => return None,
    };
    let well_formed = parts.next().is_none()
        && !method.is_empty()
        && method.bytes().all(crate::method::is_tchar)
        && !target.is_empty()
        && target.bytes().all(|b| b.is_ascii_graphic());
    well_formed.then(|| [method, target, version].map(str::to_string))
}

/// Whether the bytes of a request head start as a `HEAD` request's.
fn starts_as_head(buf: &ReadBuf) -> bool {
    let data = buf.data();
    data[leading_empty_lines(data)..].starts_with(b"HEAD ")
}

/// How a response body is sent: none for HEAD / 1xx / 204 / 304, its
/// length when known, else chunked (HTTP/1.1) or until close (HTTP/1.0).
fn framing_for(owed: Owed, status: StatusCode, body_len: Option<u64>) -> Framing {
    match body_len {
        _ if owed.head || status.forbids_body() => Framing::None,
        Some(n) => Framing::Length(n),
        None if owed.version == Version::Http11 => Framing::Chunked,
        None => Framing::UntilClose,
    }
}

/// Writes the `Content-Length` field line for `n`: for a body under
/// 1000 bytes, as one fixed-size piece (copied without a call).
#[inline(always)]
fn push_length_line(n: u64, out: &mut Vec<u8>) {
    let digit = |d: u64| b'0' + (d % 10) as u8;
    if n < 10 {
        let mut line = *b"content-length: 0\r\n";
        line[16] = digit(n);
        out.extend_from_slice(&line);
    } else if n < 100 {
        let mut line = *b"content-length: 00\r\n";
        line[16..18].copy_from_slice(&[digit(n / 10), digit(n)]);
        out.extend_from_slice(&line);
    } else if n < 1000 {
        let mut line = *b"content-length: 000\r\n";
        line[16..19].copy_from_slice(&[digit(n / 100), digit(n / 10), digit(n)]);
        out.extend_from_slice(&line);
    } else {
        push_long_length_line(n, out);
    }
}

/// [`push_length_line`] for 1000 bytes and more: out of line, so that the
/// short case stays small.
#[cold]
fn push_long_length_line(n: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"content-length: ");
    push_decimal(n, out);
    out.extend_from_slice(b"\r\n");
}

/// `n` in decimal (short lengths have [`push_length_line`]'s fixed-size
/// pieces instead).
fn push_decimal(mut n: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_head_request_that_fails_to_parse_is_answered_without_a_body() {
        // No `Host`: 400 either way, with its text only for the `GET`.
        // A head cut short by the client's end: 400 too.
        for (raw, head, eof) in [
            (&b"HEAD / HTTP/1.1\r\n\r\n"[..], true, false),
            (&b"GET / HTTP/1.1\r\n\r\n"[..], false, false),
            (&b"HEAD / HTTP/1.1\r\nHost: a\r\n"[..], true, true),
            (&b"GET / HTTP/1.1\r\nHost: a\r\n"[..], false, true),
        ] {
            let mut conn = Conn::new(Limits::default());
            let mut buf = ReadBuf::new();
            buf.extend_from_slice(raw);
            if eof {
                conn.read_eof();
            }
            let e = conn.poll_request(&mut buf).unwrap_err();
            let mut out = Vec::new();
            conn.encode_error(&e, &mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
            let (fields, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(
                fields.contains("content-length: ") || fields.contains("Content-Length: "),
                "{text}"
            );
            assert_eq!(body.is_empty(), head, "{text}");
        }
    }

    #[test]
    fn a_head_request_whose_body_fails_is_answered_without_a_body() {
        // A bad chunk, and a body cut short: 400 either way, buffered or
        // streamed, with its text only for the `POST`.
        let answer = |method: &str, rest: &[u8], eof: bool, stream: bool| {
            let mut conn = Conn::new(Limits::default());
            conn.set_stream_bodies(stream);
            let mut buf = ReadBuf::new();
            let head =
                format!("{method} / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
            buf.extend_from_slice(head.as_bytes());
            buf.extend_from_slice(rest);
            if eof {
                conn.read_eof();
            }
            let e = if stream {
                assert!(matches!(conn.poll_request(&mut buf), Ok(Next::Request(_))));
                // The bytes there first, then the error.
                (0..3)
                    .find_map(|_| conn.poll_body(&mut buf, &mut Vec::new()).err())
                    .expect("an error")
            } else {
                conn.poll_request(&mut buf).unwrap_err()
            };
            let mut out = Vec::new();
            conn.encode_error(&e, &mut out);
            String::from_utf8(out).unwrap()
        };
        for stream in [false, true] {
            for (rest, eof) in [(&b"zz\r\n"[..], false), (&b"5\r\nab"[..], true)] {
                for (method, empty) in [("HEAD", true), ("POST", false)] {
                    let text = answer(method, rest, eof, stream);
                    let case = format!("{method} stream={stream} eof={eof}: {text}");
                    assert!(text.starts_with("HTTP/1.1 400 "), "{case}");
                    let (_, body) = text.split_once("\r\n\r\n").unwrap();
                    assert_eq!(body.is_empty(), empty, "{case}");
                }
            }
        }
        // A `HEAD` request with a good body leaves no mark on the error
        // answer of a later request.
        let mut conn = Conn::new(Limits::default());
        let mut buf = ReadBuf::new();
        buf.extend_from_slice(b"HEAD / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nokGET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab");
        conn.read_eof();
        assert!(matches!(conn.poll_request(&mut buf), Ok(Next::Request(_))));
        let mut out = Vec::new();
        conn.encode_response(&Response::text(""), &mut out);
        let e = conn.poll_request(&mut buf).unwrap_err();
        let start = out.len();
        conn.encode_error(&e, &mut out);
        let text = String::from_utf8(out[start..].to_vec()).unwrap();
        assert!(!text.split_once("\r\n\r\n").unwrap().1.is_empty(), "{text}");
    }

    #[test]
    fn host_values_are_checked_for_their_shape() {
        let limits = Limits::default();
        let status = |host: &str| {
            let raw = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
            match parse_head(raw.as_bytes(), &limits) {
                Ok(Parsed::Complete(_)) => 200,
                Ok(Parsed::Partial) => 0,
                Err(e) => e.status().as_u16(),
            }
        };
        for ok in [
            "x",
            "example.com",
            "example.com:8080",
            "x:",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8080",
            "[::ffff:1.2.3.4]",
            "[v1.fe]",
            "[vA.x:y!]:80",
            "[1:2:3:4:5:6:7:8]",
            "",
            "a_b~c%41",
        ] {
            assert_eq!(status(ok), 200, "{ok}");
        }
        for bad in [
            "x:abc",
            "::1",
            "a:1:2",
            "[::1",
            "[::1]x",
            "[::g]",
            "a]b",
            "[a]b]",
            "x y",
            // Not an IP literal (RFC 3986, section 3.2.2), nor an escape.
            "[]",
            "[:]",
            "[1]",
            "[1.2.3.4]",
            "[::1%25eth0]",
            "[v]",
            "[v1]",
            "[v1.]",
            "[v.x]",
            "[vq.x]",
            "%",
            "a%4",
            "a%zz",
        ] {
            assert_eq!(status(bad), 400, "{bad}");
        }
    }

    #[test]
    fn a_version_is_judged_once_its_line_is_complete() {
        let limits = Limits::default();
        let status = |raw: &[u8]| parse_head(raw, &limits).err().map(|e| e.status().as_u16());
        // `HTTP/2` may yet be `HTTP/2.0` (505) or end there (400).
        assert!(matches!(
            parse_head(b"GET / HTTP/2", &limits),
            Ok(Parsed::Partial)
        ));
        assert!(matches!(
            parse_head(b"GET / HTTP/2.0", &limits),
            Ok(Parsed::Partial)
        ));
        assert_eq!(status(b"GET / HTTP/2\r\n\r\n"), Some(400));
        assert_eq!(status(b"GET / HTTP/2.0\r\n\r\n"), Some(505));
        assert_eq!(status(b"GET / HTTP/2.01"), Some(400));
        assert_eq!(status(b"GET /a b HTTP/2"), Some(400));
        assert_eq!(status(b"GET / HTTX/1.1"), Some(400));
    }

    #[test]
    fn a_limit_of_fields_past_any_head_allocates_only_what_the_head_can_fill() {
        for max_headers in [usize::MAX, 1 << 40] {
            let limits = Limits {
                max_headers,
                ..Limits::default()
            };
            let raw = b"GET / HTTP/1.1\r\nHost: a\r\nb:\r\nc:\r\n\r\n";
            let Ok(Parsed::Complete(head)) = parse_head(raw, &limits) else {
                panic!("not parsed")
            };
            assert_eq!(head.request().headers().count(), 3);
        }
        // The limit still counts the fields, at any length of head.
        let three = Limits {
            max_headers: 3,
            ..Limits::default()
        };
        let four = b"GET / HTTP/1.1\r\nHost: a\r\nb:\r\nc:\r\nd:\r\n\r\n";
        let got = parse_head(four, &three)
            .map(|_| ())
            .map_err(|e| e.status().as_u16());
        assert_eq!(got, Err(431));
        let three_fields = b"GET / HTTP/1.1\r\nHost: a\r\nb:\r\nc:\r\n\r\n";
        assert!(matches!(
            parse_head(three_fields, &three),
            Ok(Parsed::Complete(_))
        ));
    }

    #[test]
    fn a_later_minor_version_is_read_as_http_1_1() {
        let limits = Limits::default();
        let raw = b"\r\nGET /a?b HTTP/1.7\r\nHost: h\r\nX: y\r\n\r\nGET /next";
        let Ok(Parsed::Complete(head)) = parse_head(raw, &limits) else {
            panic!("not parsed")
        };
        assert_eq!(head.len(), raw.len() - b"GET /next".len());
        assert!(head.keep_alive());
        let req = head.request();
        assert_eq!(req.version(), Version::Http11);
        assert_eq!((req.path_raw(), req.query_raw()), ("/a", Some("b")));
        assert_eq!(req.header("x"), Some("y"));
        // Kept as received, without the leading empty line.
        assert_eq!(req.head(), &raw[2..raw.len() - b"GET /next".len()]);
        // Every prefix waits for more, as for HTTP/1.1.
        for end in 1..raw.len() - b"GET /next".len() {
            assert!(
                matches!(parse_head(&raw[..end], &limits), Ok(Parsed::Partial)),
                "{end}"
            );
        }
        // Still held to the head's size limit, however the bytes arrived.
        let small = Limits {
            max_head: 30,
            ..Limits::default()
        };
        let long = b"GET / HTTP/1.2\r\nHost: h\r\nX-Long: 0123456789\r\n\r\n";
        for end in [14, 16, 31, long.len()] {
            let got = parse_head(&long[..end], &small)
                .map(|p| matches!(p, Parsed::Partial))
                .map_err(|e| e.status().as_u16());
            assert_eq!(got, if end > 30 { Err(431) } else { Ok(true) }, "{end}");
        }
        let tiny = Limits {
            max_head: 10,
            ..Limits::default()
        };
        let got = parse_head(b"GET / HTTP/1.2\r\n\r\n", &tiny).map_err(|e| e.status().as_u16());
        assert_eq!(got.map(|_| ()), Err(431));
    }

    /// The error of `raw` parsed whole, and the first error of its
    /// prefixes parsed one byte longer each time (as a client sending a
    /// byte at a time is answered).
    fn whole_and_dripped(raw: &[u8], limits: &Limits) -> (Option<Error>, Option<Error>) {
        let whole = parse_head(raw, limits).err();
        let dripped = (1..=raw.len()).find_map(|end| parse_head(&raw[..end], limits).err());
        (whole, dripped)
    }

    /// A method longer than any this server implements is 501 once its
    /// bytes say so, whatever follows (under the default limits, where the
    /// request line's is far longer), whole or byte by byte.
    #[test]
    fn a_method_longer_than_any_is_501_however_it_ends() {
        let limits = Limits::default();
        let method = [b'A'; crate::method::MAX_METHOD_LEN + 1];
        for tail in [
            &b" / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"",
            b"\x01",
            b"\r\n\r\n",
        ] {
            let raw = [&method[..], tail].concat();
            let (whole, dripped) = whole_and_dripped(&raw, &limits);
            let (whole, dripped) = (
                whole.map(|e| e.status().as_u16()),
                dripped.map(|e| e.status().as_u16()),
            );
            assert_eq!(
                (whole, dripped),
                (Some(501), Some(501)),
                "{}",
                raw.escape_ascii()
            );
        }
        // One byte shorter is a method this server may simply not know.
        let raw = [&method[1..], b" / HTTP/1.1\r\nHost: a\r\n\r\n"].concat();
        assert!(matches!(parse_head(&raw, &limits), Ok(Parsed::Complete(_))));
    }

    /// A head that breaks two rules is answered for the one its bytes
    /// break first, whole or byte by byte: a limit passed after a
    /// malformed byte does not hide it, nor one passed before hide behind
    /// a malformed byte after it.
    #[test]
    fn the_first_rule_a_head_breaks_is_its_answer_however_it_arrives() {
        let limits = Limits {
            max_request_line: 16,
            max_head: 40,
            max_headers: 1,
            ..Limits::default()
        };
        // Each with the predicate of the rule it breaks first (two of
        // them answer 431: the predicate tells them apart).
        type Broke = fn(&Error) -> bool;
        let cases: [(&[u8], Broke); 5] = [
            // Not a version, within the line's limit; the line is too
            // long only after it.
            (b"GET /G GGGGGGGGGGGGGGGG", Error::is_malformed),
            // Too long first; a control byte after the limit.
            (
                b"GET /aaaaaaaaaaaaaa\x01 HTTP/1.1\r\n\r\n",
                Error::is_request_line_too_long,
            ),
            // A bad header byte before the head is too large.
            (
                b"GET / HTTP/1.1\r\nA\x01: b\r\nxxxxxxxxxxxxxxxxxxxxxxxxx",
                Error::is_malformed,
            ),
            // Too many headers before the head is too large.
            (
                b"GET / HTTP/1.1\r\nA: b\r\nC: d\r\nxxxxxxxxxxxxxxxxxxxxxx",
                Error::is_too_many_headers,
            ),
            // Too large before a bad header byte.
            (
                b"GET / HTTP/1.1\r\nA: bbbbbbbbbbbbbbbbbbbbbbbbbbb\x01\r\n\r\n",
                Error::is_head_too_large,
            ),
        ];
        for (raw, broke) in cases {
            let (whole, dripped) = whole_and_dripped(raw, &limits);
            assert!(
                whole.as_ref().is_some_and(broke) && dripped.as_ref().is_some_and(broke),
                "{}: {whole:?}, {dripped:?}",
                raw.escape_ascii()
            );
        }
    }

    #[test]
    fn a_read_buffer_gives_its_storage_away_only_when_drained() {
        let mut buf = ReadBuf::new();
        assert_eq!(buf.take_storage(), None, "no storage yet");
        buf.extend_from_slice(b"GET / HT");
        assert_eq!(buf.take_storage(), None, "bytes wait in it");
        buf.consume(8);
        let storage = buf.take_storage().unwrap();
        assert!(!buf.has_storage() && buf.is_empty());
        let at = storage.as_ptr();
        buf.give_storage(storage);
        assert!(buf.has_storage());
        assert_eq!(buf.spare(1).as_ptr(), at, "reads go into it");
        buf.extend_from_slice(b"TP/1.1");
        assert_eq!(buf.data(), b"TP/1.1");
        // A buffer that has storage keeps its own.
        buf.give_storage(vec![0; 8]);
        assert_eq!(buf.data(), b"TP/1.1");
    }

    /// How a connection fed some bytes ended.
    #[derive(Debug, PartialEq, Eq)]
    enum End {
        /// This many requests, then `NeedMore` (the connection stays open).
        Open(usize),
        /// This many requests, then the read side closed cleanly.
        Closed(usize),
        /// This many requests, then `Continue`.
        Continue(usize),
        /// This many requests, then an error answered with this status and
        /// `Connection: close`.
        Failed(usize, u16),
    }
    use End::*;

    fn small() -> Limits {
        Limits {
            max_request_line: 40,
            max_head: 200,
            max_headers: 4,
            max_body: 16,
            ..Limits::default()
        }
    }

    #[test]
    fn whitespace_after_a_chunk_size_is_bounded() {
        let mut raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1".to_vec();
        raw.extend(std::iter::repeat_n(b' ', 5000));
        let (end, _, _) = run_with(&raw, Limits::default());
        assert_eq!(end, End::Failed(0, 400));
    }

    fn run_with(raw: &[u8], limits: Limits) -> (End, Vec<Request>, Vec<u8>) {
        let mut conn = Conn::new(limits);
        let mut buf = ReadBuf::new();
        buf.extend_from_slice(raw);
        let mut reqs = Vec::new();
        let mut out = Vec::new();
        let end = loop {
            match conn.poll_request(&mut buf) {
                Ok(Next::Request(r)) => {
                    conn.encode_response(&Response::text("ok"), &mut out);
                    reqs.push(r);
                }
                Ok(Next::NeedMore) => break Open(reqs.len()),
                Ok(Next::Close) => break Closed(reqs.len()),
                Ok(Next::Continue) => break Continue(reqs.len()),
                Err(e) => {
                    conn.encode_error(&e, &mut out);
                    assert!(conn.is_done(), "{e:?} must close");
                    assert!(find(&out, b"connection: close\r\n"), "{e:?} must say close");
                    break Failed(reqs.len(), e.status().as_u16());
                }
            }
        };
        (end, reqs, out)
    }

    fn find(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    /// One line per raw-bytes case: what the connection does with it under
    /// the `small()` limits (request line 40, head 200, 4 headers, body 16).
    #[test]
    fn hardening_table() {
        let table: &[(&[u8], End)] = &[
            // Well-formed.
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Open(1)),
            (b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", Open(1)),
            (b"GET / HTTP/1.0\r\n\r\n", Closed(1)),
            (b"GET / HTTP/1.1\r\nHost: a\r\n", Open(0)),
            (b"GET / HTTP/1.1\nHost: a\n\n", Open(1)),
            // 414: request line too long, complete or not.
            (b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n", Failed(0, 414)),
            (b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Failed(0, 414)),
            (b"GET /aaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n", Open(0)),
            // 431: header section too large, too many fields.
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", Failed(0, 431)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Failed(0, 431)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", Failed(0, 431)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", Open(1)),
            // 501: a method this server does not implement: CONNECT,
            // whatever its target, or one longer than any registered
            // (see `a_method_longer_than_any_is_501_however_it_ends`). Here
            // the request line's limit is lower, and such a line passes it
            // first: 414.
            (b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA / HTTP/1.1\r\nHost: a\r\n\r\n", Failed(0, 414)),
            (b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", Failed(0, 414)),
            (b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\x01", Failed(0, 414)),
            (b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA / HTTP/1.1\r\n", Failed(0, 414)),
            (b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", Open(0)),
            (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", Failed(0, 501)),
            (b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", Failed(0, 501)),
            // 400: malformed request line.
            (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", Failed(0, 400)),
            (b"GET /\r\nHost: a\r\n\r\n", Failed(0, 400)),
            (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", Failed(0, 400)),
            (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", Failed(0, 400)),
            (b"GET / HTTP/1.1\rHost: a\r\n\r\n", Failed(0, 400)),
            (b"GET foo HTTP/1.1\r\nHost: a\r\n\r\n", Failed(0, 400)),
            (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", Failed(0, 400)),
            (b"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", Failed(0, 400)),
            (b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", Failed(0, 400)),
            (b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", Failed(0, 400)),
            (b"GET http://u@a/x HTTP/1.1\r\nHost: a\r\n\r\n", Failed(0, 400)),
            (b"GET https://u:p@a HTTP/1.1\r\nHost: a\r\n\r\n", Failed(0, 400)),
            (b"GET http://[::1/x HTTP/1.1\r\nHost: a\r\n\r\n", Failed(0, 400)),
            (b"GET http://:80/x HTTP/1.1\r\nHost: a\r\n\r\n", Failed(0, 400)),
            (b"GET http://a:b:c/x HTTP/1.1\r\nHost: a\r\n\r\n", Failed(0, 400)),
            (b"GET http://b/ HTTP/1.1\r\nHost: a b\r\n\r\n", Failed(0, 400)),
            // 400: malformed header fields.
            (b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", Failed(0, 400)),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", Failed(0, 400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n folded\r\n\r\n", Failed(0, 400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", Failed(0, 400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", Failed(0, 400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX\x7f: a\r\n\r\n", Failed(0, 400)),
            // 505 for well-formed other versions, 400 for garbage there.
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", Failed(0, 505)),
            (b"GET / HTTP/0.9\r\n\r\n", Failed(0, 505)),
            (b"GET / HTTP/3.1\r\nHost: a\r\n\r\n", Failed(0, 505)),
            // A later minor version of 1 is read as HTTP/1.1 (RFC 9110,
            // section 6.2), with its rules (`Host` required, keep-alive).
            (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", Open(1)),
            (b"\r\nGET / HTTP/1.9\r\nHost: a\r\n\r\n", Open(1)),
            (b"GET / HTTP/1.2\r\n\r\n", Failed(0, 400)),
            (b"GET / HTTP/1.2\r\nHost: a\r\nConnection: close\r\n\r\n", Closed(1)),
            (b"GET / HTTP/1.2", Open(0)),
            (b"GET / HTTP/1.23\r\n\r\n", Failed(0, 400)),
            // A version not yet complete is judged when its line is.
            (b"GET / HTTP/3", Open(0)),
            (b"GET / HTTP/3\r\n\r\n", Failed(0, 400)),
            (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", Failed(0, 400)),
            (b"GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", Failed(0, 400)),
            (b"GET / HTTPS/1.1\r\nHost: a\r\n\r\n", Failed(0, 400)),
            (b"GET / HTTP/1.1x\r\nHost: a\r\n\r\n", Failed(0, 400)),
            (b"GET / http/1.1\r\nHost: a\r\n\r\n", Failed(0, 400)),
            // 400: Host missing, repeated or invalid in HTTP/1.1.
            (b"GET / HTTP/1.1\r\n\r\n", Failed(0, 400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Failed(0, 400)),
            (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", Failed(0, 400)),
            (b"GET / HTTP/1.1\r\nHost: \r\n\r\n", Open(1)),
            (b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", Open(1)),
            // Smuggling: both framings, repeated or malformed lengths.
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\nabc", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", Open(1)),
            // Any number of digits (RFC 9110, section 8.6): leading zeros
            // are no part of the length, and one past 64 bits is over any
            // limit.
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0003\r\n\r\nabc", Open(1)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 000000000000000000000000003\r\n\r\nabc", Open(1)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n", Failed(0, 413)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", Failed(0, 413)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", Failed(0, 413)),
            // Faulty framing comes first, whatever the length.
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\nTransfer-Encoding: chunked\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\nContent-Length: 1\r\n\r\n", Failed(0, 400)),
            // Transfer-Encoding other than one final chunked.
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: (chunked), chunked\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Failed(0, 501)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", Failed(0, 501)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  Chunked \r\n\r\n0\r\n\r\n", Open(1)),
            // 413: body over the limit, declared or chunked.
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 17\r\n\r\n", Failed(0, 413)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n", Failed(0, 413)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n9\r\n", Failed(0, 413)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n", Open(1)),
            // 400: bad chunk framing.
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x1\r\n", Failed(0, 400)),
            // Up to 32 hex digits, leading zeros included; a size past
            // 64 bits is over any limit.
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000000000000000000001\r\na\r\n0\r\n\r\n", Open(1)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n000000000000000000000000000000001\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", Failed(0, 413)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\na\r\n0\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\n0\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;a\x00\r\na\r\n0\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n folded\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1 ;ext=\"v\"\r\na\r\n0\r\nT: 1\r\n\r\n", Open(1)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0000\r\n\r\n", Open(1)),
            // Strict chunk lines (RFC 9112 7.1.1): whitespace only before `;` or
            // around `=`, extension names and values tokens or quoted strings.
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\na\r\n0\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;\r\na\r\n0\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;@@@\r\na\r\n0\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;a=\r\na\r\n0\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;a=b c\r\na\r\n0\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;a=\"v\r\na\r\n0\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;a \r\na\r\n0\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;a=\"x\\\"y\" ; b ; c = d\r\na\r\n0\r\n\r\n", Open(1)),
            // Trailer lines: a name, a colon (no space before it), a value.
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nfoo\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX : 1\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n: 1\r\n\r\n", Failed(0, 400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX:\r\nY: 2 \r\n\r\n", Open(1)),
            // Keep-alive: HTTP/1.1 persists unless close; HTTP/1.0 closes unless keep-alive.
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", Open(2)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", Closed(1)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", Closed(1)),
            (b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n", Closed(1)),
            (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET / HTTP/1.0\r\n\r\n", Closed(2)),
            // Expect: 100-continue asks for the body only when it is missing.
            (b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n", Continue(0)),
            (b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nab", Open(1)),
            // Part of it came: the client did not wait, and needs no `100`.
            (b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\na", Open(0)),
            (b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n", Open(0)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", Open(1)),
            // A valid request answered before the garbage after it.
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGARBAGE\r\n\r\n", Failed(1, 400)),
        ];
        for (raw, expected) in table {
            let (end, _, _) = run_with(raw, small());
            assert_eq!(
                &end,
                expected,
                "{}",
                String::from_utf8_lossy(raw).escape_debug()
            );
        }
    }

    #[test]
    fn bodies_and_responses() {
        let (end, reqs, out) = run_with(
            b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer-A: 1\r\nTrailer-B: 2\r\n\r\nPOST /v HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nfg",
            Limits::default(),
        );
        assert_eq!(end, Open(2));
        assert_eq!(reqs[0].body(), b"abcde");
        assert!(
            reqs[0].header("trailer-a").is_none(),
            "trailers are discarded"
        );
        assert_eq!(reqs[1].body(), b"fg");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 2);
        assert!(!text.contains("connection:"));
    }

    fn encode(req: &[u8], response: &Response) -> (String, Framing, bool) {
        let mut conn = Conn::new(Limits::default());
        let mut buf = ReadBuf::new();
        buf.extend_from_slice(req);
        let Ok(Next::Request(_)) = conn.poll_request(&mut buf) else {
            panic!("request expected")
        };
        let mut out = Vec::new();
        let framing = conn.encode_response(response, &mut out);
        (String::from_utf8(out).unwrap(), framing, conn.is_done())
    }

    #[test]
    fn decimals() {
        for n in [0, 7, 9, 10, 42, 99, 100, 999, 1000, 65_536, u64::MAX] {
            let mut out = b"x".to_vec();
            push_decimal(n, &mut out);
            assert_eq!(out, format!("x{n}").as_bytes());
            let mut line = b"x".to_vec();
            push_length_line(n, &mut line);
            assert_eq!(line, format!("xcontent-length: {n}\r\n").as_bytes());
        }
    }

    #[test]
    fn the_server_line_names_the_server() {
        assert_eq!(SERVER_LINE, format!("server: {SERVER_NAME}\r\n").as_bytes());
    }

    #[test]
    fn response_encoding() {
        const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        const HEAD: &[u8] = b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n";
        let (text, framing, done) = encode(GET, &Response::text("hello"));
        assert_eq!(framing, Framing::Length(5));
        assert!(!done);
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, "hello");
        let lines: Vec<_> = head.split("\r\n").collect();
        assert_eq!(lines[0], "HTTP/1.1 200 OK");
        assert!(
            lines[1].starts_with("date: ")
                && lines[1].ends_with(" GMT")
                && lines[1].len() == 6 + 29
        );
        assert!(lines.contains(&format!("server: {SERVER_NAME}").as_str()));
        assert!(lines.contains(&"content-length: 5"));
        assert!(lines.contains(&"content-type: text/plain; charset=utf-8"));

        // HEAD: the GET length, no body bytes.
        let (text, framing, _) = encode(HEAD, &Response::text("hello"));
        assert_eq!(framing, Framing::None);
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, "", "no body bytes for HEAD");
        let lines: Vec<_> = head.split("\r\n").collect();
        assert!(lines.contains(&"content-length: 5"));
        assert!(lines.contains(&"content-type: text/plain; charset=utf-8"));

        // HEAD with an explicit representation length and an empty body.
        let r = Response::builder()
            .header("Content-Length", "1234")
            .build()
            .unwrap();
        let (text, _, _) = encode(HEAD, &r);
        assert_eq!(text.matches("ontent-").count(), 1);
        assert!(text.contains("Content-Length: 1234\r\n"));
        // Kept once and only as a number: a second one, or one that is not
        // a length, would make the answer ambiguous.
        let r = Response::builder()
            .header("Content-Length", "1234")
            .header("Content-Length", "99")
            .build()
            .unwrap();
        let (text, _, _) = encode(HEAD, &r);
        assert_eq!(text.matches("ontent-").count(), 1, "{text}");
        assert!(text.contains("Content-Length: 1234\r\n"));
        let r = Response::builder()
            .header("Content-Length", "lots")
            .build()
            .unwrap();
        let (text, _, _) = encode(HEAD, &r);
        assert_eq!(text.matches("ontent-").count(), 1, "{text}");
        assert!(text.contains("content-length: 0\r\n"), "{text}");
        // Never on a 204, HEAD or not (RFC 9110 section 8.6).
        let r = Response::builder()
            .status(StatusCode::NO_CONTENT)
            .header("Content-Length", "0")
            .build()
            .unwrap();
        for method in [HEAD, GET] {
            let (text, _, _) = encode(method, &r);
            assert!(
                !text.to_ascii_lowercase().contains("content-length"),
                "{text}"
            );
        }

        // A handler's framing fields are not sent; its close is honoured.
        let r = Response::builder()
            .header("Content-Length", "99")
            .header("Transfer-Encoding", "chunked")
            .header("Connection", "close")
            .header("Server", "custom")
            .body("abc")
            .unwrap();
        let (text, framing, done) = encode(GET, &r);
        assert_eq!(framing, Framing::Length(3));
        assert!(done);
        assert!(!text.contains("99") && !text.contains("chunked") && !text.contains("minihttp"));
        assert!(text.contains("connection: close\r\n") && text.contains("Server: custom\r\n"));
        // A close among other tokens counts too; other tokens do not.
        let r = Response::builder()
            .header("Connection", "Keep-Alive, Close")
            .build()
            .unwrap();
        assert!(encode(GET, &r).2);
        let r = Response::builder()
            .header("Connection", "keep-alive")
            .build()
            .unwrap();
        assert!(!encode(GET, &r).2);

        // 204 and 304 carry no body and no length.
        let mut r = Response::text("ignored");
        r.set_status(StatusCode::NO_CONTENT);
        let (text, framing, _) = encode(GET, &r);
        assert_eq!(framing, Framing::None);
        assert!(text.starts_with("HTTP/1.1 204 No Content\r\n") && text.ends_with("\r\n\r\n"));
        assert!(!text.contains("content-length"));

        // HTTP/1.0 keep-alive is confirmed.
        let (text, _, done) = encode(
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            &Response::text("x"),
        );
        assert!(text.contains("connection: keep-alive\r\n") && !done);
        let (text, _, done) = encode(b"GET / HTTP/1.0\r\n\r\n", &Response::text("x"));
        assert!(text.contains("connection: close\r\n") && done);
    }

    #[test]
    fn framing_table() {
        let owed = |version, head| Owed {
            version,
            head,
            keep_alive: true,
        };
        let (v10, v11, ok) = (Version::Http10, Version::Http11, StatusCode::OK);
        let table = [
            (owed(v11, false), ok, Some(5), Framing::Length(5)),
            (owed(v11, false), ok, Some(0), Framing::Length(0)),
            (owed(v11, false), ok, None, Framing::Chunked),
            (owed(v10, false), ok, None, Framing::UntilClose),
            (owed(v10, false), ok, Some(5), Framing::Length(5)),
            (owed(v11, true), ok, Some(5), Framing::None),
            (owed(v11, true), ok, None, Framing::None),
            (
                owed(v11, false),
                StatusCode::NO_CONTENT,
                Some(5),
                Framing::None,
            ),
            (
                owed(v11, false),
                StatusCode::NOT_MODIFIED,
                None,
                Framing::None,
            ),
            (
                owed(v11, false),
                StatusCode::CONTINUE,
                Some(1),
                Framing::None,
            ),
        ];
        for (o, status, len, expected) in table {
            assert_eq!(
                framing_for(o, status, len),
                expected,
                "{o:?} {status} {len:?}"
            );
        }
        let mut n = Vec::new();
        push_decimal(0, &mut n);
        push_decimal(u64::MAX, &mut n);
        assert_eq!(n, b"018446744073709551615");
    }

    #[test]
    fn pipelined_error_after_answers() {
        // Two valid requests and a bad one: both answers, then the error, then close.
        let (end, reqs, out) = run_with(
            b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/9.9\r\n\r\n",
            Limits::default(),
        );
        assert_eq!((end, reqs.len()), (Failed(2, 505), 2));
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2);
        assert!(text.contains("HTTP/1.1 505 HTTP Version Not Supported\r\n"));
        assert_eq!(text.matches("connection: close").count(), 1);
    }

    #[test]
    fn reading_body_state() {
        let mut conn = Conn::new(Limits::default());
        let mut buf = ReadBuf::new();
        buf.extend_from_slice(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\na");
        assert!(matches!(conn.poll_request(&mut buf), Ok(Next::NeedMore)));
        assert!(conn.is_reading_body() && conn.is_mid_request(&buf));
        buf.extend_from_slice(b"bc");
        assert!(matches!(conn.poll_request(&mut buf), Ok(Next::Request(_))));
        assert!(!conn.is_reading_body() && !conn.is_mid_request(&buf));
    }

    #[test]
    fn eof_handling() {
        let mut conn = Conn::new(Limits::default());
        let mut buf = ReadBuf::new();
        buf.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\r\n");
        assert!(matches!(conn.poll_request(&mut buf), Ok(Next::Request(_))));
        assert!(!conn.is_mid_request(&buf));
        conn.read_eof();
        assert!(matches!(conn.poll_request(&mut buf), Ok(Next::Close)));
        assert!(!conn.is_done(), "a response is still owed");
        conn.encode_response(&Response::text("x"), &mut Vec::new());
        assert!(conn.is_done());

        let mut conn = Conn::new(Limits::default());
        let mut buf = ReadBuf::new();
        buf.extend_from_slice(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab");
        assert!(matches!(conn.poll_request(&mut buf), Ok(Next::NeedMore)));
        assert!(conn.is_mid_request(&buf));
        conn.read_eof();
        assert!(conn.poll_request(&mut buf).unwrap_err().is_incomplete());
    }

    /// Feeds `raw` one byte at a time; the outcome and the parse count.
    fn drip(raw: &[u8], limits: Limits) -> (Result<usize, u16>, usize) {
        let mut conn = Conn::new(limits);
        let mut buf = ReadBuf::new();
        let mut n = 0;
        for &b in raw {
            buf.extend_from_slice(&[b]);
            loop {
                match conn.poll_request(&mut buf) {
                    Ok(Next::Request(_)) => {
                        n += 1;
                        conn.encode_response(&Response::new(StatusCode::OK), &mut Vec::new());
                    }
                    Ok(_) => break,
                    Err(e) => return (Err(e.status().as_u16()), conn.parses),
                }
            }
        }
        (Ok(n), conn.parses)
    }

    #[test]
    fn byte_at_a_time_parses_once_per_head() {
        let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        for i in 0..50 {
            raw.extend_from_slice(format!("X-Header-{i}: some value\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        let twice = [raw.clone(), raw.clone()].concat();
        // First byte of each head, then once more when it ends.
        assert_eq!(drip(&twice, Limits::default()), (Ok(2), 4));
        // Limits still apply while bytes trickle in.
        let small = Limits {
            max_request_line: 40,
            max_head: 200,
            ..Limits::default()
        };
        let (end, parses) = drip(&raw, small.clone());
        assert_eq!(end, Err(431));
        assert!(parses <= 2, "{parses}");
        let long_line = [b"GET /".as_slice(), &[b'a'; 100]].concat();
        assert_eq!(drip(&long_line, small.clone()).0, Err(414));
        // One byte over the limit is enough, unless it may be the CR of
        // the line's end.
        let over = [b"GET /".as_slice(), &[b'a'; 36]].concat();
        assert_eq!(over.len(), 41);
        assert_eq!(drip(&over, small.clone()).0, Err(414));
        let at_limit = [b"GET /".as_slice(), &[b'a'; 26], b" HTTP/1.1\r"].concat();
        assert_eq!(at_limit.len(), 41);
        assert_eq!(drip(&at_limit, small.clone()), (Ok(0), 1));
        let mut whole = at_limit;
        whole.extend_from_slice(b"\nHost: a\r\n\r\n");
        assert_eq!(drip(&whole, small).0, Ok(1));
        // A CR that no LF follows is an error as soon as it is seen, in the
        // request line or in a header.
        for raw in [
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\r".as_slice(),
            b"GET / HTTP/1.1\r\nHost: a\rb".as_slice(),
            b"GET /\ra".as_slice(),
        ] {
            let (end, parses) = drip(raw, Limits::default());
            assert_eq!(end, Err(400), "{:?}", String::from_utf8_lossy(raw));
            assert!(parses <= 2, "{parses}");
        }
    }

    #[test]
    fn timeout_error_answers_408() {
        let mut conn = Conn::new(Limits::default());
        let mut out = Vec::new();
        conn.encode_error(&Error::timeout(), &mut out);
        assert!(out.starts_with(b"HTTP/1.1 408 Request Timeout\r\n"));
        assert!(conn.is_done());
    }

    #[test]
    fn read_buf_reuse() {
        let mut buf = ReadBuf::new();
        buf.extend_from_slice(b"abc");
        buf.consume(1);
        assert_eq!(buf.data(), b"bc");
        let spare = buf.spare(ReadBuf::DEFAULT_CAPACITY);
        assert!(spare.len() >= ReadBuf::DEFAULT_CAPACITY);
        spare[..2].copy_from_slice(b"de");
        buf.filled(2);
        assert_eq!(buf.data(), b"bcde");
        buf.consume(10);
        assert!(buf.is_empty());
        assert_eq!(buf.len(), 0);
    }

    /// A request the generator below writes, and what parsing must give back.
    #[derive(Clone, Debug)]
    struct Gen {
        method: &'static str,
        target: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        chunks: Option<Vec<usize>>,
    }

    impl Gen {
        fn write(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(
                format!("{} {} HTTP/1.1\r\nHost: h\r\n", self.method, self.target).as_bytes(),
            );
            for (n, v) in &self.headers {
                out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
            }
            match &self.chunks {
                None if self.body.is_empty() => out.extend_from_slice(b"\r\n"),
                None => {
                    out.extend_from_slice(
                        format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes(),
                    );
                    out.extend_from_slice(&self.body);
                }
                Some(cuts) => {
                    out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                    let mut rest = &self.body[..];
                    for &c in cuts {
                        let n = c.min(rest.len());
                        crate::ChunkedEncoder::encode_chunk(&rest[..n], out);
                        rest = &rest[n..];
                    }
                    crate::ChunkedEncoder::encode_chunk(rest, out);
                    out.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
                }
            }
        }
    }

    fn gen_request() -> impl Strategy<Value = Gen> {
        (
            prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]),
            "(/[a-zA-Z0-9._~%-]{0,6}){1,3}(\\?[a-z=&+%0-9]{0,10})?",
            prop::collection::vec(("x-[a-z0-9-]{1,8}", "[!-~]([ -~]{0,10}[!-~])?"), 0..4),
            prop::collection::vec(any::<u8>(), 0..40),
            prop::option::of(prop::collection::vec(1usize..10, 0..4)),
        )
            .prop_map(|(method, target, headers, body, chunks)| Gen {
                method,
                target,
                headers,
                body,
                chunks,
            })
    }

    /// Bytes for the head parser that reach each of its answers: a valid
    /// request cut short (`Partial`), whole (`Complete`, with what follows
    /// it), or with a few bytes overwritten (mostly errors); and bytes of
    /// any kind.
    fn head_shaped() -> impl Strategy<Value = Vec<u8>> {
        fn wire() -> impl Strategy<Value = Vec<u8>> {
            gen_request().prop_map(|g| {
                let mut out = Vec::new();
                g.write(&mut out);
                out
            })
        }
        prop_oneof![
            (wire(), any::<prop::sample::Index>())
                .prop_map(|(w, cut)| w[..cut.index(w.len() + 1)].to_vec()),
            wire(),
            (
                wire(),
                prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            )
                .prop_map(|(mut w, edits)| {
                    for (at, b) in edits {
                        let i = at.index(w.len());
                        w[i] = b;
                    }
                    w
                }),
            prop::collection::vec(any::<u8>(), 0..300),
        ]
    }

    /// Feeds `pieces` one after the other, polling after each; returns the
    /// requests and how it ended after end of input.
    fn feed(pieces: &[&[u8]]) -> (Vec<Request>, Result<(), Error>) {
        feed_with(pieces, false, Limits::default())
    }

    /// As `feed`, with streamed bodies: each request's body is read with
    /// `poll_body` before it is answered.
    fn feed_streaming(pieces: &[&[u8]]) -> (Vec<Request>, Result<(), Error>) {
        feed_with(pieces, true, Limits::default())
    }

    fn feed_with(
        pieces: &[&[u8]],
        stream: bool,
        limits: Limits,
    ) -> (Vec<Request>, Result<(), Error>) {
        let mut conn = Conn::new(limits);
        conn.set_stream_bodies(stream);
        let mut buf = ReadBuf::new();
        let mut reqs = Vec::new();
        let mut current: Option<Request> = None;
        let total: usize = pieces.iter().map(|p| p.len()).sum();
        // Each poll makes progress: a bound on the polls catches a loop.
        let max_polls = if stream {
            2 * total + 2 * pieces.len() + 4
        } else {
            total + 2 * pieces.len() + 2
        };
        let mut polls = 0;
        for (i, piece) in pieces.iter().enumerate() {
            buf.extend_from_slice(piece);
            if i + 1 == pieces.len() {
                conn.read_eof();
            }
            loop {
                polls += 1;
                assert!(polls <= max_polls, "no progress");
                if let Some(req) = &mut current {
                    match conn.poll_body(&mut buf, &mut req.extra_mut().body) {
                        Ok(BodyRead::Data | BodyRead::Continue) => continue,
                        Ok(BodyRead::NeedMore) => {
                            assert!(i + 1 < pieces.len(), "NeedMore after end of input");
                            break;
                        }
                        Ok(BodyRead::Done) => {
                            assert!(!conn.is_streaming_body());
                            conn.encode_response(&Response::new(StatusCode::OK), &mut Vec::new());
                            reqs.extend(current.take());
                            continue;
                        }
                        Err(e) => return (reqs, Err(e)),
                    }
                }
                match conn.poll_request(&mut buf) {
                    Ok(Next::Request(r)) => {
                        if conn.is_streaming_body() {
                            current = Some(r);
                        } else {
                            conn.encode_response(&Response::new(StatusCode::OK), &mut Vec::new());
                            reqs.push(r);
                        }
                    }
                    Ok(Next::Continue) => {
                        assert!(!stream, "Continue comes from poll_body when streaming");
                    }
                    Ok(Next::NeedMore) => {
                        assert!(i + 1 < pieces.len(), "NeedMore after end of input");
                        break;
                    }
                    Ok(Next::Close) => return (reqs, Ok(())),
                    Err(e) => return (reqs, Err(e)),
                }
            }
        }
        (reqs, Ok(()))
    }

    /// A streaming connection fed `raw` at once.
    fn streaming(raw: &[u8], limits: Limits) -> (Conn, ReadBuf) {
        let mut conn = Conn::new(limits);
        conn.set_stream_bodies(true);
        let mut buf = ReadBuf::new();
        buf.extend_from_slice(raw);
        (conn, buf)
    }

    fn next_request(conn: &mut Conn, buf: &mut ReadBuf) -> Request {
        match conn.poll_request(buf) {
            Ok(Next::Request(r)) => r,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn streamed_body_comes_after_its_head() {
        let (mut conn, mut buf) = streaming(
            b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello",
            Limits::default(),
        );
        assert!(conn.streams_bodies());
        let req = next_request(&mut conn, &mut buf);
        assert_eq!((req.path(), req.body()), ("/up".into(), &b""[..]));
        assert!(conn.is_streaming_body() && conn.is_reading_body());
        assert_eq!(conn.body_remaining(), Some(11));
        let mut body = Vec::new();
        assert_eq!(conn.poll_body(&mut buf, &mut body), Ok(BodyRead::Data));
        assert_eq!(conn.body_remaining(), Some(6));
        assert_eq!(conn.poll_body(&mut buf, &mut body), Ok(BodyRead::NeedMore));
        // The rest, and a pipelined request behind it.
        buf.extend_from_slice(b" worldGET /next HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(conn.poll_body(&mut buf, &mut body), Ok(BodyRead::Done));
        assert_eq!(body, b"hello world");
        assert!(!conn.is_streaming_body());
        // Done again once finished, and nothing is taken from the buffer.
        assert_eq!(conn.poll_body(&mut buf, &mut body), Ok(BodyRead::Done));
        let mut out = Vec::new();
        conn.encode_response(&Response::text("11"), &mut out);
        assert!(!find(&out, b"connection: close"));
        assert_eq!(next_request(&mut conn, &mut buf).path(), "/next");
        // Requests without a body come whole, as before.
        assert!(!conn.is_reading_body());
    }

    #[test]
    fn streamed_chunked_body_and_its_limit() {
        let (mut conn, mut buf) = streaming(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n",
            small(),
        );
        let _req = next_request(&mut conn, &mut buf);
        assert_eq!(conn.body_remaining(), None);
        let mut body = Vec::new();
        assert_eq!(conn.poll_body(&mut buf, &mut body), Ok(BodyRead::Data));
        assert_eq!(conn.poll_body(&mut buf, &mut body), Ok(BodyRead::NeedMore));
        // 8 + 9 bytes: over the 16-byte limit as soon as the size is read.
        buf.extend_from_slice(b"9\r\n");
        let err = conn.poll_body(&mut buf, &mut body).unwrap_err();
        assert!(err.is_body_too_large());
        assert_eq!(body, b"12345678");
        let mut out = Vec::new();
        conn.encode_error(&err, &mut out);
        assert!(out.starts_with(b"HTTP/1.1 413 "));
        assert!(find(&out, b"connection: close\r\n"));
        assert!(conn.is_done());
        // A declared length over the limit is refused at the head, as before.
        let (mut conn, mut buf) = streaming(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 17\r\n\r\n",
            small(),
        );
        assert!(conn.poll_request(&mut buf).unwrap_err().is_body_too_large());
    }

    #[test]
    fn streamed_continue_only_when_the_body_is_read() {
        let (mut conn, mut buf) = streaming(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
            Limits::default(),
        );
        // The request comes out first, without a Continue.
        let _req = next_request(&mut conn, &mut buf);
        let mut body = Vec::new();
        assert_eq!(conn.poll_body(&mut buf, &mut body), Ok(BodyRead::Continue));
        assert_eq!(conn.poll_body(&mut buf, &mut body), Ok(BodyRead::NeedMore));
        buf.extend_from_slice(b"data");
        assert_eq!(conn.poll_body(&mut buf, &mut body), Ok(BodyRead::Done));
        assert_eq!(body, b"data");

        // A client that sends the body without waiting gets no Continue.
        let (mut conn, mut buf) = streaming(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\nda",
            Limits::default(),
        );
        let _req = next_request(&mut conn, &mut buf);
        let mut body = Vec::new();
        assert_eq!(conn.poll_body(&mut buf, &mut body), Ok(BodyRead::Data));
        assert_eq!(conn.poll_body(&mut buf, &mut body), Ok(BodyRead::NeedMore));
    }

    #[test]
    fn answering_before_continue_closes() {
        let (mut conn, mut buf) = streaming(
            b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
            Limits::default(),
        );
        let _req = next_request(&mut conn, &mut buf);
        let mut out = Vec::new();
        conn.encode_response(&Response::error(StatusCode::FORBIDDEN), &mut out);
        assert!(out.starts_with(b"HTTP/1.1 403 "));
        assert!(find(&out, b"connection: close\r\n"));
        assert!(conn.is_done());
        assert!(matches!(conn.poll_request(&mut buf), Ok(Next::Close)));

        // A client whose body came with its head did not wait for the
        // `100`: its unread body is discarded, and the request after it
        // is served.
        let (mut conn, mut buf) = streaming(
            b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n\
              dataGET /next HTTP/1.1\r\nHost: a\r\n\r\n",
            Limits::default(),
        );
        let _req = next_request(&mut conn, &mut buf);
        let mut out = Vec::new();
        conn.encode_response(&Response::error(StatusCode::FORBIDDEN), &mut out);
        assert!(!find(&out, b"connection: close\r\n"));
        assert_eq!(next_request(&mut conn, &mut buf).path(), "/next");
    }

    #[test]
    fn an_unread_body_is_discarded_before_the_next_request() {
        for (body, framing) in [
            (&b"0123456789"[..], "Content-Length: 10"),
            (
                &b"4\r\n0123\r\n6;x=y\r\n456789\r\n0\r\nT: 1\r\n\r\n"[..],
                "Transfer-Encoding: chunked",
            ),
        ] {
            let head = format!("POST /a HTTP/1.1\r\nHost: a\r\n{framing}\r\n\r\n");
            let wire = [head.as_bytes(), body, b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n"].concat();
            // Any split: the second request is found whole.
            for cut in 0..wire.len() {
                let (mut conn, mut buf) = streaming(&wire[..cut], Limits::default());
                let mut got = Vec::new();
                let mut fed = false;
                loop {
                    match conn.poll_request(&mut buf) {
                        Ok(Next::Request(r)) => {
                            conn.encode_response(&Response::text("x"), &mut Vec::new());
                            got.push(r.path().into_owned());
                        }
                        Ok(Next::NeedMore) if !fed => {
                            buf.extend_from_slice(&wire[cut..]);
                            fed = true;
                        }
                        other => panic!("cut {cut}: {other:?}"),
                    }
                    if got.len() == 2 {
                        break;
                    }
                }
                assert_eq!(got, ["/a", "/b"], "cut {cut}");
                assert!(buf.is_empty() && conn.keep_alive());
            }
        }
    }

    #[test]
    fn a_bad_or_oversized_unread_rest_closes_without_another_answer() {
        for rest in [&b"11\r\n"[..], b"zz\r\n", b"4\r\nabcd\n"] {
            let (mut conn, mut buf) = streaming(
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
                small(),
            );
            let _req = next_request(&mut conn, &mut buf);
            let mut out = Vec::new();
            conn.encode_response(&Response::text("early"), &mut out);
            let answered = out.len();
            buf.extend_from_slice(rest);
            assert!(matches!(conn.poll_request(&mut buf), Ok(Next::Close)));
            assert!(conn.is_done());
            assert_eq!(out.len(), answered);
            // The bad rest stays: the server closes lingering on it.
            assert!(!buf.is_empty());
            assert!(matches!(conn.poll_request(&mut buf), Ok(Next::Close)));
        }
        // The peer closing in the middle of an unread rest: a clean close.
        let (mut conn, mut buf) = streaming(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nabc",
            Limits::default(),
        );
        let _req = next_request(&mut conn, &mut buf);
        conn.encode_response(&Response::text("early"), &mut Vec::new());
        assert!(matches!(conn.poll_request(&mut buf), Ok(Next::NeedMore)));
        assert!(conn.is_reading_body() && conn.is_mid_request(&buf));
        conn.read_eof();
        assert!(matches!(conn.poll_request(&mut buf), Ok(Next::Close)));
    }

    #[test]
    fn a_stream_of_empty_lines_is_no_request() {
        let limits = Limits::default();
        // As many as a request line may be long: dropped, and a request
        // after them is read; a byte more is a bad request.
        for (extra, ok) in [(0, true), (1, false)] {
            let mut wire = b"\r\n".repeat(limits.max_request_line / 2);
            wire.extend(std::iter::repeat_n(b'\n', extra));
            let (mut conn, mut buf) = streaming(&wire, limits.clone());
            match conn.poll_request(&mut buf) {
                Ok(Next::NeedMore) if ok => {
                    buf.extend_from_slice(b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n");
                    assert_eq!(next_request(&mut conn, &mut buf).path(), "/after");
                    // The count starts again with each request.
                    buf.extend_from_slice(&b"\r\n".repeat(limits.max_request_line / 2));
                    assert!(matches!(conn.poll_request(&mut buf), Ok(Next::NeedMore)));
                }
                Err(e) if !ok => assert_eq!(e.status(), StatusCode::BAD_REQUEST),
                other => panic!("{extra}: {other:?}"),
            }
        }
    }

    #[test]
    fn no_more_than_drain_max_of_an_unread_body_is_discarded() {
        // Declared: up to `DRAIN_MAX` left, the answer keeps the connection
        // and the rest is discarded; more, and the answer closes it.
        for (len, keeps) in [(DRAIN_MAX, true), (DRAIN_MAX + 1, false)] {
            let head = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {len}\r\n\r\n");
            let (mut conn, mut buf) = streaming(head.as_bytes(), Limits::default());
            let _req = next_request(&mut conn, &mut buf);
            let mut out = Vec::new();
            conn.encode_response(&Response::text("early"), &mut out);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(!text.contains("connection: close"), keeps, "{len}: {text}");
            assert_eq!(conn.is_discarding_body(), keeps, "{len}");
            if keeps {
                buf.extend_from_slice(&vec![b'x'; len as usize]);
                buf.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
                assert_eq!(next_request(&mut conn, &mut buf).path(), "/next");
            } else {
                assert!(conn.is_done());
            }
        }
        // Chunked, of no declared length: counted as it is discarded, from
        // the answer on (what the handler read before does not count).
        let (mut conn, mut buf) = streaming(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            Limits::default(),
        );
        let _req = next_request(&mut conn, &mut buf);
        conn.encode_response(&Response::text("early"), &mut Vec::new());
        let chunk = [b"4000\r\n".as_slice(), &[b'x'; 0x4000], b"\r\n"].concat();
        let mut sent = 0;
        while sent <= DRAIN_MAX {
            buf.extend_from_slice(&chunk);
            sent += 0x4000;
            let next = conn.poll_request(&mut buf);
            if sent <= DRAIN_MAX {
                assert!(matches!(next, Ok(Next::NeedMore)), "{sent}: {next:?}");
                assert!(!conn.closed_early());
            } else {
                assert!(matches!(next, Ok(Next::Close)), "{sent}: {next:?}");
            }
        }
        assert!(conn.is_done());
        // The client is still sending: the server closes lingering.
        assert!(conn.closed_early());
    }

    #[test]
    fn end_of_input_in_a_streamed_body_is_incomplete() {
        let (mut conn, mut buf) = streaming(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nabc",
            Limits::default(),
        );
        let _req = next_request(&mut conn, &mut buf);
        let mut body = Vec::new();
        assert_eq!(conn.poll_body(&mut buf, &mut body), Ok(BodyRead::Data));
        conn.read_eof();
        let err = conn.poll_body(&mut buf, &mut body).unwrap_err();
        assert!(err.is_incomplete());
        let mut out = Vec::new();
        conn.encode_error(&err, &mut out);
        assert!(out.starts_with(b"HTTP/1.1 400 ") && conn.is_done());
    }

    #[test]
    fn a_streamed_body_whose_request_is_not_answered_holds_the_next_one_back() {
        // Polling for the next request while a body streams once threw
        // that body away (and `poll_body` said `Done`, with nothing).
        let (mut conn, mut buf) = streaming(
            b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
              GET /n HTTP/1.1\r\nHost: x\r\n\r\n",
            Limits::default(),
        );
        assert_eq!(next_request(&mut conn, &mut buf).path(), "/p");
        assert!(matches!(conn.poll_request(&mut buf), Ok(Next::NeedMore)));
        assert!(conn.is_streaming_body());
        let mut body = Vec::new();
        // Whole in the buffer: `Done` with its bytes appended.
        assert_eq!(conn.poll_body(&mut buf, &mut body), Ok(BodyRead::Done));
        assert_eq!(body, b"hello");
        conn.encode_response(&Response::text("5"), &mut Vec::new());
        assert_eq!(next_request(&mut conn, &mut buf).path(), "/n");
    }

    #[test]
    fn a_continue_held_back_by_answers_owed_goes_out_after_them() {
        let wire = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
                     POST /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
        for stream in [true, false] {
            let mut conn = Conn::new(Limits::default());
            conn.set_stream_bodies(stream);
            let mut buf = ReadBuf::new();
            buf.extend_from_slice(wire);
            assert_eq!(next_request(&mut conn, &mut buf).path(), "/a");
            let mut body = Vec::new();
            if stream {
                assert_eq!(next_request(&mut conn, &mut buf).path(), "/p");
                // `/a` is owed first: no Continue yet.
                assert_eq!(conn.poll_body(&mut buf, &mut body), Ok(BodyRead::NeedMore));
            } else {
                assert!(matches!(conn.poll_request(&mut buf), Ok(Next::NeedMore)));
            }
            conn.encode_response(&Response::text("a"), &mut Vec::new());
            // Once `/a` is answered, the client is asked for the body.
            if stream {
                assert_eq!(conn.poll_body(&mut buf, &mut body), Ok(BodyRead::Continue));
            } else {
                assert!(matches!(conn.poll_request(&mut buf), Ok(Next::Continue)));
            }
        }
        // An answer given while the client still waits for its Continue
        // (never sent) closes: it may never send the body.
        let (mut conn, mut buf) = streaming(wire, Limits::default());
        next_request(&mut conn, &mut buf);
        next_request(&mut conn, &mut buf);
        assert_eq!(
            conn.poll_body(&mut buf, &mut Vec::new()),
            Ok(BodyRead::NeedMore)
        );
        conn.encode_response(&Response::text("a"), &mut Vec::new());
        let mut out = Vec::new();
        conn.encode_response(&Response::error(StatusCode::UNAUTHORIZED), &mut out);
        assert!(
            find(&out, b"connection: close\r\n"),
            "{}",
            String::from_utf8_lossy(&out)
        );
        assert!(!conn.keep_alive() && conn.is_done());
    }

    #[test]
    fn a_timeout_answer_to_a_head_request_has_no_content() {
        // The head stopped arriving, or the (streamed) body did.
        let stalled: [(&[u8], bool); 2] = [
            (b"HEAD / HTTP/1.1\r\nHost: a", false),
            (
                b"HEAD / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab",
                true,
            ),
        ];
        for (raw, stream) in stalled {
            let (mut conn, mut buf) = streaming(raw, Limits::default());
            if stream {
                next_request(&mut conn, &mut buf);
                let mut body = Vec::new();
                assert_eq!(conn.poll_body(&mut buf, &mut body), Ok(BodyRead::Data));
                assert_eq!(conn.poll_body(&mut buf, &mut body), Ok(BodyRead::NeedMore));
            } else {
                assert!(matches!(conn.poll_request(&mut buf), Ok(Next::NeedMore)));
            }
            let e = conn.timeout_error(&buf);
            assert!(e.is_timeout());
            let mut out = Vec::new();
            assert_eq!(conn.encode_error(&e, &mut out), Framing::None);
            let text = String::from_utf8_lossy(&out);
            assert!(
                text.starts_with("HTTP/1.1 408 ") && text.ends_with("\r\n\r\n"),
                "{text}"
            );
        }
    }

    #[test]
    fn an_answer_with_no_request_owed_writes_nothing() {
        let (mut conn, mut buf) =
            streaming(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", Limits::default());
        let mut out = Vec::new();
        // None yet, then one answered.
        assert_eq!(
            conn.encode_response(&Response::text("early"), &mut out),
            Framing::None
        );
        next_request(&mut conn, &mut buf);
        assert_eq!(
            conn.encode_response(&Response::text("a"), &mut out),
            Framing::Length(1)
        );
        let len = out.len();
        assert_eq!(
            conn.encode_response(&Response::text("extra"), &mut out),
            Framing::None
        );
        assert_eq!(out.len(), len);
        assert!(conn.keep_alive());
    }

    fn split(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut at = 0;
        for c in cuts {
            pieces.push(bytes[at..c].to_vec());
            at = c;
        }
        pieces.push(bytes[at..].to_vec());
        pieces
    }

    type Summary = (String, String, Vec<(String, Vec<u8>)>, Vec<u8>);

    fn summary(r: &Request) -> Summary {
        (
            r.method().to_string(),
            r.target().to_string(),
            r.headers()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect(),
            r.body().to_vec(),
        )
    }

    /// The requests `gens` on the wire, with a byte replaced at each of
    /// `edits`.
    fn mutated(gens: &[Gen], edits: &[(usize, u8)]) -> Vec<u8> {
        let mut wire = Vec::new();
        for g in gens {
            g.write(&mut wire);
        }
        for &(at, byte) in edits {
            let at = at % wire.len();
            wire[at] = byte;
        }
        wire
    }

    /// The status of the error a feed ended with, if any.
    fn status(end: &Result<(), Error>) -> Option<u16> {
        end.as_ref().err().map(|e| e.status().as_u16())
    }

    /// What `wire` fed whole gives (the requests, and how the feed ended).
    type Fed = (Vec<Request>, Result<(), Error>);

    /// `wire` fed whole and in pieces cut at `cuts`, under `limits`: the
    /// same requests, and the same error or none. Returns the whole feed.
    fn same_whole_and_split(
        wire: &[u8],
        cuts: &[usize],
        limits: &Limits,
    ) -> Result<Fed, TestCaseError> {
        let (whole, whole_end) = feed_with(&[wire], false, limits.clone());
        let pieces = split(wire, cuts);
        let refs: Vec<&[u8]> = pieces.iter().map(|p| &p[..]).collect();
        let (parts, parts_end) = feed_with(&refs, false, limits.clone());
        prop_assert_eq!(
            parts.iter().map(summary).collect::<Vec<_>>(),
            whole.iter().map(summary).collect::<Vec<_>>()
        );
        prop_assert_eq!(
            status(&parts_end),
            status(&whole_end),
            "{:?} vs {:?}",
            parts_end,
            whole_end
        );
        Ok((whole, whole_end))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_split_parses_the_same(
            gens in prop::collection::vec(gen_request(), 1..6),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let mut wire = Vec::new();
            for g in &gens {
                g.write(&mut wire);
            }
            let (whole, end) = feed(&[&wire]);
            prop_assert!(end.is_ok(), "{:?}", end);
            prop_assert_eq!(whole.len(), gens.len());
            for (r, g) in whole.iter().zip(&gens) {
                prop_assert_eq!(r.method().as_str(), g.method);
                prop_assert_eq!(r.target(), g.target.as_str());
                prop_assert_eq!(r.body(), &g.body[..]);
                let got: Vec<(String, String)> = r
                    .headers()
                    .filter(|(n, _)| n.starts_with("x-"))
                    .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v).into_owned()))
                    .collect();
                prop_assert_eq!(&got, &g.headers);
            }
            let pieces = split(&wire, &cuts);
            let refs: Vec<&[u8]> = pieces.iter().map(|p| &p[..]).collect();
            let (parts, end) = feed(&refs);
            prop_assert!(end.is_ok(), "{:?}", end);
            prop_assert_eq!(
                parts.iter().map(summary).collect::<Vec<_>>(),
                whole.iter().map(summary).collect::<Vec<_>>()
            );
            // Streamed bodies read with `poll_body`: the same requests.
            let (streamed, end) = feed_streaming(&refs);
            prop_assert!(end.is_ok(), "{:?}", end);
            prop_assert_eq!(
                streamed.iter().map(summary).collect::<Vec<_>>(),
                whole.iter().map(summary).collect::<Vec<_>>()
            );
        }

        #[test]
        fn arbitrary_bytes_end_in_requests_then_close_or_error(
            prefix in prop::option::of(gen_request()),
            noise in prop::collection::vec(any::<u8>(), 0..300),
            cuts in prop::collection::vec(any::<usize>(), 0..6),
        ) {
            let mut wire = Vec::new();
            if let Some(g) = prefix {
                g.write(&mut wire);
            }
            wire.extend_from_slice(&noise);
            let pieces = split(&wire, &cuts);
            let refs: Vec<&[u8]> = pieces.iter().map(|p| &p[..]).collect();
            // `feed` asserts progress on every poll and that the end of
            // input gives Close or an error, never a wait for more.
            let (_, end) = feed(&refs);
            if let Err(e) = end {
                prop_assert!(e.closes_connection());
                prop_assert!([400, 413, 414, 431, 501, 505].contains(&e.status().as_u16()), "{:?}", e);
            }
        }

        #[test]
        fn mutated_streams_do_not_depend_on_splits(
            gens in prop::collection::vec(gen_request(), 1..4),
            edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            cuts in prop::collection::vec(any::<usize>(), 1..8),
        ) {
            let wire = mutated(&gens, &edits);
            let (whole, whole_end) = same_whole_and_split(&wire, &cuts, &Limits::default())?;
            // Streamed bodies read with `poll_body`: the same too.
            let pieces = split(&wire, &cuts);
            let refs: Vec<&[u8]> = pieces.iter().map(|p| &p[..]).collect();
            let (streamed, streamed_end) = feed_streaming(&refs);
            prop_assert_eq!(
                streamed.iter().map(summary).collect::<Vec<_>>(),
                whole.iter().map(summary).collect::<Vec<_>>()
            );
            prop_assert_eq!(status(&streamed_end), status(&whole_end));
        }

        /// As above, under limits small enough for the requests to pass
        /// them: which limit or which malformed byte is reported does not
        /// depend on how the bytes arrived either.
        #[test]
        fn errors_under_small_limits_do_not_depend_on_splits(
            gens in prop::collection::vec(gen_request(), 1..3),
            edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
            cuts in prop::collection::vec(any::<usize>(), 1..8),
            line in 8usize..64,
            head in 16usize..160,
            headers in 0usize..6,
        ) {
            let limits = Limits {
                max_request_line: line,
                max_head: head,
                max_headers: headers,
                ..Limits::default()
            };
            // How either feed ended was compared in there.
            let _whole = same_whole_and_split(&mutated(&gens, &edits), &cuts, &limits)?;
        }

        /// `Partial` only while no head can have ended, `Complete` for a
        /// prefix that parses alone to the same length, and an error that
        /// more bytes do not take back.
        #[test]
        fn parse_head_is_partial_complete_or_a_lasting_error(
            bytes in head_shaped(),
            more in prop::collection::vec(any::<u8>(), 0..40),
        ) {
            let limits = Limits::default();
            match parse_head(&bytes, &limits) {
                Ok(Parsed::Partial) => {
                    let rest = &bytes[leading_empty_lines(&bytes)..];
                    let ended = rest.windows(2).any(|w| w == b"\n\n")
                        || rest.windows(3).any(|w| w == b"\n\r\n");
                    prop_assert!(!ended, "a blank line, yet partial");
                }
                Ok(Parsed::Complete(head)) => {
                    prop_assert!(head.len() <= bytes.len() && bytes[..head.len()].ends_with(b"\n"));
                    let alone = parse_head(&bytes[..head.len()], &limits);
                    prop_assert!(matches!(alone, Ok(Parsed::Complete(h)) if h.len() == head.len()));
                }
                Err(e) => {
                    let longer = [&bytes[..], &more, b"\r\n\r\n"].concat();
                    let again = parse_head(&longer, &limits);
                    prop_assert!(
                        matches!(&again, Err(e2) if e2.status() == e.status()),
                        "{:?} became {:?}", e, again
                    );
                }
            }
        }
    }
}
