//! Configurable limits, each with a documented default.

use std::time::Duration;

/// Limits that keep a hostile or broken client from exhausting the server.
///
/// Every field has a documented default ([`Limits::default`]); change the
/// ones you need with struct update syntax:
///
/// ```
/// let limits = minihttp::Limits { max_body: 1 << 20, ..Default::default() };
/// assert_eq!(limits.max_headers, 100);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line (`GET /path HTTP/1.1`, without the CRLF) in bytes;
    /// longer answers 414 URI Too Long. Empty lines before a request line
    /// (which RFC 9112 lets a server ignore) are ignored up to this many
    /// bytes in all; more answer 400 Bad Request. Default: 8 KiB (8192).
    pub max_request_line: usize,
    /// Largest request head (request line plus header section, with the
    /// final empty line) in bytes, and the largest trailer section of a
    /// chunked body; larger answers 431. Default: 32 KiB (32768).
    pub max_head: usize,
    /// Most header fields in one request; more answers 431.
    /// Default: 100.
    pub max_headers: usize,
    /// Largest request body in bytes after chunked decoding; larger answers
    /// 413 Content Too Large. Default: 8 MiB (8388608).
    pub max_body: u64,
    /// Longest time a client may take to send a complete request head,
    /// counted from its first byte, and the longest pause while it sends a
    /// body; the server then answers 408 and closes. It also bounds how
    /// long a new connection may wait before it sends its first request
    /// (it is then closed without an answer). Default: 10 s. A plain
    /// value for the server loop; the parser does not look at clocks.
    /// `Duration::ZERO` leaves no time to wait: a request already there
    /// when its connection is first read is served, and any wait for
    /// more ends at once (a head in pieces gets 408, a silent connection
    /// is closed).
    pub header_read_timeout: Duration,
    /// Slowest average rate, in bytes per second, at which a client may send
    /// a request body: from the first time the server waits for body bytes,
    /// reading it may take at most `header_read_timeout` plus one second per
    /// `min_body_rate` bytes received, however short each pause (the time
    /// a handler of a streamed body spends between two reads, when the
    /// server reads nothing, is not counted), so that a
    /// body trickled a byte at a time cannot hold a connection; slower
    /// answers 408 and closes. 0 turns the check off, and so does a
    /// `header_read_timeout` of `Duration::MAX`. Default: 500.
    pub min_body_rate: u64,
    /// Longest time an idle keep-alive connection stays open waiting for the
    /// next request, once it has had an answer (a new connection's wait for
    /// its first request is bounded by `header_read_timeout`). Default: 60 s.
    pub idle_timeout: Duration,
    /// Longest time a write may wait for the client to take bytes (a
    /// client that stops reading a large response cannot pin the
    /// connection); the connection is then closed. Default: 60 s.
    pub write_timeout: Duration,
    /// Most connections one hub serves at once. At the cap, a new
    /// connection takes the place of the one idle the longest (nothing of
    /// a request in hand: between keep-alive requests, or before its
    /// first), which is closed, as nginx reuses its idle connections;
    /// with none idle, further connections wait in the listen backlog.
    /// The same happens below the cap when the process is out of
    /// descriptors. Default: 4096; 0 counts as 1.
    pub max_connections_per_hub: usize,
}

impl Limits {
    /// The defaults, usable in `const` context.
    pub const DEFAULT: Limits = Limits {
        max_request_line: 8 * 1024,
        max_head: 32 * 1024,
        max_headers: 100,
        max_body: 8 * 1024 * 1024,
        header_read_timeout: Duration::from_secs(10),
        min_body_rate: 500,
        idle_timeout: Duration::from_secs(60),
        write_timeout: Duration::from_secs(60),
        max_connections_per_hub: 4096,
    };
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}
