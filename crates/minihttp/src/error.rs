//! The crate's error type: opaque, with `is_*()` predicates and a status mapping.

use std::fmt;

use crate::status::StatusCode;

/// What went wrong. Private so that variants can be added or split without
/// breaking callers; they ask [`Error`]'s predicates instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The request line is longer than [`Limits::max_request_line`](crate::Limits).
    RequestLineTooLong,
    /// The request head is larger than [`Limits::max_head`](crate::Limits).
    HeadTooLarge,
    /// More header fields than [`Limits::max_headers`](crate::Limits).
    TooManyHeaders,
    /// The request line or a header field is not valid HTTP/1.1 syntax.
    Malformed,
    /// The request target is not origin-, absolute- or asterisk-form.
    Target,
    /// An `HTTP/x.y` version other than 1.0 and 1.1.
    Version,
    /// An HTTP/1.1 request without exactly one valid `Host`.
    Host,
    /// A `Content-Length` that is not a single decimal number.
    ContentLength,
    /// Conflicting or faulty message framing (request smuggling shapes).
    Framing,
    /// A transfer coding other than `chunked`.
    UnknownCoding,
    /// A method the server does not implement: `CONNECT`, or one longer
    /// than any registered method.
    Method,
    /// The body is larger than [`Limits::max_body`](crate::Limits).
    BodyTooLarge,
    /// Bad chunked framing: chunk size, line ending or trailer.
    Chunk,
    /// The peer closed the connection in the middle of a request.
    Incomplete,
    /// The peer took too long to send the request head or body.
    Timeout,
    /// A response header name or value that cannot be sent as is.
    InvalidHeader,
    /// A status code outside 100..=599.
    InvalidStatus,
    /// A route pattern that cannot be compiled.
    InvalidRoute,
    /// A streamed request body read after its request was answered.
    BodyGone,
}

/// An error from parsing a request, framing a body or building a response.
///
/// The type is opaque: ask what happened with the `is_*()` predicates, and
/// which response it calls for with [`status()`](Error::status). Every request
/// error closes the connection ([`closes_connection`](Error::closes_connection)):
/// after a framing error nobody can tell where the next request starts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Error {
    kind: Kind,
}

impl Error {
    pub(crate) const fn new(kind: Kind) -> Error {
        Error { kind }
    }

    /// The error for a peer that did not send its request head, or the
    /// body of its request, in time (answered with 408 Request Timeout,
    /// or given to a handler that reads a streamed body).
    pub const fn timeout() -> Error {
        Error::new(Kind::Timeout)
    }

    /// The status code of the response this error calls for.
    ///
    /// | predicate | status |
    /// |---|---|
    /// | [`is_request_line_too_long`](Error::is_request_line_too_long) | 414 |
    /// | [`is_head_too_large`](Error::is_head_too_large) | 431 |
    /// | [`is_body_too_large`](Error::is_body_too_large) | 413 |
    /// | [`is_unsupported_version`](Error::is_unsupported_version) | 505 |
    /// | [`is_unknown_coding`](Error::is_unknown_coding), [`is_unimplemented_method`](Error::is_unimplemented_method) | 501 |
    /// | [`is_timeout`](Error::is_timeout) | 408 |
    /// | [`is_invalid_header`](Error::is_invalid_header), [`is_invalid_status`](Error::is_invalid_status), [`is_invalid_route`](Error::is_invalid_route), [`is_body_gone`](Error::is_body_gone) | 500 |
    /// | every other request error | 400 |
    pub fn status(&self) -> StatusCode {
        match self.kind {
            Kind::RequestLineTooLong => StatusCode::URI_TOO_LONG,
            Kind::HeadTooLarge | Kind::TooManyHeaders => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            Kind::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::Version => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            Kind::UnknownCoding | Kind::Method => StatusCode::NOT_IMPLEMENTED,
            Kind::Timeout => StatusCode::REQUEST_TIMEOUT,
            Kind::InvalidHeader | Kind::InvalidStatus | Kind::InvalidRoute | Kind::BodyGone => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Kind::Malformed
            | Kind::Target
            | Kind::Host
            | Kind::ContentLength
            | Kind::Framing
            | Kind::Chunk
            | Kind::Incomplete => StatusCode::BAD_REQUEST,
        }
    }

    /// Whether the connection must be closed after answering this error.
    ///
    /// True for every error that comes from reading a request: once the
    /// framing is in doubt, the rest of the byte stream cannot be trusted.
    pub fn closes_connection(&self) -> bool {
        !matches!(
            self.kind,
            Kind::InvalidHeader | Kind::InvalidStatus | Kind::InvalidRoute | Kind::BodyGone
        )
    }

    /// The request line is too long (414).
    pub fn is_request_line_too_long(&self) -> bool {
        self.kind == Kind::RequestLineTooLong
    }

    /// The header section is too large or has too many fields (431).
    pub fn is_head_too_large(&self) -> bool {
        matches!(self.kind, Kind::HeadTooLarge | Kind::TooManyHeaders)
    }

    /// The header section has more fields than allowed (431); a case of
    /// [`is_head_too_large`](Error::is_head_too_large).
    pub fn is_too_many_headers(&self) -> bool {
        self.kind == Kind::TooManyHeaders
    }

    /// The request line, a header field or the request target is malformed (400).
    pub fn is_malformed(&self) -> bool {
        matches!(self.kind, Kind::Malformed | Kind::Target)
    }

    /// The request names an HTTP version other than 1.x (505): `HTTP/1.2`
    /// and later minor versions are read as HTTP/1.1.
    pub fn is_unsupported_version(&self) -> bool {
        self.kind == Kind::Version
    }

    /// An HTTP/1.1 request lacks `Host`, repeats it or has an invalid one (400).
    pub fn is_host(&self) -> bool {
        self.kind == Kind::Host
    }

    /// A `Content-Length` is malformed or repeated (400).
    pub fn is_content_length(&self) -> bool {
        self.kind == Kind::ContentLength
    }

    /// The message framing is conflicting or faulty: both `Transfer-Encoding`
    /// and `Content-Length`, `Transfer-Encoding` in HTTP/1.0, or a
    /// `Transfer-Encoding` whose final coding is not `chunked` (400).
    pub fn is_framing(&self) -> bool {
        self.kind == Kind::Framing
    }

    /// The request uses a transfer coding this server does not implement (501).
    pub fn is_unknown_coding(&self) -> bool {
        self.kind == Kind::UnknownCoding
    }

    /// The request's method is one this server does not implement (501):
    /// `CONNECT` (it opens no tunnels), or a method longer than
    /// [`MAX_METHOD_LEN`](crate::MAX_METHOD_LEN) bytes, far longer than any
    /// registered one. Other methods reach the handler.
    pub fn is_unimplemented_method(&self) -> bool {
        self.kind == Kind::Method
    }

    /// The body is larger than the configured limit (413).
    pub fn is_body_too_large(&self) -> bool {
        self.kind == Kind::BodyTooLarge
    }

    /// The chunked body framing is invalid (400).
    pub fn is_chunk(&self) -> bool {
        self.kind == Kind::Chunk
    }

    /// The peer closed the connection in the middle of a request.
    pub fn is_incomplete(&self) -> bool {
        self.kind == Kind::Incomplete
    }

    /// The peer was too slow to send its request head or body (408).
    pub fn is_timeout(&self) -> bool {
        self.kind == Kind::Timeout
    }

    /// A response header name or value is not valid (it would allow response
    /// splitting or is not a token).
    pub fn is_invalid_header(&self) -> bool {
        self.kind == Kind::InvalidHeader
    }

    /// A status code outside `100..=599`.
    pub fn is_invalid_status(&self) -> bool {
        self.kind == Kind::InvalidStatus
    }

    /// A router pattern that cannot be compiled, or a route that an
    /// earlier one of the same method already covers.
    pub fn is_invalid_route(&self) -> bool {
        self.kind == Kind::InvalidRoute
    }

    /// A streamed request body was read after its request had been
    /// answered (the rest of the body is no longer available).
    pub fn is_body_gone(&self) -> bool {
        self.kind == Kind::BodyGone
    }

    fn message(&self) -> &'static str {
        match self.kind {
            Kind::RequestLineTooLong => "request line too long",
            Kind::HeadTooLarge => "request header section too large",
            Kind::TooManyHeaders => "too many request header fields",
            Kind::Malformed => "malformed request line or header field",
            Kind::Target => "invalid request target",
            Kind::Version => "unsupported HTTP version",
            Kind::Host => "missing, repeated or invalid Host header",
            Kind::ContentLength => "invalid or repeated Content-Length",
            Kind::Framing => "conflicting or faulty message framing",
            Kind::UnknownCoding => "unsupported transfer coding",
            Kind::Method => "request method not implemented",
            Kind::BodyTooLarge => "request body too large",
            Kind::Chunk => "invalid chunked body framing",
            Kind::Incomplete => "connection closed in the middle of a request",
            Kind::Timeout => "timed out reading the request",
            Kind::InvalidHeader => "invalid header name or value",
            Kind::InvalidStatus => "invalid status code",
            Kind::InvalidRoute => "invalid route pattern, or a route already taken",
            Kind::BodyGone => "request body read after the request was answered",
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Error").field(&self.kind).finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping() {
        let cases = [
            (Kind::RequestLineTooLong, 414),
            (Kind::HeadTooLarge, 431),
            (Kind::TooManyHeaders, 431),
            (Kind::Malformed, 400),
            (Kind::Target, 400),
            (Kind::Version, 505),
            (Kind::Host, 400),
            (Kind::ContentLength, 400),
            (Kind::Framing, 400),
            (Kind::UnknownCoding, 501),
            (Kind::Method, 501),
            (Kind::BodyTooLarge, 413),
            (Kind::Chunk, 400),
            (Kind::Incomplete, 400),
            (Kind::Timeout, 408),
            (Kind::InvalidHeader, 500),
            (Kind::BodyGone, 500),
        ];
        let mut messages = std::collections::HashSet::new();
        for (kind, code) in cases {
            let e = Error::new(kind);
            assert_eq!(e.status().as_u16(), code, "{kind:?}");
            // Each says something of its own.
            assert!(messages.insert(e.to_string()), "{kind:?}: {e}");
        }
        assert!(Error::timeout().is_timeout());
        assert!(Error::new(Kind::Chunk).closes_connection());
        assert!(!Error::new(Kind::InvalidHeader).closes_connection());
        assert!(Error::new(Kind::BodyGone).is_body_gone());
    }
}
