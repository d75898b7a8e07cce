//! Streamed request bodies: the handler's reading end ([`BodyStream`]) and
//! the connection's feeding end ([`Feeder`]), sharing one slot.
//!
//! The slot holds at most one batch of decoded body bytes. The reader asks
//! for more by finding the slot empty (it records that it wants bytes and
//! waits); only then does the connection read the socket and decode the
//! next bytes into the slot. So the server never reads a body faster than
//! its handler consumes it, and a handler that never reads costs no reads.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use futures_core::Stream;

use crate::error::{Error, Kind};

/// A request body read incrementally: from [`Request::body_stream`].
///
/// When the server streams bodies ([`Server::stream_bodies`]), the request
/// reaches the handler as soon as its head is read, and this reads the body
/// off the connection as the handler asks for it, in chunks of whatever
/// has arrived: with [`next_chunk`](BodyStream::next_chunk), as a
/// [`Stream`] of `Result<Vec<u8>, Error>`, through
/// [`read`](BodyStream::read) or as a `futures_io::AsyncRead`. The body
/// limit still applies (a larger body is an error the reader sees, and the
/// client gets 413), and so do the header-read timeout, to each pause,
/// and the minimum body rate, to the whole.
/// An `Expect: 100-continue` request gets its `100 Continue` when the
/// handler first reads.
///
/// The body must be read while the handler runs: once its response is
/// given, reads fail ([`Error::is_body_gone`]) and what was not read is
/// discarded before the next request, or the connection closed when it
/// is long or slow (see [`Server::stream_bodies`](crate::Server::stream_bodies)).
///
/// For a request whose body was buffered, the stream yields the buffered
/// bytes as one chunk, so a handler written against this type works both
/// ways.
///
/// [`Request::body_stream`]: crate::Request::body_stream
/// [`Server::stream_bodies`]: crate::Server::stream_bodies
///
/// ```
/// # futures_executor::block_on(async {
/// let mut req = minihttp::Request::parse(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")?;
/// let mut body = req.body_stream();
/// assert_eq!(body.next_chunk().await?, Some(b"hello".to_vec()));
/// assert_eq!(body.next_chunk().await?, None);
/// # Ok::<(), minihttp::Error>(())
/// # }).unwrap();
/// ```
pub struct BodyStream {
    inner: Inner,
    /// The [`Stream`] yielded an error: it has ended.
    errored: bool,
}

enum Inner {
    /// A buffered body and how far it has been read: a cursor, so that
    /// reading it in small pieces never moves what is left.
    Bytes(Vec<u8>, usize),
    /// A body still on the connection.
    Pipe(PipeReader),
}

/// What the two ends share.
#[derive(Default)]
struct Slot {
    /// The declared `Content-Length`, if any.
    len: Option<u64>,
    /// Decoded bytes not yet read start at `pos`.
    buf: Vec<u8>,
    pos: usize,
    /// Bytes the reader has taken so far.
    taken: u64,
    /// `Some(Ok)`: the whole body was delivered; `Some(Err)`: it failed.
    end: Option<Result<(), Error>>,
    /// The request was answered: nothing more will be delivered.
    gone: bool,
    /// The reader found the slot empty and waits for bytes.
    wants: bool,
    reader: Option<Waker>,
    feeder: Option<Waker>,
}

fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    // The slot's invariants hold between statements: a panic elsewhere
    // cannot leave it half-updated.
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The connection's end of a streamed body.
pub(crate) struct Feeder {
    slot: Arc<Mutex<Slot>>,
}

/// The handler's end of a streamed body, as a [`Request`](crate::Request)
/// holds it until [`BodyStream`] wraps it: one pointer, so requests without
/// a streamed body carry only a `None`.
pub(crate) struct PipeReader(Arc<Mutex<Slot>>);

/// A connected pair: the connection feeds, the handler reads. `len` is the
/// declared `Content-Length`, if any.
pub(crate) fn pipe(len: Option<u64>) -> (Feeder, PipeReader) {
    let slot = Arc::new(Mutex::new(Slot {
        len,
        ..Slot::default()
    }));
    (Feeder { slot: slot.clone() }, PipeReader(slot))
}

impl Feeder {
    /// Whether the reader waits for bytes the feeder should now provide.
    /// Records `waker` as the one to wake when the reader starts waiting
    /// from another task.
    pub(crate) fn wants(&self, waker: &Waker) -> bool {
        let mut s = lock(&self.slot);
        if !s.feeder.as_ref().is_some_and(|w| w.will_wake(waker)) {
            s.feeder = Some(waker.clone());
        }
        s.wants && s.pos >= s.buf.len() && s.end.is_none() && !s.gone
    }

    /// Appends decoded bytes through `f` (the slot's storage is reused once
    /// read).
    pub(crate) fn fill<R>(&self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let mut s = lock(&self.slot);
        if s.pos >= s.buf.len() {
            s.buf.clear();
            s.pos = 0;
        }
        f(&mut s.buf)
    }

    /// Ends the body: complete (`Ok`) or failed.
    pub(crate) fn finish(&self, result: Result<(), Error>) {
        lock(&self.slot).end = Some(result);
        self.wake_reader();
    }

    /// Tells a waiting reader that the slot changed.
    pub(crate) fn wake_reader(&self) {
        let waker = {
            let mut s = lock(&self.slot);
            s.wants = false;
            let reader = s.reader.take();
            // The reader polled from the feeder's own task is polled again
            // by it at once: no wake-up needed.
            match (&reader, &s.feeder) {
                (Some(r), Some(f)) if r.will_wake(f) => None,
                _ => reader,
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The request was answered: later reads fail.
    pub(crate) fn close(&self) {
        self.leave(|s| s.gone = true);
    }

    /// Feeds no more: applies `end` to the slot, and wakes a waiting reader
    /// (outside the lock).
    fn leave(&self, end: impl FnOnce(&mut Slot)) {
        let waker = {
            let mut s = lock(&self.slot);
            end(&mut s);
            s.feeder = None;
            s.reader.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// A feeder dropped before it ended the body or closed it (the connection
/// failed in the middle of the body: a read or a write error) ends it as
/// cut short: a reader in another task learns it rather than wait for
/// good.
impl Drop for Feeder {
    fn drop(&mut self) {
        self.leave(|s| {
            if s.end.is_none() && !s.gone {
                s.end = Some(Err(Error::new(Kind::Incomplete)));
            }
        });
    }
}

impl fmt::Debug for Feeder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Feeder").finish_non_exhaustive()
    }
}

/// Where a read stands once the slot is locked.
enum Ready {
    Data,
    Eof,
    Failed(Error),
}

impl Slot {
    /// Data, the end, or (registering `cx`) pending; `wake` receives a
    /// feeder to wake once the lock is released.
    fn poll_ready(&mut self, cx: &mut Context<'_>, wake: &mut Option<Waker>) -> Poll<Ready> {
        if self.pos < self.buf.len() {
            return Poll::Ready(Ready::Data);
        }
        match self.end {
            Some(Ok(())) => return Poll::Ready(Ready::Eof),
            Some(Err(e)) => return Poll::Ready(Ready::Failed(e)),
            None => {}
        }
        if self.gone {
            return Poll::Ready(Ready::Failed(Error::new(Kind::BodyGone)));
        }
        if !self
            .reader
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            self.reader = Some(cx.waker().clone());
        }
        self.wants = true;
        // A feeder waiting on something else (the reader runs in another
        // task) must learn that bytes are wanted.
        *wake = match &self.feeder {
            Some(f) if !f.will_wake(cx.waker()) => Some(f.clone()),
            _ => None,
        };
        Poll::Pending
    }
}

impl BodyStream {
    /// A stream over bytes already in memory.
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> BodyStream {
        BodyStream {
            inner: Inner::Bytes(bytes, 0),
            errored: false,
        }
    }

    /// A stream over a body still on the connection.
    pub(crate) fn from_pipe(reader: PipeReader) -> BodyStream {
        BodyStream {
            inner: Inner::Pipe(reader),
            errored: false,
        }
    }

    /// How many bytes are left to read, when known: what is left of a
    /// buffered body, or of the declared `Content-Length` of a streamed one.
    pub fn len_hint(&self) -> Option<u64> {
        match &self.inner {
            Inner::Bytes(b, pos) => Some((b.len() - *pos) as u64),
            Inner::Pipe(PipeReader(slot)) => {
                let s = lock(slot);
                s.len.map(|len| len.saturating_sub(s.taken))
            }
        }
    }

    /// Whether the body is still on the connection (not buffered).
    pub fn is_streamed(&self) -> bool {
        matches!(self.inner, Inner::Pipe(_))
    }

    /// Runs `f` on the unread bytes once there are some; `None` at the end.
    fn poll_with<R>(
        &mut self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Vec<u8>, &mut usize) -> R,
    ) -> Poll<Result<Option<R>, Error>> {
        match &mut self.inner {
            Inner::Bytes(b, pos) => {
                if *pos >= b.len() {
                    return Poll::Ready(Ok(None));
                }
                Poll::Ready(Ok(Some(f(b, pos))))
            }
            Inner::Pipe(PipeReader(slot)) => {
                let mut wake = None;
                let result = {
                    let mut s = lock(slot);
                    match s.poll_ready(cx, &mut wake) {
                        Poll::Ready(Ready::Data) => {
                            let Slot {
                                buf, pos, taken, ..
                            } = &mut *s;
                            let unread = buf.len() - *pos;
                            let r = f(buf, pos);
                            *taken += (unread - (buf.len() - *pos)) as u64;
                            Poll::Ready(Ok(Some(r)))
                        }
                        Poll::Ready(Ready::Eof) => Poll::Ready(Ok(None)),
                        Poll::Ready(Ready::Failed(e)) => Poll::Ready(Err(e)),
                        Poll::Pending => Poll::Pending,
                    }
                };
                if let Some(w) = wake {
                    w.wake();
                }
                result
            }
        }
    }

    /// Polls for the next chunk of body bytes: `Ok(None)` at the end.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Vec<u8>>, Error>> {
        self.poll_with(cx, |buf, pos| {
            let chunk = if *pos == 0 {
                std::mem::take(buf)
            } else {
                buf[*pos..].to_vec()
            };
            *pos = buf.len();
            chunk
        })
    }

    /// The next chunk of body bytes (whatever has arrived, never empty);
    /// `Ok(None)` once the whole body was read.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, Error> {
        poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// Polls to copy body bytes into `dst`: the count, 0 at the end (or for
    /// an empty `dst`).
    pub fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut [u8],
    ) -> Poll<Result<usize, Error>> {
        if dst.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.poll_with(cx, |buf, pos| {
            let n = dst.len().min(buf.len() - *pos);
            dst[..n].copy_from_slice(&buf[*pos..*pos + n]);
            *pos += n;
            n
        })
        .map_ok(|n| n.unwrap_or(0))
    }

    /// Copies body bytes into `dst`: the count, 0 at the end.
    pub async fn read(&mut self, dst: &mut [u8]) -> Result<usize, Error> {
        poll_fn(|cx| self.poll_read(cx, dst)).await
    }

    /// Reads the rest of the body into one buffer (the server's body limit
    /// bounds it).
    pub async fn read_all(mut self) -> Result<Vec<u8>, Error> {
        let mut all = Vec::new();
        while let Some(chunk) = self.next_chunk().await? {
            if all.is_empty() {
                all = chunk;
            } else {
                all.extend_from_slice(&chunk);
            }
        }
        Ok(all)
    }
}

impl Default for BodyStream {
    /// An empty body.
    fn default() -> BodyStream {
        BodyStream::from_bytes(Vec::new())
    }
}

impl fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyStream")
            .field("streamed", &self.is_streamed())
            .field("len_hint", &self.len_hint())
            .finish()
    }
}

/// Chunks, then the end; or chunks, an error, and the end: a loop that
/// skips errors (`while let Some(c) = body.next().await`) ends rather than
/// meet the same error for good. [`next_chunk`](BodyStream::next_chunk)
/// and the reads give the error again each time.
impl Stream for BodyStream {
    type Item = Result<Vec<u8>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.errored {
            return Poll::Ready(None);
        }
        let next = this.poll_chunk(cx).map(Result::transpose);
        this.errored = matches!(next, Poll::Ready(Some(Err(_))));
        next
    }
}

impl futures_io::AsyncRead for BodyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        BodyStream::poll_read(self.get_mut(), cx, buf).map_err(io::Error::from)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = if e.is_timeout() {
            io::ErrorKind::TimedOut
        } else if e.is_incomplete() {
            io::ErrorKind::UnexpectedEof
        } else {
            io::ErrorKind::InvalidData
        };
        io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Recorder(AtomicUsize);

    impl Wake for Recorder {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn recorder() -> (Arc<Recorder>, Waker) {
        let r = Arc::new(Recorder::default());
        (r.clone(), Waker::from(r))
    }

    fn piped(len: Option<u64>) -> (Feeder, BodyStream) {
        let (feeder, reader) = pipe(len);
        (feeder, BodyStream::from_pipe(reader))
    }

    fn woken(r: &Recorder) -> usize {
        r.0.load(Ordering::SeqCst)
    }

    #[test]
    fn a_reader_waits_is_woken_and_reads_in_order() {
        let (feeder, mut body) = piped(Some(6));
        assert!(body.is_streamed());
        assert_eq!(body.len_hint(), Some(6));
        let (feeder_rec, feeder_waker) = recorder();
        let (reader_rec, reader_waker) = recorder();
        // Nobody wants bytes yet: the connection reads nothing.
        assert!(!feeder.wants(&feeder_waker));
        let mut cx = Context::from_waker(&reader_waker);
        let mut dst = [0u8; 4];
        assert!(body.poll_read(&mut cx, &mut dst).is_pending());
        // The reader (another task here) told the feeder it waits.
        assert_eq!(woken(&feeder_rec), 1);
        assert!(feeder.wants(&feeder_waker));
        feeder.fill(|out| out.extend_from_slice(b"abcdef"));
        assert_eq!(woken(&reader_rec), 0);
        feeder.wake_reader();
        assert_eq!(woken(&reader_rec), 1);
        // Data is there: no more is wanted until it is read.
        assert!(!feeder.wants(&feeder_waker));
        assert_eq!(body.poll_read(&mut cx, &mut dst), Poll::Ready(Ok(4)));
        assert_eq!(&dst, b"abcd");
        // What is left of the declared length, as for a buffered body.
        assert_eq!(body.len_hint(), Some(2));
        assert_eq!(
            body.poll_chunk(&mut cx),
            Poll::Ready(Ok(Some(b"ef".to_vec())))
        );
        assert_eq!(body.len_hint(), Some(0));
        assert!(body.poll_chunk(&mut cx).is_pending());
        assert!(feeder.wants(&feeder_waker));
        feeder.finish(Ok(()));
        assert_eq!(woken(&reader_rec), 2);
        assert_eq!(body.poll_chunk(&mut cx), Poll::Ready(Ok(None)));
        assert_eq!(body.poll_read(&mut cx, &mut dst), Poll::Ready(Ok(0)));
        assert!(!feeder.wants(&feeder_waker));
    }

    #[test]
    fn the_feeders_own_task_is_not_woken_twice() {
        let (feeder, mut body) = piped(None);
        let (rec, waker) = recorder();
        let mut cx = Context::from_waker(&waker);
        // The handler runs inside the connection's task: one waker for both.
        assert!(!feeder.wants(&waker));
        assert!(body.poll_chunk(&mut cx).is_pending());
        assert!(feeder.wants(&waker));
        feeder.fill(|out| out.push(1));
        feeder.wake_reader();
        assert_eq!(woken(&rec), 0, "the task polls the reader again itself");
        assert_eq!(body.poll_chunk(&mut cx), Poll::Ready(Ok(Some(vec![1]))));
    }

    #[test]
    fn errors_and_reads_after_the_answer() {
        let (feeder, mut body) = piped(None);
        let (_rec, waker) = recorder();
        let mut cx = Context::from_waker(&waker);
        assert!(body.poll_chunk(&mut cx).is_pending());
        feeder.fill(|out| out.extend_from_slice(b"xy"));
        feeder.finish(Err(Error::new(Kind::BodyTooLarge)));
        // Bytes delivered before the error are still read, then the error,
        // every time.
        assert_eq!(
            body.poll_chunk(&mut cx),
            Poll::Ready(Ok(Some(b"xy".to_vec())))
        );
        for _ in 0..2 {
            match body.poll_chunk(&mut cx) {
                Poll::Ready(Err(e)) => assert!(e.is_body_too_large()),
                other => panic!("{other:?}"),
            }
        }
        let mut dst = [0u8; 2];
        match futures_io::AsyncRead::poll_read(Pin::new(&mut body), &mut cx, &mut dst) {
            Poll::Ready(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidData),
            other => panic!("{other:?}"),
        }

        // Answered before the body ended: a waiting reader is woken with an
        // error instead of waiting forever.
        let (feeder, mut body) = piped(Some(3));
        let (rec, waker) = recorder();
        let mut cx = Context::from_waker(&waker);
        assert!(body.poll_chunk(&mut cx).is_pending());
        feeder.close();
        assert_eq!(woken(&rec), 1);
        match body.poll_chunk(&mut cx) {
            Poll::Ready(Err(e)) => assert!(e.is_body_gone()),
            other => panic!("{other:?}"),
        }
        assert!(!feeder.wants(&waker));
        let timeout: io::Error = Error::timeout().into();
        assert_eq!(timeout.kind(), io::ErrorKind::TimedOut);
        let cut: io::Error = Error::new(Kind::Incomplete).into();
        assert_eq!(cut.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn as_a_stream_an_error_comes_once_then_the_end() {
        let (feeder, mut body) = piped(None);
        let (_rec, waker) = recorder();
        let mut cx = Context::from_waker(&waker);
        feeder.fill(|out| out.push(7));
        feeder.finish(Err(Error::new(Kind::Chunk)));
        let mut next = || Pin::new(&mut body).poll_next(&mut cx);
        assert_eq!(next(), Poll::Ready(Some(Ok(vec![7]))));
        assert!(matches!(next(), Poll::Ready(Some(Err(_)))));
        // A loop that skips errors ends here rather than spin.
        assert_eq!(next(), Poll::Ready(None));
        assert_eq!(next(), Poll::Ready(None));
        // `next_chunk`'s way still tells the error.
        assert!(matches!(body.poll_chunk(&mut cx), Poll::Ready(Err(_))));
    }

    #[test]
    fn a_feeder_dropped_in_the_middle_of_the_body_ends_it_as_cut() {
        // The connection failed: a reader in another task is woken, and
        // learns that the body was cut short.
        let (feeder, mut body) = piped(Some(10));
        let (rec, waker) = recorder();
        let mut cx = Context::from_waker(&waker);
        assert!(body.poll_chunk(&mut cx).is_pending());
        drop(feeder);
        assert_eq!(woken(&rec), 1);
        match body.poll_chunk(&mut cx) {
            Poll::Ready(Err(e)) => assert!(e.is_incomplete()),
            other => panic!("{other:?}"),
        }
        // One dropped after it closed or ended the body changes nothing.
        let (feeder, mut body) = piped(None);
        feeder.finish(Ok(()));
        drop(feeder);
        assert_eq!(body.poll_chunk(&mut cx), Poll::Ready(Ok(None)));
        let (feeder, mut body) = piped(None);
        feeder.close();
        drop(feeder);
        assert!(matches!(
            body.poll_chunk(&mut cx),
            Poll::Ready(Err(e)) if e.is_body_gone()
        ));
    }

    #[test]
    fn a_buffered_body_as_a_stream() {
        futures_executor::block_on(async {
            let mut body = BodyStream::from_bytes(b"hello world".to_vec());
            assert!(!body.is_streamed());
            assert_eq!(body.len_hint(), Some(11));
            let mut dst = [0u8; 5];
            assert_eq!(body.read(&mut dst).await, Ok(5));
            assert_eq!(body.len_hint(), Some(6));
            assert_eq!(body.read_all().await.unwrap(), b" world");
            let mut empty = BodyStream::default();
            assert_eq!(empty.next_chunk().await, Ok(None));
            assert!(format!("{empty:?}").contains("streamed: false"));
        });
    }

    #[test]
    fn a_buffered_body_read_in_small_pieces_comes_out_whole_and_in_order() {
        futures_executor::block_on(async {
            let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
            let mut body = BodyStream::from_bytes(data.clone());
            let mut out = Vec::new();
            let mut dst = [0u8; 7];
            while out.len() < 50_000 {
                let n = body.read(&mut dst).await.unwrap();
                out.extend_from_slice(&dst[..n]);
            }
            assert_eq!(body.len_hint(), Some((data.len() - out.len()) as u64));
            // The rest in one chunk, from where the reads stopped.
            out.extend(body.next_chunk().await.unwrap().unwrap());
            assert_eq!(out, data);
            assert_eq!(body.next_chunk().await, Ok(None));
            assert_eq!(body.read(&mut dst).await, Ok(0));
        });
    }

    #[test]
    fn read_all_joins_chunks() {
        let (feeder, body) = piped(None);
        let (_rec, waker) = recorder();
        let mut cx = Context::from_waker(&waker);
        let mut all = pin!(body.read_all());
        for part in [&b"ab"[..], b"cd", b"e"] {
            assert!(all.as_mut().poll(&mut cx).is_pending());
            assert!(feeder.wants(&waker));
            feeder.fill(|out| out.extend_from_slice(part));
            feeder.wake_reader();
        }
        assert!(all.as_mut().poll(&mut cx).is_pending());
        feeder.finish(Ok(()));
        assert_eq!(
            all.as_mut().poll(&mut cx),
            Poll::Ready(Ok(b"abcde".to_vec()))
        );
    }
}
