//! The response a handler returns, and its body.

use std::borrow::Cow;

use crate::error::Error;
use crate::headers::Headers;
use crate::status::StatusCode;

/// A response body.
///
/// The extension point for bodies that are not in memory: a new variant
/// (a file sent from disk, a stream of chunks) reports its length through
/// [`Body::len`] (`None` when unknown, which is sent chunked to HTTP/1.1
/// clients and close-delimited to HTTP/1.0 ones) and is written by the
/// server loop after [`Conn::encode_response`](crate::Conn::encode_response)
/// has written the head and said how to frame it ([`Framing`](crate::Framing)).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Body {
    /// No body (`Content-Length: 0`, or nothing at all where a body is not
    /// allowed).
    #[default]
    Empty,
    /// Bytes in memory; `&'static` data is not copied.
    Bytes(Cow<'static, [u8]>),
}

impl Body {
    /// The length in bytes, when known up front.
    pub fn len(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Bytes(b) => Some(b.len() as u64),
        }
    }

    /// Whether the body is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// The bytes of an in-memory body (empty for [`Body::Empty`]).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Body::Empty => Some(&[]),
            Body::Bytes(b) => Some(b),
        }
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
/// The server adds `Date`, `Server` (unless set), and the framing fields
/// `Content-Length` / `Transfer-Encoding` / `Connection` itself.
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
        let mut r = Response::new(status);
        r.headers.push_static("content-type", content_type);
        r.body = body.into();
        r
    }

    /// A plain-text response whose body is the status line's reason, for
    /// error pages (`404 Not Found`).
    pub fn error(status: StatusCode) -> Response {
        let mut text = format!("{} {}", status.as_u16(), status.reason());
        text.push('\n');
        let mut r = Response::with_type(status, "text/plain; charset=utf-8", text);
        if status.forbids_body() {
            r.body = Body::Empty;
        }
        r
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

    /// Whether the response's own `Connection` field asks to close.
    pub(crate) fn wants_close(&self) -> bool {
        self.headers
            .get_all("connection")
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
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
        let r = Response::builder()
            .header("Connection", "Keep-Alive, Close")
            .build()
            .unwrap();
        assert!(r.wants_close());
        assert!(!Response::text("x").wants_close());
        assert_eq!(
            Response::error(StatusCode::NOT_FOUND).body().as_bytes(),
            Some(&b"404 Not Found\n"[..])
        );
        assert!(Response::error(StatusCode::NOT_MODIFIED).body().is_empty());
        assert_eq!(Body::from(vec![1, 2]).len(), Some(2));
        assert_eq!(Body::from(String::from("abc")).len(), Some(3));
        assert_eq!(Body::from(&b"ab"[..]).len(), Some(2));
    }
}
