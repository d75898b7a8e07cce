//! Request methods and protocol versions.

use std::fmt;

use crate::error::{Error, Kind};

/// A request method: the registered ones are constants, any other token is
/// kept as an extension method.
///
/// ```
/// use minihttp::Method;
/// assert_eq!(Method::from_bytes(b"GET").unwrap(), Method::GET);
/// assert_eq!(Method::from_bytes(b"PURGE").unwrap().as_str(), "PURGE");
/// assert!(Method::from_bytes(b"BAD METHOD").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Method(Repr);

/// The longest method a request may have: a longer one is answered 501
/// (RFC 9112, section 3), before its request line is read to the end
/// (under a [`max_request_line`](crate::Limits::max_request_line) shorter
/// than this, the line passes that limit first: 414; under a
/// [`max_head`](crate::Limits::max_head) shorter, the head: 431). The
/// longest registered method, `UPDATEREDIRECTREF`, has 17 bytes.
pub const MAX_METHOD_LEN: usize = 64;

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    Patch,
    /// Boxed twice, so that a method is two words (it sits in every
    /// request, which is moved several times).
    Ext(Box<Box<str>>),
}

impl Method {
    /// `GET`
    pub const GET: Method = Method(Repr::Get);
    /// `HEAD`
    pub const HEAD: Method = Method(Repr::Head);
    /// `POST`
    pub const POST: Method = Method(Repr::Post);
    /// `PUT`
    pub const PUT: Method = Method(Repr::Put);
    /// `DELETE`
    pub const DELETE: Method = Method(Repr::Delete);
    /// `CONNECT`
    pub const CONNECT: Method = Method(Repr::Connect);
    /// `OPTIONS`
    pub const OPTIONS: Method = Method(Repr::Options);
    /// `TRACE`
    pub const TRACE: Method = Method(Repr::Trace);
    /// `PATCH`
    pub const PATCH: Method = Method(Repr::Patch);

    /// Parses a method token (case-sensitive, as RFC 9110 says); an error
    /// unless it is a non-empty token.
    #[inline]
    pub fn from_bytes(bytes: &[u8]) -> Result<Method, Error> {
        Ok(Method(match bytes {
            b"GET" => Repr::Get,
            b"HEAD" => Repr::Head,
            b"POST" => Repr::Post,
            b"PUT" => Repr::Put,
            b"DELETE" => Repr::Delete,
            b"CONNECT" => Repr::Connect,
            b"OPTIONS" => Repr::Options,
            b"TRACE" => Repr::Trace,
            b"PATCH" => Repr::Patch,
            _ => return Method::extension(bytes),
        }))
    }

    /// A method that is not one of the nine standard ones: kept out of
    /// line, so that parsing a standard one stays small enough to inline.
    #[cold]
    fn extension(bytes: &[u8]) -> Result<Method, Error> {
        if bytes.is_empty() || !bytes.iter().all(|&b| is_tchar(b)) {
            return Err(Error::new(Kind::Malformed));
        }
        // Token characters are ASCII, so this cannot fail.
        let s = std::str::from_utf8(bytes).map_err(|_| Error::new(Kind::Malformed))?;
        Ok(Method(Repr::Ext(Box::new(s.into()))))
    }

    /// The method name.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Get => "GET",
            Repr::Head => "HEAD",
            Repr::Post => "POST",
            Repr::Put => "PUT",
            Repr::Delete => "DELETE",
            Repr::Connect => "CONNECT",
            Repr::Options => "OPTIONS",
            Repr::Trace => "TRACE",
            Repr::Patch => "PATCH",
            Repr::Ext(s) => s,
        }
    }

    /// Whether this is `HEAD`.
    pub fn is_head(&self) -> bool {
        self.0 == Repr::Head
    }

    /// Whether this is a method this crate does not know: none of RFC
    /// 9110's, nor `PATCH` (method names are case-sensitive, so `get` is
    /// one). A server that implements none of them answers 501.
    ///
    /// ```
    /// use minihttp::Method;
    /// assert!(!Method::PATCH.is_extension());
    /// assert!(Method::from_bytes(b"PROPFIND").unwrap().is_extension());
    /// ```
    pub fn is_extension(&self) -> bool {
        matches!(self.0, Repr::Ext(_))
    }
}

impl fmt::Debug for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The HTTP versions this server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// HTTP/1.0: connections close after each response unless the client
    /// asks for `keep-alive`.
    Http10,
    /// HTTP/1.1: connections persist unless either side says `close`.
    Http11,
}

impl Version {
    /// `"HTTP/1.0"` or `"HTTP/1.1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `tchar` from RFC 9110 section 5.6.2.
pub(crate) fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
        | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+'
        | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~')
}

/// Whether `bytes` is `lower` but for the case of its letters: `lower`
/// is written in lowercase. A letter is compared with its case bit set,
/// any other byte exactly; with `lower` known at the call, the compiler
/// folds this into a few word-sized compares (names and tokens are matched
/// on every request).
#[inline(always)]
pub(crate) fn eq_lower<const N: usize>(bytes: &[u8], lower: &[u8; N]) -> bool {
    let Ok(bytes) = <&[u8; N]>::try_from(bytes) else {
        return false;
    };
    let mut diff = 0;
    for i in 0..N {
        let fold = if lower[i].is_ascii_lowercase() {
            0x20
        } else {
            0
        };
        diff |= (bytes[i] | fold) ^ lower[i];
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eq_lower_is_eq_ignore_ascii_case() {
        // Every byte against a letter, a digit and a separator, and whole
        // names in mixed case.
        for b in 0..=255u8 {
            for lower in [b"h", b"5", b"-", b"z", b"a", b"@"] {
                assert_eq!(
                    eq_lower(&[b], lower),
                    [b].eq_ignore_ascii_case(lower),
                    "{b:#x} against {lower:?}"
                );
            }
        }
        assert!(eq_lower(b"Content-Length", b"content-length"));
        assert!(eq_lower(b"HOST", b"host"));
        assert!(!eq_lower(b"hosts", b"host"));
        assert!(!eq_lower(b"hos", b"host"));
        assert!(!eq_lower(b"Content_Length", b"content-length"));
        assert!(!eq_lower(b"Content\rLength", b"content-length"));
    }

    #[test]
    fn methods_round_trip() {
        for name in [
            "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "PURGE",
        ] {
            assert_eq!(Method::from_bytes(name.as_bytes()).unwrap().as_str(), name);
        }
        assert_ne!(Method::from_bytes(b"get").unwrap(), Method::GET);
        assert!(Method::from_bytes(b"").is_err());
        assert!(Method::from_bytes(b"G(T").is_err());
        assert!(Method::HEAD.is_head() && !Method::GET.is_head());
        assert_eq!(Version::Http10.to_string(), "HTTP/1.0");
    }
}
