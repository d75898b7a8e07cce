//! `minihttp`: a hardened, fast HTTP/1.1 server on `greenrt` green threads,
//! and the protocol core under it.
//!
//! - [`Server`]: one `SO_REUSEPORT` listener and one hub per worker, one
//!   green task per connection, batched pipelined writes, header-read /
//!   idle / write timeouts, a per-hub connection cap, graceful shutdown on
//!   a `sync_prims::Event`, panicking handlers answered with 500. A
//!   [`Handler`] is any `Fn(Request) -> impl Future<Output = Response>`, a
//!   [`Router`] or a [`StaticFiles`]; request bodies are buffered, or read
//!   as they arrive through a [`BodyStream`]
//!   ([`Server::stream_bodies`]); response bodies are bytes, files
//!   ([`Body::File`]) or streams ([`Body::Stream`], for example a `coro`
//!   async generator).
//!
//! ```
//! use minihttp::{Request, Response, Server};
//! use std::io::{Read, Write};
//!
//! let server = Server::bind("127.0.0.1:0")?
//!     .workers(2)
//!     .spawn(|req: Request| async move { Response::text(format!("Hello, {}!", req.path())) })?;
//! let mut s = std::net::TcpStream::connect(server.local_addr())?;
//! s.write_all(b"GET /world HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
//! let mut text = String::new();
//! s.read_to_string(&mut text)?;
//! assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("Hello, /world!"));
//! server.shutdown()?; // graceful: in-flight requests finish first
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The protocol core needs no sockets and no runtime:
//!
//! - [`parse_head`]: incremental, zero-copy request-head parsing on
//!   `httparse` (`Partial` / `Complete`), checked against [`Limits`] and the
//!   request-smuggling rules of RFC 9112, each violation an [`Error`] with
//!   the right [`status()`](Error::status);
//! - [`Decoder`] / [`ChunkedEncoder`]: body framing (`Content-Length`,
//!   chunked with trailers);
//! - [`Conn`]: one connection's read and write states: bytes in, [`Request`]s
//!   out, [`Response`]s in, bytes out, keep-alive decided from both sides;
//! - [`Router`]: method + path patterns with `:param` and `*rest`, 404/405;
//! - [`StaticFiles`] and the helpers in [`files`]: safe path resolution,
//!   MIME types, validators and 304, ranges and 206/416, directory listings.
//!
//! # The core, sans I/O
//!
//! A whole exchange, sans I/O: bytes that a socket would deliver, split
//! anywhere, and the bytes to send back.
//!
//! ```
//! use minihttp::{Conn, Limits, Next, ReadBuf, Response, StatusCode};
//!
//! let mut conn = Conn::new(Limits::default());
//! let mut buf = ReadBuf::new();
//! let mut out = Vec::new();
//! let wire: &[&[u8]] = &[b"GET /hello?name=W", b"orld HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r", b"\nHost: x\r\n\r\n"];
//! for piece in wire {
//!     buf.extend_from_slice(piece);
//!     loop {
//!         match conn.poll_request(&mut buf) {
//!             Ok(Next::Request(req)) => {
//!                 let response = if req.path() == "/hello" {
//!                     Response::text(format!("Hello, {}!", req.query("name").unwrap()))
//!                 } else {
//!                     Response::error(StatusCode::NOT_FOUND)
//!                 };
//!                 conn.encode_response(&response, &mut out);
//!             }
//!             Ok(Next::Continue) => conn.encode_continue(&mut out),
//!             Ok(Next::NeedMore | Next::Close) => break,
//!             Err(e) => { conn.encode_error(&e, &mut out); break }
//!         }
//!     }
//! }
//! let text = String::from_utf8(out).unwrap();
//! assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(text.contains("\r\n\r\nHello, World!HTTP/1.1 404 Not Found\r\n"));
//! ```
#![forbid(unsafe_code)]

mod body;
mod body_stream;
mod conn;
mod date;
mod error;
pub mod files;
mod head;
mod headers;
mod limits;
mod locality;
mod method;
mod pct;
mod request;
mod response;
mod router;
mod server;
mod spare;

mod status;

pub use body::{BodyKind, ChunkedEncoder, Decoder, Step};
pub use body_stream::BodyStream;
pub use conn::{BodyRead, CONTINUE, Conn, Framing, Next, ReadBuf, SERVER_NAME};
pub use date::{DateCache, HTTP_DATE_LEN, fmt_http_date, parse_http_date, with_cached_date};
pub use error::Error;

pub use files::StaticFiles;
pub use head::{Head, Parsed, parse_head};
pub use headers::Headers;
pub use limits::Limits;
pub use method::{MAX_METHOD_LEN, Method, Version};
pub use request::Request;
pub use response::{Body, FileBody, Response, ResponseBuilder, StreamBody};

pub use router::{BoxHandler, RouteMatch, Router, handler};
pub use server::{Handler, LogEntry, Server, ServerHandle};
pub use status::StatusCode;

/// The crates whose types this crate's API takes or returns: the runtime a
/// server runs on (`Server::clock` takes its `ManualClock`), the
/// shutdown [`Event`](sync_prims::Event) of `Server::shutdown_event`, and
/// the generator handle of `Body::generate`. Re-exported so that a user
/// names them at the versions this crate was built with.
pub use coro;
pub use greenrt;
pub use sync_prims;

/// The README's example runs as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    /// Public types can move between hub threads.
    #[test]
    fn send_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<crate::Request>();
        send_sync::<crate::Response>();
        send_sync::<crate::Conn>();
        send_sync::<crate::ReadBuf>();
        send_sync::<crate::Error>();
        send_sync::<crate::Limits>();
        send_sync::<crate::Router>();
        send_sync::<crate::StaticFiles>();
        send_sync::<crate::Decoder>();
        send_sync::<crate::DateCache>();
        send_sync::<crate::Server>();
        send_sync::<crate::ServerHandle>();
        send_sync::<crate::Body>();
        send_sync::<crate::BodyStream>();
    }
}
