//! Incremental, zero-copy parsing of a request head on `httparse`, and the
//! checks that turn a syntactically valid head into a safe one: limits,
//! `Host`, and the framing rules that stop request smuggling.

use std::mem::MaybeUninit;

use crate::body::BodyKind;
use crate::error::{Error, Kind};
use crate::limits::Limits;
use crate::method::{MAX_METHOD_LEN, Method, Version, eq_lower, is_tchar};
use crate::request::{INDEX_ENTRY, Request, Span, push_index};

/// The result of feeding bytes to an incremental parser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed<T> {
    /// More bytes are needed; call again with the same bytes and more.
    Partial,
    /// Done: the value, which says how many bytes it consumed.
    Complete(T),
}

/// A parsed and checked request head: the [`Request`] without its body, and
/// what the connection needs to read the body and answer.
#[derive(Debug)]
pub struct Head {
    request: Request,
    // `u32`: heads are at most `u32::MAX` bytes (`parse_head` caps them).
    len: u32,
    body: BodyKind,
    keep_alive: bool,
    expect_continue: bool,
}

impl Head {
    /// Bytes of the input the head took, from the first byte to the end of
    /// the empty line; the body starts right after.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Always false: a head has at least a request line.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How the body is framed.
    pub fn body(&self) -> BodyKind {
        self.body
    }

    /// Whether the client lets the connection persist after this exchange
    /// (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
    /// `Connection: keep-alive`).
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Whether an HTTP/1.1 client sent `Expect: 100-continue` and waits for
    /// `100 Continue` before sending its body.
    pub fn expect_continue(&self) -> bool {
        self.expect_continue
    }

    /// The request, with an empty body.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Takes the request out, with an empty body.
    pub fn into_request(self) -> Request {
        self.request
    }
}

/// Header slots on the stack; `max_headers` above this uses the heap.
const STACK_HEADERS: usize = 128;

/// Parses a request head from the start of `buf`.
///
/// Call it with everything received so far; `Partial` asks for more bytes,
/// `Complete(head)` says [`head.len()`](Head::len) bytes were used. Leading
/// empty lines are skipped (and counted in the length). The head is checked
/// against `limits` and RFC 9112's rules; each violation is an [`Error`]
/// whose [`status()`](Error::status) is the answer to send before closing.
/// Of the limits and the syntax, the first rule the bytes break is
/// reported (a limit passed after a malformed byte does not hide it);
/// the rules on a complete head (framing, `Host`, lengths) are checked in
/// a fixed order. Either way the answer is the same whichever prefixes of
/// the bytes it is called with as they arrive.
///
/// ```
/// use minihttp::{parse_head, Limits, Parsed};
/// let limits = Limits::default();
/// let raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next";
/// assert!(matches!(parse_head(&raw[..10], &limits), Ok(Parsed::Partial)));
/// let Ok(Parsed::Complete(head)) = parse_head(raw, &limits) else { panic!() };
/// assert_eq!(head.len(), 27);
/// let err = parse_head(b"GET / HTTP/2.0\r\n\r\n", &limits).unwrap_err();
/// assert_eq!(err.status().as_u16(), 505);
/// // A space in the target, or a version cut short, is malformed.
/// let err = parse_head(b"GET /a b HTTP/1.1\r\n\r\n", &limits).unwrap_err();
/// assert_eq!(err.status().as_u16(), 400);
/// let err = parse_head(b"GET / HTTP/1\r\n\r\n", &limits).unwrap_err();
/// assert_eq!(err.status().as_u16(), 400);
/// ```
pub fn parse_head(buf: &[u8], limits: &Limits) -> Result<Parsed<Head>, Error> {
    parse_once(buf, limits).map_err(|e| first_error(buf, limits, e))
}

/// The error of the shortest prefix of `buf` that fails to parse, which
/// `buf` does with `err`: the error a client that sends `buf` a byte at
/// a time is answered with, so that the answer does not depend on how the
/// bytes arrived. (A longer prefix may fail differently: a line whose
/// version is already malformed within its limit, and too long after it,
/// is malformed.) A prefix that fails goes on failing with more bytes,
/// so a binary search finds the shortest: about log2 of the head's limit
/// more parses (15 under the default 32 KiB), each of at most that limit,
/// of a head that is about to be refused, never of one that parses.
#[cold]
fn first_error(buf: &[u8], limits: &Limits, mut err: Error) -> Error {
    // `buf[..passes]` does not fail (the empty prefix is `Partial`),
    // `buf[..fails]` fails with `err`.
    let (mut passes, mut fails) = (0, buf.len());
    // A prefix one byte over the head's limit fails too (it cannot hold a
    // complete head, or the whole would parse): the search starts there,
    // whatever else is buffered after it.
    let over = head_limit(limits).saturating_add(1);
    if over < fails {
        if let Err(e) = parse_once(&buf[..over], limits) {
            (fails, err) = (over, e);
        }
    }
    while fails - passes > 1 {
        let mid = passes + (fails - passes) / 2;
        match parse_once(&buf[..mid], limits) {
            Err(e) => (fails, err) = (mid, e),
            Ok(_) => passes = mid,
        }
    }
    err
}

/// The head's limit as applied: a head's length is kept in a `u32`.
fn head_limit(limits: &Limits) -> usize {
    limits.max_head.min(u32::MAX as usize)
}

/// [`parse_head`] of `buf` alone, without looking for an earlier error in
/// its prefixes.
fn parse_once(buf: &[u8], limits: &Limits) -> Result<Parsed<Head>, Error> {
    let mut stack = [MaybeUninit::<httparse::Header<'_>>::uninit(); STACK_HEADERS];
    let mut heap;
    // A field line takes three bytes at least (`a:` and its line end): no
    // more slots than `buf` can fill, whatever the limit (which may be
    // `usize::MAX`), so that the limit is still what refuses a head.
    let max_headers = limits.max_headers.min(buf.len() / 3 + 1);
    let slots: &mut [MaybeUninit<httparse::Header<'_>>] = if max_headers <= STACK_HEADERS {
        &mut stack[..max_headers]
    } else {
        heap = vec![MaybeUninit::uninit(); max_headers];
        &mut heap
    };
    let mut req = httparse::Request::new(&mut []);
    let max_head = head_limit(limits);
    match req.parse_with_uninit_headers(buf, slots) {
        Ok(httparse::Status::Complete(len)) => {
            if req.method.map_or(0, str::len) > MAX_METHOD_LEN {
                return Err(Error::new(Kind::Method));
            }
            // `METHOD SP target SP HTTP/1.x`: httparse allows single spaces only.
            let line = req.method.map_or(0, str::len) + req.path.map_or(0, str::len) + 10;
            if line > limits.max_request_line {
                return Err(Error::new(Kind::RequestLineTooLong));
            }
            if len > max_head {
                return Err(Error::new(Kind::HeadTooLarge));
            }
            check(&req, &buf[..len], limits).map(Parsed::Complete)
        }
        Ok(httparse::Status::Partial) => {
            if method_too_long(buf) {
                Err(Error::new(Kind::Method))
            } else if request_line_too_long(buf, limits.max_request_line) {
                Err(Error::new(Kind::RequestLineTooLong))
            } else if buf.len() > max_head {
                Err(Error::new(Kind::HeadTooLarge))
            } else {
                Ok(Parsed::Partial)
            }
        }
        Err(httparse::Error::TooManyHeaders) => Err(Error::new(Kind::TooManyHeaders)),
        Err(_) if method_too_long(buf) => Err(Error::new(Kind::Method)),
        Err(_) if request_line_too_long(buf, limits.max_request_line) => {
            Err(Error::new(Kind::RequestLineTooLong))
        }
        Err(httparse::Error::Version) => match version_check(buf) {
            VersionCheck::Refuse(e) => Err(e),
            VersionCheck::LaterMinor(at) if at >= max_head => Err(Error::new(Kind::HeadTooLarge)),
            VersionCheck::LaterMinor(at) => {
                // Parsed as HTTP/1.1 from a copy with that minor version:
                // the head's spans are offsets, the same in both. One byte
                // past the limit is enough to tell a head that is too
                // large.
                let mut copy = buf[..buf.len().min(max_head.saturating_add(1))].to_vec();
                copy[at] = b'1';
                let mut parsed = parse_once(&copy, limits)?;
                if let Parsed::Complete(head) = &mut parsed {
                    // The head as received: its minor version put back (the
                    // head is kept without the leading empty lines).
                    let in_head = at - leading_empty_lines(buf);
                    head.request.p_mut().bytes[in_head] = buf[at];
                }
                Ok(parsed)
            }
            VersionCheck::Wait if buf.len() > max_head => Err(Error::new(Kind::HeadTooLarge)),
            VersionCheck::Wait => Ok(Parsed::Partial),
        },
        Err(_) => Err(Error::new(Kind::Malformed)),
    }
}

/// Length of the empty lines (`CRLF` or bare `LF`) before the request line.
pub(crate) fn leading_empty_lines(buf: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match buf.get(i..i + 2) {
            Some(b"\r\n") => i += 2,
            _ if buf.get(i) == Some(&b'\n') => i += 1,
            _ => return i,
        }
    }
}

/// The first line after leading empty lines, without its line ending, and
/// whether the line ending was seen.
fn first_line(buf: &[u8], scan: usize) -> (&[u8], bool) {
    let line = &buf[leading_empty_lines(buf)..];
    let window = &line[..line.len().min(scan)];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) => (line[..i].strip_suffix(b"\r").unwrap_or(&line[..i]), true),
        None => (window.strip_suffix(b"\r").unwrap_or(window), false),
    }
}

/// Whether the request line starts with more token bytes than
/// [`MAX_METHOD_LEN`]: a method longer than any this server implements,
/// whatever follows.
fn method_too_long(buf: &[u8]) -> bool {
    buf[leading_empty_lines(buf)..]
        .iter()
        .take(MAX_METHOD_LEN + 1)
        .take_while(|&&b| is_tchar(b))
        .count()
        > MAX_METHOD_LEN
}

fn request_line_too_long(buf: &[u8], limit: usize) -> bool {
    first_line(buf, limit.saturating_add(2)).0.len() > limit
}

/// What to do with a version httparse refused.
enum VersionCheck {
    /// Answer with this error: 505 for a request line of three parts whose
    /// last is a well-formed `HTTP/d.d` of another major version (or
    /// `HTTP/0.9`), 400 for anything else (a target with a space in it, a
    /// version cut short).
    Refuse(Error),
    /// `HTTP/1.d` with `d` above 1, its minor digit at this offset: read
    /// as HTTP/1.1, as RFC 9110 (section 6.2) asks of a recipient that
    /// implements the major version.
    LaterMinor(usize),
    /// Wait for more bytes: the line is not complete and its last part may
    /// still become either, so that the answer does not depend on how the
    /// bytes arrived.
    Wait,
}

fn version_check(buf: &[u8]) -> VersionCheck {
    let start = leading_empty_lines(buf);
    let (line, complete) = first_line(buf, usize::MAX);
    let mut parts = line.split(|&b| b == b' ');
    let version = parts.nth(2).unwrap_or_default();
    let rest = match version {
        [b'H', b'T', b'T', b'P', b'/', major, rest @ ..] if major.is_ascii_digit() => rest,
        _ => return VersionCheck::Refuse(Error::new(Kind::Malformed)),
    };
    if parts.next().is_some() {
        return VersionCheck::Refuse(Error::new(Kind::Malformed));
    }
    match (version[5], rest, complete) {
        // `first_line` returns a sub-slice of `buf` that starts at `start`,
        // and the version ends the line.
        (b'1', [b'.', b'2'..=b'9'], true) => VersionCheck::LaterMinor(start + line.len() - 1),
        (_, [b'.', b'0'..=b'9'], true) => VersionCheck::Refuse(Error::new(Kind::Version)),
        (_, [] | [b'.'] | [b'.', b'0'..=b'9'], false) => VersionCheck::Wait,
        _ => VersionCheck::Refuse(Error::new(Kind::Malformed)),
    }
}

/// Where `part`, a sub-slice that httparse returned, lies in `base`. Checked
/// so that a slice from elsewhere (an empty value, say) gives an empty span
/// instead of a wrong one.
fn span_of(base: &[u8], part: &[u8]) -> Span {
    let start = (part.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
    match start.checked_add(part.len()) {
        Some(end) if start <= base.len() && end <= base.len() => Span::new(start, end),
        _ => Span::default(),
    }
}

/// Where a target's parts are, relative to the head.
struct TargetSpans {
    path: Span,
    query: Option<Span>,
    /// The authority of an absolute-form target (`http://host:port/...`).
    authority: Option<Span>,
}

/// Splits the target into its parts, as spans relative to `base`.
fn split_target(base: &[u8], target: &[u8], method: &Method) -> Result<TargetSpans, Error> {
    let bad = || Error::new(Kind::Target);
    // One pass: visible ASCII only, no fragment, and where the query starts.
    let mut query_at = None;
    for (i, &b) in target.iter().enumerate() {
        if !b.is_ascii_graphic() || b == b'#' {
            return Err(bad());
        }
        if b == b'?' && query_at.is_none() {
            query_at = Some(i);
        }
    }
    let t0 = span_of(base, target).start as usize;
    let rest: &[u8];
    let rest_at: usize;
    let mut authority = None;
    if target.first() == Some(&b'/') {
        rest = target;
        rest_at = 0;
    } else if target == b"*" {
        return if *method == Method::OPTIONS {
            Ok(TargetSpans {
                path: Span::new(t0, t0 + 1),
                query: None,
                authority: None,
            })
        } else {
            Err(bad())
        };
    } else {
        // absolute-form: scheme "://" authority [path-abempty] [ "?" query ]
        let lower = |n: usize| target.get(..n).map(|s| s.to_ascii_lowercase());
        let skip = if lower(7).as_deref() == Some(b"http://") {
            7
        } else if lower(8).as_deref() == Some(b"https://") {
            8
        } else {
            return Err(bad());
        };
        let after = &target[skip..];
        let end = after
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .unwrap_or(after.len());
        // No authority, one with userinfo (`user@host`), which a recipient
        // should treat as an error (RFC 9110, section 4.2.4), or one that
        // is not a host (and port) at all.
        // An empty host (`http://:80/`) is invalid too (RFC 9110, section
        // 4.2.1).
        if end == 0
            || after[0] == b':'
            || after[..end].contains(&b'@')
            || !valid_host(&after[..end])
        {
            return Err(bad());
        }
        authority = Some(Span::new(t0 + skip, t0 + skip + end));
        rest_at = skip + end;
        rest = &target[rest_at..];
    }
    let base_at = t0 + rest_at;
    // The authority stops at the first `?`, so a query starts in `rest`.
    let (path, query) = match query_at.map(|q| q - rest_at) {
        Some(q) => (
            Span::new(base_at, base_at + q),
            Some(Span::new(base_at + q + 1, base_at + rest.len())),
        ),
        None => (Span::new(base_at, base_at + rest.len()), None),
    };
    Ok(TargetSpans {
        path,
        query,
        authority,
    })
}

/// A `Content-Length` value: digits, leading zeros allowed (RFC 9110,
/// section 8.6); `None` for a length past `u64`, which is past any body
/// limit (413, once the rest of the head is known to be sound).
fn parse_content_length(v: &[u8]) -> Result<Option<u64>, Error> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(Error::new(Kind::ContentLength));
    }
    Ok(v.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    }))
}

/// A `Host` value: `uri-host [ ":" port ]` (RFC 9110, section 7.2), that
/// is, bytes a host may have, in that shape.
fn valid_host(v: &[u8]) -> bool {
    // Without an early exit: branch-free, and unrolled by the compiler
    // (a bad host is rare and short-lived).
    let bytes = v
        .iter()
        .fold(true, |ok, &b| ok & HOST_BYTES[usize::from(b)]);
    bytes && host_shape(v)
}

/// The shape of a `Host` value whose bytes are allowed: an IP literal in
/// brackets, or a name or IPv4 address without brackets or colons; then
/// an optional `:` and digits.
fn host_shape(v: &[u8]) -> bool {
    let (host, port) = if v.first() == Some(&b'[') {
        match v.iter().position(|&b| b == b']') {
            Some(end) => v.split_at(end + 1),
            None => return false,
        }
    } else {
        v.split_at(v.iter().position(|&b| b == b':').unwrap_or(v.len()))
    };
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => digits.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    let host_ok = match host {
        // IPvFuture: `v` 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
        // (RFC 3986, section 3.2.2).
        [b'[', b'v' | b'V', inner @ .., b']'] => {
            let digits = inner.iter().take_while(|b| b.is_ascii_hexdigit()).count();
            match &inner[digits..] {
                [b'.', rest @ ..] => {
                    digits > 0
                        && !rest.is_empty()
                        && !rest.iter().any(|&b| matches!(b, b'[' | b']' | b'%'))
                }
                _ => false,
            }
        }
        // IPv6, possibly with an IPv4 tail (no zone).
        [b'[', inner @ .., b']'] => {
            std::str::from_utf8(inner).is_ok_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok())
        }
        // A name or an IPv4 address: each `%` starts an escape.
        name => {
            !name.iter().any(|&b| b == b'[' || b == b']')
                && name.iter().enumerate().all(|(i, &b)| {
                    b != b'%'
                        || name
                            .get(i + 1..i + 3)
                            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
                })
        }
    };
    port_ok && host_ok
}

/// The bytes [`valid_host`] allows, as a table: one load per byte.
static HOST_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'['
                    | b']'
            );
        b += 1;
    }
    t
};

/// Elements of a comma-separated list, trimmed of optional whitespace,
/// empty ones dropped (RFC 9110 section 5.6.1).
fn list(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',')
        .map(|e| e.trim_ascii())
        .filter(|e| !e.is_empty())
}

/// The state of the `Transfer-Encoding` list seen so far.
#[derive(Default)]
struct Codings {
    present: bool,
    any: bool,
    last_chunked: bool,
    chunked_count: u32,
    unknown: bool,
    invalid: bool,
}

impl Codings {
    fn add(&mut self, value: &[u8]) {
        self.present = true;
        for coding in list(value) {
            self.any = true;
            if eq_lower(coding, b"chunked") {
                self.chunked_count += 1;
                self.last_chunked = true;
                continue;
            }
            self.last_chunked = false;
            // A coding name is a token, optionally followed by parameters.
            let name = coding
                .split(|&b| b == b';')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            if !name.is_empty() && name.iter().all(|&b| is_tchar(b)) {
                self.unknown = true;
            } else {
                self.invalid = true;
            }
        }
    }

    /// `Ok(true)` for a valid chunked body, `Ok(false)` without the header.
    fn finish(&self) -> Result<bool, Error> {
        if !self.present {
            return Ok(false);
        }
        if self.invalid || !self.any || !self.last_chunked || self.chunked_count != 1 {
            // The final coding must be `chunked`, exactly once (RFC 9112 6.3).
            return Err(Error::new(Kind::Framing));
        }
        if self.unknown {
            return Err(Error::new(Kind::UnknownCoding));
        }
        Ok(true)
    }
}

fn check(req: &httparse::Request<'_, '_>, raw: &[u8], limits: &Limits) -> Result<Head, Error> {
    let malformed = || Error::new(Kind::Malformed);
    let method = Method::from_bytes(req.method.ok_or_else(malformed)?.as_bytes())?;
    // A tunnel is not something this server opens, whatever the handler.
    if method == Method::CONNECT {
        return Err(Error::new(Kind::Method));
    }
    let version = match req.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(Error::new(Kind::Version)),
    };
    // The head is copied without leading empty lines.
    let skip = leading_empty_lines(raw);
    let head = &raw[skip..];
    let target = req.path.ok_or_else(malformed)?.as_bytes();
    let TargetSpans {
        path,
        query,
        authority,
    } = split_target(head, target, &method)?;
    let target = span_of(head, target);

    // The head and its header index, in one allocation.
    let mut parts = crate::request::parts(head.len() + INDEX_ENTRY * req.headers.len());
    let bytes = &mut parts.bytes;
    bytes.extend_from_slice(head);
    let mut hosts = 0u32;
    let mut host_ok = true;
    // `Some(None)`: a length too long for 64 bits.
    let mut length: Option<Option<u64>> = None;
    let mut codings = Codings::default();
    let (mut close, mut keep_alive, mut expect_continue) = (false, false, false);
    for h in req.headers.iter() {
        let (name, value) = (h.name.as_bytes(), h.value);
        // The authority of an absolute-form target stands for the `Host`
        // field's value (RFC 9112, section 3.2.2); the field must still be
        // sound.
        let seen = match authority {
            Some(a) if name.len() == 4 && eq_lower(name, b"host") => a,
            _ => span_of(head, value),
        };
        push_index(bytes, span_of(head, name), seen);
        match name.len() {
            4 if eq_lower(name, b"host") => {
                hosts += 1;
                host_ok &= valid_host(value);
            }
            14 if eq_lower(name, b"content-length") => {
                if length.is_some() {
                    // Repeated, even with the same value: a smuggling shape.
                    return Err(Error::new(Kind::ContentLength));
                }
                length = Some(parse_content_length(value)?);
            }
            17 if eq_lower(name, b"transfer-encoding") => codings.add(value),
            10 if eq_lower(name, b"connection") => {
                for opt in list(value) {
                    close |= eq_lower(opt, b"close");
                    keep_alive |= eq_lower(opt, b"keep-alive");
                }
            }
            6 if eq_lower(name, b"expect") => {
                expect_continue |= eq_lower(value, b"100-continue");
            }
            _ => {}
        }
    }

    if codings.present && (length.is_some() || version == Version::Http10) {
        return Err(Error::new(Kind::Framing));
    }
    let chunked = codings.finish()?;
    if hosts > 1 || !host_ok || (version == Version::Http11 && hosts == 0) {
        return Err(Error::new(Kind::Host));
    }
    let body = match (chunked, length) {
        (true, _) => BodyKind::Chunked,
        (false, None | Some(Some(0))) => BodyKind::Empty,
        (false, Some(None)) => return Err(Error::new(Kind::BodyTooLarge)),
        (false, Some(Some(n))) if n > limits.max_body => {
            return Err(Error::new(Kind::BodyTooLarge));
        }
        (false, Some(Some(n))) => BodyKind::Length(n),
    };
    let keep_alive = match version {
        Version::Http11 => !close,
        Version::Http10 => keep_alive && !close,
    };
    parts.head_len = head.len() as u32;
    parts.method = method;
    parts.version = version;
    parts.target = target;
    parts.path = path;
    parts.query = query;
    Ok(Head {
        request: Request::from_parts(parts),
        // At most `max_head`, which `parse_head` caps at `u32::MAX`.
        len: u32::try_from(raw.len()).map_err(|_| Error::new(Kind::HeadTooLarge))?,
        body,
        keep_alive,
        expect_continue: expect_continue && version == Version::Http11 && body != BodyKind::Empty,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// What [`first_error`]'s search rests on: under any limits, a
        /// prefix that fails fails with one byte more, and a complete head
        /// stays the same head.
        #[test]
        fn a_failing_prefix_fails_with_more_bytes(
            start in prop::sample::select(vec![&b""[..], b"GET /", b"GET / HTTP/1.1\r\nHost: a\r\n"]),
            rest in prop::collection::vec(
                prop::sample::select(b"GET /aZ:.\r\n \x01\x80H1TP/2\t?%".to_vec()),
                0..120,
            ),
            line in 0usize..48,
            head in 0usize..160,
            headers in 0usize..5,
        ) {
            let buf = [start, &rest[..]].concat();
            let limits = Limits {
                max_request_line: line,
                max_head: head,
                max_headers: headers,
                ..Limits::default()
            };
            let mut before: Option<Result<Parsed<Head>, Error>> = None;
            for end in 0..=buf.len() {
                let now = parse_once(&buf[..end], &limits);
                match (&before, &now) {
                    (Some(Err(_)), Ok(_)) => prop_assert!(false, "{} failed, then {:?}", buf[..end - 1].escape_ascii(), now),
                    (Some(Ok(Parsed::Complete(a))), Ok(Parsed::Complete(b))) => prop_assert_eq!(a.len(), b.len()),
                    (Some(Ok(Parsed::Complete(_))), _) => prop_assert!(false, "a complete head changed: {:?}", now),
                    _ => {}
                }
                before = Some(now);
            }
        }
    }
}
