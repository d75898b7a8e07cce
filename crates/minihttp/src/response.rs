//! The response a handler returns, and its body.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::error::Error;
use crate::headers::Headers;
use crate::status::StatusCode;

/// A response body.
///
/// In memory ([`Bytes`](Body::Bytes)), a region of a file
/// ([`File`](Body::File), read in chunks by the server while it sends), or
/// a stream of chunks ([`Stream`](Body::Stream), for example a `coro`
/// async generator). A body of unknown length ([`Body::len`] is `None`) is
/// sent chunked to HTTP/1.1 clients and until close to HTTP/1.0 ones.
///
/// ```
/// use minihttp::Body;
///
/// let words = coro::SendAsyncGen::new_send(|co| async move {
///     for word in ["streamed ", "in ", "chunks"] {
///         co.yield_(word.as_bytes().to_vec()).await;
///     }
/// });
/// let body = Body::from(words);
/// assert_eq!(body.len(), None);
/// assert_eq!(Body::from("abc").len(), Some(3));
/// ```
#[derive(Debug, Default)]
pub enum Body {
    /// No body (`Content-Length: 0`, or nothing at all where a body is not
    /// allowed).
    #[default]
    Empty,
    /// Bytes in memory; `&'static` data is not copied.
    Bytes(Cow<'static, [u8]>),
    /// `len` bytes of a file from `offset`, read while sending.
    File(FileBody),
    /// Chunks from a stream.
    Stream(StreamBody),
}

/// A region of an open file, sent as a [`Body::File`].
#[derive(Debug)]
pub struct FileBody {
    pub(crate) file: std::fs::File,
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

impl FileBody {
    /// `len` bytes of `file` from `offset`. If the file turns out shorter
    /// (or unreadable) while it is sent, the length promised cannot be
    /// kept: the server answers 500 instead if nothing of the answer was
    /// sent yet, and otherwise closes the connection after a short body.
    pub fn new(file: std::fs::File, offset: u64, len: u64) -> FileBody {
        FileBody { file, offset, len }
    }

    /// The whole file, from its current length.
    pub fn whole(file: std::fs::File) -> io::Result<FileBody> {
        let len = file.metadata()?.len();
        Ok(FileBody::new(file, 0, len))
    }

    /// The number of bytes to send.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The boxed stream behind a [`Body::Stream`].
type ChunkStream = Pin<Box<dyn Stream<Item = io::Result<Vec<u8>>> + Send>>;

/// A stream of body chunks, sent as a [`Body::Stream`].
///
/// The stream sits behind a `Mutex` only so that a [`Response`] stays
/// `Sync`; the server reaches it through `&mut` (`Mutex::get_mut`), which
/// never locks.
pub struct StreamBody {
    stream: Mutex<ChunkStream>,
    len: Option<u64>,
}

impl StreamBody {
    /// The next chunk (empty chunks are skipped by the sender), or an error
    /// if the stream gave one or panicked: the response cannot be
    /// completed, and ending it as if the stream had ended would pass a
    /// truncated body off as whole.
    pub(crate) fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Vec<u8>>>> {
        // `get_mut` takes no lock, so the mutex is never poisoned.
        let s = self.stream.get_mut().unwrap_or_else(|e| e.into_inner());
        match crate::server::guarded(|| s.as_mut().poll_next(cx)) {
            Some(p) => p.map(Option::transpose),
            None => Poll::Ready(Err(io::Error::other("the body stream panicked"))),
        }
    }
}

/// The stream's destructor is the handler's code: a panic there is caught
/// (see `server::quietly`), so that the answer, and the connection, go on.
impl Drop for StreamBody {
    fn drop(&mut self) {
        let s = self.stream.get_mut().unwrap_or_else(|e| e.into_inner());
        let stream = std::mem::replace(s, Box::pin(Ended));
        crate::server::quietly(move || drop(stream));
    }
}

/// What a [`StreamBody`] holds once its stream was dropped.
struct Ended;

impl Stream for Ended {
    type Item = io::Result<Vec<u8>>;

    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(None)
    }
}

/// A stream of chunks that cannot fail, as one of results. Its stream is
/// boxed (so `Unpin`) for a safe projection.
struct Sure(Pin<Box<dyn Stream<Item = Vec<u8>> + Send>>);

impl Stream for Sure {
    type Item = io::Result<Vec<u8>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.as_mut().poll_next(cx).map(|c| c.map(Ok))
    }
}

impl fmt::Debug for StreamBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamBody")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Body {
    /// A body streamed from `stream` (any `Stream` of byte vectors), of
    /// unknown length: sent chunked to HTTP/1.1 clients, until close to
    /// HTTP/1.0 ones.
    ///
    /// The end of the stream is the end of the body. A `coro`
    /// [`SendAsyncGen`](coro::SendAsyncGen) is a stream that also ends
    /// where its body fails (a misuse of `coro`, reported by its resumes):
    /// make it a body with [`Body::from`] (or [`Body::generate`]), which
    /// tells the two apart and leaves the answer to a failed body
    /// unfinished, as [`Body::try_stream`] does at an `Err`.
    pub fn stream(stream: impl Stream<Item = Vec<u8>> + Send + 'static) -> Body {
        Body::try_stream(Sure(Box::pin(stream)))
    }

    /// A body streamed from `stream`, as [`Body::stream`] is, whose chunks
    /// may fail: at an `Err`, the stream is dropped and the answer left
    /// unfinished, so that no client takes what went out for the whole
    /// body. A chunked body is not terminated and its connection closes;
    /// one sent until the close is reset. An `Err` before anything of the
    /// answer went out is answered 500 instead (and the connection
    /// closes). The error itself is not sent.
    ///
    /// ```
    /// use minihttp::{Body, Response};
    ///
    /// // A body relayed from a source that may fail halfway.
    /// let relayed = coro::SendAsyncGen::new_send(|co| async move {
    ///     co.yield_(Ok(b"first part, ".to_vec())).await;
    ///     let lost = std::io::Error::other("the source went away");
    ///     co.yield_(Err(lost)).await;
    /// });
    /// let mut r = Response::text("");
    /// r.set_body(Body::try_stream(relayed));
    /// assert_eq!(r.body().len(), None);
    /// ```
    pub fn try_stream(stream: impl Stream<Item = io::Result<Vec<u8>>> + Send + 'static) -> Body {
        Body::Stream(StreamBody {
            stream: Mutex::new(Box::pin(stream)),
            len: None,
        })
    }

    /// A body streamed from a generator: `producer` receives the
    /// generator's [`Co`](coro::Co) and returns its body, which yields the
    /// chunks (`co.yield_(bytes).await`) and may await timers, sockets or
    /// anything else in between. Sent as [`Body::stream`] is; a body that
    /// fails (a [`GenError`](coro::GenError) its resumes would report)
    /// leaves the answer unfinished, as an `Err` of [`Body::try_stream`]
    /// does.
    ///
    /// ```
    /// use minihttp::{Body, Response};
    ///
    /// let countdown = Body::generate(|co| async move {
    ///     for n in (1..=3).rev() {
    ///         co.yield_(format!("{n}...\n").into_bytes()).await;
    ///     }
    ///     co.yield_(b"liftoff\n".to_vec()).await;
    /// });
    /// let mut r = Response::text("");
    /// r.set_body(countdown);
    /// assert_eq!(r.body().len(), None);
    /// ```
    pub fn generate<F, Fut>(producer: F) -> Body
    where
        F: FnOnce(coro::Co<Vec<u8>>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        Body::from(coro::SendAsyncGen::new_send(producer))
    }

    /// A body streamed from `stream` that will be exactly `len` bytes long
    /// (sent with `Content-Length`; a stream that does not keep the promise
    /// has its connection closed, or, when it ends short before anything
    /// of the answer went out, is answered 500). Once `len` bytes are out, the stream is
    /// polled only while it is ready: an end or more bytes are seen, but a
    /// stream that stays pending is dropped and the answer is whole.
    pub fn stream_with_len(stream: impl Stream<Item = Vec<u8>> + Send + 'static, len: u64) -> Body {
        Body::Stream(StreamBody {
            stream: Mutex::new(Box::pin(Sure(Box::pin(stream)))),
            len: Some(len),
        })
    }

    /// The whole of an open file.
    pub fn file(file: std::fs::File) -> io::Result<Body> {
        FileBody::whole(file).map(Body::File)
    }

    /// The length in bytes, when known up front.
    pub fn len(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Bytes(b) => Some(b.len() as u64),
            Body::File(f) => Some(f.len),
            Body::Stream(s) => s.len,
        }
    }

    /// Whether the body is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// The bytes of an in-memory body (empty for [`Body::Empty`]); `None`
    /// for a file or a stream.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Body::Empty => Some(&[]),
            Body::Bytes(b) => Some(b),
            Body::File(_) | Body::Stream(_) => None,
        }
    }
}

/// A generator's chunks, streamed as [`Body::generate`] says.
impl From<coro::SendAsyncGen<Vec<u8>>> for Body {
    fn from(generator: coro::SendAsyncGen<Vec<u8>>) -> Body {
        Body::try_stream(Generated(generator))
    }
}

/// A generator's chunks as results: where its body failed, the error its
/// resume would have returned, so that the answer is left unfinished.
struct Generated(coro::SendAsyncGen<Vec<u8>>);

impl Stream for Generated {
    type Item = io::Result<Vec<u8>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0
            .try_poll_next(cx)
            .map(|chunk| chunk.map(|c| c.map_err(io::Error::other)))
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Body {
        Body::Bytes(Cow::Owned(v))
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body::Bytes(Cow::Owned(s.into_bytes()))
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body::Bytes(Cow::Borrowed(s.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Body {
        Body::Bytes(Cow::Borrowed(s))
    }
}

/// An HTTP response: status, header fields and body.
///
/// The server adds `Date` (a handler's own is dropped: one per message),
/// `Server` (unless set), and the framing fields `Content-Length` /
/// `Transfer-Encoding` / `Connection` itself. A 1xx status is not a final
/// answer: the server answers 500 instead. A 205 is sent without content.
///
/// ```
/// use minihttp::{Response, StatusCode};
/// let r = Response::text("hi");
/// assert_eq!(r.status(), StatusCode::OK);
/// assert_eq!(r.headers().get("content-type"), Some("text/plain; charset=utf-8"));
///
/// let r = Response::builder()
///     .status(StatusCode::CREATED)
///     .header("Location", "/items/7")
///     .body("made")
///     .unwrap();
/// assert_eq!(r.body().as_bytes(), Some(&b"made"[..]));
/// ```
#[derive(Debug, Default)]
pub struct Response {
    status: StatusCode,
    headers: Headers,
    body: Body,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: StatusCode) -> Response {
        Response {
            status,
            headers: Headers::new(),
            body: Body::Empty,
        }
    }

    /// A builder, starting from `200 OK` with no fields and no body.
    pub fn builder() -> ResponseBuilder {
        ResponseBuilder {
            response: Response::default(),
            error: None,
        }
    }

    /// `200 OK` with a `text/plain; charset=utf-8` body.
    pub fn text(body: impl Into<Body>) -> Response {
        Response::with_type(StatusCode::OK, "text/plain; charset=utf-8", body)
    }

    /// `200 OK` with a `text/html; charset=utf-8` body.
    pub fn html(body: impl Into<Body>) -> Response {
        Response::with_type(StatusCode::OK, "text/html; charset=utf-8", body)
    }

    /// A response with `status`, a `Content-Type` and a body.
    pub(crate) fn with_type(
        status: StatusCode,
        content_type: &'static str,
        body: impl Into<Body>,
    ) -> Response {
        // Made whole, rather than changed after `new`: no drop of a
        // replaced body, and one fewer move (this is every handler's path).
        Response {
            status,
            headers: Headers::one_static("content-type", content_type),
            body: body.into(),
        }
    }

    /// A plain-text response whose body is the status line's reason, for
    /// error pages (`404 Not Found`). For a status that has no content
    /// (1xx, 204, 304), an empty response with no `Content-Type` either:
    /// a cache takes the fields of a 304 for the stored response's
    /// (RFC 9111, section 4.3.4).
    pub fn error(status: StatusCode) -> Response {
        if status.forbids_body() {
            return Response::new(status);
        }
        let mut text = format!("{} {}", status.as_u16(), status.reason());
        text.push('\n');
        Response::with_type(status, "text/plain; charset=utf-8", text)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Sets the status.
    pub fn set_status(&mut self, status: StatusCode) {
        self.status = status;
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The header fields, to change.
    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// Sets the body.
    pub fn set_body(&mut self, body: impl Into<Body>) {
        self.body = body.into();
    }

    /// Takes the body out.
    pub fn into_body(self) -> Body {
        self.body
    }

    /// Takes the body out, leaving [`Body::Empty`].
    pub fn take_body(&mut self) -> Body {
        std::mem::take(&mut self.body)
    }
}

/// Builds a [`Response`]; the first invalid header is reported by
/// [`body`](ResponseBuilder::body) / [`build`](ResponseBuilder::build).
#[derive(Debug)]
pub struct ResponseBuilder {
    response: Response,
    error: Option<Error>,
}

impl ResponseBuilder {
    /// Sets the status.
    pub fn status(mut self, status: StatusCode) -> Self {
        self.response.status = status;
        self
    }

    /// Appends a header field.
    pub fn header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Self {
        if self.error.is_none() {
            self.error = self.response.headers.append(name, value).err();
        }
        self
    }

    /// Finishes with a body.
    pub fn body(mut self, body: impl Into<Body>) -> Result<Response, Error> {
        self.response.body = body.into();
        self.build()
    }

    /// Finishes with the body set so far (empty by default).
    pub fn build(self) -> Result<Response, Error> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.response),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_reports_first_bad_header() {
        let err = Response::builder()
            .header("ok", "1")
            .header("bad\n", "2")
            .header("x y", "3")
            .build();
        assert!(err.unwrap_err().is_invalid_header());
        assert_eq!(
            Response::error(StatusCode::NOT_FOUND).body().as_bytes(),
            Some(&b"404 Not Found\n"[..])
        );
        let not_modified = Response::error(StatusCode::NOT_MODIFIED);
        assert!(not_modified.body().is_empty());
        assert_eq!(not_modified.headers().get("content-type"), None);
        assert_eq!(Body::from(vec![1, 2]).len(), Some(2));
        assert_eq!(Body::from(String::from("abc")).len(), Some(3));
        assert_eq!(Body::from(&b"ab"[..]).len(), Some(2));
    }
}
