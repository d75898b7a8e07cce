//! The request handed to handlers.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use crate::body_stream::{BodyStream, PipeReader};
use crate::error::{Error, Kind};
use crate::method::{Method, Version};
use crate::{pct, spare};

/// A byte range inside [`Request::head`]; `u32` keeps the header index small
/// (heads are capped far below 4 GiB by [`Limits::max_head`](crate::Limits)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    fn get(self, bytes: &[u8]) -> &[u8] {
        &bytes[self.start as usize..self.end as usize]
    }

    fn str(self, bytes: &[u8]) -> &str {
        // Spans given to `str` cover bytes that the head parser checked
        // to be ASCII; a failure can only mean an empty answer.
        std::str::from_utf8(self.get(bytes)).unwrap_or_default()
    }
}

/// An HTTP request: method, target, version, header fields and body.
///
/// The request owns one copy of its head bytes; the target, the header names
/// and the values are ranges inside it, so parsing copies the head once and
/// allocates nothing per field (and, on a thread that dropped a request
/// before, nothing at all but a body).
///
/// ```
/// let req = minihttp::Request::parse(
///     b"POST /greet/w%C3%B6rld?x=1&name=a+b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi",
/// ).unwrap();
/// assert_eq!(req.method(), &minihttp::Method::POST);
/// assert_eq!(req.path(), "/greet/wörld");
/// assert_eq!(req.query("name").as_deref(), Some("a b"));
/// assert_eq!(req.header("HOST"), Some("h"));
/// assert_eq!(req.body(), b"hi");
/// ```
pub struct Request {
    /// `None` only while the request is dropped, when its parts become
    /// this thread's spare (see [`parts`]). Boxed so that a request is one
    /// pointer: it is moved several times on its way to the handler, and a
    /// larger value is copied each time, through memory the copy has just
    /// written.
    parts: Option<Box<Parts>>,
}

/// What a [`Request`] holds.
pub(crate) struct Parts {
    /// The head bytes, then the header index: per field, the spans of its
    /// name and value as four little-endian `u32`s. One allocation for
    /// both (see [`Request::index`]).
    pub(crate) bytes: Vec<u8>,
    /// Where the head ends in `bytes`.
    pub(crate) head_len: u32,
    pub(crate) method: Method,
    pub(crate) version: Version,
    pub(crate) target: Span,
    /// Empty for an absolute-form target without a path, which means `/`.
    pub(crate) path: Span,
    pub(crate) query: Option<Span>,
    /// What fewer requests carry (a body, path parameters), made on first
    /// use.
    pub(crate) extra: Option<Box<Extra>>,
}

impl Parts {
    const EMPTY: Parts = Parts {
        bytes: Vec::new(),
        head_len: 0,
        method: Method::GET,
        version: Version::Http11,
        target: Span { start: 0, end: 0 },
        path: Span { start: 0, end: 0 },
        query: None,
        extra: None,
    };
}

/// The rarely used parts of a [`Request`].
#[derive(Default)]
pub(crate) struct Extra {
    /// The buffered body.
    pub(crate) body: Vec<u8>,
    /// The body still on the connection, when the server streams bodies.
    pub(crate) stream: Option<PipeReader>,
    pub(crate) params: Vec<(Box<str>, String)>,
}

/// What [`Request::p`] shows of a request being dropped.
static NO_PARTS: Parts = Parts::EMPTY;

/// Parts whose buffer is at most this size are kept for the next request
/// (see [`parts`]).
const SPARE_CAPACITY: usize = 2048;

thread_local! {
    /// The parts of the last request dropped on this thread. A hub parses
    /// a request, runs its handler (which drops it, mostly before the next
    /// one is parsed), then parses the next: one spare saves two
    /// allocations and two frees per request.
    static SPARE: spare::Slot<Box<Parts>> = const { Cell::new(None) };
}

/// Parts to fill, with an empty buffer that has room for `len` bytes: this
/// thread's spare ones if there are any, else new ones.
pub(crate) fn parts(len: usize) -> Box<Parts> {
    match spare::take(&SPARE) {
        Some(mut spare) => {
            spare.bytes.reserve(len);
            spare
        }
        None => Box::new(Parts {
            bytes: Vec::with_capacity(len),
            ..Parts::EMPTY
        }),
    }
}

impl Drop for Request {
    /// Keeps small parts as this thread's spare.
    fn drop(&mut self) {
        let Some(mut parts) = self.parts.take() else {
            return;
        };
        if parts.bytes.capacity() > SPARE_CAPACITY {
            return;
        }
        parts.bytes.clear();
        parts.extra = None;
        spare::keep(&SPARE, parts);
    }
}

/// Bytes per header field in the index of [`Parts::bytes`].
pub(crate) const INDEX_ENTRY: usize = 16;

/// Appends a header field's entry to a request's index.
pub(crate) fn push_index(bytes: &mut Vec<u8>, name: Span, value: Span) {
    let mut entry = [0u8; INDEX_ENTRY];
    for (i, n) in [name.start, name.end, value.start, value.end]
        .into_iter()
        .enumerate()
    {
        entry[i * 4..i * 4 + 4].copy_from_slice(&n.to_le_bytes());
    }
    // One piece: one check of the room left, one 16-byte copy.
    bytes.extend_from_slice(&entry);
}

impl Request {
    /// A request of `parts`.
    pub(crate) fn from_parts(parts: Box<Parts>) -> Request {
        Request { parts: Some(parts) }
    }

    /// What the request holds (always there but while it is dropped).
    fn p(&self) -> &Parts {
        self.parts.as_deref().unwrap_or(&NO_PARTS)
    }

    /// What the request holds, to change.
    pub(crate) fn p_mut(&mut self) -> &mut Parts {
        self.parts.get_or_insert_with(|| Box::new(Parts::EMPTY))
    }

    /// The head bytes.
    fn head_bytes(&self) -> &[u8] {
        let p = self.p();
        p.bytes.get(..p.head_len as usize).unwrap_or_default()
    }

    /// The header index: (name, value) spans inside the head.
    fn index(&self) -> impl ExactSizeIterator<Item = (Span, Span)> + '_ {
        let p = self.p();
        let index = p.bytes.get(p.head_len as usize..).unwrap_or_default();
        index.chunks_exact(INDEX_ENTRY).map(|e| {
            let n = |i: usize| u32::from_le_bytes([e[i], e[i + 1], e[i + 2], e[i + 3]]);
            (
                Span {
                    start: n(0),
                    end: n(4),
                },
                Span {
                    start: n(8),
                    end: n(12),
                },
            )
        })
    }

    /// The rarely used parts, made on first use.
    pub(crate) fn extra_mut(&mut self) -> &mut Extra {
        self.p_mut().extra.get_or_insert_with(Box::default)
    }

    fn params_slice(&self) -> &[(Box<str>, String)] {
        self.p().extra.as_deref().map_or(&[], |e| &e.params)
    }
}

impl Request {
    /// Parses one complete request (head and body) with the default
    /// [`Limits`](crate::Limits); bytes after it are ignored. Handy for tests
    /// of handlers. An incomplete request is an error
    /// ([`is_incomplete`](Error::is_incomplete)).
    pub fn parse(bytes: &[u8]) -> Result<Request, Error> {
        let mut conn = crate::Conn::new(crate::Limits::default());
        let mut buf = crate::ReadBuf::new();
        buf.extend_from_slice(bytes);
        conn.read_eof();
        loop {
            match conn.poll_request(&mut buf)? {
                crate::Next::Request(req) => return Ok(req),
                crate::Next::Continue => continue,
                crate::Next::NeedMore | crate::Next::Close => {
                    return Err(Error::new(Kind::Incomplete));
                }
            }
        }
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.p().method
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.p().version
    }

    /// The request target as sent: `/path?query`, an absolute URL or `*`.
    pub fn target(&self) -> &str {
        self.p().target.str(self.head_bytes())
    }

    /// The path as sent, still percent-encoded: `*` for an asterisk-form
    /// target, and for an `OPTIONS` one in absolute form with neither path
    /// nor query (`OPTIONS http://host`, which asks about the server as
    /// `OPTIONS *` does: RFC 9112, section 3.2.4); `/` for another
    /// absolute-form target without a path.
    pub fn path_raw(&self) -> &str {
        let p = self.p();
        if p.path.start == p.path.end {
            if p.method == Method::OPTIONS && p.query.is_none() {
                "*"
            } else {
                "/"
            }
        } else {
            self.p().path.str(self.head_bytes())
        }
    }

    /// The path, percent-decoded. Lenient: a `%` without two hex digits is
    /// kept as is, invalid UTF-8 becomes U+FFFD. Code that maps paths to
    /// files should decode [`path_raw`](Request::path_raw) strictly instead
    /// (as [`StaticFiles`](crate::StaticFiles) does).
    pub fn path(&self) -> Cow<'_, str> {
        pct::decode_lossy(self.path_raw(), false)
    }

    /// The query string after `?`, still encoded; `None` without a `?`.
    pub fn query_raw(&self) -> Option<&str> {
        self.p().query.map(|q| q.str(self.head_bytes()))
    }

    /// The `name=value` pairs of the query, form-decoded (`+` is a space,
    /// `%XX` escapes decoded leniently).
    pub fn query_pairs(&self) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> + '_ {
        self.query_raw()
            .unwrap_or("")
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (pct::decode_lossy(k, true), pct::decode_lossy(v, true))
            })
    }

    /// The first query value for `name`, form-decoded.
    pub fn query(&self, name: &str) -> Option<Cow<'_, str>> {
        self.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The first value of header `name` (case-insensitive), if it is UTF-8.
    ///
    /// For a request whose target is in absolute form
    /// (`GET http://host:port/path`), the `Host` field's value is the
    /// target's authority, as RFC 9112 (section 3.2.2) asks: the field
    /// sent is checked, then ignored. (An HTTP/1.0 request may send no
    /// `Host` field: there is then none, and the authority is in
    /// [`target`](Request::target).)
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The first value of header `name` (case-insensitive) as bytes
    /// (field values may carry non-ASCII `obs-text`).
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        let head = self.head_bytes();
        self.index()
            .find(|(n, _)| n.get(head).eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.get(head))
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        let head = self.head_bytes();
        self.index()
            .filter(move |(n, _)| n.get(head).eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.get(head))
    }

    /// Every header field as sent, in order (but for `Host` under an
    /// absolute-form target: see [`header`](Request::header)).
    pub fn headers(&self) -> impl ExactSizeIterator<Item = (&str, &[u8])> + '_ {
        let head = self.head_bytes();
        self.index().map(|(n, v)| (n.str(head), v.get(head)))
    }

    /// The raw request head as received (request line through the empty
    /// line), without leading empty lines.
    pub fn head(&self) -> &[u8] {
        self.head_bytes()
    }

    /// The body, decoded from its `Content-Length` or chunked framing.
    ///
    /// Empty when the body is streamed ([`is_body_streamed`]): read it
    /// with [`body_stream`](Request::body_stream) instead.
    ///
    /// [`is_body_streamed`]: Request::is_body_streamed
    pub fn body(&self) -> &[u8] {
        self.p().extra.as_deref().map_or(&[], |e| &e.body)
    }

    /// Takes the buffered body out of the request (empty when the body is
    /// streamed).
    pub fn into_body(mut self) -> Vec<u8> {
        self.p_mut()
            .extra
            .take()
            .map(|e| e.body)
            .unwrap_or_default()
    }

    /// Whether the body is still on the connection, to be read with
    /// [`body_stream`](Request::body_stream): the server streams bodies
    /// ([`Server::stream_bodies`](crate::Server::stream_bodies)) and this
    /// request has one that has not been taken yet.
    pub fn is_body_streamed(&self) -> bool {
        self.p().extra.as_ref().is_some_and(|e| e.stream.is_some())
    }

    /// Takes the body out as a [`BodyStream`] to read incrementally: the
    /// body still on the connection when it is streamed, else the buffered
    /// body (which [`body`](Request::body) then no longer shows). Later
    /// calls give an empty stream.
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// let mut req = minihttp::Request::parse(
    ///     b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    /// )?;
    /// assert_eq!(req.body_stream().read_all().await?, b"abc");
    /// assert!(req.body().is_empty());
    /// # Ok::<(), minihttp::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn body_stream(&mut self) -> BodyStream {
        match self.p_mut().extra.as_mut().and_then(|e| e.stream.take()) {
            Some(reader) => BodyStream::from_pipe(reader),
            None => BodyStream::from_bytes(
                self.p_mut()
                    .extra
                    .as_mut()
                    .map(|e| std::mem::take(&mut e.body))
                    .unwrap_or_default(),
            ),
        }
    }

    /// The value of path parameter `name` set by the [`Router`](crate::Router)
    /// (percent-decoded).
    ///
    /// Decoded, a value may hold `/` and `..` (`%2F`, or dot segments the
    /// router leaves in place): never join it onto a directory. To serve
    /// files under a route, use
    /// [`StaticFiles::serve_under`](crate::StaticFiles::serve_under), or
    /// [`files::resolve`](crate::files::resolve) on the raw path.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params_slice()
            .iter()
            .find(|(k, _)| &**k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every path parameter set by the [`Router`](crate::Router).
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.params_slice().iter().map(|(k, v)| (&**k, v.as_str()))
    }
}

impl Clone for Request {
    /// A copy of the request; a streamed body stays with the original (the
    /// copy's body is empty and not streamed).
    fn clone(&self) -> Request {
        let p = self.p();
        Request::from_parts(Box::new(Parts {
            bytes: p.bytes.clone(),
            head_len: p.head_len,
            method: p.method.clone(),
            version: p.version,
            target: p.target,
            path: p.path,
            query: p.query,
            extra: p.extra.as_ref().map(|e| {
                Box::new(Extra {
                    body: e.body.clone(),
                    stream: None,
                    params: e.params.clone(),
                })
            }),
        }))
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Headers<'a>(&'a Request);
        impl fmt::Debug for Headers<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(
                        self.0
                            .headers()
                            .map(|(n, v)| (n, String::from_utf8_lossy(v))),
                    )
                    .finish()
            }
        }
        f.debug_struct("Request")
            .field("method", &self.p().method)
            .field("target", &self.target())
            .field("version", &self.p().version)
            .field("headers", &Headers(self))
            .field("body_len", &self.body().len())
            .field("body_streamed", &self.is_body_streamed())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::ptr;

    use super::*;

    #[test]
    fn a_dropped_request_leaves_its_parts_for_the_next() {
        let req = Request::parse(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        let (at, buf) = (ptr::from_ref(req.p()), req.p().bytes.as_ptr());
        drop(req);
        let reused = parts(8);
        assert_eq!(ptr::from_ref(&*reused), at);
        assert_eq!((reused.bytes.as_ptr(), reused.bytes.len()), (buf, 0));
        // Taken: the next parts are new ones.
        let fresh = parts(8);
        assert_ne!(ptr::from_ref(&*fresh), at);
        // Parts with a buffer too large for a spare are freed.
        let mut big = Request::from_parts(parts(SPARE_CAPACITY + 1));
        big.extra_mut().body.push(1);
        drop(big);
        assert!(parts(0).bytes.capacity() <= SPARE_CAPACITY);
        // A later request parses the same with reused parts: nothing of
        // the earlier one shows.
        let mut earlier =
            Request::parse(b"POST /b?q=1 HTTP/1.0\r\nContent-Length: 1\r\n\r\nx").unwrap();
        earlier.extra_mut().params.push(("k".into(), "v".into()));
        let at = ptr::from_ref(earlier.p());
        drop(earlier);
        let again = Request::parse(b"GET /c HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(ptr::from_ref(again.p()), at, "the parts were reused");
        assert_eq!(
            (
                again.method(),
                again.version(),
                again.path_raw(),
                again.query_raw()
            ),
            (&Method::GET, Version::Http11, "/c", None)
        );
        assert_eq!(
            (again.header("host"), again.headers().len()),
            (Some("h"), 1)
        );
        assert_eq!((again.body(), again.param("k")), (&b""[..], None));
    }

    #[test]
    fn accessors() {
        let req = Request::parse(
            b"GET http://example.com HTTP/1.1\r\nHost: example.com\r\nX-Bin: \xff\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
        )
        .unwrap();
        assert_eq!(req.path_raw(), "/");
        assert_eq!(req.query_raw(), None);
        assert_eq!(req.header("x-bin"), None);
        assert_eq!(req.header_bytes("x-bin"), Some(&b"\xff"[..]));
        assert_eq!(req.header_all("X-A").collect::<Vec<_>>(), [b"1", b"2"]);
        assert_eq!(req.headers().len(), 4);
        assert!(format!("{req:?}").contains("example.com"));
        // An absolute-form target's authority stands for `Host` (RFC 9112,
        // section 3.2.2), wherever the field is.
        let req = Request::parse(
            b"GET http://b.example:8080/p?q HTTP/1.1\r\nX: 1\r\nHOST: a\r\nY: 2\r\n\r\n",
        )
        .unwrap();
        assert_eq!(req.header("host"), Some("b.example:8080"));
        assert_eq!(
            req.headers().collect::<Vec<_>>(),
            [("X", &b"1"[..]), ("HOST", b"b.example:8080"), ("Y", b"2")]
        );
        assert_eq!((req.path_raw(), req.query_raw()), ("/p", Some("q")));
        assert_eq!(
            req.target(),
            "http://b.example:8080/p?q",
            "the target as sent"
        );

        let req = Request::parse(b"GET /a%2Fb?q=%zz&e=&k&a=1=2 HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(req.version(), Version::Http10);
        assert_eq!(req.path(), "/a/b");
        assert_eq!(req.target(), "/a%2Fb?q=%zz&e=&k&a=1=2");
        let pairs: Vec<_> = req
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(
            pairs,
            [("q", "%zz"), ("e", ""), ("k", ""), ("a", "1=2")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert_eq!(req.query("missing"), None);
        assert_eq!(req.head(), b"GET /a%2Fb?q=%zz&e=&k&a=1=2 HTTP/1.0\r\n\r\n");

        let req = Request::parse(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(req.path_raw(), "*");
        // The absolute form of `OPTIONS *`; with a path or a query, a
        // resource's.
        for (target, path) in [
            ("http://h", "*"),
            ("http://h/", "/"),
            ("http://h?q", "/"),
            ("http://h:80", "*"),
        ] {
            let head = format!("OPTIONS {target} HTTP/1.1\r\nHost: h\r\n\r\n");
            let req = Request::parse(head.as_bytes()).unwrap();
            assert_eq!(req.path_raw(), path, "{target}");
        }
        let req = Request::parse(b"GET http://h HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(req.path_raw(), "/");
        assert!(
            Request::parse(b"GET / HTTP/1.1\r\nHost: h\r\n")
                .unwrap_err()
                .is_incomplete()
        );
    }
}
