//! Status codes and their reason phrases (RFC 9110 section 15, and IANA's
//! HTTP Status Code Registry).

use std::fmt;

use crate::error::{Error, Kind};

/// An HTTP status code: a number in `100..=599` (RFC 9110 section 15;
/// a client takes any other for a server error).
///
/// ```
/// use minihttp::StatusCode;
/// assert_eq!(StatusCode::NOT_FOUND.as_u16(), 404);
/// assert_eq!(StatusCode::NOT_FOUND.reason(), "Not Found");
/// assert!(StatusCode::from_u16(42).is_err());
/// assert!(StatusCode::from_u16(600).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusCode(u16);

macro_rules! codes {
    ($(($name:ident, $num:expr, $reason:expr),)*) => {
        impl StatusCode {
            $(
                #[doc = concat!("`", stringify!($num), " ", $reason, "`")]
                pub const $name: StatusCode = StatusCode($num);
            )*

            /// The reason phrase registered for this code (in IANA's HTTP
            /// Status Code Registry; 306 and 418 are reserved there, as
            /// unused), or `""` for an unregistered one (an empty reason
            /// phrase is valid HTTP/1.1).
            pub const fn reason(self) -> &'static str {
                match self.0 {
                    $($num => $reason,)*
                    _ => "",
                }
            }
        }
    };
}

codes! {
    (CONTINUE, 100, "Continue"),
    (SWITCHING_PROTOCOLS, 101, "Switching Protocols"),
    (PROCESSING, 102, "Processing"),
    (EARLY_HINTS, 103, "Early Hints"),
    (OK, 200, "OK"),
    (CREATED, 201, "Created"),
    (ACCEPTED, 202, "Accepted"),
    (NON_AUTHORITATIVE_INFORMATION, 203, "Non-Authoritative Information"),
    (NO_CONTENT, 204, "No Content"),
    (RESET_CONTENT, 205, "Reset Content"),
    (PARTIAL_CONTENT, 206, "Partial Content"),
    (MULTI_STATUS, 207, "Multi-Status"),
    (ALREADY_REPORTED, 208, "Already Reported"),
    (IM_USED, 226, "IM Used"),
    (MULTIPLE_CHOICES, 300, "Multiple Choices"),
    (MOVED_PERMANENTLY, 301, "Moved Permanently"),
    (FOUND, 302, "Found"),
    (SEE_OTHER, 303, "See Other"),
    (NOT_MODIFIED, 304, "Not Modified"),
    (USE_PROXY, 305, "Use Proxy"),
    (TEMPORARY_REDIRECT, 307, "Temporary Redirect"),
    (PERMANENT_REDIRECT, 308, "Permanent Redirect"),
    (BAD_REQUEST, 400, "Bad Request"),
    (UNAUTHORIZED, 401, "Unauthorized"),
    (PAYMENT_REQUIRED, 402, "Payment Required"),
    (FORBIDDEN, 403, "Forbidden"),
    (NOT_FOUND, 404, "Not Found"),
    (METHOD_NOT_ALLOWED, 405, "Method Not Allowed"),
    (NOT_ACCEPTABLE, 406, "Not Acceptable"),
    (PROXY_AUTHENTICATION_REQUIRED, 407, "Proxy Authentication Required"),
    (REQUEST_TIMEOUT, 408, "Request Timeout"),
    (CONFLICT, 409, "Conflict"),
    (GONE, 410, "Gone"),
    (LENGTH_REQUIRED, 411, "Length Required"),
    (PRECONDITION_FAILED, 412, "Precondition Failed"),
    (PAYLOAD_TOO_LARGE, 413, "Content Too Large"),
    (URI_TOO_LONG, 414, "URI Too Long"),
    (UNSUPPORTED_MEDIA_TYPE, 415, "Unsupported Media Type"),
    (RANGE_NOT_SATISFIABLE, 416, "Range Not Satisfiable"),
    (EXPECTATION_FAILED, 417, "Expectation Failed"),
    (MISDIRECTED_REQUEST, 421, "Misdirected Request"),
    (UNPROCESSABLE_CONTENT, 422, "Unprocessable Content"),
    (LOCKED, 423, "Locked"),
    (FAILED_DEPENDENCY, 424, "Failed Dependency"),
    (TOO_EARLY, 425, "Too Early"),
    (UPGRADE_REQUIRED, 426, "Upgrade Required"),
    (PRECONDITION_REQUIRED, 428, "Precondition Required"),
    (TOO_MANY_REQUESTS, 429, "Too Many Requests"),
    (REQUEST_HEADER_FIELDS_TOO_LARGE, 431, "Request Header Fields Too Large"),
    (UNAVAILABLE_FOR_LEGAL_REASONS, 451, "Unavailable For Legal Reasons"),
    (INTERNAL_SERVER_ERROR, 500, "Internal Server Error"),
    (NOT_IMPLEMENTED, 501, "Not Implemented"),
    (BAD_GATEWAY, 502, "Bad Gateway"),
    (SERVICE_UNAVAILABLE, 503, "Service Unavailable"),
    (GATEWAY_TIMEOUT, 504, "Gateway Timeout"),
    (HTTP_VERSION_NOT_SUPPORTED, 505, "HTTP Version Not Supported"),
    (VARIANT_ALSO_NEGOTIATES, 506, "Variant Also Negotiates"),
    (INSUFFICIENT_STORAGE, 507, "Insufficient Storage"),
    (LOOP_DETECTED, 508, "Loop Detected"),
    (NOT_EXTENDED, 510, "Not Extended"),
    (NETWORK_AUTHENTICATION_REQUIRED, 511, "Network Authentication Required"),
}

impl StatusCode {
    /// A status code from its number; an error outside `100..=599`, which
    /// RFC 9110 calls invalid on the wire (some programs use 600 and up
    /// among themselves, never in an answer).
    pub const fn from_u16(code: u16) -> Result<StatusCode, Error> {
        if code >= 100 && code <= 599 {
            Ok(StatusCode(code))
        } else {
            Err(Error::new(Kind::InvalidStatus))
        }
    }

    /// The number.
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// The three ASCII digits, as written in a status line.
    pub(crate) const fn digits(self) -> [u8; 3] {
        let c = self.0;
        [
            b'0' + (c / 100) as u8,
            b'0' + (c / 10 % 10) as u8,
            b'0' + (c % 10) as u8,
        ]
    }

    /// 1xx: the request was received, continuing.
    pub const fn is_informational(self) -> bool {
        self.0 / 100 == 1
    }

    /// 2xx: the request was received, understood and accepted.
    pub const fn is_success(self) -> bool {
        self.0 / 100 == 2
    }

    /// 3xx: further action is needed.
    pub const fn is_redirection(self) -> bool {
        self.0 / 100 == 3
    }

    /// 4xx: the request is at fault.
    pub const fn is_client_error(self) -> bool {
        self.0 / 100 == 4
    }

    /// 5xx: the server is at fault.
    pub const fn is_server_error(self) -> bool {
        self.0 / 100 == 5
    }

    /// Whether a response with this status never carries a body
    /// (1xx, 204 No Content, 304 Not Modified).
    pub const fn forbids_body(self) -> bool {
        self.is_informational() || self.0 == 204 || self.0 == 304
    }
}

impl Default for StatusCode {
    fn default() -> StatusCode {
        StatusCode::OK
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons() {
        let table = [
            (200, "OK"),
            (206, "Partial Content"),
            (304, "Not Modified"),
            (400, "Bad Request"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (413, "Content Too Large"),
            (414, "URI Too Long"),
            (416, "Range Not Satisfiable"),
            (431, "Request Header Fields Too Large"),
            (501, "Not Implemented"),
            (505, "HTTP Version Not Supported"),
            // Registered by RFCs other than 9110.
            (102, "Processing"),
            (103, "Early Hints"),
            (207, "Multi-Status"),
            (425, "Too Early"),
            (511, "Network Authentication Required"),
            (306, ""),
            (418, ""),
            (599, ""),
        ];
        for (code, reason) in table {
            assert_eq!(StatusCode::from_u16(code).unwrap().reason(), reason);
        }
    }

    #[test]
    fn range_and_classes() {
        assert!(StatusCode::from_u16(99).unwrap_err().is_invalid_status());
        assert!(StatusCode::from_u16(1000).is_err());
        assert!(StatusCode::from_u16(600).unwrap_err().is_invalid_status());
        assert!(StatusCode::from_u16(999).is_err());
        assert_eq!(StatusCode::from_u16(599).unwrap().digits(), *b"599");
        assert_eq!(StatusCode::NOT_FOUND.digits(), *b"404");
        assert!(StatusCode::CONTINUE.forbids_body());
        assert!(StatusCode::NO_CONTENT.forbids_body());
        assert!(StatusCode::NOT_MODIFIED.forbids_body());
        assert!(!StatusCode::OK.forbids_body());
        assert!(StatusCode::OK.is_success() && StatusCode::FOUND.is_redirection());
        assert!(StatusCode::GONE.is_client_error() && StatusCode::BAD_GATEWAY.is_server_error());
        assert_eq!(StatusCode::OK.to_string(), "200 OK");
    }
}
